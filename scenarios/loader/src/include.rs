//! `include = "base.toml"`: a scenario that starts from another and overrides parts of it, so
//! a counterfactual is a few lines. Rules:
//! - a top-level table or array of tables the including file defines replaces the base's
//!   whole (`[etcd]`, all `[[action]]`s, all `[[assert]]`s, ...);
//! - `[scenario]` merges key by key (a new `name` and `description`, the base's `duration`);
//! - a top-level key set in the including file's root replaces the base's table of that name
//!   (`fault = []` drops every fault of the base);
//! - the path is relative to the including file; includes nest up to 4 deep, without cycles.
//!
//! The merged document is text assembled from pieces of the files, and every piece remembers
//! where it came from, so an error in the merged scenario still points at the file, line and
//! column the user wrote.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

const MAX_DEPTH: usize = 4;

/// A piece of the merged text: `len` bytes at `at` came from `files[file]` at `offset`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    at: usize,
    len: usize,
    file: usize,
    offset: usize,
}

/// The merged text of a scenario and where each byte came from.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub text: String,
    /// (path as shown, full text) of every file involved.
    files: Vec<(String, String)>,
    pieces: Vec<Piece>,
}

impl Source {
    fn single(shown: String, text: String) -> Source {
        let len = text.len();
        Source {
            text: text.clone(),
            files: vec![(shown, text)],
            pieces: vec![Piece { at: 0, len, file: 0, offset: 0 }],
        }
    }

    /// Whether the text is one file's, unchanged.
    pub fn is_single_file(&self) -> bool {
        self.files.len() == 1
    }

    /// Appends `range` of `from`'s text, keeping where its bytes came from.
    fn append(&mut self, from: &Source, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        // Each file is kept once; `from`'s file indices are mapped onto ours.
        let remap: Vec<usize> = from
            .files
            .iter()
            .map(|f| match self.files.iter().position(|g| g.0 == f.0) {
                Some(i) => i,
                None => {
                    self.files.push(f.clone());
                    self.files.len() - 1
                }
            })
            .collect();
        let remap = |f: usize| remap[f];
        for p in &from.pieces {
            let (s, e) = (p.at.max(range.start), (p.at + p.len).min(range.end));
            if s >= e {
                continue;
            }
            self.pieces.push(Piece {
                at: self.text.len() + (s - range.start),
                len: e - s,
                file: remap(p.file),
                offset: p.offset + (s - p.at),
            });
        }
        self.text.push_str(&from.text[range]);
    }

    fn push_newline(&mut self) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            // A synthetic newline maps nowhere; errors never point at it.
            self.text.push('\n');
        }
    }

    /// Maps a diagnostic on the merged text back to the file it came from.
    pub fn remap(&self, d: Diagnostic) -> Diagnostic {
        if self.is_single_file() || d.line == 0 {
            return d;
        }
        let at = offset_of(&self.text, d.line, d.column).unwrap_or(self.text.len());
        let width = d.excerpt.as_ref().map_or(1, |e| e.2);
        // A place no file wrote (a newline the merge added, the end of the text) is shown at the
        // end of the piece before it: a line of the merged text is no line of any file.
        let Some(p) = self.pieces.iter().rev().find(|p| p.at <= at) else {
            return Diagnostic::whole_file(&self.files[0].0, d.message);
        };
        let (shown, text) = &self.files[p.file];
        let mut off = p.offset + (at - p.at).min(p.len.saturating_sub(1));
        while !text.is_char_boundary(off) {
            off -= 1;
        }
        let end = text[off..].char_indices().nth(width).map_or(text.len(), |(i, _)| off + i);
        Diagnostic::at(shown, text, off..end, d.message)
    }
}

fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line - 2)?.0 + 1 };
    let rest = &text[start..];
    Some(start + rest.char_indices().nth(column - 1).map_or(rest.len(), |(i, _)| i))
}

/// A top-level part of a TOML document: the root keys (`key: None`), or a run of lines from a
/// header (`[etcd]`, `[[node]]`, `[node.postgres]`) up to the next header.
#[derive(Debug)]
struct Section {
    key: Option<String>,
    range: Range<usize>,
}

