//! Runs the system examples (built by `cargo test` next to this test) with
//! a short load and checks that each exits 0 and prints its report.

use std::path::PathBuf;
use std::process::Command;

/// The example binary `name`, in the `examples` directory of this test's
/// target directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: `cargo test -p vigil-examples` builds it",
        path.display()
    );
    path
}

/// Runs `name` with a 4 s load and returns its output, checking the exit
/// status and the sections every system report has.
fn run(name: &str) -> String {
    let output = Command::new(example(name))
        .args(["--duration", "4"])
        .env_remove("PORT")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} exited with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for section in [
        "Load (client side)",
        "Scorecard: target vs current",
        "overall score",
        "Cache hit rate per cache",
        "Alerts fired and resolved",
        "Health score",
        "Recommendations",
        "/api/v1/performance/metrics/summary",
    ] {
        assert!(
            stdout.contains(section),
            "{name} printed no {section:?}:\n{stdout}"
        );
    }
    stdout
}

#[test]
fn opinion_market_prints_its_report() {
    let stdout = run("opinion_market");
    assert!(
        stdout.contains("Cleared "),
        "the cold-cache step ran:\n{stdout}"
    );
    assert!(stdout.contains("GET /api/v1/markets/{id}"), "{stdout}");
}

#[test]
fn samplemind_prints_its_report() {
    let stdout = run("samplemind");
    assert!(stdout.contains("bottleneck: "), "{stdout}");
    assert!(stdout.contains("Time a hit saves"), "{stdout}");
    assert!(
        stdout.contains("autoscaling (CPU 70 %, memory 80 %)"),
        "{stdout}"
    );
}
