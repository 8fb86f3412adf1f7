//! The daemon's HTTP side: `/` (the operator's console page, as the last status refresh
//! rendered it), `/healthz` (the process answers), `/readyz` (config loaded,
//! regions open, not shutting down) and `/metrics` (Prometheus text format). Loopback by
//! default; HTTP/1.1 only; GET only.

use super::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A client has this long to send a request's headers (a slow or half-sent request holds
/// nothing longer), a connection lives at most `CONN_LIFETIME`, and at most `MAX_CONNS` are
/// served at once; past that a new connection is closed at once. The rendered Deployment
/// listens on every interface, so these bounds face the cluster network.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const CONN_LIFETIME: Duration = Duration::from_secs(60);
const MAX_CONNS: usize = 64;

pub async fn serve(listener: tokio::net::TcpListener, state: Arc<State>, stop: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNS));
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max = MAX_CONNS,
                "too many open HTTP connections: one refused"
            );
            drop(stream);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req| answer(state.clone(), req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, svc);
            match tokio::time::timeout(CONN_LIFETIME, conn).await {
                Ok(Err(e)) => tracing::debug!(error = %e, "http connection ended"),
                Err(_) => tracing::debug!("http connection closed: lifetime reached"),
                Ok(Ok(())) => {}
            }
        });
    }
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        Response::builder()
            .status(code)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.method() != hyper::Method::GET {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ));
    }
    Ok(match req.uri().path() {
        "/" => match state.page.read().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(page) => reply(StatusCode::OK, "text/html; charset=utf-8", page),
            None => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/html; charset=utf-8",
                "<!doctype html><meta http-equiv=\"refresh\" content=\"5\"><title>drctl</title><p>drctl is reading the repository; this page reloads in 5 s.</p>".into(),
            ),
        },
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if state.ready.load(Ordering::SeqCst) => {
            reply(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/readyz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready (starting or shutting down)\n".into(),
        ),
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(None),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /, /healthz, /readyz or /metrics\n".into(),
        ),
    })
}
