//! Formatting shared by the reports: durations in a readable unit,
//! aligned terminal tables, and durations as seconds in JSON.

use std::fmt;
use std::time::Duration;

/// `secs` seconds in the largest unit that keeps the number at or above
/// one: `850 ns`, `12.5 us`, `3.20 ms`, `1.50 s`.
pub(crate) fn seconds(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs}");
    }
    let abs = secs.abs();
    if abs == 0.0 {
        "0".to_owned()
    } else if abs < 1e-6 {
        format!("{:.0} ns", secs * 1e9)
    } else if abs < 1e-3 {
        format!("{:.1} us", secs * 1e6)
    } else if abs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// [`seconds`] of a `Duration`.
pub(crate) fn duration(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

/// A ratio as a percentage with two decimals.
pub(crate) fn percent(ratio: f64) -> String {
    format!("{:.2} %", ratio * 100.0)
}

/// A number without trailing zeros: `50`, `12.5`.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A duration from seconds, saturating instead of panicking on negative,
/// NaN or huge values.
pub(crate) fn from_seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

/// Serializes a `Duration` as seconds (a float), as vigil's summaries
/// and Prometheus do.
pub(crate) fn serialize_seconds<S: serde::Serializer>(
    d: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(d.as_secs_f64())
}

/// An aligned terminal table: the first column (or the first few, see
/// [`Table::left_aligned`]) left-aligned, the others right-aligned, two
/// spaces between columns.
pub(crate) struct Table {
    indent: &'static str,
    left: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(indent: &'static str, header: &[&str]) -> Self {
        Self {
            indent,
            left: 1,
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Left-align the first `columns` columns (text), not only the first.
    pub(crate) fn left_aligned(mut self, columns: usize) -> Self {
        self.left = columns;
        self
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::from(self.indent);
            for (c, cell) in row.iter().enumerate() {
                let gap = if c == 0 { "" } else { "  " };
                if c < self.left {
                    line.push_str(&format!("{gap}{cell:<width$}", width = widths[c]));
                } else {
                    line.push_str(&format!("{gap}{cell:>width$}", width = widths[c]));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_pick_a_unit_that_keeps_the_number_readable() {
        assert_eq!(seconds(0.0), "0");
        assert_eq!(seconds(850e-9), "850 ns");
        assert_eq!(seconds(12.5e-6), "12.5 us");
        assert_eq!(seconds(0.0032), "3.20 ms");
        assert_eq!(seconds(1.5), "1.50 s");
    }

    #[test]
    fn numbers_lose_trailing_zeros() {
        assert_eq!(number(50.0), "50");
        assert_eq!(number(12.5), "12.5");
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new("", &["name", "value"]);
        table.row(vec!["a".into(), "1".into()]);
        table.row(vec!["long name".into(), "1000".into()]);
        assert_eq!(
            table.to_string(),
            "name       value\na              1\nlong name   1000\n"
        );
    }

    #[test]
    fn bad_seconds_saturate() {
        assert_eq!(from_seconds(-1.0), Duration::ZERO);
        assert_eq!(from_seconds(f64::NAN), Duration::ZERO);
        assert_eq!(from_seconds(f64::INFINITY), Duration::MAX);
    }
}
