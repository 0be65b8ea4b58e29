//! reqwest (tokio-only: its connections are `tokio::net::TcpStream`s, its
//! timeouts `tokio::time`) inside a percore task through
//! `tokio_compat::TokioContext`, against an axum router that percore serves
//! on the same core. reqwest is built without default features: HTTP/1,
//! no TLS.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use percore::time::timeout;
use percore_net::tokio_compat::TokioContext;
use percore_net::{CoreBound, TcpListener};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

/// Serves a small axum router on this core until the shutdown; its address.
fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/", get(|| async { "hello from percore" }))
        .route(
            "/echo",
            post(|body: String| async move { body.to_uppercase() }),
        )
        .route(
            "/slow",
            get(|| {
                CoreBound::new(async {
                    percore::time::sleep(Duration::from_secs(5)).await;
                    "too late"
                })
            }),
        );
    percore::spawn(async move { percore_net::serve(listener, app).await.unwrap() });
    addr
}

#[percore::test]
async fn reqwest_gets_and_posts_inside_a_percore_task() {
    let addr = start_server();
    let core = std::thread::current().id();
    let task = percore::spawn(TokioContext::new(async move {
        let client = reqwest::Client::new();
        let mut got = Vec::new();
        // Several requests on the client's pool: keep-alive on a tokio
        // socket, the server's side on percore's ring.
        for _ in 0..3 {
            let res = client.get(format!("http://{addr}/")).send().await.unwrap();
            assert_eq!(res.status(), reqwest::StatusCode::OK);
            got.push(res.text().await.unwrap());
        }
        let res = client
            .post(format!("http://{addr}/echo"))
            .body("shout")
            .send()
            .await
            .unwrap();
        got.push(res.text().await.unwrap());
        // Polled here, on the core, not on tokio's thread.
        assert_eq!(std::thread::current().id(), core);
        got
    }));
    let got = timeout(LIMIT, task).await.unwrap().unwrap();
    assert_eq!(
        got,
        [
            "hello from percore",
            "hello from percore",
            "hello from percore",
            "SHOUT"
        ]
    );
    percore::shutdown::request();
}

#[percore::test]
async fn reqwest_timeout_fires_inside_a_percore_task() {
    // reqwest's timeout is a tokio::time::Sleep: it needs the context too.
    let addr = start_server();
    let task = percore::spawn(TokioContext::new(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        client.get(format!("http://{addr}/slow")).send().await
    }));
    let err = timeout(LIMIT, task).await.unwrap().unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    percore::shutdown::request();
}
