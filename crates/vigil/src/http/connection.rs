//! One open connection of the `/metrics` listener as the listener's
//! limits see it ([`Connection`]: reading, busy, idle, what it holds
//! unsent), the I/O and body wrappers that report its progress, and the
//! eviction that makes room for new connections and new responses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Limits, MAX_UNSENT_BYTES};

/// Marks "not set" in a [`Connection`] time field.
pub(super) const UNSET: u64 = u64::MAX;

/// Milliseconds since the listener started, for [`Connection`]'s fields.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    pub(super) start: Instant,
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
pub(super) struct Connection {
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
    pub(super) evict: Notify,
}

impl Connection {
    pub(super) fn new(clock: Clock) -> Self {
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
    pub(super) fn request(&self) {
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
    pub(super) async fn expired(&self, limits: &Limits) {
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
pub(super) struct Answer {
    pub(super) body: Full<Bytes>,
    pub(super) connection: Arc<Connection>,
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
pub(super) type Connections = Arc<Mutex<HashMap<u64, Arc<Connection>>>>;

/// Makes room for one more connection under `limit`: false when every
/// open connection is busy; otherwise evicts the one idle for longest if
/// the limit is reached.
pub(super) fn make_room(connections: &Connections, limit: usize) -> bool {
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
pub(super) fn make_room_for(connections: &Connections, current: &Connection, body: &Bytes) {
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
pub(super) struct Tracked {
    pub(super) stream: TcpStream,
    pub(super) connection: Arc<Connection>,
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
