//! The raw `io_uring_enter(2)` interface: its flags, its extended argument,
//! and which of its errors are transient; and the eventfd signal both
//! backends' wake-ups use.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Adds one to an eventfd's counter (wakes whoever polls or reads it).
/// An error (the counter full, which takes 2^64 - 2 signals) is ignored:
/// the fd is readable then anyway.
pub(super) fn signal_eventfd(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: write(2) reads 8 bytes from `one`, which lives on this frame
    // for the call; the borrow keeps `fd` open for it.
    let _ = unsafe {
        libc::write(
            fd.as_raw_fd(),
            (&one as *const u64).cast(),
            std::mem::size_of::<u64>(),
        )
    };
}

pub(super) const ENTER_GETEVENTS: u32 = 1 << 0;
pub(super) const ENTER_SQ_WAKEUP: u32 = 1 << 1;
pub(super) const ENTER_EXT_ARG: u32 = 1 << 3;
pub(super) const ENTER_REGISTERED_RING: u32 = 1 << 4;

/// Errors after which the next enter may succeed.
pub(super) fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

/// `struct io_uring_getevents_arg`, passed with `IORING_ENTER_EXT_ARG`.
#[repr(C)]
pub(super) struct GeteventsArg {
    pub(super) sigmask: u64,
    pub(super) sigmask_sz: u32,
    pub(super) min_wait_usec: u32,
    pub(super) ts: u64,
}
