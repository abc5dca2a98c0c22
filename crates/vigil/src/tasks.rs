//! What a monitor runs besides recording (the `/metrics` listener, the
//! alert loop, the upkeep) as futures: [`Tasks`], which
//! [`build_tasks`](crate::MonitorBuilder::build_tasks) hands to the host
//! to run on its own tokio runtime, and which
//! [`build`](crate::MonitorBuilder::build) runs on one thread of its own.
//! Every task ends once the last clone of its [`Monitor`](crate::Monitor)
//! is dropped ([`Stop`]).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;

use crate::recorder::Recorder;

/// One background job of a monitor: a future that runs until the last
/// clone of its [`Monitor`](crate::Monitor) is dropped.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The background jobs of a monitor built with
/// [`build_tasks`](crate::MonitorBuilder::build_tasks), for the host to run
/// on the tokio runtime `build_tasks` was called in (the listener's socket
/// and the alert delivery are registered with it). Each ends once the last
/// clone of the [`Monitor`](crate::Monitor) is dropped.
///
/// Await `Tasks` to run all of them together (it implements
/// [`IntoFuture`]), or spawn each on its own:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vigil::Error> {
/// # #[cfg(feature = "listener")] {
/// let (monitor, tasks) = vigil::Monitor::builder()
///     .listen("127.0.0.1:0")
///     .build_tasks()?;
/// let running = tokio::spawn(tasks.into_future());
/// // ... the service runs; /metrics is served on the host's runtime ...
/// drop(monitor); // the tasks end
/// running.await.expect("the tasks ended");
/// # }
/// # Ok(())
/// # }
/// ```
#[non_exhaustive]
pub struct Tasks {
    /// Serves `GET /metrics`, with [`listen`](crate::MonitorBuilder::listen).
    #[cfg(feature = "listener")]
    pub listener: Option<Task>,
    /// Evaluates the alert rules every
    /// [`alert_interval`](crate::MonitorBuilder::alert_interval), with
    /// [`alerts`](crate::MonitorBuilder::alerts) (the notifications'
    /// delivery tasks are already spawned on the runtime).
    #[cfg(feature = "alerts")]
    pub alerts: Option<Task>,
    /// Rotates windows, samples series and expires idle ones every
    /// [`upkeep_interval`](crate::MonitorBuilder::upkeep_interval), unless
    /// [`manual_upkeep`](crate::MonitorBuilder::manual_upkeep).
    pub upkeep: Option<Task>,
}

impl fmt::Debug for Tasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tasks = f.debug_struct("Tasks");
        #[cfg(feature = "listener")]
        tasks.field("listener", &self.listener.is_some());
        #[cfg(feature = "alerts")]
        tasks.field("alerts", &self.alerts.is_some());
        tasks.field("upkeep", &self.upkeep.is_some()).finish()
    }
}

impl Tasks {
    /// Every task, in one list.
    fn all(self) -> Vec<Task> {
        let Tasks {
            #[cfg(feature = "listener")]
            listener,
            #[cfg(feature = "alerts")]
            alerts,
            upkeep,
        } = self;
        let mut all = Vec::new();
        #[cfg(feature = "listener")]
        all.extend(listener);
        #[cfg(feature = "alerts")]
        all.extend(alerts);
        all.extend(upkeep);
        all
    }
}

impl IntoFuture for Tasks {
    type Output = ();
    type IntoFuture = Task;

    /// Runs every task on the task awaiting it, until all have ended.
    fn into_future(self) -> Task {
        Box::pin(JoinAll(self.all().into_iter().map(Some).collect()))
    }
}

/// Polls every future until all are done.
struct JoinAll(Vec<Option<Task>>);

impl Future for JoinAll {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut pending = false;
        for slot in &mut self.0 {
            if let Some(task) = slot {
                if task.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    pending = true;
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

/// Held by the monitor: dropping it ends every task.
#[derive(Debug)]
pub(crate) struct Stop {
    /// Held for its `Drop`, which closes the channel.
    _sender: watch::Sender<()>,
}

/// The tasks' side of a [`Stop`].
#[derive(Clone, Debug)]
pub(crate) struct Stopped(watch::Receiver<()>);

impl Stopped {
    /// Returns once the [`Stop`] is dropped (nothing is ever sent, so
    /// `changed` ends only then).
    pub(crate) async fn wait(&mut self) {
        while self.0.changed().await.is_ok() {}
    }
}

/// A new stop signal.
pub(crate) fn stop() -> (Stop, Stopped) {
    let (sender, receiver) = watch::channel(());
    (Stop { _sender: sender }, Stopped(receiver))
}

/// Ticks the registry every `interval` (off the runtime's workers: a tick
/// takes the registry's locks) until `stopped`.
pub(crate) async fn upkeep(recorder: Recorder, interval: Duration, mut stopped: Stopped) {
    let start = tokio::time::Instant::now() + interval;
    let mut ticks = tokio::time::interval_at(start, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped.wait() => return,
            _ = ticks.tick() => {}
        }
        let recorder = recorder.clone();
        let _ = tokio::task::spawn_blocking(move || recorder.tick()).await;
    }
}

/// Runs `tasks` on a thread of their own, driving `runtime` (the one they
/// were built in) until they end.
pub(crate) fn spawn_thread(runtime: tokio::runtime::Runtime, tasks: Tasks) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("vigil".into())
        .spawn(move || runtime.block_on(tasks.into_future()))
        .map(drop)
}
