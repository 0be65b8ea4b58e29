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
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ::hyper::rt::Sleep;

use crate::CoreBound;

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
/// the core that made them; so each is bound to its core like a
/// [`CoreBound`]: made, polled and dropped on the connection's core (hyper
/// on percore does all three there, as a connection never leaves its core).
/// Polling it on another thread panics.
///
/// The sleep an HTTP/1 connection keeps for its header read timeout is made
/// and dropped once per request (hyper drops it when the head is in). So a
/// sleep dropped before its deadline leaves its wheel entry armed for the
/// core's next sleep to take over ([`sleep_until`](::hyper::rt::Timer::sleep_until)
/// with a deadline no earlier than the entry's): the entry may fire before
/// the new deadline, and is then moved to it. A request then costs no wheel
/// insertion nor removal, only a change of the entry's waker; the timeout
/// is still checked against its exact deadline.
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
        Box::pin(TimerSleep::new(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<TimerSleep>() {
            Some(s) => s.get_mut().reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// Armed wheel entries of this thread's dropped [`TimerSleep`]s, latest
/// last, for the next sleep to take over.
struct Spare(RefCell<Vec<percore::time::Sleep>>);

thread_local! {
    static SPARE: Spare = const { Spare(RefCell::new(Vec::new())) };
}

/// At most this many spare entries per thread: a burst of connections that
/// close leaves no more than this in the wheel until they are due.
const MAX_SPARE: usize = 256;

impl Spare {
    /// The latest spare entry, if it is due no later than `deadline`.
    fn take(deadline: Instant) -> Option<percore::time::Sleep> {
        SPARE
            .try_with(|spare| {
                let mut spare = spare.0.borrow_mut();
                match spare.last() {
                    Some(entry) if entry.deadline() <= deadline => spare.pop(),
                    _ => None,
                }
            })
            .ok()
            .flatten()
    }

    /// Keeps `entry` (armed, not yet due) for a later sleep; dropped (out
    /// of the wheel) when there are enough. It keeps the waker of the task
    /// that polled it last: most often the connection that takes it back
    /// for its next request (the same waker, so nothing to update), else
    /// the task gets one spurious wake-up when the entry is due, or none
    /// if another sleep takes the entry over first.
    fn keep(entry: percore::time::Sleep) {
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.0.borrow_mut();
            if spare.len() < MAX_SPARE {
                spare.push(entry);
            }
        });
    }
}

/// A hyper sleep: a wheel entry due at or before `deadline` (its own, or a
/// spare one), bound to the thread that made it.
struct TimerSleep {
    entry: Option<CoreBound<percore::time::Sleep>>,
    deadline: Instant,
    /// The entry is in the wheel (polled, or taken over armed).
    armed: bool,
}

impl TimerSleep {
    fn new(deadline: Instant) -> TimerSleep {
        let (entry, armed) = match Spare::take(deadline) {
            Some(entry) => (entry, true),
            None => (percore::time::sleep_until(deadline), false),
        };
        TimerSleep {
            entry: Some(CoreBound::new(entry)),
            deadline,
            armed,
        }
    }

    fn entry(&mut self) -> &mut percore::time::Sleep {
        self.entry
            .as_mut()
            .expect("a TimerSleep has its entry until dropped")
    }

    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        // An entry due later than the new deadline would fire late; one due
        // earlier is moved when it fires.
        if self.entry().deadline() > deadline {
            self.entry().reset(deadline);
        }
    }
}

impl Future for TimerSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.armed = true;
        let deadline = this.deadline;
        let entry = this.entry();
        loop {
            ready!(Pin::new(&mut *entry).poll(cx));
            // The entry fired, at its deadline: ours, or an earlier one of
            // a spare entry, which is then moved to ours.
            if entry.deadline() >= deadline || Instant::now() >= deadline {
                return Poll::Ready(());
            }
            entry.reset(deadline);
        }
    }
}

impl Sleep for TimerSleep {}

impl Drop for TimerSleep {
    fn drop(&mut self) {
        let Some(entry) = self.entry.take() else {
            return;
        };
        // Elsewhere the wrapper's own drop reports the misuse.
        if self.armed && entry.is_local() && !entry.is_elapsed() {
            Spare::keep(entry.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use ::hyper::rt::Timer as _;

    use super::*;

    fn spare_len() -> usize {
        SPARE.with(|s| s.0.borrow().len())
    }

    /// Polls `sleep` once: it is then in the wheel, as hyper's header
    /// timer is while it waits for the next request.
    async fn arm(sleep: &mut Pin<Box<dyn Sleep>>) {
        let pending = poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx).is_pending())).await;
        assert!(pending, "not due yet");
    }

    /// Leaves a spare entry due in `duration`: a sleep armed, then dropped.
    async fn leave_spare(duration: Duration) {
        let mut sleep = Timer.sleep(duration);
        arm(&mut sleep).await;
        drop(sleep);
        assert_eq!(spare_len(), 1);
    }

    /// The per-request path: a sleep dropped before its deadline leaves its
    /// entry for the next, which takes it over instead of adding its own.
    #[test]
    fn the_next_sleep_takes_over_the_entry_of_a_dropped_one() {
        percore::run(async {
            let mut first = Timer.sleep(Duration::from_secs(30));
            arm(&mut first).await;
            let timers = percore::stats().timers;
            drop(first);
            assert_eq!(spare_len(), 1);
            assert_eq!(
                percore::stats().timers,
                timers,
                "the entry stays in the wheel"
            );
            let mut second = Timer.sleep(Duration::from_secs(30));
            assert_eq!(spare_len(), 0, "taken over");
            arm(&mut second).await;
            assert_eq!(percore::stats().timers, timers, "and no entry added");
        });
    }

    /// A spare entry due before the new deadline fires early; the sleep
    /// then moves it and goes on waiting: it never ends before its own
    /// deadline.
    #[test]
    fn a_sleep_on_an_earlier_spare_entry_waits_for_its_own_deadline() {
        percore::run(async {
            leave_spare(Duration::from_millis(5)).await;
            let deadline = Instant::now() + Duration::from_millis(60);
            let late = Timer.sleep_until(deadline);
            assert_eq!(spare_len(), 0, "took the 5 ms entry");
            late.await;
            assert!(Instant::now() >= deadline);
        });
    }

    /// A spare entry due after the new deadline would fire late: it is
    /// left alone, and the sleep gets an entry of its own.
    #[test]
    fn a_sleep_never_takes_a_later_spare_entry() {
        percore::run(async {
            leave_spare(Duration::from_secs(3600)).await;
            let near = Timer.sleep(Duration::from_millis(5));
            assert_eq!(spare_len(), 1, "the hour-long entry stays spare");
            let done = percore::time::timeout(Duration::from_secs(20), near).await;
            assert!(done.is_ok(), "the 5 ms sleep ended");
        });
    }

    /// hyper moves a sleep's deadline with `reset`: earlier moves its entry
    /// (it would fire late), later leaves it to be moved when it fires.
    #[test]
    fn reset_to_an_earlier_deadline_fires_then() {
        percore::run(async {
            let mut sleep = Timer.sleep(Duration::from_secs(3600));
            arm(&mut sleep).await;
            Timer.reset(&mut sleep, Instant::now() + Duration::from_millis(5));
            let done = percore::time::timeout(Duration::from_secs(20), sleep).await;
            assert!(done.is_ok(), "fired at the new deadline, not in an hour");
        });
    }
}
