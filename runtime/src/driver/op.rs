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
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use io_uring::squeue;

use std::rc::Rc;

use super::{
    DirectDone, DirectWait, Started, StartedMulti, try_with_driver, with_driver, with_ring,
};
use crate::buf::{BufPool, ProvidedBuf};
use std::os::fd::RawFd;

/// What one completion queue entry says about an op.
///
/// Only the driver makes one, from a CQE the kernel posted (or, for an op
/// cancelled before it was ever submitted, as `ECANCELED` with no flags), and
/// hands it to the op it belongs to. It cannot be built, copied or cloned
/// outside percore, so a buffer id or a descriptor number it carries is one
/// the kernel really handed to that op, exactly once.
///
/// # Examples
///
/// An op reads its completion in [`OpCode::complete`]:
///
/// ```
/// use io_uring::{opcode, squeue};
/// use percore::op::{CqeResult, Op, OpCode};
///
/// struct MyNop;
///
/// // SAFETY: the SQE points into no memory at all.
/// unsafe impl OpCode for MyNop {
///     type Output = (std::io::Result<u32>, u32);
///     fn create_entry(&mut self) -> squeue::Entry {
///         opcode::Nop::new().build()
///     }
///     unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
///         let flags = cqe.flags();
///         (cqe.into_result(), flags)
///     }
/// }
///
/// percore::run(async {
///     let (res, flags) = Op::new(MyNop).await;
///     assert_eq!((res.unwrap(), flags), (0, 0));
/// });
/// ```
///
/// Safe code cannot make one up (here, to pass it to an op's `complete`):
///
/// ```compile_fail,E0451
/// use percore::op::CqeResult;
///
/// let forged = CqeResult { result: Ok(0), flags: 0 };
/// ```
#[derive(Debug)]
pub struct CqeResult {
    /// The result: a non-negative count or value, or the errno as an `io::Error`.
    pub(crate) result: io::Result<u32>,
    /// The CQE flags (`IORING_CQE_F_MORE`, `IORING_CQE_F_BUFFER`, ...).
    pub(crate) flags: u32,
    /// Where the data starts inside the provided buffer the CQE names
    /// (incrementally consumed rings), as the driver counted it when it
    /// reaped the CQE; 0 otherwise.
    pub(crate) buf_offset: u32,
}

impl CqeResult {
    /// Converts the raw `res` and `flags` of a CQE; the one place an errno becomes an `io::Error`.
    pub(crate) fn new(res: i32, flags: u32) -> CqeResult {
        let result = if res >= 0 {
            Ok(res as u32)
        } else {
            Err(io::Error::from_raw_os_error(-res))
        };
        CqeResult {
            result,
            flags,
            buf_offset: 0,
        }
    }

    /// The result: a non-negative count or value, or the errno as an `io::Error`.
    ///
    /// # Examples
    ///
    /// See [`CqeResult`].
    pub fn result(&self) -> &io::Result<u32> {
        &self.result
    }

    /// Takes the result out, consuming the completion.
    ///
    /// # Examples
    ///
    /// See [`CqeResult`].
    pub fn into_result(self) -> io::Result<u32> {
        self.result
    }

