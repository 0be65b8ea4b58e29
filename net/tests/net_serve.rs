//! `percore_net::serve`: an axum router on percore whose handlers do percore
//! file and socket I/O through `CoreBound`, over HTTP/1 and HTTP/2, with
//! graceful shutdown and a header read timeout; on one core and on two.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use percore::channel::Sender;
use percore::time::timeout;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};
use percore_net::{CoreBound, TcpListener, TcpStream};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
#[path = "support/http1.rs"]
mod http1;

use http1::get_http1;

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Clone)]
struct App {
    hits: Arc<AtomicU64>,
    file: Arc<TempFile>,
    backend: SocketAddr,
    /// Told when `/slow` has started (a percore channel: `CoreBound` makes
    /// it acceptable as axum state, which must be `Send + Sync`).
    started: Option<CoreBound<Sender<()>>>,
}

fn router(app: App) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route(
            "/file",
            get(|State(app): State<App>| {
                CoreBound::new(async move {
                    let bytes = percore::fs::read(&app.file.0).await.unwrap();
                    String::from_utf8(bytes).unwrap()
                })
            }),
        )
        .route(
            "/backend",
            get(|State(app): State<App>| {
                CoreBound::new(async move {
                    let conn = TcpStream::connect(app.backend).await.unwrap();
                    conn.write_all(&b"ping"[..]).await.0.unwrap();
                    let (res, buf) = conn.read_exact(Vec::with_capacity(4)).await;
                    res.unwrap();
                    String::from_utf8(buf).unwrap()
                })
            }),
        )
        .route(
            "/count/{name}",
            get(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    let hits = app.hits.fetch_add(1, Ordering::SeqCst) + 1;
                    Json(serde_json::json!({ "name": name, "hits": hits }))
                },
            ),
        )
        .route(
            "/slow",
            get(|State(app): State<App>| {
                CoreBound::new(async move {
                    if let Some(started) = &app.started {
                        started.send(()).await.unwrap();
                    }
                    percore::time::sleep(Duration::from_millis(300)).await;
                    "finished"
                })
            }),
        )
        .with_state(app)
}

/// A percore TCP backend on loopback: answers each connection's "ping" with
/// "pong".
fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    percore::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            percore::spawn(async move {
                let (res, _) = conn.read_exact(Vec::with_capacity(4)).await;
                if res.is_ok() {
                    let _ = conn.write_all(&b"pong"[..]).await;
                }
            });
        }
    });
    addr
}

