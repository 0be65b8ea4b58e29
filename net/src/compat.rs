//! Poll-based I/O traits for percore's owned-buffer streams, so libraries
//! written against `tokio::io`, `futures::io` or `hyper::rt` (hyper,
//! rustls, codecs) run on percore.
//!
//! [`Compat`] wraps a [`TcpStream`], [`UnixStream`], an owned half
//! (TCP's or Unix's [`OwnedReadHalf`], [`OwnedWriteHalf`]) or a [`percore::fs::File`], and
//! implements, per cargo feature of percore-net (all off by default):
//!
//! | feature | traits |
//! |---|---|
//! | `tokio-io` | `tokio::io::{AsyncRead, AsyncBufRead, AsyncWrite}`; `AsyncSeek` for `Compat<File>` |
//! | `futures-io` | `futures_io::{AsyncRead, AsyncBufRead, AsyncWrite}`; `AsyncSeek` for `Compat<File>` |
//! | `hyper` | `hyper::rt::{Read, Write}` (see [`crate::hyper`]) |
//!
//! A `Compat<File>` reads and writes at the file's position (see
//! [`File::read`](percore::fs::File::read)), through the same buffers as a
//! socket: a read waits for buffered writes to reach the file first, a
//! write first moves the position back over read-ahead bytes not yet taken,
//! and a seek does both, so the position is always where the caller's reads
//! and writes leave it. Shutting down a file only flushes.
//!
//! ```
//! # #[cfg(feature = "tokio-io")] {
//! use percore_net::compat::Compat;
//! use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt};
//!
//! let path = std::env::temp_dir().join(format!("percore-doc-compat-file-{}", std::process::id()));
//! percore::run(async {
//!     let file = percore::fs::File::options().read(true).write(true).create(true).truncate(true)
//!         .open(&path).await.unwrap();
//!     let mut file = Compat::new(file);
//!     file.write_all(b"one\ntwo\n").await.unwrap();
//!     file.rewind().await.unwrap();
//!     let mut lines = file.lines();
//!     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("one"));
//! });
//! std::fs::remove_file(&path).unwrap();
//! # }
//! ```
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
//! - **Writes** to a socket by a lone sender (no other task ready on the
//!   core and nothing waiting in the ring, see
//!   [`percore::op::lone_sender`]; every write on the epoll driver) go out
//!   as one non-blocking `sendmsg` straight from the caller's slices: no
//!   copy, no op, no completion to reap. What the socket does not take at
//!   once (`EAGAIN`, a short send) takes the ring path below, and so do the
//!   writes after it until a send through the ring went out whole.
//! - **Writes** otherwise are copied into the write buffer (up to
//!   [`DEFAULT_WRITE_CAPACITY`] bytes per call, vectored writes gathered
//!   into it) and one `IORING_OP_SEND` is submitted at once: **one extra
//!   copy per byte written**. Many senders in one tick share its one
//!   `io_uring_enter` this way. `poll_write` returns as soon as the bytes are
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
//! hyper's `Write::poll_flush` differs from the other two flushes: where a
//! socket send goes out whole or fails (io_uring on Linux 5.19+, whose
//! kernel finishes a send flagged `MSG_WAITALL` itself), it returns once
//! the send is queued, and the send's completion wakes no task, so a
//! response costs hyper's connection one poll instead of two. An error of
//! that send comes back from the next write, flush or shutdown; hyper
//! shuts a connection down (which waits for the send) before it drops it.
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
//! [`OwnedReadHalf`]: crate::tcp::OwnedReadHalf
//! [`OwnedWriteHalf`]: crate::tcp::OwnedWriteHalf

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, SeekFrom};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use percore::buf::{BufRing, IoBuf, ProvidedBuf, Slice};
use percore::fd::SharedFd;
use percore::op::{self, MultishotOp, Op, RecvMulti};

use crate::stream::send_alone;

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
    /// Gives `Compat` what it drives (`Io` is unnameable outside the crate,
    /// and so is this trait).
    pub trait Sealed {
        fn io(&self) -> Io<'_>;
    }

    /// A socket (receive and send ops) or a file (read and write ops at its
    /// position).
    #[derive(Clone, Copy)]
    pub enum Io<'a> {
        Socket(&'a crate::stream::Stream),
        File(&'a percore::fd::SharedFd),
    }

    impl Io<'_> {
        pub fn fd(&self) -> &percore::fd::SharedFd {
            match self {
                Io::Socket(stream) => &stream.fd,
                Io::File(fd) => fd,
            }
        }
    }
}

