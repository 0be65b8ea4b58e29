//! One HTTP/1.1 GET over a fresh connection, for the tests of `serve`
//! (`net_serve.rs`, `net_tokio_compat.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use percore::time::timeout;
use percore_net::TcpStream;
use percore_net::compat::Compat;

/// GETs `path` over a new HTTP/1.1 connection; the status and the body
/// (as text, lossily). Panics if the answer takes more than 20 s.
pub async fn get_http1(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    percore::spawn(conn);
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = timeout(Duration::from_secs(20), sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
