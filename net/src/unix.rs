//! Unix domain sockets: stream listener and connections, the stream's owned
//! halves, datagrams.
//!
//! Addresses are [`SockAddr`]s: `as_pathname()` for a filesystem path,
//! `as_abstract_namespace()` for Linux abstract names, `is_unnamed()` for a
//! socket that was never bound.
//!
//! The socket types are also at the crate root; the halves from
//! [`UnixStream::into_split`] are named here, as in `tokio::net::unix`.
//!
//! ```
//! use percore_net::UnixStream;
//! use percore_net::unix::{OwnedReadHalf, OwnedWriteHalf};
//!
//! percore::run(async {
//!     let (a, b) = UnixStream::pair().unwrap();
//!     let (rd, wr): (OwnedReadHalf, OwnedWriteHalf) = a.into_split();
//!     wr.write_all(&b"to b"[..]).await.0.unwrap();
//!     let (res, buf) = b.read_exact(Vec::with_capacity(4)).await;
//!     res.unwrap();
//!     assert_eq!(buf, b"to b");
//!     # drop(rd);
//! });
//! ```

use std::io;
use std::net::Shutdown;

use std::path::Path;

use percore::buf::{BufResult, BufRing, IoBuf, IoBufMut};
use percore::fd::SharedFd;
use percore::op::{Accept, Connect, Op, Recv, RecvMsg, SendMsg, SendOp};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::incoming::Incoming;
use crate::pooled::PooledRecv;
use crate::split;
use crate::stream::{Stream, StreamSocket, stream_io};
use crate::sys;

/// The read half of a [`UnixStream`], from [`UnixStream::into_split`].
///
/// Both halves share the socket; it closes when both are dropped (and no op
/// uses it any more).
///
/// # Examples
///
/// ```
/// use percore_net::{UnixStream, unix::OwnedReadHalf};
///
/// percore::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (rd, _wr) = a.into_split();
///     let reader = percore::spawn(async move {
///         let rd: OwnedReadHalf = rd;
///         rd.read_exact(Vec::with_capacity(2)).await.1
///     });
///     b.write_all(&b"hi"[..]).await.0.unwrap();
///     assert_eq!(reader.await.unwrap(), b"hi");
/// });
/// ```
pub type OwnedReadHalf = split::OwnedReadHalf<UnixStream>;

/// The write half of a [`UnixStream`], from [`UnixStream::into_split`].
///
/// Dropping it does not shut the connection down; call its `shutdown` to
/// let the peer read end of stream.
///
/// # Examples
///
/// ```
/// use percore_net::{UnixStream, unix::OwnedWriteHalf};
///
/// percore::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (_rd, wr) = a.into_split();
///     let wr: OwnedWriteHalf = wr;
///     wr.write_all(&b"bye"[..]).await.0.unwrap();
///     wr.shutdown().await.unwrap();
///     let (res, buf) = b.read(Vec::with_capacity(8)).await;
///     assert_eq!((res.unwrap(), &buf[..]), (3, &b"bye"[..]));
///     assert_eq!(b.read(Vec::with_capacity(8)).await.0.unwrap(), 0);
/// });
/// ```
pub type OwnedWriteHalf = split::OwnedWriteHalf<UnixStream>;

/// The halves given to `OwnedReadHalf::reunite` came from different
/// Unix streams; both come back in it.
///
/// # Examples
///
/// ```
/// use percore_net::{UnixStream, unix::ReuniteError};
///
/// percore::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (a_rd, _a_wr) = a.into_split();
///     let (_b_rd, b_wr) = b.into_split();
///     let err: ReuniteError = a_rd.reunite(b_wr).unwrap_err();
///     assert_eq!(err.to_string(), "tried to reunite halves of different streams");
/// });
/// ```
pub type ReuniteError = split::ReuniteError<UnixStream>;

