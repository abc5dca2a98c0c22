//! The `/metrics` HTTP listener: a small hyper server, one task (see
//! [`Tasks`](crate::Tasks)) on the host's runtime or on vigil's own thread,
//! answering `GET /metrics` with the exposition the scraper negotiated
//! ([`exposition`]): Prometheus's protobuf format (which carries native
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
//! connections whose clients have left theirs unread longest. At most
//! `max_connections` are open at once: a new one closes the connection idle for longest (no request in progress), or is itself
//! closed when every connection is busy. Request heads are limited to
//! [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] (larger ones get `431`), and a
//! failing `accept` (e.g. `EMFILE`) is retried after a pause doubling
//! from 10 ms to 1 s, logged once per run of failures.

mod connection;
pub(crate) mod exposition;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue, VARY};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::Error;
use crate::recorder::Recorder;
use crate::tasks::Stopped;
use connection::{Answer, Clock, Connection, Connections, Tracked, make_room, make_room_for};
use exposition::Exposition;

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
        let bytes = tokio::task::spawn_blocking(move || exposition.render(&recorder))
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

/// Binds `address` now, in the current tokio runtime (so a bad address or
/// a taken port is an error from the builder, not a log line later);
/// returns the bound address and the accept loop, which serves until
/// `stopped`.
pub(crate) fn bind(
    address: SocketAddr,
    allowed: Vec<IpNet>,
    limits: Limits,
    recorder: Recorder,
    stopped: Stopped,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), Error> {
    let listen_error = |source| Error::Listen { address, source };
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(listen_error)?;
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(listen_error)?;
    socket.bind(address).map_err(listen_error)?;
    let listener = socket.listen(BACKLOG).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let accepting = Accepting {
        listener,
        bound,
        allowed,
        limits,
        recorder,
    };
    Ok((bound, accepting.run(stopped)))
}

/// The listener's accept loop and what it hands each connection.
struct Accepting {
    listener: TcpListener,
    bound: SocketAddr,
    allowed: Vec<IpNet>,
    limits: Limits,
    recorder: Recorder,
}

impl Accepting {
    /// Accepts and serves connections until `stopped`.
    async fn run(self, mut stopped: Stopped) {
        let Accepting {
            listener,
            bound,
            allowed,
            limits,
            recorder,
        } = self;
        let clock = Clock {
            start: Instant::now(),
        };
        let connections: Connections = Arc::default();
        let renders: Arc<Renders> = Arc::default();
        let mut next_id = 0_u64;
        let mut backoff: Option<Duration> = None;
        loop {
            let accepted = tokio::select! {
                () = stopped.wait() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = None;
                    accepted
                }
                Err(error) => {
                    // EMFILE and the like: retrying at once would spin;
                    // wait, longer each time, and say so once.
                    let pause = next_pause(backoff);
                    if backoff.is_none() {
                        tracing::warn!(%error, address = %bound, "vigil /metrics accept failed; retrying with a pause of up to 1 s");
                    } else {
                        tracing::debug!(%error, "vigil /metrics accept failed again");
                    }
                    backoff = Some(pause);
                    tokio::select! {
                        () = stopped.wait() => return,
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
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let shared = Arc::clone(&connections);
                let serving = serve(stream, peer, connection, shared, limits, recorder, renders);
                let mut stopped = stopped;
                tokio::select! {
                    () = serving => {}
                    () = stopped.wait() => {}
                }
                connections
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
            });
        }
    }
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

    use super::exposition::Exposition::Text;
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
}
