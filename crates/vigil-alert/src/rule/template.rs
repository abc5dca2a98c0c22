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
    let v = value.unwrap_or(f64::NAN);
    match action.split('|').map(str::trim).collect::<Vec<_>>()[..] {
        ["$value"] => Some(v.to_string()),
        ["$value", "humanize"] => Some(humanize(v)),
        ["$value", "humanizePercentage"] => Some(format!("{}%", format_significant(v * 100.0))),
        [subject] => {
            let name = subject.strip_prefix("$labels.")?;
            Some(labels.get(name).cloned().unwrap_or_default())
        }
        _ => None,
    }
}

/// Prometheus' `humanize`: 4 significant digits with an SI prefix, from
/// `y` (10^-24) to `Y` (10^24).
fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_significant(v);
    }
    const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
    const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
    // As Prometheus: divide big values by 1000 until below 1000, multiply
    // small ones until at least 1 (the rounding then may show `1000k`).
    let big = v.abs() >= 1.0;
    let (mut scaled, mut prefix) = (v, "");
    for p in if big { BIG } else { SMALL } {
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
    format!("{}{prefix}", format_significant(scaled))
}

/// `v` rounded to 4 significant digits, without trailing zeros.
fn format_significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_owned(),
        false => text,
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

    #[test]
    fn humanize_takes_an_si_prefix_and_four_significant_digits() {
        let shown = |v: f64| expand_template("{{ $value | humanize }}", Some(v), &Labels::new());
        for (v, want) in [
            (0.0, "0"),
            (1234.6, "1.235k"),
            (-1500.0, "-1.5k"),
            (0.5, "500m"),
            (2.5e-7, "250n"),
            (1e30, "1000000Y"),
            (12.0, "12"),
            // Prometheus' loop, not log10, picks the prefix.
            (999.9999999999999, "1000"),
            (999999.9999999999, "1000k"),
            (9.9995e-05, "100u"),
        ] {
            assert_eq!(shown(v), want, "{v}");
        }
        let percent = expand_template(
            "{{ $value | humanizePercentage }}",
            Some(0.5),
            &Labels::new(),
        );
        assert_eq!(percent, "50%");
    }
}
