//! Keel's HTTP server: the accept loop, and a front door that answers GETs of public documents
//! straight from the rendered snapshot, before the router sees them.
//!
//! The status page is what everyone opens at the same moment during an outage, so it must cost
//! next to nothing per request (the bar in docs/benchmarks.md: at least nginx's rate on the exported copy). Through
//! axum's `serve` and router every request also boxed its body, cloned the router and the state,
//! and filled an extension map (matched path, peer address); on loopback that was the difference
//! between trailing nginx and matching it. Everything else (the API, forms, intake, 404s and
//! 405s) still goes through the router, with the peer address it expects, on the main runtime.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, Response};
use axum::Router;
use futures::future::{self, Either as FutureEither};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::{public, AppState};

/// How long connections still open at shutdown may take to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Lingering close (as nginx's `lingering_close`): after the last answer on a connection, what
/// the client still sends is read and thrown away for at most this long in all…
const LINGER_TIME: Duration = Duration::from_secs(5);
/// …for at most this long without a byte…
const LINGER_IDLE: Duration = Duration::from_secs(2);
/// …and at most this much.
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Serves `router` (with the public front door) on `listener` until `stop` is cancelled, then
/// stops accepting and lets open connections finish (up to [`DRAIN`]).
///
/// Connections are served by one single-threaded runtime per core, each connection staying on
/// the thread that got it (as nginx's workers do): on the shared multi-threaded runtime, tasks
/// woken by one thread's I/O events were stolen and woken across threads, and the page's cost
/// per request swung by a third from run to run.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    router: Router,
    stop: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let serving = Serving {
        state,
        router,
        main: tokio::runtime::Handle::current(),
    };
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        match Worker::start(i, serving.clone()) {
            Ok(w) => workers.push(w),
            Err(e) => tracing::error!(error = %e, "cannot start HTTP worker thread {i}"),
        }
    }
    let mut next = 0usize;
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
        let watcher = graceful.watcher();
        if workers.is_empty() {
            // No worker thread could start: serve here rather than not at all.
            tokio::spawn(serve_connection(tcp, serving.front(peer), watcher));
            continue;
        }
        next = (next + 1) % workers.len();
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "cannot hand the connection over");
                continue;
            }
        };
        workers[next].hand(Handoff { tcp, peer, watcher });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN:?} after shutdown began; closing them");
    }
    // Closing the queues ends the worker threads.
    drop(workers);
}

/// An accepted connection on its way to a worker.
struct Handoff {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
}

/// A thread with its own single-threaded runtime, serving the connections handed to it.
struct Worker {
    queue: tokio::sync::mpsc::UnboundedSender<Handoff>,
}

impl Worker {
    fn start(i: usize, serving: Serving) -> std::io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (queue, mut handed) = tokio::sync::mpsc::unbounded_channel::<Handoff>();
        std::thread::Builder::new()
            .name(format!("keel-http-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(h) = handed.recv().await {
                        let tcp = match tokio::net::TcpStream::from_std(h.tcp) {
                            Ok(tcp) => tcp,
                            Err(e) => {
                                tracing::debug!(error = %e, peer = %h.peer, "cannot take the connection");
                                continue;
                            }
                        };
                        tokio::spawn(serve_connection(tcp, serving.front(h.peer), h.watcher));
                    }
                });
            })?;
        Ok(Worker { queue })
    }

    fn hand(&self, h: Handoff) {
        if self.queue.send(h).is_err() {
            tracing::error!("an HTTP worker thread is gone; a connection was dropped");
        }
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    front: Front,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let peer = front.peer;
    // A second handle on the socket, kept for the lingering close below: hyper drops its own
    // when the connection ends.
    let lingering = dup(&tcp);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A connection that sends no complete request head for this long (idle keep-alive
    // included) is closed: otherwise clients that connect and say nothing could hold every
    // connection the status page has while everyone needs it.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(front.serving.state.config.server.header_read_timeout);
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(tcp), front)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::trace!(error = %e, %peer, "connection ended with an error");
    }
    if let Some(socket) = lingering {
        linger(socket).await;
    }
}

fn dup(tcp: &tokio::net::TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => Some(std::net::TcpStream::from(fd)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot keep a handle for a lingering close");
            None
        }
    }
}

/// Closes a connection hyper is done with the way nginx does: reading, and throwing away,
/// whatever the client still sends (bounded by [`LINGER_TIME`], [`LINGER_IDLE`] and
/// [`LINGER_BYTES`]) before closing.
///
/// Why: when Keel answers before reading the whole request — a 413 for a body over the limit,
/// sent as soon as the headers announce it — the rest of the body is still on its way. Closing
/// a socket with unread data makes the kernel send a reset, which discards the answer the
/// client has not read yet and fails its pending write: a client that writes its whole body
/// before reading (Python's `http.client`, `urllib`) saw "connection reset" instead of the
/// 413 and its reason. Reading to the client's end (it closes after the answer, or stops
/// sending) lets its write complete and the answer arrive. A client that already closed ends
/// this at once (end of stream).
async fn linger(socket: std::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    // The copy shares the original's non-blocking mode, as tokio requires.
    let Ok(mut socket) = tokio::net::TcpStream::from_std(socket) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 16 * 1024];
    let mut discarded = 0usize;
    while discarded < LINGER_BYTES {
        let wait = LINGER_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            // End of stream, an error, or nothing for a while: close.
            _ => break,
        }
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

/// The router's answer, computed on the main runtime.
type Routed = Pin<Box<dyn Future<Output = Result<Response<FrontBody>, Infallible>> + Send>>;

/// What every connection's service is made from.
#[derive(Clone)]
struct Serving {
    state: AppState,
    router: Router,
    /// The runtime the router's handlers run on.
    main: tokio::runtime::Handle,
}

impl Serving {
    fn front(&self, peer: SocketAddr) -> Front {
        Front {
            serving: self.clone(),
            peer,
        }
    }
}

/// One connection's service.
struct Front {
    serving: Serving,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response<FrontBody>;
    type Error = Infallible;
    type Future = FutureEither<future::Ready<Result<Response<FrontBody>, Infallible>>, Routed>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            let rendered = self.serving.state.snapshots.load();
            if let Some(resp) = public::answer(&rendered, req.uri(), req.headers()) {
                return FutureEither::Left(future::ready(Ok(resp.map(Either::Left))));
            }
        }
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.serving.router.clone();
        // Handlers run on the main runtime, where the jobs run: the store's connections (and
        // anything else a handler opens) then belong to a runtime that outlives the workers,
        // and the final writes at shutdown never meet a connection whose runtime is gone.
        let routed = self
            .serving
            .main
            .spawn(tower::Service::call(&mut router, req));
        FutureEither::Right(Box::pin(async move {
            Ok(match routed.await {
                Ok(Ok(resp)) => resp.map(Either::Right),
                Ok(Err(never)) => match never {},
                Err(e) => {
                    tracing::error!(error = %e, "a request handler failed");
                    let mut resp = Response::new(Either::Left(Full::default()));
                    *resp.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    resp
                }
            })
        }))
    }
}
