use std::io;

use io_uring::{cqueue, opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};

use super::{CqeResult, MultishotOp, MultishotOpCode, OpCode};

/// `IORING_RECVSEND_POLL_FIRST`, which the io-uring crate does not export.
const RECVSEND_POLL_FIRST: u16 = 1;
use crate::buf::{BufResult, BufRing, IoBufMut, ProvidedBuf, no_room};
use crate::driver::op::{DirectBuf, DirectTarget};
use crate::fd::SharedFd;

/// `IORING_OP_RECV`: receives from a socket into an owned buffer's spare room
/// (after its initialized bytes). `Ok(0)` is end of stream; a buffer with no
/// spare room is an `InvalidInput` error (see
/// [`read_room`](crate::buf::read_room)), unless `MSG_TRUNC` is among the
/// [`flags`](Recv::flags) (a datagram-size probe).
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, Recv};
/// use std::io::Write;
///
/// percore::run(async {
///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
///     theirs.write_all(b"ping").unwrap();
///     let fd = SharedFd::new(mine.into());
///     let (n, buf) = Op::new(Recv::new(fd, Vec::with_capacity(16))).await;
///     assert_eq!(n.unwrap(), 4);
///     assert_eq!(buf, b"ping");
/// });
/// ```
///
/// # Cancellation
///
/// Dropping the future cancels the receive; the buffer is freed only after
/// the kernel's completion, and bytes it received are lost.
pub struct Recv<B> {
    fd: SharedFd,
    buf: B,
    flags: i32,
    ioprio: u16,
    /// The buffer had no spare room: the SQE is a no-op and the result an error.
    no_room: bool,
}

impl<B: IoBufMut> Recv<B> {
    /// Receives from `fd` into `buf`'s spare capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Recv, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     Op::new(SendOp::new(a, b"hi".to_vec())).await.0.unwrap();
    ///     let (res, buf) = Op::new(Recv::new(b, Vec::with_capacity(8))).await;
    ///     assert_eq!((res.unwrap(), &buf[..]), (2, &b"hi"[..]));
    /// });
    /// ```
    pub fn new(fd: SharedFd, buf: B) -> Recv<B> {
        Recv {
            fd,
            buf,
            flags: 0,
            ioprio: 0,
            no_room: false,
        }
    }

    /// Waits for data before the first receive attempt
    /// (`IORING_RECVSEND_POLL_FIRST`): cheaper when the socket is known to
    /// be drained, as after answering a request; needs
    /// [`Capabilities::recv_poll_first`](crate::Capabilities::recv_poll_first)
    /// (older kernels reject the entry with `EINVAL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Recv};
    /// use std::io::Write;
    ///
    /// percore::run(async {
    ///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let fd = SharedFd::new(mine.into());
    ///     let recv = Op::new(Recv::new(fd, Vec::with_capacity(4)).poll_first());
    ///     theirs.write_all(b"late").unwrap();
    ///     let (n, _) = recv.await;
    ///     assert_eq!(n.unwrap(), 4);
    /// });
    /// ```
    pub fn poll_first(mut self) -> Recv<B> {
        self.ioprio |= RECVSEND_POLL_FIRST;
        self
    }

    /// Adds recv(2) flags (`MSG_PEEK`, `MSG_WAITALL`, `MSG_DONTWAIT`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Recv, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     Op::new(SendOp::new(a, b"peek".to_vec())).await.0.unwrap();
    ///     // MSG_PEEK leaves the data queued for the next receive.
    ///     let (res, _) = Op::new(Recv::new(b.clone(), Vec::with_capacity(8)).flags(libc::MSG_PEEK)).await;
    ///     assert_eq!(res.unwrap(), 4);
    ///     let (res, _) = Op::new(Recv::new(b, Vec::with_capacity(8))).await;
    ///     assert_eq!(res.unwrap(), 4);
    /// });
    /// ```
    pub fn flags(mut self, flags: i32) -> Recv<B> {
        self.flags |= flags;
        self
    }
}

// SAFETY: the buffer and the fd handle are owned by the op until its CQE;
// `IoBufMut` guarantees the pointer is stable when the op moves.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let (ptr, spare) = self.buf.spare_room();
        if spare == 0 && self.flags & libc::MSG_TRUNC == 0 {
            self.no_room = true;
            return opcode::Nop::new().build();
        }
        opcode::Recv::new(types::Fd(self.fd.raw_fd()), ptr, super::sqe_len(spare))
            .flags(self.flags)
            .ioprio(self.ioprio)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this op's own completion (the `complete`
        // contract, kept by the driver); with MSG_TRUNC its count may exceed
        // the room, which `bytes_in` caps.
        unsafe { super::bytes_in(cqe, self.buf, self.no_room) }
    }
}

