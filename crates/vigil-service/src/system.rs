//! System and process metrics: CPU, memory, swap, disks, network, load and
//! the standard process collector names, read with `sysinfo` and recorded
//! through the `metrics` facade.
//!
//! [`SystemCollector::collect`] takes one reading (a tick) and records it
//! into whatever recorder is current; [`SystemThread`] runs it on a
//! background thread at an interval, keeping the last readings in a
//! [`SystemHistory`] for the health score and the recommendations.
//!
//! | metric | kind | labels | value |
//! |---|---|---|---|
//! | `system_cpu_usage_ratio` | gauge | | all CPUs busy, 0..1 |
//! | `system_memory_used_bytes` | gauge (bytes) | | memory in use |
//! | `system_memory_usage_ratio` | gauge | | used / total memory, 0..1 |
//! | `system_swap_usage_ratio` | gauge | | used / total swap, 0..1 (0 without swap) |
//! | `system_disk_usage_ratio` | gauge | `mount` | used / total space of a mounted file system, 0..1 |
//! | `system_network_received_bytes_total` | counter (bytes) | `interface` | bytes received since the interface came up |
//! | `system_network_transmitted_bytes_total` | counter (bytes) | `interface` | bytes sent since the interface came up |
//! | `system_load1`, `system_load5`, `system_load15` | gauge | | load average over 1, 5 and 15 minutes |
//! | `process_cpu_seconds_total` | counter (seconds) | | CPU time of this process, user and system, in **whole** seconds |
//! | `process_resident_memory_bytes` | gauge (bytes) | | resident set size |
//! | `process_virtual_memory_bytes` | gauge (bytes) | | virtual memory size |
//! | `process_open_fds` | gauge | | open file descriptors (where `sysinfo` can count them: Linux's `/proc/self/fd`; absent elsewhere) |
//! | `process_threads` | gauge | | threads of this process (Linux: `/proc/self/status`; elsewhere `sysinfo`'s task list, absent when it has none) |
//! | `process_start_time_seconds` | gauge (seconds) | | start of this process, unix seconds |
//!
//! Notes on the readings:
//!
//! - CPU usage is the change between two readings at least
//!   [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux) apart.
//!   [`SystemCollector::new`] takes a first reading, and a `collect` sooner
//!   than that after the previous reading (the first tick of a
//!   [`SystemThread`], taken at once) waits out the rest of it, so no
//!   reading is a meaningless 0 or spike.
//! - The counters are the operating system's totals, set with
//!   `Counter::absolute`; `metrics` counters are integers, so
//!   `process_cpu_seconds_total` moves in whole seconds (a `rate()` over a
//!   few minutes is still accurate to a second over that window).
//! - Disks: `sysinfo` already leaves out the kernel's pseudo file systems
//!   (`proc`, `sysfs`, `cgroup`, `devtmpfs`, `tmpfs`, ...); on top of that
//!   read-only images that are always full (`squashfs`, `iso9660`, `erofs`)
//!   and file systems of size 0 are skipped. `overlay` is kept: it is the
//!   root file system of a container.
//! - At most [`MAX_SERIES`] distinct mounts and [`MAX_SERIES`] distinct
//!   interfaces are recorded over a collector's life (the first seen, by
//!   name within a tick; one recorded before is recorded again when it
//!   comes back), so a host whose bind mounts or virtual interfaces come
//!   and go cannot flood the registry.
//! - A mount recorded at one tick and gone at the next has its
//!   `system_disk_usage_ratio` set to 0 once: an unmounted full disk does
//!   not stay full in the exposition. An interface that is gone keeps its
//!   counters' last totals.

mod history;
mod series;
mod thread;

use std::path::Path;
use std::time::{Instant, SystemTime};

use metrics::{KeyName, Unit, counter, gauge};
use serde::Serialize;
use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

pub use history::{DEFAULT_CAPACITY, SystemHistory};
pub use thread::{SystemThread, THREAD_NAME};

/// At most this many distinct mounts (`system_disk_usage_ratio`) and this
/// many distinct network interfaces are recorded over a collector's life.
pub const MAX_SERIES: usize = 64;

/// `system_cpu_usage_ratio`: the share of all CPUs busy, 0 to 1 (read by
/// the ready-made `HighCpuUsage` rule and the health score).
pub const CPU_USAGE: &str = "system_cpu_usage_ratio";
/// `system_memory_usage_ratio`: memory in use over memory installed, 0 to
/// 1 (read by the ready-made `HighMemoryUsage` rule and the health score).
pub const MEMORY_USAGE: &str = "system_memory_usage_ratio";
/// `system_disk_usage_ratio{mount}`.
const DISK_USAGE: &str = "system_disk_usage_ratio";

/// File systems skipped besides the pseudo ones `sysinfo` leaves out:
/// read-only images, always 100 % full.
const SKIPPED_FILE_SYSTEMS: [&str; 3] = ["squashfs", "iso9660", "erofs"];