    /// The CQE flags (`IORING_CQE_F_MORE`, `IORING_CQE_F_BUFFER`, ...).
    ///
    /// # Examples
    ///
    /// See [`CqeResult`].
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// An operation the ring can perform, with one result.
///
/// An SQE that posts many completions (multishot accept, recv, poll) is a
/// [`MultishotOpCode`] instead, run by [`MultishotOp`]; `Op` keeps one result.
///
/// # Safety
///
/// - Every pointer that `create_entry` writes into the SQE (buffers, iovecs,
///   paths, sockaddrs) must point into memory owned by `self` through its own
///   heap allocation, so it stays valid when `self` is moved, and stays valid
///   until `complete` or `abandon` runs or `self` is dropped after the CQE.
/// - The SQE must not reference memory that `self` does not keep alive, and
///   must name only descriptors that `self` keeps open (a
///   [`SharedFd`](crate::fd::SharedFd) clone, an `OwnedFd`) and only buffer
///   groups of a [`BufRing`](crate::buf::BufRing) it holds a clone of.
/// - The SQE posts one completion, or one flagged `IORING_CQE_F_MORE` and
///   then a final notification (send_zc); never a multishot stream.
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
/// // SAFETY: the SQE points into no memory at all and posts one completion.
/// unsafe impl OpCode for MyNop {
///     type Output = std::io::Result<u32>;
///     fn create_entry(&mut self) -> squeue::Entry {
///         opcode::Nop::new().build()
///     }
///     unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
///         cqe.into_result()
///     }
/// }
///
/// percore::run(async {
///     assert_eq!(Op::new(MyNop).await.unwrap(), 0);
/// });
/// ```
///
/// Only the driver calls `complete` and `abandon`: safe code cannot hand an
/// op a completion of its own choosing.
///
/// ```compile_fail,E0133
/// use percore::op::{CqeResult, Nop, OpCode};
///
/// fn forge(cqe: CqeResult) {
///     let _ = Nop.complete(cqe);
/// }
/// ```
pub unsafe trait OpCode: 'static {
    /// What the op returns to the awaiting task.
    type Output;

    /// Builds the submission queue entry. `user_data` is set by the driver.
    fn create_entry(&mut self) -> squeue::Entry;

    /// Consumes the op with its completion and returns the output, usually
    /// `(io::Result<T>, buffer)`.
    ///
    /// # Safety
    ///
    /// - `cqe` is the completion the kernel posted for the SQE this op's
    ///   `create_entry` built (for send_zc, the result flagged
    ///   `IORING_CQE_F_MORE`), with `ECANCELED` turned into `ETIMEDOUT` when
    ///   the op's linked timeout cancelled it; or, for an op that was never
    ///   submitted, `ECANCELED` with no flags.
    /// - Each completion is handed over once, to `complete` or `abandon`.
    unsafe fn complete(self, cqe: CqeResult) -> Self::Output;

    /// Called instead of `complete` when the CQE arrives after the future was
    /// dropped: release what the kernel created (an accepted or opened fd), so
    /// nothing leaks. The default releases nothing.
    ///
    /// # Safety
    ///
    /// As for [`OpCode::complete`].
    unsafe fn abandon(&mut self, cqe: CqeResult) {
        let _ = cqe;
    }
}

