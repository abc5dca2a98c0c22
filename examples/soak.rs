//! A soak run: a service-like mixed workload (timed async handlers, a
//! `#[cached]` lookup with tag invalidation, histograms, counters and
//! gauges) while the registry is scraped (text and protobuf over
//! `/metrics`), summarised as JSON, rotated by the upkeep thread and read
//! by alert rules, for a given number of seconds. Every report line gives
//! the resident set (from `/proc/self/statm`) and the number of series, so
//! memory that keeps growing shows.
//!
//! Histograms keep one minute of history here (six 10 s intervals), the
//! longest window this service reads. With the default configuration
//! (ninety 10 s intervals, for alert rules over up to 15 minutes) the
//! resident set rises during the first 15 minutes, while that ring fills,
//! and is flat after.
//!
//! ```text
//! cargo run --release --example soak -- --soak 600             # report every minute
//! cargo run --release --example soak -- --soak 60 --every 10   # report every 10 s
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil::alert::notify::TracingNotifier;
use vigil::alert::{Comparison, Engine, Rule, Severity};
use vigil::histogram::Config;
use vigil::{Matcher, Monitor, cached, timed};

const USAGE: &str = "usage: soak --soak SECONDS [--every SECONDS]";

/// Routes of the simulated service: a bounded label set, as in a real one.
const ROUTES: [&str; 5] = ["/users", "/orders", "/cart", "/search", "/checkout"];

/// Distinct users: more than the cache holds, so it evicts.
const USERS: u64 = 50_000;

/// The run's settings from the command line.
struct Settings {
    /// How long the workload runs.
    duration: Duration,
    /// How often a report line is printed.
    every: Duration,
}

/// Parses `--soak SECONDS [--every SECONDS]`.
fn settings(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut duration = None;
    let mut every = Duration::from_secs(60);
    while let Some(arg) = args.next() {
        let mut seconds = |flag: &str| -> Result<Duration, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a number of seconds"))?;
            match value.parse::<u64>() {
                Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
                _ => Err(format!(
                    "{flag} {value:?}: expected a whole number of seconds above 0"
                )),
            }
        };
        match arg.as_str() {
            "--soak" => duration = Some(seconds("--soak")?),
            "--every" => every = seconds("--every")?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let duration = duration.ok_or("--soak SECONDS is required")?;
    Ok(Settings { duration, every })
}

/// A user record, as a database would return it.
#[derive(Clone, Debug)]
struct User {
    id: u64,
    name: String,
}

/// The database read behind the cache: cached per user, tagged by user.
#[timed(labels(backend = "db"))]
#[cached(ttl = "30s", max_capacity = 10_000, tags = [format!("user:{id}")])]
async fn fetch_user(id: u64) -> Result<User, String> {
    if id.is_multiple_of(1_009) {
        return Err(format!("user {id} not found"));
    }
    Ok(User {
        id,
        name: format!("user-{id}"),
    })
}

/// A write that invalidates what is cached about the user.
#[timed(labels(backend = "db"))]
async fn rename_user(id: u64) -> Result<(), String> {
    fetch_user_cache()
        .invalidate_tag(&format!("user:{id}"))
        .await;
    Ok(())
}

/// One request of the simulated service.
#[timed(concurrency)]
async fn handle_request(route: &'static str, user: u64) -> Result<usize, String> {
    let user = fetch_user(user).await?;
    let bytes = 200 + user.name.len() * (1 + (user.id % 64) as usize);
    vigil::metrics::histogram!("soak_response_size_bytes", "route" => route).record(bytes as f64);
    vigil::metrics::counter!("soak_responses_total", "route" => route).increment(1);
    Ok(bytes)
}

/// A small xorshift generator, one per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// This process's resident set in bytes, from `/proc/self/statm` (Linux;
/// `None` elsewhere). Pages are taken as 4 KiB.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `GET /metrics` over HTTP/1.0, asking for `accept`; the body's length.
fn scrape(address: SocketAddr, accept: &str) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {address}\r\nAccept: {accept}\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response.len())
}

/// What Prometheus sends when it prefers protobuf (native histograms).
const PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3";

