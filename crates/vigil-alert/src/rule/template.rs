//! Annotation templates: Prometheus' `{{ $value }}` and
//! `{{ $labels.name }}`, piped through `humanize` or `humanizePercentage`.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::labels::Labels;

/// Expands Prometheus-style `{{ $value }}` and `{{ $labels.name }}` in an
/// annotation, optionally piped through `humanize` or `humanizePercentage`;
/// anything else between braces is left as written.
pub(crate) fn expand_template(template: &str, value: Option<f64>, labels: &Labels) -> String {
    static ACTION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)\{\{(.*?)\}\}").expect("a valid pattern"));
    let expand = |c: &Captures| expand_action(c[1].trim(), value, labels);
    let replace = |c: &Captures| expand(c).unwrap_or_else(|| c[0].to_owned());
    ACTION.replace_all(template, replace).into_owned()
}

fn expand_action(action: &str, value: Option<f64>, labels: &Labels) -> Option<String> {
    let mut parts = action.split('|').map(str::trim);
    let subject = parts.next()?;
    let pipe = parts.next();
    if parts.next().is_some() {
        return None;
    }
    if subject == "$value" {
        let v = value.unwrap_or(f64::NAN);
        return match pipe {
            None => Some(v.to_string()),
            Some("humanize") => Some(humanize(v)),
            Some("humanizePercentage") => Some(format!("{}%", format_significant(v * 100.0, 4))),
            Some(_) => None,
        };
    }
    let name = subject.strip_prefix("$labels.")?;
    pipe.is_none()
        .then(|| labels.get(name).cloned().unwrap_or_default())
}

/// Prometheus' `humanize`: 4 significant digits with an SI prefix.
fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_significant(v, 4);
    }
    const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
    const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
    // Divide big values by 1000 until below 1000, multiply small ones
    // until at least 1.
    let big = v.abs() >= 1.0;
    let prefixes = if big { BIG } else { SMALL };
    let (mut scaled, mut prefix) = (v, "");
    for p in prefixes {
        if (big && scaled.abs() < 1000.0) || (!big && scaled.abs() >= 1.0) {
            break;
        }
        scaled = if big {
            scaled / 1000.0
        } else {
            scaled * 1000.0
        };
        prefix = p;
    }
    format!("{}{prefix}", format_significant(scaled, 4))
}

/// `v` rounded to `digits` significant digits, without trailing zeros.
fn format_significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    #[test]
    fn templates_expand_value_and_labels() {
        let l = labels([("route", "/api")]);
        assert_eq!(
            expand_template(
                "{{ $labels.route }} at {{$value}} ({{ humanize }})",
                Some(0.5),
                &l
            ),
            "/api at 0.5 ({{ humanize }})"
        );
        assert_eq!(expand_template("no {{ end", None, &l), "no {{ end");
        assert_eq!(
            expand_template("{{ $labels.x }}|{{ $value }}", None, &l),
            "|NaN"
        );
    }
}