/// A file for a test's handlers to read, removed when the last clone of
/// the app holding it is dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str, contents: &str) -> Arc<TempFile> {
    let path = std::env::temp_dir().join(format!("percore-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    Arc::new(TempFile(path))
}

fn app(file: Arc<TempFile>) -> App {
    App {
        hits: Arc::default(),
        file,
        backend: start_backend(),
        started: None,
    }
}

#[percore::test]
async fn axum_handlers_do_percore_file_and_socket_io() {
    let file = temp_file("serve-file", "from percore::fs");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        percore::spawn(
            async move { percore_net::serve(listener, router(app(file.clone()))).await },
        );

    assert_eq!(
        get_http1(addr, "/").await,
        (StatusCode::OK, "Hello, World!".into())
    );
    assert_eq!(
        get_http1(addr, "/file").await,
        (StatusCode::OK, "from percore::fs".into())
    );
    assert_eq!(
        get_http1(addr, "/backend").await,
        (StatusCode::OK, "pong".into())
    );
    let (status, body) = get_http1(addr, "/count/a").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"hits":1,"name":"a"}"#);
    assert_eq!(get_http1(addr, "/nope").await.0, StatusCode::NOT_FOUND);

    // HTTP/2 with prior knowledge on the same port: told apart by its preface.
    let mut h2 = connect_http2(addr).await;
    // Several requests, one after another, on the one connection.
    for hits in 2..5 {
        let req = Request::get("http://localhost/count/h2")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = timeout(LIMIT, h2.send_request(req)).await.unwrap().unwrap();
        assert_eq!(res.version(), hyper::Version::HTTP_2);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!(r#"{{"hits":{hits},"name":"h2"}}"#));
    }

    // The shutdown: serve stops accepting and returns once the HTTP/2
    // connection (still open) has closed after its GOAWAY.
    percore::shutdown::request();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    drop(h2);
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[percore::test]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let file = temp_file("serve-graceful", "");
    let (started_tx, mut started) = percore::channel::channel(1);
    let mut state = app(file);
    state.started = Some(CoreBound::new(started_tx));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move { percore_net::serve(listener, router(state)).await });

    // 1. A request that takes 300 ms; wait until its handler runs.
    let slow = percore::spawn(get_http1(addr, "/slow"));
    timeout(LIMIT, started.recv()).await.unwrap().unwrap();
    // 2. Shut down meanwhile: the request still gets its whole answer...
    percore::shutdown::request();
    let (status, body) = timeout(LIMIT, slow).await.unwrap().unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "finished"));
    // 3. ...and serve returns, its listener closed.
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[percore::test]
async fn header_read_timeout_closes_a_silent_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(app(temp_file("serve-timeout", "")));
    percore::spawn(async move {
        percore_net::serve(listener, app)
            .header_read_timeout(Some(Duration::from_millis(50)))
            .await
    });
    // Half a request head, then nothing: the server answers 408 or closes.
    let client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(&b"GET / HTTP/1.1\r\n"[..])
        .await
        .0
        .unwrap();
    let mut got = Vec::new();
    loop {
        let (res, buf) = timeout(LIMIT, client.read(Vec::with_capacity(256)))
            .await
            .expect("the server closes the connection");
        match res {
            Ok(0) | Err(_) => break,
            Ok(_) => got.extend_from_slice(&buf),
        }
    }
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{got:?}"
    );
}

/// The header read timeout of [`serve_with_head_timeout`]: shorter than
/// `/slow`'s 300 ms, and long enough that a pause of the shared test
/// machine between accept and the first read does not close a client that
/// sent its head at once.
const HEAD_TIMEOUT: Duration = Duration::from_millis(200);

/// Starts `serve` with a [`HEAD_TIMEOUT`] header read timeout on a new port.
fn serve_with_head_timeout() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(app(temp_file("serve-head-timeout", "")));
    percore::spawn(async move {
        percore_net::serve(listener, app)
            .header_read_timeout(Some(HEAD_TIMEOUT))
            .await
    });
    addr
}

/// Reads until the server closes `conn` (or fails it); what it sent.
async fn read_to_close(conn: &TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        let (res, buf) = timeout(LIMIT, conn.read(Vec::with_capacity(1024)))
            .await
            .expect("the server closes the connection");
        match res {
            Ok(0) | Err(_) => return got,
            Ok(_) => got.extend_from_slice(&buf),
        }
    }
}

/// The clock starts again after each response: a keep-alive client that
/// got an answer and then sends half a head is closed.
#[percore::test]
async fn header_read_timeout_restarts_after_a_response() {
    let addr = serve_with_head_timeout();
    let client = TcpStream::connect(addr).await.unwrap();
    let full = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n".to_vec();
    client.write_all(full).await.0.unwrap();
    client
        .write_all(&b"GET / HTTP/1.1\r\n"[..])
        .await
        .0
        .unwrap();
    let got = read_to_close(&client).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("Hello, World!"),
        "one answer, then the close: {text:?}"
    );
}

/// A client that connects and sends nothing at all is closed too.
#[percore::test]
async fn header_read_timeout_closes_a_client_that_sends_nothing() {
    let addr = serve_with_head_timeout();
    let client = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&client).await.is_empty());
}

/// The clock is stopped while a request is in progress: a handler that
/// takes longer than the timeout still answers.
#[percore::test]
async fn header_read_timeout_spares_a_slow_handler() {
    let addr = serve_with_head_timeout();
    assert_eq!(
        get_http1(addr, "/slow").await,
        (StatusCode::OK, "finished".into())
    );
}

