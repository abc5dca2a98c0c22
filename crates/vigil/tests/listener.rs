//! The `/metrics` listener against clients that hold connections without
//! using them: real TCP on loopback, with timeouts shortened through
//! `MonitorBuilder::listener_timeouts` so each test takes a few seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use vigil::Monitor;

/// How a connection looks from the client after a read attempt.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// The server closed it (end of stream, or a reset).
    Closed,
    /// Nothing arrived within the read timeout.
    Open,
}

/// Reads once with `wait` as the timeout (none: without blocking).
fn state(stream: &mut TcpStream, wait: Option<Duration>) -> State {
    stream
        .set_nonblocking(wait.is_none())
        .expect("a blocking mode");
    stream.set_read_timeout(wait).expect("a read timeout");
    let mut byte = [0_u8; 1];
    let read = stream.read(&mut byte);
    stream.set_nonblocking(false).expect("a blocking mode");
    match read {
        Ok(0) => State::Closed,
        Ok(_) => panic!("the server sent bytes on a connection without a request"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => State::Open,
        Err(_) => State::Closed,
    }
}

/// Sends `GET /metrics` on `stream` and reads the response: its status,
/// headers (lowercase names) and body.
fn get(stream: &mut TcpStream) -> (u16, String, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .expect("the request is sent");
    let mut received = Vec::new();
    let mut chunk = [0_u8; 8192];
    let (head_end, length) = read_head(stream, &mut received);
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk).expect("the body arrives");
        assert!(n > 0, "the server closed in the middle of the body");
        received.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status = head[9..12].parse().expect("a status code");
    let body = String::from_utf8_lossy(&received[head_end..]).into_owned();
    (status, head, body)
}

fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).expect("the listener accepts")
}

/// A connection with a small receive buffer, so loopback's autotuning
/// cannot take a whole large exposition in while the client does not read.
fn slow_reader(address: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(16 * 1024)
            .expect("a receive buffer size");
        let stream = socket.connect(address).await.expect("the listener accepts");
        stream.into_std().expect("a std stream")
    });
    stream.set_nonblocking(false).expect("a blocking stream");
    stream
}

/// Records about 12 MB of exposition: more than the socket buffers on both
/// sides of a [`slow_reader`] hold.
fn record_wide_series(monitor: &Monitor) {
    let value = "v".repeat(10_000);
    vigil::with_local_recorder(&monitor.recorder(), || {
        for name in 0..12 {
            for series in 0..100 {
                vigil::metrics::counter!(format!("wide_{name}_total"), "id" => series.to_string(), "pad" => value.clone()).increment(1);
            }
        }
    });
}

/// Reads until the end of a response head; returns where the body starts
/// and its Content-Length.
fn read_head(stream: &mut TcpStream, received: &mut Vec<u8>) -> (usize, usize) {
    let mut chunk = [0_u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("the response arrives");
        assert!(n > 0, "the server closed before answering");
        received.extend_from_slice(&chunk[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|value| value.trim().parse::<usize>().expect("a numeric length"))
                .expect("a content-length");
            return (end + 4, length);
        }
    }
}

#[test]
fn idle_and_half_sent_connections_are_closed_and_do_not_delay_a_scrape() {
    let header_read = Duration::from_secs(1);
    let idle = Duration::from_secs(2);
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(header_read, idle, Duration::from_secs(2))
        .listener_max_connections(1000)
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::counter!("probes_total").increment(7);
    });

    let opened = Instant::now();
    let mut silent = Vec::new();
    let mut half_sent = Vec::new();
    for _ in 0..100 {
        silent.push(connect(address));
        let mut stream = connect(address);
        stream.write_all(b"GET /met").expect("half a request line");
        half_sent.push(stream);
    }

    let asked = Instant::now();
    let (status, _, body) = get(&mut connect(address));
    let answered_in = asked.elapsed();
    assert_eq!(status, 200);
    assert!(body.contains("probes_total 7"), "{body}");
    assert!(
        answered_in < Duration::from_secs(1),
        "GET /metrics took {answered_in:?} beside 200 idle connections"
    );
    // They were all still open while it was answered.
    let setup = opened.elapsed();
    assert!(setup < header_read, "connecting took {setup:?}");
    for stream in silent.iter_mut().chain(&mut half_sent) {
        assert_eq!(state(stream, None), State::Open);
    }

    // Half a request line: closed by the header-read timeout, before the
    // idle one.
    for stream in &mut half_sent {
        assert_eq!(state(stream, Some(idle * 2)), State::Closed);
    }
    let half_sent_closed = opened.elapsed();
    assert!(
        half_sent_closed >= header_read && half_sent_closed < idle,
        "half-sent requests closed after {half_sent_closed:?}"
    );
    // Nothing sent: closed by the idle timeout.
    for stream in &mut silent {
        assert_eq!(state(stream, Some(idle * 2)), State::Closed);
    }
    let silent_closed = opened.elapsed();
    assert!(
        silent_closed >= idle && silent_closed < idle + Duration::from_millis(1500),
        "idle connections closed after {silent_closed:?}"
    );
    eprintln!(
        "GET /metrics answered in {answered_in:?} beside 200 idle connections; \
         half-sent ones closed after {half_sent_closed:?}, silent ones after {silent_closed:?}"
    );
}

