//! The open loop: requests start at their scheduled times whatever
//! happened to earlier ones, and their latency counts from the scheduled
//! time, so a stalled target shows in the latency of every request that
//! waited for it (no coordinated omission).

use tokio::time::Instant;

use crate::profile::Arrivals;
use crate::report::StoppedBy;
use crate::run::Run;

/// Run the open loop; `None` when a stop condition ended it, else why the
/// plan ran out.
pub(crate) async fn run(run: &mut Run<'_>, max_in_flight: u64) -> Option<StoppedBy> {
    let stats = run.stats.clone();
    let end = run.end();
    let mut arrivals = Arrivals::new(run.plan);
    loop {
        if stats.stopped().is_some() {
            return None;
        }
        let due = match arrivals.next() {
            Some((stage, offset)) if run.start + offset < end => Some((stage, run.start + offset)),
            _ => None,
        };
        let Some((stage, intended)) = due else {
            // Nothing more is due before the end: hold the load's
            // duration, then stop.
            stats.sleep_until(end).await;
            return stats.stopped().is_none().then(|| run.ran_out());
        };
        if intended > Instant::now() {
            stats.sleep_until(intended).await;
            if stats.stopped().is_some() {
                return None;
            }
        }
        while run.tasks.try_join_next().is_some() {}
        if stats.in_flight() >= max_in_flight {
            stats.drop_request();
            continue;
        }
        if !stats.reserve() {
            return None;
        }
        stats.set_stage(stage);
        stats.begin();
        let (target, stats) = (run.target.clone(), stats.clone());
        run.tasks
            .spawn(async move { stats.send(&*target, stage, intended).await });
    }
}
