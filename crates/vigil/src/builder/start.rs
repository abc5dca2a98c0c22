//! From a [`MonitorBuilder`] to a running [`Monitor`]: every setting
//! checked ([`MonitorBuilder::prepare`]), then the registry built and its
//! background jobs started ([`Prepared`]).

use std::sync::Arc;
use std::time::Duration;

use vigil_histogram::Config;

use super::MonitorBuilder;
use crate::Error;
use crate::monitor::{Inner, Monitor, Upkeep};
use crate::recorder::Recorder;
use crate::registry::{OVERFLOW_LABEL, Settings, Shared};
use crate::storage::Storage;

/// The registry, built, and what is still to start.
pub(super) struct Prepared {
    recorder: Recorder,
    upkeep_interval: Option<Duration>,
    /// The listen address, the allowed peers and the limits.
    #[cfg(feature = "listener")]
    listen: Option<(std::net::SocketAddr, Vec<ipnet::IpNet>, crate::http::Limits)>,
    #[cfg(feature = "alerts")]
    alerts: Option<crate::alerting::AlertSettings>,
    #[cfg(feature = "service")]
    service: crate::service::Settings,
}

/// `Err(Error::Setting)` naming `setting` when `refused`.
fn check(
    refused: bool,
    setting: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<(), Error> {
    if refused {
        return Err(Error::Setting {
            setting,
            reason: reason(),
        });
    }
    Ok(())
}

/// Refuses a duration of zero.
fn positive(duration: Option<Duration>, setting: &'static str) -> Result<(), Error> {
    check(duration.is_some_and(|d| d.is_zero()), setting, || {
        "must be longer than zero".into()
    })
}

/// Refuses a count of zero.
fn at_least_one(count: usize, setting: &'static str) -> Result<(), Error> {
    check(count == 0, setting, || "must be at least 1".into())
}

impl MonitorBuilder {
    /// Checks every setting and builds the registry; starts nothing.
    pub(super) fn prepare(mut self) -> Result<Prepared, Error> {
        let clock = self.clock.clone().unwrap_or_default();
        let default = self.histogram_default.clone().clock(clock.clone());
        let validate = |metrics: String, config: &Config| {
            config
                .clone()
                .build()
                .map(drop)
                .map_err(|source| Error::Histogram { metrics, source })
        };
        validate("every histogram".into(), &default)?;
        let mut histograms = Vec::with_capacity(self.histograms.len());
        for (matcher, config) in std::mem::take(&mut self.histograms) {
            let config = config.clock(clock.clone());
            validate(format!("{matcher:?}"), &config)?;
            histograms.push((matcher, config));
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            check(true, "quantiles", || format!("{q} is not in 0.0..=1.0"))?;
        }
        for (matcher, bounds) in &self.buckets {
            let bad =
                bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]);
            check(bad, "buckets", || {
                format!("bounds for {matcher:?} must be finite and strictly increasing: {bounds:?}")
            })?;
        }
        positive(Some(self.window), "window")?;
        at_least_one(self.max_series_per_metric, "max_series_per_metric")?;
        at_least_one(self.max_series, "max_series")?;
        for key in self.global_labels.keys() {
            check_global_label(key)?;
        }
        #[cfg(feature = "service")]
        self.service.check()?;
        #[cfg(feature = "alerts")]
        let alerts = self.take_alerts()?;
        positive(self.upkeep_interval, "upkeep_interval")?;
        #[cfg(feature = "listener")]
        let listen = self.check_listener()?;

        let settings = Settings {
            global_labels: self.global_labels,
            quantiles: self.quantiles,
            buckets: self.buckets,
            window: self.window,
            idle_timeout: self.idle_timeout,
            max_series_per_metric: self.max_series_per_metric,
            max_series: self.max_series,
            clock,
        };
        let shared = Arc::new(Shared::new(Storage::new(default, histograms), settings));
        Ok(Prepared {
            recorder: Recorder {
                shared,
                next: self.layer,
            },
            upkeep_interval: self.upkeep_interval,
            #[cfg(feature = "listener")]
            listen,
            #[cfg(feature = "alerts")]
            alerts,
            #[cfg(feature = "service")]
            service: self.service,
        })
    }

    /// The alert settings, checked; `None` without rules.
    #[cfg(feature = "alerts")]
    fn take_alerts(&mut self) -> Result<Option<crate::alerting::AlertSettings>, Error> {
        positive(self.alert_interval, "alert_interval")?;
        #[cfg(feature = "alert-delivery")]
        positive(
            Some(self.alertmanager_resend_delay),
            "alertmanager_resend_delay",
        )?;
        let Some(engine) = self.alerts.take() else {
            #[cfg(feature = "alert-delivery")]
            if let Some(url) = self.alertmanagers.first() {
                check(true, "alertmanager", || {
                    format!(
                        "there are no alert rules to send to {url}: add them with `alerts(engine)`"
                    )
                })?;
            }
            return Ok(None);
        };
        if let Some(interval) = self.alert_interval {
            engine
                .check_evaluation_interval(interval)
                .map_err(|e| Error::Setting {
                    setting: "alert_interval",
                    reason: e.to_string(),
                })?;
        }
        #[cfg(feature = "alert-routing")]
        {
            #[cfg(feature = "alert-delivery")]
            let alertmanagers = self.alertmanagers.as_slice();
            #[cfg(not(feature = "alert-delivery"))]
            let alertmanagers: &[String] = &[];
            check_receivers(&engine, &self.notifiers, alertmanagers)?;
        }
        Ok(Some(crate::alerting::AlertSettings {
            engine,
            interval: self.alert_interval,
            #[cfg(feature = "alert-routing")]
            notifiers: std::mem::take(&mut self.notifiers),
            #[cfg(feature = "alert-delivery")]
            alertmanagers: std::mem::take(&mut self.alertmanagers),
            #[cfg(feature = "alert-delivery")]
            resend_delay: self.alertmanager_resend_delay,
        }))
    }

    /// The listener's address, allowed peers and limits, checked; `None`
    /// without [`listen`](MonitorBuilder::listen).
    #[cfg(feature = "listener")]
    #[allow(clippy::type_complexity)]
    fn check_listener(
        &self,
    ) -> Result<Option<(std::net::SocketAddr, Vec<ipnet::IpNet>, crate::http::Limits)>, Error> {
        use ipnet::IpNet;
        let limits = self.listener_limits;
        for value in [limits.header_read, limits.idle, limits.write] {
            check(value.is_zero(), "listener_timeouts", || {
                "every timeout must be longer than zero".into()
            })?;
        }
        at_least_one(limits.max_connections, "listener_max_connections")?;
        let Some(address) = &self.listen else {
            return Ok(None);
        };
        let address = listen_address(address)?;
        let mut allowed = Vec::with_capacity(self.allowed.len());
        for address in &self.allowed {
            let net = address
                .parse::<IpNet>()
                .or_else(|_| address.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|e| Error::Address {
                    setting: "allow",
                    address: address.clone(),
                    reason: e.to_string(),
                })?;
            allowed.push(net);
        }
        Ok(Some((address, allowed, limits)))
    }
}

