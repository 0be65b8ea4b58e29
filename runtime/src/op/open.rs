use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_OPENAT`: opens `path` relative to the current directory with
/// `open(2)` flags and mode, and returns the new descriptor as a [`SharedFd`].
///
/// `O_CLOEXEC` is always added.
///
/// # Cancellation
///
/// If the future is dropped and the kernel opens the file anyway, the new
/// descriptor is closed when the completion arrives; it never leaks.
///
/// # Examples
///
/// ```
/// use percore::op::{OpenAt, Op};
///
/// percore::run(async {
///     let fd = Op::new(OpenAt::new(c"/dev/null".into(), libc::O_RDONLY, 0)).await.unwrap();
///     assert!(fd.raw_fd() >= 0);
/// });
/// ```
pub struct OpenAt {
    /// Owned so the kernel's view of the path survives moves of the op.
    path: CString,
    flags: i32,
    mode: libc::mode_t,
    /// A descriptor opened for a future that was dropped; closed with the op.
    orphan: Option<SharedFd>,
}

impl OpenAt {
    /// Opens `path` with `flags` (`libc::O_RDONLY`, `O_CREAT`, ...) and, when
    /// creating, permission bits `mode`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{OpenAt, Op};
    ///
    /// percore::run(async {
    ///     let path = CString::new("/proc/self/stat").unwrap();
    ///     let fd = Op::new(OpenAt::new(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)).await.unwrap();
    ///     assert!(fd.raw_fd() >= 0);
    /// });
    /// ```
    pub fn new(path: CString, flags: i32, mode: u32) -> OpenAt {
        OpenAt {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode: mode as libc::mode_t,
            orphan: None,
        }
    }

    /// The path this op opens.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::OpenAt;
    ///
    /// let op = OpenAt::new(CString::new("/tmp").unwrap(), libc::O_RDONLY, 0);
    /// assert_eq!(op.path().to_str().unwrap(), "/tmp");
    /// ```
    pub fn path(&self) -> &CString {
        &self.path
    }
}

/// Takes ownership of a descriptor the kernel just returned.
///
/// # Safety
///
/// `fd` is the result of a successful openat completion, adopted once.
unsafe fn adopt(fd: u32) -> SharedFd {
    // SAFETY: a successful openat CQE carries a new descriptor that nothing
    // else owns (caller); we are its only owner from here on.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    SharedFd::new(owned)
}

// SAFETY: the path is a heap-allocated CString owned by the op until its CQE.
unsafe impl OpCode for OpenAt {
    type Output = io::Result<SharedFd>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this open's completion, handed over once (caller).
        cqe.result.map(|fd| unsafe { adopt(fd) })
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        // Nobody will take this descriptor: keep it in the op, which the
        // driver drops outside its borrow, so the close goes through the ring.
        if let Ok(fd) = cqe.result {
            // SAFETY: as in `complete`.
            self.orphan = Some(unsafe { adopt(fd) });
        }
    }
}