/// `IORING_OP_RECV` with buffer selection: the kernel picks a buffer from a
/// [`BufRing`] when data arrives, so a waiting receive holds no memory.
///
/// Multishot (one submission, a completion per arrival) when the kernel has it
/// ([`Capabilities::multishot_recv`](crate::Capabilities::multishot_recv),
/// 6.0), else one receive per submission. Run it with [`MultishotOp`] and
/// take the data with [`MultishotOp::next_buf`], which re-arms the receive
/// whenever it has ended. It is not an [`OpCode`]: as a plain
/// [`Op`](super::Op) it would keep one buffer of many.
///
/// When the ring is empty the receive ends with `ENOBUFS`; calling `next_buf`
/// again re-arms it (useful once buffers were dropped back into the ring),
/// or receive into an owned buffer with [`Recv`] meanwhile.
///
/// # Examples
///
/// ```
/// use percore::buf::BufRing;
/// use percore::fd::SharedFd;
/// use percore::op::{MultishotOp, RecvMulti};
/// use std::io::Write;
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().buf_ring {
///         return;
///     }
///     let ring = BufRing::new(8, 512).unwrap();
///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
///     let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
///     theirs.write_all(b"one").unwrap();
///     assert_eq!(&recv.next_buf().await.unwrap().unwrap()[..], b"one");
///     drop(theirs);
///     assert!(recv.next_buf().await.unwrap().is_none()); // end of stream
/// });
/// ```
///
/// # Cancellation
///
/// Dropping the `MultishotOp` cancels the receive. Data that arrived and was
/// not taken is lost; its buffers go back to the ring.
pub struct RecvMulti {
    fd: SharedFd,
    ring: BufRing,
    multishot: bool,
}

impl RecvMulti {
    /// Receives from `fd` into buffers picked from `ring`.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{MultishotOp, RecvMulti};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let mut recv = MultishotOp::new(RecvMulti::new(b, &ring));
    ///     drop(a);
    ///     assert!(recv.next_buf().await.unwrap().is_none()); // the peer closed
    /// });
    /// ```
    pub fn new(fd: SharedFd, ring: &BufRing) -> RecvMulti {
        let multishot = crate::driver::current_capabilities()
            .expect("RecvMulti::new outside a runtime")
            .multishot_recv;
        RecvMulti {
            fd,
            ring: ring.clone(),
            multishot,
        }
    }

    /// Whether the kernel re-posts completions from one submission.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{RecvMulti};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let op = RecvMulti::new(b, &ring);
    ///     // One submission for many receives where the kernel has it (6.0).
    ///     assert_eq!(op.is_multishot(), percore::capabilities().unwrap().multishot_recv);
    ///     # drop(a);
    /// });
    /// ```
    pub fn is_multishot(&self) -> bool {
        self.multishot
    }

    /// The ring the receive picks buffers from.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{RecvMulti};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let op = RecvMulti::new(b, &ring);
    ///     assert_eq!(op.ring().bgid(), ring.bgid());
    ///     # drop(a);
    /// });
    /// ```
    pub fn ring(&self) -> &BufRing {
        &self.ring
    }

    /// The descriptor the receive reads from.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::RecvMulti;
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let raw = b.raw_fd();
    ///     let op = RecvMulti::new(b, &ring);
    ///     assert_eq!(op.fd().raw_fd(), raw);
    ///     # drop(a);
    /// });
    /// ```
    pub fn fd(&self) -> &SharedFd {
        &self.fd
    }

    /// Turns a completion of this op into its result.
    ///
    /// # Safety
    ///
    /// `cqe` must be a completion of this op's SQE, converted at most once.
    #[inline]
    unsafe fn buf_of(&self, cqe: CqeResult) -> io::Result<Option<ProvidedBuf>> {
        let bid = cqueue::buffer_select(cqe.flags);
        match (cqe.result, bid) {
            // No data: the driver already put back a buffer the kernel used
            // up without data (`Pool::on_cqe`).
            (Ok(0), _) => Ok(None),
            // SAFETY: the kernel picked `bid` from `self.ring` (the SQE
            // names its group, on the ring's own io_uring: checked in
            // `create_entry`) and wrote `n` bytes at the offset the driver
            // counted when it reaped this completion (caller: converted once).
            (Ok(n), Some(bid)) => Ok(Some(unsafe {
                self.ring.take(bid, cqe.buf_offset, n as usize)
            })),
            (Ok(n), None) => panic!("recv completion of {n} bytes without a buffer"),
            (Err(err), _) => Err(err),
        }
    }
}

// SAFETY: no user memory in the SQE: the kernel picks a buffer of `ring`,
// which the op keeps registered and alive (a clone of the `Rc`), on the
// io_uring it is registered with (`create_entry` checks); the fd is held by
// the op.
unsafe impl MultishotOpCode for RecvMulti {
    /// The buffer of one completion (`None` at end of stream).
    type Item = io::Result<Option<ProvidedBuf>>;

    /// # Panics
    ///
    /// If the ring is registered with another runtime's io_uring than the
    /// current one: the kernel would pick from a different ring with the same
    /// group id, and its buffer ids would be read against this one.
    fn create_entry(&mut self) -> squeue::Entry {
        assert!(
            self.ring.is_current(),
            "percore: a RecvMulti was armed on a different runtime than the one its BufRing is registered with"
        );
        let fd = types::Fd(self.fd.raw_fd());
        if self.multishot {
            opcode::RecvMulti::new(fd, self.ring.bgid()).build()
        } else {
            opcode::Recv::new(fd, std::ptr::null_mut(), self.ring.buf_len() as u32)
                .buf_group(self.ring.bgid())
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
    }

    #[inline]
    unsafe fn complete_next(&mut self, cqe: CqeResult) -> Self::Item {
        // SAFETY: `cqe` is a completion of this op's SQE, handed over once
        // (caller: `MultishotOp` takes it out of the op's slot, and a
        // `CqeResult` is neither `Clone` nor constructible outside the
        // driver).
        unsafe { self.buf_of(cqe) }
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        if let (Ok(1..), Some(bid)) = (&cqe.result, cqueue::buffer_select(cqe.flags)) {
            // SAFETY: the kernel picked `bid` from this ring for this
            // completion (caller), whose data nobody will take: release it.
            unsafe { self.ring.release(bid) };
        }
    }

    #[inline]
    fn direct_item(&mut self, buf: DirectBuf) -> Option<Self::Item> {
        Some(Ok(Some(buf.0)))
    }
}

impl MultishotOp<RecvMulti> {
    /// Receives only when asked: on the epoll driver each
    /// [`next`](MultishotOp::next) receives straight into a ring buffer
    /// inside its poll when the socket is readable (one `recv`, no
    /// completion queue, no wake-up), and otherwise waits for readiness
    /// with no buffer taken. Without it the epoll driver receives as the
    /// kernel does, as soon as data arrives, into completions that wait in
    /// the op. On io_uring the kernel receives as before either way.
    ///
    /// Data the op did not take stays in the socket, so completions are
    /// handed out in the order they are asked for, and dropping the op
    /// loses nothing. `percore_net`'s `PooledRecv` receives this way.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{MultishotOp, RecvMulti};
    /// use std::io::Write;
    ///
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let fd = SharedFd::new(mine.into());
    ///     let mut recv = MultishotOp::new(RecvMulti::new(fd, &ring)).on_demand();
    ///     theirs.write_all(b"asked").unwrap();
    ///     assert_eq!(&recv.next_buf().await.unwrap().unwrap()[..], b"asked");
    /// });
    /// ```
    pub fn on_demand(mut self) -> Self {
        let op = self.data();
        let target = DirectTarget {
            fd: op.fd.raw_fd(),
            bgid: op.ring.bgid(),
            span: op.multishot,
            ring: op.ring.driver_id(),
            pool: op.ring.pool().clone(),
        };
        self.set_on_demand(target);
        self
    }

    /// Waits for the next received data: a buffer of the ring, `Ok(None)` at
    /// end of stream, or the error that ended the receive (`ENOBUFS` when the
    /// ring was empty, `ECONNRESET`, ...). An ended receive is re-armed by the
    /// next call; after [`MultishotOp::cancel`] it ends with `ECANCELED`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{MultishotOp, RecvMulti, SendOp, Op};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 256).unwrap();
    ///     let mut recv = MultishotOp::new(RecvMulti::new(b, &ring));
    ///     Op::new(SendOp::new(a, b"one".to_vec())).await.0.unwrap();
    ///     assert_eq!(&recv.next_buf().await.unwrap().unwrap()[..], b"one");
    /// });
    /// ```
    pub async fn next_buf(&mut self) -> io::Result<Option<ProvidedBuf>> {
        self.next()
            .await
            .unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ECANCELED)))
    }
}

