use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_FADVISE` (Linux 5.6): declares how a range of a file will be
/// accessed, like `posix_fadvise(2)`; `advice` is one of the
/// `libc::POSIX_FADV_*` values. `len` 0 means "to the end of the file".
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Fadvise, Op};
///
/// let file = std::fs::File::open("/proc/self/exe").unwrap();
/// percore::run(async {
///     let fd = SharedFd::new(file.into());
///     Op::new(Fadvise::new(fd, 0, 0, libc::POSIX_FADV_RANDOM)).await.unwrap();
/// });
/// ```
pub struct Fadvise {
    fd: SharedFd,
    offset: u64,
    len: u64,
    advice: i32,
}

impl Fadvise {
    /// Advice `advice` for `len` bytes of `fd` from `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Fadvise, Op};
    ///
    /// let file = std::fs::File::open("/proc/self/exe").unwrap();
    /// percore::run(async {
    ///     let fd = SharedFd::new(file.into());
    ///     // Start reading the first 64 KiB into the page cache.
    ///     Op::new(Fadvise::new(fd, 0, 64 * 1024, libc::POSIX_FADV_WILLNEED)).await.unwrap();
    /// });
    /// ```
    pub fn new(fd: SharedFd, offset: u64, len: u64, advice: i32) -> Fadvise {
        Fadvise {
            fd,
            offset,
            len,
            advice,
        }
    }
}

// SAFETY: fadvise references no user memory; the fd handle lives in the op.
unsafe impl OpCode for Fadvise {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        // The SQE's len field is 32 bits: a longer range is advised to the
        // end of the file (len 0), which is what such a caller means.
        let len = i64::try_from(self.len)
            .ok()
            .filter(|&l| l <= i64::from(u32::MAX))
            .unwrap_or(0);
        opcode::Fadvise::new(types::Fd(self.fd.raw_fd()), len, self.advice)
            .offset(self.offset)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
