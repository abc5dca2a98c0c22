//! The open loop: requests start at their scheduled times whatever
//! happened to earlier ones, and their latency counts from the scheduled
//! time, so a stalled target shows in the latency of every request that
//! waited for it (no coordinated omission).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::closed::Outcome;
use crate::profile::{Arrivals, Plan};
use crate::report::StoppedBy;
use crate::response::Target;
use crate::stats::Stats;

pub(crate) struct Open<'a> {
    pub(crate) plan: &'a Plan,
    /// Where the plan is cut short (`duration`), if before its end.
    pub(crate) end: Duration,
    pub(crate) max_in_flight: u64,
}

impl Open<'_> {
    pub(crate) async fn run(
        &self,
        target: &Arc<dyn Target>,
        stats: &Arc<Stats>,
        tasks: &mut JoinSet<()>,
    ) -> Outcome {
        let start = Instant::now();
        let end = start + self.end;
        let mut arrivals = Arrivals::new(self.plan);
        let finished = loop {
            if stats.stopped().is_some() {
                break None;
            }
            let intended = match arrivals.next() {
                Some((stage, offset)) if start + offset < end => Some((stage, start + offset)),
                _ => None,
            };
            let Some((stage, intended)) = intended else {
                // Nothing more is due before the end: hold the load's
                // duration, then stop.
                stats.sleep_until(end).await;
                if stats.stopped().is_some() {
                    break None;
                }
                break Some(if self.end < self.plan.total() {
                    StoppedBy::Duration
                } else {
                    StoppedBy::Completed
                });
            };
            if intended > Instant::now() {
                stats.sleep_until(intended).await;
                if stats.stopped().is_some() {
                    break None;
                }
            }
            while tasks.try_join_next().is_some() {}
            if stats.in_flight() >= self.max_in_flight {
                stats.drop_request();
                continue;
            }
            if !stats.reserve() {
                break None;
            }
            stats.set_stage(stage);
            stats.begin();
            let (target, stats) = (target.clone(), stats.clone());
            tasks.spawn(async move { stats.send(&*target, stage, intended).await });
        };
        let load_time = start.elapsed().min(self.end);
        let stopped_by = match stats.stopped() {
            Some((reason, _)) => reason,
            None => finished.unwrap_or(StoppedBy::Completed),
        };
        stats.end();
        Outcome {
            stopped_by,
            failed_stage: None,
            load_time,
            peak_users: 0,
        }
    }
}
