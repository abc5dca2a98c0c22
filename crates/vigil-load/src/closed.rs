//! The closed loop: virtual users that each send a request, wait for the
//! response and the think time, and repeat. The scheduler adds and retires
//! users every tick to follow the plan, and closes each stage as the plan
//! moves past it (a stress step is judged once its last requests are
//! recorded).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use crate::report::StoppedBy;
use crate::response::Target;
use crate::run::Run;
use crate::stats::Stats;

/// How often the scheduler recomputes the number of users.
const TICK: Duration = Duration::from_millis(100);

/// Run the closed loop; `None` when a stop condition ended it, else why
/// the plan ran out. Also returns the peak number of users.
pub(crate) async fn run(run: &mut Run<'_>, think_time: Duration) -> (Option<StoppedBy>, u32) {
    let stats = run.stats.clone();
    let end = run.end();
    let mut users: Vec<Arc<AtomicBool>> = Vec::new();
    let mut peak_users = 0;
    let mut stage = 0;
    let ran_out = loop {
        let now = Instant::now();
        if stats.stopped().is_some() {
            break None;
        }
        if now >= end {
            break Some(run.ran_out());
        }
        let (index, level) = run.plan.at(now - run.start);
        if index != stage {
            let closed = stage;
            stage = index;
            stats.set_stage(stage);
            stats.close_stage(closed);
            if stats.stopped().is_some() {
                break None;
            }
        }
        let want = level.round().max(0.0) as usize;
        while users.len() < want {
            let keep = Arc::new(AtomicBool::new(true));
            users.push(keep.clone());
            let user = user(run.target.clone(), stats.clone(), keep, think_time);
            run.tasks.spawn(user);
        }
        while users.len() > want {
            if let Some(keep) = users.pop() {
                keep.store(false, Relaxed);
            }
        }
        peak_users = peak_users.max(u32::try_from(users.len()).unwrap_or(u32::MAX));
        while run.tasks.try_join_next().is_some() {}
        stats
            .sleep_until(Some(now.checked_add(TICK).map_or(end, |t| t.min(end))))
            .await;
    };
    if ran_out.is_some() {
        // The last stage ends with the plan.
        stats.close_stage(stage);
    }
    for keep in &users {
        keep.store(false, Relaxed);
    }
    if matches!(stats.stopped(), Some((StoppedBy::MaxRequests, _))) {
        // The last request is sent: the load ends when the requests in
        // flight complete (the users then stop), so that the rates count
        // the time they took; the planned end still bounds it.
        let tasks = &mut run.tasks;
        let _ = tokio::time::timeout_at(end, async { while tasks.join_next().await.is_some() {} })
            .await;
    }
    (ran_out, peak_users)
}

/// One virtual user: request, think, repeat, until retired or the load
/// ends.
async fn user(target: Arc<dyn Target>, stats: Arc<Stats>, keep: Arc<AtomicBool>, think: Duration) {
    while keep.load(Relaxed) && !stats.ending() && stats.reserve() {
        let stage = stats.begin_in_current_stage();
        stats.send(&*target, stage, Instant::now()).await;
        if !think.is_zero() {
            // Past the clock's range (checked against at the start): until
            // the load ends.
            stats.sleep_until(Instant::now().checked_add(think)).await;
        }
    }
}
