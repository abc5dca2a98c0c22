//! The alert loop: the [`Engine`] evaluated on an interval against the
//! registry ([`RegistrySource`]); with the `alert-routing` feature its
//! notifications are handed to a [`Dispatcher`] whose per-receiver queues
//! deliver in the background, and with `alert-delivery` its active alerts
//! go to the Alertmanager [`Sender`], so neither recording nor evaluation
//! ever waits on a notifier.
//!
//! [`Dispatcher`]: vigil_alert::notify::Dispatcher
//! [`Sender`]: vigil_alert::alertmanager::Sender

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use vigil_alert::{Engine, Transition};

use crate::recorder::Recorder;
use crate::source::RegistrySource;
use crate::tasks::Stopped;

/// What the builder collected for the alert loop.
pub(crate) struct AlertSettings {
    pub(crate) engine: Engine,
    /// Evaluation interval; `None`: only on `Monitor::evaluate_alerts`.
    pub(crate) interval: Option<Duration>,
    #[cfg(feature = "alert-routing")]
    pub(crate) notifiers: Vec<(String, Arc<dyn vigil_alert::notify::Notifier>)>,
    #[cfg(feature = "alert-delivery")]
    pub(crate) alertmanagers: Vec<String>,
    #[cfg(feature = "alert-delivery")]
    pub(crate) resend_delay: Duration,
}

/// The engine and where its notifications go.
#[derive(Debug)]
pub(crate) struct Alerting {
    pub(crate) engine: Mutex<Engine>,
    /// vigil's own routing; `None` when the alerts only go to Alertmanager.
    #[cfg(feature = "alert-routing")]
    dispatcher: Option<vigil_alert::notify::Dispatcher>,
    #[cfg(feature = "alert-delivery")]
    alertmanager: Option<vigil_alert::alertmanager::Sender>,
    recorder: Recorder,
}

impl Alerting {
    /// The engine with its delivery, whose tasks are spawned on the
    /// current tokio runtime (so this runs inside one).
    pub(crate) fn new(
        settings: AlertSettings,
        recorder: Recorder,
    ) -> Result<Arc<Self>, crate::Error> {
        #[cfg(feature = "alert-delivery")]
        let alertmanager = sender(&settings, &recorder)?;
        #[cfg(feature = "alert-routing")]
        let dispatcher = {
            #[cfg(feature = "alert-delivery")]
            let only_alertmanager = settings.notifiers.is_empty() && alertmanager.is_some();
            #[cfg(not(feature = "alert-delivery"))]
            let only_alertmanager = false;
            if only_alertmanager {
                None
            } else {
                let mut dispatcher = vigil_alert::notify::Dispatcher::builder();
                for (receiver, notifier) in settings.notifiers {
                    dispatcher = dispatcher.receiver(receiver, notifier);
                }
                let dispatcher = metrics::with_local_recorder(&recorder, || dispatcher.build())
                    .map_err(|e| crate::Error::Setting {
                        setting: "notifier",
                        reason: e.to_string(),
                    })?;
                Some(dispatcher)
            }
        };
        Ok(Arc::new(Self {
            engine: Mutex::new(settings.engine),
            #[cfg(feature = "alert-routing")]
            dispatcher,
            #[cfg(feature = "alert-delivery")]
            alertmanager,
            recorder,
        }))
    }

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
        #[cfg(feature = "alert-routing")]
        let due = engine.due_notifications(now);
        #[cfg(feature = "alert-delivery")]
        if let Some(sender) = &self.alertmanager {
            metrics::with_local_recorder(&self.recorder, || sender.send(now, &engine));
        }
        drop(engine);
        #[cfg(feature = "alert-routing")]
        if let Some(dispatcher) = &self.dispatcher {
            metrics::with_local_recorder(&self.recorder, || dispatcher.dispatch_all(due));
        }
        transitions
    }

    /// Evaluates every `interval` (off the runtime's workers: evaluation
    /// takes locks and may take milliseconds for thousands of rules) until
    /// `stopped`; without an interval, only waits, so that a runtime
    /// driven by this task keeps delivering.
    pub(crate) async fn run(self: Arc<Self>, interval: Option<Duration>, mut stopped: Stopped) {
        let Some(interval) = interval else {
            stopped.wait().await;
            return;
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stopped.wait() => return,
                _ = ticks.tick() => {}
            }
            let alerting = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || alerting.evaluate(SystemTime::now())).await;
        }
    }
}

/// The Alertmanager sender, if any Alertmanager was given.
#[cfg(feature = "alert-delivery")]
fn sender(
    settings: &AlertSettings,
    recorder: &Recorder,
) -> Result<Option<vigil_alert::alertmanager::Sender>, crate::Error> {
    use vigil_alert::notify::NotifyError;
    if settings.alertmanagers.is_empty() {
        return Ok(None);
    }
    let mut sender =
        vigil_alert::alertmanager::Sender::builder().resend_delay(settings.resend_delay);
    if let Some(interval) = settings.interval {
        sender = sender.evaluation_interval(interval);
    }
    for url in &settings.alertmanagers {
        sender = sender.alertmanager(url.clone());
    }
    let sender =
        metrics::with_local_recorder(recorder, || sender.build()).map_err(|e| match e {
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
    Ok(Some(sender))
}
