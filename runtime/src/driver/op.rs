//! The op trait and the futures that drive one operation through the ring.
//!
//! An op is a struct that owns everything the kernel may read or write until
//! its completion arrives (buffer, fd handle, path, iovecs, sockaddr). The
//! future [`Op`] submits it on first poll, parks the task until the CQE comes,
//! then hands the op back to [`OpCode::complete`]. Dropping the future while
//! the op is in flight moves the op into the driver's slot, so its resources
//! live until the kernel is done with them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use io_uring::squeue;

use super::{with_driver, with_ring};

/// What one completion queue entry says about an op.
///
/// # Examples
///
/// ```
/// use percore::op::{CqeResult, Nop, OpCode};
///
/// // An op's `complete` turns the CQE into its output.
/// let ok = CqeResult { result: Ok(0), flags: 0 };
/// assert!(Nop.complete(ok).is_ok());
/// let cancelled = CqeResult {
///     result: Err(std::io::Error::from_raw_os_error(libc::ECANCELED)),
///     flags: 0,
/// };
/// assert_eq!(Nop.complete(cancelled).unwrap_err().raw_os_error(), Some(libc::ECANCELED));
/// ```
#[derive(Debug)]
pub struct CqeResult {
    /// The result: a non-negative count or value, or the errno as an `io::Error`.
    pub result: io::Result<u32>,
    /// The CQE flags (`IORING_CQE_F_MORE`, `IORING_CQE_F_BUFFER`, ...).
    pub flags: u32,
}

impl CqeResult {
    /// Converts the raw `res` and `flags` of a CQE; the one place an errno becomes an `io::Error`.
    pub(crate) fn new(res: i32, flags: u32) -> CqeResult {
        let result = if res >= 0 {
            Ok(res as u32)
        } else {
            Err(io::Error::from_raw_os_error(-res))
        };
        CqeResult { result, flags }
    }
}

/// An operation the ring can perform.
///
/// # Safety
///
/// - Every pointer that `create_entry` writes into the SQE (buffers, iovecs,
///   paths, sockaddrs) must point into memory owned by `self` through its own
///   heap allocation, so it stays valid when `self` is moved, and stays valid
///   until `complete` or `abandon` runs or `self` is dropped after the CQE.
/// - The SQE must not reference memory that `self` does not keep alive.
///
/// # Examples
///
/// ```
/// use io_uring::{opcode, squeue};
/// use percore::op::{CqeResult, Op, OpCode};
///
/// /// `IORING_OP_NOP`, written out: it owns nothing, so the contract holds.
/// struct MyNop;
///
/// // SAFETY: the SQE points into no memory at all.
/// unsafe impl OpCode for MyNop {
///     type Output = std::io::Result<u32>;
///     fn create_entry(&mut self) -> squeue::Entry {
///         opcode::Nop::new().build()
///     }
///     fn complete(self, cqe: CqeResult) -> Self::Output {
///         cqe.result
///     }
/// }
///
/// percore::run(async {
///     assert_eq!(Op::new(MyNop).await.unwrap(), 0);
/// });
/// ```
pub unsafe trait OpCode: 'static {
    /// What the op returns to the awaiting task.
    type Output;

    /// Builds the submission queue entry. `user_data` is set by the driver.
    fn create_entry(&mut self) -> squeue::Entry;

    /// Consumes the op with its completion and returns the output, usually
    /// `(io::Result<T>, buffer)`.
    fn complete(self, cqe: CqeResult) -> Self::Output;

    /// Called instead of `complete` when the CQE arrives after the future was
    /// dropped: release what the kernel created (an accepted or opened fd), so
    /// nothing leaks. The default releases nothing.
    fn abandon(&mut self, cqe: CqeResult) {
        let _ = cqe;
    }
}

/// A type-erased op that nobody awaits any more; it lives in its slot until the kernel is done.
pub(crate) trait Abandoned {
    fn on_cqe(&mut self, cqe: CqeResult);
}

impl<T: OpCode> Abandoned for T {
    fn on_cqe(&mut self, cqe: CqeResult) {
        self.abandon(cqe);
    }
}

