use std::io;
use std::net::Shutdown as How;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_SHUTDOWN` (Linux 5.11): shuts down the read half, the write
/// half (a half-close: the peer reads EOF) or both halves of a connection.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, ShutdownOp};
/// use std::io::Read;
///
/// percore::run(async {
///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
///     let fd = SharedFd::new(mine.into());
///     Op::new(ShutdownOp::new(fd, std::net::Shutdown::Write)).await.unwrap();
///     let mut rest = Vec::new();
///     assert_eq!(theirs.read_to_end(&mut rest).unwrap(), 0); // EOF
/// });
/// ```
///
/// # Errors
///
/// `ENOTCONN` on a socket that is not connected.
pub struct ShutdownOp {
    fd: SharedFd,
    how: i32,
}

impl ShutdownOp {
    /// Shuts down `how` of the connection on `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, ShutdownOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     Op::new(ShutdownOp::new(SharedFd::new(a.into()), std::net::Shutdown::Write)).await.unwrap();
    ///     let mut rest = Vec::new();
    ///     std::io::Read::read_to_end(&mut &b, &mut rest).unwrap(); // end of stream at once
    ///     assert!(rest.is_empty());
    /// });
    /// ```
    pub fn new(fd: SharedFd, how: How) -> ShutdownOp {
        let how = match how {
            How::Read => libc::SHUT_RD,
            How::Write => libc::SHUT_WR,
            How::Both => libc::SHUT_RDWR,
        };
        ShutdownOp { fd, how }
    }
}

// SAFETY: shutdown references no user memory; the fd is held by the op.
unsafe impl OpCode for ShutdownOp {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd.raw_fd()), self.how).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
