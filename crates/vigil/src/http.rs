//! The `/metrics` HTTP listener: a small hyper server on its own thread
//! (a current-thread tokio runtime, as `metrics-exporter-prometheus` runs
//! its exporter), answering `GET /metrics` with the exposition text.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::sync::oneshot;

use crate::Error;
use crate::recorder::Recorder;

/// The content type of Prometheus text exposition format 0.0.4.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running listener; stops when dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Not joined: the last Monitor may be dropped on a runtime worker,
        // which must not block; the thread ends on its own at the signal.
        drop(self.thread.take());
    }
}

/// Binds `address` now (so a bad address or a taken port is an error from
/// the builder, not a log line later) and serves on a new thread.
pub(crate) fn spawn(
    address: SocketAddr,
    allowed: Vec<IpNet>,
    recorder: Recorder,
) -> Result<Listener, Error> {
    let listen_error = |source| Error::Listen { address, source };
    let std_listener = TcpListener::bind(address).map_err(listen_error)?;
    std_listener.set_nonblocking(true).map_err(listen_error)?;
    let bound = std_listener.local_addr().map_err(listen_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(listen_error)?;
    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("vigil-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, address = %bound, "vigil /metrics listener failed to start");
                        return;
                    }
                };
                loop {
                    let (stream, peer) = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(error) => {
                                tracing::debug!(%error, "vigil /metrics accept failed");
                                continue;
                            }
                        },
                    };
                    if !allowed.is_empty() && !allowed.iter().any(|net| net.contains(&peer.ip())) {
                        tracing::debug!(%peer, "vigil /metrics refused a peer outside the allowlist");
                        continue; // dropping the stream closes it
                    }
                    let recorder = recorder.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| respond(recorder.clone(), request));
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%error, %peer, "vigil /metrics connection ended with an error");
                        }
                    });
                }
            });
        })
        .map_err(listen_error)?;
    Ok(Listener {
        address: bound,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

async fn respond(
    recorder: Recorder,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return Ok(response(
            StatusCode::NOT_FOUND,
            "not found: vigil serves /metrics\n".into(),
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut refused = response(StatusCode::METHOD_NOT_ALLOWED, String::new());
        refused
            .headers_mut()
            .insert(ALLOW, "GET, HEAD".parse().expect("a valid header value"));
        return Ok(refused);
    }
    // Rendering takes the registry's read locks briefly; keep it off the
    // accept loop's task.
    let body = tokio::task::spawn_blocking(move || {
        recorder.refresh();
        recorder.shared.render()
    })
    .await
    .unwrap_or_default();
    let mut ok = response(StatusCode::OK, body);
    ok.headers_mut().insert(
        CONTENT_TYPE,
        CONTENT_TYPE_TEXT.parse().expect("a valid header value"),
    );
    Ok(ok)
}
