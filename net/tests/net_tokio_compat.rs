//! `tokio_compat::TokioContext`: tokio-dependent code inside percore tasks;
//! tower's timeout layer on an axum router served by percore.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, StatusCode};
use percore::time::timeout;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};
use percore_net::tokio_compat::{TokioContext, TokioContextLayer};
use percore_net::{CoreBound, TcpListener, TcpStream};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
#[path = "support/http1.rs"]
mod http1;

const LIMIT: Duration = Duration::from_secs(20);

#[percore::test]
async fn tokio_sleep_runs_inside_a_percore_task() {
    let core = std::thread::current().id();
    let task = percore::spawn(TokioContext::new(async move {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Woken by tokio's thread, but polled here, on the core.
        assert_eq!(std::thread::current().id(), core);
        // percore I/O in the same future still works.
        let (a, b) = percore_net::UnixStream::pair().unwrap();
        a.write_all(&b"x"[..]).await.0.unwrap();
        let (res, buf) = b.read(Vec::with_capacity(1)).await;
        res.unwrap();
        (start.elapsed(), buf)
    }));
    let (slept, buf) = timeout(LIMIT, task).await.unwrap().unwrap();
    assert!(slept >= Duration::from_millis(30), "{slept:?}");
    assert_eq!(buf, b"x");
}

#[percore::test]
async fn without_the_context_tokio_time_panics() {
    // The failure the context exists for: no tokio runtime, no timer.
    let task = percore::spawn(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
    let err = timeout(LIMIT, task).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("Tokio 1.x runtime"), "{err}");
}

async fn status_of(addr: SocketAddr, path: &str) -> StatusCode {
    http1::get_http1(addr, path).await.0
}

#[percore::test]
async fn tower_timeout_layer_fires_on_a_slow_axum_handler() {
    let app = axum::Router::new()
        .route("/", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| {
                CoreBound::new(async {
                    // Far longer than LIMIT: only the timeout ends it.
                    percore::time::sleep(Duration::from_secs(3600)).await;
                    "too late"
                })
            }),
        )
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: axum::BoxError| async {
                    StatusCode::REQUEST_TIMEOUT
                }))
                .timeout(Duration::from_millis(100)),
        );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        percore::spawn(async move { percore_net::serve(listener, app).tokio_context(true).await });

    assert_eq!(status_of(addr, "/").await, StatusCode::OK);
    assert_eq!(status_of(addr, "/slow").await, StatusCode::REQUEST_TIMEOUT);
    // Over HTTP/2 each request runs in a task of its own: it gets the
    // context too.
    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut h2, conn) = hyper::client::conn::http2::Builder::new(Executor)
        .timer(Timer)
        .handshake(conn)
        .await
        .unwrap();
    percore::spawn(conn);
    let req = Request::get("http://localhost/slow")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = timeout(LIMIT, h2.send_request(req)).await.unwrap().unwrap();
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    drop(h2);

    percore::shutdown::request();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[percore::test]
async fn the_layer_gives_tokio_to_one_route_only() {
    let timeout_408 = tower::ServiceBuilder::new()
        .layer(TokioContextLayer)
        .layer(HandleErrorLayer::new(|_: axum::BoxError| async {
            StatusCode::REQUEST_TIMEOUT
        }))
        .timeout(Duration::from_millis(100));
    let app = axum::Router::new()
        .route(
            "/slow",
            get(|| {
                CoreBound::new(async {
                    percore::time::sleep(Duration::from_secs(3600)).await;
                    "too late"
                })
            })
            .layer(timeout_408),
        )
        .route(
            "/tokio",
            // No context on this route: tokio::time panics in the handler,
            // and axum/hyper end that request without a response.
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                "never"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // No `tokio_context(true)`: only the layered route has tokio.
    let server = percore::spawn(async move { percore_net::serve(listener, app).await });
    assert_eq!(status_of(addr, "/slow").await, StatusCode::REQUEST_TIMEOUT);
    // The other route has no tokio: its handler panics, which ends its
    // connection's task, and the client sees the connection close.
    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    percore::spawn(conn);
    let req = Request::get("/tokio")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = timeout(LIMIT, sender.send_request(req)).await.unwrap();
    assert!(res.is_err(), "{res:?}");

    percore::shutdown::request();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}
