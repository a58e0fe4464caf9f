//! The loopback target: a minimal HTTP/1.1 server answering `200 ok` on every path.
//!
//! It runs as its own process so that its CPU is never counted against Keel or the bare loop,
//! and it is as cheap as a server can be (raw hyper, keep-alive, no routing, no logging) so
//! that it disturbs the measured process as little as possible on a 2-core machine.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection aborted before accept: say so and
                // carry on rather than take the target (and the whole run) down.
                eprintln!("keel-bench target: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            // A client hanging up mid-request is normal here (fresh-connection runs).
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The `target` subcommand: binds, prints `http://ADDR` on a line of its own, serves.
///
/// With `until_stdin_closes`, it also exits when its standard input reaches end of file, which
/// is how a parent harness that dies without cleaning up still takes its target with it.
pub fn main(listen: SocketAddr, until_stdin_closes: bool) -> anyhow::Result<()> {
    // One thread: the target answers a few thousand tiny requests a second at most, and a
    // single thread keeps it from competing for both cores with the process being measured.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}")?;
        out.flush()?;
        drop(out);
        if until_stdin_closes {
            tokio::select! {
                () = serve(listener) => {}
                () = stdin_closed() => {}
            }
        } else {
            serve(listener).await;
        }
        Ok(())
    })
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
