use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_MKDIRAT` (5.15): creates a directory, like `mkdirat(2)`.
///
/// # Examples
///
/// ```
/// use percore::op::{MkDirAt, Op};
/// use std::ffi::CString;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-mkdir-{}", std::process::id()));
/// percore::run(async {
///     let c = CString::new(path.to_str().unwrap()).unwrap();
///     Op::new(MkDirAt::new(c, 0o755)).await.unwrap();
/// });
/// assert!(path.is_dir());
/// std::fs::remove_dir(&path).unwrap();
/// ```
pub struct MkDirAt {
    path: CString,
    mode: u32,
}

impl MkDirAt {
    /// Creates the directory `path` with permission bits `mode` (less the umask).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{MkDirAt, Op};
    ///
    /// let dir = std::env::temp_dir().join(format!("percore-mkdir-{}", std::process::id()));
    /// percore::run(async {
    ///     let c = CString::new(dir.to_str().unwrap()).unwrap();
    ///     Op::new(MkDirAt::new(c, 0o755)).await.unwrap();
    /// });
    /// assert!(dir.is_dir());
    /// std::fs::remove_dir(&dir).unwrap();
    /// ```
    pub fn new(path: CString, mode: u32) -> MkDirAt {
        MkDirAt { path, mode }
    }
}

// SAFETY: the path is a heap-allocated CString owned by the op until its CQE.
unsafe impl OpCode for MkDirAt {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .mode(self.mode as libc::mode_t)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