use sealed::{Io, Sealed as _};

/// What a percore stream or file [`Compat`] can wrap: [`TcpStream`](crate::TcpStream),
/// [`UnixStream`](crate::UnixStream), the owned halves, and
/// [`percore::fs::File`]. Sealed.
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
            fn io(&self) -> Io<'_> {
                let $s = self;
                Io::Socket($stream)
            }
        }
        impl CompatStream for $ty {}
        $(impl $cap for $ty {})+
    };
}

compat_stream!(crate::TcpStream, |s| &s.inner, CompatRead, CompatWrite);
compat_stream!(crate::UnixStream, |s| &s.inner, CompatRead, CompatWrite);
compat_stream!(crate::tcp::OwnedReadHalf, |s| &s.stream, CompatRead);
compat_stream!(crate::tcp::OwnedWriteHalf, |s| &s.stream, CompatWrite);
compat_stream!(crate::unix::OwnedReadHalf, |s| &s.stream, CompatRead);
compat_stream!(crate::unix::OwnedWriteHalf, |s| &s.stream, CompatWrite);

impl sealed::Sealed for percore::fs::File {
    fn io(&self) -> Io<'_> {
        Io::File(self.fd())
    }
}
impl CompatStream for percore::fs::File {}
impl CompatRead for percore::fs::File {}
impl CompatWrite for percore::fs::File {}

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
    /// A file seek started by `tokio::io::AsyncSeek::start_seek`.
    #[cfg(feature = "tokio-io")]
    seek: Option<SeekFrom>,
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
        let sends_whole = sends_whole(stream.io());
        let socket = matches!(stream.io(), Io::Socket(_));
        Compat {
            stream,
            reader: Reader {
                buf: Vec::new(),
                pos: 0,
                cap: read,
                op: None,
                pooled: None,
            },
            writer: Writer {
                buf: Vec::new(),
                cap: write,
                sent: 0,
                op: None,
                shutdown: None,
                error: None,
                sends_whole,
                direct: socket,
            },
            #[cfg(feature = "tokio-io")]
            seek: None,
        }
    }
}

impl<S: CompatRead> Compat<S> {
    /// Wraps a socket that receives into `ring` (a multishot receive into
    /// buffers of a ring shared by the core's connections) instead of a
    /// read buffer of its own: an idle connection then holds no receive
    /// buffer, and the kernel keeps one receive armed per connection
    /// instead of arming one per read (the epoll driver receives inside
    /// each read instead, when the socket is readable, so bytes not yet
    /// asked for hold no buffer there). Bytes are still copied once, out of
    /// the ring's buffer, which goes back to the ring as soon as it is
    /// taken. When the ring runs dry (connections that receive much more
    /// than they consume), reads fall back to a plain buffer of
    /// [`DEFAULT_READ_CAPACITY`] until buffers come back. A file, or a
    /// runtime without multishot receive, reads as with [`Compat::new`].
    #[cfg(feature = "serve")]
    pub(crate) fn with_ring(stream: S, ring: Option<&BufRing>) -> Compat<S> {
        let mut compat = Compat::new(stream);
        if let (Some(ring), Io::Socket(stream)) = (ring, compat.stream.io()) {
            // Built now (it is armed on the first read), so that a read never
            // checks whether it exists. On demand, as `PooledRecv`: on the
            // epoll driver a read then receives inside its own poll (one
            // `recv` into a ring buffer, no completion queue or wake-up), and
            // bytes hyper has not asked for stay in the socket.
            let recv = MultishotOp::new(RecvMulti::new(stream.fd.clone(), ring)).on_demand();
            compat.reader.pooled = Some(Box::new(Pooled {
                recv,
                held: None,
                pos: 0,
                rearmed: false,
            }));
        }
        compat
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
        self.reader.buffered()
    }
}

impl<S: fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compat")
            .field("stream", &self.stream)
            .field("buffered_read", &self.reader.unread())
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
    op: Option<ReadOp>,
    /// Receiving into a shared buffer ring instead (sockets only; see
    /// [`Compat::with_ring`]); `buf` then only serves the fallback when the
    /// ring runs dry.
    pooled: Option<Box<Pooled>>,
}

