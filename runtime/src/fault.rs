//! Fault injection at the driver boundary (feature `fault-injection`, for
//! tests only; off by default and absent from normal builds).
//!
//! Each call arms a fault for the **calling thread** (tests running in
//! parallel threads do not see each other's faults): the next `times` calls
//! of one driver syscall on this thread fail with `errno` instead of reaching
//! the kernel. Nothing is submitted by a call that fails this way, as with a
//! real `EINTR`/`EAGAIN`/`EBUSY` from `io_uring_enter`.
//!
//! Faults the kernel produces on demand need no hook and are not here: a full
//! SQ (a ring of 4 entries and more ops), CQ overflow (a small CQ and many
//! completions at once), `ENOBUFS` (a provided-buffer ring of one buffer),
//! `EMFILE` on accept (a lowered `RLIMIT_NOFILE`).
//!
//! ```
//! use percore::fault;
//!
//! use percore::op::{Op, TimeoutOp};
//! use std::time::Duration;
//!
//! percore::run(async {
//!     // The next three waits of this thread's loop (io_uring_enter, or
//!     // epoll_pwait2 on the epoll driver) fail with EINTR; the loop treats
//!     // that as transient and the op, which needs those waits, completes.
//!     fault::fail_enter(3, libc::EINTR);
//!     Op::new(TimeoutOp::new(Duration::from_millis(1))).await.unwrap();
//!     assert_eq!(fault::pending_enter_faults(), 0);
//! });
//! ```

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;

thread_local! {
    static ENTER: Cell<(u32, i32)> = const { Cell::new((0, 0)) };
    /// A script of errnos for the next `io_uring_enter` calls, one per call,
    /// taken before the repeated fault of [`fail_enter`].
    static ENTER_SEQUENCE: RefCell<VecDeque<i32>> = const { RefCell::new(VecDeque::new()) };
    static SETUP: Cell<(u32, i32)> = const { Cell::new((0, 0)) };
}

/// Makes the next `times` `io_uring_enter` calls of this thread fail with `errno`.
///
/// ```
/// percore::fault::fail_enter(1, libc::EBUSY);
/// assert_eq!(percore::fault::pending_enter_faults(), 1);
/// percore::fault::clear();
/// ```
pub fn fail_enter(times: u32, errno: i32) {
    ENTER.with(|c| c.set((times, errno)));
}

/// Makes the next `io_uring_enter` calls of this thread fail with the given
/// errnos in order, one call each: `&[EBUSY, EFAULT]` fails the next call
/// with `EBUSY` and the one after with `EFAULT` (a transient error and then
/// a fatal one, the path on which a submission must leave nothing behind).
/// Replaces any sequence still armed; a [`fail_enter`] fault applies after it.
///
/// ```
/// percore::fault::fail_enter_sequence(&[libc::EBUSY, libc::EFAULT]);
/// assert_eq!(percore::fault::pending_enter_faults(), 2);
/// percore::fault::clear();
/// assert_eq!(percore::fault::pending_enter_faults(), 0);
/// ```
pub fn fail_enter_sequence(errnos: &[i32]) {
    ENTER_SEQUENCE.with(|q| *q.borrow_mut() = errnos.iter().copied().collect());
}

/// Makes the next `times` `io_uring_setup` calls of this thread (ring
/// creation in [`Builder::build`](crate::Builder::build)) fail with `errno`.
///
/// ```
/// use percore::{Builder, DriverKind};
///
/// percore::fault::fail_setup(1, libc::EPERM);
/// // io_uring asked for by name: the error (`Auto` would fall back to epoll).
/// let err = Builder::new().driver(DriverKind::IoUring).build().err().unwrap();
/// assert!(err.to_string().contains("seccomp"));
/// ```
pub fn fail_setup(times: u32, errno: i32) {
    SETUP.with(|c| c.set((times, errno)));
}

/// How many injected `io_uring_enter` failures are still armed on this thread.
///
/// ```
/// assert_eq!(percore::fault::pending_enter_faults(), 0);
/// ```
pub fn pending_enter_faults() -> u32 {
    let queued = ENTER_SEQUENCE.with(|q| q.borrow().len() as u32);
    ENTER.with(|c| c.get().0).saturating_add(queued)
}

/// Disarms every fault of this thread.
///
/// ```
/// percore::fault::fail_setup(5, libc::ENOMEM);
/// percore::fault::clear();
/// assert!(percore::Runtime::new().is_ok());
/// ```
pub fn clear() {
    ENTER.with(|c| c.set((0, 0)));
    ENTER_SEQUENCE.with(|q| q.borrow_mut().clear());
    SETUP.with(|c| c.set((0, 0)));
}

fn take(cell: &'static std::thread::LocalKey<Cell<(u32, i32)>>) -> Option<io::Error> {
    cell.with(|c| {
        let (n, errno) = c.get();
        if n == 0 {
            return None;
        }
        c.set((n - 1, errno));
        Some(io::Error::from_raw_os_error(errno))
    })
}

/// The injected error for this `io_uring_enter`, if one is armed.
pub(crate) fn take_enter() -> Option<io::Error> {
    if let Some(errno) = ENTER_SEQUENCE.with(|q| q.borrow_mut().pop_front()) {
        return Some(io::Error::from_raw_os_error(errno));
    }
    take(&ENTER)
}

/// The injected error for this `io_uring_setup`, if one is armed.
pub(crate) fn take_setup() -> Option<io::Error> {
    take(&SETUP)
}
