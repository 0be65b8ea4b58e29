//! The file operations `File` performs with a plain syscall instead of a
//! ring op: where io_uring has no op (`lseek`), where the kernel predates
//! one (`posix_fadvise` before 5.6, `ftruncate` before 6.9), and where a
//! synchronous attempt is cheaper than the ring (`preadv2(RWF_NOWAIT)` on a
//! page-cache hit costs less than an SQE, a CQE, a wake-up and a re-poll;
//! see `read_policy`). `op/` holds only ring operations.

use std::io;
use std::io::SeekFrom;

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
    let iov = crate::op::iovec_in(buf);
    // SAFETY: the iovec points at the spare room of a buffer we hold
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
    // SAFETY: the kernel wrote `n` bytes into the spare room.
    unsafe { crate::buf::mark_read(buf, n) };
    Ok(n)
}

/// `lseek(2)`: io_uring has no seek op. It only moves the descriptor's file
/// offset (the position that reads and writes at `CURRENT_POSITION` use and
/// advance) and does no I/O on local filesystems, so it runs on the calling
/// thread.
///
/// Moves `fd`'s file offset as `pos` says and returns the new offset.
///
/// `ESPIPE` for pipes, sockets and terminals, which have no offset;
/// `EINVAL` for a resulting offset below zero.
pub(crate) fn lseek(fd: &SharedFd, pos: SeekFrom) -> io::Result<u64> {
    let (offset, whence) = match pos {
        SeekFrom::Start(n) => match i64::try_from(n) {
            Ok(n) => (n, libc::SEEK_SET),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("seek to {n}: past the largest file offset (i64::MAX)"),
                ));
            }
        },
        SeekFrom::Current(n) => (n, libc::SEEK_CUR),
        SeekFrom::End(n) => (n, libc::SEEK_END),
    };
    // SAFETY: lseek touches no user memory; `fd` is open while the
    // `SharedFd` we borrow lives, which spans this call.
    let res = unsafe { libc::lseek(fd.raw_fd(), offset, whence) };
    if res < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res as u64)
    }
}

/// `posix_fadvise(2)` directly, for kernels without `IORING_OP_FADVISE`; it
/// only records the advice (or starts readahead), so it does not block.
pub(crate) fn fadvise_sync(fd: &SharedFd, offset: u64, len: u64, advice: i32) -> io::Result<()> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = libc::off_t::try_from(len).unwrap_or(0);
    // SAFETY: plain syscall on a descriptor the handle keeps open.
    match unsafe { libc::posix_fadvise(fd.raw_fd(), off, len, advice) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `ftruncate(2)` on the blocking thread pool, for kernels without
/// `IORING_OP_FTRUNCATE`. The pool thread works on a duplicate of the
/// descriptor, so dropping the returned future can never make it truncate a
/// different file that reused the number.
pub(crate) async fn ftruncate_blocking(fd: &SharedFd, len: u64) -> io::Result<()> {
    // SAFETY: `fd` is open while the `SharedFd` we borrow lives, which spans
    // this call; the borrow ends before we return.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.raw_fd()) };
    let file = std::fs::File::from(borrowed.try_clone_to_owned()?);
    crate::spawn_blocking(move || file.set_len(len)).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_advises_files_and_reports_errors() {
        // The path kernels before 5.6 take, called directly.
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let fd = SharedFd::new(file.into());
        fadvise_sync(&fd, 0, 0, libc::POSIX_FADV_RANDOM).unwrap();
        let err = fadvise_sync(&fd, 0, 0, 12345).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let (reader, _writer) = std::io::pipe().unwrap();
        let pipe = SharedFd::new(reader.into());
        let err = fadvise_sync(&pipe, 0, 0, libc::POSIX_FADV_RANDOM).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESPIPE));
    }
}
