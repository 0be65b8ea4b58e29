//! Poll-based I/O traits for percore's owned-buffer streams, so libraries
//! written against `tokio::io`, `futures::io` or `hyper::rt` (hyper,
//! rustls, codecs) run on percore.
//!
//! [`Compat`] wraps a [`TcpStream`], [`UnixStream`], or an owned half
//! ([`OwnedReadHalf`], [`OwnedWriteHalf`]) and implements, per cargo feature
//! of percore-net (all off by default):
//!
//! | feature | traits |
//! |---|---|
//! | `tokio-io` | `tokio::io::{AsyncRead, AsyncBufRead, AsyncWrite}` |
//! | `futures-io` | `futures_io::{AsyncRead, AsyncBufRead, AsyncWrite}` |
//! | `hyper` | `hyper::rt::{Read, Write}` (see [`crate::hyper`]) |
//!
//! ```
//! # #[cfg(feature = "tokio-io")] {
//! use percore_net::compat::Compat;
//! use percore_net::{TcpListener, TcpStream};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! percore::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let mut client = Compat::new(TcpStream::connect(listener.local_addr().unwrap()).await.unwrap());
//!     let mut server = Compat::new(listener.accept().await.unwrap().0);
//!     client.write_all(b"hello").await.unwrap();
//!     let mut buf = [0u8; 5];
//!     server.read_exact(&mut buf).await.unwrap();
//!     assert_eq!(&buf, b"hello");
//! });
//! # }
//! ```
//!
//! # How it works, and what it costs
//!
//! The poll traits lend the adapter a `&mut [u8]` for the length of one
//! call, while an io_uring op must own its buffer until the kernel is done
//! with it. So each `Compat` owns two buffers, allocated on first use and
//! reused for the life of the stream:
//!
//! - **Reads** go into the read buffer (one `IORING_OP_RECV` of up to
//!   [`DEFAULT_READ_CAPACITY`] bytes), and `poll_read` copies out of it:
//!   **one extra copy per byte read**. Bytes not yet taken stay for the next
//!   call; `AsyncBufRead::poll_fill_buf` lends them without that copy.
//! - **Writes** are copied into the write buffer (up to
//!   [`DEFAULT_WRITE_CAPACITY`] bytes per call, vectored writes gathered
//!   into it) and one `IORING_OP_SEND` is submitted at once: **one extra
//!   copy per byte written**. `poll_write` returns as soon as the bytes are
//!   in the buffer and the send is queued; the next `poll_write`,
//!   `poll_flush` or `poll_shutdown` waits until the kernel took all of them
//!   (resending the rest after a short send). An error of that send comes
//!   back from that next call. Call `flush` before relying on the peer having
//!   the data, as with any buffered writer.
//! - Memory: the read buffer is allocated whole on the first read (the
//!   kernel needs the room); the write buffer grows to the largest write
//!   seen, up to its capacity. At most 80 KiB per stream with the defaults
//!   (see [`Compat::with_capacity`]), nothing before the first read or
//!   write.
//!
//! An op in flight is kept across polls and never restarted: a poll that
//! returns `Pending` (say, under a `timeout` that fires) leaves the op
//! running, and the next poll picks up its result, so no byte is lost or
//! sent twice.
//!
//! # Cancellation
//!
//! Dropping a `Compat` (or calling [`Compat::into_inner`]) while an op is in
//! flight is safe: percore keeps the op's buffer until the kernel's
//! completion and cancels it. Bytes read into the buffer but not yet taken
//! are lost, and so are buffered writes not yet flushed (some of them may
//! have been sent).
//!
//! [`TcpStream`]: crate::TcpStream
//! [`UnixStream`]: crate::UnixStream
//! [`OwnedReadHalf`]: crate::OwnedReadHalf
//! [`OwnedWriteHalf`]: crate::OwnedWriteHalf

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use percore::buf::{IoBuf, Slice};
use percore::fd::SharedFd;
use percore::op::{self, Op};

use crate::stream::Stream;

/// Read buffer size of [`Compat::new`]: the most one `IORING_OP_RECV` asks for.
///
/// ```
/// use percore_net::compat::{Compat, DEFAULT_READ_CAPACITY, DEFAULT_WRITE_CAPACITY};
///
/// percore::run(async {
///     let (a, _b) = percore_net::UnixStream::pair().unwrap();
///     // The same as Compat::new(a):
///     let _a = Compat::with_capacity(a, DEFAULT_READ_CAPACITY, DEFAULT_WRITE_CAPACITY);
/// });
/// ```
pub const DEFAULT_READ_CAPACITY: usize = 16 * 1024;