/// An operation whose one SQE posts a stream of completions (multishot
/// accept, recv, poll): every one but the last is flagged
/// `IORING_CQE_F_MORE`. Run it with [`MultishotOp`], which hands each
/// completion to `complete_next`; it cannot be run by [`Op`], which keeps a
/// single result.
///
/// # Safety
///
/// As for [`OpCode`]: every pointer in the SQE points into memory `self`
/// owns behind its own heap allocation, every descriptor it names is kept
/// open by `self`, and every buffer group it selects from belongs to a
/// [`BufRing`](crate::buf::BufRing) `self` holds a clone of, until the final
/// completion (the first without `IORING_CQE_F_MORE`) arrived or `self` is
/// dropped after it.
///
/// # Examples
///
/// A multishot poll of an eventfd, handing out the ready events:
///
/// ```
/// use io_uring::{opcode, squeue, types};
/// use percore::fd::SharedFd;
/// use percore::op::{CqeResult, MultishotOp, MultishotOpCode};
///
/// struct PollMulti(SharedFd);
///
/// // SAFETY: a poll references no memory; the op holds the fd open.
/// unsafe impl MultishotOpCode for PollMulti {
///     type Item = std::io::Result<u32>;
///     fn create_entry(&mut self) -> squeue::Entry {
///         opcode::PollAdd::new(types::Fd(self.0.raw_fd()), libc::POLLIN as u32)
///             .multi(true)
///             .build()
///     }
///     unsafe fn complete_next(&mut self, cqe: CqeResult) -> Self::Item {
///         cqe.into_result()
///     }
/// }
///
/// percore::run(async {
///     let (reader, mut writer) = std::io::pipe().unwrap();
///     std::io::Write::write_all(&mut writer, b"x").unwrap();
///     let mut polls = MultishotOp::new(PollMulti(SharedFd::new(reader.into())));
///     let events = polls.next().await.unwrap().unwrap();
///     assert!(events & libc::POLLIN as u32 != 0);
/// });
/// ```
///
/// A multishot op cannot be awaited as an [`Op`], which would keep only one
/// of its completions and lose the buffers and descriptors of the others:
///
/// ```compile_fail,E0277
/// use percore::fd::SharedFd;
/// use percore::op::{AcceptMulti, Op};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let _op = Op::new(AcceptMulti::new(SharedFd::new(listener.into())));
/// ```
pub unsafe trait MultishotOpCode: 'static {
    /// What one completion turns into for the caller of [`MultishotOp::next`].
    type Item;

    /// Builds the submission queue entry. `user_data` is set by the driver.
    fn create_entry(&mut self) -> squeue::Entry;

    /// Turns one completion into an item.
    ///
    /// # Safety
    ///
    /// - `cqe` is a completion the kernel posted for the SQE this op's
    ///   `create_entry` built last.
    /// - Each completion is handed over once, to `complete_next` or `abandon`.
    unsafe fn complete_next(&mut self, cqe: CqeResult) -> Self::Item;

    /// Called instead of `complete_next` for the completions that arrive
    /// after the [`MultishotOp`] was dropped: release what the kernel created
    /// (an accepted fd, a picked buffer). The default releases nothing.
    ///
    /// # Safety
    ///
    /// As for [`MultishotOpCode::complete_next`].
    unsafe fn abandon(&mut self, cqe: CqeResult) {
        let _ = cqe;
    }

    /// Turns data the epoll driver received for an on-demand receive
    /// (only `RecvMulti` has them) into an item. Nothing outside percore
    /// can make a [`DirectBuf`], so the default is never called.
    #[doc(hidden)]
    fn direct_item(&mut self, buf: DirectBuf) -> Option<Self::Item> {
        drop(buf);
        None
    }
}

/// Data the epoll driver received for an on-demand receive, already
/// accounted with its ring (see [`MultishotOpCode::direct_item`]). Only
/// percore makes one, and it cannot be named outside.
#[doc(hidden)]
pub struct DirectBuf(pub(crate) ProvidedBuf);

/// A type-erased op that nobody awaits any more; it lives in its slot until the kernel is done.
///
/// Only the driver calls `on_cqe`, with the completions of the op's own slot,
/// each once (a [`CqeResult`] is built only from a CQE and is moved, never
/// copied): that is what makes the calls to `abandon` below sound.
pub(crate) trait Abandoned {
    fn on_cqe(&mut self, cqe: CqeResult);
}

impl<T: OpCode> Abandoned for T {
    fn on_cqe(&mut self, cqe: CqeResult) {
        // SAFETY: the driver passes each completion of this op's slot here
        // once (see the trait).
        unsafe { self.abandon(cqe) };
    }
}

/// A multishot op in its slot after its [`MultishotOp`] was dropped.
struct AbandonedMulti<T>(T);

impl<T: MultishotOpCode> Abandoned for AbandonedMulti<T> {
    fn on_cqe(&mut self, cqe: CqeResult) {
        // SAFETY: as for single-shot ops above: each completion of this op's
        // slot, once.
        unsafe { self.0.abandon(cqe) };
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
    /// A multishot receive the epoll driver makes when polled: the op's
    /// `DirectWait` waits for `fd` to turn readable, on the driver with
    /// this id; nothing else of the op is in the driver.
    Direct { fd: i32, ring: u64 },
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
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, PollAdd};
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     let mut op = Op::new(PollAdd::new(SharedFd::new(reader.into()), libc::POLLIN as u32));
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
            State::CancelledIdle | State::Done | State::Direct { .. } => {}
        }
    }
}

