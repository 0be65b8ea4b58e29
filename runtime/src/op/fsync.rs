use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_FSYNC`: flushes a file's data (and, unless `datasync`, its
/// metadata) to storage, like `fsync(2)` / `fdatasync(2)`.
///
/// The kernel does not order it after writes still in flight: await the
/// writes first.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Fsync, Op};
///
/// let path = std::env::temp_dir().join(format!("percore-doc-fsync-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// percore::run(async {
///     let fd = SharedFd::new(file.into());
///     Op::new(Fsync::new(fd, true)).await.unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct Fsync {
    fd: SharedFd,
    datasync: bool,
}

impl Fsync {
    /// Syncs `fd`; with `datasync` only the data and the metadata needed to
    /// read it back (`fdatasync`).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Fsync};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-op-{}-fsync", std::process::id()));
    /// percore::run(async {
    ///     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     Op::new(Fsync::new(fd, true)).await.unwrap(); // fdatasync
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new(fd: SharedFd, datasync: bool) -> Fsync {
        Fsync { fd, datasync }
    }
}

// SAFETY: fsync references no user memory; the fd handle lives in the op.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        let flags = if self.datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        opcode::Fsync::new(types::Fd(self.fd.raw_fd()))
            .flags(flags)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
