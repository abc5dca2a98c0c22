//! [`SpanLayer`]: span durations from `tracing` recorded as a histogram, so
//! a service already instrumented with `tracing` (`#[tracing::instrument]`)
//! gets latency percentiles without touching its code.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `tracing_span_duration_seconds` | histogram (seconds) | `span` (the span's name), `target` (its target, the module path by default) |
//!
//! A span's duration is the wall time from its creation to its close (when
//! its last handle is dropped), entered or not in between: for an
//! instrumented `async fn`, the whole call including the time it waited.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;

use metrics::{Histogram, Key, KeyName, Label, Recorder, Unit};
use quanta::{Clock, Instant};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The histogram of span durations, in seconds.
pub const SPAN_DURATION: &str = "tracing_span_duration_seconds";

/// A `tracing_subscriber::Layer` recording the duration of every span that
/// closes into [`SPAN_DURATION`]`{span, target}`.
///
/// It records into the recorder given with
/// [`with_recorder`](Self::with_recorder), else into the current one
/// (`metrics::with_recorder`: a thread-local recorder if set, the global
/// one otherwise). The histogram handle of each callsite is resolved once
/// per recorder and cached in a map read without a lock (`arc_swap`,
/// replaced whole when a callsite is first seen), keyed by the addresses
/// of the callsite's metadata and of the recorder and hashed with one
/// multiply per address (no SipHash); a span then costs one clock read at
/// creation and one at close, the registry's extension entry holding its
/// start, one lookup of the cached handle and the histogram record. Spans
/// are never sampled or dropped.
///
/// ```
/// use std::sync::Arc;
/// use metrics_util::debugging::DebuggingRecorder;
/// use tracing_subscriber::layer::SubscriberExt;
/// use vigil_service::trace::SpanLayer;
///
/// let recorder = Arc::new(DebuggingRecorder::new());
/// let snapshotter = recorder.snapshotter();
/// let subscriber = tracing_subscriber::registry().with(SpanLayer::new().with_recorder(recorder));
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info_span!("load_user").in_scope(|| { /* ... */ });
/// });
/// let recorded = snapshotter.snapshot().into_vec();
/// assert_eq!(recorded[0].0.key().name(), "tracing_span_duration_seconds");
/// ```
pub struct SpanLayer {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
    clock: Clock,
    /// Histogram handles by callsite (its metadata's address) and recorder
    /// (its address; 0 for the layer's own recorder).
    handles: ArcSwap<Handles>,
}

type Handles = HashMap<(usize, usize), Histogram, BuildHasherDefault<AddressHasher>>;

/// The hasher of [`Handles`]' keys: addresses, unique per callsite and
/// recorder and chosen by no client, so each is mixed with one multiply
/// (its high bits, which the map's probing reads, then depend on every
/// bit of the address).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    #[inline]
    fn write_usize(&mut self, address: usize) {
        self.0 = (self.0.rotate_left(29) ^ address as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// Not called for `(usize, usize)` keys; a byte at a time.
    fn write(&mut self, bytes: &[u8]) {
        bytes
            .iter()
            .for_each(|&byte| self.write_usize(usize::from(byte)));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// When a span was created, kept in its extensions.
struct Started(Instant);

impl SpanLayer {
    /// A layer recording into the current recorder, timed by the real
    /// clock.
    #[must_use]
    pub fn new() -> SpanLayer {
        SpanLayer {
            recorder: None,
            clock: Clock::new(),
            handles: ArcSwap::default(),
        }
    }

    /// Records into `recorder` instead of the current one.
    #[must_use]
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder + Send + Sync>) -> SpanLayer {
        self.recorder = Some(recorder);
        self.forget_handles();
        self
    }

    /// Times spans with `clock` (a `quanta::Clock::mock()` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> SpanLayer {
        self.clock = clock;
        self
    }

    fn forget_handles(&mut self) {
        self.handles = ArcSwap::default();
    }

    /// Records `seconds` for a span of `metadata` into the layer's
    /// recorder, else the current one.
    fn record(&self, metadata: &'static Metadata<'static>, seconds: f64) {
        match &self.recorder {
            Some(recorder) => self.record_into(recorder.as_ref(), 0, metadata, seconds),
            None => metrics::with_recorder(|recorder| {
                let id = std::ptr::from_ref(recorder).cast::<()>() as usize;
                self.record_into(recorder, id, metadata, seconds);
            }),
        }
    }

    #[inline]
    fn record_into(
        &self,
        recorder: &dyn Recorder,
        recorder_id: usize,
        metadata: &'static Metadata<'static>,
        seconds: f64,
    ) {
        let key = (std::ptr::from_ref(metadata) as usize, recorder_id);
        let handles = self.handles.load();
        if let Some(histogram) = handles.get(&key) {
            histogram.record(seconds);
            return;
        }
        drop(handles);
        self.resolve(recorder, key, metadata).record(seconds);
    }

    /// The histogram of `metadata`'s spans in `recorder`, registered and
    /// cached: once per callsite and recorder.
    #[cold]
    #[inline(never)]
    fn resolve(
        &self,
        recorder: &dyn Recorder,
        key: (usize, usize),
        metadata: &'static Metadata<'static>,
    ) -> Histogram {
        let described = self.handles.load().keys().any(|&(_, id)| id == key.1);
        if !described {
            recorder.describe_histogram(
                KeyName::from_const_str(SPAN_DURATION),
                Some(Unit::Seconds),
                "Wall time of tracing spans from creation to close, in seconds.".into(),
            );
        }
        let labels = vec![
            Label::from_static_parts("span", metadata.name()),
            Label::from_static_parts("target", metadata.target()),
        ];
        let metrics_metadata = metrics::Metadata::new(
            metadata.target(),
            metrics::Level::INFO,
            metadata.module_path(),
        );
        let histogram =
            recorder.register_histogram(&Key::from_parts(SPAN_DURATION, labels), &metrics_metadata);
        // Registering again for the same key gives a handle on the same
        // series, so a thread that loses a race here records correctly.
        self.handles.rcu(|handles| {
            let mut handles = Handles::clone(handles);
            handles.insert(key, histogram.clone());
            handles
        });
        histogram
    }
}

impl Default for SpanLayer {
    fn default() -> Self {
        SpanLayer::new()
    }
}

impl std::fmt::Debug for SpanLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanLayer")
            .field("own_recorder", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(self.clock.now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(&Started(start)) = span.extensions().get::<Started>() else {
            return;
        };
        let elapsed = self.clock.now().saturating_duration_since(start);
        self.record(span.metadata(), elapsed.as_secs_f64());
    }
}
