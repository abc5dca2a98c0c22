//! The `/metrics` HTTP listener: a small hyper server on its own thread
//! (a current-thread tokio runtime, as `metrics-exporter-prometheus` runs
//! its exporter), answering `GET /metrics` with the exposition the scraper
//! negotiated: Prometheus's protobuf format (which carries native
//! histograms) when its `Accept` header prefers it, text otherwise.
//!
//! The listener defends itself against clients that hold connections
//! without using them ([`Limits`]): a request's head must arrive within
//! the header-read timeout once its first byte has, a connection with no
//! request in progress is closed after the idle timeout, and a response
//! (rendering and writing it) must be done within the write timeout, so a
//! client that never reads holds its buffered exposition no longer than
//! that. Concurrent requests for one format share one render
//! ([`Coalescer`]), and responses not yet written hold at most
//! [`MAX_UNSENT_BYTES`] together: a new one beyond that closes the
//! connections whose clients have left theirs unread longest. At most `max_connections` are open at once: a new one closes the
//! connection idle for longest (no request in progress), or is itself
//! closed when every connection is busy. Request heads are limited to
//! [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] (larger ones get `431`), and a
//! failing `accept` (e.g. `EMFILE`) is retried after a pause doubling
//! from 10 ms to 1 s, logged once per run of failures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue, VARY};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::Error;
use crate::recorder::Recorder;

/// The content type of Prometheus text exposition format 0.0.4.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The largest request head (request line and headers) the listener
/// reads, in bytes; hyper's smallest read buffer.
pub(crate) const MAX_HEAD_BYTES: usize = 8192;

/// The most header fields a request may have.
pub(crate) const MAX_HEADERS: usize = 32;

/// The most bytes of rendered responses not yet written that the
/// listener holds across its connections: a response that would go beyond
/// it closes the connections whose responses have waited longest for their
/// clients to read them.
pub(crate) const MAX_UNSENT_BYTES: u64 = 64 << 20;

/// Connections the kernel queues before they are accepted (capped by
/// `net.core.somaxconn`): a burst beyond it waits for SYN retransmission,
/// a second or more.
const BACKLOG: u32 = 1024;

/// The first pause after a failed `accept`; it doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while `accept` keeps failing.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest pause after a failed `accept`.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How the listener bounds what clients may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// From a request's first byte to the end of its head.
    pub(crate) header_read: Duration,
    /// With no request in progress, since the last byte read or the last
    /// response written.
    pub(crate) idle: Duration,
    /// From a request's head to its response written and flushed.
    pub(crate) write: Duration,
    /// Connections open at once.
    pub(crate) max_connections: usize,
}

impl Default for Limits {
    /// 10 s to send a request head, 90 s idle (longer than Prometheus's
    /// default one-minute scrape interval, so its keep-alive connection
    /// survives between scrapes), 30 s to answer, 64 connections.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(90),
            write: Duration::from_secs(30),
            max_connections: 64,
        }
    }
}

/// Marks "not set" in a [`Connection`] time field.
const UNSET: u64 = u64::MAX;

/// Milliseconds since the listener started, for [`Connection`]'s fields.
#[derive(Clone, Copy, Debug)]
struct Clock {
    start: Instant,
}

impl Clock {
    fn now(self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(UNSET - 1)
    }

    fn instant(self, millis: u64) -> Instant {
        self.start + Duration::from_millis(millis)
    }
}

/// What one open connection is doing, shared between its I/O, its
/// service, its watchdog and the accept loop.
#[derive(Debug)]
struct Connection {
    clock: Clock,
    /// A request's head has been read and its response is not flushed yet.
    busy: AtomicBool,
    /// When the current request's head was complete, or [`UNSET`].
    busy_since: AtomicU64,
    /// When the first byte of a request head arrived, or [`UNSET`].
    reading_since: AtomicU64,
    /// When a byte was last read or a response last flushed.
    last_active: AtomicU64,
    /// hyper has taken the whole response of the current request (it is
    /// written once the next flush succeeds).
    answered: AtomicBool,
    /// Bytes of the current response hyper holds until they are written.
    unsent: AtomicU64,
    /// The address of that response's buffer, which concurrent requests
    /// share (see [`Coalescer`]).
    unsent_buffer: AtomicUsize,
    /// Chosen to make room for a new connection.
    evicted: AtomicBool,
    /// Wakes the watchdog when a deadline may have moved earlier.
    changed: Notify,
    /// Tells the connection's task to close it.
    evict: Notify,
}

