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

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ::hyper::rt::Sleep;
use slab::Slab;

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
/// hyper requires its sleeps to be `Send + Sync`, and percore's are tied to
/// the core that polls them. So the boxed sleep holds only its deadline; the
/// percore [`Sleep`](percore::time::Sleep) behind it lives in a table of the
/// thread that first polls it. Poll it on that thread only (hyper on percore
/// does: a connection never leaves its core); polling it from another thread
/// panics.
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
        Box::pin(TimerSleep {
            deadline,
            entry: None,
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<TimerSleep>() {
            Some(s) => s.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

thread_local! {
    /// The percore sleeps behind this thread's hyper sleeps.
    static SLEEPS: RefCell<Slab<percore::time::Sleep>> = const { RefCell::new(Slab::new()) };
}

/// A hyper sleep: a deadline, plus the key of its percore sleep in
/// `SLEEPS` of the thread that polled it first.
struct TimerSleep {
    deadline: Instant,
    entry: Option<(ThreadId, usize)>,
}

impl TimerSleep {
    /// The key of this sleep's percore sleep, made on first use.
    fn key(&mut self) -> usize {
        let here = std::thread::current().id();
        match self.entry {
            Some((thread, key)) => {
                assert_eq!(
                    thread, here,
                    "a percore hyper sleep was polled on another thread than the one it started on"
                );
                key
            }
            None => {
                let sleep = percore::time::sleep_until(self.deadline);
                let key = SLEEPS.with(|s| s.borrow_mut().insert(sleep));
                self.entry = Some((here, key));
                key
            }
        }
    }

    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if self.entry.is_some() {
            let key = self.key();
            SLEEPS.with(|s| s.borrow_mut()[key].reset(deadline));
        }
    }
}

impl Future for TimerSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let key = this.key();
        SLEEPS.with(|s| Pin::new(&mut s.borrow_mut()[key]).poll(cx))
    }
}

impl Sleep for TimerSleep {}

impl Drop for TimerSleep {
    fn drop(&mut self) {
        let Some((thread, key)) = self.entry else {
            return;
        };
        // Dropped on another thread (hyper on percore never does that): the
        // entry stays in its thread's table until that thread ends.
        if thread == std::thread::current().id() {
            // `try_with`: the table may already be gone at thread exit.
            let sleep = SLEEPS.try_with(|s| s.borrow_mut().try_remove(key));
            drop(sleep);
        }
    }
}
