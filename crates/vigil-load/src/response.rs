//! What a request returns, as a load test or a benchmark sees it: the
//! [`Response`] trait (is it an error? which HTTP status?) and the
//! [`Target`] a load test calls.

use std::future::Future;
use std::pin::Pin;

/// How one request ended: an error or not, and its HTTP status if it had
/// one.
///
/// ```
/// use vigil_load::RequestOutcome;
///
/// assert!(RequestOutcome::status(503).error);
/// assert!(!RequestOutcome::status(201).error);
/// assert_eq!(RequestOutcome::ok().status, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOutcome {
    /// The request counts as an error.
    pub error: bool,
    /// The HTTP status, for requests that received one.
    pub status: Option<u16>,
}

impl RequestOutcome {
    /// A success without a status.
    pub const fn ok() -> Self {
        Self {
            error: false,
            status: None,
        }
    }

    /// An error without a status (a refused connection, a failed call).
    pub const fn failed() -> Self {
        Self {
            error: true,
            status: None,
        }
    }

    /// A response with HTTP status `code`: an error from 400 on.
    pub const fn status(code: u16) -> Self {
        Self {
            error: code >= 400,
            status: Some(code),
        }
    }
}

/// What a benchmarked call or a load test's request returned, reduced to
/// a [`RequestOutcome`].
///
/// `Result`s count `Err` as an error (whatever the `Ok` value is, so a
/// `reqwest::Response` inside `Ok` is a success even with status 500:
/// call `error_for_status()` on it to make 4xx/5xx an `Err`); HTTP
/// statuses (`u16`, `http::StatusCode`) count 400 and above; `()` is a
/// success.
///
/// ```
/// use vigil_load::Response;
///
/// assert!(Err::<(), &str>("refused").outcome().error);
/// assert!(!Ok::<u32, &str>(7).outcome().error);
/// assert!(404u16.outcome().error);
/// assert_eq!(http::StatusCode::OK.outcome().status, Some(200));
/// assert!(!().outcome().error);
/// ```
pub trait Response {
    /// Whether this counts as an error, and its status.
    fn outcome(&self) -> RequestOutcome;
}

impl<T, E> Response for Result<T, E> {
    fn outcome(&self) -> RequestOutcome {
        match self {
            Ok(_) => RequestOutcome::ok(),
            Err(_) => RequestOutcome::failed(),
        }
    }
}

impl Response for () {
    fn outcome(&self) -> RequestOutcome {
        RequestOutcome::ok()
    }
}

impl Response for u16 {
    fn outcome(&self) -> RequestOutcome {
        RequestOutcome::status(*self)
    }
}

impl Response for http::StatusCode {
    fn outcome(&self) -> RequestOutcome {
        RequestOutcome::status(self.as_u16())
    }
}

impl Response for RequestOutcome {
    fn outcome(&self) -> RequestOutcome {
        *self
    }
}

/// The future of one request, boxed so that targets of any type fit one
/// load test.
pub type RequestFuture = Pin<Box<dyn Future<Output = RequestOutcome> + Send + 'static>>;

/// What a load test sends its requests to: any `Fn() -> impl Future`
/// whose output is a [`Response`] (a `Result`, an HTTP status, `()`), or
/// a URL (`HttpTarget`, feature `http`).
///
/// The load test calls [`request`](Target::request) once per request, from
/// tasks spawned on the current tokio runtime, so the target and its
/// futures are `Send + 'static`.
///
/// ```
/// use vigil_load::Target;
///
/// let target = || async { Ok::<_, std::io::Error>("pong") };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(!target.request().await.error);
/// # });
/// ```
pub trait Target: Send + Sync + 'static {
    /// Start one request.
    fn request(&self) -> RequestFuture;
}

impl<F, Fut> Target for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Response,
{
    fn request(&self) -> RequestFuture {
        let request = self();
        Box::pin(async move { request.await.outcome() })
    }
}
