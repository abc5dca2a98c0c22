//! [`HttpTarget`]: a URL as a load-test target, over reqwest (rustls, a
//! shared connection pool). A response is read to its end; a status of
//! 400 or more, a failed connection or a failed body read is an error.
//! Credentials stay out of `Debug` and errors: URLs show without their
//! password, headers by name only.

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
///
/// `Debug` shows the method, the URL without its password, and the header
/// names, never their values (a bearer token stays private).
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
                .map_or_else(|| "(unknown URL)".to_owned(), redacted),
            source: source.without_url(),
        })?;
        if request.try_clone().is_none() {
            return Err(Error::StreamingBody {
                url: redacted(request.url()),
            });
        }
        Ok(Self { client, request })
    }

    /// Add a header to every request. The values of `authorization`,
    /// `proxy-authorization`, `cookie` and other credential headers are
    /// marked sensitive (kept out of HTTP/2 header compression tables).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::Header {
            url: redacted(self.request.url()),
            name: name.to_owned(),
            reason,
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        // The value's error never repeats the value.
        let mut value = HeaderValue::from_str(value).map_err(|e| invalid(e.to_string()))?;
        if is_credential(&header) {
            value.set_sensitive(true);
        }
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

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self
            .request
            .headers()
            .keys()
            .map(HeaderName::as_str)
            .collect();
        f.debug_struct("HttpTarget")
            .field("method", self.request.method())
            .field("url", &redacted(self.request.url()))
            .field("headers", &headers)
            .finish_non_exhaustive()
    }
}

/// Headers whose values are credentials.
fn is_credential(name: &HeaderName) -> bool {
    use reqwest::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
    [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE].contains(name)
        || ["api-key", "apikey", "token", "secret"]
            .iter()
            .any(|word| name.as_str().contains(word))
}

/// `url` with its password replaced by `***`.
fn redacted(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only fails for URLs that cannot have a password at all.
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// A URL that did not parse, with whatever precedes an `@` in its
/// authority (user and password) replaced by `***`.
fn redacted_text(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let separator = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{separator}***{}{path}", &authority[at..])
        }
        None => url.to_owned(),
    }
}

/// A client with its own connection pool, and `url` parsed.
fn client(url: &str) -> Result<(reqwest::Client, reqwest::Url), Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Url {
        url: redacted_text(url),
        reason: e.to_string(),
    })?;
    let client = reqwest::Client::builder()
        .build()
        .map_err(|source| Error::Request {
            url: redacted(&parsed),
            source: source.without_url(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsed_urls_lose_their_user_and_password() {
        assert_eq!(
            redacted_text("http://user:secret@[::1/x?q=1"),
            "http://***@[::1/x?q=1"
        );
        assert_eq!(redacted_text("no-scheme:pw@host"), "***@host");
        assert_eq!(redacted_text("http://host/a@b"), "http://host/a@b");
    }
}
