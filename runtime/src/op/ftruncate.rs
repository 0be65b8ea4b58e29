use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_FTRUNCATE` (Linux 6.9): sets a file's size, like `ftruncate(2)`.
///
/// Check `percore::capabilities()` for the opcode before using it directly;
/// [`File::set_len`](crate::fs::File::set_len) falls back to a blocking
/// thread on older kernels.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Ftruncate, Op};
///
/// let path = std::env::temp_dir().join(format!("percore-doc-ftruncate-{}", std::process::id()));
/// let file = std::fs::File::create(&path).unwrap();
/// percore::run(async {
///     if percore::capabilities().unwrap().supports(io_uring::opcode::Ftruncate::CODE) {
///         let fd = SharedFd::new(file.into());
///         Op::new(Ftruncate::new(fd, 100)).await.unwrap();
///         assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
///     }
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct Ftruncate {
    fd: SharedFd,
    len: u64,
}

impl Ftruncate {
    /// Sets the size of `fd`'s file to `len` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Ftruncate};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-op-{}-ftruncate", std::process::id()));
    /// percore::run(async {
    ///     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     match Op::new(Ftruncate::new(fd, 100)).await {
    ///         Ok(()) => assert_eq!(std::fs::metadata(&path).unwrap().len(), 100),
    ///         // IORING_OP_FTRUNCATE is Linux 6.9; percore's File::set_len falls back.
    ///         Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
    ///     }
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new(fd: SharedFd, len: u64) -> Ftruncate {
        Ftruncate { fd, len }
    }
}

// SAFETY: ftruncate references no user memory; the fd handle lives in the op.
unsafe impl OpCode for Ftruncate {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Ftruncate::new(types::Fd(self.fd.raw_fd()), self.len).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
