//! Escaping for the XML-compatible markup the HTML report and the JUnit file are made of. Both
//! must parse with a strict XML parser, so text and attribute values go through here.

use std::fmt::Write;

/// Escapes text or an attribute value (double-quoted). Characters XML 1.0 cannot carry at all
/// (most C0 controls) become U+FFFD, so a stray byte in a detail string cannot break the file.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Kept as references: a parser would otherwise fold them to spaces in attributes.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A number for an SVG coordinate: one decimal is finer than a pixel and keeps the file small.
pub fn coord(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    let mut s = String::new();
    // `-0` would be correct but is noise.
    let _ = write!(s, "{}", if r == 0.0 { 0.0 } else { r });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(esc(r#"a<b & "c" 'd'>"#), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
        assert_eq!(esc("x\ny\u{1}"), "x&#10;y\u{FFFD}");
        assert_eq!(esc("e1->e3"), "e1-&gt;e3");
    }

    #[test]
    fn coordinates_have_one_decimal() {
        assert_eq!(coord(12.345), "12.3");
        assert_eq!(coord(-0.01), "0");
        assert_eq!(coord(100.0), "100");
    }
}
