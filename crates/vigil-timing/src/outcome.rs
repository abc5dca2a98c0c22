//! How a timed call ended, and how that maps onto metric labels.

/// How a timed call ended.
///
/// `Ok` and `Error` are counted in `function_calls_total` under
/// `result="ok"` / `result="error"`; `Panic` is counted there as `error` and
/// also in `function_panics_total`; `Cancelled` (a future dropped before it
/// completed) is counted only in `function_cancellations_total`.
///
/// ```
/// use vigil_timing::Outcome;
///
/// let failed: Result<u32, &str> = Err("timeout");
/// assert_eq!(Outcome::of_result(&failed), Outcome::Error);
/// assert_eq!(Outcome::Panic.result_label(), Some("error"));
/// assert_eq!(Outcome::Cancelled.result_label(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call completed successfully.
    Ok,
    /// The call completed and reported a failure (an `Err`, or what
    /// `error_if` / `ok_if` decided).
    Error,
    /// The call unwound with a panic. Counted as an error.
    Panic,
    /// The future was dropped before it completed.
    Cancelled,
}

impl Outcome {
    /// The value of the `result` label this outcome is counted under in
    /// `function_calls_total`, or `None` for a cancelled call, which is not
    /// counted there.
    #[must_use]
    pub const fn result_label(self) -> Option<&'static str> {
        match self {
            Outcome::Ok => Some("ok"),
            Outcome::Error | Outcome::Panic => Some("error"),
            Outcome::Cancelled => None,
        }
    }

    /// A short lower-case name: `ok`, `error`, `panic` or `cancelled`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// `Ok` for `Ok(_)`, `Error` for `Err(_)`.
    ///
    /// Usable as a classifier: `future.timed_with(site, Outcome::of_result)`.
    #[must_use]
    pub fn of_result<T, E>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error,
        }
    }

    /// `Ok` when `ok` is true, `Error` otherwise.
    #[must_use]
    pub const fn from_ok(ok: bool) -> Outcome {
        if ok { Outcome::Ok } else { Outcome::Error }
    }

    /// `Ok` for any value: the classifier used when nothing else decides.
    #[must_use]
    pub fn always_ok<T: ?Sized>(_: &T) -> Outcome {
        Outcome::Ok
    }

    /// Index into per-result handle pairs: 0 for ok, 1 for error/panic.
    pub(crate) const fn result_index(self) -> usize {
        match self {
            Outcome::Ok | Outcome::Cancelled => 0,
            Outcome::Error | Outcome::Panic => 1,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_counts_as_error_and_cancel_is_not_a_result() {
        assert_eq!(Outcome::Ok.result_label(), Some("ok"));
        assert_eq!(Outcome::Error.result_label(), Some("error"));
        assert_eq!(Outcome::Panic.result_label(), Some("error"));
        assert_eq!(Outcome::Cancelled.result_label(), None);
    }

    #[test]
    fn classifiers_follow_the_value() {
        assert_eq!(Outcome::of_result::<u8, ()>(&Ok(1)), Outcome::Ok);
        assert_eq!(Outcome::of_result::<u8, ()>(&Err(())), Outcome::Error);
        assert_eq!(Outcome::from_ok(false), Outcome::Error);
        assert_eq!(Outcome::always_ok(&Err::<(), ()>(())), Outcome::Ok);
        assert_eq!(Outcome::Cancelled.to_string(), "cancelled");
    }
}
