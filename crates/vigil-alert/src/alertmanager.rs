//! Sending alerts to Alertmanager the way Prometheus does: every active
//! alert, again and again, each time valid for a few resend intervals.
//!
//! Alertmanager treats a posted alert as a claim with an expiry: a firing
//! alert stays active until its `endsAt`, or for its `resolve_timeout` (5m
//! by default) when it has none. So Prometheus never sends an alert just
//! once. After every evaluation it sends its active alerts if one of them
//! started firing or resolved, and at least every `resend_delay` (1m by
//! default) anyway; a firing alert is sent with
//! `endsAt = now + 4 x max(evaluation interval, resend_delay)` (so two
//! lost evaluations or sends do not resolve it), a resolved one with its
//! resolution time as `endsAt`, and resolved alerts are sent again for 15
//! minutes, so an Alertmanager that missed the first one still learns.
//! Alertmanager then groups, deduplicates (by the label set's
//! [fingerprint](crate::Alert::fingerprint), which vigil computes as it
//! does), silences, inhibits and routes.
//!
//! - [`Resender`] decides what to send and when: a pure function of the
//!   firing alerts and the time it is given, testable with synthetic times.
//! - [`Sender`] feeds it an [`Engine`]'s firing alerts and posts them to
//!   one or more Alertmanagers (`POST <base URL>/api/v2/alerts`, at most
//!   [`MAX_BATCH_SIZE`] alerts a request) through a [`Dispatcher`]: a
//!   bounded queue per Alertmanager, attempts under a timeout, retries with
//!   backoff, and counted, logged drops (`alert_notifications_total` and
//!   `alert_notification_failures_total` with `receiver="alertmanager"`
//!   and `notifier` = the Alertmanager's URL). Sending never waits on the
//!   network.
//!
//! This path bypasses vigil's own routing, grouping, timers, silences and
//! inhibit rules: Alertmanager applies its own. Pending alerts are not
//! sent; silenced ones are (silence them in Alertmanager).
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use vigil_alert::alertmanager::Sender;
//! use vigil_alert::{Comparison, Engine, MemorySource, Rule, Severity};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut engine = Engine::new([Rule::builder("QueueBacklog")
//!     .gauge("queue_depth")
//!     .threshold(Severity::High, Comparison::Greater, 100.0)
//!     .build()?])?;
//! let sender = Sender::builder()
//!     .alertmanager("http://alertmanager-a:9093")
//!     .alertmanager("http://alertmanager-b:9093")
//!     .evaluation_interval(Duration::from_secs(15))
//!     .resend_delay(Duration::from_secs(60))
//!     .build()?;
//! assert_eq!(sender.urls()[0], "http://alertmanager-a:9093/api/v2/alerts");
//!
//! let mut source = MemorySource::new();
//! source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
//! let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! engine.evaluate(now, &source);
//! // After each evaluation: the alert just started firing, so it is due.
//! assert_eq!(sender.send(now, &engine), 1);
//! // Nothing changed and the resend delay has not passed: nothing is due.
//! engine.evaluate(now + Duration::from_secs(15), &source);
//! assert_eq!(sender.send(now + Duration::from_secs(15), &engine), 0);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::notify::webhook::redacted;
use crate::notify::{Dispatcher, DispatcherBuilder, NotifyError, WebhookBuilder};
use crate::time::elapsed;
use crate::{Alert, AlertStatus, Engine, Labels, Notification};

/// The path of Alertmanager's API that receives alerts, appended to the
/// base URL.
pub const API_PATH: &str = "/api/v2/alerts";

/// How often every active alert is sent at least (Prometheus's
/// `--rules.alert.resend-delay` default).
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);

/// How long a resolved alert keeps being sent (Prometheus's
/// `resolvedRetention`).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The most alerts posted in one request (Prometheus's `maxBatchSize`).
pub const MAX_BATCH_SIZE: usize = 64;

/// The `receiver` label of the delivery metrics on this path.
pub const RECEIVER: &str = "alertmanager";

/// How many resend intervals a firing alert stays valid (Prometheus:
/// "allow for two Eval or Alertmanager send failures").
const VALIDITY_INTERVALS: u32 = 4;