#[test]
fn a_keep_alive_connection_outlives_the_write_timeout_between_requests() {
    let write = Duration::from_millis(500);
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(Duration::from_secs(1), Duration::from_secs(3), write)
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    let mut stream = connect(address);
    let (status, _, _) = get(&mut stream);
    assert_eq!(status, 200);
    // Longer than the write timeout, shorter than the idle one: the
    // response is done, so only the idle timeout applies.
    assert_eq!(state(&mut stream, Some(write * 3)), State::Open);
    let (status, _, _) = get(&mut stream);
    assert_eq!(status, 200);
}

#[test]
fn beyond_the_connection_cap_the_longest_idle_connection_makes_room() {
    let cap = 8;
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_max_connections(cap)
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    let mut idle: Vec<TcpStream> = (0..20).map(|_| connect(address)).collect();

    let asked = Instant::now();
    let (status, _, _) = get(&mut connect(address));
    let answered_in = asked.elapsed();
    assert_eq!(status, 200);
    assert!(answered_in < Duration::from_secs(1), "{answered_in:?}");

    // 21 connections under a cap of 8: the scrape's evicted one more, so 13
    // of the idle ones were closed and 7 are still open.
    let states: Vec<State> = idle
        .iter_mut()
        .map(|stream| state(stream, Some(Duration::from_millis(300))))
        .collect();
    let open = states.iter().filter(|s| **s == State::Open).count();
    assert_eq!(open, cap - 1, "{states:?}");
}

#[test]
fn a_client_that_never_reads_loses_its_response_at_the_write_timeout() {
    let write = Duration::from_secs(1);
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(Duration::from_secs(1), Duration::from_secs(10), write)
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    record_wide_series(&monitor);

    let mut stream = slow_reader(address);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .expect("the request is sent");
    let sent = Instant::now();
    std::thread::sleep(write + Duration::from_millis(500));

    // The server gave up at its deadline: reading now yields what the
    // socket buffers held, then the end of the stream, short of the body.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut received = Vec::new();
    if let Err(e) = stream.read_to_end(&mut received) {
        panic!(
            "the server did not close the connection: {e} after {} bytes",
            received.len()
        );
    }
    let closed_after = sent.elapsed();
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the response head");
    let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|value| value.trim().parse().expect("a numeric length"))
        .expect("a content-length");
    let body = received.len() - end - 4;
    assert!(
        length > 10_000_000 && body < length,
        "received {body} of {length} body bytes"
    );
    eprintln!(
        "a client that did not read got {body} of {length} bytes before the server closed \
         (connection ended {closed_after:?} after the request)"
    );
}

#[test]
fn an_oversized_request_head_is_refused_with_431() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    let mut stream = connect(address);
    let padding = "x".repeat(16 * 1024);
    // The server may close while the client still writes: only the answer
    // matters.
    let _ = stream.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: vigil\r\nX-Padding: {padding}\r\n\r\n").as_bytes(),
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A request within the limits is still served on a new connection.
    let (status, _, _) = get(&mut connect(address));
    assert_eq!(status, 200);
}

#[test]
fn listener_limits_of_zero_are_refused() {
    let zero = Duration::ZERO;
    let second = Duration::from_secs(1);
    for (header_read, idle, write) in [
        (zero, second, second),
        (second, zero, second),
        (second, second, zero),
    ] {
        let error = Monitor::builder()
            .listener_timeouts(header_read, idle, write)
            .build()
            .expect_err("a zero timeout");
        assert_eq!(
            error.to_string(),
            "invalid setting `listener_timeouts`: every timeout must be longer than zero"
        );
    }
    let error = Monitor::builder()
        .listener_max_connections(0)
        .build()
        .expect_err("no connections");
    assert_eq!(
        error.to_string(),
        "invalid setting `listener_max_connections`: must be at least 1"
    );
}

#[test]
fn unread_responses_beyond_the_byte_budget_close_the_oldest() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(
            Duration::from_secs(30),
            Duration::from_secs(30),
            Duration::from_secs(30),
        )
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    record_wide_series(&monitor);

    // Eight clients ask in turn and leave their answers (about 12 MB
    // each) unread: only five fit in 64 MiB, so the three oldest go.
    let mut clients = Vec::new();
    let started = Instant::now();
    for _ in 0..8 {
        let mut stream = slow_reader(address);
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
            .expect("the request is sent");
        let mut received = Vec::new();
        let (head, length) = read_head(&mut stream, &mut received);
        clients.push((stream, received, head, length));
    }
    let complete: Vec<bool> = clients
        .iter_mut()
        .map(|(stream, received, head, length)| {
            let mut chunk = [0_u8; 65536];
            while received.len() < *head + *length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                }
            }
            true
        })
        .collect();
    assert_eq!(
        complete,
        [false, false, false, true, true, true, true, true],
        "which unread responses survived"
    );
    // Long before any deadline.
    assert!(started.elapsed() < Duration::from_secs(30));
}
