use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_UNLINKAT` (5.11): removes a file, or with
/// `libc::AT_REMOVEDIR` an empty directory, like `unlinkat(2)`.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, UnlinkAt};
/// use std::ffi::CString;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-unlink-{}", std::process::id()));
/// std::fs::write(&path, b"x").unwrap();
/// percore::run(async {
///     let c = CString::new(path.to_str().unwrap()).unwrap();
///     Op::new(UnlinkAt::new(c, 0)).await.unwrap();
/// });
/// assert!(!path.exists());
/// ```
pub struct UnlinkAt {
    path: CString,
    flags: i32,
}

impl UnlinkAt {
    /// Removes `path` (relative to the current directory); `flags` is 0 or
    /// `libc::AT_REMOVEDIR`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{Op, UnlinkAt};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-rm-{}", std::process::id()));
    /// std::fs::write(&path, b"x").unwrap();
    /// percore::run(async {
    ///     let c = CString::new(path.to_str().unwrap()).unwrap();
    ///     Op::new(UnlinkAt::new(c, 0)).await.unwrap();
    /// });
    /// assert!(!path.exists());
    /// ```
    pub fn new(path: CString, flags: i32) -> UnlinkAt {
        UnlinkAt { path, flags }
    }
}

// SAFETY: the path is a heap-allocated CString owned by the op until its CQE.
unsafe impl OpCode for UnlinkAt {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
