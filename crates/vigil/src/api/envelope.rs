//! The performance API's one answer shape: `{"status": "success", "data":
//! ..}` or `{"status": "error", "error": {"code", "message"}}`, and the
//! conversion of every other error response on its routes (axum's 405,
//! tower-http's 408 and 413, a handler's 500) into the error shape.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::RouterOptions;

/// A successful answer: `{"status": "success", "data": data}`.
pub(crate) fn success<T: Serialize>(data: T) -> Response {
    #[derive(Serialize)]
    struct Success<T> {
        status: &'static str,
        data: T,
    }
    Json(Success {
        status: "success",
        data,
    })
    .into_response()
}

/// A refused request: its HTTP status, a stable machine-readable `code` and
/// a message saying what was wrong (never a credential).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_parameter`: a query parameter out of its values.
    pub(crate) fn invalid_parameter(name: &str, value: &str, valid: &[&str]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "invalid {name} `{value}`: expected one of {}",
                valid.join(", ")
            ),
        )
    }

    /// 404 `not_found`: no route at this path.
    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route under /api/v1/performance; see docs/http-api.md",
        )
    }
}

impl From<JsonRejection> for ApiError {
    /// A body that is not JSON, not the expected object, or over the size
    /// limit: 415 without a JSON content type, 413 over the limit, 400
    /// otherwise; the message is serde's (line, column, field).
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(rejection) => {
                let status = rejection.status();
                Self::new(status, code_of(status), rejection.body_text())
            }
            other => Self::new(StatusCode::BAD_REQUEST, "invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Failure<'a> {
            status: &'static str,
            error: Detail<'a>,
        }
        #[derive(Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Failure {
            status: "error",
            error: Detail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The error code for a status the handlers do not produce themselves.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware: an error response that is not already an envelope (axum's
/// empty 405, the timeout's 408, the body limit's 413, a serialization
/// failure's 500) gets the error envelope, naming the router's limits;
/// its other headers stay.
pub(crate) async fn enveloped(
    State(options): State<RouterOptions>,
    response: Response,
) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        // axum adds `Allow` outside this middleware.
        StatusCode::METHOD_NOT_ALLOWED => {
            "method not allowed on this route; the Allow header lists the methods it takes".into()
        }
        StatusCode::REQUEST_TIMEOUT => {
            format!("the request took longer than {:?}", options.timeout)
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the body is larger than {} bytes", options.body_limit)
        }
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let (mut parts, _) = response.into_parts();
    let (envelope, body) = ApiError::new(status, code_of(status), message)
        .into_response()
        .into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        envelope
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/json")),
    );
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::HeaderMap;

    use super::*;

    async fn parts(response: Response) -> (StatusCode, HeaderMap, serde_json::Value) {
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 16).await.expect("a body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn bare_error_responses_get_the_error_envelope_and_keep_their_headers() {
        for (status, code) in [
            (405, "method_not_allowed"),
            (408, "request_timeout"),
            (413, "payload_too_large"),
            (500, "internal"),
            (503, "internal"),
            (418, "error"),
        ] {
            let bare = Response::builder()
                .status(status)
                .header(header::ALLOW, "GET,HEAD")
                .header(header::CONTENT_TYPE, "text/plain")
                .header(header::CONTENT_LENGTH, "3")
                .body(Body::from("abc"))
                .expect("a response");
            let (got, headers, json) =
                parts(enveloped(State(RouterOptions::default()), bare).await).await;
            assert_eq!(got.as_u16(), status);
            assert_eq!(headers[header::ALLOW], "GET,HEAD");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            assert_ne!(
                headers.get(header::CONTENT_LENGTH).map(|v| v.as_bytes()),
                Some(&b"3"[..])
            );
            assert_eq!(json["status"], "error");
            assert_eq!(json["error"]["code"], code, "{status}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[tokio::test]
    async fn envelopes_and_successes_pass_unchanged() {
        let error = ApiError::invalid_parameter("severity", "urgent", &["low", "high"]);
        let (status, _, json) =
            parts(enveloped(State(RouterOptions::default()), error.into_response()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"]["code"], "invalid_parameter");
        assert_eq!(
            json["error"]["message"],
            "invalid severity `urgent`: expected one of low, high"
        );

        let (status, _, json) =
            parts(enveloped(State(RouterOptions::default()), success([1, 2])).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json,
            serde_json::json!({"status": "success", "data": [1, 2]})
        );

        let text = Response::new(Body::from("plain"));
        let (status, headers, _) =
            parts(enveloped(State(RouterOptions::default()), text).await).await;
        assert_eq!(
            (status, headers.get(header::CONTENT_TYPE)),
            (StatusCode::OK, None)
        );
    }
}
