use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue};

use super::{CqeResult, OpCode};

/// `IORING_OP_SOCKET` (Linux 5.19): creates a socket through the ring.
///
/// `SOCK_CLOEXEC` is always added to the type. On kernels without the opcode
/// (see [`Capabilities::supports`](crate::Capabilities::supports)) call
/// socket(2) instead.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, Socket};
///
/// percore::run(async {
///     let caps = percore::capabilities().unwrap();
///     if caps.supports(io_uring::opcode::Socket::CODE) {
///         let fd = Op::new(Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0)).await.unwrap();
///         let sock = socket2::Socket::from(fd);
///         assert_eq!(sock.r#type().unwrap(), socket2::Type::STREAM);
///     }
/// });
/// ```
///
/// # Cancellation
///
/// A socket created after its future was dropped is closed when its
/// completion arrives.
#[derive(Debug)]
pub struct Socket {
    domain: i32,
    ty: i32,
    protocol: i32,
}

impl Socket {
    /// A socket of `domain` (`AF_INET`, `AF_INET6`, `AF_UNIX`), `ty`
    /// (`SOCK_STREAM`, `SOCK_DGRAM`, optionally or-ed with `SOCK_NONBLOCK`)
    /// and `protocol` (0 for the default).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Op, Socket};
    ///
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().supports(io_uring::opcode::Socket::CODE) {
    ///         return; // IORING_OP_SOCKET is Linux 5.19
    ///     }
    ///     let fd = Op::new(Socket::new(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)).await.unwrap();
    ///     drop(fd);
    /// });
    /// ```
    pub fn new(domain: i32, ty: i32, protocol: i32) -> Socket {
        Socket {
            domain,
            ty: ty | libc::SOCK_CLOEXEC,
            protocol,
        }
    }

    /// Whether the current core's kernel has `IORING_OP_SOCKET`; `false`
    /// outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let caps = percore::capabilities().unwrap();
    ///     assert_eq!(
    ///         percore::op::Socket::is_supported(),
    ///         caps.supports(io_uring::opcode::Socket::CODE)
    ///     );
    /// });
    /// ```
    pub fn is_supported() -> bool {
        crate::driver::current_capabilities()
            .is_some_and(|caps| caps.supports(opcode::Socket::CODE))
    }
}

// SAFETY: socket(2) through the ring references no user memory.
unsafe impl OpCode for Socket {
    type Output = io::Result<OwnedFd>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Socket::new(self.domain, self.ty, self.protocol).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this socket op's completion, handed over once
        // (caller): a success carries the new socket.
        cqe.result.map(|fd| unsafe { owned_fd(fd) })
    }

    unsafe fn abandon(&mut self, cqe: CqeResult) {
        // Nobody will use the new socket: close it.
        if let Ok(fd) = cqe.result {
            // SAFETY: as in `complete`.
            drop(unsafe { owned_fd(fd) });
        }
    }
}

/// Wraps a descriptor the kernel just created for an op's completion.
///
/// # Safety
///
/// `fd` is the result of a successful completion of an op that creates a
/// descriptor (socket, accept), and is wrapped once per such completion.
pub(super) unsafe fn owned_fd(fd: u32) -> OwnedFd {
    // SAFETY: the kernel created `fd` for that completion and nothing else
    // owns it (caller); it becomes owned here, once.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}
