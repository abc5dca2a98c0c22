//! Ready-made rules read only metrics that exist: every metric a rule set
//! reads is one vigil records ([`EMITTED_BY_VIGIL`], checked against
//! `docs/metrics.md` here and against the recording crates' own names and a
//! real scrape in the facade's `tests/ruleset_metrics.rs`) or one the rule
//! set documents as the host's.

#![cfg(feature = "rulesets")]

use std::collections::BTreeSet;
use std::path::Path;

use vigil_alert::Rule;
use vigil_alert::rulesets::{EMITTED_BY_VIGIL, ServiceTargets, SloBurnRate};

/// The metric names the rules read (their expressions and `also`
/// conditions).
fn metrics_read(rules: &[Rule]) -> BTreeSet<String> {
    rules
        .iter()
        .flat_map(|r| {
            let also = r.also.iter().flat_map(|a| a.expr.metrics());
            r.expr.metrics().chain(also)
        })
        .map(str::to_owned)
        .collect()
}

/// The metrics read that vigil does not record and `host` does not list.
fn undeclared(read: &BTreeSet<String>, host: &[&str]) -> Vec<String> {
    read.iter()
        .filter(|m| !EMITTED_BY_VIGIL.contains(&m.as_str()) && !host.contains(&m.as_str()))
        .cloned()
        .collect()
}

struct RuleSet {
    name: &'static str,
    rules: Vec<Rule>,
    vigil: &'static [&'static str],
    host: &'static [&'static str],
}

fn rule_sets() -> Vec<RuleSet> {
    vec![
        RuleSet {
            name: "ServiceTargets",
            rules: ServiceTargets::new().rules().unwrap(),
            vigil: ServiceTargets::VIGIL_METRICS,
            host: ServiceTargets::HOST_METRICS,
        },
        RuleSet {
            name: "SloBurnRate",
            rules: SloBurnRate::new("checkout", 0.999).rules().unwrap(),
            vigil: SloBurnRate::VIGIL_METRICS,
            host: SloBurnRate::HOST_METRICS,
        },
    ]
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn every_metric_a_ready_made_rule_reads_is_vigils_or_documented_as_the_hosts() {
    for rs in rule_sets() {
        let read = metrics_read(&rs.rules);
        assert_eq!(
            undeclared(&read, rs.host),
            Vec::<String>::new(),
            "{} reads metrics vigil does not record and its HOST_METRICS do not list",
            rs.name
        );
        // The documented split is exact: what it says comes from vigil does,
        // what it says the host provides is not something vigil records,
        // and together they are what the rules read.
        for m in rs.vigil {
            assert!(
                EMITTED_BY_VIGIL.contains(m),
                "{}::VIGIL_METRICS lists {m}, which vigil does not record",
                rs.name
            );
        }
        for m in rs.host {
            assert!(
                !EMITTED_BY_VIGIL.contains(m),
                "{}::HOST_METRICS lists {m}, which vigil records",
                rs.name
            );
        }
        let documented: BTreeSet<String> = set(rs.vigil).union(&set(rs.host)).cloned().collect();
        assert_eq!(read, documented, "{}: read vs documented", rs.name);
    }
    // vigil records every metric the rule sets read, the system gauges
    // included (with system metrics on).
    assert!(ServiceTargets::HOST_METRICS.is_empty());
    assert!(SloBurnRate::HOST_METRICS.is_empty());
}

#[test]
fn a_rule_on_an_undeclared_metric_is_caught() {
    let mut rules = ServiceTargets::new().rules().unwrap();
    rules.push(
        Rule::builder("DbPoolExhausted")
            .gauge("db_pool_available_ratio")
            .threshold(
                vigil_alert::Severity::High,
                vigil_alert::Comparison::Less,
                0.1,
            )
            .build()
            .unwrap(),
    );
    let read = metrics_read(&rules);
    assert_eq!(
        undeclared(&read, ServiceTargets::HOST_METRICS),
        ["db_pool_available_ratio"]
    );
    // Declared as the host's, it is accounted for.
    assert!(undeclared(&read, &["db_pool_available_ratio"]).is_empty());
}

fn workspace_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric names `docs/metrics.md` documents: the first cell of its
/// name tables (`| \`name\` | kind | ...`) and its `### \`name\`` headings.
fn documented_metrics() -> BTreeSet<String> {
    let text = workspace_file("docs/metrics.md");
    text.lines()
        .filter_map(|line| {
            let cell = line
                .strip_prefix("| `")
                .or_else(|| line.strip_prefix("### `"))?;
            let name = &cell[..cell.find('`')?];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            valid.then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_name_vigil_is_said_to_record_is_in_docs_metrics_md() {
    let documented = documented_metrics();
    for name in EMITTED_BY_VIGIL {
        assert!(
            documented.contains(*name),
            "EMITTED_BY_VIGIL lists {name}, which docs/metrics.md does not document \
             (documented: {documented:?})"
        );
    }
    for name in ServiceTargets::HOST_METRICS {
        assert!(
            !documented.contains(*name),
            "docs/metrics.md documents {name} as vigil's, but ServiceTargets::HOST_METRICS says the host provides it"
        );
    }
}

#[test]
fn the_rule_set_docs_say_which_metrics_the_host_provides() {
    let docs = workspace_file("docs/alert-rules.md");
    let start = docs
        .find("## Rule sets")
        .expect("docs/alert-rules.md has `## Rule sets`");
    let section = &docs[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let paragraphs: Vec<&str> = section.split("\n\n").collect();
    for rs in rule_sets() {
        // A paragraph about where the rule set's metrics come from names
        // each of them, the host's in a sentence about the host.
        let about = paragraphs
            .iter()
            .find(|p| p.contains("Metrics of") && p.contains(rs.name))
            .unwrap_or_else(|| {
                panic!(
                    "docs/alert-rules.md: no \"Metrics of ... {}\" paragraph in `## Rule sets`",
                    rs.name
                )
            });
        let (vigil_part, host_part) = about
            .split_once("the host")
            .unwrap_or_else(|| panic!("{about}: says nothing about the host"));
        for m in rs.vigil {
            assert!(
                vigil_part.contains(&format!("`{m}`")),
                "{about}: {m} from vigil"
            );
        }
        for m in rs.host {
            assert!(
                host_part.contains(&format!("`{m}`")),
                "{about}: {m} from the host"
            );
        }
        if rs.host.is_empty() {
            assert!(host_part.contains("nothing"), "{about}");
        }
    }
}
