//! A pooled HTTP client: hyper-util's `client::legacy::Client` on percore,
//! with keep-alive reuse, HTTP/1 and HTTP/2.
//!
//! [`Connector`] opens percore TCP connections for the client (`http://`
//! only; names are resolved on percore's blocking pool), and [`builder`]
//! sets up the client's executor and timers on percore. hyper-util demands
//! `Send` connections and futures; percore's are tied to their core, so the
//! connection is a [`CoreBound`] (see its docs for why that is sound).
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::Response;
//! use percore_net::client::Connector;
//! use percore_net::compat::Compat;
//! use percore_net::TcpListener;
//!
//! percore::run(async {
//!     // A loopback server to ask.
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     percore::spawn(async move {
//!         while let Ok((conn, _)) = listener.accept().await {
//!             let hi = hyper::service::service_fn(|_req| async {
//!                 Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hi"))))
//!             });
//!             let http1 = hyper::server::conn::http1::Builder::new();
//!             percore::spawn(async move { http1.serve_connection(Compat::new(conn), hi).await });
//!         }
//!     });
//!
//!     let client = percore_net::client::builder().build::<_, Empty<Bytes>>(Connector::new());
//!     for _ in 0..3 {
//!         // One connection, kept alive and reused by the pool.
//!         let res = client.get(format!("http://{addr}/").parse().unwrap()).await.unwrap();
//!         assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hi");
//!     }
//! });
//! ```
//!
//! # Where it runs
//!
//! A request's connection is opened on the core that sent the request and
//! its I/O stays there. The `Client` is `Send + Sync` and its pool is
//! shared by its clones: a request from another core may be sent over an
//! idle connection of this core; it then crosses cores through hyper's
//! channel (correct, but slower), so give each core its own `Client` if
//! that matters.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::{Builder, Client};

use crate::compat::Compat;
use crate::hyper::{Executor, Timer};
use crate::{CoreBound, TcpStream};

/// A [`Client`] builder that runs on percore: its connections' tasks on
/// the current core ([`Executor`]), its keep-alive, pool and HTTP/2 timers
/// on percore's timer wheel ([`Timer`]).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use percore_net::client::Connector;
///
/// percore::run(async {
///     let client = percore_net::client::builder()
///         .pool_max_idle_per_host(8)
///         .build::<_, Empty<Bytes>>(Connector::new());
///     # let _ = client;
/// });
/// ```
pub fn builder() -> Builder {
    let mut builder = Client::builder(Executor);
    builder.timer(Timer).pool_timer(Timer);
    builder
}

/// Opens plain-TCP (`http://`) connections for hyper-util's [`Client`] on
/// the current core.
///
/// Host names are resolved with `getaddrinfo` on percore's blocking pool
/// ([`percore::spawn_blocking`]), IP literals directly; each address is
/// tried in turn. `TCP_NODELAY` is set. `https://` URIs are refused with
/// `ErrorKind::Unsupported` (no TLS here).
///
/// ```
/// use std::time::Duration;
/// use percore_net::client::Connector;
///
/// let connector = Connector::new().connect_timeout(Some(Duration::from_secs(2)));
/// # let _ = connector;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Connector {
    connect_timeout: Option<Duration>,
}

impl Connector {
    /// A connector without a connect timeout.
    ///
    /// ```
    /// let _connector = percore_net::client::Connector::new();
    /// ```
    pub fn new() -> Connector {
        Connector::default()
    }

    /// Gives up on each address after `timeout` (`ErrorKind::TimedOut`);
    /// `None` (the default) waits as long as the kernel does.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let _connector = percore_net::client::Connector::new()
    ///     .connect_timeout(Some(Duration::from_millis(500)));
    /// ```
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Connector {
        self.connect_timeout = timeout;
        self
    }
}

/// A connection made by [`Connector`]: a percore TCP stream behind
/// [`Compat`], bound to its core.
pub type ClientStream = CoreBound<Compat<TcpStream>>;

impl Connection for CoreBound<Compat<TcpStream>> {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// The future of [`Connector`]'s `call`.
pub type Connecting = CoreBound<Pin<Box<dyn Future<Output = io::Result<ClientStream>>>>>;

impl tower_service::Service<Uri> for Connector {
    type Response = ClientStream;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let timeout = self.connect_timeout;
        CoreBound::new(Box::pin(async move {
            let stream = connect(&uri, timeout).await?;
            let _ = stream.set_nodelay(true);
            Ok(CoreBound::new(Compat::new(stream)))
        }))
    }
}

async fn connect(uri: &Uri, timeout: Option<Duration>) -> io::Result<TcpStream> {
    match uri.scheme_str() {
        Some("http") | None => {}
        Some(other) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("percore_net::client::Connector speaks http:// only, not {other}://"),
            ));
        }
    }
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?;
    let port = uri.port_u16().unwrap_or(80);
    // `[::1]` in a URI is the IPv6 literal `::1`.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let host = host.to_string();
            percore::spawn_blocking(move || (host.as_str(), port).to_socket_addrs())
                .await
                .map_err(io::Error::other)??
                .collect()
        }
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolved to no address"),
    );
    for addr in addrs {
        let res = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t).await,
            None => TcpStream::connect_addr(addr).await,
        };
        match res {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
