//! The label values of the labelled system series (`mount`,
//! `interface`), bounded over the collector's life, and the disks that
//! vanished since the last tick.

use std::collections::BTreeSet;

use metrics::gauge;

use super::{DISK_USAGE, DiskSample, MAX_SERIES};

/// The values of one label recorded so far: at most [`MAX_SERIES`] over the
/// collector's life, so mounts and interfaces that come and go (container
/// bind mounts, `veth` pairs) cannot grow the registry without bound.
#[derive(Debug, Default)]
pub(super) struct LabelValues {
    /// Every value ever recorded.
    known: BTreeSet<String>,
    /// The values recorded at the last tick.
    last: BTreeSet<String>,
    /// The values recorded at this tick so far.
    current: BTreeSet<String>,
}

impl LabelValues {
    /// Whether `value` is recorded at this tick: one recorded before, or a
    /// new one while fewer than [`MAX_SERIES`] have been.
    pub(super) fn admit(&mut self, value: &str) -> bool {
        let admitted = self.known.contains(value) || self.known.len() < MAX_SERIES;
        if admitted {
            self.known.insert(value.to_owned());
            self.current.insert(value.to_owned());
        }
        admitted
    }

    /// Ends a tick: the values recorded at the last tick and not at this
    /// one.
    pub(super) fn vanished(&mut self) -> Vec<String> {
        let last = std::mem::replace(&mut self.last, std::mem::take(&mut self.current));
        last.difference(&self.last).cloned().collect()
    }
}

/// Records `system_disk_usage_ratio` for the disks `mounts` admits and 0
/// for the mounts recorded last tick that are gone (unmounted: a full disk
/// that left must not stay full in the exposition and the health score);
/// returns the disks recorded.
pub(super) fn record_disks(
    mounts: &mut LabelValues,
    mut disks: Vec<DiskSample>,
) -> Vec<DiskSample> {
    disks.retain(|disk| mounts.admit(&disk.mount));
    for disk in &disks {
        gauge!(DISK_USAGE, "mount" => disk.mount.clone()).set(disk.ratio);
    }
    for mount in mounts.vanished() {
        gauge!(DISK_USAGE, "mount" => mount).set(0.0);
    }
    disks
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;

    fn disk(mount: &str, ratio: f64) -> DiskSample {
        DiskSample {
            mount: mount.to_owned(),
            ratio,
            used_bytes: (ratio * 100.0) as u64,
            total_bytes: 100,
        }
    }

    /// `system_disk_usage_ratio` by mount.
    fn ratios(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                assert_eq!(key.key().name(), DISK_USAGE);
                let mount = key.key().labels().next().unwrap().value().to_owned();
                let DebugValue::Gauge(ratio) = value else {
                    panic!("a gauge")
                };
                (mount, ratio.into_inner())
            })
            .collect()
    }

    #[test]
    fn a_mount_that_vanished_is_set_to_zero_once() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let mut mounts = LabelValues::default();
        metrics::with_local_recorder(&recorder, || {
            let recorded = record_disks(&mut mounts, vec![disk("/", 0.5), disk("/mnt/usb", 0.99)]);
            assert_eq!(recorded.len(), 2);
            assert_eq!(
                ratios(&snapshotter),
                BTreeMap::from([("/".to_owned(), 0.5), ("/mnt/usb".to_owned(), 0.99)])
            );
            let recorded = record_disks(&mut mounts, vec![disk("/", 0.6)]);
            assert_eq!(recorded, vec![disk("/", 0.6)]);
            assert_eq!(
                ratios(&snapshotter),
                BTreeMap::from([("/".to_owned(), 0.6), ("/mnt/usb".to_owned(), 0.0)])
            );
            // Mounted again: recorded again.
            record_disks(&mut mounts, vec![disk("/", 0.6), disk("/mnt/usb", 0.98)]);
            assert_eq!(ratios(&snapshotter)["/mnt/usb"], 0.98);
        });
    }

    #[test]
    fn at_most_max_series_values_are_ever_recorded() {
        let mut interfaces = LabelValues::default();
        let first: Vec<String> = (0..MAX_SERIES + 6).map(|i| format!("veth{i:03}")).collect();
        let admitted = first.iter().filter(|name| interfaces.admit(name)).count();
        assert_eq!(admitted, MAX_SERIES, "the first {MAX_SERIES} by name");
        assert_eq!(interfaces.vanished(), Vec::<String>::new());
        // All of them gone, as many new ones: none of those is recorded
        // (the registry keeps every series once made), the old ones are
        // again when they come back.
        assert!(!interfaces.admit("veth999"));
        assert!(interfaces.admit("veth000"));
        assert!(!interfaces.admit(&first[MAX_SERIES]));
        assert_eq!(interfaces.vanished().len(), MAX_SERIES - 1);
    }
}
