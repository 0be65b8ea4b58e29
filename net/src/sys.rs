//! Socket creation and address helpers shared by the socket types.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use percore::fd::SharedFd;
use percore::op::{self, Op};
use socket2::{Domain, SockAddr, Socket, Type};

/// `AsFd`, `AsRawFd` and `Debug` for a socket type whose `SharedFd` is at
/// `self.<path>`; `Debug` shows the descriptor and, after `;`, each named
/// address getter's answer:
/// `socket_traits!(TcpStream, inner.fd; local = local_addr, peer = peer_addr)`.
macro_rules! socket_traits {
    ($ty:ident, $($field:ident).+ $(; $($name:ident = $getter:ident),+)?) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.$($field).+.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.$($field).+.raw_fd()
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.$($field).+.raw_fd())
                    $($(.field(stringify!($name), &self.$getter().ok()))+)?
                    .finish()
            }
        }
    };
}
pub(crate) use socket_traits;

/// The listen backlog of every listener, TCP and Unix; the kernel caps it
/// at `net.core.somaxconn`.
pub(crate) const LISTEN_BACKLOG: i32 = 4096;

/// A new socket through the ring (`IORING_OP_SOCKET`) when the kernel has it,
/// else through socket(2). Close-on-exec either way.
pub(crate) async fn socket(domain: Domain, ty: Type) -> io::Result<SharedFd> {
    if op::Socket::is_supported() {
        let fd = Op::new(op::Socket::new(domain.into(), ty.into(), 0)).await?;
        Ok(SharedFd::new(fd))
    } else {
        socket_sync(domain, ty)
    }
}

/// A new close-on-exec socket through socket(2), for set-up paths that are
/// synchronous anyway (bind, listen).
pub(crate) fn socket_sync(domain: Domain, ty: Type) -> io::Result<SharedFd> {
    Ok(SharedFd::new(Socket::new(domain, ty, None)?.into()))
}

/// Resolves `addr`; an empty answer is an error.
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// Tries `f` on each address in turn and returns the first success, or the
/// last error.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returned at least one address"))
}

/// `err` with the operation and the address it failed on in its message
/// (`connect 127.0.0.1:1: Connection refused (os error 111)`). The kind is
/// kept; the errno stays reachable through `source()`, which
/// `percore::IoErrorExt::os_error` follows (std's `raw_os_error()` is
/// `None` for any error that carries a message).
pub(crate) fn with_addr(err: io::Error, op: &'static str, addr: impl fmt::Display) -> io::Error {
    io::Error::new(
        err.kind(),
        AddrError {
            op,
            addr: addr.to_string(),
            source: err,
        },
    )
}

/// The error inside [`with_addr`]'s `io::Error`.
#[derive(Debug)]
struct AddrError {
    op: &'static str,
    addr: String,
    source: io::Error,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.addr, self.source)
    }
}

impl std::error::Error for AddrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A Unix socket address for messages: its path, `@name` for an abstract
/// one, or `(unnamed)`.
pub(crate) fn unix_name(addr: &SockAddr) -> String {
    if let Some(path) = addr.as_pathname() {
        path.display().to_string()
    } else if let Some(name) = addr.as_abstract_namespace() {
        format!("@{}", String::from_utf8_lossy(name))
    } else {
        "(unnamed)".to_string()
    }
}

/// An IP socket address out of a `SockAddr`.
pub(crate) fn inet(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel returned a non-IP socket address",
        )
    })
}
