//! The code blocks of the READMEs and `docs/`: the Rust ones are doctests
//! of this crate (`src/lib.rs` includes every file that has one), and the
//! alert rule files in YAML and TOML load with vigil's config loader, so
//! no example in the documentation can go stale unnoticed.

#![cfg(all(feature = "alert-config", feature = "rulesets"))]

use std::path::{Path, PathBuf};

use vigil::alert::config::AlertConfig;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced code block: its info string (`rust,no_run`, `yaml`, ``), the
/// line its fence opens on (from 1) and its text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_owned(),
                        line: index + 1,
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed.starts_with("```") {
                    out.extend(open.take());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    out
}

/// The markdown files whose code blocks are documentation: the workspace
/// README, every crate README and every file in `docs/`.
fn markdown_files() -> Vec<String> {
    let mut files = vec!["README.md".to_owned()];
    for dir in ["docs", "crates"] {
        let mut entries: Vec<_> = std::fs::read_dir(workspace().join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if dir == "docs" && name.ends_with(".md") {
                files.push(format!("docs/{name}"));
            } else if dir == "crates" && path.join("README.md").is_file() {
                files.push(format!("crates/{name}/README.md"));
            }
        }
    }
    files
}

/// The languages rustdoc leaves alone; anything else (and no tag at all)
/// is compiled as Rust.
const NOT_RUST: [&str; 7] = ["text", "yaml", "toml", "json", "sh", "promql", "console"];

fn is_rust(info: &str) -> bool {
    let language = info.split(',').next().unwrap_or("").trim();
    !NOT_RUST.contains(&language)
}

/// The `src/lib.rs` of every crate under `crates/`.
fn crate_libs() -> Vec<String> {
    let mut libs = Vec::new();
    for entry in std::fs::read_dir(workspace().join("crates")).expect("crates/ is readable") {
        let lib = entry.expect("a directory entry").path().join("src/lib.rs");
        if let Ok(text) = std::fs::read_to_string(lib) {
            libs.push(text);
        }
    }
    libs
}

/// Every Markdown file with Rust blocks runs them as doctests: of this
/// crate, or, for a crate's README, of that crate.
#[test]
fn every_file_with_rust_blocks_is_a_doctest_of_this_crate() {
    let lib = read("crates/vigil/src/lib.rs");
    let mut missing = Vec::new();
    let mut rust_blocks = 0;
    for file in markdown_files() {
        let rust: Vec<usize> = blocks(&read(&file))
            .iter()
            .filter(|block| is_rust(&block.info))
            .map(|block| block.line)
            .collect();
        if rust.is_empty() {
            continue;
        }
        rust_blocks += rust.len();
        // Included from `crates/vigil/src/`, so three levels up for the
        // workspace's files and one for the crates'.
        let include = match file.strip_prefix("crates/") {
            Some(crate_file) if crate_file.starts_with("vigil/") => "../README.md".to_owned(),
            Some(crate_file) => format!("../../{crate_file}"),
            None => format!("../../../{file}"),
        };
        // A crate's README, or a page of docs/ about one crate, may instead
        // run as that crate's doctest (vigil-alert's README uses that
        // crate's feature names; docs/load.md is vigil-load's).
        let own_crate = match file.strip_prefix("crates/") {
            Some(crate_file) => crate_file.strip_suffix("/README.md").is_some_and(|name| {
                read(&format!("crates/{name}/src/lib.rs"))
                    .contains("#[doc = include_str!(\"../README.md\")]")
            }),
            None => crate_libs()
                .iter()
                .any(|lib| lib.contains(&format!("#[doc = include_str!(\"../../../{file}\")]"))),
        };
        if !own_crate && !lib.contains(&format!("#[doc = include_str!(\"{include}\")]")) {
            missing.push(format!("{file} (Rust blocks at lines {rust:?})"));
        }
    }
    assert!(
        missing.is_empty(),
        "not included as doctests in crates/vigil/src/lib.rs (nor in the lib.rs of the crate they document): {missing:#?}"
    );
    assert!(rust_blocks >= 8, "only {rust_blocks} Rust blocks found");
}

/// The rule file examples: every YAML and TOML block of the READMEs and
/// `docs/` that is an alert config file. (A block that is one `Rule` in its
/// serde form, as in `crates/vigil-alert/README.md`, is not a file: its
/// `thresholds` are a list, where a file has a map.)
#[test]
fn alert_rule_examples_load() {
    const FILE_KEYS: [&str; 5] = [
        "rulesets:",
        "rules:",
        "routing:",
        "inhibit_rules:",
        "silences:",
    ];
    const TOML_TABLES: [&str; 5] = [
        "[[rules]]",
        "[routing]",
        "[[silences]]",
        "[[inhibit_rules]]",
        "[rulesets",
    ];
    let mut loaded = Vec::new();
    for file in markdown_files() {
        for block in blocks(&read(&file)) {
            let place = format!("{file}:{}", block.line);
            let is_config = |keys: &[&str]| {
                block
                    .text
                    .lines()
                    .any(|line| keys.iter().any(|key| line.starts_with(key)))
            };
            let config = match block.info.as_str() {
                "yaml" if is_config(&FILE_KEYS) => AlertConfig::from_yaml_str(&block.text, &place),
                "toml" if is_config(&TOML_TABLES) => {
                    AlertConfig::from_toml_str(&block.text, &place)
                }
                _ => continue,
            };
            let config = config.unwrap_or_else(|e| panic!("{e}\n{}", block.text));
            let rules = config.rules().len();
            if let Err(e) = config.into_engine() {
                panic!("{place}: {e}");
            }
            loaded.push((place, rules));
        }
    }
    // The complete example, the rule sets and the TOML file of
    // docs/alert-rules.md.
    assert!(loaded.len() >= 3, "{loaded:?}");
    assert!(loaded.iter().all(|(_, rules)| *rules > 0), "{loaded:?}");
}

#[test]
fn the_complete_example_is_the_yaml_fixture() {
    let docs = read("docs/alert-rules.md");
    let example = blocks(&docs)
        .into_iter()
        .find(|block| block.info == "yaml" && block.text.starts_with("# alerts.yml"))
        .expect("the complete example in docs/alert-rules.md");
    let example = AlertConfig::from_yaml_str(&example.text, "docs/alert-rules.md").unwrap();
    let fixture =
        AlertConfig::load(workspace().join("crates/vigil-alert/tests/fixtures/rules.yml")).unwrap();
    assert_eq!(example.rules(), fixture.rules());
    assert_eq!(example.routing(), fixture.routing());
    assert_eq!(example.inhibit_rules(), fixture.inhibit_rules());
    assert_eq!(example.silences(), fixture.silences());
}
