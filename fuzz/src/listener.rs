//! Bytes sent to a running `/metrics` listener on loopback: whatever a
//! client sends, the listener answers with an HTTP response or closes the
//! connection within a bound, and keeps serving `GET /metrics`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use vigil::Monitor;

/// How long the listener may take to answer or close after a client has
/// sent its bytes and closed its side: far more than loopback needs, far
/// less than any of the listener's deadlines would let it hold on.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The counter every scrape must show.
pub const PROBE: &str = "fuzz_probe_total 3";

/// A monitor listening on a free loopback port with short deadlines and
/// one counter recorded.
pub fn monitor() -> Monitor {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .listener_timeouts(
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(2),
        )
        .manual_upkeep()
        .build()
        .expect("a monitor with a listener");
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::counter!("fuzz_probe_total").increment(3);
    });
    monitor
}

/// Sends `request`, closes the sending side and reads until the server
/// closes: what it answered, or `Err` when it neither answered with HTTP
/// nor closed within [`ANSWER_WITHIN`].
pub fn exchange(address: SocketAddr, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    // The server may answer and close before reading everything (431,
    // a malformed head): only what comes back matters.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    loop {
        let left = ANSWER_WITHIN.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(format!(
                "no close within {ANSWER_WITHIN:?} after {} bytes sent ({} received)",
                request.len(),
                answer.len()
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("read timeout: {e}"))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset is a close.
            Err(_) => break,
        }
    }
    check_answer(&answer)?;
    Ok(answer)
}

/// Whatever came back is empty or starts with an HTTP/1.x status line.
pub fn check_answer(answer: &[u8]) -> Result<(), String> {
    if answer.is_empty() {
        return Ok(());
    }
    let line_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| format!("an answer without a status line: {:?}", lossy(answer)))?;
    let line = &answer[..line_end];
    let valid = (line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 "))
        && line.len() >= 12
        && line[9..12].iter().all(u8::is_ascii_digit);
    if valid {
        Ok(())
    } else {
        Err(format!("not an HTTP status line: {:?}", lossy(line)))
    }
}

/// An HTTP/1.0 `GET` of `path` with an optional `Accept` header: status,
/// head and body.
pub fn get(
    address: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> Result<(u16, String, Vec<u8>), String> {
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: fuzz\r\n{accept}\r\n");
    let answer = exchange(address, request.as_bytes())?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete response head: {:?}", lossy(&answer)))?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    Ok((status, head, answer[end + 4..].to_vec()))
}

/// `GET /metrics` is answered with 200 and the probe counter.
pub fn check_serving(address: SocketAddr) -> Result<(), String> {
    let (status, _, body) = get(address, "/metrics", None)?;
    let body = String::from_utf8_lossy(&body);
    if status == 200 && body.contains(PROBE) {
        Ok(())
    } else {
        Err(format!("GET /metrics answered {status}: {body}"))
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}