/// Write buffer size of [`Compat::new`]: the most one `poll_write` takes.
/// See [`DEFAULT_READ_CAPACITY`] for an example.
pub const DEFAULT_WRITE_CAPACITY: usize = 64 * 1024;

mod sealed {
    /// Gives `Compat` the stream's shared state (`Stream` is crate-private,
    /// and so is this trait, unnameable outside the crate).
    pub trait Sealed {
        fn stream(&self) -> &crate::stream::Stream;
    }
}

/// A percore stream [`Compat`] can wrap: [`TcpStream`](crate::TcpStream),
/// [`UnixStream`](crate::UnixStream) and the owned halves. Sealed.
///
/// ```
/// use percore_net::compat::{Compat, CompatStream};
///
/// fn wrap<S: CompatStream>(stream: S) -> Compat<S> {
///     Compat::new(stream)
/// }
///
/// percore::run(async {
///     let (a, _b) = percore_net::UnixStream::pair().unwrap();
///     let _a = wrap(a);
/// });
/// ```
pub trait CompatStream: sealed::Sealed + Unpin {}

/// A [`CompatStream`] that can be read: `Compat<S>` implements the read traits.
///
/// ```
/// # #[cfg(feature = "tokio-io")] {
/// use percore_net::compat::{Compat, CompatRead};
/// use tokio::io::AsyncReadExt;
///
/// async fn first_byte<S: CompatRead>(stream: &mut Compat<S>) -> u8 {
///     stream.read_u8().await.unwrap()
/// }
///
/// percore::run(async {
///     let (a, b) = percore_net::UnixStream::pair().unwrap();
///     a.write_all(&b"!"[..]).await.0.unwrap();
///     assert_eq!(first_byte(&mut Compat::new(b)).await, b'!');
/// });
/// # }
/// ```
pub trait CompatRead: CompatStream {}

/// A [`CompatStream`] that can be written: `Compat<S>` implements the write traits.
///
/// ```
/// # #[cfg(feature = "tokio-io")] {
/// use percore_net::compat::{Compat, CompatWrite};
/// use percore_net::{TcpListener, TcpStream};
/// use tokio::io::AsyncWriteExt;
///
/// async fn hello<S: CompatWrite>(stream: &mut Compat<S>) {
///     stream.write_all(b"hello").await.unwrap();
///     stream.flush().await.unwrap();
/// }
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (_rd, wr) = client.into_split(); // a write half is enough
///     hello(&mut Compat::new(wr)).await;
///     let (res, buf) = server.read_exact(Vec::with_capacity(5)).await;
///     res.unwrap();
///     assert_eq!(buf, b"hello");
/// });
/// # }
/// ```
pub trait CompatWrite: CompatStream {}

macro_rules! compat_stream {
    ($ty:ty, |$s:ident| $stream:expr, $($cap:ident),+) => {
        impl sealed::Sealed for $ty {
            fn stream(&self) -> &Stream {
                let $s = self;
                $stream
            }
        }
        impl CompatStream for $ty {}
        $(impl $cap for $ty {})+
    };
}

compat_stream!(crate::TcpStream, |s| &s.inner, CompatRead, CompatWrite);
compat_stream!(crate::UnixStream, |s| &s.inner, CompatRead, CompatWrite);
compat_stream!(crate::OwnedReadHalf, |s| &s.stream.inner, CompatRead);
compat_stream!(crate::OwnedWriteHalf, |s| &s.stream.inner, CompatWrite);

/// A percore stream behind the poll-based I/O traits; see the [module
/// docs](self) for the traits, the buffering and its costs.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "futures-io")] {
/// use futures_util::io::{AsyncReadExt, AsyncWriteExt};
/// use percore_net::UnixStream;
/// use percore_net::compat::Compat;
///
/// percore::run(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (mut a, mut b) = (Compat::new(a), Compat::new(b));
///     a.write_all(b"ping").await.unwrap();
///     a.close().await.unwrap(); // flush, then shut down the write side
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await.unwrap();
///     assert_eq!(got, b"ping");
/// });
/// # }
/// ```
pub struct Compat<S> {
    stream: S,
    reader: Reader,
    writer: Writer,
}

