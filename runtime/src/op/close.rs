use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_CLOSE`: closes a descriptor the op owns.
///
/// Usually reached through [`SharedFd::close`](crate::fd::SharedFd::close).
///
/// # Examples
///
/// ```
/// use std::os::fd::IntoRawFd;
/// use percore::op::{Close, Op};
///
/// percore::run(async {
///     let file = std::fs::File::open("/proc/self/stat").unwrap();
///     Op::new(Close::new(file.into_raw_fd())).await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct Close {
    fd: RawFd,
}

impl Close {
    /// Takes ownership of `fd`, which is closed when the op runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::IntoRawFd;
    /// use percore::op::{Close, Op};
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     Op::new(Close::new(reader.into_raw_fd())).await.unwrap();
    /// });
    /// ```
    pub fn new(fd: RawFd) -> Close {
        Close { fd }
    }
}

// SAFETY: close references no user memory.
unsafe impl OpCode for Close {
    type Output = std::io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