impl<T: OpCode> Unpin for Op<T> {}

/// The waker to poll an [`Op`] with when no task waits for its completion
/// (a send whose caller has moved on and collects its result later): the
/// completion then wakes nothing, and the loop does not take a turn for it
/// (a plain [`Waker::noop`] wakes nothing too, but the loop cannot tell it
/// from a task's waker, so it would take that turn).
///
/// Poll the op again with the task's own waker to wait for it after all.
///
/// ```
/// use std::future::Future;
/// use std::pin::pin;
/// use std::task::Context;
/// use percore::op::{Nop, Op};
///
/// percore::run(async {
///     let mut op = pin!(Op::new(Nop));
///     // Queued (the epoll driver may finish it at once); its completion
///     // wakes nobody.
///     let mut idle = Context::from_waker(percore::op::unwaited());
///     if op.as_mut().poll(&mut idle).is_pending() {
///         // Later, a task that needs the result waits for it.
///         op.await.unwrap();
///     }
/// });
/// ```
pub fn unwaited() -> &'static Waker {
    &UNWAITED
}

/// Whether `waker` is [`unwaited`]'s: a `static`, so one address, unlike
/// `Waker::noop`, a constant that each crate may place anew.
pub(crate) fn is_unwaited(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &UNWAITED_VTABLE)
}

static UNWAITED_VTABLE: RawWakerVTable = RawWakerVTable::new(
    |_| RawWaker::new(std::ptr::null(), &UNWAITED_VTABLE),
    |_| {},
    |_| {},
    |_| {},
);

// SAFETY: the vtable's functions never read the data pointer (null), and
// wake, wake_by_ref and drop do nothing, so any use of the waker is sound;
// clone returns the same null pointer and vtable.
static UNWAITED: Waker =
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &UNWAITED_VTABLE)) };

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        match this.state {
            State::Idle => {
                let data = this.data.as_mut().expect("op polled after completion");
                let sqe = data.create_entry();
                let timeout = this.timeout;
                // The submission is queued whole or not at all (it panics
                // before queuing anything if the ring fails), and the state
                // records it at once: from here the future's drop hands the
                // op to its slot, so the SQE never outlives what it points to.
                let (started, ring) = with_driver(|d| {
                    let started = match timeout {
                        Some(t) => Started::Slot(d.submit_with_timeout(sqe, cx.waker().clone(), t)),
                        None => d.start(sqe, cx.waker()),
                    };
                    (started, d.id())
                });
                match started {
                    // Finished inside the submission (the epoll backend),
                    // with no slot: nothing points into the op any more.
                    Started::Done(cqe) => {
                        this.state = State::Done;
                        let data = this.data.take().expect("op data present until done");
                        // SAFETY: `cqe` is the completion of the SQE `data`
                        // built, handed back by the backend that ran it and
                        // by nothing else; the state is `Done`, so once.
                        return Poll::Ready(unsafe { data.complete(cqe) });
                    }
                    Started::Slot(idx) => this.state = State::Submitted(idx, ring),
                }
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
                    // SAFETY: `cqe` is the completion of the SQE `data` built,
                    // taken out of its slot (on its own ring: `with_ring`
                    // checks) by `poll_op`, which frees the slot, so it is
                    // handed over once; a timeout's ECANCELED became ETIMEDOUT.
                    Poll::Ready(unsafe { data.complete(cqe) })
                }
                Poll::Pending => Poll::Pending,
            },
            State::CancelledIdle => {
                this.state = State::Done;
                let data = this.data.take().expect("op data present until done");
                let cqe = CqeResult::new(-libc::ECANCELED, 0);
                // SAFETY: never submitted: ECANCELED with no flags, as the
                // contract allows; the state is `Done`, so this runs once.
                Poll::Ready(unsafe { data.complete(cqe) })
            }
            State::Done => panic!("op polled after completion"),
            State::Direct { .. } => unreachable!("only multishot ops receive directly"),
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
/// order, turned into an item by [`MultishotOpCode::complete_next`]. The
/// final one has no `IORING_CQE_F_MORE` (and [`MultishotOp::is_armed`] turns
/// false); polling again after it submits the op anew, unless it was
/// cancelled.
///
/// # Cancellation
///
/// [`MultishotOp::cancel`] is final: the completions already on their way
/// still come out of `next`, then it yields `None` and never submits again.
/// Dropping it asks the kernel to cancel; the op (and any resources, such as
/// a provided-buffer ring) stays alive until the final completion, and every
/// completion that arrives meanwhile goes to [`MultishotOpCode::abandon`].
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
///         let socket = accepts.next().await.unwrap().unwrap();
///         drop(socket);
///     }
/// });
/// ```
///
/// The op cannot be swapped while it is armed (its SQE names the op's
/// buffer ring and descriptor); only shared access is offered:
///
/// ```compile_fail,E0624
/// use percore::fd::SharedFd;
/// use percore::op::{AcceptMulti, MultishotOp};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
/// let _op: &mut AcceptMulti = accepts.data_mut();
/// ```
pub struct MultishotOp<T: MultishotOpCode> {
    data: Option<T>,
    state: State,
    /// `cancel` was called: the op is never armed again.
    cancelled: bool,
    /// Set when the op may receive when polled rather than when data
    /// arrives (see `MultishotOp::<RecvMulti>::on_demand`). In place, not
    /// boxed: every direct receive reads it, and a box of its own was one
    /// more cache line per receive (a miss, with many connections).
    direct: Option<Direct>,
}

