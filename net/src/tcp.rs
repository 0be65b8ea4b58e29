//! TCP: the listener, the stream and the stream's owned halves.
//!
//! [`TcpListener`] and [`TcpStream`] are also at the crate root; the halves
//! from [`TcpStream::into_split`] are named here, as in `tokio::net::tcp`.
//!
//! ```
//! use percore_net::tcp::{OwnedReadHalf, OwnedWriteHalf};
//! use percore_net::{TcpListener, TcpStream};
//!
//! percore::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
//!     let (rd, wr): (OwnedReadHalf, OwnedWriteHalf) = client.into_split();
//!     assert_eq!(rd.peer_addr().unwrap(), wr.peer_addr().unwrap());
//! });
//! ```

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};

use std::time::Duration;

use percore::buf::{BufResult, BufRing, IoBuf};
use percore::fd::SharedFd;
use percore::op::{Accept, Connect, Op};
use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::incoming::Incoming;
use crate::pooled::PooledRecv;
use crate::split;
use crate::stream::{DEFAULT_ZC_THRESHOLD, Stream, StreamSocket, stream_io};
use crate::sys;

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
///
/// Both halves share the socket; it closes when both are dropped (and no op
/// uses it any more).
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream, tcp::OwnedReadHalf};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (rd, _wr) = server.into_split();
///     let reader = percore::spawn(async move {
///         let rd: OwnedReadHalf = rd;
///         rd.read_exact(Vec::with_capacity(2)).await.1
///     });
///     client.write_all(&b"hi"[..]).await.0.unwrap();
///     assert_eq!(reader.await.unwrap(), b"hi");
/// });
/// ```
pub type OwnedReadHalf = split::OwnedReadHalf<TcpStream>;

/// The write half of a [`TcpStream`], from [`TcpStream::into_split`].
///
/// Dropping it does not shut the connection down; call its `shutdown` to
/// let the peer read end of stream.
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream, tcp::OwnedWriteHalf};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (_rd, wr) = server.into_split();
///     let writer = percore::spawn(async move {
///         let wr: OwnedWriteHalf = wr;
///         wr.write_all(&b"yo"[..]).await.0.unwrap();
///     });
///     writer.await.unwrap();
///     let (res, buf) = client.read_exact(Vec::with_capacity(2)).await;
///     res.unwrap();
///     assert_eq!(buf, b"yo");
/// });
/// ```
pub type OwnedWriteHalf = split::OwnedWriteHalf<TcpStream>;

/// The halves given to `OwnedReadHalf::reunite` came from different
/// TCP streams; both come back in it.
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream, tcp::ReuniteError};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let (a_rd, _a_wr) = TcpStream::connect(addr).await.unwrap().into_split();
///     let (_b_rd, b_wr) = TcpStream::connect(addr).await.unwrap().into_split();
///     let err: ReuniteError = a_rd.reunite(b_wr).unwrap_err();
///     assert_eq!(err.to_string(), "tried to reunite halves of different streams");
/// });
/// ```
pub type ReuniteError = split::ReuniteError<TcpStream>;

