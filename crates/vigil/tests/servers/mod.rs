//! Real servers for integration tests: Prometheus and promtool from
//! Debian's `prometheus` package and, in [`alertmanager`], Alertmanager from
//! `prometheus-alertmanager`, each on a free loopback port with its own
//! temporary directory, killed when the test ends. A missing binary fails
//! the test with the package to install; nothing is skipped.
//!
//! Only std, `tempfile` and `serde_json`: vigil-alert's tests include this
//! file too (`#[path = "../../vigil/tests/servers/mod.rs"]`).

#![allow(dead_code)]

pub mod alertmanager;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of `binary`, or a panic naming the Debian package to install.
pub fn require(binary: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{binary}` not found on PATH: install Debian's `{package}` package \
             (`apt-get install -y {package}`, or run scripts/test which does)"
        )
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the loopback interface has a free port")
}

/// An HTTP response: status, header lines and raw body.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// `GET path` over HTTP/1.0 (so the body is not chunked) with an optional
/// `Accept` header.
pub fn http_get_accepting(
    address: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept
        .map(|accept| format!("Accept: {accept}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {address}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = head
        .split_once("\r\n")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// `GET path` over HTTP/1.0 (so the body is not chunked); (status, body).
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let answer = http_get_accepting(address, path, None)?;
    Ok((
        answer.status,
        String::from_utf8_lossy(&answer.body).into_owned(),
    ))
}

/// Runs `promtool check metrics` on exposition text: its exit code and
/// what it printed.
pub fn promtool_metrics(exposition: &str) -> (Option<i32>, String) {
    let promtool = require("promtool", "prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(exposition.as_bytes())
        .expect("promtool reads stdin");
    let output = child.wait_with_output().expect("promtool finishes");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), findings)
}

/// Runs `promtool check metrics` on exposition text; `Err` holds its
/// findings (lint findings included).
pub fn promtool_check_metrics(exposition: &str) -> Result<(), String> {
    match promtool_metrics(exposition) {
        (Some(0), findings) if findings.trim().is_empty() => Ok(()),
        (_, findings) => Err(findings),
    }
}

/// A Prometheus server scraping its targets every second.
pub struct Prometheus {
    child: Child,
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (job `vigil`) and waits until it
    /// is ready.
    pub fn start(target: SocketAddr) -> Self {
        Self::start_with(&[target], &[])
    }

    /// Starts Prometheus scraping `targets` (job `vigil`) with extra
    /// command-line `flags` (e.g. `--enable-feature=native-histograms`) and
    /// waits until it is ready.
    pub fn start_with(targets: &[SocketAddr], flags: &[&str]) -> Self {
        Self::start_with_rules(targets, flags, &[])
    }

    /// [`start_with`](Self::start_with), also loading the rule files
    /// `rules` (recording and alerting rules evaluated every second).
    pub fn start_with_rules(
        targets: &[SocketAddr],
        flags: &[&str],
        rules: &[&std::path::Path],
    ) -> Self {
        let binary = require("prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
        let rules: Vec<String> = rules
            .iter()
            .map(|path| format!("'{}'", path.display()))
            .collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: [{}]\n",
                rules.join(", "),
                targets.join(", ")
            ),
        )
        .expect("the config is written");
        let address: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("an address");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts");
        let server = Self {
            child,
            address,
            _dir: dir,
        };
        server.wait_for("ready", |server| {
            matches!(http_get(server.address, "/-/ready"), Ok((200, _)))
        });
        server
    }

    /// Polls `check` every 200 ms for up to 30 s; panics naming `what`.
    pub fn wait_for(&self, what: &str, mut check: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "Prometheus on {} did not become {what} within 30 s",
            self.address
        );
    }

    /// The result vector of an instant PromQL query (`data.result`), or
    /// `None` when the query failed.
    pub fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        self.query_at(promql, None)
    }

    /// [`query`](Self::query) evaluated at `time` (Unix seconds) instead
    /// of now.
    pub fn query_at(&self, promql: &str, time: Option<f64>) -> Option<Vec<serde_json::Value>> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let at = time.map_or(String::new(), |t| format!("&time={t:.3}"));
        let (status, body) =
            http_get(self.address, &format!("/api/v1/query?query={encoded}{at}")).ok()?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"].as_array().cloned()
    }

    /// The value of an instant PromQL query with exactly one result.
    pub fn query_one(&self, promql: &str) -> Option<f64> {
        self.query_one_at(promql, None)
    }

    /// [`query_one`](Self::query_one) evaluated at `time` (Unix seconds).
    pub fn query_one_at(&self, promql: &str, time: Option<f64>) -> Option<f64> {
        let result = self.query_at(promql, time)?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
