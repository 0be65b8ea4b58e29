//! Synchronous attempts that complete without blocking, tried before an op
//! goes to the ring: `preadv2(RWF_NOWAIT)` reads data already in the page
//! cache and fails with `EAGAIN` otherwise.
//!
//! The ring is not always the cheapest path: for page-cache hits one
//! `preadv2` costs less than an SQE, a CQE, a task wake-up and a re-poll.

use std::io;

use crate::buf::IoBufMut;
use crate::fd::SharedFd;

/// Reads into `buf`'s spare room at `offset` with `preadv2(RWF_NOWAIT)`.
///
/// Returns the bytes read; `EAGAIN` means "not cached, use the ring";
/// `EOPNOTSUPP` means the file (or its filesystem) does not do non-blocking
/// reads. Never blocks on I/O. Do not use it on `O_DIRECT` files: there it
/// would wait for the device.
pub(crate) fn read_nowait<B: IoBufMut>(
    fd: &SharedFd,
    buf: &mut B,
    offset: u64,
) -> io::Result<usize> {
    let init = buf.bytes_init();
    let spare = buf.bytes_total() - init;
    let iov = libc::iovec {
        // SAFETY: `init <= bytes_total`, so the pointer stays in the buffer.
        iov_base: unsafe { buf.stable_mut_ptr().add(init) }.cast(),
        iov_len: spare,
    };
    // SAFETY: the iovec points at `spare` writable bytes of a buffer we hold
    // mutably for the duration of this synchronous call; `fd` is open while
    // the `SharedFd` lives.
    let res = unsafe {
        libc::preadv2(
            fd.raw_fd(),
            &iov,
            1,
            offset as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = res as usize;
    // SAFETY: the kernel wrote `n` bytes right after the `init` ones.
    unsafe { buf.set_init(init + n) };
    Ok(n)
}