/// One reading of the machine and the process, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SystemSample {
    /// When it was taken.
    pub at: SystemTime,
    /// All CPUs busy, 0..1, since the previous reading (at least
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] before).
    pub cpu_ratio: f64,
    /// Memory in use, bytes.
    pub memory_used_bytes: u64,
    /// Memory installed, bytes.
    pub memory_total_bytes: u64,
    /// `memory_used_bytes / memory_total_bytes`, 0..1.
    pub memory_ratio: f64,
    /// Used / total swap, 0..1; 0 without swap.
    pub swap_ratio: f64,
    /// The mounted file systems recorded, by mount point.
    pub disks: Vec<DiskSample>,
    /// Load average over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Resident set size of this process, bytes.
    pub process_resident_bytes: u64,
}

/// One mounted file system in a [`SystemSample`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiskSample {
    /// Its mount point (the `mount` label).
    pub mount: String,
    /// Used / total space, 0..1.
    pub ratio: f64,
    /// Space in use, bytes.
    pub used_bytes: u64,
    /// Size, bytes.
    pub total_bytes: u64,
}

/// Reads the machine and this process and records every `system_*` and
/// `process_*` metric (see the [module](self)).
///
/// The `sysinfo` objects are kept between ticks and refreshed for what is
/// recorded only.
///
/// ```
/// use vigil_service::system::SystemCollector;
///
/// let mut collector = SystemCollector::new();
/// let sample = collector.collect(); // recorded into the current recorder
/// assert!((0.0..=1.0).contains(&sample.memory_ratio));
/// assert!(sample.memory_total_bytes > 0);
/// ```
#[derive(Debug)]
pub struct SystemCollector {
    system: System,
    disks: Disks,
    networks: Networks,
    pid: Option<Pid>,
    described: bool,
    /// When the CPU usage was last refreshed.
    cpu_read_at: Instant,
    mounts: series::LabelValues,
    interfaces: series::LabelValues,
}

impl SystemCollector {
    /// A collector with a first CPU reading taken (see the module's note).
    #[must_use]
    pub fn new() -> SystemCollector {
        let mut system = System::new();
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        SystemCollector {
            system,
            disks: Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing()),
            networks: Networks::new(),
            pid: sysinfo::get_current_pid().ok(),
            described: false,
            cpu_read_at: Instant::now(),
            mounts: series::LabelValues::default(),
            interfaces: series::LabelValues::default(),
        }
    }

    /// Takes one reading, records it through the `metrics` facade (into the
    /// current recorder: `metrics::with_local_recorder`'s, else the global
    /// one) and returns it. Describes the metrics on its first call.
    ///
    /// Called sooner than [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] after
    /// the previous reading (or [`new`](Self::new)), it first sleeps for
    /// the rest of that interval, so that the CPU usage is measured.
    pub fn collect(&mut self) -> SystemSample {
        if !self.described {
            describe();
            self.described = true;
        }
        let since = self.cpu_read_at.elapsed();
        if let Some(wait) = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.checked_sub(since) {
            std::thread::sleep(wait);
        }
        let at = SystemTime::now();
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.cpu_read_at = Instant::now();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::everything());
        let cpu_ratio = (f64::from(self.system.global_cpu_usage()) / 100.0).clamp(0.0, 1.0);
        let memory_total_bytes = self.system.total_memory();
        let memory_used_bytes = self.system.used_memory();
        let memory_ratio = ratio(memory_used_bytes, memory_total_bytes);
        let swap_ratio = ratio(self.system.used_swap(), self.system.total_swap());
        gauge!(CPU_USAGE).set(cpu_ratio);
        gauge!("system_memory_used_bytes").set(memory_used_bytes as f64);
        gauge!(MEMORY_USAGE).set(memory_ratio);
        gauge!("system_swap_usage_ratio").set(swap_ratio);

        let disks = self.disks();
        let disks = series::record_disks(&mut self.mounts, disks);
        self.record_networks();

        let load = System::load_average();
        let load = [load.one, load.five, load.fifteen];
        gauge!("system_load1").set(load[0]);
        gauge!("system_load5").set(load[1]);
        gauge!("system_load15").set(load[2]);

        let process_resident_bytes = self.record_process();
        SystemSample {
            at,
            cpu_ratio,
            memory_used_bytes,
            memory_total_bytes,
            memory_ratio,
            swap_ratio,
            disks,
            load,
            process_resident_bytes,
        }
    }

    /// The mounted file systems worth recording, their space refreshed.
    fn disks(&mut self) -> Vec<DiskSample> {
        // Re-reads the mount table, so file systems mounted later appear.
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let mut disks: Vec<DiskSample> = self
            .disks
            .list()
            .iter()
            .filter(|disk| {
                disk.total_space() > 0
                    && !SKIPPED_FILE_SYSTEMS
                        .iter()
                        .any(|skipped| disk.file_system() == *skipped)
            })
            .map(|disk| {
                let total_bytes = disk.total_space();
                let used_bytes = total_bytes.saturating_sub(disk.available_space());
                DiskSample {
                    mount: mount_label(disk.mount_point()),
                    ratio: ratio(used_bytes, total_bytes),
                    used_bytes,
                    total_bytes,
                }
            })
            .collect();
        disks.sort_by(|a, b| a.mount.cmp(&b.mount));
        // A file system mounted twice counts once.
        disks.dedup_by(|a, b| a.mount == b.mount);
        disks
    }

    fn record_networks(&mut self) {
        self.networks.refresh(true);
        let mut interfaces: Vec<_> = self.networks.list().iter().collect();
        interfaces.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (name, data) in interfaces {
            if !self.interfaces.admit(name) {
                continue;
            }
            counter!("system_network_received_bytes_total", "interface" => name.clone())
                .absolute(data.total_received());
            counter!("system_network_transmitted_bytes_total", "interface" => name.clone())
                .absolute(data.total_transmitted());
        }
        // Their counters keep the last totals.
        let _ = self.interfaces.vanished();
    }

    /// Records the `process_*` metrics; returns the resident set size.
    fn record_process(&mut self) -> u64 {
        let Some(pid) = self.pid else {
            return 0;
        };
        let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
        // The thread count comes from /proc/self/status on Linux: no need
        // for sysinfo to list every task there.
        #[cfg(target_os = "linux")]
        let kind = kind.without_tasks();
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
        let Some(process) = self.system.process(pid) else {
            return 0;
        };
        counter!("process_cpu_seconds_total").absolute(process.accumulated_cpu_time() / 1000);
        gauge!("process_resident_memory_bytes").set(process.memory() as f64);
        gauge!("process_virtual_memory_bytes").set(process.virtual_memory() as f64);
        gauge!("process_start_time_seconds").set(process.start_time() as f64);
        if let Some(fds) = process.open_files() {
            gauge!("process_open_fds").set(fds as f64);
        }
        #[cfg(target_os = "linux")]
        let threads = linux_threads();
        #[cfg(not(target_os = "linux"))]
        let threads = process.tasks().map(|tasks| tasks.len().max(1));
        if let Some(threads) = threads {
            gauge!("process_threads").set(threads as f64);
        }
        process.memory()
    }
}

