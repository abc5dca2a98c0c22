//! The simulated load: closed-loop virtual users with a think time, a
//! warm-up, a degradation window and a recovery, over plain HTTP/1.0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::sim::{Degradation, Rng};

/// The phase of the load a request is made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before the degradation.
    Warmup,
    /// While the dependencies are degraded.
    Degraded,
    /// After the degradation.
    Recovery,
}

impl Phase {
    /// Its name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warm-up",
            Phase::Degraded => "degraded",
            Phase::Recovery => "recovery",
        }
    }
}

/// One request the load makes.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: &'static str,
    /// The path with its query.
    pub path: String,
    /// A JSON body.
    pub body: Option<String>,
}

impl Request {
    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            body: None,
        }
    }

    /// `POST path` with a JSON body.
    pub fn post(path: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            method: "POST",
            path: path.into(),
            body: Some(body.into()),
        }
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            method: "DELETE",
            path: path.into(),
            body: None,
        }
    }
}

/// The shape of the load.
#[derive(Clone, Debug)]
pub struct Load {
    /// How long it runs.
    pub duration: Duration,
    /// Concurrent virtual users.
    pub users: usize,
    /// Each user's pause between its requests.
    pub think_time: Duration,
    /// The degradation window, as fractions of `duration` (e.g. 0.4..0.7).
    pub degraded: (f64, f64),
    /// Users started per second at the beginning (0: all at once).
    pub ramp_up_per_second: f64,
}

impl Load {
    /// `users` users for `duration`, degraded from 40 % to 70 % of it.
    pub fn new(duration: Duration, users: usize) -> Self {
        Self {
            duration,
            users,
            think_time: Duration::from_millis(20),
            degraded: (0.4, 0.7),
            ramp_up_per_second: 0.0,
        }
    }

    /// Degrades from `from` to `until` (fractions of the duration).
    pub fn degraded_between(mut self, from: f64, until: f64) -> Self {
        self.degraded = (from, until);
        self
    }

    /// The phase at `elapsed`.
    pub fn phase(&self, elapsed: Duration) -> Phase {
        let at = elapsed.as_secs_f64() / self.duration.as_secs_f64().max(1e-9);
        if at < self.degraded.0 {
            Phase::Warmup
        } else if at < self.degraded.1 {
            Phase::Degraded
        } else {
            Phase::Recovery
        }
    }

    /// Runs the load against `address`: each user asks `pick` for its next
    /// request, and `degradation` is on during the degraded phase. `tick`
    /// runs once a second with the phase (to evaluate alerts, print
    /// progress, set gauges).
    pub async fn run<P, T>(
        &self,
        address: SocketAddr,
        degradation: &Degradation,
        pick: P,
        mut tick: T,
    ) -> LoadStats
    where
        P: Fn(&mut Rng, Phase) -> Request + Send + Sync + 'static,
        T: FnMut(Phase),
    {
        let pick = Arc::new(pick);
        let start = Instant::now();
        let this = Arc::new(self.clone());
        let mut users = Vec::with_capacity(self.users);
        for user in 0..self.users {
            let pick = Arc::clone(&pick);
            let this = Arc::clone(&this);
            let delay = if self.ramp_up_per_second > 0.0 {
                Duration::from_secs_f64(user as f64 / self.ramp_up_per_second)
            } else {
                Duration::ZERO
            };
            users.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut rng = Rng::new(0xC0FFEE + user as u64);
                let mut stats = LoadStats::default();
                loop {
                    let elapsed = start.elapsed();
                    if elapsed >= this.duration {
                        break;
                    }
                    let phase = this.phase(elapsed);
                    let request = pick(&mut rng, phase);
                    // A request still open when the load ends is dropped
                    // (not counted), so the load never outlasts `duration`.
                    let deadline = tokio::time::Instant::from_std(start + this.duration);
                    let Ok(response) =
                        tokio::time::timeout_at(deadline, send(address, &request, None)).await
                    else {
                        break;
                    };
                    stats.record(phase, response.map_or(0, |(status, _)| status));
                    tokio::time::sleep(this.think_time).await;
                }
                stats
            }));
        }
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        while start.elapsed() < self.duration {
            ticker.tick().await;
            let phase = self.phase(start.elapsed());
            degradation.set(phase == Phase::Degraded);
            tick(phase);
        }
        degradation.set(false);
        let mut total = LoadStats::default();
        for user in users {
            if let Ok(stats) = user.await {
                total.merge(stats);
            }
        }
        total.elapsed = start.elapsed();
        total
    }
}

/// What the load saw from the client side.
#[derive(Clone, Debug, Default)]
pub struct LoadStats {
    /// Responses by phase and status (0: no response).
    pub responses: BTreeMap<(Phase, u16), u64>,
    /// How long the load ran.
    pub elapsed: Duration,
}

impl LoadStats {
    fn record(&mut self, phase: Phase, status: u16) {
        *self.responses.entry((phase, status)).or_default() += 1;
    }

    fn merge(&mut self, other: LoadStats) {
        for (key, count) in other.responses {
            *self.responses.entry(key).or_default() += count;
        }
    }

    /// Requests made.
    pub fn requests(&self) -> u64 {
        self.responses.values().sum()
    }

    /// Requests per second over the run.
    pub fn rate(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The share of requests answered with 5xx or not at all, in `phase`
    /// (`None`: all phases).
    pub fn error_ratio(&self, phase: Option<Phase>) -> f64 {
        let (mut errors, mut all) = (0, 0);
        for ((p, status), count) in &self.responses {
            if phase.is_none_or(|phase| phase == *p) {
                all += count;
                if *status == 0 || *status >= 500 {
                    errors += count;
                }
            }
        }
        errors as f64 / (all as f64).max(1.0)
    }

    /// Prints requests and error ratio per phase.
    pub fn print(&self) {
        if self.requests() == 0 {
            super::report::heading("Load (client side)");
            println!("  driven from outside (--external-load): see the server side below");
            return;
        }
        let mut table = super::Table::new(
            "Load (client side)",
            &["phase", "requests", "5xx or failed", "error ratio"],
        );
        for phase in [Phase::Warmup, Phase::Degraded, Phase::Recovery] {
            let all: u64 = self
                .responses
                .iter()
                .filter(|((p, _), _)| *p == phase)
                .map(|(_, c)| c)
                .sum();
            let ratio = self.error_ratio(Some(phase));
            table.row([
                phase.as_str().to_owned(),
                all.to_string(),
                format!("{:.0}", ratio * all as f64),
                format!("{:.1} %", ratio * 100.0),
            ]);
        }
        table.row([
            "total".to_owned(),
            self.requests().to_string(),
            format!("{:.0}", self.error_ratio(None) * self.requests() as f64),
            format!(
                "{:.1} % ({:.0} req/s over {:.1} s)",
                self.error_ratio(None) * 100.0,
                self.rate(),
                self.elapsed.as_secs_f64()
            ),
        ]);
        table.print();
    }
}

/// `GET path` with an optional bearer token: (status, body).
pub async fn fetch(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    send(address, &Request::get(path), token).await
}

/// Sends `request` over HTTP/1.0 with an optional bearer token: (status,
/// body).
pub async fn send(
    address: SocketAddr,
    request: &Request,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let body = request.body.as_deref().unwrap_or_default();
    let head = format!(
        "{} {} HTTP/1.0\r\nHost: {address}\r\n{authorization}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        request.method,
        request.path,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
