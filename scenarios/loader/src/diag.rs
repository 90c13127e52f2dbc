//! Errors that point at the place in the file: `path:line:column: message`, then the line
//! with a caret under the offending value.

use std::fmt;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based; 0 when the error is not about a place in the file (unreadable file).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line and the caret under it, if any.
    pub excerpt: Option<(String, usize, usize)>,
}

impl Diagnostic {
    pub fn at(path: &str, text: &str, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        // Spans come from many hands: a position inside a character is taken as its start.
        let floor = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let (start, span) = (floor(span.start), floor(span.start)..floor(span.end));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let excerpt = text[line_start..line_end].trim_end_matches('\r');
        // A position on a CRLF line's "\n" is the end of the line, like an LF line's "\n".
        let column = (text[line_start..start].chars().count() + 1).min(excerpt.chars().count() + 1);
        let width = text[start..span.end.clamp(start, line_end)].chars().count().max(1);
        Diagnostic {
            path: path.to_string(),
            line,
            column,
            message: message.into(),
            excerpt: Some(window(excerpt, column, width)),
        }
    }

    pub fn whole_file(path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic { path: path.to_string(), line: 0, column: 0, message: message.into(), excerpt: None }
    }
}

/// Characters of a long line shown on each side of the caret: a 50 MB line stays one screen.
const EXCERPT_SIDE_CHARS: usize = 60;

/// The excerpt of `line` around 1-based `column`, the caret's column in it, and the caret's
/// width: the whole line when short, else a window with "…" where it was cut.
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let chars = line.chars().count();
    if chars <= 3 * EXCERPT_SIDE_CHARS {
        return (line.to_string(), column, width);
    }
    let from = column.saturating_sub(1 + EXCERPT_SIDE_CHARS);
    let width = width.min(EXCERPT_SIDE_CHARS);
    let to = (column - 1 + width + EXCERPT_SIDE_CHARS).min(chars);
    let cut: String = line.chars().skip(from).take(to - from).collect();
    let (head, tail) = (if from > 0 { "…" } else { "" }, if to < chars { "…" } else { "" });
    let caret = column - from + head.chars().count();
    (format!("{head}{cut}{tail}"), caret, width)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.path, self.message);
        }
        write!(f, "{}:{}:{}: {}", self.path, self.line, self.column, self.message)?;
        if let Some((text, column, width)) = &self.excerpt {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}{}",
                "",
                self.line,
                text,
                "",
                " ".repeat(column - 1),
                "^".repeat(*width)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Where each line of a text starts, computed once: finding the line of every `[[assert]]`,
/// `[[fault]]` and `[[action]]` by counting newlines from the start each time made validate
/// quadratic in the file's size.
#[derive(Clone, Debug)]
pub struct LineIndex {
    /// Byte offset of every line's first byte; the first line starts at 0.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { starts }
    }

    /// The 1-based line that holds byte `offset` (the last line for an offset past the end).
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let text = format!("name = \"{}\" x", "a".repeat(100_000));
        let at = text.len() - 1;
        let d = Diagnostic::at("x.toml", &text, at..at + 1, "unexpected x");
        assert_eq!((d.line, d.column), (1, text.len()));
        let (excerpt, caret, width) = d.excerpt.clone().unwrap();
        assert!(excerpt.starts_with('…') && excerpt.ends_with(" x"), "{excerpt}");
        assert_eq!(excerpt.chars().nth(caret - 1), Some('x'), "the caret is under the x");
        assert_eq!(width, 1);
        assert!(d.to_string().len() < 400);
    }

    #[test]
    fn line_index_agrees_with_counting_newlines() {
        let text = "a\n\nbc\nd";
        let index = LineIndex::new(text);
        for offset in 0..text.len() + 3 {
            let counted = text[..offset.min(text.len())].matches('\n').count() + 1;
            assert_eq!(index.line_of(offset), counted, "offset {offset}");
        }
    }

    #[test]
    fn points_at_line_and_column() {
        let text = "a = 1\nkind = \"partitoin\"\n";
        let start = text.find("\"partitoin\"").unwrap();
        let d = Diagnostic::at("x.toml", text, start..start + 11, "unknown fault kind");
        assert_eq!((d.line, d.column), (2, 8));
        assert_eq!(
            d.to_string(),
            "x.toml:2:8: unknown fault kind\n  |\n2 | kind = \"partitoin\"\n  |        ^^^^^^^^^^^"
        );
    }
}
