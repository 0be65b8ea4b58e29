//! One type per io_uring operation.
//!
//! Provides: op structs that own everything the kernel may touch (buffer,
//! [`SharedFd`](crate::fd::SharedFd), iovecs, paths, sockaddrs) and build one
//! SQE each, plus [`Op`], the future that runs any of them.
//!
//! May not: touch the ring, the slot table or the executor; an op only builds
//! its SQE and turns its CQE into a result.

mod close;
mod nop;
mod poll;
mod read;
mod timeout;
mod write;

pub use self::close::Close;
pub use self::nop::Nop;
pub use self::poll::PollAdd;
pub use self::read::{Read, Readv};
pub use self::timeout::Timeout;
pub use self::write::{Write, Writev};
pub use crate::driver::op::{CqeResult, MultishotOp, Op, OpCode};

/// `offset` value meaning "the file's current position" (pipes, sockets, append).
pub const CURRENT_POSITION: u64 = u64::MAX;
