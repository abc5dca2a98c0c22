//! `SlackNotifier` against a loopback HTTP receiver: the exact message
//! posted (headline, one coloured attachment per alert with severity,
//! status, value, threshold, labels and link, alert text escaped for
//! mrkdwn), Slack's error answers, and the webhook's secret kept out of
//! errors.

#![cfg(feature = "delivery")]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use support::{HttpServer, notification, refused_url};
use vigil_alert::notify::{Notifier, NotifyError, SlackNotifier};
use vigil_alert::{Alert, AlertStatus, Comparison, Notification, Rule, Severity, labels};

/// The number of characters of `value`, a JSON string.
fn chars(value: &serde_json::Value) -> usize {
    value.as_str().expect("a string").chars().count()
}

/// A firing critical alert (threshold from its rule) and a resolved
/// warning whose label holds mrkdwn control characters and quotes
/// (threshold from an annotation), at fixed times.
fn two_alerts() -> (Notification, Vec<Rule>) {
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let mut n = notification("ops", AlertStatus::Firing);
    n.alerts[0].starts_at = at(0);
    n.alerts.push(Alert {
        rule: "SlowCheckout".into(),
        labels: labels([
            ("alertname", "SlowCheckout"),
            ("route", "/pay?\"x\"<y> & z"),
            ("severity", "warning"),
        ]),
        annotations: labels([("threshold", "0.5")]),
        status: AlertStatus::Resolved,
        severity: Severity::Medium,
        value: Some(0.8),
        starts_at: at(0),
        ends_at: Some(at(90)),
        silenced: false,
        inhibited: false,
        escalated: false,
    });
    let rule = Rule::builder("HighErrorRate")
        .gauge("error_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.2)
        .build()
        .unwrap();
    (n, vec![rule])
}

#[tokio::test]
async fn posts_a_headline_and_a_coloured_attachment_per_alert() {
    let server = HttpServer::answering(&[200]);
    let (sent, rules) = two_alerts();
    let slack = SlackNotifier::builder(server.url("/services/T0/B0/s3cret"))
        .channel("#alerts")
        .username("vigil")
        .link("http://checkout.internal/status")
        .rules(&rules)
        .build()
        .unwrap();

    slack.notify(&sent).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].line, "POST /services/T0/B0/s3cret HTTP/1.1");
    assert_eq!(requests[0].headers["content-type"], "application/json");
    let field =
        |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")});
    let expected = json!({
        "text": "[FIRING:1, RESOLVED:1] HighErrorRate, SlowCheckout for ops",
        "channel": "#alerts",
        "username": "vigil",
        "attachments": [
            {
                "color": "#a30200",
                "fallback": "[critical] HighErrorRate firing: checkout fails 0.3 of calls",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": "*<http://checkout.internal/status|HighErrorRate>* firing\ncheckout fails 0.3 of calls"}},
                    {"type": "section", "fields": [
                        field("Severity", "critical"), field("Status", "firing"),
                        field("Value", "0.3"), field("Threshold", "&gt; 0.2"),
                    ]},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": "`function=checkout`  since 2023-11-14T22:13:20Z"}]},
                ],
            },
            {
                "color": "#2eb886",
                "fallback": "[warning] SlowCheckout resolved",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": "*<http://checkout.internal/status|SlowCheckout>* resolved"}},
                    {"type": "section", "fields": [
                        field("Severity", "warning"), field("Status", "resolved"),
                        field("Value", "0.8"), field("Threshold", "0.5"),
                    ]},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": "`route=/pay?\"x\"&lt;y&gt; &amp; z`  since 2023-11-14T22:14:50Z"}]},
                ],
            },
        ],
    });
    assert_eq!(requests[0].json(), expected);
    assert_eq!(slack.message(&sent), expected);
}