/// A Unix stream socket that accepts connections.
///
/// # Examples
///
/// ```
/// use percore_net::{UnixListener, UnixStream};
///
/// percore::run(async {
///     let dir = std::env::temp_dir().join(format!("percore-doc-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     let path = dir.join("listener.sock");
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path).unwrap();
///     let client = UnixStream::connect(&path).await.unwrap();
///     let (conn, _peer) = listener.accept().await.unwrap();
///     client.write_all(&b"hi"[..]).await.0.unwrap();
///     let (res, buf) = conn.read_exact(Vec::with_capacity(2)).await;
///     res.unwrap();
///     assert_eq!(buf, b"hi");
///     std::fs::remove_dir_all(&dir).unwrap();
/// });
/// ```
pub struct UnixListener {
    fd: SharedFd,
}

impl UnixListener {
    /// Binds to `path` and listens. The path must not exist.
    ///
    /// # Errors
    ///
    /// `EADDRINUSE` if the path exists, `ENOENT`, `EACCES`, or a path too
    /// long for `sockaddr_un`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{UnixListener, UnixStream};
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-bind.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path).unwrap();
    ///     let client = UnixStream::connect(&path).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     client.write_all(b"hi".to_vec()).await.0.unwrap();
    ///     let (res, buf) = server.read_exact(Vec::with_capacity(2)).await;
    ///     res.unwrap();
    ///     assert_eq!(buf, b"hi");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path).map_err(|e| sys::with_addr(e, "bind", path.display()))?;
        UnixListener::bind_addr(&addr)
    }

    /// Binds to any Unix address (for example an abstract name) and listens.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{SockAddr, UnixListener};
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-bind-addr.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let addr = SockAddr::unix(&path).unwrap();
    ///     let listener = UnixListener::bind_addr(&addr).unwrap();
    ///     assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn bind_addr(addr: &SockAddr) -> io::Result<UnixListener> {
        let listen = || {
            let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            sock.bind(addr)?;
            sock.listen(sys::LISTEN_BACKLOG)?;
            Ok(sock)
        };
        let sock = listen().map_err(|e| sys::with_addr(e, "bind", sys::unix_name(addr)))?;
        Ok(UnixListener {
            fd: SharedFd::new(sock.into()),
        })
    }

    /// Takes over a bound and listening std listener.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-from-std.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    ///     let listener = percore_net::UnixListener::from_std(std_listener);
    ///     let _client = percore_net::UnixStream::connect(&path).await.unwrap();
    ///     listener.accept().await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> UnixListener {
        UnixListener {
            fd: SharedFd::new(listener.into()),
        }
    }

    /// Accepts one connection and returns it with the peer's address
    /// (usually unnamed).
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` when out of descriptors, ...
    ///
    /// # Cancellation
    ///
    /// A connection accepted after the future was dropped is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{UnixListener, UnixStream};
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-accept.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path).unwrap();
    ///     let _client = UnixStream::connect(&path).await.unwrap();
    ///     let (_server, peer) = listener.accept().await.unwrap();
    ///     assert!(peer.as_pathname().is_none()); // the client is unnamed
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (fd, addr) = Op::new(Accept::new(self.fd.clone())).await?;
        Ok((UnixStream::from_fd(SharedFd::new(fd)), addr))
    }

    /// The stream of accepted connections; see [`Incoming`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{UnixListener, UnixStream};
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-incoming.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = UnixListener::bind(&path).unwrap();
    ///     let mut incoming = listener.incoming();
    ///     let _client = UnixStream::connect(&path).await.unwrap();
    ///     incoming.next().await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<UnixStream> {
        Incoming::new(self.fd.clone())
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// getsockname(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-local.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let listener = percore_net::UnixListener::bind(&path).unwrap();
    ///     assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        SockRef::from(&self.fd).local_addr()
    }
}

sys::socket_traits!(UnixListener, fd);

/// A Unix stream connection. Same I/O methods as
/// [`TcpStream`](crate::TcpStream).
///
/// # Examples
///
/// ```
/// use percore_net::UnixStream;
///
/// percore::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     a.write_all(b"ping".to_vec()).await.0.unwrap();
///     let (res, buf) = b.read_exact(Vec::with_capacity(4)).await;
///     res.unwrap();
///     assert_eq!(buf, b"ping");
/// });
/// ```
pub struct UnixStream {
    pub(crate) inner: Stream,
}

