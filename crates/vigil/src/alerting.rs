//! The alert loop: the [`Engine`] evaluated on an interval against the
//! registry ([`RegistrySource`]), its notifications handed to a
//! [`Dispatcher`] whose per-receiver queues deliver in the background, and
//! its active alerts to the Alertmanager [`Sender`], so neither recording
//! nor evaluation ever waits on a notifier.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use vigil_alert::alertmanager::Sender;
use vigil_alert::notify::{Dispatcher, NotifyError};
use vigil_alert::{Engine, Transition};

use crate::builder::Alertmanagers;
use crate::recorder::Recorder;
use crate::source::RegistrySource;

/// The engine and where its notifications go.
#[derive(Debug)]
pub(crate) struct Alerting {
    pub(crate) engine: Mutex<Engine>,
    /// vigil's own routing; `None` when the alerts only go to Alertmanager.
    dispatcher: Option<Dispatcher>,
    alertmanager: Option<Sender>,
    recorder: Recorder,
}

impl Alerting {
    /// One evaluation at `now`: refresh published values, read the
    /// registry, evaluate every rule, dispatch due notifications and send
    /// what is due to Alertmanager (without waiting for delivery).
    pub(crate) fn evaluate(&self, now: SystemTime) -> Vec<Transition> {
        self.recorder.tick();
        let source = RegistrySource::new(&self.recorder.shared);
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        // `alerts_firing` is set through `metrics`: make it land in this
        // registry (and the layered recorder) even when vigil is not the
        // global recorder.
        let transitions =
            metrics::with_local_recorder(&self.recorder, || engine.evaluate(now, &source));
        // Drained even without notifiers, so resolved alerts leave the
        // engine's groups.
        let due = engine.due_notifications(now);
        if let Some(sender) = &self.alertmanager {
            metrics::with_local_recorder(&self.recorder, || sender.send(now, &engine));
        }
        drop(engine);
        if let Some(dispatcher) = &self.dispatcher {
            metrics::with_local_recorder(&self.recorder, || dispatcher.dispatch_all(due));
        }
        transitions
    }
}

/// The runtime that delivers notifications and, unless evaluation is
/// manual, runs the evaluation loop. Stops when dropped.
#[derive(Debug)]
pub(crate) struct AlertLoop {
    pub(crate) alerting: Arc<Alerting>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl AlertLoop {
    pub(crate) fn start(
        engine: Engine,
        notifiers: Vec<(String, Arc<dyn vigil_alert::notify::Notifier>)>,
        alertmanagers: Alertmanagers,
        recorder: Recorder,
        interval: Option<Duration>,
    ) -> Result<Self, crate::Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vigil-alerts")
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Setting {
                setting: "alerts",
                reason: format!("cannot start the alert runtime: {e}"),
            })?;
        let alertmanager = if alertmanagers.urls.is_empty() {
            None
        } else {
            let mut sender = Sender::builder().resend_delay(alertmanagers.resend_delay);
            if let Some(interval) = interval {
                sender = sender.evaluation_interval(interval);
            }
            for url in alertmanagers.urls {
                sender = sender.alertmanager(url);
            }
            let sender =
                metrics::with_local_recorder(&recorder, || sender.build_on(runtime.handle()))
                    .map_err(|e| match e {
                        NotifyError::InvalidUrl { url, reason } => crate::Error::Address {
                            setting: "alertmanager",
                            address: url,
                            reason,
                        },
                        other => crate::Error::Setting {
                            setting: "alertmanager",
                            reason: other.to_string(),
                        },
                    })?;
            Some(sender)
        };
        let dispatcher = if notifiers.is_empty() && alertmanager.is_some() {
            None
        } else {
            let mut dispatcher = Dispatcher::builder();
            for (receiver, notifier) in notifiers {
                dispatcher = dispatcher.receiver(receiver, notifier);
            }
            let dispatcher =
                metrics::with_local_recorder(&recorder, || dispatcher.build_on(runtime.handle()))
                    .map_err(|e| crate::Error::Setting {
                    setting: "notifier",
                    reason: e.to_string(),
                })?;
            Some(dispatcher)
        };
        let alerting = Arc::new(Alerting {
            engine: Mutex::new(engine),
            dispatcher,
            alertmanager,
            recorder,
        });
        if let Some(interval) = interval {
            let alerting = Arc::clone(&alerting);
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let alerting = Arc::clone(&alerting);
                    // Evaluation takes locks and may take milliseconds for
                    // thousands of rules: keep it off the delivery worker.
                    let _ =
                        tokio::task::spawn_blocking(move || alerting.evaluate(SystemTime::now()))
                            .await;
                }
            });
        }
        Ok(Self {
            alerting,
            runtime: Some(runtime),
        })
    }
}

impl Drop for AlertLoop {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime's context panics; the
        // last Monitor may well be dropped in the host's async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