/// HTTP/2 connections idle between requests: after the first request the
/// header read timeout no longer applies to them.
#[percore::test]
async fn header_read_timeout_leaves_an_idle_http2_connection_open() {
    let addr = serve_with_head_timeout();
    let mut h2 = connect_http2(addr).await;
    for _ in 0..2 {
        let req = Request::get("http://localhost/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = timeout(LIMIT, h2.send_request(req)).await.unwrap().unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "Hello, World!");
        // Idle for a few timeouts before the next request.
        percore::time::sleep(HEAD_TIMEOUT * 3).await;
    }
}

#[test]
fn serves_on_every_core_and_stops_on_shutdown() {
    // One port for both cores' SO_REUSEPORT listeners.
    let reserved =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    reserved.set_reuse_address(true).unwrap();
    reserved.set_reuse_port(true).unwrap();
    reserved
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = reserved.local_addr().unwrap().as_socket().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let file = temp_file("serve-cores", "per core");
    let app = App {
        hits: hits.clone(),
        file,
        backend: addr, // `/backend` is not asked for here

        started: None,
    };
    let router = router(app);
    let served = percore::Runtime::builder()
        .cores(2)
        .build()
        .unwrap()
        .run_on_every_core(move |core| {
            let router = router.clone();
            async move {
                let listener = TcpListener::bind_reuseport(addr).unwrap();
                let server =
                    percore::spawn(async move { percore_net::serve(listener, router).await });
                if core == 0 {
                    for i in 0..8 {
                        let (status, body) = get_http1(addr, &format!("/count/{i}")).await;
                        assert_eq!(status, StatusCode::OK);
                        assert!(body.starts_with('{'), "{body}");
                        assert_eq!(get_http1(addr, "/file").await.1, "per core");
                    }
                    percore::shutdown::request();
                }
                timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
                core
            }
        })
        .unwrap();
    assert_eq!(served, [0, 1]);
    assert_eq!(hits.load(Ordering::SeqCst), 8);
    drop(reserved);
}

/// A request body larger than `serve`'s shared receive ring (1 MiB),
/// posted while the handler reads it slowly: it arrives whole and in
/// order (where the ring runs dry, reads fall back to a plain buffer), and
/// a second request on the same connection is served after it.
#[percore::test]
async fn a_large_upload_arrives_whole_through_the_receive_ring() {
    const LEN: usize = 3 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/sum",
        axum::routing::post(|body: axum::body::Body| {
            CoreBound::new(async move {
                let mut body = body.into_data_stream();
                let (mut len, mut sum) = (0u64, 0u64);
                while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
                    let chunk = chunk.unwrap();
                    len += chunk.len() as u64;
                    sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
                    // Slower than the client sends.
                    percore::time::sleep(Duration::from_micros(100)).await;
                }
                format!("{len} {sum}")
            })
        }),
    );
    let server = percore::spawn(async move { percore_net::serve(listener, app).await });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    percore::spawn(conn);
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let expect = format!("{LEN} {}", data.iter().map(|&b| u64::from(b)).sum::<u64>());
    for _ in 0..2 {
        let req = Request::post("/sum")
            .header("host", "localhost")
            .body(http_body_util::Full::new(Bytes::from(data.clone())))
            .unwrap();
        let res = timeout(LIMIT, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = timeout(LIMIT, res.into_body().collect())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body.to_bytes(), expect.as_bytes());
    }
    percore::shutdown::request();
    drop(sender);
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

/// An HTTP/2 client (prior knowledge) on one new connection to `addr`, its
/// connection task spawned.
async fn connect_http2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (h2, conn) = hyper::client::conn::http2::Builder::new(Executor)
        .timer(Timer)
        .handshake(conn)
        .await
        .unwrap();
    percore::spawn(conn);
    h2
}
