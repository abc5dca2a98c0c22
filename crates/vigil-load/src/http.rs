//! [`HttpTarget`]: a URL as a load-test target, over reqwest (rustls, a
//! shared connection pool). A response is read to its end; a status of
//! 400 or more, a failed connection or a failed body read is an error.

use reqwest::header::{HeaderName, HeaderValue};

use crate::Error;
use crate::response::{RequestFuture, RequestOutcome, Target};

/// One HTTP request, sent again for every request of the load test.
///
/// ```no_run
/// use std::time::Duration;
/// use vigil_load::{HttpTarget, LoadTest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vigil_load::Error> {
/// let target = HttpTarget::get("http://127.0.0.1:8000/api/v1/performance/metrics/summary")?
///     .bearer_auth("secret")?;
/// let report = LoadTest::new(target)
///     .users(10)
///     .ramp_up(Duration::from_secs(60))
///     .duration(Duration::from_secs(300))
///     .run()
///     .await?;
/// println!("{:.1} req/s, p95 {:?}, {:.2} % errors", report.rate, report.latency(0.95), report.error_ratio * 100.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpTarget {
    client: reqwest::Client,
    request: reqwest::Request,
}

impl HttpTarget {
    /// `GET url`.
    pub fn get(url: &str) -> Result<Self, Error> {
        let (client, url) = client(url)?;
        Self::from_request(client.get(url))
    }

    /// `POST url` with `body` (no content type; see
    /// [`header`](HttpTarget::header) or [`post_json`](HttpTarget::post_json)).
    pub fn post(url: &str, body: impl Into<reqwest::Body>) -> Result<Self, Error> {
        let (client, url) = client(url)?;
        Self::from_request(client.post(url).body(body))
    }

    /// `POST url` with a JSON `body` (`content-type: application/json`).
    pub fn post_json(url: &str, body: impl Into<String>) -> Result<Self, Error> {
        Self::post(url, body.into())?.header("content-type", "application/json")
    }

    /// Any request reqwest can build, with its client (and so its
    /// connection pool, timeouts, TLS settings). The body must be bytes or
    /// a string, not a stream, so that it can be sent repeatedly.
    ///
    /// ```
    /// let client = reqwest::Client::new();
    /// let target = vigil_load::HttpTarget::from_request(
    ///     client.delete("http://127.0.0.1:8000/api/v1/items/7").bearer_auth("secret"),
    /// )?;
    /// assert_eq!(target.url().path(), "/api/v1/items/7");
    /// # Ok::<(), vigil_load::Error>(())
    /// ```
    pub fn from_request(request: reqwest::RequestBuilder) -> Result<Self, Error> {
        let (client, request) = request.build_split();
        let request = request.map_err(|source| Error::Request {
            url: source
                .url()
                .map_or_else(|| "(unknown URL)".to_owned(), ToString::to_string),
            source,
        })?;
        if request.try_clone().is_none() {
            return Err(Error::StreamingBody {
                url: request.url().to_string(),
            });
        }
        Ok(Self { client, request })
    }

    /// Add a header to every request.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Header {
            url: self.request.url().to_string(),
            name: name.to_owned(),
            reason,
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let value = HeaderValue::from_str(value).map_err(|e| invalid(e.to_string()))?;
        self.request.headers_mut().append(header, value);
        Ok(self)
    }

    /// `authorization: Bearer <token>` on every request.
    pub fn bearer_auth(self, token: &str) -> Result<Self, Error> {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The URL requested.
    pub fn url(&self) -> &reqwest::Url {
        self.request.url()
    }

    /// The method used.
    pub fn method(&self) -> &reqwest::Method {
        self.request.method()
    }
}

/// A client with its own connection pool, and `url` parsed.
fn client(url: &str) -> Result<(reqwest::Client, reqwest::Url), Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let client = reqwest::Client::builder()
        .build()
        .map_err(|source| Error::Request {
            url: url.to_owned(),
            source,
        })?;
    Ok((client, parsed))
}

impl Target for HttpTarget {
    fn request(&self) -> RequestFuture {
        // Checked in `from_request`: the body is not a stream.
        let Some(request) = self.request.try_clone() else {
            return Box::pin(std::future::ready(RequestOutcome::failed()));
        };
        let client = self.client.clone();
        Box::pin(async move {
            match client.execute(request).await {
                Ok(response) => {
                    let mut outcome = RequestOutcome::status(response.status().as_u16());
                    if response.bytes().await.is_err() {
                        outcome.error = true;
                    }
                    outcome
                }
                Err(_) => RequestOutcome::failed(),
            }
        })
    }
}
