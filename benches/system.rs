//! The cost of one system-metrics tick: `SystemCollector::collect` (which
//! refreshes `sysinfo` and records every `system_*` and `process_*` metric
//! into vigil's registry) against its peer, the bare `sysinfo` refreshes
//! of the same parts with nothing recorded, in one run: 20 ticks of each,
//! interleaved and spaced 250 ms apart as real ticks are (CPU use needs
//! two readings at least 200 ms apart, and `collect` waits that out), the
//! medians printed. Not criterion: its iteration loop would time the wait.
//!
//! ```text
//! cargo bench -p vigil-benches --bench system
//! ```
//!
//! The ratio is what recording adds to reading the operating system; a
//! tick runs every few seconds on a thread of its own, so the absolute cost
//! (tens of microseconds, mostly `/proc` reads) is what bounds its share
//! of a CPU.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, ProcessRefreshKind,
    ProcessesToUpdate, System,
};
use vigil_service::system::SystemCollector;

/// What `collect` reads, refreshed the way it refreshes it, nothing
/// recorded.
struct Peer {
    system: System,
    disks: Disks,
    networks: Networks,
    pid: sysinfo::Pid,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            system: System::new(),
            disks: Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing()),
            networks: Networks::new(),
            pid: sysinfo::get_current_pid().expect("the bench knows its own pid"),
        }
    }

    fn refresh(&mut self) -> f64 {
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::everything());
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.networks.refresh(true);
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu()
                .without_tasks(),
        );
        f64::from(self.system.global_cpu_usage()) + System::load_average().one
    }
}

/// Ticks per side, interleaved (peer, vigil, peer, ...).
const TICKS: usize = 20;

/// `sysinfo` computes CPU use between two refreshes at least this far
/// apart, and `collect` waits out the rest of it, so ticks are spaced like
/// this (a real interval is seconds) and only the work is timed.
const SPACING: Duration = Duration::from_millis(250);

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let monitor = vigil::Monitor::builder()
        .manual_upkeep()
        .build()
        .expect("a monitor with defaults builds");
    let recorder = monitor.recorder();
    let mut peer = Peer::new();
    let mut collector = SystemCollector::new();
    let (mut peer_ticks, mut vigil_ticks) = (Vec::new(), Vec::new());
    for _ in 0..TICKS {
        std::thread::sleep(SPACING);
        let start = Instant::now();
        black_box(peer.refresh());
        peer_ticks.push(start.elapsed());
        std::thread::sleep(SPACING);
        let start = Instant::now();
        vigil::with_local_recorder(&recorder, || black_box(collector.collect()));
        vigil_ticks.push(start.elapsed());
    }
    assert!(monitor.render().contains("system_cpu_usage_ratio"));
    let (peer, vigil) = (median(peer_ticks), median(vigil_ticks));
    println!(
        "system/sysinfo_refresh  median of {TICKS} ticks: {:>8.1} us",
        peer.as_secs_f64() * 1e6
    );
    println!(
        "system/vigil_collect    median of {TICKS} ticks: {:>8.1} us  ({:.2}x sysinfo_refresh)",
        vigil.as_secs_f64() * 1e6,
        vigil.as_secs_f64() / peer.as_secs_f64()
    );
}
