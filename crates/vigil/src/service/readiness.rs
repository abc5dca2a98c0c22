//! Running the readiness checks, each bounded by a timeout, one run at a
//! time, its result reused for [`REUSE`].

use std::future::Future;
use std::time::Duration;

use super::{Check, CheckResult, Readiness};

/// How long the result of a run of the checks is reused.
pub(super) const REUSE: Duration = Duration::from_secs(1);

/// The latest result and when it was obtained (on the monitor's clock).
/// Callers take the lock in turn: while one runs the checks, the others
/// wait for it and reuse its result.
#[derive(Debug, Default)]
pub(super) struct Latest(tokio::sync::Mutex<Option<(quanta::Instant, Readiness)>>);

impl Latest {
    /// The result obtained less than [`REUSE`] ago, or that of `run`.
    pub(super) async fn get(
        &self,
        clock: &quanta::Clock,
        run: impl Future<Output = Readiness>,
    ) -> Readiness {
        let mut latest = self.0.lock().await;
        if let Some((at, readiness)) = &*latest
            && clock.now().saturating_duration_since(*at) < REUSE
        {
            return readiness.clone();
        }
        let readiness = run.await;
        *latest = Some((clock.now(), readiness.clone()));
        readiness
    }
}

/// Runs `checks` at once, each on its own tokio task bounded by `timeout`
/// (a check that panics fails): on the current tokio runtime, or outside
/// one on a short-lived thread running its own.
pub(super) async fn run(checks: &[(String, Check)], timeout: Duration) -> Readiness {
    let results = if tokio::runtime::Handle::try_current().is_ok() {
        concurrently(checks, timeout).await
    } else {
        on_own_thread(checks.to_vec(), timeout).await
    };
    Readiness {
        ready: results.iter().all(|r| r.ok),
        checks: results,
    }
}

/// [`concurrently`] on a `vigil-readiness` thread with a current-thread
/// runtime, awaited from any executor.
async fn on_own_thread(checks: Vec<(String, Check)>, timeout: Duration) -> Vec<CheckResult> {
    let names: Vec<String> = checks.iter().map(|(name, _)| name.clone()).collect();
    let failed = |error: String| -> Vec<CheckResult> {
        let fail = |name: &String| result(name, Err(error.clone()), Duration::ZERO);
        names.iter().map(fail).collect()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => return failed(format!("cannot start a runtime for the checks: {error}")),
    };
    let (send, receive) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("vigil-readiness".into())
        .spawn(move || {
            let _ = send.send(runtime.block_on(concurrently(&checks, timeout)));
        });
    if let Err(error) = spawned {
        return failed(format!("cannot start the readiness thread: {error}"));
    }
    match receive.await {
        Ok(results) => results,
        Err(_) => failed("the readiness thread ended early".to_owned()),
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

/// `duration` in jiff's friendly form: `5s`, `250ms`, `1m 30s`.
fn humane(duration: Duration) -> String {
    match jiff::SignedDuration::try_from(duration) {
        Ok(duration) => format!("{duration:#}"),
        Err(_) => format!("{duration:?}"),
    }
}
