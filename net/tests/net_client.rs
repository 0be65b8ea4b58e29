//! `percore_net::client`: hyper-util's pooled client on percore reuses its
//! connections (the server counts what it accepted), over HTTP/1 and HTTP/2.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use percore::time::timeout;
use percore_net::TcpListener;
use percore_net::client::Connector;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

async fn echo_path(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from(
        req.uri().path().to_string(),
    ))))
}

/// Serves `echo_path` on loopback, HTTP/1 or HTTP/2; counts the connections
/// it accepted.
fn start_server(http2: bool) -> (SocketAddr, Rc<Cell<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    percore::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.set(count.get() + 1);
            let service = hyper::service::service_fn(echo_path);
            let io = Compat::new(conn);
            percore::spawn(async move {
                if http2 {
                    let _ = hyper::server::conn::http2::Builder::new(Executor)
                        .timer(Timer)
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(Timer)
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (addr, accepted)
}

async fn body(res: Response<Incoming>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[percore::test]
async fn http1_requests_reuse_one_kept_alive_connection() {
    let (addr, accepted) = start_server(false);
    let client = percore_net::client::builder().build::<_, Empty<Bytes>>(Connector::new());
    for i in 0..5 {
        let uri = format!("http://{addr}/r{i}").parse().unwrap();
        let res = timeout(LIMIT, client.get(uri)).await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body(res).await, format!("/r{i}"));
    }
    assert_eq!(accepted.get(), 1, "5 requests over one connection");
}

#[percore::test]
async fn http2_concurrent_requests_share_one_connection() {
    let (addr, accepted) = start_server(true);
    let client = percore_net::client::builder()
        .http2_only(true)
        .build::<_, Empty<Bytes>>(Connector::new());
    // The first request opens the connection; then ten at once share it.
    let uri = format!("http://{addr}/first").parse().unwrap();
    let res = timeout(LIMIT, client.get(uri)).await.unwrap().unwrap();
    assert_eq!(res.version(), hyper::Version::HTTP_2);
    assert_eq!(body(res).await, "/first");
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let client = client.clone();
            percore::spawn(async move {
                let uri = format!("http://{addr}/s{i}").parse().unwrap();
                body(client.get(uri).await.unwrap()).await
            })
        })
        .collect();
    let bodies = timeout(LIMIT, percore::join_all(handles)).await.unwrap();
    for (i, b) in bodies.into_iter().enumerate() {
        assert_eq!(b.unwrap(), format!("/s{i}"));
    }
    assert_eq!(accepted.get(), 1, "11 requests over one HTTP/2 connection");
}

#[percore::test]
async fn https_and_refused_connections_are_connect_errors() {
    let client = percore_net::client::builder().build::<_, Empty<Bytes>>(Connector::new());
    let err = client
        .get("https://127.0.0.1:9/".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(format!("{err:?}").contains("http:// only"), "{err:?}");

    // A port that was free a moment ago, now closed: refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let uri = format!("http://{closed}/").parse().unwrap();
    let err = timeout(LIMIT, client.get(uri)).await.unwrap().unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[percore::test]
async fn localhost_names_resolve_on_the_blocking_pool() {
    let (addr, accepted) = start_server(false);
    let client = percore_net::client::builder()
        .build::<_, Empty<Bytes>>(Connector::new().connect_timeout(Some(LIMIT)));
    let uri = format!("http://localhost:{}/named", addr.port())
        .parse()
        .unwrap();
    let res = timeout(LIMIT, client.get(uri)).await.unwrap().unwrap();
    assert_eq!(body(res).await, "/named");
    assert_eq!(accepted.get(), 1);
}
