//! Running the readiness checks, each bounded by a timeout.

use std::time::Duration;

use super::{Check, CheckResult, Readiness};

/// Runs `checks`: at once, each on its own tokio task bounded by `timeout`
/// (a check that panics fails), inside a tokio runtime; one after the
/// other and unbounded outside one.
pub(super) async fn run(checks: &[(String, Check)], timeout: Duration) -> Readiness {
    let results = if tokio::runtime::Handle::try_current().is_ok() {
        concurrently(checks, timeout).await
    } else {
        let mut results = Vec::with_capacity(checks.len());
        for (name, check) in checks {
            let started = std::time::Instant::now();
            let outcome = check().await;
            results.push(result(name, outcome, started.elapsed()));
        }
        results
    };
    Readiness {
        ready: results.iter().all(|r| r.ok),
        checks: results,
    }
}

async fn concurrently(checks: &[(String, Check)], timeout: Duration) -> Vec<CheckResult> {
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = checks
        .iter()
        .map(|(name, check)| {
            let check = check();
            let task = tokio::spawn(async move {
                let outcome = tokio::time::timeout(timeout, check).await;
                (outcome, started.elapsed())
            });
            (name, task)
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (name, task) in tasks {
        let (outcome, elapsed) = match task.await {
            Ok((Ok(outcome), elapsed)) => (outcome, elapsed),
            Ok((Err(_), elapsed)) => (Err(format!("timed out after {}", humane(timeout))), elapsed),
            Err(error) if error.is_panic() => {
                (Err("the check panicked".to_owned()), started.elapsed())
            }
            Err(_) => (Err("the check was cancelled".to_owned()), started.elapsed()),
        };
        results.push(result(name, outcome, elapsed));
    }
    results
}

fn result(name: &str, outcome: Result<(), String>, elapsed: Duration) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        ok: outcome.is_ok(),
        error: outcome.err(),
        duration_seconds: elapsed.as_secs_f64(),
    }
}

/// `duration` as `5s` or `250ms`.
fn humane(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
