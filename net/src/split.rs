//! Owned read and write halves of a byte stream, generic over the socket.
//!
//! Use them by their protocol's names: [`tcp::OwnedReadHalf`](crate::tcp::OwnedReadHalf),
//! [`unix::OwnedWriteHalf`](crate::unix::OwnedWriteHalf), ... (as in
//! `tokio::net::tcp`); this module holds the one implementation behind both.
//! The halves share the stream's state, not the socket type, so this module
//! depends on neither socket.
//!
//! ```
//! use percore_net::UnixStream;
//!
//! percore::run(async {
//!     let (a, _b) = UnixStream::pair().unwrap();
//!     let (rd, wr): (percore_net::unix::OwnedReadHalf, _) = a.into_split();
//!     assert!(rd.reunite(wr).is_ok());
//! });
//! ```

use std::error::Error;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::rc::Rc;

use percore::buf::BufRing;

use crate::pooled::PooledRecv;
use crate::stream::{Stream, StreamSocket, stream_io};

pub(crate) fn split<S: StreamSocket>(socket: S) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let stream = Rc::new(socket.into_stream());
    (
        OwnedReadHalf {
            stream: stream.clone(),
            socket: PhantomData,
        },
        OwnedWriteHalf {
            stream,
            socket: PhantomData,
        },
    )
}

/// The read half of a stream socket `S`, from `into_split`; named
/// [`tcp::OwnedReadHalf`](crate::tcp::OwnedReadHalf) and
/// [`unix::OwnedReadHalf`](crate::unix::OwnedReadHalf).
///
/// Both halves share the socket; it closes when both are dropped (and no op
/// uses it any more).
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = TcpStream::connect(addr).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (rd, wr) = server.into_split();
///     // Each half can move into its own task.
///     let echo = percore::spawn(async move {
///         let (res, buf) = rd.read(Vec::with_capacity(16)).await;
///         res.unwrap();
///         wr.write_all(buf).await.0.unwrap();
///     });
///     client.write_all(b"ping".to_vec()).await.0.unwrap();
///     let (res, buf) = client.read_exact(Vec::with_capacity(4)).await;
///     res.unwrap();
///     assert_eq!(buf, b"ping");
///     echo.await.unwrap();
/// });
/// ```
pub struct OwnedReadHalf<S> {
    pub(crate) stream: Rc<Stream>,
    socket: PhantomData<fn() -> S>,
}

/// The write half of a stream socket `S`, from `into_split`; named
/// [`tcp::OwnedWriteHalf`](crate::tcp::OwnedWriteHalf) and
/// [`unix::OwnedWriteHalf`](crate::unix::OwnedWriteHalf).
///
/// Dropping it does not shut the connection down; call
/// [`shutdown`](OwnedWriteHalf::shutdown) to let the peer read end of stream.
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
///     let (_rd, wr) = server.into_split();
///     wr.write_all(b"bye".to_vec()).await.0.unwrap();
///     wr.shutdown().await.unwrap(); // the client reads end of stream after "bye"
///     let (res, buf) = client.read(Vec::with_capacity(8)).await;
///     assert_eq!((res.unwrap(), &buf[..]), (3, &b"bye"[..]));
///     let (res, _) = client.read(Vec::with_capacity(8)).await;
///     assert_eq!(res.unwrap(), 0);
/// });
/// ```
pub struct OwnedWriteHalf<S> {
    pub(crate) stream: Rc<Stream>,
    socket: PhantomData<fn() -> S>,
}

// read and read_exact of the read half, write, write_all and write_vectored
// of the write half: the same methods as the whole stream's.
stream_io! {
    read = OwnedReadHalf,
    write = OwnedWriteHalf,
    imports = "{TcpListener, TcpStream}",
    setup = [
        "let listener = TcpListener::bind(\"127.0.0.1:0\").unwrap();",
        "let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();",
        "let (server, _) = listener.accept().await.unwrap();",
        "// `a`, the client's write half, sends to `b`, the server's read half.",
        "let (_client_rd, a) = client.into_split();",
        "let (b, _server_wr) = server.into_split();",
    ],
}