impl Prepared {
    /// Whether anything needs a tokio runtime: the listener or alerts.
    #[cfg(any(feature = "listener", feature = "alerts"))]
    pub(super) fn needs_runtime(&self) -> bool {
        #[cfg(feature = "listener")]
        if self.listen.is_some() {
            return true;
        }
        #[cfg(feature = "alerts")]
        if self.alerts.is_some() {
            return true;
        }
        false
    }

    /// The monitor with no runtime: the registry and its upkeep thread.
    pub(super) fn without_runtime(self) -> Monitor {
        let upkeep = self
            .upkeep_interval
            .map(|interval| Upkeep::spawn(self.recorder.clone(), interval));
        monitor(self.parts(upkeep))
    }

    /// The monitor's parts with no listener, alerts or tasks: the registry,
    /// the upkeep thread if any, and the service, started.
    fn parts(self, upkeep: Option<Upkeep>) -> Inner {
        Inner {
            #[cfg(feature = "alerts")]
            alerts: None,
            #[cfg(feature = "listener")]
            listen_address: None,
            #[cfg(any(feature = "listener", feature = "alerts"))]
            _stop: None,
            _upkeep: upkeep,
            #[cfg(feature = "service")]
            service: crate::service::Service::start(self.service, &self.recorder),
            recorder: self.recorder,
        }
    }

