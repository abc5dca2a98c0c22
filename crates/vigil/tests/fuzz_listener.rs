//! Bytes from outside sent to a running `/metrics` listener on loopback:
//! generated requests (methods, targets, versions, headers, bodies, line
//! endings, truncation, pipelining), random bytes, and the fuzz corpus
//! (`fuzz/corpus/listener`). Whatever arrives, the listener answers with
//! an HTTP response or closes the connection, nothing on its threads
//! panics, and `GET /metrics` keeps being served. The checks are the
//! `cargo fuzz` target's own (`fuzz/src/listener.rs`).

#![cfg(feature = "listener")]

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/src/listener.rs"]
mod listener;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vigil::Monitor;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    corpus::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "listener",
    )
}

/// Panics on threads other than the tests' own (the listener's thread and
/// its runtime's blocking pool): a panic in a connection's task would
/// otherwise only end that connection.
static FOREIGN_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("vigil") || name.starts_with("tokio") {
                FOREIGN_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
}

fn assert_no_foreign_panic() {
    let panics = FOREIGN_PANICS.lock().unwrap_or_else(|e| e.into_inner());
    assert!(panics.is_empty(), "the listener panicked: {panics:?}");
}

/// One monitor for the whole file, as the fuzz target has.
fn address() -> SocketAddr {
    static MONITOR: OnceLock<Monitor> = OnceLock::new();
    watch_panics();
    MONITOR
        .get_or_init(listener::monitor)
        .listen_address()
        .expect("a listener")
}

fn assert_exchanged(request: &[u8], what: &str) -> Vec<u8> {
    let address = address();
    listener::exchange(address, request).unwrap_or_else(|failure| {
        panic!("{what}: {failure}\n{:?}", String::from_utf8_lossy(request))
    })
}

#[test]
fn every_corpus_file_is_answered_or_closed_and_scrapes_continue() {
    let address = address();
    let mut answered = 0;
    for (path, bytes) in corpus() {
        let answer = assert_exchanged(&bytes, &path.display().to_string());
        answered += usize::from(!answer.is_empty());
        listener::check_serving(address)
            .unwrap_or_else(|failure| panic!("after {}: {failure}", path.display()));
    }
    assert!(
        answered >= 10,
        "only {answered} corpus requests were answered"
    );
    assert_no_foreign_panic();
}

#[test]
fn a_request_followed_by_a_half_close_is_answered() {
    // The client closes its sending side right after the request, as
    // HTTP/1.0 clients and `nc -N` do; the render runs on another thread,
    // so the end of the stream arrives while the answer is being made.
    let address = address();
    for accept in [
        None,
        Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
        ),
    ] {
        for _ in 0..20 {
            let (status, _, body) = listener::get(address, "/metrics", accept).expect("an answer");
            assert_eq!(status, 200);
            assert!(!body.is_empty());
        }
    }
}

#[test]
fn corpus_requests_left_open_are_answered_or_closed_by_the_deadlines() {
    // Without the client's half-close, an incomplete request waits for the
    // header-read timeout (1 s) and a finished keep-alive connection for
    // the idle one (2 s): each connection ends by then, all at once.
    let address = address();
    let files = corpus();
    let mut streams: Vec<(PathBuf, TcpStream)> = files
        .into_iter()
        .map(|(path, bytes)| {
            let mut stream = TcpStream::connect(address).expect("the listener accepts");
            let _ = stream.write_all(&bytes);
            (path, stream)
        })
        .collect();
    let started = Instant::now();
    let limit = Duration::from_secs(2) + Duration::from_millis(1500);
    for (path, stream) in &mut streams {
        let answer = read_until_closed(stream, limit.saturating_sub(started.elapsed()))
            .unwrap_or_else(|got| {
                panic!(
                    "{} still open after {:?} ({got} bytes received)",
                    path.display(),
                    started.elapsed()
                )
            });
        listener::check_answer(&answer)
            .unwrap_or_else(|failure| panic!("{}: {failure}", path.display()));
    }
    listener::check_serving(address).expect("scrapes continue");
    assert_no_foreign_panic();
}

/// Reads until the server closes; `Err` with the bytes received when it
/// has not closed within `wait`.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, usize> {
    use std::io::{ErrorKind, Read};
    let deadline = Instant::now() + wait;
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(answer.len());
        }
        stream.set_read_timeout(Some(left)).expect("a read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return Ok(answer),
        }
    }
}

/// Header values that mean something to the listener or to hyper, and
/// hostile ones.
fn header() -> impl Strategy<Value = (String, String)> {
    let names = proptest::sample::select(vec![
        "Accept",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Expect",
        "Upgrade",
        "Accept-Encoding",
        "X",
        "",
        " Accept",
        "Accept ",
        "Ünï",
    ]);
    let values = prop_oneof![
        proptest::sample::select(vec![
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;q=0.3",
            "text/plain", "*/*", "*/*;q=0", ";;,,", "a/b;q=1e400", "text/plain;q=nan",
            "0", "5", "-1", "18446744073709551616", "chunked", "gzip, chunked", "close",
            "keep-alive", "Upgrade", "100-continue", "h2c", "",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
        "\\PC{0,8}",
    ];
    (names.prop_map(str::to_owned), values)
}

/// A request built from parts: method, target, version, headers, body,
/// line ending; possibly repeated (pipelined) and cut short.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(vec![
            "GET", "HEAD", "POST", "PUT", "OPTIONS", "CONNECT", "get", "", "G\0T", "PRI",
        ]),
        proptest::sample::select(vec![
            "/metrics",
            "/",
            "*",
            "/metrics?x=1",
            "http://vigil/metrics",
            "//metrics",
            "/%00",
            "/metrics#f",
            "metrics",
            "/é",
        ]),
        proptest::sample::select(vec![
            "HTTP/1.1",
            "HTTP/1.0",
            "HTTP/2.0",
            "HTTP/1.10",
            "HTTP/",
            "",
        ]),
        proptest::collection::vec(header(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..32),
        proptest::sample::select(vec!["\r\n", "\n", "\r"]),
        1..3usize,
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(
            |(method, target, version, headers, body, eol, times, cut, truncate)| {
                let mut one = format!("{method} {target} {version}{eol}").into_bytes();
                for (name, value) in headers {
                    one.extend_from_slice(format!("{name}: {value}{eol}").as_bytes());
                }
                one.extend_from_slice(eol.as_bytes());
                one.extend_from_slice(&body);
                let mut request = one.repeat(times);
                if truncate {
                    request.truncate(cut.index(request.len() + 1));
                }
                request
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_are_answered_or_closed(request in request()) {
        assert_exchanged(&request, "a generated request");
        listener::check_serving(address()).expect("scrapes continue");
        assert_no_foreign_panic();
    }

    #[test]
    fn random_bytes_are_answered_or_closed(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        prefix in proptest::sample::select(vec!["", "GET /metrics HTTP/1.1\r\n", "GET ", "POST /metrics HTTP/1.1\r\nContent-Length: 8\r\n\r\n"]),
    ) {
        let mut request = prefix.as_bytes().to_vec();
        request.extend_from_slice(&bytes);
        assert_exchanged(&request, "random bytes");
        listener::check_serving(address()).expect("scrapes continue");
        assert_no_foreign_panic();
    }
}
