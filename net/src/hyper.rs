//! hyper 1.x on percore: an [`Executor`], a [`Timer`], and the
//! `hyper::rt::{Read, Write}` traits on [`Compat`](crate::compat::Compat).
//!
//! hyper needs three things from a runtime: I/O through its own
//! `hyper::rt::{Read, Write}` traits, an executor for its background tasks
//! (HTTP/2 streams, client connections) and a timer (header read timeout,
//! keep-alive, HTTP/2 pings). percore gives each:
//!
//! - **I/O**: `Compat<TcpStream>` implements `hyper::rt::{Read, Write}`
//!   directly, on the same buffers as the tokio adapter. Going through
//!   `tokio::io` and hyper-util's `TokioIo` instead would add a dependency
//!   (hyper-util) and one more poll layer for nothing: `Compat` already owns
//!   the buffers either path needs, so the direct impl is the cheaper one.
//!   Writes are vectored (`is_write_vectored` is true), so hyper hands over
//!   headers and body without flattening them into a buffer of its own.
//! - [`Executor`] spawns on the current core with [`percore::spawn`]: the
//!   futures need not be `Send`, which hyper allows.
//! - [`Timer`] uses [`percore::time`]'s wheel.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::{Request, Response};
//! use percore_net::compat::Compat;
//! use percore_net::hyper::{Executor, Timer};
//! use percore_net::{TcpListener, TcpStream};
//!
//! percore::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     percore::spawn(async move {
//!         let (conn, _) = listener.accept().await.unwrap();
//!         let service = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi"))))
//!         });
//!         hyper::server::conn::http1::Builder::new()
//!             .timer(Timer)
//!             .serve_connection(Compat::new(conn), service)
//!             .await
//!             .unwrap();
//!     });
//!
//!     let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
//!     let (mut sender, connection) = hyper::client::conn::http1::handshake(conn).await.unwrap();
//!     percore::spawn(connection);
//!     let req = Request::get("/").header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
//!     let res = sender.send_request(req).await.unwrap();
//!     let body = res.into_body().collect().await.unwrap().to_bytes();
//!     assert_eq!(body, "hi");
//! #   let _ = Executor;
//! });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::hyper::rt::Sleep;

/// Runs hyper's background tasks on the current core with
/// [`percore::spawn`]; the futures need not be `Send`.
///
/// Give it to builders that take an executor: the HTTP/2 server and client
/// (`hyper::server::conn::http2::Builder::new(Executor)`). HTTP/1 needs none.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use hyper::rt::Executor as _;
///
/// percore::run(async {
///     let (tx, mut rx) = percore::channel::channel(1);
///     let not_send = Rc::new(7);
///     percore_net::hyper::Executor.execute(async move { tx.send(*not_send).await.unwrap() });
///     assert_eq!(rx.recv().await, Some(7));
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> ::hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        // Dropping the handle detaches the task: it runs to completion.
        drop(percore::spawn(fut));
    }
}

/// hyper's timer on the current core's timer wheel ([`percore::time`]).
///
/// hyper requires its sleeps to be `Send + Sync`; a percore
/// [`Sleep`](percore::time::Sleep) is both (it holds a deadline and a key
/// into the wheel of the core it registered on, never a pointer into it),
/// so hyper's sleep is one, boxed as hyper asks, with no wrapper: it
/// registers on the core that polls it (the connection's), and dropped
/// before its deadline it leaves that wheel in O(1). Outside a percore
/// runtime, polling it panics.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use hyper::rt::Timer as _;
///
/// percore::run(async {
///     let start = Instant::now();
///     percore_net::hyper::Timer.sleep(Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

impl ::hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        // A duration too long for `Instant` (hyper uses none, but a user
        // might) becomes a deadline that is never reached in practice.
        let now = Instant::now();
        let deadline = now
            .checked_add(duration)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        self.sleep_until(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(TimerSleep(percore::time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<TimerSleep>() {
            Some(s) => s.get_mut().0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A hyper sleep: a percore sleep. It costs hyper's header-read timer, made
/// for every request head, one allocation and no wheel work until a read
/// is pending: the wheel entry is made on first poll (reading no clock for
/// a deadline a second or more away) and removed in O(1) on drop.
struct TimerSleep(percore::time::Sleep);

impl Future for TimerSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl Sleep for TimerSleep {}