/// One multishot receive into a shared [`BufRing`], and the ring buffer
/// being handed out (`held[pos..]` not yet taken). `held` is `Some` only
/// while it has bytes left: the read that takes its last byte gives it back
/// to the ring at once, so "nothing buffered" is one check.
struct Pooled {
    recv: MultishotOp<RecvMulti>,
    held: Option<ProvidedBuf>,
    pos: usize,
    /// The receive ended with `ENOBUFS` and was re-armed once.
    rearmed: bool,
}

/// What [`Pooled::poll_fill`] found.
enum Fill {
    /// `held[pos..]` has bytes.
    Held,
    /// End of stream.
    Eof,
    /// The ring is empty: receive into the plain buffer this time.
    Plain,
}

impl Pooled {
    #[inline]
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Fill>> {
        if self.held.is_some() {
            return Poll::Ready(Ok(Fill::Held));
        }
        self.poll_recv(cx)
    }

    /// Waits for the receive's next buffer (nothing is held).
    #[inline]
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Fill>> {
        loop {
            match ready!(self.recv.poll_next(cx)) {
                Some(Ok(Some(buf))) => {
                    // A completion with a buffer has data (`Ok(0)` comes
                    // without one, as `None`), so `held` keeps its invariant.
                    self.rearmed = false;
                    self.held = Some(buf);
                    self.pos = 0;
                    return Poll::Ready(Ok(Fill::Held));
                }
                Some(Ok(None)) | None => return Poll::Ready(Ok(Fill::Eof)),
                Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // As `PooledRecv::next`: re-arm once if buffers came
                    // back, else take the pending bytes into a plain buffer.
                    if !self.rearmed && self.recv.data().ring().available() > 0 {
                        self.rearmed = true;
                    } else {
                        self.rearmed = false;
                        return Poll::Ready(Ok(Fill::Plain));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn unread(&self) -> &[u8] {
        self.held.as_ref().map_or(&[], |b| &b[self.pos..])
    }

    /// Hands the held bytes to `copy` and takes what it took (at most all of
    /// them); the buffer goes back to the ring once taken whole.
    #[inline]
    fn take_with(&mut self, copy: impl FnOnce(&[u8]) -> usize) -> usize {
        let Some(held) = &self.held else { return 0 };
        let src = &held[self.pos..];
        let left = src.len();
        let n = copy(src).min(left);
        if n == left {
            self.held = None;
        } else {
            self.pos += n;
        }
        n
    }
}

/// A read in flight: a socket receive (with how many bytes it asked for),
/// or a file read at the file's position.
enum ReadOp {
    Recv(Op<op::Recv<Vec<u8>>>, usize),
    Read(Op<op::Read<Vec<u8>>>),
}

impl Reader {
    /// Returns the buffered bytes, receiving more first if there are none;
    /// an empty slice is end of stream. A socket receive is
    /// `Stream::read`'s: it waits for data first after a read that drained
    /// the socket.
    fn poll_fill(&mut self, io: Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        if let Some(p) = self.pooled_idle() {
            match ready!(p.poll_fill(cx))? {
                Fill::Held => return Poll::Ready(Ok(self.pooled.as_deref().unwrap().unread())),
                Fill::Eof => return Poll::Ready(Ok(&[])),
                Fill::Plain => {}
            }
        }
        ready!(self.poll_plain(io, cx))?;
        Poll::Ready(Ok(&self.buf[self.pos..]))
    }

    /// The ring receive, when this reader has one and nothing in the plain
    /// buffer or in flight there (which the caller takes first).
    #[inline]
    fn pooled_idle(&mut self) -> Option<&mut Pooled> {
        let idle = self.pos == self.buf.len() && self.op.is_none();
        self.pooled.as_deref_mut().filter(|_| idle)
    }

    /// Fills the plain buffer, if it is empty, with a receive or file read
    /// of its own. Out of line: the ring path, which serves most reads of a
    /// server, then carries none of this op's state in its frame.
    #[inline(never)]
    fn poll_plain(&mut self, io: Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pos == self.buf.len() {
            if self.op.is_none() {
                let mut buf = std::mem::take(&mut self.buf);
                self.pos = 0;
                buf.clear();
                buf.reserve_exact(self.cap);
                self.op = Some(match io {
                    Io::Socket(stream) => {
                        let (op, want) = stream.recv_op(buf);
                        ReadOp::Recv(op, want)
                    }
                    Io::File(fd) => ReadOp::Read(Op::new(op::Read::new(
                        fd.clone(),
                        buf,
                        op::CURRENT_POSITION,
                    ))),
                });
            }
            ready!(self.poll_op(io, cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Waits for the read in flight, if any, and buffers what it read.
    fn poll_op(&mut self, io: Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (res, buf) = match self.op.as_mut() {
            None => return Poll::Ready(Ok(())),
            Some(ReadOp::Recv(op, want)) => {
                let (res, buf) = ready!(Pin::new(op).poll(cx));
                if let Io::Socket(stream) = io {
                    stream.note_read(*want, &res);
                }
                (res, buf)
            }
            Some(ReadOp::Read(op)) => ready!(Pin::new(op).poll(cx)),
        };
        self.op = None;
        self.buf = buf;
        self.pos = 0;
        if let Err(e) = res {
            self.buf.clear();
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(()))
    }

    fn consume(&mut self, n: usize) {
        match self.pooled.as_deref_mut() {
            Some(p) if p.held.is_some() => {
                p.take_with(|_| n);
            }
            _ => self.pos = (self.pos + n).min(self.buf.len()),
        }
    }

    /// Bytes read ahead and not yet taken.
    fn buffered(&self) -> &[u8] {
        match self.pooled.as_deref() {
            Some(p) if p.held.is_some() => p.unread(),
            _ => &self.buf[self.pos..],
        }
    }

    /// How many bytes were read ahead and not yet taken.
    fn unread(&self) -> usize {
        self.buffered().len()
    }

    fn discard(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

/// `lseek(2)` on a file's descriptor. A duplicate shares the open file
/// description, and with it the position (percore-net has no `unsafe`).
fn lseek(fd: &SharedFd, pos: SeekFrom) -> io::Result<u64> {
    use std::io::Seek;
    let mut file = std::fs::File::from(fd.as_fd().try_clone_to_owned()?);
    file.seek(pos)
}

/// The most slices one `sendmsg(2)` takes (Linux's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

/// The write side: `buf[sent..]` is being sent by `op`, which owns the
/// buffer meanwhile; with no op, `buf` is empty.
struct Writer {
    buf: Vec<u8>,
    cap: usize,
    sent: usize,
    op: Option<WriteOp>,
    shutdown: Option<Op<op::ShutdownOp>>,
    /// The error of a send that completed inside `poll_write`, for the next call.
    error: Option<io::Error>,
    /// Sends go out whole or fail (see [`sends_whole`]), so nothing but an
    /// error can be left for a later poll to finish.
    sends_whole: bool,
    /// Try a write as a non-blocking `sendmsg(2)` first ([`Writer::try_direct`]):
    /// a socket whose last send went out whole. Off for files, and after a
    /// direct send that found the socket's buffer full, until a send through
    /// the ring went out whole.
    direct: bool,
}

/// Whether a socket send flagged `MSG_WAITALL` goes out whole or fails: on
/// io_uring since Linux 5.19, where the kernel retries a short send on a
/// stream socket itself (the release that brought `IORING_RECVSEND_POLL_FIRST`,
/// which `recv_poll_first` reports; off in minimal mode, as that is). Not on
/// the epoll driver, whose `send(2)` may be short, nor for files.
fn sends_whole(io: Io<'_>) -> bool {
    matches!(io, Io::Socket(_)) && percore::capabilities().is_some_and(|c| c.recv_poll_first)
}

/// A write in flight: a socket send, or a file write at the file's position.
enum WriteOp {
    Send(Op<op::SendOp<Slice<Vec<u8>>>>),
    Write(Op<op::Write<Slice<Vec<u8>>>>),
}

impl WriteOp {
    fn new(io: Io<'_>, buf: Slice<Vec<u8>>, whole: bool) -> WriteOp {
        match io {
            Io::Socket(stream) => {
                let send = op::SendOp::new(stream.fd.clone(), buf);
                WriteOp::Send(Op::new(if whole {
                    send.flags(libc::MSG_WAITALL)
                } else {
                    send
                }))
            }
            Io::File(fd) => WriteOp::Write(Op::new(op::Write::new(
                fd.clone(),
                buf,
                op::CURRENT_POSITION,
            ))),
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<percore::buf::BufResult<usize, Slice<Vec<u8>>>> {
        match self {
            WriteOp::Send(op) => Pin::new(op).poll(cx),
            WriteOp::Write(op) => Pin::new(op).poll(cx),
        }
    }
}

impl Writer {
    /// Waits until the kernel took every buffered byte.
    fn poll_drain(&mut self, io: Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        while let Some(op) = self.op.as_mut() {
            let (res, slice) = ready!(op.poll(cx));
            self.op = None;
            let buf = slice.into_inner();
            match res {
                Ok(n) if n > 0 && self.sent + n < buf.len() => {
                    // Short send: send the rest, from the same buffer.
                    self.sent += n;
                    let rest = buf.slice(self.sent..);
                    self.op = Some(WriteOp::new(io, rest, self.sends_whole));
                }
                res => {
                    self.buf = buf;
                    self.buf.clear();
                    self.sent = 0;
                    // All sent: the socket's buffer had room again.
                    self.direct |= res.is_ok() && matches!(io, Io::Socket(_));
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
        io: Io<'_>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_drain(io, cx))?;
        if let Some(res) = self.try_direct(io, bufs) {
            return Poll::Ready(res);
        }
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
        self.op = Some(WriteOp::new(io, buf.slice(..), self.sends_whole));
        // Submit now (the first poll only queues the SQE), with no waiter
        // (`op::unwaited`): the caller has its bytes taken, and whichever
        // call of its waits for the send (the next write, a flush)
        // registers its own waker. So a send nobody waits for wakes no task
        // and costs the loop no turn when it completes. An error
        // of this send, if it completes at once, is kept for the next call.
        if let Poll::Ready(Err(e)) = self.poll_drain(io, &mut Context::from_waker(op::unwaited())) {
            self.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    /// Sends `bufs` with one non-blocking `sendmsg(2)` straight from the
    /// caller's slices, when nothing is in flight (the caller waited for
    /// that): no copy into the write buffer, no op, and no completion for
    /// the loop to reap. On io_uring that makes a response one `sendmsg`
    /// in place of a second `io_uring_enter` (the park that submits the
    /// send returns with its completion and waits again); on epoll it is
    /// the `send(2)` the send op would have made first anyway. `None`
    /// means go through the ring: a file; a socket whose buffer is full
    /// (`EAGAIN`; the ring's send waits for room), or one a direct send
    /// filled last time; or, on io_uring, a sender that is not alone this
    /// tick ([`percore::op::lone_sender`]: many responses in one tick go
    /// out in the one `io_uring_enter` the tick makes anyway, cheaper than
    /// a `sendmsg` each).
    fn try_direct(&mut self, io: Io<'_>, bufs: &[IoSlice<'_>]) -> Option<io::Result<usize>> {
        let Io::Socket(stream) = io else {
            return None;
        };
        if !self.direct {
            return None;
        }
        // More slices than one sendmsg takes (IOV_MAX) go out in turns.
        let bufs = &bufs[..bufs.len().min(IOV_MAX)];
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match send_alone(&mut self.direct, total, |flags| {
            socket2::SockRef::from(&stream.fd).send_vectored_with_flags(bufs, flags)
        }) {
            Some(Ok(0)) => Some(Err(io::ErrorKind::WriteZero.into())),
            sent => sent,
        }
    }

    /// A flush that does not wait for a send in flight when the send goes
    /// out whole or fails ([`Writer::sends_whole`]): the bytes are with the
    /// kernel's ring, and nothing is left for this side to do. A send that
    /// failed inside `poll_write` reports its error here; one that fails
    /// later reports it from the next write, flush or shutdown, which wait
    /// for it. What this saves: the poll of the caller's task that the
    /// send's completion would cost (hyper's whole connection state
    /// machine, per response), and the look at the op itself (hyper flushes
    /// twice per response).
    #[cfg(feature = "hyper")]
    fn poll_flush_queued(&mut self, io: Io<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.sends_whole {
            return self.poll_drain(io, cx);
        }
        Poll::Ready(self.error.take().map_or(Ok(()), Err))
    }
}

impl<S: CompatRead> Compat<S> {
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let io = self.stream.io();
        if let Io::File(_) = io {
            // A file has one position: buffered writes land before we read.
            ready!(self.writer.poll_drain(io, cx))?;
        }
        self.reader.poll_fill(io, cx)
    }

    /// Hands buffered (or newly received) bytes to `copy`, which returns
    /// how many it took.
    fn read_with(
        &mut self,
        cx: &mut Context<'_>,
        copy: impl FnOnce(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        // A socket on a buffer ring (a server's connection) takes this path
        // for nearly every read: copy straight out of the held buffer, or
        // poll the armed receive, with no other state touched.
        if let Some(p) = self.reader.pooled_idle() {
            match ready!(p.poll_fill(cx))? {
                Fill::Held => return Poll::Ready(Ok(p.take_with(copy))),
                Fill::Eof => return Poll::Ready(Ok(0)),
                // The ring is empty: this read goes through the plain buffer.
                Fill::Plain => {
                    let io = self.stream.io();
                    ready!(self.reader.poll_plain(io, cx))?;
                    let n = copy(&self.reader.buf[self.reader.pos..]);
                    self.reader.consume(n);
                    return Poll::Ready(Ok(n));
                }
            }
        }
        let n = copy(ready!(self.fill(cx))?);
        self.reader.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl<S: CompatWrite> Compat<S> {
    fn write(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let io = self.stream.io();
        if let Io::File(fd) = io {
            // A file has one position: the write goes where the caller's
            // reads stopped, not after the read-ahead.
            ready!(self.reader.poll_op(io, cx))?;
            if self.reader.unread() > 0 {
                lseek(fd, SeekFrom::Current(-(self.reader.unread() as i64)))?;
                self.reader.discard();
            }
        }
        self.writer.poll_write(io, cx, bufs)
    }

    /// The flush of the tokio and futures traits (hyper's is
    /// [`Compat::flush_queued`]).
    #[cfg(any(feature = "tokio-io", feature = "futures-io"))]
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_drain(self.stream.io(), cx)
    }

    /// hyper's flush: see [`Writer::poll_flush_queued`].
    #[cfg(feature = "hyper")]
    fn flush_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.poll_flush_queued(self.stream.io(), cx)
    }

    /// Flushes, then shuts down the write side: the peer reads end of
    /// stream. A file is only flushed.
    fn shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = self.stream.io();
        ready!(self.writer.poll_drain(io, cx))?;
        let Io::Socket(stream) = io else {
            return Poll::Ready(Ok(()));
        };
        let fd = &stream.fd;
        let op = self
            .writer
            .shutdown
            .get_or_insert_with(|| Op::new(op::ShutdownOp::new(fd.clone(), Shutdown::Write)));
        let res = ready!(Pin::new(op).poll(cx));
        self.writer.shutdown = None;
        // A connection the peer already reset has no write side left to
        // shut: `ENOTCONN` means it is shut (hyper's HTTP/1 dispatcher
        // reads it the same way). Otherwise a client's clean close would
        // fail whenever the server's close happened to come first.
        Poll::Ready(match res {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            res => res,
        })
    }
}

impl Compat<percore::fs::File> {
    /// Moves the file's position as `pos` says, counted from where the
    /// caller's reads and writes left it: flushes buffered writes, waits
    /// for a read in flight, drops the read-ahead.
    #[cfg_attr(
        not(any(feature = "tokio-io", feature = "futures-io")),
        allow(dead_code)
    )]
    fn poll_seek_to(&mut self, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        let io = self.stream.io();
        ready!(self.writer.poll_drain(io, cx))?;
        ready!(self.reader.poll_op(io, cx))?;
        let pos = match pos {
            SeekFrom::Current(n) => SeekFrom::Current(n - self.reader.unread() as i64),
            pos => pos,
        };
        let at = lseek(io.fd(), pos)?;
        self.reader.discard();
        Poll::Ready(Ok(at))
    }
}

/// The write methods every poll trait shares (tokio's and futures'
/// `AsyncWrite`, hyper's `Write`): plain and vectored writes both go
/// through [`Compat::write`].
#[cfg(any(feature = "tokio-io", feature = "futures-io", feature = "hyper"))]
macro_rules! poll_write_methods {
    // tokio's `AsyncWrite` and hyper's `Write`: vectored, and the same
    // shutdown.
    (vectored, shutdown) => {
        poll_write_methods!();

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().shutdown(cx)
        }
    };
    () => {
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
    };
}

/// tokio's and futures' `AsyncBufRead`: the same two methods.
#[cfg(any(feature = "tokio-io", feature = "futures-io"))]
macro_rules! buf_read_methods {
    () => {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().fill(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().reader.consume(amt);
        }
    };
}

/// A read into a cursor with `remaining` and `put_slice` (tokio's
/// `ReadBuf`, hyper's `ReadBufCursor`, which have no trait in common).
#[cfg(any(feature = "tokio-io", feature = "hyper"))]
macro_rules! put_read {
    ($this:expr, $cx:expr, $buf:expr) => {{
        if $buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!($this.get_mut().read_with($cx, |src| {
            let n = src.len().min($buf.remaining());
            $buf.put_slice(&src[..n]);
            n
        }))?;
        Poll::Ready(Ok(()))
    }};
}

#[cfg(feature = "tokio-io")]
mod tokio_impls {
    use super::*;
    use tokio::io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

    impl AsyncSeek for Compat<percore::fs::File> {
        fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
            let this = self.get_mut();
            if this.seek.is_some() {
                return Err(io::Error::other(
                    "other file seek in progress: call poll_complete first",
                ));
            }
            this.seek = Some(position);
            Ok(())
        }

        fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
            let this = self.get_mut();
            let pos = this.seek.unwrap_or(SeekFrom::Current(0));
            let res = ready!(this.poll_seek_to(cx, pos));
            this.seek = None;
            Poll::Ready(res)
        }
    }

    impl<S: CompatRead> AsyncRead for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            put_read!(self, cx, buf)
        }
    }

    impl<S: CompatRead> AsyncBufRead for Compat<S> {
        buf_read_methods!();
    }

    impl<S: CompatWrite> AsyncWrite for Compat<S> {
        poll_write_methods!(vectored, shutdown);

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flush(cx)
        }
    }
}

#[cfg(feature = "futures-io")]
mod futures_impls {
    use super::*;
    use futures_io::{AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite};

    impl AsyncSeek for Compat<percore::fs::File> {
        fn poll_seek(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            pos: SeekFrom,
        ) -> Poll<io::Result<u64>> {
            self.get_mut().poll_seek_to(cx, pos)
        }
    }

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
        buf_read_methods!();
    }

    impl<S: CompatWrite> AsyncWrite for Compat<S> {
        poll_write_methods!();

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
            put_read!(self, cx, buf)
        }
    }

    impl<S: CompatWrite> Write for Compat<S> {
        poll_write_methods!(vectored, shutdown);

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flush_queued(cx)
        }
    }
}

#[cfg(all(test, feature = "serve", feature = "tokio-io"))]
mod ring_tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    /// Reads smaller than a received ring buffer take it piece by piece, in
    /// order, through `read` and `fill_buf`/`consume` alike; the buffer goes
    /// back to the ring with its last byte, not at the next read; end of
    /// stream reads as 0 every time.
    #[test]
    fn partial_reads_take_a_ring_buffer_in_order_and_give_it_back_with_its_last_byte() {
        percore::run(async {
            if !percore::capabilities().is_some_and(|c| c.multishot_recv) {
                return; // no multishot receive: `with_ring` reads plainly
            }
            let ring = BufRing::builder(4, 64).incremental(false).build().unwrap();
            let (a, b) = crate::UnixStream::pair().unwrap();
            let mut b = Compat::with_ring(b, Some(&ring));
            a.write_all(&b"hello world"[..]).await.0.unwrap();
            let mut two = [0u8; 2];
            b.read_exact(&mut two).await.unwrap();
            assert_eq!(&two, b"he");
            assert_eq!(b.buffered(), b"llo world");
            assert_eq!(ring.available(), 3, "the received buffer is held");
            assert_eq!(b.fill_buf().await.unwrap(), b"llo world");
            b.consume(3);
            assert_eq!(b.buffered(), b" world");
            let mut rest = [0u8; 16];
            let n = b.read(&mut rest).await.unwrap();
            assert_eq!(&rest[..n], b" world");
            assert!(b.buffered().is_empty());
            assert_eq!(ring.available(), 4, "taken whole: back in the ring");
            drop(a);
            assert_eq!(b.read(&mut rest).await.unwrap(), 0);
            assert_eq!(b.read(&mut rest).await.unwrap(), 0, "end of stream stays");
            assert_eq!(ring.available(), 4);
        });
    }

    /// On the epoll driver the ring's receive is made on demand, inside a
    /// read: bytes that arrive while nobody reads stay in the socket and
    /// hold no ring buffer (on io_uring the kernel receives them into the
    /// ring as they come), and the next read gets them whole.
    #[test]
    fn on_epoll_bytes_nobody_reads_yet_hold_no_ring_buffer() {
        let rt = percore::Runtime::builder()
            .driver(percore::DriverKind::Epoll)
            .build()
            .unwrap();
        rt.block_on(async {
            if !percore::capabilities().is_some_and(|c| c.multishot_recv) {
                return; // minimal features: no rings, `with_ring` reads plainly
            }
            let ring = BufRing::builder(4, 64).incremental(false).build().unwrap();
            let (a, b) = crate::UnixStream::pair().unwrap();
            let mut b = Compat::with_ring(b, Some(&ring));
            a.write_all(&b"first"[..]).await.0.unwrap();
            let mut first = [0u8; 5];
            b.read_exact(&mut first).await.unwrap();
            assert_eq!(ring.available(), 4, "read whole: back in the ring");
            a.write_all(&b"second"[..]).await.0.unwrap();
            // Parks the loop, so the driver sees the socket's read edge.
            percore::time::sleep(std::time::Duration::from_millis(20)).await;
            assert_eq!(ring.available(), 4, "nobody asked: no buffer taken");
            let mut second = [0u8; 6];
            b.read_exact(&mut second).await.unwrap();
            assert_eq!(&second, b"second");
            assert_eq!(ring.available(), 4);
        });
    }

    /// On the epoll driver, a peer that resets the connection while a ring
    /// read waits: the read fails with `ECONNRESET` (no buffer taken, none
    /// lost), later reads fail or end, and the ring keeps all its buffers.
    #[test]
    fn on_epoll_a_peer_reset_fails_the_waiting_ring_read_and_keeps_the_ring() {
        let rt = percore::Runtime::builder()
            .driver(percore::DriverKind::Epoll)
            .build()
            .unwrap();
        rt.block_on(async {
            if !percore::capabilities().is_some_and(|c| c.multishot_recv) {
                return; // minimal features: no rings, `with_ring` reads plainly
            }
            let ring = BufRing::builder(4, 64).incremental(false).build().unwrap();
            let listener = crate::TcpListener::bind("127.0.0.1:0").unwrap();
            let peer = crate::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (conn, _) = listener.accept().await.unwrap();
            let mut conn = Compat::with_ring(conn, Some(&ring));
            let read = percore::spawn(async move {
                let mut buf = [0u8; 16];
                let first = conn.read(&mut buf).await;
                let again = conn.read(&mut buf).await;
                (first.map_err(|e| e.kind()), again.map_err(|e| e.kind()))
            });
            percore::yield_now().await; // the read now waits for data
            peer.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(peer);
            let (first, again) = percore::time::timeout(std::time::Duration::from_secs(10), read)
                .await
                .expect("the reset wakes the waiting read")
                .unwrap();
            assert_eq!(first, Err(io::ErrorKind::ConnectionReset));
            assert!(
                matches!(again, Ok(0) | Err(_)),
                "after the reset: {again:?}"
            );
            assert_eq!(ring.available(), 4, "no buffer taken or lost");
        });
    }

    /// A ring far smaller than what arrives before the reader reads: the
    /// receive runs the ring dry (`ENOBUFS`), falls back to the plain
    /// buffer, re-arms, and every byte still comes out once, in order.
    #[test]
    fn a_ring_that_runs_dry_loses_and_repeats_nothing() {
        percore::run(async {
            if !percore::capabilities().is_some_and(|c| c.multishot_recv) {
                return; // no multishot receive: `with_ring` reads plainly
            }
            let ring = BufRing::new(2, 64).unwrap();
            let (a, b) = crate::UnixStream::pair().unwrap();
            let data: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
            let mut b = Compat::with_ring(b, Some(&ring));
            assert!(b.reader.pooled.is_some());
            let writer = percore::spawn(async move {
                let (res, _) = a.write_all(data).await;
                res.unwrap();
            });
            // Arm the receive, then let the data pile up behind it.
            let mut first = [0u8; 1];
            b.read_exact(&mut first).await.unwrap();
            writer.await.unwrap();
            let mut rest = Vec::new();
            let got = percore::time::timeout(std::time::Duration::from_secs(20), async {
                let mut buf = [0u8; 3000];
                while rest.len() < 19_999 {
                    let n = b.read(&mut buf).await.unwrap();
                    assert!(n > 0, "end of stream after {} bytes", rest.len() + 1);
                    rest.extend_from_slice(&buf[..n]);
                }
            })
            .await;
            assert!(got.is_ok(), "stalled after {} bytes", rest.len() + 1);
            let expect: Vec<u8> = (0..20_000u32).map(|i| (i % 241) as u8).collect();
            assert_eq!(first[0], expect[0]);
            assert_eq!(rest, expect[1..]);
            assert_eq!(ring.available(), 2, "every ring buffer went back");
        });
    }
}
