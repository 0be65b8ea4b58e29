use std::io;

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `IORING_OP_CONNECT`: connects a socket to `addr` (TCP handshake, Unix
/// path, or the default peer of a datagram socket).
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Connect, Op};
/// use socket2::{Domain, SockAddr, Socket, Type};
///
/// percore::run(async {
///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
///     let fd = SharedFd::new(sock.into());
///     Op::new(Connect::new(fd, SockAddr::from(addr))).await.unwrap();
///     let (_conn, _) = listener.accept().unwrap();
/// });
/// ```
///
/// # Errors
///
/// `ECONNREFUSED` when nothing listens at `addr`, `ETIMEDOUT`,
/// `ENETUNREACH`, ... as connect(2).
///
/// # Cancellation
///
/// Dropping the future cancels the connect; the socket is left in an
/// unspecified state and should be closed.
pub struct Connect {
    fd: SharedFd,
    /// Boxed: the kernel reads the address after the op moved.
    addr: Box<SockAddr>,
}

impl Connect {
    /// Connects `fd` to `addr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Connect};
    ///
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = socket2::SockAddr::from(listener.local_addr().unwrap());
    ///     let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    ///     let fd = SharedFd::new(std::os::fd::OwnedFd::from(socket));
    ///     Op::new(Connect::new(fd, addr)).await.unwrap();
    /// });
    /// ```
    pub fn new(fd: SharedFd, addr: SockAddr) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the address is boxed and owned by the op until its CQE; the fd is
// held by the op.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.raw_fd()),
            self.addr.as_ptr().cast(),
            self.addr.len(),
        )
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