/// The top-level key a header line opens, if the line is a header.
fn header_key(line: &str) -> Option<String> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let inner = t.trim_start_matches('[');
    let end = inner.find(']')?;
    let name = inner[..end].trim();
    let first = name.split('.').next()?.trim().trim_matches('"').trim_matches('\'');
    (!first.is_empty()).then(|| first.to_string())
}

/// Splits a document into sections, skipping header-looking lines inside multi-line strings.
fn sections(text: &str) -> Vec<Section> {
    let mut out = vec![Section { key: None, range: 0..0 }];
    let mut in_string: Option<&str> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if in_string.is_none()
            && let Some(key) = header_key(line)
        {
            out.push(Section { key: Some(key), range: pos..pos });
        }
        for delim in ["\"\"\"", "'''"] {
            let n = line.matches(delim).count();
            if n % 2 == 1 {
                in_string = match in_string {
                    Some(d) if d == delim => None,
                    None => Some(delim),
                    other => other,
                };
            }
        }
        pos += line.len();
        out.last_mut().expect("root section").range.end = pos;
    }
    out
}

/// Key lines of a section body: (key, line range including continuation lines).
fn key_lines(text: &str, range: Range<usize>) -> Vec<(Option<String>, Range<usize>)> {
    let mut out: Vec<(Option<String>, Range<usize>)> = Vec::new();
    let mut in_string = false;
    let mut pos = range.start;
    for line in text[range.clone()].split_inclusive('\n') {
        let t = line.trim_start();
        let key = (!in_string && !t.starts_with('#') && !t.starts_with('['))
            .then(|| t.split('=').next().filter(|_| t.contains('=')).map(|k| k.trim().to_string()))
            .flatten();
        match (&key, out.last_mut()) {
            (None, Some(last)) if in_string => last.1.end = pos + line.len(),
            _ => out.push((key, pos..pos + line.len())),
        }
        if line.matches("\"\"\"").count() % 2 == 1 || line.matches("'''").count() % 2 == 1 {
            in_string = !in_string;
        }
        pos += line.len();
    }
    out
}

/// The value of a root-level `include = "..."`, with its span.
fn include_of(text: &str, root: &Range<usize>) -> Option<(String, Range<usize>)> {
    for (key, r) in key_lines(text, root.clone()) {
        if key.as_deref() == Some("include") {
            let line = &text[r.clone()];
            let q1 = line.find('"')?;
            let q2 = q1 + 1 + line[q1 + 1..].find('"')?;
            return Some((line[q1 + 1..q2].to_string(), r.start + q1..r.start + q2 + 1));
        }
    }
    None
}

/// The largest scenario file (an including one or an included one): hundreds of times the
/// largest shipped scenario, and small enough that reading and parsing it stays cheap.
/// `pgsim validate /dev/zero` stops reading here instead of growing without end.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A file's text, read at most `MAX_FILE_BYTES` (+1, to tell that it is longer). A file that is
/// not UTF-8 is reported at the line and column of its first invalid byte.
fn read(path: &Path, shown: &str) -> Result<String, Diagnostic> {
    use std::io::Read;
    let whole = |msg: String| Diagnostic::whole_file(shown, msg);
    let file = std::fs::File::open(path).map_err(|e| whole(format!("cannot read scenario: {e}")))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(whole("cannot read scenario: it is a directory".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| whole(format!("cannot read scenario: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(whole(format!("scenario is larger than {} KiB", MAX_FILE_BYTES / 1024)));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bad = e.as_bytes()[at];
        let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let replacement = char::REPLACEMENT_CHARACTER.len_utf8();
        Diagnostic::at(
            shown,
            &lossy,
            at..at + replacement,
            format!("scenario is not UTF-8 (byte 0x{bad:02X} at offset {at})"),
        )
    })
}

/// What an `include` may name: an existing regular file of at most `MAX_FILE_BYTES` (not a
/// directory, a device such as /dev/zero, or a pipe). The error is the including line's.
fn check_included(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("included file {} does not exist", path.display()),
        _ => format!("cannot read included file {}: {e}", path.display()),
    })?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
        return Err(format!("included file {} is {what}; include names a scenario file", path.display()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("included file {} is larger than {} KiB", path.display(), MAX_FILE_BYTES / 1024));
    }
    Ok(())
}

