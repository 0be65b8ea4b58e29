//! One type per io_uring operation.
//!
//! Provides: op structs that own everything the kernel may touch (buffer,
//! [`SharedFd`](crate::fd::SharedFd), iovecs, paths, sockaddrs) and build one
//! SQE each, plus [`Op`], the future that runs any of them.
//!
//! May not: touch the ring, the slot table or the executor; an op only builds
//! its SQE and turns its CQE into a result.
//!
//! Naming: an op type is named after its io_uring opcode (`IORING_OP_READV` is
//! [`Readv`]), with an `Op` suffix where that name is also a std or percore
//! name: [`SendOp`] (the `Send` trait), [`TimeoutOp`]
//! ([`time::Timeout`](crate::time::Timeout)), [`ShutdownOp`]
//! ([`std::net::Shutdown`], [`shutdown::ShutdownHandle`](crate::shutdown::ShutdownHandle)).

use crate::buf::{BufResult, IoBuf, IoBufMut, mark_read};

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
pub use self::send::{SendMsg, SendOp, SendZc};
pub use self::shutdown::ShutdownOp;
pub use self::socket::Socket;
pub use self::statx::{
    RawStatx, STATX_BASIC_STATS, STATX_BTIME, STATX_DIOALIGN, Statx, StatxTimestamp,
};
pub use self::timeout::TimeoutOp;
pub use self::unlink::UnlinkAt;
pub use self::write::{Write, Writev};
pub use crate::driver::op::{CqeResult, MultishotOp, MultishotOpCode, Op, OpCode, unwaited};

/// Whether a small socket send is cheaper as a non-blocking syscall made
/// now than as an op on the ring: true on the epoll backend (its send op
/// makes that same syscall, through more machinery); on io_uring, only for
/// a lone sender: no entry waits in the SQ and no other task is ready to
/// run this tick (and so about to queue one). Then the ring's send would
/// cost an `io_uring_enter` of its own (the park that submits it returns
/// with its completion and waits again), one syscall either way, plus the
/// op. Several senders in one tick do better on the ring, whose one
/// `io_uring_enter` serves them all. False outside a runtime.
///
/// This is the file read path's rule for a lone reader, for sends;
/// percore-net's `Compat` uses it to write hyper's responses.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     // Nothing else runs or waits in the ring: a direct send is cheapest.
///     assert!(percore::op::lone_sender());
///     let other = percore::spawn(async {});
///     // Another task is ready: on io_uring, the ring batches the sends.
///     let on_uring = percore::capabilities().is_some_and(|c| c.driver != percore::DriverKind::Epoll);
///     assert_eq!(percore::op::lone_sender(), !on_uring);
///     other.await.unwrap();
/// });
/// ```
pub fn lone_sender() -> bool {
    match crate::driver::try_with_driver(|d| d.sq_pending()) {
        None => false,
        Some(None) => true,
        Some(Some(queued)) => queued == 0 && !crate::executor::current_has_ready(),
    }
}

/// Sends from `buf` on the socket `fd` now, if the driver can without an
/// op: on the epoll backend, one non-blocking `send(2)` when the socket is
/// one it knows and not known to be full; the kernel copies the bytes
/// before this returns. `None` where it cannot (io_uring, whose send is an
/// op; a socket the backend has not seen or last found full; the tick's
/// budget of inline starts spent; outside a runtime), or if the send would
/// block: then send with an op ([`SendOp`]), which waits for room.
/// `Some(Ok(n))` may be short (`n < buf.len()`): send the rest likewise.
///
/// This is what percore-net's `write_all` does first on epoll: a send with
/// room costs the syscall and little else.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, SendOp};
///
/// percore::run(async {
///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
///     let a = SharedFd::new(a.into());
///     let sent = match percore::op::try_send(&a, b"hi") {
///         Some(res) => res.unwrap(),
///         None => Op::new(SendOp::new(a.clone(), b"hi".to_vec())).await.0.unwrap(),
///     };
///     assert_eq!(sent, 2);
///     # drop(b);
/// });
/// ```
pub fn try_send(fd: &crate::fd::SharedFd, buf: &[u8]) -> Option<std::io::Result<usize>> {
    crate::driver::try_with_driver(|d| d.try_send(fd.raw_fd(), buf)).flatten()
}

/// `offset` value meaning "the file's current position" (pipes, sockets, append).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// A buffer length as an SQE's 32-bit one: a larger buffer is used in part,
/// as a short read or write.
#[inline]
fn sqe_len(len: usize) -> u32 {
    len.min(u32::MAX as usize) as u32
}

/// The iovec of a write or send of `buf`'s initialized bytes.
#[inline]
fn iovec_out<B: IoBuf>(buf: &B) -> libc::iovec {
    libc::iovec {
        iov_base: buf.stable_ptr().cast_mut().cast(),
        iov_len: buf.bytes_init(),
    }
}

/// The iovec of a read into `buf`'s spare room.
#[inline]
pub(crate) fn iovec_in<B: IoBufMut>(buf: &mut B) -> libc::iovec {
    let (ptr, room) = buf.spare_room();
    libc::iovec {
        iov_base: ptr.cast(),
        iov_len: room,
    }
}

/// The output of an op that read into `buf`'s spare room, or, with
/// `no_room`, of the `Nop` it submitted instead because there was none.
///
/// # Safety
///
/// `cqe` is that op's own completion (the `complete` contract).
#[inline]
unsafe fn bytes_in<B: IoBufMut>(cqe: CqeResult, mut buf: B, no_room: bool) -> BufResult<usize, B> {
    let res = cqe.result.map(|n| n as usize);
    if no_room {
        return (res.and(Err(crate::buf::no_room())), buf);
    }
    if let Ok(n) = res {
        // SAFETY: the caller's promise: the kernel wrote `n` bytes into the
        // spare room (more for MSG_TRUNC, which `mark_read` caps).
        unsafe { mark_read(&mut buf, n) };
    }
    (res, buf)
}