impl Connection {
    fn new(clock: Clock) -> Self {
        Self {
            clock,
            busy: AtomicBool::new(false),
            busy_since: AtomicU64::new(UNSET),
            reading_since: AtomicU64::new(UNSET),
            last_active: AtomicU64::new(clock.now()),
            answered: AtomicBool::new(false),
            unsent: AtomicU64::new(0),
            unsent_buffer: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
            evict: Notify::new(),
        }
    }

    /// When the connection is to be closed unless it makes progress.
    fn deadline(&self, limits: &Limits) -> u64 {
        let after = |since: u64, limit: Duration| {
            since.saturating_add(u64::try_from(limit.as_millis()).unwrap_or(UNSET))
        };
        if self.busy.load(Relaxed) {
            return after(self.busy_since.load(Relaxed), limits.write);
        }
        let idle = after(self.last_active.load(Relaxed), limits.idle);
        match self.reading_since.load(Relaxed) {
            UNSET => idle,
            since => idle.min(after(since, limits.header_read)),
        }
    }

    /// Bytes arrived.
    fn read(&self) {
        let now = self.clock.now();
        self.last_active.store(now, Relaxed);
        if !self.busy.load(Relaxed) && self.reading_since.load(Relaxed) == UNSET {
            self.reading_since.store(now, Relaxed);
            self.changed.notify_one();
        }
    }

    /// A request's head was read; its response is being made.
    fn request(&self) {
        self.busy_since.store(self.clock.now(), Relaxed);
        self.reading_since.store(UNSET, Relaxed);
        self.answered.store(false, Relaxed);
        self.busy.store(true, Relaxed);
        self.changed.notify_one();
    }

    /// Everything written so far reached the socket: the response is
    /// written if hyper had taken all of it.
    fn flushed(&self) {
        if self.busy.load(Relaxed) && self.answered.swap(false, Relaxed) {
            self.busy.store(false, Relaxed);
            self.unsent.store(0, Relaxed);
            self.last_active.store(self.clock.now(), Relaxed);
            self.busy_since.store(UNSET, Relaxed);
            self.changed.notify_one();
        }
    }

    /// Returns when the connection has passed its deadline.
    async fn expired(&self, limits: &Limits) {
        loop {
            let changed = self.changed.notified();
            let deadline = self.deadline(limits);
            if deadline <= self.clock.now() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(self.clock.instant(deadline)) => {}
                () = changed => {}
            }
        }
    }
}

/// A response body that tells its connection when hyper has taken all of
/// it (hyper drops a body after its last frame).
struct Answer {
    body: Full<Bytes>,
    connection: Arc<Connection>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.connection.answered.store(true, Relaxed);
    }
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The open connections, by id.
type Connections = Arc<Mutex<HashMap<u64, Arc<Connection>>>>;

/// Makes room for one more connection under `limit`: false when every
/// open connection is busy; otherwise evicts the one idle for longest if
/// the limit is reached.
fn make_room(connections: &Connections, limit: usize) -> bool {
    let open = connections.lock().unwrap_or_else(PoisonError::into_inner);
    let live = || open.values().filter(|c| !c.evicted.load(Relaxed));
    if live().count() < limit {
        return true;
    }
    let oldest = live()
        .filter(|c| !c.busy.load(Relaxed))
        .min_by_key(|c| c.last_active.load(Relaxed));
    match oldest {
        Some(connection) => {
            connection.evicted.store(true, Relaxed);
            connection.evict.notify_one();
            true
        }
        None => false,
    }
}

