//! How deeply a YAML document nests flow collections, measured before it
//! is parsed.
//!
//! The YAML parser looks at every open flow collection (`[`, `{`) on each
//! token, so `[[[[...]]]]` costs time quadratic in its depth: a 200 KB line
//! of brackets took half a minute to reject. Block nesting costs it nothing
//! more and is stopped by serde_yaml_ng at 128 levels; the `toml` crate
//! stops any TOML nesting at 80 levels on its own. So the loader only counts
//! YAML's `[` and `{`, in one linear scan, and refuses a document nested
//! more than [`MAX_NESTING`] levels deep before the parser sees it.
//!
//! The scan skips quoted strings, comments, block scalars and brackets
//! inside plain scalars. Where it is unsure it counts less (the one
//! exception: a `[` or `{` opening a continuation line of a multi-line
//! plain scalar is counted), so a document it refuses is in practice that
//! deep; the parser reports whatever else is wrong.

/// The deepest nesting of YAML flow lists and maps (`[`, `{`) a config file
/// may have: 64 levels (the schema itself needs at most 8).
pub const MAX_NESTING: usize = 64;

/// The byte offset at which a YAML document nests `[`/`{` deeper than
/// [`MAX_NESTING`], if it does.
pub(crate) fn yaml_too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut depth, mut line_start, mut i) = (0, 0, 0);
    while i < b.len() {
        if i > 0 && b[i - 1] == b'\n' {
            line_start = i;
        }
        // Whether a node starts at `i`: in a flow collection after `[`, `{`,
        // `,` or `:`; in a block after a blank following `:`, `-` or `?`;
        // or first on its line.
        let node_start = || {
            let before = &b[line_start..i];
            let trimmed = before.trim_ascii_end();
            let blank = trimmed.len() < before.len();
            let indicators: &[u8] = if depth > 0 { b"[{,:" } else { b":-?" };
            let after = |c: &u8| indicators.contains(c) && (blank || depth > 0);
            trimmed.last().is_none_or(after)
        };
        match b[i] {
            b'[' | b'{' if depth > 0 || node_start() => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = usize::saturating_sub(depth, 1),
            b'#' if i == line_start || b[i - 1].is_ascii_whitespace() => i = line_end(b, i),
            q @ (b'"' | b'\'') if node_start() => i = quote_end(b, i, q),
            b'|' | b'>' if depth == 0 && node_start() => {
                let indent = b[line_start..].iter().take_while(|&&c| c == b' ').count();
                i = block_scalar_end(b, i, indent);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The offset of the `\n` ending the line that holds `i`, or the text's end.
fn line_end(b: &[u8], i: usize) -> usize {
    let newline = b[i..].iter().position(|&c| c == b'\n');
    newline.map_or(b.len(), |p| i + p)
}

/// The offset of the quote `q` closing the scalar it opens at `i` (on this
/// line or a later one), or the text's end.
fn quote_end(b: &[u8], i: usize, q: u8) -> usize {
    let mut i = i + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 2,
            b'\'' if q == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == q => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// The offset of the `\n` ending the last line of a block scalar whose `|`
/// or `>` is at `i`, on a line indented `indent` spaces: its content is
/// the following lines indented more, and blank lines.
fn block_scalar_end(b: &[u8], i: usize, indent: usize) -> usize {
    let mut end = line_end(b, i);
    while end < b.len() {
        let next = line_end(b, end + 1);
        let line = &b[end + 1..next];
        let spaces = line.iter().take_while(|&&c| c == b' ').count();
        if spaces <= indent && !line.trim_ascii().is_empty() {
            break;
        }
        end = next;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_flow(n: usize) -> String {
        format!("rules: {}{}\n", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn flow_depth_is_counted_up_to_the_limit() {
        assert_eq!(yaml_too_deep(&nested_flow(MAX_NESTING)), None);
        // The 65th bracket is refused.
        let text = nested_flow(100);
        assert_eq!(yaml_too_deep(&text), Some("rules: ".len() + MAX_NESTING));
        let maps = format!("a: {}1{}\n", "{a: ".repeat(100), "}".repeat(100));
        assert_eq!(yaml_too_deep(&maps), Some("a: ".len() + 4 * MAX_NESTING));
        let lines = format!("a:\n{}", "  - [\n".repeat(100));
        assert!(yaml_too_deep(&lines).is_some());
        // Closed collections give their depth back.
        let siblings = "a:\n  b:\n    c: [1, {d: 2}]\n".repeat(1000);
        assert_eq!(yaml_too_deep(&siblings), None);
    }

    #[test]
    fn brackets_in_strings_comments_and_scalars_do_not_count() {
        // Texts separated by `¦`, `@` standing for 200 `[`.
        let yaml = r#"a: '@'
¦a: "@\"@"
¦a: 'it''s @'
¦a: 1 # @
¦# @
¦a: x@
¦a: x @
¦- key: it's @
¦a: |
  @
  - - - -
b: 1
¦a: >-

    @
b: 1
¦- a: |
    @
  b: 1
¦a: "multi
  @
  line"
b: 1
¦a: ["@", '@', "x\\"]
"#;
        for text in yaml.split('¦').map(|t| t.replace('@', &"[".repeat(200))) {
            assert_eq!(yaml_too_deep(&text), None, "{text}");
        }
    }
}
