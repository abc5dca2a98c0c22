//! Shared by the notification tests: sample notifications, a metrics
//! recorder to read counters from, a tracing subscriber that keeps events,
//! and tiny HTTP endpoints (answering by script, hanging, or closed).

#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use vigil_alert::{Alert, AlertStatus, Labels, Notification, Severity, labels};

/// A one-alert notification for `receiver`, started a minute ago (and, if
/// resolved, ended a second ago).
pub fn notification(receiver: &str, status: AlertStatus) -> Notification {
    let now = SystemTime::now();
    let alert = Alert {
        rule: "HighErrorRate".into(),
        labels: labels([
            ("alertname", "HighErrorRate"),
            ("function", "checkout"),
            ("severity", "critical"),
        ]),
        annotations: labels([("summary", "checkout fails 0.3 of calls")]),
        status,
        severity: Severity::Critical,
        value: Some(0.3),
        starts_at: now - Duration::from_secs(60),
        ends_at: (status == AlertStatus::Resolved).then(|| now - Duration::from_secs(1)),
        silenced: false,
        inhibited: false,
        escalated: false,
    };
    Notification {
        receiver: receiver.into(),
        group_key: r#"{}:{alertname="HighErrorRate"}"#.into(),
        group_labels: labels([("alertname", "HighErrorRate")]),
        status,
        common_labels: alert.labels.clone(),
        common_annotations: alert.annotations.clone(),
        alerts: vec![alert],
    }
}

/// Counter totals from a [`DebuggingRecorder`] (whose snapshots reset
/// counters, so totals are summed here).
///
/// Install the recorder for the test's thread with
/// `metrics::set_default_local_recorder(&recorder)`; with a current-thread
/// runtime the dispatcher's tasks record on that thread too.
pub struct Counters {
    snapshotter: Snapshotter,
    totals: HashMap<(String, Vec<(String, String)>), u64>,
    described: HashSet<String>,
}

impl Counters {
    pub fn new(recorder: &DebuggingRecorder) -> Self {
        Counters {
            snapshotter: recorder.snapshotter(),
            totals: HashMap::new(),
            described: HashSet::new(),
        }
    }

    fn refresh(&mut self) {
        for (key, _unit, description, value) in self.snapshotter.snapshot().into_vec() {
            let (_kind, key) = key.into_parts();
            if description.is_some() {
                self.described.insert(key.name().to_owned());
            }
            if let DebugValue::Counter(n) = value {
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                *self
                    .totals
                    .entry((key.name().to_owned(), labels))
                    .or_default() += n;
            }
        }
    }

    /// The total of counter `name` over the series having all `labels`.
    pub fn get(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        self.totals
            .iter()
            .filter(|((n, series), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| series.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|(_, total)| total)
            .sum()
    }

    /// Every label set recorded for counter `name`.
    pub fn series(&mut self, name: &str) -> Vec<Vec<(String, String)>> {
        self.refresh();
        let mut out: Vec<_> = self
            .totals
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, labels)| labels.clone())
            .collect();
        out.sort();
        out
    }

    /// Whether `name` has a description.
    pub fn described(&mut self, name: &str) -> bool {
        self.refresh();
        self.described.contains(name)
    }
}

/// One captured tracing event.
#[derive(Clone, Debug)]
pub struct CapturedEvent {
    pub level: Level,
    pub target: String,
    /// Field values as displayed; the message is under `message`.
    pub fields: BTreeMap<String, String>,
}

impl CapturedEvent {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// A subscriber that records every event (spans are ignored); install it
/// for the test's thread with `tracing::subscriber::set_default`.
#[derive(Clone)]
pub struct Capture {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

/// Creating a capture first installs [`Interested`] as the global default
/// (once per test binary).
///
/// tracing caches each callsite's interest when the callsite is first hit,
/// asking the dispatchers registered at that moment; while a test's
/// capture is the only one, it asks the hitting thread's own default. A
/// test without a subscriber hitting a callsite first (say, a drop for an
/// unknown receiver) would then cache `Interest::never` for it, and the
/// capturing test running beside it would see no event from it. With
/// `Interested` registered for good, no callsite is ever cached as never.
impl Default for Capture {
    fn default() -> Self {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            // Registering it also rebuilds the interest of the callsites
            // hit before.
            tracing::subscriber::set_global_default(Interested)
                .expect("no other global tracing subscriber in the notification tests");
        });
        Capture {
            events: Arc::default(),
        }
    }
}

