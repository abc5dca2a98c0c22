//! The formats `/metrics` answers in, chosen from the request's `Accept`
//! header (RFC 9110 content negotiation), and rendering the registry in
//! each.

use hyper::body::Bytes;

use crate::recorder::Recorder;

/// The content type of Prometheus text exposition format 0.0.4.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The formats `/metrics` answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exposition {
    /// Text format 0.0.4: summaries and classic buckets.
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages:
    /// native histograms.
    Protobuf,
}

/// One media range of an `Accept` header: `type/subtype`, its parameters
/// (lowercase names, unquoted values) and its q-value.
#[derive(Debug)]
struct MediaRange<'a> {
    /// The type, e.g. `application` or `*`.
    kind: &'a str,
    /// The subtype, e.g. `vnd.google.protobuf` or `*`.
    subtype: &'a str,
    /// Parameters other than `q` (and the accept-extensions after it).
    parameters: Vec<(String, &'a str)>,
    /// The q-value, 0.0 ..= 1.0 (1.0 when absent).
    quality: f64,
}

impl<'a> MediaRange<'a> {
    /// Parses one comma-separated element; `None` for a malformed one
    /// (which then matches nothing).
    fn parse(element: &'a str) -> Option<Self> {
        let mut parts = element.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let mut range = MediaRange {
            kind: kind.trim(),
            subtype: subtype.trim(),
            parameters: Vec::new(),
            quality: 1.0,
        };
        for parameter in parts {
            let (name, value) = parameter.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"');
            if name == "q" {
                range.quality = value.parse().ok().filter(|q| (0.0..=1.0).contains(q))?;
                break; // what follows q is accept-extensions
            }
            range.parameters.push((name, value));
        }
        Some(range)
    }

    /// How specifically this range names `kind/subtype` with `required`
    /// parameters (3: with matching parameters, 2: exactly, 1: `kind/*`, 0:
    /// `*/*`), or `None` when it does not. A parameter the range names must
    /// have the required value when it is one of `required`.
    fn specificity(&self, kind: &str, subtype: &str, required: &[(&str, &str)]) -> Option<u8> {
        if self.kind == "*" && self.subtype == "*" {
            return Some(0);
        }
        if !self.kind.eq_ignore_ascii_case(kind) {
            return None;
        }
        if self.subtype == "*" {
            return Some(1);
        }
        if !self.subtype.eq_ignore_ascii_case(subtype) {
            return None;
        }
        let conflicts = self.parameters.iter().any(|(name, value)| {
            required
                .iter()
                .any(|(wanted, expected)| name == wanted && !value.eq_ignore_ascii_case(expected))
        });
        match (conflicts, self.parameters.is_empty()) {
            (true, _) => None,
            (false, true) => Some(2),
            (false, false) => Some(3),
        }
    }
}

impl Exposition {
    /// The format to answer with: protobuf when the `Accept` header (all
    /// of its values, joined) gives it a positive q-value above text's, as
    /// Prometheus with `--enable-feature=native-histograms` does
    /// (`...MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2`);
    /// text otherwise, and when there is no header. Each format's q-value
    /// comes from the most specific range that matches it (RFC 9110).
    pub(crate) fn negotiate(accept: &str) -> Self {
        let ranges: Vec<MediaRange<'_>> = accept.split(',').filter_map(MediaRange::parse).collect();
        let quality = |kind: &str, subtype: &str, required: &[(&str, &str)]| {
            ranges
                .iter()
                .filter_map(|range| {
                    let specificity = range.specificity(kind, subtype, required)?;
                    Some((specificity, range.quality))
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
                .map_or(0.0, |(_, quality)| quality)
        };
        let protobuf = quality(
            "application",
            "vnd.google.protobuf",
            &[
                ("proto", "io.prometheus.client.MetricFamily"),
                ("encoding", "delimited"),
            ],
        );
        let text = quality("text", "plain", &[]);
        if protobuf > 0.0 && protobuf > text {
            Exposition::Protobuf
        } else {
            Exposition::Text
        }
    }

    /// The Content-Type of this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => CONTENT_TYPE_TEXT,
            Exposition::Protobuf => crate::protobuf::CONTENT_TYPE,
        }
    }

    /// The exposition of `recorder` in this format.
    pub(crate) fn render(self, recorder: &Recorder) -> Bytes {
        recorder.refresh();
        match self {
            Exposition::Text => crate::render::text(&recorder.shared).into(),
            Exposition::Protobuf => crate::render::protobuf(&recorder.shared).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exposition::{self, Protobuf, Text};

    /// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
    const PROMETHEUS_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    #[test]
    fn prometheus_with_native_histograms_gets_protobuf() {
        assert_eq!(Exposition::negotiate(PROMETHEUS_NATIVE), Protobuf);
        let spaced = "application/vnd.google.protobuf; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited; q=0.7, text/plain; q=0.3";
        assert_eq!(Exposition::negotiate(spaced), Protobuf);
        let alone = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        assert_eq!(Exposition::negotiate(alone), Protobuf);
    }

    #[test]
    fn everything_else_gets_text() {
        for accept in [
            "",
            "*/*",
            "text/plain",
            // Prometheus without the feature flag.
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            // Protobuf acceptable, but text preferred or tied.
            "text/plain;q=0.9,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,text/*;q=0.5",
            // Refused outright, or another encoding of it.
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited",
            // Malformed q-values match nothing.
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=2",
            "garbage, ;;, /",
        ] {
            assert_eq!(Exposition::negotiate(accept), Text, "{accept}");
        }
    }

    #[test]
    fn the_most_specific_range_decides() {
        // application/* would allow protobuf at 0.9, but the exact range
        // names it at 0.1, below text's 0.5.
        let accept = "application/*;q=0.9,application/vnd.google.protobuf;q=0.1,text/plain;q=0.5";
        assert_eq!(Exposition::negotiate(accept), Text);
        // A wildcard alone for protobuf beats text's explicit lower q.
        assert_eq!(
            Exposition::negotiate("application/*,text/plain;q=0.5"),
            Protobuf
        );
    }
}
