use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_LINKAT` (5.15): creates the hard link `to` for the file
/// `from`, like `linkat(2)`.
///
/// # Examples
///
/// ```
/// use percore::op::{LinkAt, Op};
/// use std::ffi::CString;
///
/// let dir = std::env::temp_dir();
/// let from = dir.join(format!("percore-doc-link-a-{}", std::process::id()));
/// let to = dir.join(format!("percore-doc-link-b-{}", std::process::id()));
/// std::fs::write(&from, b"x").unwrap();
/// percore::run(async {
///     let a = CString::new(from.to_str().unwrap()).unwrap();
///     let b = CString::new(to.to_str().unwrap()).unwrap();
///     Op::new(LinkAt::new(a, b, 0)).await.unwrap();
/// });
/// assert_eq!(std::fs::read(&to).unwrap(), b"x");
/// std::fs::remove_file(&from).unwrap();
/// std::fs::remove_file(&to).unwrap();
/// ```
pub struct LinkAt {
    from: CString,
    to: CString,
    flags: i32,
}

impl LinkAt {
    /// Links `to` to the file `from`; `flags` may hold `libc::AT_SYMLINK_FOLLOW`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{LinkAt, Op};
    ///
    /// let dir = std::env::temp_dir();
    /// let (from, to) = (dir.join(format!("percore-link-{}", std::process::id())), dir.join(format!("percore-link-{}-2", std::process::id())));
    /// std::fs::write(&from, b"x").unwrap();
    /// percore::run(async {
    ///     let c = |p: &std::path::Path| CString::new(p.to_str().unwrap()).unwrap();
    ///     Op::new(LinkAt::new(c(&from), c(&to), 0)).await.unwrap();
    /// });
    /// assert_eq!(std::fs::read(&to).unwrap(), b"x");
    /// std::fs::remove_file(&from).unwrap();
    /// std::fs::remove_file(&to).unwrap();
    /// ```
    pub fn new(from: CString, to: CString, flags: i32) -> LinkAt {
        LinkAt { from, to, flags }
    }
}

// SAFETY: both paths are heap-allocated CStrings owned by the op until its CQE.
unsafe impl OpCode for LinkAt {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::LinkAt::new(
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

/// `IORING_OP_SYMLINKAT` (5.15): creates the symbolic link `link` pointing
/// at `target`, like `symlinkat(2)`.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, SymlinkAt};
/// use std::ffi::CString;
///
/// let link = std::env::temp_dir().join(format!("percore-doc-symlink-{}", std::process::id()));
/// percore::run(async {
///     let l = CString::new(link.to_str().unwrap()).unwrap();
///     Op::new(SymlinkAt::new(c"/dev/null".into(), l)).await.unwrap();
/// });
/// assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/dev/null"));
/// std::fs::remove_file(&link).unwrap();
/// ```
pub struct SymlinkAt {
    target: CString,
    link: CString,
}

impl SymlinkAt {
    /// Creates `link`, whose content is `target` (not checked to exist).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{Op, SymlinkAt};
    ///
    /// let link = std::env::temp_dir().join(format!("percore-symlink-{}", std::process::id()));
    /// percore::run(async {
    ///     let c = CString::new(link.to_str().unwrap()).unwrap();
    ///     Op::new(SymlinkAt::new(CString::new("/").unwrap(), c)).await.unwrap();
    /// });
    /// assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/"));
    /// std::fs::remove_file(&link).unwrap();
    /// ```
    pub fn new(target: CString, link: CString) -> SymlinkAt {
        SymlinkAt { target, link }
    }
}

// SAFETY: both paths are heap-allocated CStrings owned by the op until its CQE.
unsafe impl OpCode for SymlinkAt {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::SymlinkAt::new(
            types::Fd(libc::AT_FDCWD),
            self.target.as_ptr(),
            self.link.as_ptr(),
        )
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
