use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_POLL_ADD`: waits until `fd` is ready for the `poll(2)` events asked.
///
/// The caller keeps `fd` open until the op completes or is dropped.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, PollAdd};
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
///
/// percore::run(async {
///     let (reader, mut writer) = std::io::pipe().unwrap();
///     writer.write_all(b"x").unwrap();
///     let events = Op::new(PollAdd::new(reader.as_raw_fd(), libc::POLLIN as u32)).await.unwrap();
///     assert!(events & libc::POLLIN as u32 != 0);
/// });
/// ```
#[derive(Debug)]
pub struct PollAdd {
    fd: RawFd,
    events: u32,
}

impl PollAdd {
    /// Waits for `events` (`libc::POLLIN`, `POLLOUT`, ...) on `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use percore::op::{Op, PollAdd};
    ///
    /// percore::run(async {
    ///     let (reader, mut writer) = std::io::pipe().unwrap();
    ///     writer.write_all(b"!").unwrap();
    ///     let ready = Op::new(PollAdd::new(reader.as_raw_fd(), libc::POLLIN as u32)).await.unwrap();
    ///     assert!(ready & libc::POLLIN as u32 != 0);
    /// });
    /// ```
    pub fn new(fd: RawFd, events: u32) -> PollAdd {
        PollAdd { fd, events }
    }
}

// SAFETY: poll-add references no user memory.
unsafe impl OpCode for PollAdd {
    /// The events that are ready.
    type Output = std::io::Result<u32>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), self.events).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result
    }
}
