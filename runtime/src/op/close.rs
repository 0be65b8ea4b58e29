use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_CLOSE`: closes a descriptor the op owns.
///
/// Usually reached through [`SharedFd::close`](crate::fd::SharedFd::close).
///
/// # Examples
///
/// ```
/// use percore::op::{Close, Op};
///
/// percore::run(async {
///     let file = std::fs::File::open("/proc/self/stat").unwrap();
///     Op::new(Close::new(file.into())).await.unwrap();
/// });
/// ```
///
/// It takes the descriptor by value: safe code cannot close one it does not
/// own (a raw number another handle still uses).
///
/// ```compile_fail,E0308
/// use std::os::fd::AsRawFd;
/// use percore::op::Close;
///
/// let file = std::fs::File::open("/proc/self/stat").unwrap();
/// let _op = Close::new(file.as_raw_fd());
/// ```
///
/// # Cancellation
///
/// An op dropped before it was submitted, or cancelled before the kernel
/// ran it, still closes its descriptor (through the ring when a runtime is
/// current). One cut off by [`Op::timeout`](super::Op::timeout) reports
/// `ETIMEDOUT` and leaks the descriptor: `ETIMEDOUT` may also be the close's
/// own error, after which the number may already belong to another file.
#[derive(Debug)]
pub struct Close {
    /// The descriptor, until the SQE that closes it is built.
    fd: Option<OwnedFd>,
    /// The number the SQE closes; the kernel owns it from then on.
    raw: RawFd,
}

impl Close {
    /// Takes ownership of `fd`, which is closed when the op runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Close, Op};
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     Op::new(Close::new(reader.into())).await.unwrap();
    /// });
    /// ```
    pub fn new(fd: OwnedFd) -> Close {
        Close {
            raw: fd.as_raw_fd(),
            fd: Some(fd),
        }
    }

    /// The completion says the close never ran (cancelled first): the
    /// descriptor is still ours, so it is closed when the op drops.
    fn reclaim(&mut self, cqe: &CqeResult) {
        if self.fd.is_none()
            && matches!(&cqe.result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED))
        {
            // SAFETY: the SQE that was to close `raw` was cancelled before it
            // ran, so the descriptor is still open and this op still owns it
            // (it gave it to the kernel only for that close).
            self.fd = Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(self.raw) });
        }
    }
}

// SAFETY: close references no user memory; the descriptor it names is owned
// by the op until the SQE is built, and from then on by the kernel's close.
unsafe impl OpCode for Close {
    type Output = std::io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        // Handed to the kernel: from here the close in the SQE owns it.
        if let Some(fd) = self.fd.take() {
            self.raw = fd.into_raw_fd();
        }
        opcode::Close::new(types::Fd(self.raw)).build()
    }

    unsafe fn complete(mut self, cqe: CqeResult) -> Self::Output {
        self.reclaim(&cqe);
        cqe.result.map(|_| ())
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        self.reclaim(&cqe);
    }
}

impl Drop for Close {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            crate::driver::close_fd(fd);
        }
    }
}
