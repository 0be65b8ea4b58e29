//! `percore_net::client` over HTTPS: rustls on both ends, a self-signed
//! certificate for `localhost`, keep-alive reuse over one TLS connection,
//! and HTTP/2 when ALPN picks it.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percore::time::timeout;
use percore_net::TcpListener;
use percore_net::client::Connector;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

/// Server and client configurations trusting one fresh self-signed
/// certificate for `localhost`, both offering `alpn`.
fn configs(alpn: &[&[u8]]) -> (ServerConfig, ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(default_provider());
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    client.alpn_protocols = server.alpn_protocols.clone();
    (server, client)
}

async fn echo_path(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = format!("{:?} {}", req.version(), req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(answer))))
}

/// An HTTPS server on loopback (HTTP/2 if ALPN chose it); counts the
/// connections it accepted.
fn start_server(config: ServerConfig) -> (SocketAddr, Rc<Cell<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    percore::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            count.set(count.get() + 1);
            let acceptor = acceptor.clone();
            percore::spawn(async move {
                let Ok(tls) = acceptor.accept(Compat::new(conn)).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = TokioIo::new(tls);
                let service = hyper::service::service_fn(echo_path);
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(Executor)
                        .timer(Timer)
                        .serve_connection(io, service)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .timer(Timer)
                        .serve_connection(io, service)
                        .await
                };
            });
        }
    });
    (addr, accepted)
}

async fn get(
    client: &hyper_util::client::legacy::Client<Connector, Empty<Bytes>>,
    url: String,
) -> (StatusCode, String) {
    let res = timeout(LIMIT, client.get(url.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[percore::test]
async fn https_requests_reuse_one_tls_connection() {
    let (server, client) = configs(&[b"http/1.1"]);
    let (addr, accepted) = start_server(server);
    let client = percore_net::client::builder()
        .build::<_, Empty<Bytes>>(Connector::new().tls(Arc::new(client)));
    for i in 0..4 {
        // `localhost`: the name the certificate is for, resolved to loopback.
        let url = format!("https://localhost:{}/r{i}", addr.port());
        assert_eq!(
            get(&client, url).await,
            (StatusCode::OK, format!("HTTP/1.1 /r{i}"))
        );
    }
    assert_eq!(accepted.get(), 1, "4 requests over one TLS connection");
}

#[percore::test]
async fn alpn_h2_makes_the_pool_speak_http2() {
    let (server, client) = configs(&[b"h2", b"http/1.1"]);
    let (addr, accepted) = start_server(server);
    let client = percore_net::client::builder()
        .build::<_, Empty<Bytes>>(Connector::new().tls(Arc::new(client)));
    for i in 0..3 {
        let url = format!("https://localhost:{}/s{i}", addr.port());
        assert_eq!(
            get(&client, url).await,
            (StatusCode::OK, format!("HTTP/2.0 /s{i}"))
        );
    }
    assert_eq!(accepted.get(), 1);
}

#[percore::test]
async fn an_untrusted_certificate_is_a_connect_error() {
    let (server, _) = configs(&[]);
    // The client trusts another certificate than the server's.
    let (_, other_client) = configs(&[]);
    let (addr, _) = start_server(server);
    let client = percore_net::client::builder()
        .build::<_, Empty<Bytes>>(Connector::new().tls(Arc::new(other_client)));
    let url = format!("https://localhost:{}/", addr.port());
    let err = timeout(LIMIT, client.get(url.parse().unwrap()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(format!("{err:?}").contains("InvalidCertificate"), "{err:?}");
}
