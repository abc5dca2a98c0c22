//! Shared helpers for the Prometheus tests: finding and running `promtool`.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `promtool` binary, from Debian's `prometheus` package. Fails the
/// test (never skips it) when it is missing.
pub fn promtool() -> Command {
    match Command::new("promtool").arg("--version").output() {
        Ok(out) if out.status.success() => Command::new("promtool"),
        Ok(out) => panic!(
            "`promtool --version` failed ({}): reinstall Debian's `prometheus` package (apt-get install prometheus)",
            out.status
        ),
        Err(e) => panic!(
            "promtool not found ({e}): install Debian's `prometheus` package, which provides it (apt-get install -y --no-install-recommends prometheus)"
        ),
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `promtool check rules` on `yaml`; panics with promtool's output
/// (and the file) when it rejects it.
pub fn check_rules(yaml: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, yaml).expect("writing the rule file");
    let out = promtool()
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .expect("running promtool");
    assert!(
        out.status.success(),
        "promtool check rules rejected the export:\n{}\n--- rules.yml\n{yaml}",
        describe(&out)
    );
}

/// Runs `promtool test rules` on `test_yaml` with `rules_yaml` as
/// `rules.yml` next to it; returns promtool's verdict and output.
pub fn test_rules(rules_yaml: &str, test_yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    write(dir.path(), "rules.yml", rules_yaml);
    write(dir.path(), "test.yml", test_yaml);
    let out = promtool()
        .current_dir(dir.path())
        .arg("test")
        .arg("rules")
        .arg("test.yml")
        .output()
        .expect("running promtool");
    (out.status.success(), describe(&out))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("writing a promtool input");
}
