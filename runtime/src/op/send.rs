use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use super::{CqeResult, OpCode};
use crate::buf::{BufResult, IoBuf};
use crate::fd::SharedFd;

/// `IORING_OP_SEND`: sends an owned buffer's initialized bytes on a socket.
/// May send fewer bytes than asked (a short write); it returns the count.
///
/// `MSG_NOSIGNAL` is always set: a peer that went away gives `EPIPE`, never a
/// `SIGPIPE`.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, SendOp};
/// use std::io::Read;
///
/// percore::run(async {
///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
///     let fd = SharedFd::new(mine.into());
///     let (n, _buf) = Op::new(SendOp::new(fd, b"pong".to_vec())).await;
///     assert_eq!(n.unwrap(), 4);
///     let mut got = [0u8; 4];
///     theirs.read_exact(&mut got).unwrap();
///     assert_eq!(&got, b"pong");
/// });
/// ```
///
/// # Cancellation
///
/// Dropping the future cancels the send; the buffer is freed only after the
/// kernel's completion, and some of its bytes may have been sent.
pub struct SendOp<B> {
    fd: SharedFd,
    buf: B,
    flags: i32,
}

impl<B: IoBuf> SendOp<B> {
    /// Sends `buf` on `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     let (res, buf) = Op::new(SendOp::new(a, b"hi".to_vec())).await;
    ///     assert_eq!(res.unwrap(), 2);
    ///     assert_eq!(buf, b"hi"); // the buffer comes back
    ///     # drop(b);
    /// });
    /// ```
    pub fn new(fd: SharedFd, buf: B) -> SendOp<B> {
        SendOp {
            fd,
            buf,
            flags: libc::MSG_NOSIGNAL,
        }
    }

    /// Adds send(2) flags (`MSG_MORE`, `MSG_DONTWAIT`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     let send = SendOp::new(a, b"hi".to_vec()).flags(libc::MSG_DONTWAIT);
    ///     assert_eq!(Op::new(send).await.0.unwrap(), 2);
    ///     # drop(b);
    /// });
    /// ```
    pub fn flags(mut self, flags: i32) -> SendOp<B> {
        self.flags |= flags;
        self
    }
}

// SAFETY: the buffer and the fd handle are owned by the op until its CQE.
unsafe impl<B: IoBuf> OpCode for SendOp<B> {
    type Output = BufResult<usize, B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let len = super::sqe_len(self.buf.bytes_init());
        opcode::Send::new(types::Fd(self.fd.raw_fd()), self.buf.stable_ptr(), len)
            .flags(self.flags)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.buf)
    }
}

