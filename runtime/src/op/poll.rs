use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_POLL_ADD`: waits until `fd` is ready for the `poll(2)` events asked.
///
/// The op holds a clone of the [`SharedFd`], so the descriptor stays open
/// (and its number is not reused) until the op completes, even when its
/// future is dropped while in flight.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, PollAdd};
/// use std::io::Write;
///
/// percore::run(async {
///     let (reader, mut writer) = std::io::pipe().unwrap();
///     writer.write_all(b"x").unwrap();
///     let fd = SharedFd::new(reader.into());
///     let events = Op::new(PollAdd::new(fd, libc::POLLIN as u32)).await.unwrap();
///     assert!(events & libc::POLLIN as u32 != 0);
/// });
/// ```
///
/// A raw descriptor number is not accepted: the op could outlive it.
///
/// ```compile_fail,E0308
/// use std::os::fd::AsRawFd;
/// use percore::op::PollAdd;
///
/// let (reader, _writer) = std::io::pipe().unwrap();
/// let _op = PollAdd::new(reader.as_raw_fd(), libc::POLLIN as u32);
/// ```
#[derive(Debug)]
pub struct PollAdd {
    fd: SharedFd,
    events: u32,
}

impl PollAdd {
    /// Waits for `events` (`libc::POLLIN`, `POLLOUT`, ...) on `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, PollAdd};
    ///
    /// percore::run(async {
    ///     let (reader, mut writer) = std::io::pipe().unwrap();
    ///     writer.write_all(b"!").unwrap();
    ///     let fd = SharedFd::new(reader.into());
    ///     let ready = Op::new(PollAdd::new(fd, libc::POLLIN as u32)).await.unwrap();
    ///     assert!(ready & libc::POLLIN as u32 != 0);
    /// });
    /// ```
    pub fn new(fd: SharedFd, events: u32) -> PollAdd {
        PollAdd { fd, events }
    }
}

// SAFETY: poll-add references no user memory; the fd is held by the op (a
// `SharedFd` clone) until its completion.
unsafe impl OpCode for PollAdd {
    /// The events that are ready.
    type Output = std::io::Result<u32>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.raw_fd()), self.events).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result
    }
}