impl Default for SystemCollector {
    fn default() -> Self {
        SystemCollector::new()
    }
}

/// `part / whole`, 0 when `whole` is 0, at most 1.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64).clamp(0.0, 1.0)
}

fn mount_label(mount: &Path) -> String {
    mount.to_string_lossy().into_owned()
}

/// The `Threads:` line of `/proc/self/status`.
#[cfg(target_os = "linux")]
fn linux_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
}

/// Name, unit and HELP text of each gauge.
#[rustfmt::skip]
const GAUGES: [(&str, Option<Unit>, &str); 13] = [
    (CPU_USAGE, None, "Share of all CPUs busy since the last reading, 0 to 1."),
    ("system_memory_used_bytes", Some(Unit::Bytes), "Memory in use, bytes."),
    (MEMORY_USAGE, None, "Memory in use over memory installed, 0 to 1."),
    ("system_swap_usage_ratio", None, "Swap in use over swap configured, 0 to 1 (0 without swap)."),
    (DISK_USAGE, None, "Space in use over size of a mounted file system, 0 to 1."),
    ("system_load1", None, "Load average over 1 minute."),
    ("system_load5", None, "Load average over 5 minutes."),
    ("system_load15", None, "Load average over 15 minutes."),
    ("process_resident_memory_bytes", Some(Unit::Bytes), "Resident memory size, bytes."),
    ("process_virtual_memory_bytes", Some(Unit::Bytes), "Virtual memory size, bytes."),
    ("process_open_fds", Some(Unit::Count), "Open file descriptors."),
    ("process_threads", Some(Unit::Count), "Threads of this process."),
    ("process_start_time_seconds", Some(Unit::Seconds), "Start time since the unix epoch, seconds."),
];

/// Name, unit and HELP text of each counter.
#[rustfmt::skip]
const COUNTERS: [(&str, Option<Unit>, &str); 3] = [
    ("system_network_received_bytes_total", Some(Unit::Bytes), "Bytes received by an interface."),
    ("system_network_transmitted_bytes_total", Some(Unit::Bytes), "Bytes sent by an interface."),
    ("process_cpu_seconds_total", Some(Unit::Seconds), "User and system CPU time, whole seconds."),
];

/// Gives the current recorder the HELP texts and units, once per collector.
fn describe() {
    metrics::with_recorder(|recorder| {
        for (name, unit, help) in GAUGES {
            recorder.describe_gauge(KeyName::from_const_str(name), unit, help.into());
        }
        for (name, unit, help) in COUNTERS {
            recorder.describe_counter(KeyName::from_const_str(name), unit, help.into());
        }
    });
}