/// A TOML syntax error, located in the file that has it (the merged text's lines are nobody's).
fn check_syntax(shown: &str, text: &str) -> Result<(), Diagnostic> {
    let Err(e) = toml::from_str::<toml::Table>(text) else { return Ok(()) };
    let msg = e.message().trim().to_string();
    Err(match e.span() {
        Some(span) => Diagnostic::at(shown, text, span, msg),
        None => Diagnostic::at(shown, text, 0..0, msg),
    })
}

/// Reads a scenario file and everything it includes, merged.
pub fn assemble(path: &Path) -> Result<Source, Diagnostic> {
    assemble_at(path, path.display().to_string(), &mut Vec::new())
}

fn assemble_at(path: &Path, shown: String, stack: &mut Vec<PathBuf>) -> Result<Source, Diagnostic> {
    let text = read(path, &shown)?;
    let secs = sections(&text);
    let Some((inc, span)) = include_of(&text, &secs[0].range) else {
        if !stack.is_empty() {
            // Only an included file is checked alone: a file on its own is parsed once, whole.
            check_syntax(&shown, &text)?;
        }
        return Ok(Source::single(shown, text));
    };
    check_syntax(&shown, &text)?;
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if stack.len() >= MAX_DEPTH {
        return Err(Diagnostic::at(&shown, &text, span, format!("includes nest deeper than {MAX_DEPTH}")));
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&inc);
    let base_canon = base_path.canonicalize().unwrap_or_else(|_| base_path.clone());
    if base_canon == canon || stack.contains(&base_canon) {
        return Err(Diagnostic::at(&shown, &text, span, format!("{inc:?} includes itself (a cycle)")));
    }
    check_included(&base_path).map_err(|msg| Diagnostic::at(&shown, &text, span.clone(), msg))?;
    stack.push(canon);
    let base = assemble_at(&base_path, base_path.display().to_string(), stack).map_err(|mut d| {
        let including = Diagnostic::at(&shown, &text, span.clone(), "");
        if d.line == 0 {
            // A whole-file error of the included file (unreadable) is the including line's.
            return Diagnostic { message: d.to_string(), ..including };
        }
        d.message = format!("{} (in a file included at {}:{}:{})", d.message, shown, including.line, including.column);
        d
    })?;
    stack.pop();
    let own = Source::single(shown, text);
    Ok(merge(&base, &own))
}

/// `own` laid over `base` by the rules above, as text (both are whole documents; an `include`
/// line in `own` is dropped, not followed).
pub(crate) fn overlay(base: &str, own: &str) -> String {
    merge(&Source::single("base".into(), base.into()), &Source::single("own".into(), own.into())).text
}