/// A TCP socket that accepts connections.
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = percore::spawn(async move { TcpStream::connect(addr).await.unwrap() });
///     let (conn, peer) = listener.accept().await.unwrap();
///     assert_eq!(peer, client.await.unwrap().local_addr().unwrap());
///     assert_eq!(conn.local_addr().unwrap(), addr);
/// });
/// ```
pub struct TcpListener {
    fd: SharedFd,
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) and listens. The first address
    /// that works is used.
    ///
    /// # Errors
    ///
    /// `EADDRINUSE`, `EACCES`, or a resolution error. The message names the
    /// address (`bind 127.0.0.1:80: Permission denied (os error 13)`) and
    /// the kind is the errno's; as std gives no `raw_os_error()` for an
    /// error with a message, read the errno with
    /// [`percore::IoErrorExt::os_error`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert_ne!(listener.local_addr().unwrap().port(), 0);
    /// });
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        sys::each_addr(addr, |a| TcpListener::bind_addr(a, false))
    }

    /// Like [`TcpListener::bind`], also setting `SO_REUSEPORT`: several
    /// listeners (one per core) can bind the same address, and the kernel
    /// spreads connections across them.
    ///
    /// Port 0 picks a new port for each call, so cores that each bind
    /// `"127.0.0.1:0"` end up on different ports. To share one ephemeral
    /// port, reserve it once with [`ReservedPort`](crate::ReservedPort) and
    /// bind each core's listener with [`ReservedPort::listener`](crate::ReservedPort::listener).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::TcpListener;
    ///
    /// percore::run(async {
    ///     let a = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
    ///     let b = TcpListener::bind_reuseport(a.local_addr().unwrap()).unwrap();
    ///     assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TcpListener::bind`].
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        sys::each_addr(addr, |a| TcpListener::bind_addr(a, true))
    }

    fn bind_addr(addr: SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
        let listen = || {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            sock.set_reuse_address(true)?;
            if reuseport {
                sock.set_reuse_port(true)?;
            }
            sock.bind(&SockAddr::from(addr))?;
            sock.listen(sys::LISTEN_BACKLOG)?;
            Ok(sock)
        };
        let sock = listen().map_err(|e| sys::with_addr(e, "bind", addr))?;
        Ok(TcpListener {
            fd: SharedFd::new(sock.into()),
        })
    }

    /// Takes over a bound and listening std listener.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = std.local_addr().unwrap();
    ///     let listener = percore_net::TcpListener::from_std(std);
    ///     assert_eq!(listener.local_addr().unwrap(), addr);
    /// });
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
        TcpListener {
            fd: SharedFd::new(listener.into()),
        }
    }

    /// Accepts one connection and returns it with the peer's address.
    ///
    /// # Errors
    ///
    /// `EMFILE`/`ENFILE` when out of descriptors (the connection stays queued
    /// in the kernel; back off and accept again), `ECONNABORTED`, ...
    ///
    /// # Cancellation
    ///
    /// If the future is dropped after the kernel accepted a connection, the
    /// connection is closed: nothing leaks.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    /// });
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = Op::new(Accept::new(self.fd.clone())).await?;
        Ok((TcpStream::from_fd(SharedFd::new(fd)), sys::inet(addr)?))
    }

    /// The stream of accepted connections, with one multishot accept when the
    /// kernel has it; see [`Incoming`].
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
    ///     let _client = TcpStream::connect(addr).await.unwrap();
    ///     let conn = incoming.next().await.unwrap();
    ///     assert_eq!(conn.local_addr().unwrap(), addr);
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<TcpStream> {
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
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     assert!(listener.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::inet(SockRef::from(&self.fd).local_addr()?)
    }
}

sys::socket_traits!(TcpListener, fd; addr = local_addr);

/// A TCP connection.
///
/// All I/O methods take `&self`, so tasks on the same core can share a
/// stream through an `Rc`, or own one half each after
/// [`into_split`](TcpStream::into_split). Buffers are owned: each call takes
/// the buffer and returns it with the result.
///
/// Dropping the stream closes the socket once no op is using it any more.
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (n, _) = client.write(b"ping".to_vec()).await;
///     assert_eq!(n.unwrap(), 4);
///     let (res, buf) = server.read_exact(Vec::with_capacity(4)).await;
///     res.unwrap();
///     assert_eq!(buf, b"ping");
/// });
/// ```
pub struct TcpStream {
    pub(crate) inner: Stream,
}

impl StreamSocket for TcpStream {
    type Addr = SocketAddr;

    fn from_fd(fd: SharedFd) -> TcpStream {
        TcpStream::from_stream(Stream::new(fd, DEFAULT_ZC_THRESHOLD))
    }

    fn from_stream(inner: Stream) -> TcpStream {
        TcpStream { inner }
    }

    fn into_stream(self) -> Stream {
        self.inner
    }

    fn local_addr_of(stream: &Stream) -> io::Result<SocketAddr> {
        sys::inet(SockRef::from(&stream.fd).local_addr()?)
    }

    fn peer_addr_of(stream: &Stream) -> io::Result<SocketAddr> {
        sys::inet(SockRef::from(&stream.fd).peer_addr()?)
    }
}

