//! How deeply a document nests, measured before it is parsed.
//!
//! The YAML parser tracks every open flow collection (`[`, `{`) on each
//! token, so `[[[[...]]]]` costs time quadratic in its depth: a 200 KB line
//! of brackets took half a minute to reject. A config never needs more than
//! a few levels, so the loader first scans the text once, in linear time,
//! and refuses a document nested more than [`MAX_NESTING`] levels deep
//! before the parser sees it.
//!
//! The scan is a light lexer, not a parser: it follows block indentation,
//! `- ` entries, `key: ` pairs, flow brackets, quoted strings, block scalars
//! and comments (and, for TOML, table headers, dotted keys, brackets and
//! strings). Where it is unsure it counts less, never more, so a document
//! it refuses really is that deep; the parser reports whatever else is
//! wrong.

/// The deepest nesting of lists and maps a config file may have: 64
/// levels (the schema itself needs at most 8).
pub const MAX_NESTING: usize = 64;

/// The byte offset at which a YAML document nests deeper than
/// [`MAX_NESTING`], if it does.
pub(crate) fn yaml_too_deep(text: &str) -> Option<usize> {
    let mut scan = YamlScan::default();
    let mut offset = 0;
    for line in text.split('\n') {
        if let Some(at) = scan.line(line.strip_suffix('\r').unwrap_or(line).as_bytes()) {
            return Some(offset + at);
        }
        offset += line.len() + 1;
    }
    None
}

/// The state carried from one YAML line to the next.
#[derive(Default)]
struct YamlScan {
    /// Columns of the open block collections, innermost last.
    block: Vec<usize>,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// An open quoted scalar (`'` or `"`) continued on the next line.
    quote: Option<u8>,
    /// Inside a block scalar (`|`, `>`): lines indented more than this
    /// (or blank) are its content. `-1` at the top level.
    scalar_parent: Option<isize>,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether an indicator at `i` is followed by a blank or the line's end.
fn ends_token(bytes: &[u8], i: usize) -> bool {
    bytes.get(i + 1).is_none_or(|&b| is_blank(b))
}

impl YamlScan {
    /// Enters a block collection whose entries start at `column`; whether
    /// the document is now too deep.
    fn enter_block(&mut self, column: usize) -> bool {
        self.block.retain(|&c| c <= column);
        if self.block.last() != Some(&column) {
            self.block.push(column);
        }
        self.block.len() + self.flow > MAX_NESTING
    }