/// Makes room for `body` on `current` under [`MAX_UNSENT_BYTES`] (a
/// buffer several connections share counts once): evicts the other
/// connections whose unwritten responses are oldest until the rest fit (a
/// response larger than the whole budget is still sent, alone).
fn make_room_for(connections: &Connections, current: &Connection, body: &Bytes) {
    let buffer = body.as_ptr() as usize;
    let bytes = body.len() as u64;
    let open = connections.lock().unwrap_or_else(PoisonError::into_inner);
    let mut holding: Vec<&Arc<Connection>> = open
        .values()
        .filter(|c| !std::ptr::eq(Arc::as_ptr(c), current))
        .filter(|c| !c.evicted.load(Relaxed) && c.unsent.load(Relaxed) > 0)
        .collect();
    // Newest first, so that popping takes the oldest.
    holding.sort_by_key(|c| std::cmp::Reverse(c.busy_since.load(Relaxed)));
    let total = |holding: &[&Arc<Connection>]| {
        let mut buffers: HashMap<usize, u64> = HashMap::from([(buffer, bytes)]);
        for c in holding {
            buffers.insert(c.unsent_buffer.load(Relaxed), c.unsent.load(Relaxed));
        }
        buffers.values().sum::<u64>()
    };
    while total(&holding) > MAX_UNSENT_BYTES {
        let Some(oldest) = holding.pop() else { break };
        oldest.evicted.store(true, Relaxed);
        oldest.evict.notify_one();
    }
    current.unsent_buffer.store(buffer, Relaxed);
    current.unsent.store(bytes, Relaxed);
}

/// A TCP stream that reports its progress to its [`Connection`].
struct Tracked {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.connection.read();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        if matches!(poll, Poll::Ready(Ok(()))) {
            this.connection.flushed();
        }
        poll
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves one connection until it ends, expires or is evicted.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    connection: Arc<Connection>,
    connections: Connections,
    limits: Limits,
    recorder: Recorder,
    renders: Arc<Renders>,
) {
    let tracker = Arc::clone(&connection);
    let service = service_fn(move |request| {
        tracker.request();
        let connection = Arc::clone(&tracker);
        let connections = Arc::clone(&connections);
        let response = respond(recorder.clone(), Arc::clone(&renders), request);
        async move {
            let response = response.await?;
            make_room_for(&connections, &connection, response.body());
            Ok::<_, Infallible>(response.map(|body| Answer {
                body: Full::new(body),
                connection,
            }))
        }
    });
    let io = TokioIo::new(Tracked {
        stream,
        connection: Arc::clone(&connection),
    });
    let served = http1::Builder::new()
        // The watchdog times reads; hyper's own timer would also close
        // idle keep-alive connections after the header-read timeout.
        .header_read_timeout(None)
        // A client that closes its sending side after its request (as
        // HTTP/1.0 clients and `nc -N` do) still gets the answer; the
        // write timeout bounds how long that takes.
        .half_close(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service);
    tokio::select! {
        result = served => {
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "vigil /metrics connection ended with an error");
            }
        }
        () = connection.expired(&limits) => {
            tracing::debug!(%peer, "vigil /metrics closed a connection past its deadline");
        }
        () = connection.evict.notified() => {
            tracing::debug!(%peer, "vigil /metrics closed a connection to make room");
        }
    }
}

/// The formats `/metrics` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exposition {
    /// Text format 0.0.4: summaries and classic buckets.
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages:
    /// native histograms.
    Protobuf,
}

/// One media range of an `Accept` header: `type/subtype`, its parameters
/// (lowercase names, unquoted values) and its q-value.
#[derive(Debug)]
struct MediaRange<'a> {
    /// The type, e.g. `application` or `*`.
    kind: &'a str,
    /// The subtype, e.g. `vnd.google.protobuf` or `*`.
    subtype: &'a str,
    /// Parameters other than `q` (and the accept-extensions after it).
    parameters: Vec<(String, &'a str)>,
    /// The q-value, 0.0 ..= 1.0 (1.0 when absent).
    quality: f64,
}

impl<'a> MediaRange<'a> {
    /// Parses one comma-separated element; `None` for a malformed one
    /// (which then matches nothing).
    fn parse(element: &'a str) -> Option<Self> {
        let mut parts = element.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let mut range = MediaRange {
            kind: kind.trim(),
            subtype: subtype.trim(),
            parameters: Vec::new(),
            quality: 1.0,
        };
        for parameter in parts {
            let (name, value) = parameter.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"');
            if name == "q" {
                range.quality = value.parse().ok().filter(|q| (0.0..=1.0).contains(q))?;
                break; // what follows q is accept-extensions
            }
            range.parameters.push((name, value));
        }
        Some(range)
    }