#[tokio::test]
async fn each_severity_has_its_colour_and_resolved_alerts_are_green() {
    let slack = SlackNotifier::new("http://127.0.0.1:9/hook").unwrap();
    let mut n = notification("ops", AlertStatus::Firing);
    let mut colours = Vec::new();
    for severity in [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ] {
        n.alerts[0].severity = severity;
        colours.push(slack.message(&n)["attachments"][0]["color"].clone());
    }
    n.alerts[0].status = AlertStatus::Resolved;
    colours.push(slack.message(&n)["attachments"][0]["color"].clone());
    assert_eq!(
        colours,
        ["#439fe0", "#daa038", "#e8751a", "#a30200", "#2eb886"]
    );
    // Without a link, a rule or a threshold annotation.
    let blocks = &slack.message(&n)["attachments"][0]["blocks"];
    assert_eq!(
        blocks[0]["text"]["text"],
        "*HighErrorRate* resolved\ncheckout fails 0.3 of calls"
    );
    assert_eq!(blocks[1]["fields"][3]["text"], "*Threshold*\nn/a");
    assert!(slack.message(&n).get("channel").is_none());

    // A link with placeholders, filled in per alert and percent-encoded.
    let grafana = "http://grafana.internal/d/checkout?var-function={{labels.function}}";
    let slack = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .link(grafana)
        .build()
        .unwrap();
    n.alerts[0]
        .labels
        .insert("function".into(), "pay now&co".into());
    assert_eq!(
        slack.message(&n)["attachments"][0]["blocks"][0]["text"]["text"],
        "*<http://grafana.internal/d/checkout?var-function=pay%20now%26co|HighErrorRate>* resolved\n\
         checkout fails 0.3 of calls"
    );
    let err = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .link("http://grafana.internal/d/{{labels}}")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::UnknownPlaceholder { path, .. } if path == "link"),
        "{err}"
    );
}