    /// Scans one line; returns the byte offset in it where the document
    /// became too deep.
    fn line(&mut self, b: &[u8]) -> Option<usize> {
        let indent = b.iter().take_while(|&&c| c == b' ').count();
        let blank = b[indent..].iter().all(|&c| is_blank(c)) || b.get(indent) == Some(&b'#');
        let marker = (b.starts_with(b"---") || b.starts_with(b"...")) && ends_token(b, 2);
        if let Some(parent) = self.scalar_parent {
            if !marker && (blank || indent as isize > parent) {
                return None;
            }
            self.scalar_parent = None;
        }
        let mut i = 0;
        if let Some(q) = self.quote {
            i = close_quote(b, 0, q)?;
            self.quote = None;
            if self.flow == 0 {
                return None;
            }
        } else if self.flow == 0 {
            if blank || b.first() == Some(&b'%') {
                return None;
            }
            if marker {
                self.block.clear();
                i = 3;
            } else {
                self.block.retain(|&c| c <= indent);
            }
            // The node starts of the line: entries, keys, then a value.
            loop {
                while b.get(i).is_some_and(|&c| is_blank(c)) {
                    i += 1;
                }
                let c = *b.get(i)?;
                let key_end = match c {
                    b'-' | b'?' if ends_token(b, i) => Some(i),
                    b'[' | b'{' => break,
                    b'"' | b'\'' => match close_quote(b, i + 1, c) {
                        Some(end) => Some(key_indicator(b, end)?),
                        None => {
                            self.quote = Some(c);
                            return None;
                        }
                    },
                    b'|' | b'>' => {
                        let parent = self.block.last().map_or(-1, |&c| c as isize);
                        self.scalar_parent = Some(parent.min(indent as isize));
                        return None;
                    }
                    b'&' | b'!' => {
                        // An anchor or tag before the node.
                        while b.get(i).is_some_and(|&c| !is_blank(c)) {
                            i += 1;
                        }
                        None
                    }
                    b'#' => return None,
                    _ => Some(plain_key_end(b, i)?),
                };
                if let Some(end) = key_end {
                    if self.enter_block(i) {
                        return Some(i);
                    }
                    i = end + 1;
                }
            }
        }
        while i < b.len() {
            match b[i] {
                b'[' | b'{' => {
                    self.flow += 1;
                    if self.block.len() + self.flow > MAX_NESTING {
                        return Some(i);
                    }
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    if self.flow == 0 {
                        return None;
                    }
                }
                q @ (b'"' | b'\'') => match close_quote(b, i + 1, q) {
                    Some(end) => i = end - 1,
                    None => {
                        self.quote = Some(q);
                        return None;
                    }
                },
                b'#' if i == 0 || is_blank(b[i - 1]) => return None,
                _ => {}
            }
            i += 1;
        }
        None
    }
}

/// The offset just after the quote `q` that closes a scalar whose text
/// starts at `from`, if it closes on this line.
fn close_quote(bytes: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if q == b'"' => i += 2,
            b'\'' if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == q => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// After a key's text ending at `i`: the offset of its `:` if blanks and
/// then `: ` (or `:` at the end) follow.
fn key_indicator(bytes: &[u8], mut i: usize) -> Option<usize> {
    while bytes.get(i).is_some_and(|&b| is_blank(b)) {
        i += 1;
    }
    (bytes.get(i) == Some(&b':') && ends_token(bytes, i)).then_some(i)
}

/// The offset of the `:` ending a plain key that starts at `from`, if the
/// plain scalar there is a key.
fn plain_key_end(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .take_while(|&i| !(bytes[i] == b'#' && i > from && is_blank(bytes[i - 1])))
        .find(|&i| bytes[i] == b':' && ends_token(bytes, i))
}

/// The byte offset at which a TOML document nests deeper than
/// [`MAX_NESTING`], if it does: a table header counts one level per
/// dotted part (one more for `[[`), a top-level key one per part, and
/// each open array or inline table one (dotted keys inside inline tables
/// are not counted).
pub(crate) fn toml_too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let eol = |i: usize| {
        b[i..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |p| i + p)
    };
    let (mut header, mut key, mut flow, mut in_key) = (0, 0, 0, true);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                key = key.max(usize::from(in_key));
                i = skip_string(b, i);
                continue;
            }
            b'#' => {
                i = eol(i);
                continue;
            }
            b'[' if in_key && key == 0 => {
                let end = eol(i);
                let (mut parts, mut j) = (1, i);
                while j < end && !matches!(b[j], b']' | b'#') {
                    match b[j] {
                        b'.' => parts += 1,
                        b'"' | b'\'' => j = skip_string(b, j) - 1,
                        _ => {}
                    }
                    j += 1;
                }
                header = parts + usize::from(b.get(i + 1) == Some(&b'['));
                if header > MAX_NESTING {
                    return Some(i);
                }
                i = end;
                continue;
            }
            b'\n' if flow == 0 => (in_key, key) = (true, 0),
            b'.' if in_key => key += 1,
            b'=' if in_key => {
                in_key = false;
                if header + key > MAX_NESTING {
                    return Some(i);
                }
            }
            b'[' | b'{' if !in_key => {
                flow += 1;
                if header + key + flow > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => flow = usize::saturating_sub(flow, 1),
            b' ' | b'\t' | b'\r' => {}
            _ => key = key.max(usize::from(in_key)),
        }
        i += 1;
    }
    None
}

