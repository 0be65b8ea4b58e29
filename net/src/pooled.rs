//! Receiving into a per-core pool of buffers (a provided-buffer ring).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use percore::buf::{BufRing, RecvBuf};
use percore::fd::SharedFd;
use percore::op::{MultishotOp, Op, Recv, RecvMulti};

/// Data from one connection, received into buffers of a shared [`BufRing`].
///
/// Made by [`TcpStream::recv_pooled`](crate::TcpStream::recv_pooled) and
/// [`UnixStream::recv_pooled`](crate::UnixStream::recv_pooled). While it
/// waits, the connection holds no buffer: the kernel picks one from the ring
/// when data arrives (a multishot receive on Linux 6.0+). Each
/// [`RecvBuf`] goes back to the ring when dropped, so keep them briefly.
///
/// When the ring runs dry the kernel ends the receive with `ENOBUFS`. That is
/// not an error here: the stream re-arms once buffers were given back, and
/// otherwise receives the pending bytes into a plain `Vec` of the ring's
/// buffer size ([`RecvBuf::Owned`]) and tries the ring again next time.
///
/// # Examples
///
/// ```
/// use percore::buf::BufRing;
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (conn, _) = listener.accept().await.unwrap();
///     let ring = match BufRing::new(64, 4096) {
///         Ok(ring) => ring,
///         Err(_) => return, // no buffer rings on this kernel
///     };
///     let mut rx = conn.recv_pooled(&ring);
///     client.write_all(&b"pooled"[..]).await.0.unwrap();
///     let buf = rx.next().await.unwrap().unwrap();
///     assert_eq!(&buf[..], b"pooled");
///     drop(client);
///     assert!(rx.next().await.unwrap().is_none()); // end of stream
/// });
/// ```
///
/// # Cancellation
///
/// Dropping a `next()` future loses nothing: completions wait in the stream
/// until the next call. Dropping the `PooledRecv` cancels the receive; on
/// io_uring, data the kernel received and nobody took is lost. The epoll
/// driver receives only when `next()` asks (into the ring, inside its poll:
/// [`MultishotOp::on_demand`](percore::op::MultishotOp::on_demand)), so
/// there data not taken stays in the socket.
pub struct PooledRecv {
    /// The receive, which also holds the descriptor and the ring.
    op: MultishotOp<RecvMulti>,
    /// The receive ended with ENOBUFS and was re-armed once; another ENOBUFS
    /// right away means the ring is really empty.
    rearmed: bool,
    /// The next receive goes into a plain buffer.
    plain_next: bool,
    /// That receive, once started: boxed, since it is rare, so that the
    /// fields every receive reads share fewer cache lines.
    plain: Option<Box<Op<Recv<Vec<u8>>>>>,
    fallbacks: u64,
}

impl PooledRecv {
    pub(crate) fn new(fd: SharedFd, ring: &BufRing) -> PooledRecv {
        PooledRecv {
            op: MultishotOp::new(RecvMulti::new(fd, ring)).on_demand(),
            rearmed: false,
            plain_next: false,
            plain: None,
            fallbacks: 0,
        }
    }

    /// Waits for the next bytes: `Ok(None)` at end of stream.
    ///
    /// # Errors
    ///
    /// The socket's error (`ECONNRESET`, ...). `ENOBUFS` never surfaces.
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
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let mut rx = server.recv_pooled(&ring);
    ///     client.write_all(b"hi".to_vec()).await.0.unwrap();
    ///     drop(client);
    ///     let buf = rx.next().await.unwrap().unwrap();
    ///     assert_eq!(&buf[..], b"hi");
    ///     drop(buf); // the buffer goes back to the ring
    ///     assert!(rx.next().await.unwrap().is_none()); // end of stream
    /// });
    /// ```
    // A stream's `next`, which returns a future; clippy takes a plain fn
    // named `next` for `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> impl Future<Output = io::Result<Option<RecvBuf>>> + '_ {
        // The future is a reference to the stream, and whatever it waits
        // on stays here when it is dropped. Not an `async fn`: its state
        // machine would wrap this one, a layer more on every poll.
        std::future::poll_fn(|cx| self.poll_next(cx))
    }

    /// Polls for the next bytes: what [`next`](Self::next) waits for.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
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
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let mut rx = server.recv_pooled(&ring);
    ///     client.write_all(b"hi".to_vec()).await.0.unwrap();
    ///     let buf = std::future::poll_fn(|cx| rx.poll_next(cx)).await.unwrap().unwrap();
    ///     assert_eq!(&buf[..], b"hi");
    /// });
    /// ```
    #[inline]
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<RecvBuf>>> {
        loop {
            if self.plain_next {
                return self.poll_plain(cx);
            }
            let res = ready!(self.op.poll_next(cx))
                .unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ECANCELED)));
            match res {
                Ok(Some(buf)) => {
                    self.rearmed = false;
                    return Poll::Ready(Ok(Some(RecvBuf::Ring(buf))));
                }
                Ok(None) => return Poll::Ready(Ok(None)),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    if !self.rearmed && self.op.data().ring().available() > 0 {
                        // Buffers came back since the kernel found the ring
                        // empty: re-arm (the next `poll_next` of the op does).
                        self.rearmed = true;
                    } else {
                        // Still empty: take the pending bytes into a plain
                        // buffer, and try the ring again afterwards.
                        self.rearmed = false;
                        self.plain_next = true;
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The receive into a plain buffer, after the ring ran dry; kept here
    /// across polls, so a dropped `next()` loses nothing.
    fn poll_plain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<RecvBuf>>> {
        let data = self.op.data();
        let (fd, len) = (data.fd(), data.ring().buf_len());
        let op = self.plain.get_or_insert_with(|| {
            Box::new(Op::new(Recv::new(fd.clone(), Vec::with_capacity(len))))
        });
        let (res, buf) = ready!(Pin::new(&mut **op).poll(cx));
        self.plain = None;
        let n = res?;
        self.plain_next = false;
        self.fallbacks += 1;
        Poll::Ready(Ok((n > 0).then_some(RecvBuf::Owned(buf))))
    }

    /// How many receives went into a plain buffer because the ring was empty.
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
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let rx = server.recv_pooled(&ring);
    ///     assert_eq!(rx.fallbacks(), 0); // nothing received yet
    ///     # drop(client);
    /// });
    /// ```
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks
    }

    /// The ring the stream receives into.
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
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let rx = server.recv_pooled(&ring);
    ///     assert_eq!(rx.ring().buf_len(), 1024);
    ///     # drop(client);
    /// });
    /// ```
    pub fn ring(&self) -> &BufRing {
        self.op.data().ring()
    }
}

impl fmt::Debug for PooledRecv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledRecv")
            .field("fd", self.op.data().fd())
            .field("ring", self.ring())
            .field("fallbacks", &self.fallbacks)
            .finish()
    }
}
