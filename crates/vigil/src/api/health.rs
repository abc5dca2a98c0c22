//! The probes an orchestrator calls, without a token: `GET /health/live`
//! (the process answers), `GET /health/ready` (every readiness check
//! passes; 503 naming the failing ones otherwise) and `GET /health` (both).
//! The answer holds each check's error text, for anyone who can reach the
//! port: checks are expected to return errors without secrets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Monitor;
use crate::service::{CheckResult, Readiness};

/// The answer of the three probes (`/health/live` leaves out the checks).
#[derive(Serialize)]
struct Probe<'a> {
    /// `ok`, or `unavailable` when a readiness check failed.
    status: &'static str,
    live: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<&'a [CheckResult]>,
    /// The names of the checks that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failing: Option<Vec<&'a str>>,
}

/// `GET /health/live`: 200 while the process serves requests.
pub(crate) async fn live() -> Response {
    Json(Probe {
        status: "ok",
        live: true,
        ready: None,
        checks: None,
        failing: None,
    })
    .into_response()
}

/// `GET /health/ready` and `GET /health`: 200 when every readiness check
/// passes, 503 with the failing checks otherwise.
pub(crate) async fn ready(State(monitor): State<Monitor>) -> Response {
    let readiness: Readiness = monitor.readiness().await;
    let failing: Vec<&str> = readiness
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| check.name.as_str())
        .collect();
    let (status, word) = if readiness.ready {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = Probe {
        status: word,
        live: true,
        ready: Some(readiness.ready),
        checks: Some(&readiness.checks),
        failing: Some(failing),
    };
    (status, Json(body)).into_response()
}