/// The offset just after the TOML string starting at `i` (basic or
/// literal, one-line or multi-line), or the end of the text.
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let q = bytes[i];
    let triple = bytes.get(i..i + 3) == Some(&[q, q, q][..]);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < bytes.len() {
        match bytes[j] {
            b'\\' if q == b'"' => j += 2,
            b'\n' if !triple => return j,
            b if b == q && !triple => return j + 1,
            b if b == q && bytes.get(j..j + 3) == Some(&[q, q, q][..]) => {
                // Up to two more quotes may belong to the string.
                let extra = bytes[j + 3..].iter().take(2).take_while(|&&c| c == q);
                return j + 3 + extra.count();
            }
            _ => j += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_flow(n: usize) -> String {
        format!("rules: {}{}\n", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn yaml_flow_depth_is_counted_past_the_block_levels() {
        assert_eq!(yaml_too_deep(&nested_flow(MAX_NESTING - 1)), None);
        // `rules:` is one level, so the 64th bracket is the 65th level.
        let text = nested_flow(100);
        assert_eq!(
            yaml_too_deep(&text),
            Some("rules: ".len() + MAX_NESTING - 1)
        );
    }

    #[test]
    fn yaml_block_depth_follows_entries_and_indentation() {
        let dashes = format!("rules:\n  {}x\n", "- ".repeat(MAX_NESTING));
        let at = yaml_too_deep(&dashes).unwrap();
        assert_eq!(&dashes[at..at + 2], "- ");
        let fine = format!("rules:\n  {}x\n", "- ".repeat(MAX_NESTING - 1));
        assert_eq!(yaml_too_deep(&fine), None);
        let mut indented = String::new();
        for level in 0..=MAX_NESTING {
            indented.push_str(&" ".repeat(level));
            indented.push_str("k:\n");
        }
        assert!(yaml_too_deep(&indented).is_some());
        // Closing levels by dedenting keeps the depth down.
        let mut siblings = String::new();
        for _ in 0..1000 {
            siblings.push_str("a:\n  b:\n    c: [1, {d: 2}]\n");
        }
        assert_eq!(yaml_too_deep(&siblings), None);
    }

    #[test]
    fn brackets_in_strings_comments_and_scalars_do_not_count() {
        // Texts separated by `¦`, `@` standing for 200 `[`.
        let yaml = r#"a: '@'
¦a: "@\"@"
¦a: 1 # @
¦# @
¦a: x@
¦a: |
  @
  - - - -
b: 1
¦a: >-

    @
b: 1
¦a: "multi
  @
  line"
b: 1
¦a: ["@", '@']
"#;
        let toml = r#"a = '@'
¦a = "@\""
¦a = """
@
"""
¦a = '''@'''
¦a = 1 # @
¦# @
[t]
b = [1, [2], {c = "@"}]
"#;
        type Scan = fn(&str) -> Option<usize>;
        for (too_deep, texts) in [(yaml_too_deep as Scan, yaml), (toml_too_deep, toml)] {
            for text in texts.split('¦').map(|t| t.replace('@', &"[".repeat(200))) {
                assert_eq!(too_deep(&text), None, "{text}");
            }
        }
    }

    #[test]
    fn toml_depth_counts_arrays_tables_and_dotted_keys() {
        let n = 100;
        let arrays = format!("rules = {}{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(
            toml_too_deep(&arrays),
            Some("rules = ".len() + MAX_NESTING - 1)
        );
        let tables = format!("rules = {}{}\n", "{a = ".repeat(n), "}".repeat(n));
        assert!(toml_too_deep(&tables).is_some());
        let dotted = format!("{} = 1\n", vec!["a"; n].join("."));
        assert!(toml_too_deep(&dotted).is_some());
        let header = format!("[{}]\n", vec!["a"; n].join("."));
        assert_eq!(toml_too_deep(&header), Some(0));
        let fine = format!("rules = {}{}\n", "[".repeat(10), "]".repeat(10));
        assert_eq!(toml_too_deep(&fine), None);
    }
}
