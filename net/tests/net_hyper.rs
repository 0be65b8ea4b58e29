//! hyper 1.x on percore: HTTP/1.1 and HTTP/2 server and client on loopback
//! through `Compat`, the `Executor` (for HTTP/2's `!Send` tasks) and the
//! `Timer` (header read timeout, reset).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::rt::Timer as _;
use hyper::{Request, Response, StatusCode};
use percore::time::timeout;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};
use percore_net::{TcpListener, TcpStream};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

/// Echoes the method, path and body: `"POST /x: body"`.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = format!("{} {}: ", req.method(), req.uri().path());
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let mut out = head.into_bytes();
    match body {
        Ok(b) => out.extend_from_slice(&b),
        Err(e) => out.extend_from_slice(e.to_string().as_bytes()),
    }
    Ok(Response::new(Full::new(Bytes::from(out))))
}

fn request(method: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(body.into()))
        .unwrap()
}

async fn body_string(res: Response<Incoming>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[percore::test]
async fn http1_keep_alive_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    let client_conn = percore::spawn(connection);
    // Several requests on one connection, one of them large enough to
    // take several reads and sends.
    let big = "x".repeat(300_000);
    for (i, body) in ["", "hello", big.as_str()].into_iter().enumerate() {
        let path = format!("/r{i}");
        let req = request("POST", &path, body.to_string());
        let res = timeout(LIMIT, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_string(res).await, format!("POST {path}: {body}"));
    }
    // Closing the client side ends both connections cleanly.
    drop(sender);
    timeout(LIMIT, client_conn).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[percore::test]
async fn http2_concurrent_streams_on_the_percore_executor() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http2::Builder::new(Executor)
            .timer(Timer)
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http2::Builder::new(Executor)
        .timer(Timer)
        .handshake(conn)
        .await
        .unwrap();
    let client_conn = percore::spawn(connection);
    // Ten requests in flight at once on one connection.
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let mut sender = sender.clone();
            percore::spawn(async move {
                let req = request("PUT", &format!("/s{i}"), "body");
                let res = sender.send_request(req).await.unwrap();
                body_string(res).await
            })
        })
        .collect();
    let bodies = timeout(LIMIT, percore::join_all(handles)).await.unwrap();
    for (i, body) in bodies.into_iter().enumerate() {
        assert_eq!(body.unwrap(), format!("PUT /s{i}: body"));
    }
    drop(sender);
    timeout(LIMIT, client_conn).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[percore::test]
async fn header_read_timeout_closes_a_silent_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .header_read_timeout(Duration::from_millis(20))
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });
    // 1. Connect and send half a request head, then nothing.
    let client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(&b"GET / HTTP/1.1\r\n"[..])
        .await
        .0
        .unwrap();
    // 2. The server's timer fires: the connection ends with a timeout error.
    let err = timeout(LIMIT, server).await.unwrap().unwrap().unwrap_err();
    assert!(err.is_timeout(), "expected a header timeout, got {err:?}");
    // 3. The client reads the 408 hyper sends, or just the close.
    let (res, buf) = timeout(LIMIT, client.read(Vec::with_capacity(256)))
        .await
        .unwrap();
    res.unwrap();
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
        "{buf:?}"
    );
}

#[percore::test]
async fn timer_reset_moves_the_deadline() {
    // 1. A sleep far in the future, polled once so its percore timer exists.
    let mut sleep = Timer.sleep(Duration::from_secs(3600));
    assert!(
        timeout(Duration::from_millis(1), sleep.as_mut())
            .await
            .is_err()
    );
    // 2. Reset it to now: it completes, long before the original hour.
    Timer.reset(&mut sleep, Instant::now());
    timeout(LIMIT, sleep).await.unwrap();
    // 3. A sleep reset before its first poll works too.
    let mut fresh = Timer.sleep(Duration::from_secs(3600));
    Timer.reset(&mut fresh, Instant::now());
    timeout(LIMIT, fresh).await.unwrap();
}
