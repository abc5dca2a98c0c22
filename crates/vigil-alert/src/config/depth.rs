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
//! and comments (and, for TOML, table headers, dotted keys, arrays, inline
//! tables and strings). Where it is unsure it counts less, never more, so a
//! document it refuses really is that deep; the parser reports whatever
//! else is wrong.

/// The deepest nesting of lists and maps a config file may have: 64
/// levels (the schema itself needs at most 8).
pub const MAX_NESTING: usize = 64;

/// The byte offset at which a YAML document nests deeper than
/// [`MAX_NESTING`], if it does.
pub(crate) fn yaml_too_deep(text: &str) -> Option<usize> {
    let mut scan = YamlScan::default();
    let mut offset = 0;
    for line in text.split('\n') {
        let found = scan.line(line.strip_suffix('\r').unwrap_or(line));
        if let Some(at) = found {
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
    fn depth(&self) -> usize {
        self.block.len() + self.flow
    }

    /// A block collection whose entries start at `column`.
    fn enter_block(&mut self, column: usize) -> bool {
        while self.block.last().is_some_and(|&c| c > column) {
            self.block.pop();
        }
        if self.block.last() != Some(&column) {
            self.block.push(column);
        }
        self.depth() > MAX_NESTING
    }

    /// Scans one line; returns the byte offset in it where the document
    /// became too deep.
    fn line(&mut self, line: &str) -> Option<usize> {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let blank =
            bytes[indent..].iter().all(|&b| is_blank(b)) || bytes.get(indent) == Some(&b'#');
        if let Some(parent) = self.scalar_parent {
            let marker = bytes.starts_with(b"---") || bytes.starts_with(b"...");
            if !marker && (blank || indent as isize > parent) {
                return None;
            }
            self.scalar_parent = None;
        }
        let mut i = 0;
        let mut node_start = false;
        if self.quote.is_none() && self.flow == 0 {
            if blank || bytes.first() == Some(&b'%') {
                return None;
            }
            if (bytes.starts_with(b"---") || bytes.starts_with(b"...")) && ends_token(bytes, 2) {
                self.block.clear();
                i = 3;
            } else {
                while self.block.last().is_some_and(|&c| c > indent) {
                    self.block.pop();
                }
                i = indent;
            }
            node_start = true;
        }
        while i < bytes.len() {
            if let Some(q) = self.quote {
                i = close_quote(bytes, i, q)?;
                self.quote = None;
                if self.flow == 0 {
                    // A quoted key (`"a b": ...`) or a value.
                    i = key_indicator(bytes, i)? + 1;
                    node_start = true;
                }
                continue;
            }
            let b = bytes[i];
            if self.flow > 0 {
                match b {
                    b'[' | b'{' => {
                        self.flow += 1;
                        if self.depth() > MAX_NESTING {
                            return Some(i);
                        }
                    }
                    b']' | b'}' => {
                        self.flow -= 1;
                        if self.flow == 0 {
                            // `[a, b]: value` is a key; anything else ends
                            // the node.
                            i = key_indicator(bytes, i + 1)? + 1;
                            node_start = true;
                            continue;
                        }
                    }
                    b'"' | b'\'' => self.quote = Some(b),
                    b'#' if i == 0 || is_blank(bytes[i - 1]) => return None,
                    _ => {}
                }
                i += 1;
                continue;
            }
            if !node_start {
                return None;
            }
            match b {
                b' ' | b'\t' => i += 1,
                b'#' => return None,
                b'-' | b'?' if ends_token(bytes, i) => {
                    if self.enter_block(i) {
                        return Some(i);
                    }
                    i += 1;
                }
                b':' if ends_token(bytes, i) => i += 1,
                b'[' | b'{' => {
                    self.flow = 1;
                    if self.depth() > MAX_NESTING {
                        return Some(i);
                    }
                    i += 1;
                }
                b'"' | b'\'' => {
                    // A key starts a mapping at this column; the quote may
                    // close on a later line (then it is a value).
                    if let Some(end) = close_quote(bytes, i + 1, b) {
                        if let Some(colon) = key_indicator(bytes, end) {
                            if self.enter_block(i) {
                                return Some(i);
                            }
                            i = colon + 1;
                            continue;
                        }
                        return None;
                    }
                    self.quote = Some(b);
                    return None;
                }
                b'|' | b'>' => {
                    let parent = self.block.last().map_or(-1, |&c| c as isize);
                    self.scalar_parent = Some(parent.min(indent as isize));
                    return None;
                }
                b'&' | b'!' => {
                    // An anchor or tag before the node.
                    while i < bytes.len() && !is_blank(bytes[i]) {
                        i += 1;
                    }
                }
                _ => {
                    // A plain scalar: a key if `: ` follows on this line.
                    match plain_key_end(bytes, i) {
                        Some(colon) => {
                            if self.enter_block(i) {
                                return Some(i);
                            }
                            i = colon + 1;
                        }
                        None => return None,
                    }
                }
            }
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
    while i < bytes.len() && is_blank(bytes[i]) {
        i += 1;
    }
    (bytes.get(i) == Some(&b':') && ends_token(bytes, i)).then_some(i)
}

/// The offset of the `:` ending a plain key that starts at `from`, if the
/// plain scalar there is a key.
fn plain_key_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b':' if ends_token(bytes, i) => return Some(i),
            b'#' if i > from && is_blank(bytes[i - 1]) => return None,
            _ => i += 1,
        }
    }
    None
}

/// The byte offset at which a TOML document nests deeper than
/// [`MAX_NESTING`] (table headers and dotted keys count one level per
/// part, arrays and inline tables one each), if it does.
pub(crate) fn toml_too_deep(text: &str) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        LineStart,
        Key,
        Value,
        After,
    }
    let bytes = text.as_bytes();
    // Open arrays (`[`) and inline tables (`{`), with the depth of their
    // entries.
    let mut stack: Vec<(u8, usize)> = Vec::new();
    let mut header = 0;
    let mut key = 0;
    let mut value_depth = 0;
    let mut mode = Mode::LineStart;
    let mut i = 0;
    let skip_line = |i: usize| {
        bytes[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| i + p)
    };
    while i < bytes.len() {
        let b = bytes[i];
        match mode {
            Mode::LineStart => match b {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => i = skip_line(i),
                b'[' => {
                    // A table header: one level per dotted part.
                    let end = skip_line(i);
                    let mut parts = 1;
                    let mut j = i;
                    while j < end {
                        match bytes[j] {
                            b'.' => parts += 1,
                            b'"' | b'\'' => j = skip_string(bytes, j) - 1,
                            b']' | b'#' => break,
                            _ => {}
                        }
                        j += 1;
                    }
                    header = parts + usize::from(bytes.get(i + 1) == Some(&b'['));
                    if header > MAX_NESTING {
                        return Some(i);
                    }
                    i = end;
                }
                _ => {
                    mode = Mode::Key;
                    key = 1;
                }
            },
            Mode::Key => {
                match b {
                    b'.' => key += 1,
                    b'"' | b'\'' => {
                        i = skip_string(bytes, i);
                        continue;
                    }
                    b'=' => {
                        let base = stack.last().map_or(header, |&(_, d)| d);
                        value_depth = base + key;
                        if value_depth > MAX_NESTING {
                            return Some(i);
                        }
                        mode = Mode::Value;
                    }
                    b'}' => {
                        stack.pop();
                        mode = Mode::After;
                    }
                    b'\n' if stack.is_empty() => mode = Mode::LineStart,
                    _ => {}
                }
                i += 1;
            }
            Mode::Value => match b {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'#' => i = skip_line(i),
                b'[' | b'{' => {
                    stack.push((b, value_depth + 1));
                    if value_depth + 1 > MAX_NESTING {
                        return Some(i);
                    }
                    if b == b'[' {
                        value_depth += 1;
                    } else {
                        mode = Mode::Key;
                        key = 1;
                    }
                    i += 1;
                }
                b']' => {
                    stack.pop();
                    mode = Mode::After;
                    i += 1;
                }
                b'"' | b'\'' => {
                    i = skip_string(bytes, i);
                    mode = Mode::After;
                }
                _ => {
                    while i < bytes.len() && !b",]}\n#".contains(&bytes[i]) {
                        i += 1;
                    }
                    mode = Mode::After;
                }
            },
            Mode::After => {
                match b {
                    b',' => match stack.last() {
                        Some(&(b'[', depth)) => {
                            value_depth = depth;
                            mode = Mode::Value;
                        }
                        Some(_) => {
                            mode = Mode::Key;
                            key = 1;
                        }
                        None => {}
                    },
                    b']' | b'}' => {
                        stack.pop();
                    }
                    b'\n' if stack.is_empty() => mode = Mode::LineStart,
                    b'#' => {
                        i = skip_line(i);
                        continue;
                    }
                    _ => {}
                }
                i += 1;
            }
        }
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
            b if b == q => {
                if !triple {
                    return j + 1;
                }
                if bytes.get(j..j + 3) == Some(&[q, q, q][..]) {
                    // Up to two more quotes may belong to the string.
                    let mut end = j + 3;
                    while end < bytes.len() && bytes[end] == q && end < j + 5 {
                        end += 1;
                    }
                    return end;
                }
                j += 1;
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
