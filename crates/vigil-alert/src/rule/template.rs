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
    const PREFIXES: [&str; 17] = [
        "y", "z", "a", "f", "p", "n", "u", "m", "", "k", "M", "G", "T", "P", "E", "Z", "Y",
    ];
    // Powers of 1000 to divide by, so that 1 <= |scaled| < 1000 (up to `Y`
    // and down to `y`).
    let step = (v.abs().log10() / 3.0).floor().clamp(-8.0, 8.0);
    let scaled = match step < 0.0 {
        true => v * 1000f64.powf(-step),
        false => v / 1000f64.powf(step),
    };
    let prefix = PREFIXES[(step + 8.0) as usize];
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