/// Decides which alerts to send to Alertmanager, and when, as Prometheus's
/// rule manager does.
///
/// Feed it the firing alerts after every evaluation
/// ([`update`](Self::update)); it returns what to send now:
/// - nothing, unless an alert started firing or resolved since the last
///   send, or `resend_delay` has passed since then (or the clock went
///   back);
/// - otherwise every alert it holds: the firing ones with
///   `ends_at = now + 4 x max(evaluation interval, resend_delay)`
///   ([`valid_for`](Self::valid_for)), and those that resolved within
///   [`RESOLVED_RETENTION`] with [`AlertStatus::Resolved`] and their
///   resolution time as `ends_at`.
///
/// Alerts are identified by their label set (its
/// [fingerprint](crate::Alert::fingerprint)); an alert that fires again
/// after resolving is a new alert with a new `starts_at`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vigil_alert::alertmanager::Resender;
/// use vigil_alert::{labels, Alert, AlertStatus, Labels, Severity};
///
/// let t = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
/// let down = Alert {
///     rule: "Down".into(),
///     labels: labels([("alertname", "Down"), ("severity", "critical")]),
///     annotations: Labels::new(),
///     status: AlertStatus::Firing,
///     severity: Severity::Critical,
///     value: Some(1.0),
///     starts_at: t(0),
///     ends_at: None,
///     silenced: false,
///     inhibited: false,
///     escalated: false,
/// };
/// // Evaluated every 15 s, re-sent every 60 s: valid for 4 x 60 s.
/// let mut resender = Resender::new(Some(Duration::from_secs(15)), Duration::from_secs(60));
/// let sent = resender.update(t(0), [down.clone()]);
/// assert_eq!(sent[0].ends_at, Some(t(240)));
/// assert!(resender.update(t(15), [down.clone()]).is_empty());
/// assert_eq!(resender.update(t(60), [down.clone()])[0].ends_at, Some(t(300)));
///
/// // It stops firing: sent at once as resolved.
/// let sent = resender.update(t(75), []);
/// assert_eq!((sent[0].status, sent[0].ends_at), (AlertStatus::Resolved, Some(t(75))));
/// ```
#[derive(Clone, Debug)]
pub struct Resender {
    resend_delay: Duration,
    valid_for: Duration,
    /// By fingerprint: the firing alerts as last evaluated, and the
    /// resolved ones (`ends_at` their resolution time) still retained.
    alerts: HashMap<String, Alert>,
    last_sent: Option<SystemTime>,
    /// An alert started firing or resolved since the last send.
    changed: bool,
}

impl Resender {
    /// Decisions for alerts evaluated every `evaluation_interval` (`None`
    /// when evaluation has no fixed interval: the validity then derives
    /// from `resend_delay` alone), re-sent at least every `resend_delay`.
    pub fn new(evaluation_interval: Option<Duration>, resend_delay: Duration) -> Self {
        let delta = evaluation_interval.map_or(resend_delay, |i| i.max(resend_delay));
        Resender {
            resend_delay,
            valid_for: delta.saturating_mul(VALIDITY_INTERVALS),
            alerts: HashMap::new(),
            last_sent: None,
            changed: false,
        }
    }

    /// How often every active alert is sent at least.
    pub fn resend_delay(&self) -> Duration {
        self.resend_delay
    }

    /// How long after a send a firing alert stays valid in Alertmanager:
    /// `4 x max(evaluation interval, resend_delay)`.
    pub fn valid_for(&self) -> Duration {
        self.valid_for
    }