    /// How specifically this range names `kind/subtype` with `required`
    /// parameters (3: with matching parameters, 2: exactly, 1: `kind/*`, 0:
    /// `*/*`), or `None` when it does not. A parameter the range names must
    /// have the required value when it is one of `required`.
    fn specificity(&self, kind: &str, subtype: &str, required: &[(&str, &str)]) -> Option<u8> {
        if self.kind == "*" && self.subtype == "*" {
            return Some(0);
        }
        if !self.kind.eq_ignore_ascii_case(kind) {
            return None;
        }
        if self.subtype == "*" {
            return Some(1);
        }
        if !self.subtype.eq_ignore_ascii_case(subtype) {
            return None;
        }
        let conflicts = self.parameters.iter().any(|(name, value)| {
            required
                .iter()
                .any(|(wanted, expected)| name == wanted && !value.eq_ignore_ascii_case(expected))
        });
        match (conflicts, self.parameters.is_empty()) {
            (true, _) => None,
            (false, true) => Some(2),
            (false, false) => Some(3),
        }
    }
}

impl Exposition {
    /// The format to answer with: protobuf when the `Accept` header (all
    /// of its values, joined) gives it a positive q-value above text's, as
    /// Prometheus with `--enable-feature=native-histograms` does
    /// (`...MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2`);
    /// text otherwise, and when there is no header. Each format's q-value
    /// comes from the most specific range that matches it (RFC 9110).
    fn negotiate(accept: &str) -> Self {
        let ranges: Vec<MediaRange<'_>> = accept.split(',').filter_map(MediaRange::parse).collect();
        let quality = |kind: &str, subtype: &str, required: &[(&str, &str)]| {
            ranges
                .iter()
                .filter_map(|range| {
                    let specificity = range.specificity(kind, subtype, required)?;
                    Some((specificity, range.quality))
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
                .map_or(0.0, |(_, quality)| quality)
        };
        let protobuf = quality(
            "application",
            "vnd.google.protobuf",
            &[
                ("proto", "io.prometheus.client.MetricFamily"),
                ("encoding", "delimited"),
            ],
        );
        let text = quality("text", "plain", &[]);
        if protobuf > 0.0 && protobuf > text {
            Exposition::Protobuf
        } else {
            Exposition::Text
        }
    }

    /// The Content-Type of this format.
    fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => CONTENT_TYPE_TEXT,
            Exposition::Protobuf => crate::protobuf::CONTENT_TYPE,
        }
    }

    /// The exposition of `recorder` in this format, with its Content-Type.
    fn render(self, recorder: &Recorder) -> (Bytes, &'static str) {
        recorder.refresh();
        match self {
            Exposition::Text => (recorder.shared.render().into(), CONTENT_TYPE_TEXT),
            Exposition::Protobuf => (
                recorder.shared.render_protobuf().into(),
                crate::protobuf::CONTENT_TYPE,
            ),
        }
    }
}

/// The pause after a failed `accept`, given the previous one in the same
/// run of failures: 10 ms, then doubling up to 1 s.
fn next_pause(previous: Option<Duration>) -> Duration {
    previous.map_or(ACCEPT_BACKOFF_MIN, |pause| {
        (pause * 2).min(ACCEPT_BACKOFF_MAX)
    })
}

/// Renders one format for every request waiting on it: a request waits
/// while a render is running and then shares the next one, which starts
/// after it arrived, so each response still reflects the registry after
/// its request. Any number of concurrent scrapes cost at most one render
/// running and one buffer per format.
#[derive(Debug, Default)]
struct Coalescer {
    /// Renders started so far.
    started: AtomicU64,
    /// Requests waiting for `last`.
    waiting: AtomicU64,
    /// Held while rendering: which render produced the buffer kept for
    /// waiting requests, and the buffer.
    last: tokio::sync::Mutex<Option<(u64, Bytes)>>,
}