/// What an on-demand [`MultishotOp`] keeps for the epoll driver's direct
/// receives.
struct Direct {
    target: DirectTarget,
    /// Where the backend found the target's buffer group last.
    hint: usize,
    /// What it waits with, and the fd and driver that is registered with,
    /// from its first wait on until the op is dropped or cancelled.
    wait: Rc<DirectWait>,
    at: Option<(i32, u64)>,
    /// The second buffer of a receive that went on into the next one:
    /// handed out by the next poll, before anything else.
    pending: Option<ProvidedBuf>,
}

/// What an on-demand receive reads from and into, fixed for its op's life:
/// the op's own descriptor and buffer ring (it keeps the one open and the
/// other registered), so the epoll driver receives for it with no entry.
pub(crate) struct DirectTarget {
    pub(crate) fd: RawFd,
    pub(crate) bgid: u16,
    /// A multishot receive (no length cap): its data may go on into the
    /// next buffer.
    pub(crate) span: bool,
    /// The driver the ring is registered with.
    pub(crate) ring: u64,
    /// The ring's pool, which accounts for each completion.
    pub(crate) pool: Rc<BufPool>,
}

impl<T: MultishotOpCode> MultishotOp<T> {
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
            cancelled: false,
            direct: None,
        }
    }

    /// The op's own data.
    ///
    /// There is no mutable access: the armed SQE refers to the op's
    /// descriptor and buffer ring, which must not change under it.
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

    /// The op's own data, mutably: private, because changing it while armed
    /// would let a completion be read against other resources (a different
    /// buffer ring) than the ones its SQE named.
    fn data_mut(&mut self) -> &mut T {
        self.data
            .as_mut()
            .expect("multishot data present until drop")
    }

    /// Polls for the next completion. After the final one (no
    /// `IORING_CQE_F_MORE`) the next poll re-arms the op; `None` comes only
    /// once the op was [cancelled](MultishotOp::cancel) and its last
    /// completion was taken.
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
    ///     let socket = std::future::poll_fn(|cx| match accepts.poll_next(cx) {
    ///         Poll::Ready(item) => Poll::Ready(item),
    ///         Poll::Pending => Poll::Pending,
    ///     })
    ///     .await
    ///     .unwrap();
    ///     assert!(socket.is_ok());
    /// });
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        loop {
            match self.state {
                State::Idle if self.direct.is_none() => {
                    if self.cancelled {
                        self.state = State::Done;
                        return Poll::Ready(None);
                    }
                    let sqe = self.data_mut().create_entry();
                    self.state = with_driver(|d| {
                        State::Submitted(d.submit_multishot(sqe, cx.waker().clone()), d.id())
                    });
                    return Poll::Pending;
                }
                // Polled again while a direct receive waits, with no edge
                // since: nothing to ask the driver (checked here, so this
                // poll of every request costs no call).
                State::Direct { .. }
                    if !self.cancelled
                        && self.direct.as_ref().is_some_and(|dir| {
                            dir.pending.is_none() && dir.wait.still_waiting(cx.waker())
                        }) =>
                {
                    return Poll::Pending;
                }
                State::Idle | State::Direct { .. } => return self.poll_direct(cx),
                State::Submitted(idx, ring) => {
                    match with_ring(ring, |d| d.poll_multishot(idx, cx)) {
                        Poll::Ready(Some((cqe, last))) => {
                            if last {
                                self.state = State::Done;
                            }
                            // SAFETY: `cqe` was posted for the SQE this op
                            // built last: it comes out of the op's own slot on
                            // its own ring (`with_ring` checks), where the
                            // driver queued it once and `poll_multishot`
                            // removed it; the op was not changed since it was
                            // armed (no `&mut` access is public).
                            let item = unsafe { self.data_mut().complete_next(cqe) };
                            return Poll::Ready(Some(item));
                        }
                        // The slot ended without a completion to hand out.
                        Poll::Ready(None) => self.state = State::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                State::Done if self.cancelled => return Poll::Ready(None),
                State::Done => {
                    // Re-arm: a multishot op ends on its own (e.g. ENOBUFS, or
                    // the CQ filled up); the caller decides whether to go on.
                    self.state = State::Idle;
                }
                State::CancelledIdle => unreachable!("multishot ops use `cancelled`"),
            }
        }
    }

    /// [`MultishotOp::poll_next`] of an op the driver may receive for
    /// directly (`on_demand`).
    /// Inline: out of line it cost a call, a second frame and a copy of
    /// the driver's answer on every request (the ring's path reaches it
    /// only for an op's first poll).
    #[inline]
    fn poll_direct(&mut self, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let dir = self
            .direct
            .as_mut()
            .expect("direct receives only for on-demand ops");
        let data = self
            .data
            .as_mut()
            .expect("multishot data present until drop");
        if let Some(buf) = dir.pending.take() {
            return Poll::Ready(Some(direct_item(data, buf)));
        }
        if self.cancelled {
            self.state = State::Done;
            return Poll::Ready(None);
        }
        let recv = |d: &mut super::Driver| {
            let started = d.recv_direct(
                &dir.target,
                &mut dir.hint,
                cx.waker(),
                &dir.wait,
                &mut dir.pending,
            );
            (started, d.id())
        };
        let (started, ring) = match self.state {
            // Polled again while waiting: no edge since, so nothing to ask
            // the driver.
            State::Direct { .. } if dir.wait.still_waiting(cx.waker()) => {
                return Poll::Pending;
            }
            // The edge came: on the driver it waited on.
            State::Direct { ring, .. } => with_ring(ring, recv),
            _ => with_driver(recv),
        };
        match started {
            Some(StartedMulti::Done { first, waiting }) => {
                // A one-shot receive: the next poll starts another (its
                // wait already in place, if it drained the fd).
                self.state = match waiting {
                    Some(fd) => {
                        dir.at = Some((fd, ring));
                        State::Direct { fd, ring }
                    }
                    None => State::Idle,
                };
                Poll::Ready(Some(match first {
                    DirectDone::Data(buf) => direct_item(data, buf),
                    // SAFETY: `res` is the result of the op's receive, made
                    // inside the call and handed back by the backend alone,
                    // once, naming no buffer (no flags); nothing of the op
                    // stays in the driver.
                    DirectDone::End(res) => unsafe { data.complete_next(CqeResult::new(res, 0)) },
                }))
            }
            Some(StartedMulti::Direct { fd }) => {
                dir.at = Some((fd, ring));
                self.state = State::Direct { fd, ring };
                Poll::Pending
            }
            // The waker was woken: the state stays as it is.
            Some(StartedMulti::Yield) => Poll::Pending,
            None => {
                // Not for this backend (io_uring) or this fd: armed as an
                // entry, in a slot, as any multishot op.
                let sqe = data.create_entry();
                self.state = with_driver(|d| {
                    State::Submitted(d.submit_multishot(sqe, cx.waker().clone()), d.id())
                });
                Poll::Pending
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
    ///     let socket = accepts.next().await.unwrap();
    ///     assert!(socket.is_ok());
    /// });
    /// ```
    pub async fn next(&mut self) -> Option<T::Item> {
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
    ///     accepts.next().await.unwrap().unwrap();
    ///     assert!(accepts.is_armed()); // still accepting
    /// });
    /// ```
    pub fn is_armed(&self) -> bool {
        matches!(self.state, State::Submitted(..) | State::Direct { .. })
    }

    /// Stops the op for good: asks the kernel to cancel it if it is armed,
    /// and never arms it again. Completions already on their way still come
    /// out of `next` (the last one without `IORING_CQE_F_MORE`, usually
    /// `ECANCELED`); after them `next` yields `None`.
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
    ///     accepts.next().await.unwrap().unwrap();
    ///     accepts.cancel();
    ///     // Completions end with ECANCELED, and then nothing more comes.
    ///     while let Some(socket) = accepts.next().await {
    ///         drop(socket);
    ///     }
    ///     assert!(!accepts.is_armed());
    /// });
    /// ```
    pub fn cancel(&mut self) {
        self.cancelled = true;
        self.unpark();
        match self.state {
            State::Submitted(idx, ring) => with_ring(ring, |d| d.cancel(idx)),
            State::Direct { .. } => self.state = State::Idle,
            _ => {}
        }
    }

    /// Lets the driver make the op's receives, from and into `target`,
    /// when it is polled (see `MultishotOp::<RecvMulti>::on_demand`).
    /// `target` names the op's own descriptor and buffer ring: the
    /// completions made for it go to the op's `complete_next`, which reads
    /// their buffer ids against that ring.
    pub(crate) fn set_on_demand(&mut self, target: DirectTarget) {
        if self.direct.is_none() {
            self.direct = Some(Direct {
                target,
                hint: 0,
                wait: Rc::default(),
                at: None,
                pending: None,
            });
        }
    }

    /// Takes the waker of a direct receive back from its driver (if that is
    /// still the current one), dropping it outside the driver's borrow.
    fn unpark(&mut self) {
        let Some(dir) = self.direct.as_mut() else {
            return;
        };
        if let Some((fd, ring)) = dir.at.take() {
            let wait = &dir.wait;
            let waker = try_with_driver(|d| (d.id() == ring).then(|| d.unpark_direct(fd, wait)));
            drop(waker);
        }
    }
}

impl<T: MultishotOpCode> Drop for MultishotOp<T> {
    fn drop(&mut self) {
        // A direct receive left only a waker behind, and perhaps a
        // buffer nobody took (it goes back to its ring as it drops).
        self.unpark();
        if let State::Submitted(idx, ring) = self.state {
            // The kernel may still post completions that use the op's
            // resources: move the op into its slot until the last one.
            let data = self
                .data
                .take()
                .expect("multishot data present while armed");
            super::abandon(idx, ring, Box::new(AbandonedMulti(data)));
        }
    }
}

/// Hands data of a direct receive to its op, which only a `RecvMulti` has.
#[inline]
fn direct_item<T: MultishotOpCode>(data: &mut T, buf: ProvidedBuf) -> T::Item {
    data.direct_item(DirectBuf(buf))
        .expect("percore: direct receives only for RecvMulti")
}
