//! The `/metrics` listener against clients that hold connections without
//! using them: real TCP on loopback, with timeouts shortened through
//! `MonitorBuilder::listener_timeouts` so each test takes a few seconds.

#![cfg(feature = "listener")]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
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
fn five_hundred_idle_and_half_sent_connections_are_closed_and_do_not_delay_a_scrape() {
    let header_read = Duration::from_secs(2);
    let idle = Duration::from_secs(4);
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

    // 500 connections: half send nothing, half half a request line.
    let opened = Instant::now();
    let mut silent = Vec::new();
    let mut half_sent = Vec::new();
    for _ in 0..250 {
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
        "GET /metrics took {answered_in:?} beside 500 idle connections"
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
        "GET /metrics answered in {answered_in:?} beside 500 idle connections (opened in {setup:?}); \
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

/// `GET /metrics` on a new connection: its status, or `None` when the
/// server closed without answering.
fn try_get(address: SocketAddr) -> Option<u16> {
    let mut stream = connect(address);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: vigil\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    // "HTTP/1.x NNN"
    let status = std::str::from_utf8(answer.get(9..12)?).ok()?;
    answer
        .starts_with(b"HTTP/1.")
        .then(|| status.parse().ok())?
}

#[test]
fn when_every_connection_is_busy_a_new_one_is_closed_at_once_and_service_resumes() {
    let cap = 4;
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(30),
        )
        .listener_max_connections(cap)
        .manual_upkeep()
        .build()
        .expect("a monitor");
    let address = monitor.listen_address().expect("a listener");
    record_wide_series(&monitor);

    // Busy, not idle: each client asks for the exposition (about 12 MB)
    // and reads only the response head, so each response stays unwritten
    // (4 x 12 MB is within the 64 MiB budget, so none is closed for it).
    let mut busy = Vec::new();
    for _ in 0..cap {
        let mut stream = slow_reader(address);
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
            .expect("the request is sent");
        let mut received = Vec::new();
        let (_, length) = read_head(&mut stream, &mut received);
        assert!(length > 10_000_000, "a {length}-byte exposition");
        busy.push(stream);
    }
    let all_busy = Instant::now();

    // One more: closed at once, without an answer.
    let mut refused = connect(address);
    assert_eq!(
        state(&mut refused, Some(Duration::from_secs(2))),
        State::Closed
    );
    let refused_in = all_busy.elapsed();
    assert!(
        refused_in < Duration::from_millis(500),
        "the connection beyond the cap was closed after {refused_in:?}"
    );
    assert_eq!(
        try_get(address),
        None,
        "a request while every connection is busy"
    );

    // The busy clients go away; scrapes are answered again (each renders
    // the whole 12 MB, which takes a while in a debug build).
    drop(busy);
    let left = Instant::now();
    let resumed = loop {
        if try_get(address) == Some(200) {
            break left.elapsed();
        }
        assert!(
            left.elapsed() < Duration::from_secs(10),
            "no scrape answered {:?} after the busy clients left",
            left.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "with {cap} busy connections a new one was closed after {refused_in:?}; \
         scrapes answered again {resumed:?} after the busy clients left"
    );
}

/// Set in the child process that runs
/// [`at_the_descriptor_limit_accept_backs_off_and_serves_once_descriptors_free_up`]
/// under a lowered descriptor limit.
const DESCRIPTOR_LIMIT_CHILD: &str = "VIGIL_TEST_DESCRIPTOR_LIMIT_CHILD";

/// Clock ticks (1/100 s on Linux) of CPU this process has used, user and
/// system, read through an already open `/proc/self/stat` (no descriptor
/// is free to open it when it matters).
fn cpu_ticks(stat: &std::fs::File) -> u64 {
    use std::os::unix::fs::FileExt;
    let mut buffer = [0_u8; 1024];
    let n = stat.read_at(&mut buffer, 0).expect("/proc/self/stat reads");
    let text = String::from_utf8_lossy(&buffer[..n]);
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field of the line, utime the 14th and stime the 15th.
    let after_name = &text[text.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let field = |n: usize| -> u64 { fields[n - 3].parse().expect("a tick count") };
    field(14) + field(15)
}

#[test]
fn at_the_descriptor_limit_accept_backs_off_and_serves_once_descriptors_free_up() {
    if std::env::var_os(DESCRIPTOR_LIMIT_CHILD).is_some() {
        descriptor_limit_child();
        return;
    }
    // The same test, in a child process with at most 256 descriptors.
    let test = "at_the_descriptor_limit_accept_backs_off_and_serves_once_descriptors_free_up";
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(DESCRIPTOR_LIMIT_CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let started = Instant::now();
    while child.try_wait().expect("the child's status").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the child process did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("the child's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprint!("{stderr}");
}

fn descriptor_limit_child() {
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
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::counter!("probes_total").increment(7);
    });
    let stat = std::fs::File::open("/proc/self/stat").expect("/proc/self/stat");
    // A first scrape starts the threads a render uses; its connection
    // stays open so that closing it frees no descriptor later.
    let mut first = connect(address);
    assert_eq!(get(&mut first).0, 200);

    // Take every free descriptor, again after a pause in case one was
    // still being released.
    let mut held = Vec::new();
    for _ in 0..2 {
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(file) => held.push(file),
                // EMFILE
                Err(e) if e.raw_os_error() == Some(24) => break,
                Err(e) => panic!("opening /dev/null: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        held.len() > 100,
        "only {} descriptors were free",
        held.len()
    );
    // One descriptor back, for a client: the kernel completes its
    // connection, and the listener's accept fails for want of another.
    drop(held.pop());
    let mut waiting = connect(address);
    waiting
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
        .expect("the request is sent");

    let before = cpu_ticks(&stat);
    let full_since = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(&stat) - before;
    // Retrying at once would take most of a core: about 200 ticks.
    assert!(
        used < 25,
        "the process used {used} ticks of CPU in 2 s at the descriptor limit"
    );
    assert_eq!(
        state(&mut waiting, None),
        State::Open,
        "answered although no descriptor was free"
    );

    // Descriptors free up: the waiting request is accepted at the next
    // retry (at most 1 s apart) and answered; new scrapes too.
    drop(held);
    let freed = Instant::now();
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let mut received = Vec::new();
    let (_, length) = read_head(&mut waiting, &mut received);
    let answered_after = freed.elapsed();
    assert!(length > 0);
    assert!(
        answered_after < Duration::from_millis(1500),
        "the waiting request was answered {answered_after:?} after descriptors freed up"
    );
    let asked = Instant::now();
    let (status, _, body) = get(&mut connect(address));
    assert_eq!(status, 200);
    assert!(body.contains("probes_total 7"), "{body}");
    assert!(asked.elapsed() < Duration::from_secs(1));
    eprintln!(
        "at the descriptor limit for {:?}: {used} ticks of CPU in 2 s; the waiting request was \
         answered {answered_after:?} after descriptors freed up",
        full_since.elapsed()
    );
}