#[tokio::test]
async fn slack_refusing_the_payload_is_final_and_the_secret_stays_out_of_the_error() {
    let server = HttpServer::answering(&[400]);
    let slack = SlackNotifier::new(&server.url("/services/T0/B0/s3cret")).unwrap();

    let err = slack
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap_err();

    assert!(
        matches!(&err, NotifyError::Status { status: 400, body, .. } if body == "status 400 by script"),
        "{err}"
    );
    assert!(!err.is_retryable());
    let shown = err.to_string();
    assert!(
        shown.contains("/services/T0/B0/***") && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(!format!("{slack:?}").contains("s3cret"));
}

#[tokio::test]
async fn an_unreachable_slack_is_retryable() {
    let slack = SlackNotifier::new(&refused_url()).unwrap();
    let err = slack
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport { reason, .. } if reason.contains("refused")),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[test]
fn a_url_that_is_not_http_is_refused() {
    for bad in ["hooks.slack.com/services/x", "ftp://h/x", ""] {
        assert!(
            matches!(SlackNotifier::new(bad), Err(NotifyError::InvalidUrl { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn messages_stay_within_slacks_limits() {
    let slack = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .link("http://grafana.internal/d/x?f={{labels.function}}")
        .build()
        .unwrap();
    let mut n = notification("ops", AlertStatus::Firing);
    let alert = &mut n.alerts[0];
    alert.rule = "R".repeat(5000);
    alert
        .annotations
        .insert("summary".into(), "<&>".repeat(2000));
    alert.labels.insert("function".into(), "f".repeat(5000));
    alert.labels.insert("route".into(), "&".repeat(3000));
    n.alerts = vec![n.alerts[0].clone(); 40];

    let message = slack.message(&n);

    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 16);
    let blocks: usize = (attachments.iter())
        .map(|a| a["blocks"].as_array().unwrap().len())
        .sum();
    assert!(blocks <= 50, "{blocks} blocks");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .ends_with("(the first 16 of 40 shown)")
    );
    let blocks = &attachments[0]["blocks"];
    let title = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(chars(&blocks[0]["text"]["text"]) <= 3000, "{}", title.len());
    assert!(title.ends_with('…') && title.contains("&lt;&amp;&gt;"));
    // Never cut inside an escape.
    assert!(title.trim_end_matches('…').ends_with(';'), "{title}");
    for field in blocks[1]["fields"].as_array().unwrap() {
        assert!(chars(&field["text"]) <= 2000);
    }
    let context = &blocks[2]["elements"][0]["text"];
    assert!(chars(context) <= 2000, "{}", chars(context));
    assert!(context.as_str().unwrap().contains("since "), "{context}");
    assert!(chars(&attachments[0]["fallback"]) <= 3000);
    assert!(chars(&message["text"]) <= 4000);
}

#[tokio::test]
async fn a_refused_layout_is_sent_again_as_text_only() {
    let server = HttpServer::answering_with(&[(400, "invalid_blocks"), (200, "ok")]);
    let slack = SlackNotifier::builder(server.url("/services/T0/B0/s3cret"))
        .channel("#alerts")
        .build()
        .unwrap();
    let (sent, _) = two_alerts();

    slack.notify(&sent).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].json().get("attachments").is_some());
    assert_eq!(
        requests[1].json(),
        json!({
            "channel": "#alerts",
            "text": "[FIRING:1, RESOLVED:1] HighErrorRate, SlowCheckout for ops\n\
                     [critical] HighErrorRate firing: checkout fails 0.3 of calls\n\
                     [warning] SlowCheckout resolved",
        })
    );
    assert_eq!(requests[1].json(), slack.text_message(&sent));

    // Other refusals are final, and not sent again.
    let server = HttpServer::answering_with(&[(400, "invalid_payload"), (200, "ok")]);
    let slack = SlackNotifier::new(&server.url("/services/T0/B0/s3cret")).unwrap();
    let err = slack.notify(&sent).await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Status { status: 400, .. }),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn newlines_in_names_and_labels_stay_on_their_line() {
    let slack = SlackNotifier::new("http://127.0.0.1:9/hook").unwrap();
    let mut n = notification("ops", AlertStatus::Firing);
    n.alerts[0].rule = "Forged\n*Status*".into();
    let forged = "checkout` \nsince 1970-01-01";
    n.alerts[0].labels.insert("function".into(), forged.into());

    let message = slack.message(&n);

    let blocks = &message["attachments"][0]["blocks"];
    let title = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(title.starts_with("*Forged\\n*Status** firing\n"), "{title}");
    let context = blocks[2]["elements"][0]["text"].as_str().unwrap();
    assert!(!context.contains('\n'), "{context}");
    assert!(
        context.starts_with("`function=checkout` \\nsince 1970-01-01`"),
        "{context}"
    );
}

#[test]
fn values_show_four_significant_digits() {
    let rule = Rule::builder("HighErrorRate")
        .gauge("error_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.1 + 0.2)
        .build()
        .unwrap();
    let slack = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .rules([rule])
        .build()
        .unwrap();
    let mut n = notification("ops", AlertStatus::Firing);
    n.alerts[0].value = Some(0.9925186920166016);
    let fields = &slack.message(&n)["attachments"][0]["blocks"][1]["fields"];
    assert_eq!(fields[2]["text"], "*Value*\n0.9925");
    assert_eq!(fields[3]["text"], "*Threshold*\n&gt; 0.3");
}

#[test]
fn a_link_may_be_an_annotation() {
    let slack = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .link("{{annotations.runbook_url}}")
        .build()
        .unwrap();
    let mut n = notification("ops", AlertStatus::Firing);
    let runbook = "https://wiki.internal/runbooks/errors?team=ops&id=7";
    (n.alerts[0].annotations).insert("runbook_url".into(), runbook.into());
    let title = |n: &Notification| {
        let message = slack.message(n);
        message["attachments"][0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        title(&n).starts_with(
            "*<https://wiki.internal/runbooks/errors?team=ops&amp;id=7|HighErrorRate>* firing"
        ),
        "{}",
        title(&n)
    );
    n.alerts[0].annotations.remove("runbook_url");
    assert!(
        title(&n).starts_with("*HighErrorRate* firing"),
        "{}",
        title(&n)
    );

    let err = SlackNotifier::builder("http://127.0.0.1:9/hook")
        .link("grafana/{{alert}}")
        .build()
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(err, NotifyError::InvalidConfig { field: "link", .. }),
        "{shown}"
    );
    assert!(
        shown.contains("SlackBuilder") && !shown.contains("dispatcher"),
        "{shown}"
    );
}

#[test]
fn debug_output_masks_the_link_and_leaves_certificates_out() {
    let certificate = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let pem = certificate.cert.pem();
    let builder = SlackNotifier::builder("https://hooks.slack.com/services/T0/B0/X")
        .link("http://grafana/d/cpu?auth_token=s3cret")
        .root_certificate(pem.clone());
    let slack = builder.clone().build().unwrap();
    let base64 = pem.lines().nth(1).unwrap();
    for debug in [format!("{builder:?}"), format!("{slack:?}")] {
        assert!(debug.contains("auth_token=***"), "{debug}");
        for secret in ["s3cret", base64, "45, 45, 45, 45, 45"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

#[test]
fn builders_and_errors_keep_the_webhook_secret() {
    let builder = SlackNotifier::builder("https://hooks.slack.com/services/T0/B0/s3cret");
    let debug = format!("{builder:?}");
    assert!(
        debug.contains("/services/T0/B0/***") && !debug.contains("s3cret"),
        "{debug}"
    );
    let err = SlackNotifier::new("hooks.slack.com/services/T0/B0/s3cret").unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}
