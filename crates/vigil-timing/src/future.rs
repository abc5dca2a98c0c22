//! Timing futures: [`Timed`] and the [`TimedExt`] extension trait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::timer::Measurement;
use crate::{CallSite, Outcome, caller};

pin_project! {
    /// A future timed as one call of a [`CallSite`].
    ///
    /// The call starts at the first poll and ends when the inner future
    /// completes (outcome from the classifier), panics while polled
    /// ([`Outcome::Panic`], the panic propagates unchanged) or is dropped
    /// before completing ([`Outcome::Cancelled`]). Any in-flight gauge it
    /// raised is lowered in every case. Around each poll the site is the
    /// current caller on the polling thread, so instrumented calls awaited
    /// inside report it as `caller_function`.
    ///
    /// Created by [`TimedExt::timed`], [`TimedExt::timed_with`] or
    /// [`Timed::new`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Timed<F, C> {
        #[pin]
        inner: F,
        site: &'static CallSite,
        classify: Option<C>,
        measurement: Option<Measurement>,
        // Set at the first poll: a future polled again after a caught
        // panic is not a new call.
        started: bool,
    }

    impl<F, C> PinnedDrop for Timed<F, C> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(measurement) = this.project().measurement.take() {
                measurement.record(Outcome::Cancelled);
            }
        }
    }
}

impl<F, C> Timed<F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
{
    /// Times `inner` as a call of `site`, classifying its output with
    /// `classify`.
    pub fn new(site: &'static CallSite, inner: F, classify: C) -> Timed<F, C> {
        Timed {
            inner,
            site,
            classify: Some(classify),
            measurement: None,
            started: false,
        }
    }
}

impl<F, C> Future for Timed<F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let (_scope, caller) = caller::enter(this.site);
        if !*this.started {
            *this.started = true;
            *this.measurement = Some(Measurement::start(this.site, caller));
        }
        let unwind = FinishOnUnwind {
            measurement: this.measurement,
            unwinding_before: std::thread::panicking(),
        };
        let output = std::task::ready!(this.inner.poll(cx));
        // Classify while the guard still holds the measurement: a panicking
        // classifier is recorded as a panic, and the gauge still lowered.
        if let Some(classify) = this.classify.take() {
            let outcome = classify(&output);
            if let Some(measurement) = unwind.measurement.take() {
                measurement.record(outcome);
            }
        }
        Poll::Ready(output)
    }
}

/// Records a panic if the inner poll (or the classifier) unwinds.
struct FinishOnUnwind<'a> {
    measurement: &'a mut Option<Measurement>,
    /// Polled from a `Drop` during unwinding: returning `Pending` then is
    /// no panic of this call.
    unwinding_before: bool,
}

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        if !self.unwinding_before
            && std::thread::panicking()
            && let Some(measurement) = self.measurement.take()
        {
            measurement.record(Outcome::Panic);
        }
    }
}

/// Timing for any future.
///
/// ```
/// use vigil_timing::{callsite, Outcome, TimedExt};
///
/// async fn fetch() -> Result<u32, String> { Ok(7) }
///
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let value = fetch().timed_with(callsite!("fetch"), Outcome::of_result).await;
/// assert_eq!(value, Ok(7));
/// let n = async { 1 + 1 }.timed(callsite!("add")).await;
/// assert_eq!(n, 2);
/// # });
/// ```
pub trait TimedExt: Future + Sized {
    /// Times this future as a call of `site`; completion is
    /// [`Outcome::Ok`].
    fn timed(self, site: &'static CallSite) -> Timed<Self, fn(&Self::Output) -> Outcome> {
        Timed::new(site, self, Outcome::always_ok::<Self::Output>)
    }

    /// Times this future as a call of `site`, classifying its output with
    /// `classify` (e.g. [`Outcome::of_result`]).
    fn timed_with<C>(self, site: &'static CallSite, classify: C) -> Timed<Self, C>
    where
        C: FnOnce(&Self::Output) -> Outcome,
    {
        Timed::new(site, self, classify)
    }
}

impl<F: Future> TimedExt for F {}
