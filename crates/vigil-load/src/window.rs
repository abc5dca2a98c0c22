//! [`ErrorWindow`]: the error ratio over a sliding window of recent
//! completions, for the error-rate stop condition.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Completions in slices of a tenth of the window each: memory and the
/// cost of a record stay constant whatever the request rate, and the
/// window is exact to a tenth of its length.
#[derive(Debug)]
pub(crate) struct ErrorWindow {
    limit: f64,
    window: Duration,
    slice: Duration,
    min_requests: u64,
    /// (slice start, requests, errors), oldest first.
    slices: VecDeque<(Instant, u64, u64)>,
}

impl ErrorWindow {
    pub(crate) fn new(limit: f64, window: Duration, min_requests: u64) -> Self {
        Self {
            limit,
            window,
            slice: (window / 10).max(Duration::from_millis(1)),
            min_requests,
            slices: VecDeque::with_capacity(11),
        }
    }

    /// Count one completion at `now`; the window's error ratio when it
    /// holds at least `min_requests` and the ratio is above the limit.
    pub(crate) fn record(&mut self, now: Instant, error: bool) -> Option<f64> {
        while let Some(&(start, ..)) = self.slices.front() {
            // A window too long for the clock never expires a slice.
            let expires = start
                .checked_add(self.slice)
                .and_then(|t| t.checked_add(self.window));
            if expires.is_some_and(|expires| expires <= now) {
                self.slices.pop_front();
            } else {
                break;
            }
        }
        match self.slices.back_mut() {
            Some((start, requests, errors))
                if start.checked_add(self.slice).is_none_or(|end| now < end) =>
            {
                *requests += 1;
                *errors += u64::from(error);
            }
            _ => self.slices.push_back((now, 1, u64::from(error))),
        }
        let (requests, errors) = self
            .slices
            .iter()
            .fold((0, 0), |(r, e), &(_, requests, errors)| {
                (r + requests, e + errors)
            });
        let ratio = crate::bench::ratio(errors, requests);
        (requests >= self.min_requests && ratio > self.limit).then_some(ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_above_the_limit_only_with_enough_requests() {
        let now = Instant::now();
        let mut window = ErrorWindow::new(0.05, Duration::from_secs(10), 20);
        assert_eq!(window.record(now, true), None, "1 of 1 is too few to judge");
        for _ in 0..18 {
            assert_eq!(window.record(now, false), None);
        }
        let ratio = window.record(now, true).expect("2 of 20 is above 5 %");
        assert!((ratio - 0.1).abs() < 1e-12);
    }

    #[test]
    fn old_errors_leave_the_window() {
        let now = Instant::now();
        let mut window = ErrorWindow::new(0.05, Duration::from_secs(10), 1);
        assert!(window.record(now, true).is_some());
        let later = now + Duration::from_secs(12);
        assert_eq!(window.record(later, false), None);
    }
}