/// A future that runs one op through the ring.
///
/// Created by the I/O methods of percore (`File::read_at`, `TcpStream::read`, ...)
/// and by [`Op::new`] for code that builds its own [`OpCode`].
///
/// # Cancellation
///
/// Dropping an `Op` that was submitted keeps its resources alive inside the
/// driver until the kernel posts the completion, and asks the kernel to cancel
/// it. [`Op::cancel`] asks for cancellation but keeps the future, so awaiting it
/// still returns the op's output: a read that completed before the cancel took
/// effect returns its bytes, and the buffer always comes back.
///
/// # Examples
///
/// ```
/// use percore::op::{Nop, Op};
///
/// percore::run(async {
///     let res = Op::new(Nop).await;
///     assert!(res.is_ok());
/// });
/// ```
#[must_use = "an op does nothing until it is awaited"]
pub struct Op<T: OpCode> {
    data: Option<T>,
    state: State,
    /// A kernel-side deadline linked to the op (`IORING_OP_LINK_TIMEOUT`).
    timeout: Option<std::time::Duration>,
    cancel_requested: bool,
    /// Hand the SQE to the kernel when first polled, not at the end of the tick.
    submit_now: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Not yet submitted: nothing to cancel if dropped.
    Idle,
    /// Submitted under this slot index, on the ring with this driver id.
    Submitted(usize, u64),
    /// Cancel requested before the op was ever submitted.
    CancelledIdle,
    /// Output handed out.
    Done,
}

impl<T: OpCode> Op<T> {
    /// Wraps an op; it is submitted when first polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Nop, Op};
    ///
    /// percore::run(async {
    ///     let op = Op::new(Nop); // nothing is submitted until it is awaited
    ///     op.await.unwrap();
    /// });
    /// ```
    pub fn new(data: T) -> Op<T> {
        Op {
            data: Some(data),
            state: State::Idle,
            timeout: None,
            cancel_requested: false,
            submit_now: false,
        }
    }

    /// Hands the op to the kernel as soon as it is first polled, in an
    /// `io_uring_enter` of its own, instead of with the rest of the tick's
    /// submissions at the end of the tick.
    ///
    /// For ops a device serves (`O_DIRECT` reads and writes, fsync) the
    /// device starts on each request as soon as it exists and keeps a steady
    /// queue, where a tick's batch reaches it, and then completes, in bursts:
    /// on a virtio disk at queue depth 32 that is about 15 % more IOPS, for
    /// about 1.3 times the CPU per op. Network and page-cache ops are better
    /// batched. [`File`](crate::fs::File)s use it for `O_DIRECT` and for
    /// reads that miss the page cache, see
    /// [`OpenOptions::submit_now`](crate::fs::OpenOptions::submit_now).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Nop, Op};
    ///
    /// percore::run(async {
    ///     Op::new(Nop).submit_now().await.unwrap();
    /// });
    /// ```
    pub fn submit_now(mut self) -> Op<T> {
        self.submit_now = true;
        self
    }

    /// Gives the op a deadline enforced by the kernel: the op's SQE is linked
    /// to an `IORING_OP_LINK_TIMEOUT`, and if it has not completed after
    /// `timeout` the kernel cancels it and the op returns an error of kind
    /// `TimedOut` (`ETIMEDOUT`) — with its buffer, as always. Costs one extra
    /// SQE and no timer on the core. Must be set before the first poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Read, CURRENT_POSITION};
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap(); // nothing is ever written
    ///     let fd = SharedFd::new(reader.into());
    ///     let read = Read::new(fd, Vec::with_capacity(8), CURRENT_POSITION);
    ///     let (res, buf) = Op::new(read).timeout(Duration::from_millis(5)).await;
    ///     assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    ///     assert_eq!(buf.capacity(), 8);
    /// });
    /// ```
    pub fn timeout(mut self, timeout: std::time::Duration) -> Op<T> {
        self.timeout = Some(timeout);
        self
    }

