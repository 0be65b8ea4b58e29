//! [`serve`]: axum routers and any tower service on percore, HTTP/1 and
//! HTTP/2, with graceful shutdown.

use std::cell::Cell;
use std::error::Error as StdError;
use std::future::{Future, IntoFuture, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ::hyper::body::{Body, Frame, Incoming, SizeHint};
use ::hyper::{Request, Response, Version};
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
/// - **Header read timeout** of 30 s by default: a client that does not
///   finish its request head in time is closed
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
    /// How long a client may take to send a request head before it is
    /// closed; `None` waits forever. Default 30 s.
    ///
    /// The clock runs while the connection waits for a request head: from
    /// the accept, and again each time the last request in progress is
    /// done (hyper has dropped its response body, which it does once the
    /// body is written out); it stops when a head has arrived (the service
    /// is called). So a slow handler or a long response never trips it,
    /// and neither does a slow request body. An HTTP/2 connection has it
    /// until its first request, and never after (HTTP/2 connections idle
    /// between requests by design).
    ///
    /// It is `serve`'s own, one timer per connection, rather than hyper's
    /// `header_read_timeout`: hyper's makes a boxed timer for every request
    /// and polls the connection once more after every response to start
    /// it, which cost more than the rest of the timeout together; this one
    /// is moved for each request with no allocation and no timer-wheel work.
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
            // The header read timeout is serve's own (`HeadClock`); hyper's
            // is on by default once it has a timer, so it is turned off.
            builder.http1().timer(Timer).header_read_timeout(None);
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
                let clock = self.header_read_timeout.map(HeadClock::start);
                let service = HeadTimed {
                    inner: TowerToHyperService::new(self.service.clone()),
                    clock: clock.clone(),
                };
                let open = open.clone();
                let ring = ring.clone();
                let shutdown = shutdown.clone();
                let connection = async move {
                    let _open = open;
                    let io = CoreBound::new(Compat::with_ring(conn, ring.as_ref()));
                    let mut served = pin!(builder.serve_connection_with_upgrades(io, service));
                    let mut requested = pin!(shutdown.requested());
                    let mut head_timer = clock.as_deref().and_then(HeadTimer::new);
                    // The shutdown's wait is polled once, which leaves this
                    // task's waker with it, and then only once its flag is
                    // set: not on every request. It comes first, so that it
                    // wins over a request.
                    let mut waiting = false;
                    let end = poll_fn(|cx| {
                        if (!waiting || shutdown.is_requested())
                            && requested.as_mut().poll(cx).is_ready()
                        {
                            return Poll::Ready(End::Shutdown);
                        }
                        waiting = true;
                        poll_connection(served.as_mut(), clock.as_deref(), &mut head_timer, cx)
                    })
                    .await;
                    if let End::Shutdown = end {
                        // Finish the requests in progress, then close; a
                        // client still sending its head meanwhile is closed
                        // when its time is up, as before the shutdown.
                        served.as_mut().graceful_shutdown();
                        poll_fn(|cx| {
                            poll_connection(served.as_mut(), clock.as_deref(), &mut head_timer, cx)
                                .map(drop)
                        })
                        .await;
                    }
                    // On a header read timeout, dropping the connection
                    // closes it, as hyper's own timeout does.
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

/// Polls a connection and then its header read timeout: ready when the
/// connection closed (or failed: clients going away mid-request, nothing to
/// do) or its head is overdue. The timer comes after hyper, as hyper's own
/// reads before it looks at its timer: a head that arrived wins.
fn poll_connection<F: Future>(
    served: Pin<&mut F>,
    clock: Option<&HeadClock>,
    timer: &mut Option<HeadTimer>,
    cx: &mut Context<'_>,
) -> Poll<End> {
    // Only a restart during this poll counts (see `HeadClock::poll_expired`).
    if let Some(clock) = clock {
        clock.rearmed.set(None);
    }
    if served.poll(cx).is_ready() {
        return Poll::Ready(End::Closed);
    }
    if let (Some(clock), Some(timer)) = (clock, timer) {
        ready!(clock.poll_expired(timer, cx));
        return Poll::Ready(End::HeadTimeout);
    }
    Poll::Pending
}

/// How a connection's task ended.
enum End {
    /// The connection closed (or failed).
    Closed,
    /// The shutdown started: finish the requests in progress.
    Shutdown,
    /// No request head arrived in time: drop the connection.
    HeadTimeout,
}

/// One connection's header read timeout ([`Serve::header_read_timeout`]):
/// when the request head being waited for is due, if one is.
///
/// The service wrapper ([`HeadTimed`]) stops the clock when a head arrives
/// and hands a [`HeadGuard`] to the request's response; the last guard
/// dropped starts the clock again. The connection's task keeps one
/// [`HeadTimer`] for it, which a request neither moves nor polls: a request
/// costs one clock read and no timer-wheel work.
struct HeadClock {
    timeout: Duration,
    /// When the head being waited for is due; `None` while a request is in
    /// progress, and for good on an HTTP/2 connection after its first
    /// request.
    due: Cell<Option<Instant>>,
    /// Requests whose head arrived and whose response hyper still holds.
    open: Cell<usize>,
    /// An HTTP/2 request came: the clock stays stopped.
    off: Cell<bool>,
    /// When the clock was last started again, until the connection's task
    /// looks at it (see [`HeadClock::poll_expired`]).
    rearmed: Cell<Option<Instant>>,
}

impl HeadClock {
    /// A clock started now, at the accept.
    fn start(timeout: Duration) -> Rc<HeadClock> {
        Rc::new(HeadClock {
            timeout,
            due: Cell::new(Some(deadline_from(Instant::now(), timeout))),
            open: Cell::new(0),
            off: Cell::new(false),
            rearmed: Cell::new(None),
        })
    }

    /// A request head arrived: the clock stops until the returned guard (and
    /// every other request's) is dropped.
    fn head_arrived(self: &Rc<HeadClock>, version: Version) -> HeadGuard {
        if version == Version::HTTP_2 {
            self.off.set(true);
        }
        self.due.set(None);
        self.open.set(self.open.get() + 1);
        HeadGuard(Rc::clone(self))
    }

    /// Ready once the head being waited for is overdue.
    fn poll_expired(&self, timer: &mut HeadTimer, cx: &mut Context<'_>) -> Poll<()> {
        let rearmed = self.rearmed.take();
        let Some(due) = self.due.get() else {
            return Poll::Pending;
        };
        // The clock was started again at `at`, inside the poll of hyper
        // that just returned (`poll_connection` clears `rearmed` before
        // it), so no turn of the loop came in between. The timer's entry,
        // registered with this task at a deadline after `at`, cannot have
        // fired: the loop fires an entry only once its own clock reading,
        // which `at` follows, has reached the deadline. So the entry still
        // stands, at or before `due`, and nothing needs doing: the
        // per-request path.
        if timer.registered && rearmed.is_some_and(|at| at < timer.sleep.deadline()) {
            return Poll::Pending;
        }
        loop {
            match Pin::new(&mut timer.sleep).poll(cx) {
                Poll::Pending => {
                    timer.registered = true;
                    return Poll::Pending;
                }
                Poll::Ready(()) => {
                    timer.registered = false;
                    // `due` only ever moves later; an earlier deadline
                    // that fired means: wait on for the current one.
                    if timer.sleep.deadline() >= due {
                        return Poll::Ready(());
                    }
                    timer.sleep.reset(due);
                }
            }
        }
    }
}

/// The connection's one sleep for its [`HeadClock`]. It is moved on only
/// when it fires: a deadline reached that is not the clock's current one
/// (a request came and went since) is reset to the current one. So the
/// wheel sees one entry per connection and per timeout's length, however
/// many requests pass.
struct HeadTimer {
    sleep: percore::time::Sleep,
    /// The sleep was polled and is waiting: its entry is in the wheel.
    registered: bool,
}

impl HeadTimer {
    fn new(clock: &HeadClock) -> Option<HeadTimer> {
        Some(HeadTimer {
            sleep: percore::time::sleep_until(clock.due.get()?),
            registered: false,
        })
    }
}

/// `timeout` after `now`; a timeout too long for `Instant` never comes.
fn deadline_from(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Held by a request's response (its future, then its body) until hyper is
/// done with it; the last one dropped starts the clock for the next head.
struct HeadGuard(Rc<HeadClock>);

impl Drop for HeadGuard {
    fn drop(&mut self) {
        let clock = &self.0;
        let open = clock.open.get() - 1;
        clock.open.set(open);
        if open == 0 && !clock.off.get() {
            let now = Instant::now();
            clock.due.set(Some(deadline_from(now, clock.timeout)));
            clock.rearmed.set(Some(now));
        }
    }
}

/// The connection's service: `inner`, with the header read clock stopped
/// for each request it is called with (see [`HeadClock`]).
struct HeadTimed<S> {
    inner: S,
    clock: Option<Rc<HeadClock>>,
}

impl<S, B> ::hyper::service::Service<Request<Incoming>> for HeadTimed<S>
where
    S: ::hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<HeadTimedBody<B>>;
    type Error = S::Error;
    type Future = HeadTimedFuture<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = self.clock.as_ref().map(|c| c.head_arrived(req.version()));
        HeadTimedFuture {
            inner: self.inner.call(req),
            guard,
        }
    }
}

pin_project_lite::pin_project! {
    /// A response future that hands its request's [`HeadGuard`] on to the
    /// response body.
    struct HeadTimedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<HeadGuard>,
    }
}

impl<F, B, E> Future for HeadTimedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<HeadTimedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(res.map(|r| {
            r.map(|inner| HeadTimedBody {
                inner,
                _guard: guard,
            })
        }))
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its request's [`HeadGuard`]: dropped when
    /// hyper has written the body out (or given up on it).
    struct HeadTimedBody<B> {
        #[pin]
        inner: B,
        _guard: Option<HeadGuard>,
    }
}

impl<B: Body> Body for HeadTimedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