impl StreamSocket for UnixStream {
    type Addr = SockAddr;

    fn from_fd(fd: SharedFd) -> UnixStream {
        // AF_UNIX has no zero-copy send.
        UnixStream::from_stream(Stream::new(fd, usize::MAX))
    }

    fn from_stream(inner: Stream) -> UnixStream {
        UnixStream { inner }
    }

    fn into_stream(self) -> Stream {
        self.inner
    }

    fn local_addr_of(stream: &Stream) -> io::Result<SockAddr> {
        SockRef::from(&stream.fd).local_addr()
    }

    fn peer_addr_of(stream: &Stream) -> io::Result<SockAddr> {
        SockRef::from(&stream.fd).peer_addr()
    }
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `ENOENT` if nothing is there, `ECONNREFUSED` if nothing listens.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-connect.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let _listener = percore_net::UnixListener::bind(&path).unwrap();
    ///     let stream = percore_net::UnixStream::connect(&path).await.unwrap();
    ///     assert_eq!(stream.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let addr =
            SockAddr::unix(path).map_err(|e| sys::with_addr(e, "connect", path.display()))?;
        UnixStream::connect_addr(addr).await
    }

    /// Connects to any Unix address (for example an abstract name).
    ///
    /// # Errors
    ///
    /// As [`UnixStream::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::SockAddr;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-connect-addr.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let _listener = percore_net::UnixListener::bind(&path).unwrap();
    ///     let addr = SockAddr::unix(&path).unwrap();
    ///     percore_net::UnixStream::connect_addr(addr).await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn connect_addr(addr: SockAddr) -> io::Result<UnixStream> {
        // For the error message only (a copy, not an allocation).
        let target = addr.clone();
        let fail = |e| sys::with_addr(e, "connect", sys::unix_name(&target));
        let fd = sys::socket(Domain::UNIX, Type::STREAM)
            .await
            .map_err(fail)?;
        Op::new(Connect::new(fd.clone(), addr))
            .await
            .map_err(fail)?;
        Ok(UnixStream::from_fd(fd))
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    ///
    /// socketpair(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     a.write_all(b"x".to_vec()).await.0.unwrap();
    ///     let (res, _) = b.read(Vec::with_capacity(1)).await;
    ///     assert_eq!(res.unwrap(), 1);
    /// });
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        Ok((
            UnixStream::from_fd(SharedFd::new(a.into())),
            UnixStream::from_fd(SharedFd::new(b.into())),
        ))
    }

    /// Takes over a connected std stream.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let a = percore_net::UnixStream::from_std(a);
    ///     a.write_all(b"from std".to_vec()).await.0.unwrap();
    ///     let mut got = [0u8; 8];
    ///     std::io::Read::read_exact(&mut &b, &mut got).unwrap();
    ///     assert_eq!(&got, b"from std");
    /// });
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> UnixStream {
        UnixStream::from_fd(SharedFd::new(stream.into()))
    }

    stream_io! {
        field = inner,
        imports = "UnixStream",
        setup = ["let (a, b) = UnixStream::pair().unwrap();"],
        write_doc = [],
    }

    /// See [`TcpStream::recv_pooled`](crate::TcpStream::recv_pooled).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 512).unwrap();
    ///     let mut rx = b.recv_pooled(&ring);
    ///     a.write_all(b"pooled".to_vec()).await.0.unwrap();
    ///     assert_eq!(&rx.next().await.unwrap().unwrap()[..], b"pooled");
    /// });
    /// ```
    pub fn recv_pooled(&self, ring: &BufRing) -> PooledRecv {
        self.inner.recv_pooled(ring)
    }

    /// See [`TcpStream::shutdown`](crate::TcpStream::shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     a.shutdown(std::net::Shutdown::Write).await.unwrap();
    ///     let (res, _) = b.read(Vec::with_capacity(8)).await;
    ///     assert_eq!(res.unwrap(), 0);
    /// });
    /// ```
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how).await
    }

    /// The peer's address (unnamed for a `pair` or an unbound client).
    ///
    /// # Errors
    ///
    /// getpeername(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     assert!(a.peer_addr().unwrap().as_pathname().is_none()); // a pair is unnamed
    ///     # drop(b);
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SockAddr> {
        UnixStream::peer_addr_of(&self.inner)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// getsockname(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     assert!(a.local_addr().unwrap().as_pathname().is_none());
    ///     # drop(b);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        UnixStream::local_addr_of(&self.inner)
    }

    /// Splits the stream into a read half and a write half that two tasks
    /// (on this core) can own and use at the same time.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let (rd, wr) = b.into_split();
    ///     let echo = percore::spawn(async move {
    ///         let (res, buf) = rd.read(Vec::with_capacity(16)).await;
    ///         res.unwrap();
    ///         wr.write_all(buf).await.0.unwrap();
    ///     });
    ///     a.write_all(&b"ping"[..]).await.0.unwrap();
    ///     let (res, buf) = a.read_exact(Vec::with_capacity(4)).await;
    ///     res.unwrap();
    ///     assert_eq!(buf, b"ping");
    ///     echo.await.unwrap();
    ///     let (rd, wr) = a.into_split();
    ///     assert!(rd.reunite(wr).is_ok());
    /// });
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::split(self)
    }
}

