//! Loading alert configs from YAML and TOML: the schema, the conversion to
//! core types, and errors that name the file, item, field and position.

#![cfg(feature = "config")]

mod common;

#[cfg(all(feature = "routing", feature = "rulesets"))]
#[path = "config_load/full.rs"]
mod full;

#[cfg(not(all(feature = "routing", feature = "rulesets")))]
use common::yaml_err;

/// A section whose feature is off is refused with the feature to turn on,
/// not as an unknown field listing the others.
#[cfg(not(feature = "routing"))]
#[test]
fn routing_sections_need_the_routing_feature() {
    use common::toml_err;
    use vigil_alert::config::{AlertConfig, Item, Location};

    let rules = "rules:\n  - name: Up\n    expr: { gauge: { metric: up } }\n    thresholds: { high: '> 1' }\n";
    let cases = [
        (
            "routing:\n  receiver: pager\n",
            "routing",
            Some(Item::Routing),
            (6, 3),
        ),
        (
            "inhibit_rules:\n  - equal: [alertname]\n",
            "inhibit_rules",
            None,
            (6, 3),
        ),
        ("silences: []\n", "silences", None, (5, 11)),
    ];
    for (section, name, item, (line, column)) in cases {
        let err = yaml_err(&format!("{rules}{section}"));
        let message =
            format!("`{name}:` needs vigil-alert's `routing` feature (vigil's `alert-routing`)");
        let problem = err.problem().expect("a schema error");
        assert_eq!(problem.message, message, "{err}");
        assert_eq!(problem.file, "rules.yml");
        assert_eq!(err.item(), item.as_ref(), "{err}");
        assert_eq!(err.location(), Some(Location { line, column }), "{err}");
    }
    let err = toml_err("[routing]\nreceiver = \"pager\"\n");
    let message = "`routing:` needs vigil-alert's `routing` feature (vigil's `alert-routing`)";
    assert_eq!(err.problem().map(|p| p.message.as_str()), Some(message));
    assert_eq!(err.location().map(|l| l.line), Some(1), "{err}");
    // An empty section asks for nothing.
    let config = AlertConfig::from_yaml_str(&format!("{rules}routing:\n"), "a.yml");
    assert_eq!(config.map(|c| c.rules().len()).ok(), Some(1));
}

/// `rulesets:` without the `rulesets` feature names it.
#[cfg(not(feature = "rulesets"))]
#[test]
fn rulesets_section_needs_the_rulesets_feature() {
    let err = yaml_err("rulesets:\n  slos: []\n");
    let message = "`rulesets:` needs vigil-alert's `rulesets` feature (vigil's `rulesets`)";
    assert_eq!(
        err.problem().map(|p| p.message.as_str()),
        Some(message),
        "{err}"
    );
    assert_eq!(err.line(), Some(2), "{err}");
}
