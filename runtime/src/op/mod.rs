//! One type per io_uring operation.
//!
//! Provides: op structs that own everything the kernel may touch (buffer,
//! [`SharedFd`](crate::fd::SharedFd), iovecs, paths, sockaddrs) and build one
//! SQE each, plus [`Op`], the future that runs any of them.
//!
//! May not: touch the ring, the slot table or the executor; an op only builds
//! its SQE and turns its CQE into a result.

mod accept;
mod close;
mod connect;
mod fadvise;
mod fallocate;
mod fixed;
mod fsync;
mod ftruncate;
mod link;
mod mkdir;
mod nop;
mod open;
mod poll;
mod read;
mod recv;
mod rename;
mod send;
mod shutdown;
mod socket;
mod statx;
mod timeout;
mod unlink;
mod write;

pub use self::accept::{Accept, AcceptMulti};
pub use self::close::Close;
pub use self::connect::Connect;
pub use self::fadvise::Fadvise;
pub use self::fallocate::Fallocate;
pub use self::fixed::{FILE_TABLE_SLOTS, FixedFd, ReadFixed, Target, WriteFixed};
pub use self::fsync::Fsync;
pub use self::ftruncate::Ftruncate;
pub use self::link::{LinkAt, SymlinkAt};
pub use self::mkdir::MkDirAt;
pub use self::nop::Nop;
pub use self::open::OpenAt;
pub use self::poll::PollAdd;
pub use self::read::{Read, Readv};
pub use self::recv::{Recv, RecvMsg, RecvMulti};
pub use self::rename::RenameAt;
pub use self::send::{Send, SendMsg, SendZc};
pub use self::shutdown::Shutdown;
pub use self::socket::Socket;
pub use self::statx::{
    RawStatx, STATX_BASIC_STATS, STATX_BTIME, STATX_DIOALIGN, Statx, StatxTimestamp,
};
pub use self::timeout::Timeout;
pub use self::unlink::UnlinkAt;
pub use self::write::{Write, Writev};
pub use crate::driver::op::{CqeResult, MultishotOp, MultishotOpCode, Op, OpCode, unwaited};

/// `offset` value meaning "the file's current position" (pipes, sockets, append).
pub const CURRENT_POSITION: u64 = u64::MAX;