/// Storage the kernel reads and writes for a `recvmsg(2)`/`sendmsg(2)`: boxed
/// once, so the pointers inside `msghdr` stay valid when the op moves.
pub(super) struct MsgParts {
    pub(super) hdr: libc::msghdr,
    pub(super) addr: SockAddrStorage,
}

impl MsgParts {
    pub(super) fn new() -> Box<MsgParts> {
        Box::new(MsgParts {
            // SAFETY: an all-zero msghdr is valid: null pointers, zero lengths.
            hdr: unsafe { std::mem::zeroed() },
            addr: SockAddrStorage::zeroed(),
        })
    }
}

/// `IORING_OP_RECVMSG`: receives one message (a datagram, or stream bytes)
/// into an owned buffer's spare room and returns the sender's address. A
/// buffer with no spare room is an `InvalidInput` error, unless `MSG_TRUNC`
/// is among the [`flags`](RecvMsg::flags) (a datagram-size probe).
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, RecvMsg};
///
/// percore::run(async {
///     let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     let addr = sock.local_addr().unwrap();
///     let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
///     peer.send_to(b"dgram", addr).unwrap();
///     let fd = SharedFd::new(sock.into());
///     let (res, buf) = Op::new(RecvMsg::new(fd, Vec::with_capacity(64))).await;
///     let (n, from) = res.unwrap();
///     assert_eq!(&buf[..n], b"dgram");
///     assert_eq!(from.as_socket(), Some(peer.local_addr().unwrap()));
/// });
/// ```
///
/// # Cancellation
///
/// As for [`Recv`]: the buffer and address storage live until the
/// kernel's completion.
pub struct RecvMsg<B> {
    fd: SharedFd,
    buf: B,
    iov: Box<libc::iovec>,
    parts: Box<MsgParts>,
    flags: u32,
    /// The buffer had no spare room: the SQE is a no-op and the result an error.
    no_room: bool,
}

