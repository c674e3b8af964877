//! Connections: accepting, their timeouts, and a clean stop.
//!
//! A connection costs the server memory and a task, so none may be held open for free: a client
//! must send a request's headers within `header_read_ms` (which also closes a keep-alive
//! connection that stays idle that long between requests, since hyper starts the same timer as
//! soon as the connection waits for its next request) and the whole body within `body_read_ms`.
//! On stop, no connection is accepted any more and those open get `SHUTDOWN_GRACE_MS` to finish
//! the request they are in.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Sleep;

/// Time a client has to send a request's headers, and to start its next request on an idle
/// keep-alive connection.
pub const HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Time a client has to send a request's whole body.
pub const BODY_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// How long a stop waits for requests in flight before closing their connections.
const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Pause after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_RETRY_MS: u64 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub header_read_ms: u64,
    pub body_read_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            header_read_ms: HEADER_READ_TIMEOUT_MS_DEFAULT,
            body_read_ms: BODY_READ_TIMEOUT_MS_DEFAULT,
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; each request carries its peer's address
/// (`ConnectInfo`), which wrong tokens are counted against.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    stop: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(timeouts.header_read_ms));
    let graceful = GracefulShutdown::new();
    let body_deadline = Duration::from_millis(timeouts.body_read_ms);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let request = request.map(|body| Body::new(Deadline::new(body, body_deadline)));
            tower_service::Service::call(&mut router.clone(), request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection closed");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_millis(SHUTDOWN_GRACE_MS)) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE_MS} ms are closed");
        }
    }
}

/// A request body that fails once its deadline passes: a client sending a byte now and then
/// cannot hold a connection and a request task open.
struct Deadline {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    limit_ms: u128,
}

impl Deadline {
    fn new(body: Incoming, limit: Duration) -> Deadline {
        Deadline {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit_ms: limit.as_millis(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body did not arrive within {0} ms")]
    TooSlow(u128),
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

impl http_body::Body for Deadline {
    type Data = hyper::body::Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(BodyError::from)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::TooSlow(self.limit_ms)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
