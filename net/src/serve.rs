//! [`serve`]: axum routers and any tower service on percore, HTTP/1 and
//! HTTP/2, with graceful shutdown.

use std::error::Error as StdError;
use std::future::{Future, IntoFuture, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use ::hyper::body::{Body, Incoming};
use ::hyper::{Request, Response};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use percore::buf::BufRing;
use percore::{Either, select};

use crate::compat::Compat;
use crate::hyper::{Executor, Timer};
#[cfg(feature = "tokio-compat")]
use crate::tokio_compat::TokioContext;
use crate::{CoreBound, TcpListener};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Buffers in the receive ring `serve` shares between the connections of
/// its core: 1 MiB with [`RING_BUF_LEN`]. A request head fits one buffer.
const RING_ENTRIES: u16 = 256;

/// Bytes per buffer of that ring.
const RING_BUF_LEN: usize = 4096;

/// Serves `service` on every connection `listener` accepts, on the current
/// core: percore's `axum::serve`.
///
/// `service` is an axum [`Router`](https://docs.rs/axum/latest/axum/struct.Router.html)
/// or any `tower::Service<Request<hyper::body::Incoming>>` that is `Clone`
/// (each request gets a clone, as with axum's own `serve`). Await the
/// returned [`Serve`] to run it; its builder methods set the options.
/// Give it a router finished with `.with_state(…)` (`.with_state(())`
/// where it has no state), as `axum::serve` does for each connection:
/// a route added after the last `with_state` is otherwise turned into a
/// service again for every request (three more allocations per request).
///
/// - **HTTP/1.1 and HTTP/2** on the same port, told apart by the HTTP/2
///   preface (hyper-util's `auto` builder, on [`Executor`] and [`Timer`]).
///   HTTP/1 upgrades work when the upgraded connection is used on the
///   core (`hyper::upgrade::on(req)` awaited in a `percore::spawn`ed task):
///   the connection is a `CoreBound<Compat<TcpStream>>`, which hyper
///   accepts as `Send`. axum's `WebSocketUpgrade` does not work: it hands
///   the connection to `tokio::spawn`, where `CoreBound` panics (without
///   `tokio-compat`, tokio panics first: no runtime).
/// - **Header read timeout** of 30 s on HTTP/1 by default: a client that
///   does not finish its request head in time is closed
///   ([`Serve::header_read_timeout`]).
/// - **Graceful shutdown** ([`percore::shutdown`]): when the shutdown
///   starts, it stops accepting and closes the listener, each connection
///   finishes the requests in progress and closes (HTTP/2 sends GOAWAY),
///   and `serve` returns once all are closed or the grace period is over,
///   whichever comes first. Connections still open then are dropped with
///   the runtime.
/// - **Receive buffers**: where the kernel has multishot receive (io_uring,
///   Linux 6.0+), the connections of a core receive into one 1 MiB ring of
///   4 KiB buffers shared by them, one receive armed per connection for its
///   life: an idle keep-alive connection holds no receive buffer. A
///   connection that receives faster than it consumes can run the ring dry;
///   reads then fall back to a buffer of their own until buffers come back.
/// - **Accept errors** do not end it: a failed accept is skipped, and with
///   no descriptors left (`EMFILE`, `ENFILE`) it waits 50 ms before the
///   next, serving the open connections meanwhile.
///
/// Handlers that use percore's own I/O (`percore::fs`, percore-net sockets,
/// `percore::spawn`) return `!Send` futures, which axum refuses; wrap them
/// in [`CoreBound`], which is sound on percore (see its docs).
///
/// # Every core
///
/// One listener per core on the same address (`SO_REUSEPORT`), and one
/// `serve` on each; the kernel spreads connections across the cores:
///
/// ```no_run
/// use axum::routing::get;
/// use percore_net::{CoreBound, TcpListener};
///
/// let app = axum::Router::new()
///     .route("/", get(|| async { "Hello, World!" }))
///     // A handler with percore I/O: its future is !Send, so it is wrapped.
///     .route("/motd", get(|| CoreBound::new(async {
///         percore::fs::read("/etc/motd").await.unwrap_or_default()
///     })));
///
/// percore::Runtime::builder()
///     .shutdown_on_signals(true) // Ctrl-C: graceful shutdown
///     .build()
///     .unwrap()
///     .run_on_every_core(move |_core| {
///         let app = app.clone();
///         async move {
///             let listener = TcpListener::bind_reuseport("127.0.0.1:8080")?;
///             percore_net::serve(listener, app).await
///         }
///     })
///     .unwrap();
/// ```
///
/// # Examples
///
/// ```
/// use axum::routing::get;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty};
/// use percore_net::compat::Compat;
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let app = axum::Router::new().route("/", get(|| async { "hi" }));
///     let server = percore::spawn(async move { percore_net::serve(listener, app).await });
///
///     let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
///     let (mut sender, conn) = hyper::client::conn::http1::handshake(conn).await.unwrap();
///     percore::spawn(conn);
///     let req = hyper::Request::get("/").header("host", "localhost").body(Empty::<Bytes>::new());
///     let res = sender.send_request(req.unwrap()).await.unwrap();
///     assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hi");
///
///     percore::shutdown::request(); // stop accepting; the connection closes
///     drop(sender);
///     server.await.unwrap().unwrap();
/// });
/// ```
pub fn serve<S>(listener: TcpListener, service: S) -> Serve<S> {
    Serve {
        listener,
        service,
        header_read_timeout: Some(Duration::from_secs(30)),
        #[cfg(feature = "tokio-compat")]
        tokio_context: false,
    }
}

/// A server made by [`serve`]; await it (it is [`IntoFuture`]) to run it.
///
/// The future is `!Send`: it runs on the core that polls it, and so do the
/// connections it accepts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let app = axum::Router::new();
///     let server = percore_net::serve(listener, app)
///         .header_read_timeout(Some(Duration::from_secs(5)));
///     percore::shutdown::request(); // returns at once: nothing to drain
///     server.await.unwrap();
/// });
/// ```
#[must_use = "a Serve does nothing until awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    header_read_timeout: Option<Duration>,
    #[cfg(feature = "tokio-compat")]
    tokio_context: bool,
}

