//! [`IntervalLog`]: snapshots written as an HdrHistogram interval log, the
//! text format HdrHistogram's tools (`HistogramLogProcessor`, HdrHistogram
//! plotters, hdrhistogram's `IntervalLogIterator`) read and merge offline.

use std::io::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};

use crate::{Error, Snapshot};

/// The column legend HdrHistogram's Java `HistogramLogWriter` writes (and
/// hdrhistogram's parser skips).
const LEGEND: &[u8] =
    b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Writes [`Snapshot`]s as an HdrHistogram interval log (format version 1.3):
/// a header with `StartTime`, `BaseTime` and the legend, then one line per
/// interval with its start (seconds since `BaseTime`), length, max (raw
/// units) and the V2 compressed histogram in base64.
///
/// Wraps `hdrhistogram::serialization::interval_log`. That writer borrows its
/// output, so this type owns the output and the serializer and opens a
/// borrowing writer per line; that is what makes
/// [`into_inner`](IntervalLog::into_inner) possible.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
/// use vigil_histogram::{Histogram, IntervalLog, Window};
///
/// let histogram = Histogram::new();
/// histogram.record(1_000);
/// let mut log = IntervalLog::new(Vec::new(), SystemTime::now())?;
/// log.write(&histogram.snapshot(Window::Cumulative), Duration::ZERO, Some("api"))?;
/// let text = log.into_inner();
///
/// let intervals = IntervalLogIterator::new(&text)
///     .filter(|entry| matches!(entry, Ok(LogEntry::Interval(_))))
///     .count();
/// assert_eq!(intervals, 1);
/// # Ok::<(), vigil_histogram::Error>(())
/// ```
pub struct IntervalLog<W: Write> {
    writer: W,
    serializer: V2DeflateSerializer,
}

impl<W: Write> IntervalLog<W> {
    /// Start a log on `writer` whose intervals are timed relative to `start`
    /// (written as both `StartTime` and `BaseTime`).
    ///
    /// # Errors
    /// [`Error::Io`] if writing the header fails.
    pub fn new(mut writer: W, start: SystemTime) -> Result<Self, Error> {
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(concat!(
                "[Logged with vigil-histogram ",
                env!("CARGO_PKG_VERSION"),
                "]"
            ))
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut writer, &mut serializer)?;
        writer.write_all(LEGEND)?;
        Ok(IntervalLog { writer, serializer })
    }

    /// Append one interval: `snapshot`'s histogram, starting `start_offset`
    /// after the log's start and lasting [`snapshot.window()`](Snapshot::window),
    /// optionally tagged.
    ///
    /// # Errors
    /// [`Error::InvalidTag`] for a tag with `,`, space, `\r` or `\n`;
    /// [`Error::Encode`] or [`Error::Io`] if serializing or writing fails.
    pub fn write(
        &mut self,
        snapshot: &Snapshot,
        start_offset: Duration,
        tag: Option<&str>,
    ) -> Result<(), Error> {
        let tag = match tag {
            Some(text) => {
                Some(Tag::new(text).ok_or_else(|| Error::InvalidTag { tag: text.into() })?)
            }
            None => None,
        };
        IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.writer, &mut self.serializer)?
            .write_histogram(snapshot.histogram(), start_offset, snapshot.window(), tag)
            .map_err(|error| match error {
                IntervalLogWriterError::SerializeError(error) => Error::Encode(error),
                IntervalLogWriterError::IoError(error) => Error::Io(error),
            })
    }

    /// Flush the underlying writer.
    ///
    /// # Errors
    /// [`Error::Io`] if flushing fails.
    pub fn flush(&mut self) -> Result<(), Error> {
        Ok(self.writer.flush()?)
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// Give the writer back (not flushed).
    pub fn into_inner(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Histogram, Window};

    #[test]
    fn header_has_start_base_time_and_legend() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500_000_000_250);
        let text =
            String::from_utf8(IntervalLog::new(Vec::new(), start).unwrap().into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[2],
            "#[StartTime: 1500000000.250 (seconds since epoch)]"
        );
        assert_eq!(
            lines[3],
            "#[BaseTime: 1500000000.250 (seconds since epoch)]"
        );
        assert_eq!(lines[4].as_bytes(), &LEGEND[..LEGEND.len() - 1]);
    }

    #[test]
    fn bad_tags_are_refused_with_the_tag() {
        let mut log = IntervalLog::new(Vec::new(), SystemTime::UNIX_EPOCH).unwrap();
        let snapshot = Histogram::new().snapshot(Window::Cumulative);
        let error = log
            .write(&snapshot, Duration::ZERO, Some("a b"))
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidTag { tag } if tag == "a b"),
            "{error}"
        );
    }
}
