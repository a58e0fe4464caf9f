//! Real peers for the check tests, each on 127.0.0.1 port 0: an HTTP server with misbehaving
//! routes, a listener that resets every connection, a tiny authoritative DNS server, and a
//! TLS server presenting a freshly generated self-signed certificate.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Size of the `/big` body.
pub const BIG_BODY: usize = 10 * 1024 * 1024;

/// A running HTTP test server.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// Peer addresses seen on `/counted`: one per TCP connection used.
    pub peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl HttpServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

pub async fn http_server() -> HttpServer {
    let peers: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
    let app = Router::new()
        .route("/ok", get(|| async { "all systems ok" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }),
        )
        .route(
            "/error-page",
            get(|| async { "fatal error: database unreachable" }),
        )
        .route(
            "/json-ok",
            get(|| async { json(r#"{"status":"ok","checks":{"db":true}}"#) }),
        )
        .route("/json-fail", get(|| async { json(r#"{"status":"fail"}"#) }))
        .route("/not-json", get(|| async { json("<html>surprise</html>") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "finally"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route("/big", get(|| async { big_body() }))
        .route(
            "/loop/{n}",
            get(|Path(n): Path<u64>| async move { Redirect::to(&format!("/loop/{}", n + 1)) }),
        )
        .route("/moved", get(|| async { Redirect::to("/ok") }))
        .route("/post-only", post(|| async { "posted" }))
        .route(
            "/needs-header",
            get(|headers: HeaderMap| async move {
                if headers.get("x-keel-test").is_some_and(|v| v == "yes") {
                    (StatusCode::OK, "header seen")
                } else {
                    (StatusCode::BAD_REQUEST, "missing header")
                }
            }),
        )
        .route(
            "/counted",
            get(
                |State(peers): State<Arc<Mutex<HashSet<SocketAddr>>>>,
                 ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    peers.lock().unwrap().insert(peer);
                    "counted"
                },
            ),
        )
        .with_state(peers.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    HttpServer { addr, peers }
}

fn json(body: &'static str) -> Response {
    ([("content-type", "application/json")], body).into_response()
}

/// 10 MiB streamed in 64 KiB chunks: "BEGIN" first, "THE-END" last.
fn big_body() -> Response {
    const CHUNK: usize = 64 * 1024;
    let chunks = BIG_BODY / CHUNK;
    let stream = futures::stream::iter((0..chunks).map(move |i| {
        let mut chunk = vec![b'x'; CHUNK];
        if i == 0 {
            chunk[..5].copy_from_slice(b"BEGIN");
        }
        if i == chunks - 1 {
            chunk[CHUNK - 7..].copy_from_slice(b"THE-END");
        }
        Ok::<_, Infallible>(Bytes::from(chunk))
    }));
    Body::from_stream(stream).into_response()
}

/// A listener that accepts and immediately resets every connection (SO_LINGER 0).
pub async fn reset_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            stream.set_zero_linger().unwrap();
            drop(stream);
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A UDP address on 127.0.0.1 where nothing listens.
pub async fn closed_udp_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    drop(socket);
    addr
}

/// A tiny authoritative DNS server over UDP answering from `zone`. A name in the zone with no
/// record of the asked type gets an empty NOERROR answer; a name not in the zone, NXDOMAIN.
pub async fn dns_server(zone: Vec<(&'static str, RData)>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let zone: Vec<(Name, RData)> = zone
        .into_iter()
        .map(|(n, r)| (Name::from_ascii(n).unwrap(), r))
        .collect();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(request) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let Some(query) = request.queries().first().cloned() else {
                continue;
            };
            let mut response = Message::new();
            response
                .set_id(request.id())
                .set_message_type(MessageType::Response)
                .set_op_code(request.op_code())
                .set_authoritative(true)
                .set_recursion_desired(request.recursion_desired())
                .set_recursion_available(true)
                .add_query(query.clone());
            let mut known = false;
            for (name, rdata) in &zone {
                if name == query.name() {
                    known = true;
                    if rdata.record_type() == query.query_type() {
                        response.add_answer(Record::from_rdata(name.clone(), 60, rdata.clone()));
                    }
                }
            }
            if !known {
                response.set_response_code(ResponseCode::NXDomain);
            }
            let bytes = response.to_vec().unwrap();
            let _ = socket.send_to(&bytes, from).await;
        }
    });
    addr
}

/// A self-signed certificate for `localhost` and 127.0.0.1, valid over the given offsets
/// from now.
pub fn self_signed(
    not_before: time::Duration,
    not_after: time::Duration,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + not_before;
    params.not_after = now + not_after;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), key)
}

/// A TLS server presenting `cert`. After the handshake it reads one HTTP request head (if
/// the client sends one) and answers "200 secure", so it serves both the `tls` check (which
/// sends nothing and closes) and HTTPS checks.
pub async fn tls_server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// A bare HTTP/1.1 keep-alive server that counts the connections made to it and those still
/// open, and holds its answers until `hold` requests have arrived: that many checks started
/// together are then all in flight at once, each on a connection of its own.
pub struct CountingServer {
    pub addr: SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections open now.
    pub open: tokio::sync::watch::Receiver<usize>,
}

impl CountingServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Counts a connection as open for as long as its task holds this.
struct OpenGuard(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

pub async fn counting_server(hold: usize) -> CountingServer {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (open_tx, open) = tokio::sync::watch::channel(0usize);
    let open_tx = Arc::new(open_tx);
    let (seen_tx, _) = tokio::sync::watch::channel(0usize);
    let seen_tx = Arc::new(seen_tx);
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            open_tx.send_modify(|n| *n += 1);
            let guard = OpenGuard(open_tx.clone());
            let seen_tx = seen_tx.clone();
            let mut seen = seen_tx.subscribe();
            tokio::spawn(async move {
                let _guard = guard;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 2048];
                loop {
                    // The checks send bodiless GETs: a request ends with its blank line.
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    buf.drain(..end);
                    seen_tx.send_modify(|n| *n += 1);
                    if seen.wait_for(|n| *n >= hold).await.is_err() {
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    CountingServer {
        addr,
        accepted,
        open,
    }
}
