//! Who may call the performance API: with a token set
//! ([`api_token`](crate::MonitorBuilder::api_token)), every request must
//! carry `Authorization: Bearer <token>`, compared in constant time;
//! without one, reads answer and mutations are refused
//! ([`require_token`]).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::envelope::ApiError;
use crate::Monitor;

/// Middleware: with a token set, a request without the right bearer token
/// is answered 401 with `WWW-Authenticate: Bearer` before any handler
/// runs. The token and the presented credential appear in no answer.
pub(crate) async fn bearer(
    State(monitor): State<Monitor>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = monitor.api_token() else {
        return next.run(request).await;
    };
    if presented(request.headers()).is_some_and(|candidate| token.matches(candidate)) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token: send `Authorization: Bearer <token>` \
         with the token given to MonitorBuilder::api_token",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The credential of an `Authorization: Bearer <credential>` header (the
/// scheme is case-insensitive, RFC 9110 section 11.1).
fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

/// For mutations: refused with 403 when no token is set, since anyone who
/// can reach the port could then clear the caches.
pub(crate) fn require_token(monitor: &Monitor) -> Result<(), ApiError> {
    match monitor.api_token() {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "mutations are disabled: no API token is set; set one with \
             MonitorBuilder::api_token and send it as `Authorization: Bearer <token>`",
        )),
    }
}
