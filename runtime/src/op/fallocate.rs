use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_FALLOCATE`: allocates (or, with `FALLOC_FL_PUNCH_HOLE` and
/// friends, deallocates) the byte range `offset..offset + len`, like
/// `fallocate(2)`. Mode 0 extends the file size if the range ends past it.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Fallocate, Op};
///
/// let path = std::env::temp_dir().join(format!("percore-doc-fallocate-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// percore::run(async {
///     let fd = SharedFd::new(file.into());
///     Op::new(Fallocate::new(fd, 0, 8192, 0)).await.unwrap();
/// });
/// assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct Fallocate {
    fd: SharedFd,
    offset: u64,
    len: u64,
    mode: i32,
}

impl Fallocate {
    /// Allocates `len` bytes at `offset` with `fallocate(2)`'s `mode`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Fallocate};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-op-{}-fallocate", std::process::id()));
    /// percore::run(async {
    ///     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     Op::new(Fallocate::new(fd, 0, 8192, 0)).await.unwrap();
    ///     assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new(fd: SharedFd, offset: u64, len: u64, mode: i32) -> Fallocate {
        Fallocate {
            fd,
            offset,
            len,
            mode,
        }
    }
}

// SAFETY: fallocate references no user memory; the fd handle lives in the op.
unsafe impl OpCode for Fallocate {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Fallocate::new(types::Fd(self.fd.raw_fd()), self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