impl Coalescer {
    async fn render(&self, exposition: Exposition, recorder: &Recorder) -> Bytes {
        let arrived = self.started.load(Relaxed);
        self.waiting.fetch_add(1, Relaxed);
        let mut last = self.last.lock().await;
        self.waiting.fetch_sub(1, Relaxed);
        if let Some((render, bytes)) = &*last
            && *render > arrived
        {
            return bytes.clone();
        }
        let render = self.started.fetch_add(1, Relaxed) + 1;
        let recorder = recorder.clone();
        // Rendering takes the registry's read locks briefly; keep it off
        // the accept loop's task.
        let bytes = tokio::task::spawn_blocking(move || exposition.render(&recorder).0)
            .await
            .unwrap_or_default();
        // Keep it only for requests already waiting: no buffer stays
        // alive between scrapes.
        *last = (self.waiting.load(Relaxed) > 0).then(|| (render, bytes.clone()));
        bytes
    }
}

/// The renders of each format, shared by the listener's connections.
#[derive(Debug, Default)]
struct Renders {
    text: Coalescer,
    protobuf: Coalescer,
}

/// A running listener; stops when dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Not joined: the last Monitor may be dropped on a runtime worker,
        // which must not block; the thread ends on its own at the signal.
        drop(self.thread.take());
    }
}

