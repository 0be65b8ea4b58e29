//! Fetch many URLs concurrently with a pooled hyper client on percore, each
//! with its own timeout, and report every result: one failure never stops
//! the others (asyncio's `gather(..., return_exceptions=True)`).
//!
//! ```text
//! cargo run --example http-client                       # against a local demo server
//! cargo run --example http-client -- [--timeout MS] URL...   # http:// URLs of your own
//! ```
//!
//! Without URLs it starts a hyper server on this core on an ephemeral port
//! (`examples/common/http.rs`'s service plus a `/slow` route that answers
//! after 2 s), and the same service over HTTPS on another (rustls, with a
//! self-signed certificate for `localhost` made at start, as in `tls-echo`),
//! and fetches a mix that shows each kind of outcome: 200s over http:// and
//! https://, a 404, a timeout (`/slow` against the 500 ms default), and a
//! refused connection (a port nothing listens on). The client trusts only
//! that demo certificate, so `https://` URLs of your own are refused.
//!
//! Every request runs in its own task under `percore::time::timeout`; the
//! results are gathered with `percore::join_all`. A timed-out request is
//! dropped mid-flight, which cancels its socket ops safely.
//!
//! All requests share one client (`percore_net::client`: hyper-util's
//! pooled `Client` on percore), which keeps connections alive and reuses
//! them. The demo then fetches its first URLs again, one after another,
//! and shows that the server accepted no new connection for them.

#[path = "common/http.rs"]
mod http;

use std::cell::Cell;
use std::convert::Infallible;
use std::error::Error as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioIo;
use percore_net::TcpListener;
use percore_net::client::Connector;
use percore_net::compat::Compat;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The shared, pooled client.
type HttpClient = Client<Connector, Empty<Bytes>>;

const USAGE: &str = "usage: http-client [--timeout MS] [URL...]";

fn main() {
    http::flags::exit_if_help(USAGE);
    let mut timeout = Duration::from_millis(500);
    let mut urls = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--timeout" => match args.next().and_then(|v| v.parse().ok()) {
                Some(ms) => timeout = Duration::from_millis(ms),
                None => usage("--timeout needs a number of milliseconds"),
            },
            url if url.starts_with("--") => usage(&format!("unknown argument {url}")),
            url => urls.push(url.to_string()),
        }
    }
    let demo = urls.is_empty();
    let ok = percore::run(async move {
        if !demo {
            let client = percore_net::client::builder().build(Connector::new());
            return fetch_all(&client, urls, timeout).await;
        }
        let (server_tls, client_tls) = tls_configs().expect("make the demo certificate");
        let client = percore_net::client::builder().build(Connector::new().tls(client_tls));
        let (addr, accepted) = start_demo_server(None).expect("start the demo server");
        let (tls_addr, _) = start_demo_server(Some(server_tls)).expect("start the demo server");
        urls = demo_urls(addr, tls_addr).expect("find a closed port");
        println!(
            "demo servers on http://{addr} and https://localhost:{}; fetching {} URLs",
            tls_addr.port(),
            urls.len()
        );
        let ok = fetch_all(&client, urls.clone(), timeout).await;
        // Kept-alive connections are reused: no new accept for these.
        let before = accepted.get();
        let again = &urls[..4];
        for url in again {
            if let Err(e) = fetch(&client, url).await {
                println!("FAILED {url} again: {e}");
            }
        }
        println!(
            "{} http:// connections for the first round; {} new for {} more requests (pooled)",
            before,
            accepted.get() - before,
            again.len()
        );
        ok
    });
    // The demo's last three URLs fail on purpose; anything else is a bug.
    // With URLs of your own, any failure is.
    let expected_failures = if demo { DEMO_FAILURES } else { 0 };
    let failed = ok.iter().filter(|&&ok| !ok).count();
    let as_expected = failed == expected_failures && ok.iter().rev().skip(failed).all(|&ok| ok);
    if !as_expected {
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    http::flags::usage_error("http-client", msg, USAGE)
}

