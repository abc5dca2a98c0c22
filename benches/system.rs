//! The cost of one system-metrics tick: `SystemCollector::collect` (which
//! refreshes `sysinfo` and records every `system_*` and `process_*` metric
//! into a Prometheus recorder) against its peer, the bare `sysinfo`
//! refreshes of the same parts with nothing recorded, in one run.
//!
//! ```text
//! cargo bench -p vigil-benches --bench system
//! python3 scripts/bench-report system sysinfo_refresh
//! ```
//!
//! The ratio is what recording adds to reading the operating system; a
//! tick runs every few seconds on a thread of its own, so the absolute cost
//! (tens of microseconds, mostly `/proc` reads) is what bounds its share
//! of a CPU.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
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

fn system(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let mut group = c.benchmark_group("system");

    let mut peer = Peer::new();
    group.bench_function("sysinfo_refresh", |b| b.iter(|| black_box(peer.refresh())));

    let mut collector = SystemCollector::new();
    metrics::with_local_recorder(&recorder, || {
        group.bench_function("vigil_collect", |b| {
            b.iter(|| black_box(collector.collect()))
        });
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = system
}
criterion_main!(benches);
