//! Keel's HTTP server: the accept loop, and a front door that answers GETs of public documents
//! straight from the rendered snapshot, before the router sees them.
//!
//! The status page is what everyone opens at the same moment during an outage, so it must cost
//! next to nothing per request (PRODUCT.md: at least nginx's rate on the exported copy). Through
//! axum's `serve` and router every request also boxed its body, cloned the router and the state,
//! and filled an extension map (matched path, peer address); on loopback that was the difference
//! between trailing nginx and matching it. Everything else (the API, forms, intake, 404s and
//! 405s) still goes through the router, with the peer address it expects.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response};
use axum::Router;
use futures::future::{self, Either as FutureEither, MapOk};
use futures::TryFutureExt;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::{public, AppState};

/// How long connections still open at shutdown may take to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` (with the public front door) on `listener` until `stop` is cancelled, then
/// stops accepting and lets open connections finish (up to [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    router: Router,
    stop: CancellationToken,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            // The peer gave up before we accepted: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors and the like: wait rather than spin.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stop.cancelled() => break,
                }
            }
        };
        // Responses go out whole at once: Nagle's delay only adds latency to keep-alive
        // request/response traffic, which is what an outage-time page load is.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let front = Front {
            state: state.clone(),
            router: router.clone(),
            peer,
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), front)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN:?} after shutdown began; closing them");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A response body: a public document's bytes, or whatever the router answered.
type FrontBody = Either<Full<Bytes>, Body>;

type Routed = MapOk<
    axum::routing::future::RouteFuture<Infallible>,
    fn(axum::response::Response) -> Response<FrontBody>,
>;

/// One connection's service.
#[derive(Clone)]
struct Front {
    state: AppState,
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<FrontBody>;
    type Error = Infallible;
    type Future = FutureEither<future::Ready<Result<Response<FrontBody>, Infallible>>, Routed>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            let rendered = self.state.snapshots.load();
            if let Some(resp) = public::answer(&rendered, req.uri(), req.headers()) {
                return FutureEither::Left(future::ready(Ok(resp.map(Either::Left))));
            }
        }
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        let routed = tower::Service::call(&mut router, req);
        FutureEither::Right(routed.map_ok(right as fn(_) -> _))
    }
}

fn right(resp: axum::response::Response) -> Response<FrontBody> {
    resp.map(Either::Right)
}