impl<S: CompatStream> Compat<S> {
    /// Wraps `stream` with the default buffer sizes
    /// ([`DEFAULT_READ_CAPACITY`], [`DEFAULT_WRITE_CAPACITY`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::compat::Compat;
    ///
    /// percore::run(async {
    ///     let (a, _b) = percore_net::UnixStream::pair().unwrap();
    ///     let a = Compat::new(a);
    ///     assert!(a.buffered().is_empty());
    /// });
    /// ```
    pub fn new(stream: S) -> Compat<S> {
        Compat::with_capacity(stream, DEFAULT_READ_CAPACITY, DEFAULT_WRITE_CAPACITY)
    }

    /// Wraps `stream`; one read asks the kernel for at most `read` bytes, and
    /// one write takes at most `write` bytes. Both are allocated on first
    /// use.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    /// use percore_net::compat::Compat;
    ///
    /// percore::run(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let a = Compat::with_capacity(a, 4096, 4096);
    ///     assert!(a.get_ref().peer_addr().is_ok());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If `read` or `write` is 0.
    pub fn with_capacity(stream: S, read: usize, write: usize) -> Compat<S> {
        assert!(
            read > 0 && write > 0,
            "Compat buffers need a capacity of at least 1"
        );
        Compat {
            stream,
            reader: Reader {
                buf: Vec::new(),
                pos: 0,
                cap: read,
                op: None,
            },
            writer: Writer {
                buf: Vec::new(),
                cap: write,
                sent: 0,
                op: None,
                shutdown: None,
                error: None,
            },
        }
    }
}

impl<S> Compat<S> {
    /// The wrapped stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    /// use percore_net::compat::Compat;
    ///
    /// percore::run(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let a = Compat::new(a);
    ///     assert!(a.get_ref().local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Unwraps the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UnixStream;
    /// use percore_net::compat::Compat;
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let a = Compat::new(a).into_inner();
    ///     a.write_all(&b"hi"[..]).await.0.unwrap();
    ///     let (res, buf) = b.read_exact(Vec::with_capacity(2)).await;
    ///     res.unwrap();
    ///     assert_eq!(buf, b"hi");
    /// });
    /// ```
    ///
    /// # Cancellation
    ///
    /// Ops in flight are cancelled: buffered bytes not yet read are lost, and
    /// writes not yet flushed may be partly sent. Flush first.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Bytes received from the kernel and not yet handed out.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio-io")] {
    /// use percore_net::UnixStream;
    /// use percore_net::compat::Compat;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// percore::run(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let (mut a, mut b) = (Compat::new(a), Compat::new(b));
    ///     a.write_all(b"abc").await.unwrap();
    ///     a.flush().await.unwrap();
    ///     let mut one = [0u8; 1];
    ///     b.read_exact(&mut one).await.unwrap();
    ///     assert_eq!(b.buffered(), b"bc");
    /// });
    /// # }
    /// ```
    pub fn buffered(&self) -> &[u8] {
        &self.reader.buf[self.reader.pos..]
    }
}

impl<S: fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("stream", &self.stream)
            .field("buffered_read", &(self.reader.buf.len() - self.reader.pos))
            .field("reading", &self.reader.op.is_some())
            .field("writing", &self.writer.op.is_some())
            .finish()
    }
}

/// The read side: `buf[pos..]` is received and not yet taken; while `op` is
/// in flight the buffer is inside it (and `buf` is an empty, unallocated Vec).
struct Reader {
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
    /// The receive in flight, and how many bytes it asked for.
    op: Option<(Op<op::Recv<Vec<u8>>>, usize)>,
}

