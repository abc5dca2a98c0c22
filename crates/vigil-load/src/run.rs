//! [`Run`]: what the closed and the open loop share while a load runs:
//! the plan and where it is cut, the target, the [`Stats`], the spawned
//! tasks, and how a run ends (why, and waiting for requests in flight).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::profile::Plan;
use crate::report::StoppedBy;
use crate::response::Target;
use crate::stats::Stats;

pub(crate) struct Run<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) target: Arc<dyn Target>,
    pub(crate) stats: Arc<Stats>,
    /// Virtual users (closed loop) or requests (open loop).
    pub(crate) tasks: JoinSet<()>,
    pub(crate) start: Instant,
    /// The plan's length, or the `duration` that cuts it short.
    length: Duration,
    /// `start + length`, checked by the caller to be on the clock.
    end: Instant,
}

/// How a run ended.
pub(crate) struct Ending {
    pub(crate) stopped_by: StoppedBy,
    /// The stage the error-rate limit was crossed in.
    pub(crate) failed_stage: Option<usize>,
    /// From the start to the end of the load, without the grace period.
    pub(crate) load_time: Duration,
    /// Requests completed by the end of the load, without the grace period.
    pub(crate) completed_in_load: u64,
}

impl<'a> Run<'a> {
    /// A run starting now that ends `length` later, or `None` if that is
    /// beyond the clock's range.
    pub(crate) fn new(
        plan: &'a Plan,
        length: Duration,
        target: Arc<dyn Target>,
        stats: Arc<Stats>,
    ) -> Option<Self> {
        let start = Instant::now();
        Some(Self {
            plan,
            target,
            stats,
            tasks: JoinSet::new(),
            start,
            length,
            end: start.checked_add(length)?,
        })
    }

    /// When the load ends if nothing stops it earlier.
    pub(crate) fn end(&self) -> Instant {
        self.end
    }

    /// The reason for an end at [`end`](Run::end): the plan ran out, or
    /// the `duration` cut it.
    pub(crate) fn ran_out(&self) -> StoppedBy {
        if self.length < self.plan.total() {
            StoppedBy::Duration
        } else {
            StoppedBy::Completed
        }
    }

    /// End the load (a stop condition met, else `ran_out`), then wait up
    /// to `grace` for the requests in flight; those still running then
    /// are aborted, and recorded as unfinished errors as they drop.
    ///
    /// A stress step still waiting for its last requests when the load
    /// ends is judged when they are recorded, in the grace period or at
    /// the abort; a failure then is the reason the test stopped.
    pub(crate) async fn finish(mut self, ran_out: Option<StoppedBy>, grace: Duration) -> Ending {
        let load_time = self.start.elapsed().min(self.length);
        let early = self.stats.stopped();
        self.stats.end();
        let completed_in_load = self.stats.completed();
        let tasks = &mut self.tasks;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            self.tasks.abort_all();
            // Each aborted task drops its request, which records it.
            while self.tasks.join_next().await.is_some() {}
        }
        let late_judgement = || {
            self.stats
                .stopped()
                .filter(|(reason, _)| matches!(reason, StoppedBy::ErrorRate { .. }))
        };
        let (stopped_by, failed_stage) = match early.or_else(late_judgement) {
            Some((reason @ StoppedBy::ErrorRate { .. }, stage)) => (reason, Some(stage)),
            Some((reason, _)) => (reason, None),
            None => (ran_out.unwrap_or(StoppedBy::Completed), None),
        };
        Ending {
            stopped_by,
            failed_stage,
            load_time,
            completed_in_load,
        }
    }
}