/// The global default: enables everything and discards it, so that
/// callsites are enabled for whichever capture a thread sets.
struct Interested;

impl Subscriber for Interested {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

impl Capture {
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Events whose message contains `text`.
    pub fn with_message(&self, text: &str) -> Vec<CapturedEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.field("message").is_some_and(|m| m.contains(text)))
            .collect()
    }
}

struct FieldMap<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldMap<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldMap(&mut fields));
        self.events.lock().unwrap().push(CapturedEvent {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// A request the [`HttpServer`] received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `POST /path HTTP/1.1`.
    pub line: String,
    /// Lowercased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

/// What the [`HttpServer`] does with each connection.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Answer with statuses from the script (the last one repeats).
    Answer,
    /// Accept, read nothing, answer nothing, keep the connection open.
    Hang,
    /// Read the request, answer the first status with a body announced as
    /// a gigabyte of which only the first kilobyte is sent, and keep the
    /// connection open.
    Endless,
}

/// A plain-thread HTTP/1.1 endpoint on a free loopback port, independent
/// of the test's runtime (and of its paused clock). Stops on drop.
pub struct HttpServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Answers request `i` with `statuses[i]`, then the last status again.
    pub fn answering(statuses: &[u16]) -> Self {
        let script =
            (statuses.iter()).map(|&s| (s, String::new(), format!("status {s} by script")));
        Self::start(Mode::Answer, script.collect())
    }

    /// Answers request `i` with `script[i]` (status and body), then the
    /// last one again.
    pub fn answering_with(script: &[(u16, &str)]) -> Self {
        let script = script
            .iter()
            .map(|&(s, body)| (s, String::new(), body.to_owned()));
        Self::start(Mode::Answer, script.collect())
    }

    /// Answers request `i` with `script[i]`: a status, header lines
    /// (`"retry-after: 7\r\n"`) and a body; then the last one again.
    pub fn answering_with_headers(script: &[(u16, &str, &str)]) -> Self {
        let script = (script.iter()).map(|&(s, head, body)| (s, head.to_owned(), body.to_owned()));
        Self::start(Mode::Answer, script.collect())
    }

    /// Answers `status` with a body that never ends (1 KiB of a promised
    /// GiB, then nothing, the connection held open).
    pub fn endless_body(status: u16) -> Self {
        Self::start(Mode::Endless, vec![(status, String::new(), String::new())])
    }

    /// Accepts connections and never answers.
    pub fn hanging() -> Self {
        Self::start(Mode::Hang, Vec::new())
    }

    fn start(mode: Mode, script: Vec<(u16, String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    match mode {
                        Mode::Hang => held.push(stream),
                        Mode::Endless => {
                            let Some(request) = read_request(&mut stream) else {
                                continue;
                            };
                            requests.lock().unwrap().push(request);
                            let status = script.first().map_or(200, |(s, _, _)| *s);
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {status} Scripted\r\ncontent-length: 1073741824\r\n\r\n{}",
                                "x".repeat(1024)
                            );
                            let _ = stream.flush();
                            held.push(stream);
                        }
                        Mode::Answer => {
                            let Some(request) = read_request(&mut stream) else {
                                continue;
                            };
                            let mut requests = requests.lock().unwrap();
                            let i = requests.len().min(script.len().saturating_sub(1));
                            let (status, head, body) = script.get(i).cloned().unwrap_or((
                                200,
                                String::new(),
                                String::new(),
                            ));
                            requests.push(request);
                            drop(requests);
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\n\
                                 {head}connection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.shutdown(Shutdown::Both);
                        }
                    }
                }
            })
        };
        HttpServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(Request {
        line,
        headers,
        body,
    })
}

/// A loopback URL nothing listens on (connections are refused).
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// Labels of the first alert, for assertions.
pub fn first_labels(notification: &Notification) -> &Labels {
    &notification.alerts[0].labels
}