impl<S: StreamSocket> OwnedReadHalf<S> {
    /// See [`TcpStream::recv_pooled`](crate::TcpStream::recv_pooled).
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
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let mut rx = rd.recv_pooled(&ring);
    ///     client.write_all(b"pooled".to_vec()).await.0.unwrap();
    ///     assert_eq!(&rx.next().await.unwrap().unwrap()[..], b"pooled");
    ///     # drop(wr);
    /// });
    /// ```
    pub fn recv_pooled(&self, ring: &BufRing) -> PooledRecv {
        self.stream.recv_pooled(ring)
    }

    /// See [`TcpStream::peer_addr`](crate::TcpStream::peer_addr).
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
    ///     assert_eq!(rd.peer_addr().unwrap(), client.local_addr().unwrap());
    ///     # drop(wr);
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<S::Addr> {
        S::peer_addr_of(&self.stream)
    }

    /// See [`TcpStream::local_addr`](crate::TcpStream::local_addr).
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
    ///     assert_eq!(rd.local_addr().unwrap(), client.peer_addr().unwrap());
    ///     # drop(wr);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<S::Addr> {
        S::local_addr_of(&self.stream)
    }

    /// Puts the stream back together with its write half.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::{TcpListener, TcpStream};
    ///
    /// percore::run(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    ///     let addr = client.local_addr().unwrap();
    ///     let (rd, wr) = client.into_split();
    ///     let client = rd.reunite(wr).unwrap();
    ///     assert_eq!(client.local_addr().unwrap(), addr);
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] (with both halves) if they come from different streams.
    pub fn reunite(self, other: OwnedWriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Rc::ptr_eq(&self.stream, &other.stream) {
            return Err(ReuniteError(self, other));
        }
        drop(other);
        match Rc::try_unwrap(self.stream) {
            Ok(stream) => Ok(S::from_stream(stream)),
            Err(_) => unreachable!("a stream is shared by exactly its two halves"),
        }
    }
}

impl<S: StreamSocket> OwnedWriteHalf<S> {
    /// Shuts down the write half: the peer reads end of stream; the read
    /// half keeps working.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` if the connection is gone.
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
    ///     wr.shutdown().await.unwrap();
    ///     let (res, _) = client.read(Vec::with_capacity(8)).await;
    ///     assert_eq!(res.unwrap(), 0); // end of stream
    ///     # drop(rd);
    /// });
    /// ```
    pub async fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write).await
    }

    /// See [`TcpStream::peer_addr`](crate::TcpStream::peer_addr).
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
    ///     assert_eq!(wr.peer_addr().unwrap(), client.local_addr().unwrap());
    ///     # drop(rd);
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<S::Addr> {
        S::peer_addr_of(&self.stream)
    }

    /// See [`TcpStream::local_addr`](crate::TcpStream::local_addr).
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
    ///     assert_eq!(wr.local_addr().unwrap(), client.peer_addr().unwrap());
    ///     # drop(rd);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<S::Addr> {
        S::local_addr_of(&self.stream)
    }
}

impl<S> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("fd", &self.stream.fd.raw_fd())
            .finish()
    }
}

impl<S> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("fd", &self.stream.fd.raw_fd())
            .finish()
    }
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different
/// streams; named [`tcp::ReuniteError`](crate::tcp::ReuniteError) and
/// [`unix::ReuniteError`](crate::unix::ReuniteError).
///
/// # Examples
///
/// ```
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let (a_rd, a_wr) = TcpStream::connect(addr).await.unwrap().into_split();
///     let (b_rd, b_wr) = TcpStream::connect(addr).await.unwrap().into_split();
///     let err: percore_net::tcp::ReuniteError = a_rd.reunite(b_wr).unwrap_err();
///     // The halves come back in the error; matching ones reunite.
///     let (a_rd, b_wr) = (err.0, err.1);
///     assert!(a_rd.reunite(a_wr).is_ok());
///     assert!(b_rd.reunite(b_wr).is_ok());
/// });
/// ```
pub struct ReuniteError<S>(pub OwnedReadHalf<S>, pub OwnedWriteHalf<S>);

impl<S> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReuniteError")
            .field(&self.0)
            .field(&self.1)
            .finish()
    }
}

impl<S> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of different streams")
    }
}

impl<S> Error for ReuniteError<S> {}
