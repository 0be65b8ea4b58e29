//! A stream of accepted connections: multishot accept when the kernel has it.

use std::fmt;
use std::io;

use percore::fd::SharedFd;
use percore::op::{Accept, AcceptMulti, MultishotOp, Op};

use crate::stream::StreamSocket;

/// Accepted connections of a listener, from
/// [`TcpListener::incoming`](crate::TcpListener::incoming) or
/// [`UnixListener::incoming`](crate::UnixListener::incoming).
///
/// With multishot accept (Linux 5.19) one submission keeps accepting; each
/// [`next`](Incoming::next) takes one connection. Without it, each `next` is
/// one accept.
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let mut incoming = listener.incoming();
///     for _ in 0..3 {
///         let client = percore::spawn(async move { TcpStream::connect(addr).await.unwrap() });
///         let conn = incoming.next().await.unwrap();
///         assert_eq!(conn.peer_addr().unwrap(), client.await.unwrap().local_addr().unwrap());
///     }
/// });
/// ```
///
/// # Errors
///
/// `next` reports accept errors one by one (`EMFILE` when out of
/// descriptors, `ENFILE`, `ECONNABORTED`, ...) and keeps working after them;
/// back off briefly on `EMFILE` rather than retrying in a tight loop.
///
/// # Cancellation
///
/// Dropping a `next()` future loses nothing: connections wait in the
/// `Incoming` until the next call. Dropping the `Incoming` cancels the
/// accept; connections the kernel accepted meanwhile are closed.
pub struct Incoming<S> {
    listener: SharedFd,
    multi: Option<MultishotOp<AcceptMulti>>,
    _socket: std::marker::PhantomData<fn() -> S>,
}

impl<S> Incoming<S> {
    pub(crate) fn new(listener: SharedFd) -> Incoming<S> {
        let multishot = percore::capabilities().is_some_and(|c| c.multishot_accept);
        Incoming {
            multi: multishot.then(|| MultishotOp::new(AcceptMulti::new(listener.clone()))),
            listener,
            _socket: std::marker::PhantomData,
        }
    }

    async fn next_fd(&mut self) -> io::Result<SharedFd> {
        match &mut self.multi {
            Some(op) => match op.next().await {
                Some(socket) => socket.map(SharedFd::new),
                None => Err(io::Error::from_raw_os_error(libc::ECANCELED)),
            },
            None => {
                let (fd, _) = Op::new(Accept::new(self.listener.clone())).await?;
                Ok(SharedFd::new(fd))
            }
        }
    }

    /// Whether one multishot accept serves all connections.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let incoming = listener.incoming();
    ///     // One multishot accept where the kernel has it, else one accept per call.
    ///     let caps = percore::capabilities().unwrap();
    ///     assert_eq!(incoming.is_multishot(), caps.multishot_accept);
    /// });
    /// ```
    pub fn is_multishot(&self) -> bool {
        self.multi.is_some()
    }
}

impl<S: StreamSocket> Incoming<S> {
    /// Waits for the next connection: a `TcpStream` from a `TcpListener`, a
    /// `UnixStream` from a `UnixListener`.
    ///
    /// # Errors
    ///
    /// See [`Incoming`]; an error ends nothing, the next call accepts again.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let mut incoming = listener.incoming();
    ///     let _a = TcpStream::connect(addr).await.unwrap();
    ///     let _b = TcpStream::connect(addr).await.unwrap();
    ///     for _ in 0..2 {
    ///         let conn = incoming.next().await.unwrap();
    ///         assert_eq!(conn.local_addr().unwrap(), addr);
    ///     }
    /// });
    /// ```
    pub async fn next(&mut self) -> io::Result<S> {
        self.next_fd().await.map(S::from_fd)
    }
}

impl<S> fmt::Debug for Incoming<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("listener", &self.listener)
            .field("multishot", &self.multi.is_some())
            .finish()
    }
}
