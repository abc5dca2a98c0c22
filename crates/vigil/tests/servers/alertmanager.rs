//! A real Alertmanager from Debian's `prometheus-alertmanager` package (the
//! binary has the package's name), on a free loopback port with its own
//! temporary directory and clustering off, killed when the test ends.
//!
//! Every call blocks. In a multi-thread `#[tokio::test]` the test body runs
//! on its own thread, so the runtime's workers keep delivering meanwhile.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, http_get, require};

const BINARY: &str = "prometheus-alertmanager";
const PACKAGE: &str = "prometheus-alertmanager";

/// How long starting and [`Alertmanager::wait_for`] may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// The route and receiver every alert goes to unless a test routes it.
const DEFAULT_ROUTE: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

/// An Alertmanager on a free loopback port with its own temporary
/// directory; killed on drop.
pub struct Alertmanager {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one routing every alert to receiver `default` and waits until
    /// it is ready.
    pub fn start() -> Self {
        Self::start_with_config(DEFAULT_ROUTE)
    }

    /// [`start`](Self::start) with `global.resolve_timeout` set (e.g.
    /// `10s`), the time after which Alertmanager resolves an alert posted
    /// without `endsAt`.
    pub fn start_with_resolve_timeout(resolve_timeout: &str) -> Self {
        Self::start_with_config(&format!(
            "global:\n  resolve_timeout: {resolve_timeout}\n{DEFAULT_ROUTE}"
        ))
    }

    /// Starts one with `config` as its `am.yml` and waits until `/-/ready`
    /// answers 200.
    pub fn start_with_config(config: &str) -> Self {
        let binary = require(BINARY, PACKAGE);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config_path = dir.path().join("am.yml");
        std::fs::write(&config_path, config).expect("write am.yml");
        let address: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("a loopback address");
        let log = std::fs::File::create(dir.path().join("am.log")).expect("create am.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{BINARY}` ({e}): install Debian's `{PACKAGE}` package \
                     (apt-get install -y --no-install-recommends {PACKAGE})"
                )
            });
        let mut am = Alertmanager {
            child,
            address,
            dir,
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = am.child.try_wait() {
                panic!("{BINARY} exited with {status}:\n{}", am.log());
            }
            if matches!(http_get(address, "/-/ready"), Ok((200, _))) {
                return am;
            }
            assert!(
                Instant::now() < deadline,
                "{BINARY} not ready within {DEADLINE:?}:\n{}",
                am.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// What Alertmanager has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    /// The alerts `GET /api/v2/alerts` lists with this `alertname`.
    pub fn alerts(&self, alertname: &str) -> Vec<Value> {
        let (status, body) = http_get(self.address, "/api/v2/alerts").expect("GET /api/v2/alerts");
        assert_eq!(status, 200, "{body}");
        let all: Vec<Value> = serde_json::from_str(&body).expect("a JSON array of alerts");
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }

    /// Polls [`alerts`](Self::alerts) every 100 ms until `check` accepts
    /// them and returns them; after 20 s fails saying `what` did not
    /// happen, with the alerts and the log.
    pub fn wait_for(
        &self,
        alertname: &str,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let alerts = self.alerts(alertname);
            if check(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within {DEADLINE:?}; Alertmanager lists {alerts:#?}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