    /// The alerts held: firing, and resolved within [`RESOLVED_RETENTION`]
    /// of the last update.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether no alert is held.
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Records that `firing` are the alerts firing at `now` (alerts with
    /// another status are ignored; those held and missing from `firing`
    /// resolve at `now`) and returns the alerts to send now, firing ones
    /// first, each sorted by labels: see [the type's docs](Self).
    pub fn update(
        &mut self,
        now: SystemTime,
        firing: impl IntoIterator<Item = Alert>,
    ) -> Vec<Alert> {
        let is_firing = |a: &Alert| a.status == AlertStatus::Firing;
        let mut firing: HashMap<String, Alert> = (firing.into_iter().filter(is_firing))
            .map(|alert| (alert.fingerprint(), alert))
            .collect();
        let changed = &mut self.changed;
        self.alerts.retain(|key, held| {
            if let Some(alert) = firing.remove(key) {
                // Still firing (its annotations and value may have
                // changed), or firing again after it resolved.
                *changed |= !is_firing(held);
                *held = alert;
            } else if is_firing(held) {
                (held.status, held.ends_at) = (AlertStatus::Resolved, Some(now));
                *changed = true;
            }
            let retained = |at| elapsed(now, at) <= RESOLVED_RETENTION;
            is_firing(held) || held.ends_at.is_none_or(retained)
        });
        // New alerts.
        *changed |= !firing.is_empty();
        self.alerts.extend(firing);
        let resend = self
            .last_sent
            .is_none_or(|last| now < last || elapsed(now, last) >= self.resend_delay);
        if !(self.changed || resend) || self.alerts.is_empty() {
            return Vec::new();
        }
        self.changed = false;
        self.last_sent = Some(now);
        let valid_until = Some(now + self.valid_for);
        let mut out: Vec<Alert> = self.alerts.values().cloned().collect();
        for alert in out.iter_mut().filter(|a| is_firing(a)) {
            alert.ends_at = valid_until;
        }
        out.sort_by_cached_key(|a| (!is_firing(a), a.labels.clone()));
        out
    }
}

/// Sends an [`Engine`]'s alerts to one or more Alertmanagers, as
/// Prometheus does (see [the module docs](self)).
///
/// Call [`send`](Self::send) after every evaluation; it only queues
/// requests, which tasks on a tokio runtime deliver. Dropping the sender
/// closes its queues (their tasks deliver what is queued, unless the
/// runtime shuts down first); [`shutdown`](Self::shutdown) also waits.
#[derive(Debug)]
pub struct Sender {
    resender: Mutex<Resender>,
    dispatcher: Dispatcher,
    urls: Vec<String>,
}

impl Sender {
    /// Starts configuring a sender.
    pub fn builder() -> SenderBuilder {
        SenderBuilder::default()
    }

    /// The URLs alerts are posted to, one per Alertmanager.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// How long a firing alert stays valid after a send (see
    /// [`Resender::valid_for`]).
    pub fn valid_for(&self) -> Duration {
        self.resender().valid_for()
    }

    /// Queues what is due after an evaluation of `engine` at `now`: reads
    /// its firing alerts ([`Engine::alerts`]) and hands them to
    /// [`send_alerts`](Self::send_alerts). Returns how many alerts were
    /// due.
    pub fn send(&self, now: SystemTime, engine: &Engine) -> usize {
        // `update` ignores the pending ones.
        self.send_alerts(now, engine.alerts(now))
    }

    /// Records that `firing` are the alerts firing at `now`
    /// ([`Resender::update`]) and queues the alerts due, in requests of at
    /// most [`MAX_BATCH_SIZE`], for every Alertmanager. Never waits: a full
    /// queue drops the request (counted as `queue_full`). Returns how many
    /// alerts were due.
    pub fn send_alerts(&self, now: SystemTime, firing: impl IntoIterator<Item = Alert>) -> usize {
        let due = self.resender().update(now, firing);
        self.dispatcher.dispatch_all(batches(&due));
        due.len()
    }

    /// Closes the queues and waits until everything queued has been
    /// delivered or dropped.
    pub async fn shutdown(self) {
        self.dispatcher.shutdown().await;
    }