    /// Asks the kernel to cancel the op, but keeps it: awaiting the `Op`
    /// afterwards returns its output with `ECANCELED` if the cancel won, or the
    /// real result if the op completed first. An op that was never polled is
    /// not submitted at all and completes with `ECANCELED` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Op, PollAdd};
    /// use std::os::fd::AsRawFd;
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     let mut op = Op::new(PollAdd::new(reader.as_raw_fd(), libc::POLLIN as u32));
    ///     // Poll it once so it is in flight, then cancel and collect the result.
    ///     let _ = percore::time::timeout(std::time::Duration::from_millis(5), &mut op).await;
    ///     op.cancel();
    ///     let res = op.await;
    ///     assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    /// });
    /// ```
    pub fn cancel(&mut self) {
        self.cancel_requested = true;
        match self.state {
            State::Idle => self.state = State::CancelledIdle,
            State::Submitted(idx, ring) => with_ring(ring, |d| d.cancel(idx)),
            State::CancelledIdle | State::Done => {}
        }
    }
}

impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        match this.state {
            State::Idle => {
                let data = this.data.as_mut().expect("op polled after completion");
                let sqe = data.create_entry();
                let waker = cx.waker().clone();
                let timeout = this.timeout;
                // The submission is queued whole or not at all (it panics
                // before queuing anything if the ring fails), and the state
                // records it at once: from here the future's drop hands the
                // op to its slot, so the SQE never outlives what it points to.
                this.state = with_driver(|d| {
                    let idx = match timeout {
                        Some(t) => d.submit_with_timeout(sqe, waker, t),
                        None => d.submit(sqe, waker),
                    };
                    State::Submitted(idx, d.id())
                });
                if this.submit_now {
                    with_driver(|d| d.flush_queued());
                }
                Poll::Pending
            }
            State::Submitted(idx, ring) => match with_ring(ring, |d| d.poll_op(idx, cx)) {
                Poll::Ready(mut cqe) => {
                    this.state = State::Done;
                    // Cancelled by its linked timeout, not by the caller.
                    let timed_out = this.timeout.is_some()
                        && !this.cancel_requested
                        && matches!(&cqe.result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED));
                    if timed_out {
                        cqe.result = Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
                    }
                    let data = this.data.take().expect("op data present until done");
                    Poll::Ready(data.complete(cqe))
                }
                Poll::Pending => Poll::Pending,
            },
            State::CancelledIdle => {
                this.state = State::Done;
                let data = this.data.take().expect("op data present until done");
                let cqe = CqeResult::new(-libc::ECANCELED, 0);
                Poll::Ready(data.complete(cqe))
            }
            State::Done => panic!("op polled after completion"),
        }
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::Submitted(idx, ring) = self.state {
            let data = self.data.take().expect("op data present while submitted");
            super::abandon(idx, ring, Box::new(data));
        }
    }
}

/// A multishot op: one submission, many completions (multishot accept, recv,
/// poll). The slot lives until a CQE without `IORING_CQE_F_MORE` arrives.
///
/// Use it through [`MultishotOp::next`], which yields each completion in
/// order. The final one has no `IORING_CQE_F_MORE` (and [`MultishotOp::is_armed`]
/// turns false); polling again after it submits the op anew.
///
/// # Cancellation
///
/// Dropping it asks the kernel to cancel; the op (and any resources, such as a
/// provided-buffer ring) stays alive until the final completion, and every
/// completion that arrives meanwhile goes to [`OpCode::abandon`].
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{AcceptMulti, MultishotOp};
///
/// percore::run(async {
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
///     let _a = std::net::TcpStream::connect(addr).unwrap();
///     let _b = std::net::TcpStream::connect(addr).unwrap();
///     for _ in 0..2 {
///         // One submission, one completion per connection.
///         let cqe = accepts.next().await.unwrap();
///         let socket = AcceptMulti::socket(cqe).unwrap();
///         drop(socket);
///     }
/// });
/// ```
pub struct MultishotOp<T: OpCode> {
    data: Option<T>,
    state: State,
}

impl<T: OpCode> MultishotOp<T> {
    /// Wraps a multishot op; it is submitted when first polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     assert!(!accepts.is_armed()); // submitted on first poll
    /// });
    /// ```
    pub fn new(data: T) -> MultishotOp<T> {
        MultishotOp {
            data: Some(data),
            state: State::Idle,
        }
    }