impl Reader {
    /// Returns the buffered bytes, receiving more first if there are none;
    /// an empty slice is end of stream. The receive is `Stream::read`'s: it
    /// waits for data first after a read that drained the socket.
    fn poll_fill(&mut self, stream: &Stream, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.pos == self.buf.len() {
            let (op, want) = self.op.get_or_insert_with(|| {
                let mut buf = std::mem::take(&mut self.buf);
                self.pos = 0;
                buf.clear();
                buf.reserve_exact(self.cap);
                stream.recv_op(buf)
            });
            let (res, buf) = ready!(Pin::new(op).poll(cx));
            stream.note_read(*want, &res);
            self.op = None;
            self.buf = buf;
            self.pos = 0;
            if let Err(e) = res {
                self.buf.clear();
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(&self.buf[self.pos..]))
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

/// The write side: `buf[sent..]` is being sent by `op`, which owns the
/// buffer meanwhile; with no op, `buf` is empty.
struct Writer {
    buf: Vec<u8>,
    cap: usize,
    sent: usize,
    op: Option<Op<op::Send<Slice<Vec<u8>>>>>,
    shutdown: Option<Op<op::Shutdown>>,
    /// The error of a send that completed inside `poll_write`, for the next call.
    error: Option<io::Error>,
}

impl Writer {
    /// Waits until the kernel took every buffered byte.
    fn poll_drain(&mut self, fd: &SharedFd, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        while let Some(op) = self.op.as_mut() {
            let (res, slice) = ready!(Pin::new(op).poll(cx));
            self.op = None;
            let buf = slice.into_inner();
            match res {
                Ok(n) if n > 0 && self.sent + n < buf.len() => {
                    // Short send: send the rest, from the same buffer.
                    self.sent += n;
                    let rest = buf.slice(self.sent..);
                    self.op = Some(Op::new(op::Send::new(fd.clone(), rest)));
                }
                res => {
                    self.buf = buf;
                    self.buf.clear();
                    self.sent = 0;
                    return Poll::Ready(match res {
                        Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    });
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Waits for the previous send, then copies up to `cap` bytes of `bufs`
    /// into the buffer and submits one send for them.
    fn poll_write(
        &mut self,
        fd: &SharedFd,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_drain(fd, cx))?;
        let mut buf = std::mem::take(&mut self.buf);
        // Grow to what this write needs (up to `cap`), not to `cap` at once:
        // a connection that only sends small responses keeps a small buffer.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        buf.reserve_exact(total.min(self.cap));
        for b in bufs {
            let room = self.cap - buf.len();
            if room == 0 {
                break;
            }
            buf.extend_from_slice(&b[..b.len().min(room)]);
        }
        let n = buf.len();
        self.op = Some(Op::new(op::Send::new(fd.clone(), buf.slice(..))));
        // Submit now (the first poll only queues the SQE). An error of this
        // send, if it completes at once, is kept for the next call: the
        // bytes are taken either way.
        if let Poll::Ready(Err(e)) = self.poll_drain(fd, cx) {
            self.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: CompatRead> Compat<S> {
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.reader.poll_fill(self.stream.stream(), cx)
    }

    /// Hands buffered (or newly received) bytes to `copy`, which returns
    /// how many it took.
    fn read_with(
        &mut self,
        cx: &mut Context<'_>,
        copy: impl FnOnce(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        let n = copy(ready!(self.fill(cx))?);
        self.reader.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: CompatWrite> Compat<S> {
    fn write(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.writer.poll_write(&self.stream.stream().fd, cx, bufs)
    }

    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_drain(&self.stream.stream().fd, cx)
    }

    /// Flushes, then shuts down the write side: the peer reads end of stream.
    fn shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = &self.stream.stream().fd;
        ready!(self.writer.poll_drain(fd, cx))?;
        let op = self
            .writer
            .shutdown
            .get_or_insert_with(|| Op::new(op::Shutdown::new(fd.clone(), Shutdown::Write)));
        let res = ready!(Pin::new(op).poll(cx));
        self.writer.shutdown = None;
        Poll::Ready(res)
    }
}

#[cfg(feature = "tokio-io")]
mod tokio_impls {
    use super::*;
    use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

    impl<S: CompatRead> AsyncRead for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            ready!(self.get_mut().read_with(cx, |src| {
                let n = src.len().min(buf.remaining());
                buf.put_slice(&src[..n]);
                n
            }))?;
            Poll::Ready(Ok(()))
        }
    }

    impl<S: CompatRead> AsyncBufRead for Compat<S> {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().fill(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().reader.consume(amt);
        }
    }

    impl<S: CompatWrite> AsyncWrite for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shutdown(cx)
        }
    }
}

#[cfg(feature = "futures-io")]
mod futures_impls {
    use super::*;
    use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

    impl<S: CompatRead> AsyncRead for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            self.get_mut().read_with(cx, |src| {
                let n = src.len().min(buf.len());
                buf[..n].copy_from_slice(&src[..n]);
                n
            })
        }
    }

    impl<S: CompatRead> AsyncBufRead for Compat<S> {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().fill(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().reader.consume(amt);
        }
    }

    impl<S: CompatWrite> AsyncWrite for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shutdown(cx)
        }
    }
}

#[cfg(feature = "hyper")]
mod hyper_impls {
    use super::*;
    use ::hyper::rt::{Read, ReadBufCursor, Write};

    impl<S: CompatRead> Read for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            mut buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            ready!(self.get_mut().read_with(cx, |src| {
                let n = src.len().min(buf.remaining());
                buf.put_slice(&src[..n]);
                n
            }))?;
            Poll::Ready(Ok(()))
        }
    }

    impl<S: CompatWrite> Write for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().write(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shutdown(cx)
        }
    }
}