    /// Inside the tokio runtime the tasks will run on: builds the alert
    /// delivery (first: it may still refuse an Alertmanager URL, and
    /// nothing has started yet then) and binds the listener; the upkeep
    /// becomes a task when `upkeep_task`, a thread otherwise.
    #[cfg(any(feature = "listener", feature = "alerts"))]
    pub(super) fn start(mut self, upkeep_task: bool) -> Result<(Monitor, crate::Tasks), Error> {
        use crate::tasks::Task;
        let (stop, stopped) = crate::tasks::stop();
        #[cfg(feature = "alerts")]
        let (alerting, alerts) = match self.alerts.take() {
            Some(settings) => {
                let interval = settings.interval;
                let alerting = crate::alerting::Alerting::new(settings, self.recorder.clone())?;
                let task: Task = Box::pin(Arc::clone(&alerting).run(interval, stopped.clone()));
                (Some(alerting), Some(task))
            }
            None => (None, None),
        };
        #[cfg(feature = "listener")]
        let (listen_address, listener) = match self.listen.take() {
            Some((address, allowed, limits)) => {
                let recorder = self.recorder.clone();
                let (bound, serving) =
                    crate::http::bind(address, allowed, limits, recorder, stopped.clone())?;
                (Some(bound), Some(Box::pin(serving) as Task))
            }
            None => (None, None),
        };
        let (upkeep_thread, upkeep) = match self.upkeep_interval {
            Some(interval) if upkeep_task => {
                let ticks = crate::tasks::upkeep(self.recorder.clone(), interval, stopped);
                (None, Some(Box::pin(ticks) as Task))
            }
            Some(interval) => (Some(Upkeep::spawn(self.recorder.clone(), interval)), None),
            None => (None, None),
        };
        let monitor = monitor(Inner {
            #[cfg(feature = "alerts")]
            alerts: alerting,
            #[cfg(feature = "listener")]
            listen_address,
            _stop: Some(stop),
            ..self.parts(upkeep_thread)
        });
        let tasks = crate::Tasks {
            #[cfg(feature = "listener")]
            listener,
            #[cfg(feature = "alerts")]
            alerts,
            upkeep,
        };
        Ok((monitor, tasks))
    }
}

/// The monitor holding `inner`, with its service's health metrics started.
fn monitor(inner: Inner) -> Monitor {
    let monitor = Monitor {
        inner: Arc::new(inner),
    };
    #[cfg(feature = "service")]
    crate::service::start_health_metrics(&monitor);
    monitor
}

/// Fails unless every receiver `engine` can notify has a notifier, or the
/// alerts go only to Alertmanager (no notifier at all).
#[cfg(feature = "alert-routing")]
fn check_receivers(
    engine: &vigil_alert::Engine,
    notifiers: &[(String, Arc<dyn vigil_alert::notify::Notifier>)],
    alertmanagers: &[String],
) -> Result<(), Error> {
    if notifiers.is_empty() && !alertmanagers.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = Vec::new();
    for (receiver, _) in notifiers {
        if !known.contains(&receiver.as_str()) {
            known.push(receiver);
        }
    }
    let unknown: Vec<&str> = engine
        .receivers()
        .into_iter()
        .filter(|receiver| !known.contains(receiver))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::UnknownReceivers {
        unknown: unknown.iter().map(|s| (*s).to_owned()).collect(),
        known: known.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Fails unless `key` can be a global label: a label name in Prometheus's
/// grammar that the exposition does not reserve.
fn check_global_label(key: &str) -> Result<(), Error> {
    let refuse = |reason: String| {
        Err(Error::Setting {
            setting: "global_label",
            reason: format!("the key {key:?} {reason}"),
        })
    };
    if !crate::sanitize::valid_label_key(key) {
        return match crate::sanitize::label_key(key) {
            None => refuse("is empty".into()),
            Some(valid) => refuse(format!(
                "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*); {valid:?} would be"
            )),
        };
    }
    if key.starts_with("__") {
        return refuse("is reserved: names starting with `__` are Prometheus's own".into());
    }
    if key == "le" || key == "quantile" {
        return refuse(format!(
            "is reserved: histograms and summaries add `{key}` to their samples"
        ));
    }
    if key == OVERFLOW_LABEL {
        return refuse("is reserved: it marks a metric's overflow series".into());
    }
    Ok(())
}

#[cfg(feature = "listener")]
/// The socket address of the `listen` setting: an IP address and port, or
/// a host name and port resolved to its first address.
fn listen_address(address: &str) -> Result<std::net::SocketAddr, Error> {
    if let Ok(parsed) = address.parse::<std::net::SocketAddr>() {
        return Ok(parsed);
    }
    let error = |reason: String| Error::Address {
        setting: "listen",
        address: address.to_owned(),
        reason,
    };
    let mut resolved = std::net::ToSocketAddrs::to_socket_addrs(address).map_err(|e| {
        error(format!(
            "not an address and port, nor a host name and port that resolves: {e}"
        ))
    })?;
    resolved
        .next()
        .ok_or_else(|| error("the host name resolves to no address".into()))
}