/// The alert rules evaluated every second.
fn engine() -> Engine {
    let rules = [
        Rule::builder("SlowRequests")
            .histogram_quantile(
                "function_calls_duration_seconds",
                0.99,
                Duration::from_secs(60),
            )
            .threshold(Severity::High, Comparison::Greater, 0.25)
            .build(),
        Rule::builder("ResponseRate")
            .rate("soak_responses_total", Duration::from_secs(60))
            .threshold(Severity::Low, Comparison::Less, 1.0)
            .build(),
        Rule::builder("InFlight")
            .gauge("soak_workers_busy")
            .threshold(Severity::Medium, Comparison::Greater, 1e9)
            .build(),
    ];
    Engine::new(rules.into_iter().map(|rule| rule.expect("a valid rule")))
        .expect("valid alert rules")
}

/// Reads, summarises and scrapes the registry until `stop`; how many rounds.
fn read_until(monitor: &Monitor, stop: &AtomicBool) -> u64 {
    let address = monitor.listen_address().expect("the monitor listens");
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        let text = monitor.render();
        let json = serde_json::to_string(&monitor.summary()).expect("a summary serializes");
        std::hint::black_box((text, json));
        let scraped = scrape(address, "text/plain").and_then(|_| scrape(address, PROTOBUF));
        if let Err(error) = scraped {
            eprintln!("scrape failed: {error}");
        }
        vigil::cache::publish_metrics();
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    rounds
}

/// One report line: elapsed time, resident set, series, requests.
fn report(monitor: &Monitor, started: Instant, requests: u64) -> Option<u64> {
    let summary = monitor.summary();
    let series = summary.counters.len() + summary.gauges.len() + summary.histograms.len();
    let rss = rss_bytes();
    println!(
        "t={:>6}s rss={} series={series} requests={requests}",
        started.elapsed().as_secs(),
        rss.map_or("n/a".into(), |rss| format!(
            "{:.1} MiB",
            rss as f64 / 1024.0 / 1024.0
        )),
    );
    rss
}

#[tokio::main]
async fn main() {
    let settings = match settings(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    // One minute of history: the summaries' window and the rules' windows.
    let history = |config: Config| config.interval(Duration::from_secs(10)).intervals(6);
    let monitor = Monitor::builder()
        .global_label("service", "soak")
        .listen("127.0.0.1:0")
        .default_histogram(history(Config::new()))
        .histogram(
            Matcher::Full("soak_response_size_bytes".into()),
            // Bytes, not seconds: one raw unit per byte, up to 1 MiB.
            history(Config::new().scale(1.0).range(1, 1 << 20)),
        )
        .buckets(
            Matcher::Full("soak_response_size_bytes".into()),
            &[256.0, 1024.0, 4096.0],
        )
        .alerts(engine())
        .notifier("default", TracingNotifier::new())
        .alert_interval(Duration::from_secs(1))
        .install()
        .expect("no other metrics recorder is installed in this example");

    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let reader = {
        let (monitor, stop) = (monitor.clone(), Arc::clone(&stop));
        std::thread::spawn(move || read_until(&monitor, &stop))
    };
    let workers = 4 * std::thread::available_parallelism().map_or(2, usize::from);
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (worker as u64 + 1));
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let n = rng.next();
                        let route = ROUTES[(n % ROUTES.len() as u64) as usize];
                        let user = (n >> 16) % USERS;
                        vigil::metrics::gauge!("soak_workers_busy").increment(1.0);
                        // Errors are counted by #[timed]; nothing to do here.
                        let _ = handle_request(route, user).await;
                        if n.is_multiple_of(50) {
                            let _ = rename_user(user).await;
                        }
                        vigil::metrics::gauge!("soak_workers_busy").decrement(1.0);
                    }
                    requests.fetch_add(64, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();

    let started = Instant::now();
    let first = report(&monitor, started, 0);
    let mut next = settings.every;
    while started.elapsed() < settings.duration {
        let wait = next
            .min(settings.duration)
            .saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        if started.elapsed() >= next && started.elapsed() < settings.duration {
            report(&monitor, started, requests.load(Ordering::Relaxed));
            next += settings.every;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a worker finishes");
    }
    let rounds = reader.join().expect("the reader finishes");
    let last = report(&monitor, started, requests.load(Ordering::Relaxed));
    if let (Some(first), Some(last)) = (first, last) {
        println!(
            "done: {} requests, {rounds} read rounds (render, summary, text and protobuf scrapes), rss {:+.1} MiB since the start",
            requests.load(Ordering::Relaxed),
            (last as f64 - first as f64) / 1024.0 / 1024.0
        );
    }
}
