//! Escalation: what happens to an alert that stays unresolved too long.
//!
//! An instance that has been firing (without resolving) for longer than its
//! rule's [`Escalation::after`] escalates once: its severity goes up one
//! step (unless [`Escalation::raise_severity`] is off), the change is a
//! transition in the history, and the alert is notified again, flagged
//! [`escalated`](crate::Alert::escalated). With a
//! [`receiver`](Escalation::receiver) the escalated alert is also sent to that
//! receiver (grouped with the matched route's `group_by` and timers), in
//! addition to the route's own receiver. Resolving clears the escalation.
//!
//! Escalation is part of local routing: it takes effect with the `routing`
//! feature, in local notifications only (the engine's active alerts,
//! [`Engine::alerts`](crate::Engine::alerts), which the Alertmanager sender
//! sends, keep the rule's own severity). Without it a rule's `escalate` is still read and checked (rule
//! files are the same with or without local routing) but changes nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When and how an unresolved alert escalates.
///
/// Config: `escalate: {after: 30m, receiver: pager}`
/// (`raise_severity` defaults to `true`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// How long an instance must have been firing before it escalates.
    #[serde(with = "crate::time::duration::positive")]
    pub after: Duration,
    /// Raise the severity one step (saturating at `critical`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub raise_severity: bool,
    /// Also notify this receiver once escalated.
    #[serde(default, alias = "notifier", skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
}

impl Escalation {
    /// Escalate after `after`, raising the severity, with no extra receiver.
    pub fn after(after: Duration) -> Self {
        Escalation {
            after,
            raise_severity: true,
            receiver: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}
