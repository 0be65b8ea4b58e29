//! One ephemeral port for every core's listener.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::sys;
use crate::tcp::TcpListener;

/// A TCP address whose port is fixed for a sharded server: the way to give
/// every core's listener the same port when you ask for port 0.
///
/// A server on several cores binds one listener per core with
/// `SO_REUSEPORT` ([`TcpListener::bind_reuseport`]), and the kernel spreads
/// connections across them. With port 0, each of those binds would get a
/// port of its own. `ReservedPort::new("127.0.0.1:0")` picks the port once
/// (a socket bound with `SO_REUSEADDR` and `SO_REUSEPORT` that does not
/// listen, so the kernel never hands it a connection), and
/// [`listener`](ReservedPort::listener) binds each core's listener to that
/// port. A fixed port works the same way.
///
/// The reservation is `Send`, `Sync` and cheap to clone, so the closure of
/// [`Runtime::run_on_every_core`](percore::Runtime::run_on_every_core) can own
/// it; the port stays reserved until the last clone is dropped, and stays
/// bound while any listener holds it.
///
/// # Examples
///
/// ```
/// use percore_net::{ReservedPort, TcpStream};
///
/// let port = ReservedPort::new("127.0.0.1:0").unwrap();
/// let addr = port.local_addr();
/// let out = percore::Runtime::builder()
///     .cores(2)
///     .build()
///     .unwrap()
///     .run_on_every_core(move |_core| {
///         let listener = port.listener(); // every core: the same port
///         async move {
///             let listener = listener.unwrap();
///             // Each core connects to itself here; the kernel may hand the
///             // connection to either core's listener.
///             let _conn = TcpStream::connect(addr).await.unwrap();
///             listener.local_addr().unwrap()
///         }
///     })
///     .unwrap();
/// assert_eq!(out, [addr, addr]);
/// ```
#[derive(Clone)]
pub struct ReservedPort {
    socket: Arc<Socket>,
    addr: SocketAddr,
}

impl ReservedPort {
    /// Reserves `addr`'s port (picking one when it is 0). The first address
    /// that works is used.
    ///
    /// # Errors
    ///
    /// `EADDRINUSE` when a socket without `SO_REUSEPORT` holds the port,
    /// `EACCES`, or a resolution error; the message names the address.
    ///
    /// # Examples
    ///
    /// ```
    /// let port = percore_net::ReservedPort::new("127.0.0.1:0").unwrap();
    /// assert_ne!(port.local_addr().port(), 0);
    /// ```
    pub fn new(addr: impl ToSocketAddrs) -> io::Result<ReservedPort> {
        sys::each_addr(addr, |a| {
            let reserve = || {
                let socket = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                socket.set_reuse_port(true)?;
                socket.bind(&SockAddr::from(a))?;
                let addr = sys::inet(socket.local_addr()?)?;
                Ok(ReservedPort {
                    socket: Arc::new(socket),
                    addr,
                })
            };
            reserve().map_err(|e| sys::with_addr(e, "bind", a))
        })
    }

    /// The reserved address, with its port filled in.
    ///
    /// # Examples
    ///
    /// ```
    /// let port = percore_net::ReservedPort::new("127.0.0.1:0").unwrap();
    /// assert!(port.local_addr().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A listener on the reserved address, for the calling core
    /// ([`TcpListener::bind_reuseport`] on [`local_addr`](ReservedPort::local_addr)).
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{ReservedPort, TcpStream};
    ///
    /// percore::run(async {
    ///     let port = ReservedPort::new("127.0.0.1:0").unwrap();
    ///     let listener = port.listener().unwrap();
    ///     assert_eq!(listener.local_addr().unwrap(), port.local_addr());
    ///     let _client = TcpStream::connect(port.local_addr()).await.unwrap();
    ///     listener.accept().await.unwrap();
    /// });
    /// ```
    pub fn listener(&self) -> io::Result<TcpListener> {
        TcpListener::bind_reuseport(self.addr)
    }
}

impl fmt::Debug for ReservedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReservedPort")
            .field("addr", &self.addr)
            .field("socket", &self.socket)
            .finish()
    }
}