impl TcpStream {
    /// Connects to `addr` (IPv4 or IPv6), trying each resolved address in
    /// turn. The socket is made with `IORING_OP_SOCKET` when the kernel has
    /// it, and connected with `IORING_OP_CONNECT`.
    ///
    /// # Errors
    ///
    /// `ECONNREFUSED` when nothing listens there, `ETIMEDOUT`, ... (the last
    /// address's error, naming that address, as [`TcpListener::bind`]'s
    /// errors do), or a resolution error.
    ///
    /// # Cancellation
    ///
    /// Dropping the future abandons the attempt; its socket is closed once
    /// the kernel is done with it.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let port = listener.local_addr().unwrap().port();
    ///     let stream = percore_net::TcpStream::connect(("localhost", port)).await.unwrap();
    ///     assert_eq!(stream.peer_addr().unwrap().port(), port);
    /// });
    /// ```
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in sys::resolve(addr)? {
            match TcpStream::connect_addr(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returned at least one address"))
    }

    /// Connects to one address.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let stream = percore_net::TcpStream::connect_addr(addr).await.unwrap();
    ///     assert_eq!(stream.peer_addr().unwrap(), addr);
    /// });
    /// ```
    pub async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = sys::socket(Domain::for_address(addr), Type::STREAM)
            .await
            .map_err(|e| sys::with_addr(e, "connect", addr))?;
        Op::new(Connect::new(fd.clone(), SockAddr::from(addr)))
            .await
            .map_err(|e| sys::with_addr(e, "connect", addr))?;
        Ok(TcpStream::from_fd(fd))
    }