impl<S> Serve<S> {
    /// How long an HTTP/1 client may take to send a request head before it
    /// is closed (hyper's `header_read_timeout`, on percore's timer); `None`
    /// waits forever. Default 30 s. HTTP/2 has no such timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let app: axum::Router = axum::Router::new();
    ///     let _server = percore_net::serve(listener, app)
    ///         .header_read_timeout(Some(Duration::from_secs(2)));
    /// });
    /// ```
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Serve<S> {
        self.header_read_timeout = timeout;
        self
    }

    /// Runs every connection inside a [`TokioContext`](crate::tokio_compat::TokioContext),
    /// so that tokio-dependent layers and handlers work (tower's `timeout`,
    /// `tokio::time`). Default off. Needs the `tokio-compat` feature.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let app: axum::Router = axum::Router::new();
    ///     let app = tower::timeout::Timeout::new(app, Duration::from_secs(10));
    ///     let _server = percore_net::serve(listener, app).tokio_context(true);
    /// });
    /// ```
    #[cfg(feature = "tokio-compat")]
    pub fn tokio_context(mut self, on: bool) -> Serve<S> {
        self.tokio_context = on;
        self
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let executor = ConnExecutor {
                #[cfg(feature = "tokio-compat")]
                tokio_context: self.tokio_context,
            };
            let mut builder = auto::Builder::new(executor);
            builder
                .http1()
                .timer(Timer)
                .header_read_timeout(self.header_read_timeout);
            builder.http2().timer(Timer);
            let builder = Rc::new(builder);
            // Connections receive into one ring of this core's (see
            // `Compat::with_ring`), where the kernel has multishot receive.
            let ring = percore::capabilities()
                .filter(|c| c.multishot_recv)
                .and_then(|_| BufRing::new(RING_ENTRIES, RING_BUF_LEN).ok());

            // Every connection task holds a sender; `recv` returns `None` once
            // they are all gone.
            let (open, mut all_closed) = percore::channel::channel::<()>(1);
            let listener = self.listener;
            let mut incoming = listener.incoming();
            let shutdown = percore::shutdown::handle();
            let mut stop = pin!(shutdown.requested());
            loop {
                // The shutdown first, so that it wins over a waiting connection.
                let conn = match select(stop.as_mut(), incoming.next()).await {
                    Either::Left(()) => break,
                    Either::Right(Ok(conn)) => conn,
                    Either::Right(Err(e)) => {
                        if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                            percore::time::sleep(Duration::from_millis(50)).await;
                        }
                        continue;
                    }
                };
                let _ = conn.set_nodelay(true);
                let builder = builder.clone();
                let service = TowerToHyperService::new(self.service.clone());
                let open = open.clone();
                let ring = ring.clone();
                let shutdown = shutdown.clone();
                let connection = async move {
                    let _open = open;
                    let io = CoreBound::new(Compat::with_ring(conn, ring.as_ref()));
                    let mut served = pin!(builder.serve_connection_with_upgrades(io, service));
                    let mut requested = pin!(shutdown.requested());
                    // The shutdown's wait is polled once, which leaves this
                    // task's waker with it, and then only once its flag is
                    // set: not on every request. It comes first, so that it
                    // wins over a request.
                    let mut waiting = false;
                    let stop = poll_fn(|cx| {
                        if (!waiting || shutdown.is_requested())
                            && requested.as_mut().poll(cx).is_ready()
                        {
                            return Poll::Ready(true);
                        }
                        waiting = true;
                        // Errors are clients going away mid-request: nothing to do.
                        served.as_mut().poll(cx).map(|_| false)
                    })
                    .await;
                    if stop {
                        // Finish the requests in progress, then close.
                        served.as_mut().graceful_shutdown();
                        let _ = served.await;
                    }
                };
                ::hyper::rt::Executor::execute(&executor, connection);
            }
            drop(incoming);
            drop(listener);
            drop(open);
            // Drain: until every connection closed, or the grace period ends.
            let _ = select(all_closed.recv(), percore::shutdown::expired()).await;
            Ok(())
        })
    }
}

/// Spawns connections and hyper's tasks for them (HTTP/2 streams) on the
/// current core, inside a [`TokioContext`] when [`Serve::tokio_context`]
/// asked for it: a stream's handler runs in a task of its own, so wrapping
/// only the connection would leave it without tokio.
#[derive(Clone, Copy)]
struct ConnExecutor {
    #[cfg(feature = "tokio-compat")]
    tokio_context: bool,
}

impl<F> ::hyper::rt::Executor<F> for ConnExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        #[cfg(feature = "tokio-compat")]
        if self.tokio_context {
            return ::hyper::rt::Executor::execute(&Executor, TokioContext::new(fut));
        }
        ::hyper::rt::Executor::execute(&Executor, fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issue's default: a slow or silent HTTP/1 client is closed after
    /// 30 s without the caller asking for it.
    #[test]
    fn the_header_read_timeout_is_on_by_default() {
        percore::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let server = serve(listener, ());
            assert_eq!(server.header_read_timeout, Some(Duration::from_secs(30)));
        });
    }
}
