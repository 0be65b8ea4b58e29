use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_RENAMEAT` (5.11): renames `from` to `to`, like `renameat2(2)`.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, RenameAt};
/// use std::ffi::CString;
///
/// let dir = std::env::temp_dir();
/// let from = dir.join(format!("percore-doc-rename-a-{}", std::process::id()));
/// let to = dir.join(format!("percore-doc-rename-b-{}", std::process::id()));
/// std::fs::write(&from, b"x").unwrap();
/// percore::run(async {
///     let a = CString::new(from.to_str().unwrap()).unwrap();
///     let b = CString::new(to.to_str().unwrap()).unwrap();
///     Op::new(RenameAt::new(a, b, 0)).await.unwrap();
/// });
/// assert_eq!(std::fs::read(&to).unwrap(), b"x");
/// std::fs::remove_file(&to).unwrap();
/// ```
pub struct RenameAt {
    from: CString,
    to: CString,
    flags: u32,
}

impl RenameAt {
    /// Renames `from` to `to`; `flags` are `renameat2`'s (`RENAME_NOREPLACE`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{Op, RenameAt};
    ///
    /// let dir = std::env::temp_dir();
    /// let (from, to) = (dir.join(format!("percore-mv-{}", std::process::id())), dir.join(format!("percore-mv-{}-2", std::process::id())));
    /// std::fs::write(&from, b"x").unwrap();
    /// percore::run(async {
    ///     let c = |p: &std::path::Path| CString::new(p.to_str().unwrap()).unwrap();
    ///     Op::new(RenameAt::new(c(&from), c(&to), 0)).await.unwrap();
    /// });
    /// assert!(!from.exists() && to.exists());
    /// std::fs::remove_file(&to).unwrap();
    /// ```
    pub fn new(from: CString, to: CString, flags: u32) -> RenameAt {
        RenameAt { from, to, flags }
    }
}

// SAFETY: both paths are heap-allocated CStrings owned by the op until its CQE.
unsafe impl OpCode for RenameAt {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::RenameAt::new(
            types::Fd(libc::AT_FDCWD),
            self.from.as_ptr(),
            types::Fd(libc::AT_FDCWD),
            self.to.as_ptr(),
        )
        .flags(self.flags)
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