    /// Connects to `addr`, giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).await.unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), addr);
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// `ErrorKind::TimedOut` when the time runs out, else as
    /// [`TcpStream::connect`].
    pub async fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        match percore::time::timeout(timeout, TcpStream::connect_addr(*addr)).await {
            Ok(res) => res,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {timeout:?}"),
            )),
        }
    }

    /// Takes over a connected std stream.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let std = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    ///     let stream = percore_net::TcpStream::from_std(std);
    ///     assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    /// });
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream::from_fd(SharedFd::new(stream.into()))
    }

    stream_io! {
        field = inner,
        imports = "{TcpListener, TcpStream}",
        setup = [
            "let listener = TcpListener::bind(\"127.0.0.1:0\").unwrap();",
            "let a = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();",
            "let (b, _) = listener.accept().await.unwrap();",
        ],
        write_doc = [
            "",
            " Writes of at least [`zerocopy_threshold`](TcpStream::zerocopy_threshold)",
            " bytes use `IORING_OP_SEND_ZC` when the kernel has it.",
        ],
    }

    /// Writes some of `buf` with `IORING_OP_SEND_ZC`, whatever its size: the
    /// kernel sends from `buf` in place, and the buffer comes back once the
    /// kernel no longer reads it. Falls back to a plain send on kernels
    /// without send_zc (before 6.0).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     let (n, _) = client.write_zc(vec![1u8; 1024]).await;
    ///     let n = n.unwrap();
    ///     let (res, buf) = server.read_exact(Vec::with_capacity(n)).await;
    ///     res.unwrap();
    ///     assert!(buf.iter().all(|&b| b == 1));
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TcpStream::write`].
    pub async fn write_zc<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.inner.write_zc(buf).await
    }

    /// Writes of at least `threshold` bytes use zero-copy send; `None` turns
    /// the automatic choice off ([`write_zc`](TcpStream::write_zc) still
    /// works). Off by default: on loopback the kernel copies anyway and the
    /// extra notification makes zero-copy slower; enable it for large
    /// writes to real NICs.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     client.set_zerocopy_threshold(Some(64 * 1024));
    ///     assert_eq!(client.zerocopy_threshold(), Some(64 * 1024));
    /// });
    /// ```
    pub fn set_zerocopy_threshold(&self, threshold: Option<usize>) {
        self.inner.set_zc_threshold(threshold);
    }

    /// The size from which writes use zero-copy send, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     client.set_zerocopy_threshold(Some(64 * 1024));
    ///     assert_eq!(client.zerocopy_threshold(), Some(64 * 1024));
    ///     # drop(server);
    /// });
    /// ```
    pub fn zerocopy_threshold(&self) -> Option<usize> {
        self.inner.zc_threshold()
    }

    /// Receives into buffers of `ring`, shared with other connections of
    /// this core; see [`PooledRecv`].
    ///
    /// Don't mix it with [`read`](TcpStream::read) on the same stream: both
    /// would take bytes from the socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     // One ring per core serves every connection: idle ones hold no buffer.
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(16, 4096).unwrap();
    ///     let mut rx = server.recv_pooled(&ring);
    ///     client.write_all(b"pooled".to_vec()).await.0.unwrap();
    ///     let buf = rx.next().await.unwrap().unwrap();
    ///     assert_eq!(&buf[..], b"pooled");
    /// });
    /// ```
    pub fn recv_pooled(&self, ring: &BufRing) -> PooledRecv {
        self.inner.recv_pooled(ring)
    }

    /// Shuts down the read half, the write half (the peer reads end of
    /// stream, while this side can still read) or both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Shutdown;
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     client.shutdown(Shutdown::Write).await.unwrap();
    ///     let (n, _) = server.read(Vec::with_capacity(8)).await;
    ///     assert_eq!(n.unwrap(), 0); // end of stream
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// `ENOTCONN` if the socket is not connected.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how).await
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// # Errors
    ///
    /// setsockopt(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     client.set_nodelay(true).unwrap();
    ///     assert!(client.nodelay().unwrap());
    ///     # drop(server);
    /// });
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        SockRef::from(&self.inner.fd).set_tcp_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// getsockopt(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     assert!(!client.nodelay().unwrap()); // Nagle is on by default
    ///     # drop(server);
    /// });
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        SockRef::from(&self.inner.fd).tcp_nodelay()
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes closing the socket
    /// reset the connection (the peer gets `ECONNRESET`).
    ///
    /// # Errors
    ///
    /// setsockopt(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     // Close with a reset instead of a FIN, dropping unsent data.
    ///     client.set_linger(Some(std::time::Duration::ZERO)).unwrap();
    ///     drop(client);
    ///     let (res, _) = server.read(Vec::with_capacity(8)).await;
    ///     assert!(matches!(res, Ok(0) | Err(_)));
    /// });
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(&self.inner.fd).set_linger(linger)
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` once the connection is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     assert_eq!(client.peer_addr().unwrap(), listener.local_addr().unwrap());
    ///     # drop(server);
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr_of(&self.inner)
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
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     assert_eq!(client.local_addr().unwrap(), server.peer_addr().unwrap());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::local_addr_of(&self.inner)
    }

    /// Splits the stream into a read half and a write half that two tasks
    /// (on this core) can own and use at the same time.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     let (rd, wr) = server.into_split();
    ///     let reader = percore::spawn(async move {
    ///         let (res, buf) = rd.read_exact(Vec::with_capacity(2)).await;
    ///         res.unwrap();
    ///         buf
    ///     });
    ///     let writer = percore::spawn(async move { wr.write_all(&b"yo"[..]).await.0.unwrap() });
    ///     client.write_all(&b"hi"[..]).await.0.unwrap();
    ///     assert_eq!(reader.await.unwrap(), b"hi");
    ///     writer.await.unwrap();
    ///     let (res, buf) = client.read_exact(Vec::with_capacity(2)).await;
    ///     res.unwrap();
    ///     assert_eq!(buf, b"yo");
    /// });
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::split(self)
    }
}

impl OwnedWriteHalf {
    /// See [`TcpStream::write_zc`]: TCP only, as Unix sockets have no zero-copy send.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let (server, _) = listener.accept().await.unwrap();
    ///     let (rd, wr) = server.into_split();
    ///     let (res, _buf) = wr.write_zc(vec![1u8; 64 * 1024]).await;
    ///     assert!(res.unwrap() > 0);
    ///     # drop((rd, client));
    /// });
    /// ```
    pub async fn write_zc<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.stream.write_zc(buf).await
    }
}

sys::socket_traits!(TcpStream, inner.fd; local = local_addr, peer = peer_addr);
crate::stream::owned_read!(TcpStream, OwnedReadHalf);