sys::socket_traits!(UnixStream, inner.fd);
crate::stream::owned_read!(UnixStream, OwnedReadHalf);

/// A Unix datagram socket.
///
/// # Examples
///
/// ```
/// use percore_net::UnixDatagram;
///
/// percore::run(async {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     a.send(b"one".to_vec()).await.0.unwrap();
///     let (n, buf) = b.recv(Vec::with_capacity(16)).await;
///     assert_eq!(n.unwrap(), 3);
///     assert_eq!(buf, b"one");
/// });
/// ```
pub struct UnixDatagram {
    fd: SharedFd,
}

impl UnixDatagram {
    /// A datagram socket bound to `path`.
    ///
    /// # Errors
    ///
    /// `EADDRINUSE` if the path exists, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-dgram-bind.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let server = UnixDatagram::bind(&path).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     client.send_to(b"hello".to_vec(), &path).await.0.unwrap();
    ///     let (res, buf) = server.recv(Vec::with_capacity(16)).await;
    ///     assert_eq!((res.unwrap(), &buf[..]), (5, &b"hello"[..]));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let bind = || {
            let fd = sys::socket_sync(Domain::UNIX, Type::DGRAM)?;
            SockRef::from(&fd).bind(&SockAddr::unix(path)?)?;
            Ok(UnixDatagram { fd })
        };
        bind().map_err(|e| sys::with_addr(e, "bind", path.display()))
    }

    /// A datagram socket bound to nothing (it can send; replies need a
    /// bound address).
    ///
    /// # Errors
    ///
    /// socket(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let sock = UnixDatagram::unbound().unwrap();
    ///     assert!(sock.local_addr().unwrap().as_pathname().is_none());
    /// });
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            fd: sys::socket_sync(Domain::UNIX, Type::DGRAM)?,
        })
    }

    /// A pair of connected datagram sockets.
    ///
    /// # Errors
    ///
    /// socketpair(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     a.send(b"one".to_vec()).await.0.unwrap();
    ///     let (res, _) = b.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!(res.unwrap(), 3);
    /// });
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        Ok((
            UnixDatagram {
                fd: SharedFd::new(a.into()),
            },
            UnixDatagram {
                fd: SharedFd::new(b.into()),
            },
        ))
    }

    /// Sets the default peer for [`send`](UnixDatagram::send) and
    /// [`recv`](UnixDatagram::recv).
    ///
    /// # Errors
    ///
    /// connect(2) errors (`ENOENT`, `ECONNREFUSED`).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-dgram-connect.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let server = UnixDatagram::bind(&path).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     client.connect(&path).unwrap();
    ///     client.send(b"hi".to_vec()).await.0.unwrap();
    ///     let (res, _) = server.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!(res.unwrap(), 2);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        SockAddr::unix(path)
            .and_then(|addr| SockRef::from(&self.fd).connect(&addr))
            .map_err(|e| sys::with_addr(e, "connect", path.display()))
    }

    /// Sends `buf` as one datagram to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `ENOENT`, `ECONNREFUSED`, `EMSGSIZE`, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-dgram-send-to.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let server = UnixDatagram::bind(&path).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     let (res, _) = client.send_to(b"abc".to_vec(), &path).await;
    ///     assert_eq!(res.unwrap(), 3);
    ///     server.recv(Vec::with_capacity(8)).await.0.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn send_to<B: IoBuf>(&self, buf: B, path: impl AsRef<Path>) -> BufResult<usize, B> {
        let addr = match SockAddr::unix(path) {
            Ok(a) => a,
            Err(e) => return (Err(e), buf),
        };
        let (res, mut bufs) = Op::new(SendMsg::new(self.fd.clone(), vec![buf], Some(addr))).await;
        (res, bufs.pop().expect("sendmsg returns its buffer"))
    }

    /// Receives one datagram and its sender's address (unnamed for an
    /// unbound sender).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `buf` has no spare capacity (the datagram stays
    /// queued); recvmsg(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-dgram-recv-from.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let server = UnixDatagram::bind(&path).unwrap();
    ///     let client = UnixDatagram::unbound().unwrap();
    ///     client.send_to(b"abc".to_vec(), &path).await.0.unwrap();
    ///     let (res, buf) = server.recv_from(Vec::with_capacity(8)).await;
    ///     let (n, _from) = res.unwrap();
    ///     assert_eq!(&buf[..n], b"abc");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SockAddr), B> {
        let (res, buf) = Op::new(RecvMsg::new(self.fd.clone(), buf)).await;
        let res = res.and_then(|(n, addr)| {
            // An unbound sender has no address at all (length 0): report it
            // as an unnamed Unix address.
            let addr = if addr.len() == 0 {
                SockAddr::unix("")?
            } else {
                addr
            };
            Ok((n, addr))
        });
        (res, buf)
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` if not connected, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     assert_eq!(a.send(b"xy".to_vec()).await.0.unwrap(), 2);
    ///     # drop(b);
    /// });
    /// ```
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::new(SendOp::new(self.fd.clone(), buf)).await
    }

    /// Receives one datagram into `buf`'s spare capacity (a longer one is cut).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `buf` has no spare capacity (the datagram stays
    /// queued); recv(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     a.send(b"xy".to_vec()).await.0.unwrap();
    ///     let (res, buf) = b.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!((res.unwrap(), &buf[..]), (2, &b"xy"[..]));
    /// });
    /// ```
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        Op::new(Recv::new(self.fd.clone(), buf)).await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// getsockname(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixDatagram;
    ///
    /// percore::run(async {
    ///     let path = std::env::temp_dir().join(format!("percore-doc-{}-dgram-local.sock", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let sock = UnixDatagram::bind(&path).unwrap();
    ///     assert_eq!(sock.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        SockRef::from(&self.fd).local_addr()
    }
}

sys::socket_traits!(UnixDatagram, fd);