/// `IORING_OP_SEND_ZC` (Linux 6.0, see
/// [`Capabilities::send_zc`](crate::Capabilities::send_zc)): sends without
/// copying the buffer into the kernel; the NIC reads it in place.
///
/// The kernel posts two completions: the result, then a notification once it
/// no longer reads the buffer. The future completes at the notification with
/// the first result, so the buffer comes back only when it is free to reuse.
/// Worth it for large buffers (tens of KiB and up) on real NICs; on loopback
/// the kernel copies anyway.
///
/// `MSG_NOSIGNAL` is always set.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, SendZc};
/// use std::io::Read;
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().send_zc {
///         return;
///     }
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
///     let (mut server, _) = listener.accept().unwrap();
///     let fd = SharedFd::new(client.into());
///     let (n, _buf) = Op::new(SendZc::new(fd, vec![7u8; 1000])).await;
///     let n = n.unwrap();
///     let mut got = vec![0u8; n];
///     server.read_exact(&mut got).unwrap();
///     assert!(got.iter().all(|&b| b == 7));
/// });
/// ```
///
/// # Cancellation
///
/// As for [`SendOp`]; the buffer lives until the notification arrives.
pub struct SendZc<B> {
    fd: SharedFd,
    buf: B,
    flags: i32,
}

impl<B: IoBuf> SendZc<B> {
    /// Sends `buf` on `fd` without copying it.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendZc};
    ///
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().send_zc {
    ///         return; // zero-copy send needs Linux 6.0
    ///     }
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let _server = listener.accept().unwrap();
    ///     let (res, buf) = Op::new(SendZc::new(SharedFd::new(client.into()), vec![7u8; 4096])).await;
    ///     assert_eq!(res.unwrap(), 4096);
    ///     assert_eq!(buf.len(), 4096); // returned once the kernel is done with it
    /// });
    /// ```
    pub fn new(fd: SharedFd, buf: B) -> SendZc<B> {
        SendZc {
            fd,
            buf,
            flags: libc::MSG_NOSIGNAL,
        }
    }

    /// Adds send(2) flags.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendZc};
    ///
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().send_zc {
    ///         return;
    ///     }
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let _server = listener.accept().unwrap();
    ///     let send = SendZc::new(SharedFd::new(client.into()), vec![1u8; 64]).flags(libc::MSG_NOSIGNAL);
    ///     assert_eq!(Op::new(send).await.0.unwrap(), 64);
    /// });
    /// ```
    pub fn flags(mut self, flags: i32) -> SendZc<B> {
        self.flags |= flags;
        self
    }
}

// SAFETY: the buffer and the fd handle are owned by the op until its final
// (notification) CQE, which is when the driver hands the op back.
unsafe impl<B: IoBuf> OpCode for SendZc<B> {
    type Output = BufResult<usize, B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let len = super::sqe_len(self.buf.bytes_init());
        opcode::SendZc::new(types::Fd(self.fd.raw_fd()), self.buf.stable_ptr(), len)
            .flags(self.flags)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.buf)
    }
}

/// `IORING_OP_SENDMSG`: sends several owned buffers as one message (gather
/// write), optionally to an address (`sendto` on an unconnected datagram
/// socket).
///
/// `MSG_NOSIGNAL` is always set.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, SendMsg};
/// use socket2::SockAddr;
///
/// percore::run(async {
///     let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     let to = SockAddr::from(peer.local_addr().unwrap());
///     let fd = SharedFd::new(sock.into());
///     let bufs = vec![b"da".to_vec(), b"ta".to_vec()];
///     let (n, _bufs) = Op::new(SendMsg::new(fd, bufs, Some(to))).await;
///     assert_eq!(n.unwrap(), 4);
///     let mut got = [0u8; 8];
///     let (len, _) = peer.recv_from(&mut got).unwrap();
///     assert_eq!(&got[..len], b"data");
/// });
/// ```
///
/// # Cancellation
///
/// As for [`SendOp`]: buffers, iovecs and address live until the kernel's
/// completion.
pub struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// Heap-allocated so the kernel's view survives moves of the op.
    iovecs: Vec<libc::iovec>,
    addr: Option<Box<SockAddr>>,
    hdr: Box<libc::msghdr>,
    flags: u32,
}

impl<B: IoBuf> SendMsg<B> {
    /// Sends `bufs`, in order, as one message on `fd`, to `addr` if given.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendMsg};
    ///
    /// percore::run(async {
    ///     let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let to = socket2::SockAddr::from(receiver.local_addr().unwrap());
    ///     let bufs = vec![b"two ".to_vec(), b"parts".to_vec()];
    ///     let (res, _) = Op::new(SendMsg::new(SharedFd::new(sender.into()), bufs, Some(to))).await;
    ///     assert_eq!(res.unwrap(), 9);
    ///     let mut got = [0u8; 16];
    ///     assert_eq!(receiver.recv(&mut got).unwrap(), 9); // one datagram
    /// });
    /// ```
    pub fn new(fd: SharedFd, bufs: Vec<B>, addr: Option<SockAddr>) -> SendMsg<B> {
        SendMsg {
            fd,
            bufs,
            iovecs: Vec::new(),
            addr: addr.map(Box::new),
            // SAFETY: an all-zero msghdr is valid: null pointers, zero lengths.
            hdr: Box::new(unsafe { std::mem::zeroed() }),
            flags: libc::MSG_NOSIGNAL as u32,
        }
    }

    /// Adds sendmsg(2) flags.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, SendMsg};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     let send = SendMsg::new(a, vec![b"x".to_vec()], None).flags(libc::MSG_NOSIGNAL);
    ///     assert_eq!(Op::new(send).await.0.unwrap(), 1);
    ///     # drop(b);
    /// });
    /// ```
    pub fn flags(mut self, flags: i32) -> SendMsg<B> {
        self.flags |= flags as u32;
        self
    }
}

// SAFETY: buffers, iovec array, address and msghdr are owned by the op
// (heap allocations that do not move) until its CQE.
unsafe impl<B: IoBuf> OpCode for SendMsg<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn create_entry(&mut self) -> squeue::Entry {
        self.iovecs = self.bufs.iter().map(super::iovec_out).collect();
        let hdr = &mut *self.hdr;
        hdr.msg_iov = self.iovecs.as_mut_ptr();
        hdr.msg_iovlen = self.iovecs.len() as _;
        match &self.addr {
            Some(addr) => {
                hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                hdr.msg_namelen = addr.len();
            }
            None => {
                hdr.msg_name = std::ptr::null_mut();
                hdr.msg_namelen = 0;
            }
        }
        opcode::SendMsg::new(types::Fd(self.fd.raw_fd()), hdr)
            .flags(self.flags)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.bufs)
    }
}
