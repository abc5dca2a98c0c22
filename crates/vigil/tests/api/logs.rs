//! Every `tracing` event of the test process, with its fields, kept as
//! text so a test can look for what must never be logged.

use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = write!(
            text,
            "{} {}: ",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut text));
        text.push('\n');
    }
}

static CAPTURE: OnceLock<Capture> = OnceLock::new();

/// Makes the capture the process's subscriber (once; every level).
pub fn capture() {
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(capture.clone()),
        )
        .expect("no other global subscriber in this test binary");
        capture
    });
}

/// Everything logged since [`capture`].
pub fn logged() -> String {
    CAPTURE
        .get()
        .map(|capture| {
            capture
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
        .unwrap_or_default()
}