/// The base with the including file's sections laid over it.
fn merge(base: &Source, own: &Source) -> Source {
    let base_secs = sections(&base.text);
    let own_secs = sections(&own.text);
    let own_root_keys: Vec<String> =
        key_lines(&own.text, own_secs[0].range.clone()).into_iter().filter_map(|(k, _)| k).collect();
    let overridden: Vec<&str> =
        own_secs.iter().filter_map(|s| s.key.as_deref()).chain(own_root_keys.iter().map(String::as_str)).collect();
    let mut out = Source::default();
    // Root keys: the including file's (without `include`), then the base's.
    for (key, r) in key_lines(&own.text, own_secs[0].range.clone()) {
        if key.as_deref() != Some("include") {
            out.append(own, r);
        }
    }
    out.push_newline();
    // The base's root keys, but not one the including file sets again or replaces with a table
    // (a base's `fault = []` under an including file's [[fault]]s would define `fault` twice).
    for (key, r) in key_lines(&base.text, base_secs[0].range.clone()) {
        if !key.as_deref().is_some_and(|k| overridden.contains(&k)) {
            out.append(base, r);
        }
    }
    out.push_newline();
    for s in &own_secs[1..] {
        if s.key.as_deref() == Some("scenario") {
            // [scenario] merges key by key: the including file's keys, then the base's others.
            out.append(own, s.range.clone());
            out.push_newline();
            let own_keys: Vec<String> = key_lines(&own.text, s.range.clone()).into_iter().filter_map(|k| k.0).collect();
            for b in base_secs.iter().filter(|b| b.key.as_deref() == Some("scenario")) {
                for (key, r) in key_lines(&base.text, b.range.clone()).into_iter().skip(1) {
                    if key.as_ref().is_some_and(|k| !own_keys.contains(k)) {
                        out.append(base, r);
                        out.push_newline();
                    }
                }
            }
        }
    }
    for s in &base_secs[1..] {
        let key = s.key.as_deref().expect("sections after the root have a key");
        if key == "scenario" && overridden.contains(&"scenario") {
            continue;
        }
        if key != "scenario" && overridden.contains(&key) {
            continue;
        }
        out.append(base, s.range.clone());
        out.push_newline();
    }
    for s in &own_secs[1..] {
        if s.key.as_deref() != Some("scenario") {
            out.append(own, s.range.clone());
            out.push_newline();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = "[scenario]\nname = \"base\"\ndescription = \"\"\"two\nlines\"\"\"\nduration = \"10s\"\n\n[etcd]\npre-vote = false\n\n[[assert]]\nname = \"a\"\n\n[[node]]\nname = \"n1\"\n[node.postgres]\ncluster = \"c\"\n\n[[assert]]\nname = \"b\"\n";

    #[test]
    fn sections_replace_whole_and_scenario_merges_by_key() {
        let dir = std::env::temp_dir().join(format!("pgsim-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "base.toml", BASE);
        let child = write(
            &dir,
            "child.toml",
            "include = \"base.toml\"\nnode = []\n\n[scenario]\nname = \"child\"\n\n[etcd]\npre-vote = true\n\n[[assert]]\nname = \"c\"\n",
        );
        let src = assemble(&child).unwrap();
        let v: toml::Table = toml::from_str(&src.text).unwrap_or_else(|e| panic!("{e}\n{}", src.text));
        assert_eq!(v["scenario"]["name"].as_str(), Some("child"));
        assert_eq!(v["scenario"]["duration"].as_str(), Some("10s"), "kept from the base");
        assert_eq!(v["scenario"]["description"].as_str(), Some("two\nlines"), "multi-line value kept whole");
        assert_eq!(v["etcd"]["pre-vote"].as_bool(), Some(true));
        let asserts: Vec<&str> = v["assert"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(asserts, vec!["c"], "all of the base's asserts are replaced");
        assert_eq!(v["node"].as_array().map(Vec::len), Some(0), "`node = []` in the root drops the base's nodes");
        let kept = assemble(&write(&dir, "keep.toml", "include = \"base.toml\"\n")).unwrap();
        let v: toml::Table = toml::from_str(&kept.text).unwrap();
        assert_eq!(v["node"][0]["postgres"]["cluster"].as_str(), Some("c"), "untouched sections kept with sub-tables");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_point_into_the_file_that_has_the_mistake() {
        let dir = std::env::temp_dir().join(format!("pgsim-include-err-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "base.toml", BASE);
        let child = write(&dir, "child.toml", "include = \"base.toml\"\n\n[etcd]\npre-vote = \"yes\"\n");
        let src = assemble(&child).unwrap();
        let err = toml::from_str::<toml::Table>(&src.text).err();
        assert!(err.is_none(), "still TOML; the type error comes from the loader");
        let at = src.text.find("\"yes\"").unwrap();
        let d = Diagnostic::at("merged", &src.text, at..at + 5, "expected a boolean");
        let d = src.remap(d);
        assert_eq!((d.path.ends_with("child.toml"), d.line, d.column), (true, 4, 12), "{d}");
        let cyc = write(&dir, "cycle.toml", "include = \"cycle.toml\"\n");
        assert!(assemble(&cyc).unwrap_err().message.contains("cycle"));
        write(&dir, "broken.toml", "[scenario]\nname = \"b\"\nduration = \"10s\n");
        let d = assemble(&write(&dir, "inc-broken.toml", "include = \"broken.toml\"\n")).unwrap_err();
        assert_eq!((d.path.ends_with("broken.toml"), d.line), (true, 3), "located in the included file: {d}");
        assert!(d.message.contains("included at") && d.message.contains("inc-broken.toml:1:11"), "{d}");
        let missing = write(&dir, "missing.toml", "include = \"nope.toml\"\n");
        let d = assemble(&missing).unwrap_err();
        assert_eq!((d.line, d.column), (1, 11), "points at the path: {d}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