    /// The op's own data (for example to recycle a provided buffer).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    /// let _op: &AcceptMulti = accepts.data();
    /// ```
    pub fn data(&self) -> &T {
        self.data
            .as_ref()
            .expect("multishot data present until drop")
    }

    /// The op's own data, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    /// let _op: &mut AcceptMulti = accepts.data_mut();
    /// ```
    pub fn data_mut(&mut self) -> &mut T {
        self.data
            .as_mut()
            .expect("multishot data present until drop")
    }

    /// Polls for the next completion. After the final one (no
    /// `IORING_CQE_F_MORE`) the next poll re-arms the op; `None` comes only
    /// from an op cancelled before it was ever submitted.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Poll;
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     let cqe = std::future::poll_fn(|cx| match accepts.poll_next(cx) {
    ///         Poll::Ready(cqe) => Poll::Ready(cqe),
    ///         Poll::Pending => Poll::Pending,
    ///     })
    ///     .await
    ///     .unwrap();
    ///     assert!(AcceptMulti::socket(cqe).is_ok());
    /// });
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<CqeResult>> {
        loop {
            match self.state {
                State::Idle => {
                    let sqe = self.data_mut().create_entry();
                    self.state = with_driver(|d| {
                        State::Submitted(d.submit_multishot(sqe, cx.waker().clone()), d.id())
                    });
                    return Poll::Pending;
                }
                State::Submitted(idx, ring) => {
                    return match with_ring(ring, |d| d.poll_multishot(idx, cx)) {
                        Poll::Ready(Some((cqe, last))) => {
                            if last {
                                self.state = State::Done;
                            }
                            Poll::Ready(Some(cqe))
                        }
                        Poll::Ready(None) => {
                            self.state = State::Done;
                            Poll::Ready(None)
                        }
                        Poll::Pending => Poll::Pending,
                    };
                }
                State::CancelledIdle => {
                    self.state = State::Done;
                    return Poll::Ready(None);
                }
                State::Done => {
                    // Re-arm: a multishot op ends on its own (e.g. ENOBUFS, or
                    // the CQ filled up); the caller decides whether to go on.
                    self.state = State::Idle;
                    continue;
                }
            }
        }
    }

    /// Waits for the next completion; see [`MultishotOp::poll_next`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     let cqe = accepts.next().await.unwrap();
    ///     assert!(AcceptMulti::socket(cqe).is_ok());
    /// });
    /// ```
    pub async fn next(&mut self) -> Option<CqeResult> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Whether the op is armed in the kernel now.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     accepts.next().await.unwrap();
    ///     assert!(accepts.is_armed()); // still accepting
    /// });
    /// ```
    pub fn is_armed(&self) -> bool {
        matches!(self.state, State::Submitted(..))
    }

    /// Asks the kernel to stop the op; remaining completions still arrive
    /// through `next`, the last one without `IORING_CQE_F_MORE`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{AcceptMulti, MultishotOp};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     accepts.next().await.unwrap();
    ///     accepts.cancel();
    ///     // Completions end with ECANCELED, and then the op is no longer armed.
    ///     while accepts.is_armed() {
    ///         if let Some(cqe) = accepts.next().await {
    ///             let _ = AcceptMulti::socket(cqe);
    ///         }
    ///     }
    /// });
    /// ```
    pub fn cancel(&mut self) {
        match self.state {
            State::Idle => self.state = State::CancelledIdle,
            State::Submitted(idx, ring) => with_ring(ring, |d| d.cancel(idx)),
            State::CancelledIdle | State::Done => {}
        }
    }
}

impl<T: OpCode> Drop for MultishotOp<T> {
    fn drop(&mut self) {
        if let State::Submitted(idx, ring) = self.state {
            // The kernel may still post completions that use the op's
            // resources: move the op into its slot until the last one.
            let data = self
                .data
                .take()
                .expect("multishot data present while armed");
            super::abandon(idx, ring, Box::new(data));
        }
    }
}
