use std::io;
use std::os::fd::OwnedFd;

use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};

use super::socket::owned_fd;
use super::{CqeResult, MultishotOpCode, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_ACCEPT`: accepts one connection and returns it with the peer's
/// address. The new socket is `SOCK_CLOEXEC`.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Accept, Op};
///
/// percore::run(async {
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
///     let fd = SharedFd::new(listener.into());
///     let (conn, peer) = Op::new(Accept::new(fd)).await.unwrap();
///     let client = client.join().unwrap();
///     assert_eq!(peer.as_socket(), Some(client.local_addr().unwrap()));
///     drop(conn);
/// });
/// ```
///
/// # Cancellation
///
/// If the future is dropped after the kernel accepted a connection, that
/// connection is closed when the completion arrives: nothing leaks.
pub struct Accept {
    fd: SharedFd,
    /// Boxed: the kernel writes the peer address here after the op moved.
    addr: Box<(SockAddrStorage, libc::socklen_t)>,
}

impl Accept {
    /// Accepts a connection on the listening socket `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Accept};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     let (socket, peer) = Op::new(Accept::new(SharedFd::new(listener.into()))).await.unwrap();
    ///     assert!(peer.as_socket().unwrap().ip().is_loopback());
    ///     drop(socket);
    /// });
    /// ```
    pub fn new(fd: SharedFd) -> Accept {
        let storage = SockAddrStorage::zeroed();
        let len = storage.size_of();
        Accept {
            fd,
            addr: Box::new((storage, len)),
        }
    }
}

// SAFETY: the address storage and its length are boxed and owned by the op
// until its CQE; the listening fd is held by the op.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;

    fn create_entry(&mut self) -> squeue::Entry {
        let (storage, len) = &mut *self.addr;
        opcode::Accept::new(
            types::Fd(self.fd.raw_fd()),
            (storage as *mut SockAddrStorage).cast(),
            len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this accept's completion, handed over once
        // (caller): a success carries the accepted socket.
        let fd = unsafe { owned_fd(cqe.result?) };
        let (storage, len) = *self.addr;
        // SAFETY: a successful completion of this accept (the `complete`
        // contract): the kernel wrote a sockaddr of the listener's family and
        // set `len` to its size (accept4(2)).
        let addr = unsafe { SockAddr::new(storage, len) };
        Ok((fd, addr))
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        // The connection was accepted but nobody will take it: close it.
        if let Ok(fd) = cqe.result {
            // SAFETY: as in `complete`.
            drop(unsafe { owned_fd(fd) });
        }
    }
}

/// Multishot `IORING_OP_ACCEPT` (Linux 5.19, see
/// [`Capabilities::multishot_accept`](crate::Capabilities::multishot_accept)):
/// one submission accepts connection after connection. Run it with
/// [`MultishotOp`](super::MultishotOp), whose `next` yields one accepted
/// socket (or the error that ended the op) per completion. It is not an
/// [`OpCode`]: as a plain [`Op`](super::Op) it would keep one connection of
/// many.
///
/// The kernel does not report peer addresses for multishot accepts; ask the
/// socket (getpeername) when needed.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{AcceptMulti, MultishotOp};
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().multishot_accept {
///         return;
///     }
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let clients = std::thread::spawn(move || {
///         (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect::<Vec<_>>()
///     });
///     let mut incoming = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
///     for _ in 0..2 {
///         let _conn = incoming.next().await.unwrap().unwrap();
///     }
///     clients.join().unwrap();
/// });
/// ```
///
/// Only a completion of the op itself becomes a socket: safe code cannot
/// turn another completion (or any number) into an `OwnedFd`.
///
/// ```compile_fail,E0133
/// use percore::op::{AcceptMulti, CqeResult, MultishotOpCode};
///
/// fn forge(op: &mut AcceptMulti, cqe: CqeResult) {
///     let _socket = op.complete_next(cqe);
/// }
/// ```
///
/// # Cancellation
///
/// Dropping the `MultishotOp` cancels it; connections accepted before the
/// cancel took effect, and not yet taken, are closed.
pub struct AcceptMulti {
    fd: SharedFd,
}

impl AcceptMulti {
    /// Accepts connections on the listening socket `fd` until cancelled or
    /// until an error ends the op.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{MultishotOp, AcceptMulti};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    ///     let _client = std::net::TcpStream::connect(addr).unwrap();
    ///     let socket = accepts.next().await.unwrap().unwrap();
    ///     drop(socket);
    /// });
    /// ```
    pub fn new(fd: SharedFd) -> AcceptMulti {
        AcceptMulti { fd }
    }
}

// SAFETY: multishot accept passes no address buffer; the listening fd is
// held by the op until its final completion.
unsafe impl MultishotOpCode for AcceptMulti {
    /// The socket of one completion, or the error it reports (`EMFILE`,
    /// `ENFILE`, ...; an error ends the multishot op, the next `next`
    /// re-arms it).
    type Item = io::Result<OwnedFd>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd.raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    unsafe fn complete_next(&mut self, cqe: CqeResult) -> Self::Item {
        // SAFETY: `cqe` is a completion of this accept, handed over once
        // (caller): a success carries a newly accepted socket.
        cqe.result.map(|fd| unsafe { owned_fd(fd) })
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        if let Ok(fd) = cqe.result {
            // SAFETY: as in `complete_next`.
            drop(unsafe { owned_fd(fd) });
        }
    }
}