/// Fetches every URL concurrently, prints one line per URL in the order
/// given, and returns which ones succeeded.
async fn fetch_all(client: &HttpClient, urls: Vec<String>, limit: Duration) -> Vec<bool> {
    let start = Instant::now();
    let handles: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let client = client.clone();
            percore::spawn(async move {
                let t = Instant::now();
                let res = match percore::time::timeout(limit, fetch(&client, &url)).await {
                    Ok(res) => res,
                    Err(_) => Err(format!("timed out after {limit:?}")),
                };
                (res, t.elapsed())
            })
        })
        .collect();
    let mut ok = Vec::with_capacity(urls.len());
    for (url, joined) in urls.iter().zip(percore::join_all(handles).await) {
        let line = match joined {
            Ok((Ok((status, body)), took)) if status.is_success() => {
                let preview: String = String::from_utf8_lossy(&body).chars().take(40).collect();
                ok.push(true);
                format!(
                    "ok     {url}: {status} in {took:.1?}, {} bytes: {preview:?}",
                    body.len()
                )
            }
            Ok((Ok((status, _)), took)) => {
                ok.push(false);
                format!("FAILED {url}: HTTP {status} in {took:.1?}")
            }
            Ok((Err(e), took)) => {
                ok.push(false);
                format!("FAILED {url}: {e} (after {took:.1?})")
            }
            Err(e) => {
                ok.push(false);
                format!("FAILED {url}: task ended: {e}")
            }
        };
        println!("{line}");
    }
    let failed = ok.iter().filter(|&&ok| !ok).count();
    println!(
        "{} requests, {} ok, {failed} failed, in {:.1?}",
        urls.len(),
        urls.len() - failed,
        start.elapsed()
    );
    ok
}

/// GETs one URL through the pooled client.
async fn fetch(client: &HttpClient, url: &str) -> Result<(hyper::StatusCode, Bytes), String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let res = client.get(uri).await.map_err(|e| {
        // The client's error says which stage failed; its source says why.
        match e.source() {
            Some(why) => format!("{e}: {why}"),
            None => e.to_string(),
        }
    })?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// Serves the shared service, plus `/slow`, on an ephemeral port of this
/// core, over TLS if given a configuration; counts the connections it
/// accepts.
fn start_demo_server(
    tls: Option<Arc<ServerConfig>>,
) -> std::io::Result<(std::net::SocketAddr, Rc<Cell<u64>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let acceptor = tls.map(TlsAcceptor::from);
    percore::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            count.set(count.get() + 1);
            let acceptor = acceptor.clone();
            percore::spawn(async move {
                let service = hyper::service::service_fn(demo);
                let http1 = hyper::server::conn::http1::Builder::new()
                    .timer(percore_net::hyper::Timer)
                    .clone();
                let _ = match acceptor {
                    None => http1.serve_connection(Compat::new(conn), service).await,
                    Some(acceptor) => match acceptor.accept(Compat::new(conn)).await {
                        Ok(tls) => http1.serve_connection(TokioIo::new(tls), service).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    Ok((addr, accepted))
}

/// A fresh self-signed certificate for `localhost`: the server's
/// configuration, and a client configuration that trusts only it.
fn tls_configs() -> std::io::Result<(Arc<ServerConfig>, Arc<ClientConfig>)> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(std::io::Error::other)?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(std::io::Error::other)?;
    let mut roots = RootCertStore::empty();
    roots.add(cert).map_err(std::io::Error::other)?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((Arc::new(server), Arc::new(client)))
}

async fn demo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/slow" {
        percore::time::sleep(Duration::from_secs(2)).await;
        return Ok(Response::new(Full::new(Bytes::from_static(b"finally\n"))));
    }
    http::handle(req).await
}

/// How many of [`demo_urls`] fail on purpose: the last ones.
const DEMO_FAILURES: usize = 3;

/// A mix of URLs with every outcome: successes over http:// and https://,
/// then a 404, a timeout and a refused connection.
fn demo_urls(
    addr: std::net::SocketAddr,
    tls_addr: std::net::SocketAddr,
) -> std::io::Result<Vec<String>> {
    // A port that was free a moment ago, now closed: connecting is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut urls: Vec<String> = (0..6)
        .map(|i| format!("http://{addr}/{}", if i % 2 == 0 { "" } else { "json" }))
        .collect();
    // `localhost`, the name in the certificate (it resolves to loopback).
    urls.push(format!("https://localhost:{}/", tls_addr.port()));
    urls.push(format!("https://localhost:{}/json", tls_addr.port()));
    urls.push(format!("http://{addr}/missing"));
    urls.push(format!("http://{addr}/slow"));
    urls.push(format!("http://{closed}/"));
    Ok(urls)
}