    fn resender(&self) -> std::sync::MutexGuard<'_, Resender> {
        self.resender.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The alerts as requests of at most [`MAX_BATCH_SIZE`] alerts.
fn batches(alerts: &[Alert]) -> Vec<Notification> {
    let batch = |chunk: &[Alert]| Notification {
        receiver: RECEIVER.to_owned(),
        group_key: String::new(),
        group_labels: Labels::new(),
        // Firing if any is: they come first.
        status: chunk[0].status,
        alerts: chunk.to_vec(),
        common_labels: Labels::new(),
        common_annotations: Labels::new(),
    };
    alerts.chunks(MAX_BATCH_SIZE).map(batch).collect()
}

/// Configures a [`Sender`]: see [`Sender::builder`].
#[must_use]
#[derive(Debug, Default)]
pub struct SenderBuilder {
    urls: Vec<String>,
    /// Unset: [`DEFAULT_RESEND_DELAY`].
    resend_delay: Option<Duration>,
    evaluation_interval: Option<Duration>,
    /// The generator URL and root certificates of every Alertmanager's
    /// webhook.
    webhook: WebhookBuilder,
    dispatcher: DispatcherBuilder,
}

impl SenderBuilder {
    crate::notify::setters! {
        /// Sends to the Alertmanager at `url`; call again for each of several
        /// (each gets every alert, as Prometheus sends to all). `url` is the
        /// base URL (`http://alertmanager:9093`, or with Alertmanager's
        /// `--web.route-prefix`, `http://proxy/alertmanager`): alerts are
        /// posted to `<url>/api/v2/alerts`. A URL that already ends in
        /// `/api/v2/alerts` is used as it is. `http://` or `https://`.
        alertmanager(url: impl Into<String>) => push urls(url.into());

        /// Trusts the certificates in `pem` (PEM-encoded) for `https://`
        /// Alertmanagers, next to the Mozilla roots (see
        /// [`WebhookBuilder::root_certificate`](crate::notify::WebhookBuilder::root_certificate)).
        root_certificate(pem: impl Into<Vec<u8>>) => push webhook.root_certificates(pem.into());

        /// How often every active alert is sent at least (default
        /// [`DEFAULT_RESEND_DELAY`], 1 min; more than zero).
        resend_delay(delay: Duration) => resend_delay = Some(delay);

        /// How often the engine is evaluated (more than zero). Unset, firing
        /// alerts are valid for `4 x resend_delay`; set, for
        /// `4 x max(interval, resend_delay)`.
        evaluation_interval(interval: Duration) => evaluation_interval = Some(interval);

        /// The `generatorURL` of every alert, the link Alertmanager shows as
        /// its source (e.g. the service's status page). Omitted when unset.
        generator_url(url: impl Into<String>) => webhook.generator_url = Some(url.into());

        /// How the requests are queued, timed out and retried (default
        /// [`Dispatcher::builder`]'s settings); any notifiers it holds are
        /// ignored.
        dispatcher(dispatcher: DispatcherBuilder) => dispatcher = dispatcher;
    }