/// Binds `address` now (so a bad address or a taken port is an error from
/// the builder, not a log line later) and serves on a new thread.
pub(crate) fn spawn(
    address: SocketAddr,
    allowed: Vec<IpNet>,
    limits: Limits,
    recorder: Recorder,
) -> Result<Listener, Error> {
    let listen_error = |source| Error::Listen { address, source };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(listen_error)?;
    let listener = {
        // Registering the socket needs the runtime's reactor.
        let _entered = runtime.enter();
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(listen_error)?;
        #[cfg(unix)]
        socket.set_reuseaddr(true).map_err(listen_error)?;
        socket.bind(address).map_err(listen_error)?;
        socket.listen(BACKLOG).map_err(listen_error)?
    };
    let bound = listener.local_addr().map_err(listen_error)?;
    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("vigil-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let clock = Clock { start: Instant::now() };
                let connections: Connections = Arc::default();
                let renders: Arc<Renders> = Arc::default();
                let mut next_id = 0_u64;
                let mut backoff: Option<Duration> = None;
                loop {
                    let accepted = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => accepted,
                    };
                    let (stream, peer) = match accepted {
                        Ok(accepted) => {
                            backoff = None;
                            accepted
                        }
                        Err(error) => {
                            // EMFILE and the like: retrying at once would
                            // spin; wait, longer each time, and say so once.
                            let pause = next_pause(backoff);
                            if backoff.is_none() {
                                tracing::warn!(%error, address = %bound, "vigil /metrics accept failed; retrying with a pause of up to 1 s");
                            } else {
                                tracing::debug!(%error, "vigil /metrics accept failed again");
                            }
                            backoff = Some(pause);
                            tokio::select! {
                                _ = &mut stopped => return,
                                () = tokio::time::sleep(pause) => continue,
                            }
                        }
                    };
                    if !allowed.is_empty() && !allowed.iter().any(|net| net.contains(&peer.ip())) {
                        tracing::debug!(%peer, "vigil /metrics refused a peer outside the allowlist");
                        continue; // dropping the stream closes it
                    }
                    if !make_room(&connections, limits.max_connections) {
                        tracing::debug!(%peer, "vigil /metrics refused a connection: every connection is busy");
                        continue;
                    }
                    let id = next_id;
                    next_id += 1;
                    let connection = Arc::new(Connection::new(clock));
                    connections
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id, Arc::clone(&connection));
                    let connections = Arc::clone(&connections);
                    let recorder = recorder.clone();
                    let renders = Arc::clone(&renders);
                    tokio::spawn(async move {
                        let shared = Arc::clone(&connections);
                        serve(stream, peer, connection, shared, limits, recorder, renders).await;
                        connections
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&id);
                    });
                }
            });
        })
        .map_err(listen_error)?;
    Ok(Listener {
        address: bound,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

async fn respond(
    recorder: Recorder,
    renders: Arc<Renders>,
    request: Request<Incoming>,
) -> Result<Response<Bytes>, Infallible> {
    let response = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(response(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"not found: vigil serves /metrics\n"),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = response(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
        refused
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(refused);
    }
    let accept: Vec<&str> = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let exposition = Exposition::negotiate(&accept.join(","));
    let coalescer = match exposition {
        Exposition::Text => &renders.text,
        Exposition::Protobuf => &renders.protobuf,
    };
    let body = coalescer.render(exposition, &recorder).await;
    let mut ok = response(StatusCode::OK, body);
    let headers = ok.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(exposition.content_type()),
    );
    headers.insert(VARY, HeaderValue::from_static("Accept"));
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Exposition::{self, Protobuf, Text};
    use super::next_pause;

    #[test]
    fn concurrent_requests_share_a_render_and_later_ones_see_later_values() {
        let monitor = crate::Monitor::builder()
            .manual_upkeep()
            .build()
            .expect("a monitor");
        let recorder = monitor.recorder();
        let coalescer = std::sync::Arc::new(super::Coalescer::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            // A render in progress (the lock it holds) while 20 requests
            // arrive: they all wait for it, whatever the scheduling.
            let running = coalescer.last.lock().await;
            let mut renders = tokio::task::JoinSet::new();
            for _ in 0..20 {
                let coalescer = std::sync::Arc::clone(&coalescer);
                let recorder = recorder.clone();
                renders.spawn(async move { coalescer.render(Text, &recorder).await });
            }
            for _ in 0..10_000 {
                if coalescer.waiting.load(std::sync::atomic::Ordering::Relaxed) == 20 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(
                coalescer.waiting.load(std::sync::atomic::Ordering::Relaxed),
                20,
                "every request waits for the render in progress"
            );
            drop(running);
            let buffers: std::collections::HashSet<usize> = renders
                .join_all()
                .await
                .iter()
                .map(|bytes| bytes.as_ptr() as usize)
                .collect();
            // All 20 arrived before the next render started: one render
            // serves them all.
            assert_eq!(
                buffers.len(),
                1,
                "{} renders for 20 requests",
                buffers.len()
            );

            crate::with_local_recorder(&recorder, || {
                metrics::counter!("after_total").increment(1);
            });
            let later = coalescer.render(Text, &recorder).await;
            let later = String::from_utf8_lossy(&later);
            assert!(later.contains("after_total 1"), "{later}");
        });
    }

    #[test]
    fn failed_accepts_back_off_from_10_ms_to_1_s() {
        let mut pause = None;
        let pauses: Vec<u128> = (0..10)
            .map(|_| {
                let next = next_pause(pause);
                pause = Some(next);
                next.as_millis()
            })
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(next_pause(None), Duration::from_millis(10));
    }

    /// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
    const PROMETHEUS_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    #[test]
    fn prometheus_with_native_histograms_gets_protobuf() {
        assert_eq!(Exposition::negotiate(PROMETHEUS_NATIVE), Protobuf);
        let spaced = "application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited; q=0.7, text/plain; q=0.3";
        assert_eq!(Exposition::negotiate(spaced), Protobuf);
        let alone = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        assert_eq!(Exposition::negotiate(alone), Protobuf);
    }

    #[test]
    fn everything_else_gets_text() {
        for accept in [
            "",
            "*/*",
            "text/plain",
            // Prometheus without the feature flag.
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            // Protobuf acceptable, but text preferred or tied.
            "text/plain;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,text/*;q=0.5",
            // Refused outright, or another encoding of it.
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
            // Malformed q-values match nothing.
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=2",
            "garbage, ;;, /",
        ] {
            assert_eq!(Exposition::negotiate(accept), Text, "{accept}");
        }
    }

    #[test]
    fn the_most_specific_range_decides() {
        // application/* would allow protobuf at 0.9, but the exact range
        // names it at 0.1, below text's 0.5.
        let accept = "application/*;q=0.9,application/vnd.google.protobuf;q=0.1,text/plain;q=0.5";
        assert_eq!(Exposition::negotiate(accept), Text);
        // A wildcard alone for protobuf beats text's explicit lower q.
        assert_eq!(
            Exposition::negotiate("application/*,text/plain;q=0.5"),
            Protobuf
        );
    }
}
