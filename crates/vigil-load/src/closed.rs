//! The closed loop: virtual users that each send a request, wait for the
//! response and the think time, and repeat. A scheduler adds and retires
//! users every tick to follow the plan, and in a stress test judges each
//! step as it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::profile::Plan;
use crate::report::StoppedBy;
use crate::response::Target;
use crate::stats::Stats;

/// How often the scheduler recomputes the number of users.
const TICK: Duration = Duration::from_millis(100);

pub(crate) struct Closed<'a> {
    pub(crate) plan: &'a Plan,
    /// Where the plan is cut short (`duration`), if before its end.
    pub(crate) end: Duration,
    pub(crate) think_time: Duration,
    /// Stress test: each step's error ratio is checked as it ends.
    pub(crate) judge_steps: bool,
}

pub(crate) struct Outcome {
    pub(crate) stopped_by: StoppedBy,
    pub(crate) failed_stage: Option<usize>,
    pub(crate) load_time: Duration,
    pub(crate) peak_users: u32,
}

impl Closed<'_> {
    pub(crate) async fn run(
        &self,
        target: &Arc<dyn Target>,
        stats: &Arc<Stats>,
        tasks: &mut JoinSet<()>,
    ) -> Outcome {
        let start = Instant::now();
        let end = start + self.end;
        let mut users: Vec<Arc<AtomicBool>> = Vec::new();
        let mut peak_users = 0;
        let mut stage = 0;
        let finished = loop {
            let now = Instant::now();
            if stats.stopped().is_some() {
                break None;
            }
            if now >= end {
                break Some(if self.end < self.plan.total() {
                    StoppedBy::Duration
                } else {
                    StoppedBy::Completed
                });
            }
            let (index, level) = self.plan.at(now - start);
            if index != stage {
                if self.judge_steps && self.judge(stats, stage) {
                    break None;
                }
                stage = index;
                stats.set_stage(stage);
            }
            let want = level.round().max(0.0) as usize;
            while users.len() < want {
                let keep = Arc::new(AtomicBool::new(true));
                users.push(keep.clone());
                tasks.spawn(user(target.clone(), stats.clone(), keep, self.think_time));
            }
            while users.len() > want {
                if let Some(keep) = users.pop() {
                    keep.store(false, Relaxed);
                }
            }
            peak_users = peak_users.max(u32::try_from(users.len()).unwrap_or(u32::MAX));
            while tasks.try_join_next().is_some() {}
            stats.sleep_until((now + TICK).min(end)).await;
        };
        let load_time = start.elapsed().min(self.end);
        if let Some(StoppedBy::Completed | StoppedBy::Duration) = finished
            && self.judge_steps
        {
            // The last step ends with the plan.
            self.judge(stats, stage);
        }
        for keep in &users {
            keep.store(false, Relaxed);
        }
        let (stopped_by, failed_stage) = match stats.stopped() {
            Some((reason @ StoppedBy::ErrorRate { .. }, stage)) => (reason, Some(stage)),
            Some((reason, _)) => (reason, None),
            None => (finished.unwrap_or(StoppedBy::Completed), None),
        };
        stats.end();
        Outcome {
            stopped_by,
            failed_stage,
            load_time,
            peak_users,
        }
    }

    /// Stop the load if step `stage` ended above the error-rate limit.
    fn judge(&self, stats: &Stats, stage: usize) -> bool {
        let Some(step) = stats.stages.get(stage) else {
            return false;
        };
        let (requests, errors) = step.counts();
        let ratio = crate::bench::ratio(errors, requests);
        let limit = stats.error_limit();
        if ratio > limit {
            stats.stop(StoppedBy::ErrorRate { ratio, limit }, stage);
            return true;
        }
        false
    }
}

/// One virtual user: request, think, repeat, until retired or the load
/// ends.
async fn user(target: Arc<dyn Target>, stats: Arc<Stats>, keep: Arc<AtomicBool>, think: Duration) {
    while keep.load(Relaxed) && !stats.ending() && stats.reserve() {
        stats.begin();
        let stage = stats.current_stage();
        stats.send(&*target, stage, Instant::now()).await;
        if !think.is_zero() {
            stats.sleep_until(Instant::now() + think).await;
        }
    }
}