    /// Checks the settings and starts one delivery task per Alertmanager
    /// on the current tokio runtime (to use another runtime, call it inside
    /// `Handle::enter`). Fails outside one ([`NotifyError::NoRuntime`]),
    /// with [`NotifyError::InvalidUrl`] (naming the URL) for a URL that is
    /// not an absolute `http://` or `https://` URL, and with
    /// [`NotifyError::InvalidConfig`] without any Alertmanager or with a
    /// zero `resend_delay` or `evaluation_interval`, or one longer than
    /// [`MAX_DURATION`](crate::MAX_DURATION).
    pub fn build(self) -> Result<Sender, NotifyError> {
        let resend_delay = self.resend_delay.unwrap_or(DEFAULT_RESEND_DELAY);
        let positive = crate::time::not_positive;
        let no_url = (self.urls.is_empty()).then(|| "no Alertmanager URL given".to_owned());
        let interval = self.evaluation_interval.and_then(positive);
        NotifyError::check([
            ("alertmanager", no_url),
            ("resend_delay", positive(resend_delay)),
            ("evaluation_interval", interval),
        ])
        .map_err(|e| e.in_builder("SenderBuilder"))?;
        let mut dispatcher = self.dispatcher.without_notifiers();
        let mut urls = Vec::new();
        for url in self.urls {
            let mut webhook = self.webhook.clone().alertmanager();
            webhook.url = url;
            let mut webhook = webhook.build()?;
            // Named by its URL (credentials left out), so the delivery
            // metrics tell the Alertmanagers apart.
            webhook.name = redacted(&webhook.url);
            urls.push(webhook.url().to_owned());
            dispatcher = dispatcher.receiver(RECEIVER, webhook);
        }
        Ok(Sender {
            resender: Mutex::new(Resender::new(self.evaluation_interval, resend_delay)),
            dispatcher: dispatcher.build()?,
            urls,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::{Severity, labels};

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn firing(name: &str, since: u64) -> Alert {
        Alert {
            rule: name.into(),
            labels: labels([("alertname", name), ("severity", "high")]),
            annotations: labels([("summary", format!("{name} since {since}"))]),
            status: AlertStatus::Firing,
            severity: Severity::High,
            value: Some(1.0),
            starts_at: t(since),
            ends_at: None,
            silenced: false,
            inhibited: false,
            escalated: false,
        }
    }

    /// (alertname, status, ends_at in seconds after t(0)) of what was sent.
    fn summary(sent: &[Alert]) -> Vec<(String, AlertStatus, u64)> {
        sent.iter()
            .map(|a| {
                let ends = a.ends_at.expect("every sent alert has an end");
                let secs = ends.duration_since(t(0)).unwrap().as_secs();
                (a.labels["alertname"].clone(), a.status, secs)
            })
            .collect()
    }

    fn s(name: &str, status: AlertStatus, ends: u64) -> (String, AlertStatus, u64) {
        (name.to_owned(), status, ends)
    }

    use AlertStatus::{Firing, Resolved};

    #[test]
    fn validity_is_four_times_the_longer_of_interval_and_resend_delay() {
        let secs = Duration::from_secs;
        assert_eq!(
            Resender::new(Some(secs(15)), secs(60)).valid_for(),
            secs(240)
        );
        assert_eq!(
            Resender::new(Some(secs(120)), secs(60)).valid_for(),
            secs(480)
        );
        assert_eq!(Resender::new(None, secs(2)).valid_for(), secs(8));
    }

    #[test]
    fn firing_alerts_are_sent_when_new_and_every_resend_delay() {
        let mut r = Resender::new(Some(Duration::from_secs(15)), Duration::from_secs(60));
        let a = firing("A", 0);
        assert_eq!(summary(&r.update(t(0), [a.clone()])), [s("A", Firing, 240)]);
        for now in [15, 30, 45] {
            assert!(r.update(t(now), [a.clone()]).is_empty(), "at {now}");
        }
        // Exactly one resend delay later, with a fresh validity.
        assert_eq!(
            summary(&r.update(t(60), [a.clone()])),
            [s("A", Firing, 300)]
        );
        assert!(r.update(t(75), [a.clone()]).is_empty());
        // Another alert starts firing: every active alert goes out now.
        let b = firing("B", 90);
        assert_eq!(
            summary(&r.update(t(90), [a.clone(), b.clone()])),
            [s("A", Firing, 330), s("B", Firing, 330)]
        );
        assert!(r.update(t(105), [b.clone(), a.clone()]).is_empty());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn resolved_alerts_are_sent_at_once_and_repeated_for_fifteen_minutes() {
        let mut r = Resender::new(Some(Duration::from_secs(15)), Duration::from_secs(60));
        let a = firing("A", 0);
        let b = firing("B", 0);
        r.update(t(0), [a.clone(), b.clone()]);
        let sent = r.update(t(30), [b.clone()]);
        assert_eq!(summary(&sent), [s("B", Firing, 270), s("A", Resolved, 30)]);
        assert_eq!(sent[1].starts_at, t(0), "it keeps its start");
        // Repeated every resend delay while retained...
        assert!(r.update(t(45), [b.clone()]).is_empty());
        assert_eq!(
            summary(&r.update(t(90), [b.clone()])),
            [s("B", Firing, 330), s("A", Resolved, 30)]
        );
        // ... up to and including 15 minutes after it resolved ...
        let last = 30 + 15 * 60;
        let sent = r.update(t(last), [b.clone()]);
        assert_eq!(
            summary(&sent),
            [s("B", Firing, last + 240), s("A", Resolved, 30)]
        );
        // ... and not after.
        let sent = r.update(t(last + 60), [b.clone()]);
        assert_eq!(summary(&sent), [s("B", Firing, last + 300)]);
        assert_eq!(r.len(), 1);
        // The last one resolves; once its retention ends nothing is held.
        assert_eq!(
            summary(&r.update(t(last + 75), [])),
            [s("B", Resolved, last + 75)]
        );
        assert!(r.update(t(last + 75 + 15 * 60 + 1), []).is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn an_alert_that_fires_again_is_new() {
        let mut r = Resender::new(None, Duration::from_secs(60));
        r.update(t(0), [firing("A", 0)]);
        r.update(t(10), []);
        let sent = r.update(t(20), [firing("A", 20)]);
        assert_eq!(summary(&sent), [s("A", Firing, 260)]);
        assert_eq!(sent[0].starts_at, t(20));
    }

    #[test]
    fn annotations_follow_the_latest_evaluation_without_forcing_a_send() {
        let mut r = Resender::new(None, Duration::from_secs(60));
        r.update(t(0), [firing("A", 0)]);
        let mut later = firing("A", 0);
        later.annotations = labels([("summary", "worse")]);
        assert!(r.update(t(10), [later.clone()]).is_empty());
        assert_eq!(r.update(t(60), [later])[0].annotations["summary"], "worse");
    }

    #[test]
    fn a_clock_that_went_back_resends() {
        let mut r = Resender::new(None, Duration::from_secs(60));
        r.update(t(100), [firing("A", 0)]);
        assert_eq!(r.update(t(50), [firing("A", 0)]).len(), 1);
    }

    #[test]
    fn pending_or_resolved_input_is_not_taken_for_firing() {
        let mut r = Resender::new(None, Duration::from_secs(60));
        let mut resolved = firing("A", 0);
        resolved.status = Resolved;
        assert!(r.update(t(0), [resolved]).is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn requests_hold_at_most_a_batch() {
        let alerts: Vec<Alert> = (0..130).map(|i| firing(&format!("A{i}"), 0)).collect();
        let sizes: Vec<usize> = batches(&alerts).iter().map(|n| n.alerts.len()).collect();
        assert_eq!(sizes, [64, 64, 2]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn base_urls_get_the_api_path() {
        let url = |base: &str| {
            let webhook = crate::notify::WebhookNotifier::builder(base.to_owned());
            webhook.alertmanager().build().map(|w| w.url().to_owned())
        };
        let ok = |base: &str| url(base).unwrap();
        assert_eq!(ok("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(ok("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            ok("http://proxy/alertmanager/"),
            "http://proxy/alertmanager/api/v2/alerts"
        );
        assert_eq!(
            ok("http://am:9093/api/v2/alerts"),
            "http://am:9093/api/v2/alerts"
        );
        assert!(
            matches!(url("am:9093"), Err(NotifyError::InvalidUrl { url, .. }) if url == "am:9093"),
            "rejected naming the URL as given"
        );
    }

    #[tokio::test]
    async fn bad_settings_name_the_setting_or_url() {
        let err = Sender::builder()
            .alertmanager("ftp://am:9093")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::InvalidUrl { url, .. } if url == "ftp://am:9093"),
            "{err}"
        );
        let field = |builder: SenderBuilder| match builder.build() {
            Err(NotifyError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(field(Sender::builder()), "alertmanager");
        let am = || Sender::builder().alertmanager("http://am:9093");
        assert_eq!(field(am().resend_delay(Duration::ZERO)), "resend_delay");
    }

    /// Known fingerprints, from Prometheus's own tests of
    /// `labelSetToFingerprint` (`prometheus/common` `model/signature_test.go`)
    /// and computed with the same algorithm.
    #[test]
    fn fingerprints_are_alertmanagers() {
        let cases: [(&[(&str, &str)], u64); 6] = [
            (&[], 14_695_981_039_346_656_037),
            (
                &[("name", "garland, briggs"), ("fear", "love is not enough")],
                5_799_056_148_416_392_346,
            ),
            (
                &[("first-label", "first-label-value")],
                5_146_282_821_936_882_169,
            ),
            (
                &[
                    ("first-label", "first-label-value"),
                    ("second-label", "second-label-value"),
                ],
                3_195_800_080_984_914_717,
            ),
            (
                &[
                    ("first-label", "first-label-value"),
                    ("second-label", "second-label-value"),
                    ("third-label", "third-label-value"),
                ],
                13_843_036_195_897_128_121,
            ),
            (
                &[
                    ("alertname", "HighErrorRate"),
                    ("function", "checkout"),
                    ("severity", "critical"),
                    ("zone", "é-ü"),
                ],
                0xd090_92ff_1858_c690,
            ),
        ];
        for (pairs, expected) in cases {
            let set = labels(pairs.iter().copied());
            let mut alert = firing("x", 0);
            alert.labels = set;
            assert_eq!(alert.fingerprint(), format!("{expected:016x}"), "{pairs:?}");
        }
        assert_eq!(
            firing("x", 0).fingerprint().len(),
            16,
            "always 16 hex digits"
        );
    }
}
