//! Waiting for a flight from async code: [`Flight::wait_async`], and the
//! timer thread that wakes timed waiters.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{Flight, Phase, Waited, lock, nap};

impl<V: Clone> Flight<V> {
    /// [`wait`](Self::wait) for async callers: `id` (from
    /// [`Flights::waiter_id`]) names this waiter's waker slot.
    pub(crate) fn wait_async<'a>(
        &'a self,
        id: u64,
        deadline: Option<(&'a quanta::Clock, quanta::Instant)>,
    ) -> WaitAsync<'a, V> {
        WaitAsync {
            flight: self,
            id,
            deadline,
        }
    }

    fn forget_waker(&self, id: u64) {
        lock(&self.state).wakers.retain(|(waiter, _)| *waiter != id);
    }
}

/// The future of [`Flight::wait_async`]. Dropped, it removes its waker.
pub(crate) struct WaitAsync<'a, V: Clone> {
    flight: &'a Flight<V>,
    id: u64,
    deadline: Option<(&'a quanta::Clock, quanta::Instant)>,
}

impl<V: Clone> Future for WaitAsync<'_, V> {
    type Output = Waited<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Waited<V>> {
        let this = self.get_mut();
        let mut state = lock(&this.flight.state);
        if let Some(outcome) = Flight::outcome(&state) {
            return Poll::Ready(Waited::Done(outcome));
        }
        let mut wake_in = None;
        if let Some((clock, at)) = this.deadline {
            let loading = matches!(state.phase, Phase::Loading);
            let Some(slice) = nap(loading, clock.now(), at) else {
                return Poll::Ready(Waited::TimedOut);
            };
            wake_in = Some(slice);
        }
        match state
            .wakers
            .iter_mut()
            .find(|(waiter, _)| *waiter == this.id)
        {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => state.wakers.push((this.id, cx.waker().clone())),
        }
        drop(state);
        if let Some(wake_in) = wake_in {
            wake_after(wake_in, cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<V: Clone> Drop for WaitAsync<'_, V> {
    fn drop(&mut self) {
        self.flight.forget_waker(self.id);
    }
}

// Wakes async waiters whose wait limit may have passed: one thread for
// the process, started by the first timed wait, sleeping until the
// earliest wake-up it holds.
struct Timer {
    due: Mutex<Vec<(std::time::Instant, Waker)>>,
    changed: Condvar,
}

static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();

fn timer() -> Option<&'static Timer> {
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            due: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("vigil-cache-timer".into())
            .spawn(move || run(timer))
            .ok()
            .map(|_| timer)
    })
}

fn run(timer: &'static Timer) {
    let mut due = lock(&timer.due);
    loop {
        let now = std::time::Instant::now();
        let mut woken = Vec::new();
        due.retain(|(at, waker)| {
            if *at <= now {
                woken.push(waker.clone());
                return false;
            }
            true
        });
        let next = due.iter().map(|(at, _)| *at).min();
        if !woken.is_empty() {
            drop(due);
            woken.into_iter().for_each(Waker::wake);
            due = lock(&timer.due);
            continue;
        }
        due = match next {
            Some(at) => {
                timer
                    .changed
                    .wait_timeout(due, at.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => timer
                .changed
                .wait(due)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Wakes `waker` after `delay` of real time (at once if no thread
/// could be started: the waiter then polls until its limit).
fn wake_after(delay: Duration, waker: Waker) {
    match timer() {
        Some(timer) => {
            lock(&timer.due).push((std::time::Instant::now() + delay, waker));
            timer.changed.notify_one();
        }
        None => waker.wake(),
    }
}
