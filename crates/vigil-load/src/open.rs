//! The open loop: requests start at their scheduled times whatever
//! happened to earlier ones, and their latency counts from the scheduled
//! time, so a stalled target shows in the latency of every request that
//! waited for it (no coordinated omission). Under the in-flight cap a
//! request waits for a free slot, its latency still counted from its
//! scheduled time; those still waiting when the load ends are dropped,
//! as errors.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::profile::Arrivals;
use crate::report::StoppedBy;
use crate::run::Run;

/// Run the open loop; `None` when a stop condition ended it, else why the
/// plan ran out.
pub(crate) async fn run(run: &mut Run<'_>, max_in_flight: u64) -> Option<StoppedBy> {
    let stats = run.stats.clone();
    let end = run.end();
    let slots = usize::try_from(max_in_flight)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(slots));
    let start = run.start;
    // The arrivals due before the end, as (stage, intended start).
    let mut arrivals = Arrivals::new(run.plan)
        .map_while(move |(stage, offset)| Some((stage, start.checked_add(offset)?)))
        .take_while(move |&(_, intended)| intended < end);
    loop {
        if stats.stopped().is_some() {
            return None;
        }
        let Some((stage, intended)) = arrivals.next() else {
            // Nothing more is due before the end: hold the load's
            // duration, then stop.
            stats.sleep_until(Some(end)).await;
            return stats.stopped().is_none().then(|| run.ran_out());
        };
        stats.wait_until(intended).await;
        if stats.ending() {
            return None;
        }
        while run.tasks.try_join_next().is_some() {}
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                stats.queue();
                let acquired = stats
                    .before_end(Some(end), slots.clone().acquire_owned())
                    .await;
                match acquired {
                    Some(Ok(permit)) => permit,
                    // The load ended first: this request and the others
                    // due by now were never sent.
                    _ => {
                        let now = Instant::now();
                        let due = std::iter::once((stage, intended))
                            .chain(arrivals.take_while(|&(_, at)| at <= now));
                        for (stage, intended) in due.take(clamp(stats.remaining())) {
                            stats.drop_request(stage, intended);
                        }
                        return stats.stopped().is_none().then(|| run.ran_out());
                    }
                }
            }
        };
        if !stats.reserve() {
            return None;
        }
        stats.set_stage(stage);
        stats.begin(stage);
        let (target, stats) = (run.target.clone(), stats.clone());
        run.tasks.spawn(async move {
            stats.send(&*target, stage, intended).await;
            drop(permit);
        });
        if let Some((crate::report::StoppedBy::MaxRequests, _)) = run.stats.stopped() {
            // That was the last request: the load ends when the next one
            // would have been due (or at the end), so that the rates
            // count the whole interval the requests were sent in.
            let next = arrivals.next().map_or(end, |(_, at)| at);
            tokio::time::sleep_until(next).await;
            return None;
        }
    }
}

fn clamp(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}