impl<B: IoBufMut> RecvMsg<B> {
    /// Receives a message from `fd` into `buf`'s spare capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, RecvMsg, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     Op::new(SendOp::new(a, b"msg".to_vec())).await.0.unwrap();
    ///     let (res, buf) = Op::new(RecvMsg::new(b, Vec::with_capacity(8))).await;
    ///     let (n, _from) = res.unwrap();
    ///     assert_eq!(&buf[..n], b"msg");
    /// });
    /// ```
    pub fn new(fd: SharedFd, buf: B) -> RecvMsg<B> {
        RecvMsg {
            fd,
            buf,
            iov: Box::new(libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }),
            parts: MsgParts::new(),
            flags: 0,
            no_room: false,
        }
    }

    /// Adds recvmsg(2) flags (`MSG_PEEK`, `MSG_TRUNC`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, RecvMsg, SendOp};
    ///
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     Op::new(SendOp::new(a, b"msg".to_vec())).await.0.unwrap();
    ///     let (res, _) = Op::new(RecvMsg::new(b, Vec::with_capacity(8)).flags(libc::MSG_PEEK)).await;
    ///     assert_eq!(res.unwrap().0, 3);
    /// });
    /// ```
    pub fn flags(mut self, flags: i32) -> RecvMsg<B> {
        self.flags |= flags as u32;
        self
    }
}

// SAFETY: the buffer, the iovec and the msghdr with its address storage are
// owned by the op (boxed or stable buffers) until its CQE.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    /// Bytes received and the sender's address.
    type Output = BufResult<(usize, SockAddr), B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let iov = super::iovec_in(&mut self.buf);
        if iov.iov_len == 0 && self.flags & libc::MSG_TRUNC as u32 == 0 {
            self.no_room = true;
            return opcode::Nop::new().build();
        }
        *self.iov = iov;
        let parts = &mut *self.parts;
        parts.hdr.msg_name = (&mut parts.addr as *mut SockAddrStorage).cast();
        parts.hdr.msg_namelen = parts.addr.size_of();
        parts.hdr.msg_iov = &mut *self.iov;
        parts.hdr.msg_iovlen = 1;
        opcode::RecvMsg::new(types::Fd(self.fd.raw_fd()), &mut parts.hdr)
            .flags(self.flags)
            .build()
    }

    unsafe fn complete(mut self, cqe: CqeResult) -> Self::Output {
        if self.no_room {
            return (cqe.result.and(Err(no_room())), self.buf);
        }
        let res = match cqe.result {
            Ok(n) => {
                // SAFETY: `cqe` is this op's own completion (the `complete`
                // contract, kept by the driver): the kernel wrote `n` bytes
                // into the spare room (with MSG_TRUNC `n` is the datagram's
                // real length, which `mark_read` caps at the room).
                unsafe { super::mark_read(&mut self.buf, n as usize) };
                let len = self.parts.hdr.msg_namelen;
                let storage = std::mem::replace(&mut self.parts.addr, SockAddrStorage::zeroed());
                // SAFETY: a successful completion of this op (the `complete`
                // contract): the kernel wrote the sender's address of the
                // socket's family and its length into `msg_name`/`msg_namelen`.
                let addr = unsafe { SockAddr::new(storage, len) };
                Ok((n as usize, addr))
            }
            Err(err) => Err(err),
        };
        (res, self.buf)
    }
}
