//! `lseek(2)`: io_uring has no seek op. It only moves the descriptor's file
//! offset (the position that reads and writes at
//! [`CURRENT_POSITION`](super::CURRENT_POSITION) use and advance) and does no
//! I/O on local filesystems, so it runs on the calling thread.

use std::io;
use std::io::SeekFrom;

use crate::fd::SharedFd;

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
