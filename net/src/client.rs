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
/// tried in turn. `TCP_NODELAY` is set. `https://` URIs need a TLS
/// configuration (`Connector::tls`, feature `client-tls`); without one
/// they are refused with `ErrorKind::Unsupported`.
///
/// ```
/// use std::time::Duration;
/// use percore_net::client::Connector;
///
/// let connector = Connector::new().connect_timeout(Some(Duration::from_secs(2)));
/// # let _ = connector;
/// ```
#[derive(Clone, Default)]
pub struct Connector {
    connect_timeout: Option<Duration>,
    #[cfg(feature = "client-tls")]
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Connector");
        d.field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "client-tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
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

    /// Speaks `https://` with rustls (tokio-rustls over
    /// [`Compat`]), verifying servers as `config` says. If `config` offers
    /// `h2` in its ALPN protocols and the server picks it, the pool uses
    /// HTTP/2 on that connection. Feature `client-tls`; bring your own
    /// rustls crypto provider (`ring` or `aws-lc-rs`) through `config`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    ///
    /// let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    /// let config = ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(RootCertStore::empty()) // add your roots
    ///     .with_no_client_auth();
    /// let _connector = percore_net::client::Connector::new().tls(Arc::new(config));
    /// ```
    #[cfg(feature = "client-tls")]
    pub fn tls(mut self, config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>) -> Connector {
        self.tls = Some(tokio_rustls::TlsConnector::from(config));
        self
    }
}

/// A connection made by [`Connector`]: a percore TCP stream behind
/// [`Compat`] (and rustls, for `https://`), bound to its core.
pub struct ClientStream {
    io: CoreBound<Io>,
    h2: bool,
}

// Boxed TLS state (rustls's buffers are large), so a plain connection does
// not carry it; a plain `Compat` is then the large variant, once per
// connection, which is what the connection needs anyway.
#[allow(clippy::large_enum_variant)]
enum Io {
    Plain(Compat<TcpStream>),
    #[cfg(feature = "client-tls")]
    Tls(Box<TlsIo>),
}

#[cfg(feature = "client-tls")]
type TlsIo = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<Compat<TcpStream>>>;

impl Connection for ClientStream {
    fn connected(&self) -> Connected {
        match self.h2 {
            true => Connected::new().negotiated_h2(),
            false => Connected::new(),
        }
    }
}

impl ::hyper::rt::Read for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ::hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut *self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_read(cx, buf),
            #[cfg(feature = "client-tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_read(cx, buf),
        }
    }
}

impl ::hyper::rt::Write for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write(cx, buf),
            #[cfg(feature = "client-tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut *self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            #[cfg(feature = "client-tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self.io.is_local().then(|| &*self.io) {
            Some(Io::Plain(io)) => ::hyper::rt::Write::is_write_vectored(io),
            #[cfg(feature = "client-tls")]
            Some(Io::Tls(io)) => ::hyper::rt::Write::is_write_vectored(&**io),
            None => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_flush(cx),
            #[cfg(feature = "client-tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_shutdown(cx),
            #[cfg(feature = "client-tls")]
            Io::Tls(io) => Pin::new(&mut **io).poll_shutdown(cx),
        }
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
        let this = self.clone();
        CoreBound::new(Box::pin(async move {
            let tls = match uri.scheme_str() {
                Some("http") | None => false,
                #[cfg(feature = "client-tls")]
                Some("https") if this.tls.is_some() => true,
                Some(other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "percore_net::client::Connector speaks http:// only, not {other}:// \
                             (https:// needs Connector::tls, feature client-tls)"
                        ),
                    ));
                }
            };
            let default_port = if tls { 443 } else { 80 };
            let stream = connect(&uri, default_port, this.connect_timeout).await?;
            let _ = stream.set_nodelay(true);
            let stream = Compat::new(stream);
            #[cfg(feature = "client-tls")]
            if let (true, Some(connector)) = (tls, &this.tls) {
                let host = uri.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = connector.connect(name, stream).await?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = Io::Tls(Box::new(hyper_util::rt::TokioIo::new(tls)));
                return Ok(ClientStream {
                    io: CoreBound::new(io),
                    h2,
                });
            }
            let _ = tls;
            Ok(ClientStream {
                io: CoreBound::new(Io::Plain(stream)),
                h2: false,
            })
        }))
    }
}

async fn connect(uri: &Uri, default_port: u16, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}")))?;
    let port = uri.port_u16().unwrap_or(default_port);
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
