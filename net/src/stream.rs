//! The byte-stream I/O shared by `TcpStream` and `UnixStream`.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use percore::buf::{BufResult, BufRing, IoBuf, IoBufMut, Slice};
use percore::fd::SharedFd;
use percore::op::{self, Op};

use crate::pooled::PooledRecv;

/// Writes of at least this many bytes go out with `IORING_OP_SEND_ZC` when the
/// kernel has it (TCP only; see `TcpStream::set_zerocopy_threshold`).
pub(crate) const DEFAULT_ZC_THRESHOLD: usize = usize::MAX;

/// The state shared by a stream's reads and writes. `pub` only so that the
/// sealed trait of `compat` may name it; the module is private.
pub struct Stream {
    pub(crate) fd: SharedFd,
    /// Writes of this many bytes or more use send_zc; `usize::MAX` = never.
    zc_threshold: Cell<usize>,
    /// The last read left the socket drained (it returned less than it
    /// asked for), so the next one most likely finds no data yet: it waits
    /// for data before trying, sparing the kernel a receive that fails.
    drained: Cell<bool>,
    /// The kernel has `IORING_RECVSEND_POLL_FIRST`.
    poll_first: bool,
    /// The epoll driver runs: a write tries `op::try_send` before an op.
    send_now: bool,
    /// On io_uring: `write_all` may send straight from its buffer when the
    /// core's sender is alone ([`Stream::try_direct`]). Off after a direct
    /// send found the socket full or filled it (the ring's send waits for
    /// room), and while a `write_all`'s send op is in flight (a direct send
    /// must not overtake it); on again once such an op sent all it had.
    direct: Cell<bool>,
}

impl Stream {
    pub(crate) fn new(fd: SharedFd, zc_threshold: usize) -> Stream {
        let caps = percore::capabilities();
        Stream {
            fd,
            zc_threshold: Cell::new(zc_threshold),
            drained: Cell::new(false),
            poll_first: caps.as_ref().is_some_and(|c| c.recv_poll_first),
            send_now: caps.is_some_and(|c| c.driver == percore::DriverKind::Epoll),
            direct: Cell::new(true),
        }
    }

    pub(crate) fn set_zc_threshold(&self, threshold: Option<usize>) {
        self.zc_threshold.set(threshold.unwrap_or(usize::MAX));
    }

    pub(crate) fn zc_threshold(&self) -> Option<usize> {
        Some(self.zc_threshold.get()).filter(|&t| t != usize::MAX)
    }

    pub(crate) async fn read<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        // A full buffer would read nothing and look like end of stream.
        if let Err(err) = percore::buf::read_room(&buf) {
            return (Err(err), buf);
        }
        let (recv, want) = self.recv_op(buf);
        let (res, buf) = recv.await;
        self.note_read(want, &res);
        (res, buf)
    }

    /// The receive op for one read into `buf`, and how many bytes it asks
    /// for; pass both to [`Stream::note_read`] with its result. (Split out
    /// for `compat`, which keeps the op across polls.)
    pub(crate) fn recv_op<B: IoBufMut>(&self, buf: B) -> (Op<op::Recv<B>>, usize) {
        let want = buf.bytes_total() - buf.bytes_init();
        let mut recv = op::Recv::new(self.fd.clone(), buf);
        if self.poll_first && self.drained.get() {
            recv = recv.poll_first();
        }
        (Op::new(recv), want)
    }

    /// Records whether a read left the socket drained.
    pub(crate) fn note_read(&self, want: usize, res: &io::Result<usize>) {
        if let Ok(n) = res {
            self.drained.set(*n < want);
        }
    }

    pub(crate) async fn read_exact<B: IoBufMut>(&self, mut buf: B) -> BufResult<(), B> {
        while buf.bytes_init() < buf.bytes_total() {
            let (res, b) = self.read(buf).await;
            buf = b;
            match res {
                Ok(0) => {
                    let err = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "end of stream before the buffer was full",
                    );
                    return (Err(err), buf);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    pub(crate) async fn write<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        self.ring_send(self.send(buf)).await
    }

    /// Awaits a send op not made by `write_all`, with `write_all`'s direct
    /// sends held back meanwhile (see [`Stream::direct`]): one must not
    /// overtake it. If the op's future is dropped before it completes,
    /// they stay held back until a send op completes.
    async fn ring_send<T>(&self, send: impl Future<Output = T>) -> T {
        self.direct.set(false);
        let out = send.await;
        self.direct.set(true);
        out
    }

    /// The send op for one write of `buf`: zero-copy from the threshold on,
    /// where the kernel has it. A future of its own rather than an `async`
    /// block, so `write_all` awaits one op in place, not a chain of them.
    fn send<B: IoBuf>(&self, buf: B) -> Send<B> {
        if buf.bytes_init() >= self.zc_threshold.get() && zc_available() {
            Send::Zc(Op::new(op::SendZc::new(self.fd.clone(), buf)))
        } else {
            Send::Plain(Op::new(op::SendOp::new(self.fd.clone(), buf)))
        }
    }

    pub(crate) async fn write_zc<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        if zc_available() {
            self.ring_send(Op::new(op::SendZc::new(self.fd.clone(), buf)))
                .await
        } else {
            self.ring_send(Op::new(op::SendOp::new(self.fd.clone(), buf)))
                .await
        }
    }

    /// Sends the rest of the buffer until all of it went out: one op in
    /// flight at a time, in a future that is that op and the stream.
    /// Inlined (here and the public `write_all`s), so the future is built
    /// where it is awaited rather than returned and copied there. It is
    /// built holding just the buffer (`Send::Now`); its first poll decides
    /// how to send it, so building it writes one variant of a known shape,
    /// not a `Send` of either shape.
    #[inline(always)]
    pub(crate) fn write_all<B: IoBuf>(&self, buf: B) -> WriteAll<'_, B> {
        let total = buf.bytes_init();
        WriteAll {
            stream: self,
            send: Send::Now(Some(buf.slice(..total))),
        }
    }

    /// A `write_all`'s send op: direct sends are held back until it sent
    /// all it had ([`Stream::op_done`]), so none overtakes it.
    #[inline(always)]
    fn write_all_op<B: IoBuf>(&self, buf: B) -> Send<B> {
        self.direct.set(false);
        self.send(buf)
    }

    /// `buf` sent now, if that is cheaper than a send op: on epoll, the
    /// driver's `send(2)` ([`percore::op::try_send`]); on io_uring, one
    /// non-blocking `send(2)` when the sender is alone this tick
    /// ([`percore::op::lone_sender`]), as `Compat` does. A ring send there
    /// costs the park that submits it a return with its completion, a turn
    /// of the loop and a poll of this task: the syscall is made either way.
    /// `None`: send with an op, which waits for room (the socket is full,
    /// or another sender's entries wait for the tick's one
    /// `io_uring_enter`, which then carries this send too), and which on
    /// io_uring also takes the sends from the zero-copy threshold on and
    /// those made while a send op of the stream's is in flight.
    fn try_now(&self, buf: &[u8]) -> Option<io::Result<usize>> {
        if self.send_now {
            return percore::op::try_send(&self.fd, buf);
        }
        if !self.direct.get() || buf.len() >= self.zc_threshold.get() {
            return None;
        }
        self.try_direct(buf)
    }

    /// A `write_all`'s send op is done: direct sends may go again if it
    /// sent all it had (else the rest goes by op too).
    #[inline]
    fn op_done<B: IoBuf>(
        &self,
        (res, slice): BufResult<usize, Slice<B>>,
    ) -> BufResult<usize, Slice<B>> {
        self.direct
            .set(matches!(res, Ok(n) if n == slice.bytes_init()));
        (res, slice)
    }

    /// [`Stream::try_now`] on io_uring.
    fn try_direct(&self, buf: &[u8]) -> Option<io::Result<usize>> {
        let mut direct = self.direct.get();
        let sent = send_alone(&mut direct, buf.len(), |flags| {
            socket2::SockRef::from(&self.fd).send_with_flags(buf, flags)
        });
        self.direct.set(direct);
        sent
    }

    pub(crate) async fn write_vectored<B: IoBuf>(&self, bufs: Vec<B>) -> BufResult<usize, Vec<B>> {
        self.ring_send(Op::new(op::SendMsg::new(self.fd.clone(), bufs, None)))
            .await
    }

    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Op::new(op::ShutdownOp::new(self.fd.clone(), how)).await
    }

    pub(crate) fn recv_pooled(&self, ring: &BufRing) -> PooledRecv {
        PooledRecv::new(self.fd.clone(), ring)
    }
}

/// A socket type built on [`Stream`] (`TcpStream`, `UnixStream`): what the
/// owned halves and `Incoming` need of it, so that they depend on this
/// module and not on the socket types. `pub` only to be named in their
/// bounds; the module is private, so the trait is sealed.
pub trait StreamSocket: Sized {
    /// The socket's address: `SocketAddr` for TCP, `SockAddr` for Unix.
    type Addr;
    /// A socket for an accepted or connected descriptor.
    fn from_fd(fd: SharedFd) -> Self;
    /// The socket around state taken out of another one (reunited halves).
    fn from_stream(stream: Stream) -> Self;
    /// The socket's state, to be shared by its halves.
    fn into_stream(self) -> Stream;
    /// The local address of the socket `stream` belongs to.
    fn local_addr_of(stream: &Stream) -> io::Result<Self::Addr>;
    /// The peer's address of the socket `stream` belongs to.
    fn peer_addr_of(stream: &Stream) -> io::Result<Self::Addr>;
}

/// [`Stream::send`]'s op: a plain or a zero-copy send of the same buffer;
/// or, for [`WriteAll`], the part to send next, not yet given to an op: its
/// next poll tries it straight away ([`Stream::try_now`]) or makes the op
/// (nothing of it is in the driver, so dropping it is dropping the buffer;
/// `None` only inside `WriteAll::poll`).
enum Send<B: IoBuf> {
    Plain(Op<op::SendOp<B>>),
    Zc(Op<op::SendZc<B>>),
    Now(Option<B>),
}

impl<B: IoBuf> Future for Send<B> {
    type Output = BufResult<usize, B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both ops are `Unpin`, and so is this enum.
        match self.get_mut() {
            Send::Plain(op) => Pin::new(op).poll(cx),
            Send::Zc(op) => Pin::new(op).poll(cx),
            Send::Now(_) => unreachable!("WriteAll::poll tries it itself"),
        }
    }
}

/// [`Stream::write_all`]'s future: the send of the part not yet sent (its
/// slice starts where the sent bytes end), and the stream to send the next
/// part on. A future of its own rather than an `async fn`, so it is no
/// larger than its op, and moving it (into a timeout, a select) is cheap.
pub(crate) struct WriteAll<'a, B: IoBuf> {
    stream: &'a Stream,
    send: Send<Slice<B>>,
}

impl<B: IoBuf> Future for WriteAll<'_, B> {
    type Output = BufResult<(), B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Send` is `Unpin`, and so is this future.
        let this = self.get_mut();
        loop {
            let (res, slice) = match &mut this.send {
                Send::Now(slot) => {
                    let slice = slot.take().expect("write_all polled after completion");
                    match this.stream.try_now(&slice) {
                        Some(res) => (res, slice),
                        None => {
                            // Not now (the socket is full, not known yet,
                            // the ring batches this tick's sends, or an op
                            // of the stream's is in flight): the op sends
                            // it, waiting for room.
                            this.send = this.stream.write_all_op(slice);
                            continue;
                        }
                    }
                }
                Send::Plain(op) => this.stream.op_done(ready!(Pin::new(op).poll(cx))),
                Send::Zc(op) => this.stream.op_done(ready!(Pin::new(op).poll(cx))),
            };
            let (sent, total) = (slice.begin(), slice.end());
            let buf = slice.into_inner();
            let sent = match res {
                Ok(n) if sent + n == total => return Poll::Ready((Ok(()), buf)),
                Ok(0) => return Poll::Ready((Err(io::ErrorKind::WriteZero.into()), buf)),
                Ok(n) => sent + n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => sent,
                Err(e) => return Poll::Ready((Err(e), buf)),
            };
            this.send = Send::Now(Some(buf.slice(sent..total)));
        }
    }
}

/// One non-blocking send of `total` bytes, made by `send` with the flags
/// it is given, if this sender is alone in its tick
/// ([`percore::op::lone_sender`]): the io_uring driver's direct send, of
/// [`Stream`] and of `Compat`. `None`: send with the ring's op instead (a
/// sender not alone, a full socket, a signal). `direct` turns off when the
/// socket filled (a short send, or `EAGAIN`): the next writes go to the
/// ring's send, which waits for room.
#[inline]
pub(crate) fn send_alone(
    direct: &mut bool,
    total: usize,
    send: impl FnOnce(libc::c_int) -> io::Result<usize>,
) -> Option<io::Result<usize>> {
    if !op::lone_sender() {
        return None;
    }
    match send(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
        Ok(n) => {
            *direct = n == total;
            Some(Ok(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *direct = false;
            None
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
        Err(e) => Some(Err(e)),
    }
}

fn zc_available() -> bool {
    percore::capabilities().is_some_and(|c| c.send_zc)
}

/// `percore::io::OwnedRead` for a stream type and for a shared reference to
/// it (its reads take `&self`), so `percore::io::BufReader` reads lines from
/// a connection, also while the connection is written to. Invoked by each
/// socket module for its stream and read half, so this module names neither.
macro_rules! owned_read {
    ($($ty:ty),+) => {$(
        impl percore::io::OwnedRead for $ty {
            fn read<B: percore::buf::IoBufMut>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = percore::buf::BufResult<usize, B>> {
                <$ty>::read(self, buf)
            }
        }

        impl percore::io::OwnedRead for &$ty {
            fn read<B: percore::buf::IoBufMut>(
                &mut self,
                buf: B,
            ) -> impl std::future::Future<Output = percore::buf::BufResult<usize, B>> {
                <$ty>::read(self, buf)
            }
        }
    )+};
}
pub(crate) use owned_read;

/// The read methods of every byte stream (`TcpStream`, `UnixStream` and the
/// owned read half), written once: each forwards to the [`Stream`] in
/// `self.$field`. `imports` and `setup` start the doc examples: `setup`
/// makes `a`, which writes, and `b`, which reads, connected to each other.
macro_rules! stream_reads {
    (field = $field:ident, imports = $imports:literal, setup = [$($setup:literal),* $(,)?] $(,)?) => {
        /// Reads into `buf`'s spare capacity (after its initialized bytes) and
        /// returns how many bytes arrived; `Ok(0)` is end of stream. Pass
        /// `Vec::with_capacity(n)`, or `clear()` a buffer before reusing it.
        ///
        /// # Errors
        ///
        /// `InvalidInput` ("buffer has no spare capacity; clear() it or
        /// reserve") if `buf` is full (`vec![0u8; n]`, a zero-capacity
        /// `Vec::new()`): never `Ok(0)`, which would read as end of stream (see
        /// [`percore::buf::read_room`]). `ECONNRESET` when the peer reset the
        /// connection, ...
        ///
        /// # Cancellation
        ///
        /// Dropping the future cancels the read; `buf` is freed only after the
        /// kernel's completion, and bytes it received are lost.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!(" use percore_net::", $imports, ";")]
        ///
        /// percore::run(async {
        $(#[doc = concat!("     ", $setup)])*
        ///     a.write_all(b"hello".to_vec()).await.0.unwrap();
        ///     // Reads into the buffer's spare capacity; the buffer comes back either way.
        ///     let (res, buf) = b.read(Vec::with_capacity(64)).await;
        ///     assert_eq!(res.unwrap(), buf.len());
        ///     assert!(b"hello".starts_with(&buf));
        /// });
        /// ```
        pub async fn read<B: ::percore::buf::IoBufMut>(
            &self,
            buf: B,
        ) -> ::percore::buf::BufResult<usize, B> {
            self.$field.read(buf).await
        }

        /// Reads until `buf` is full (its initialized length reaches its
        /// capacity); a buffer that is full already reads nothing and returns
        /// `Ok(())`.
        ///
        /// # Errors
        ///
        /// `ErrorKind::UnexpectedEof` if the stream ends first (the bytes that
        /// arrived are in `buf`), or the read's error.
        ///
        /// # Cancellation
        ///
        /// As [`read`](Self::read); bytes already read are lost with the buffer.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!(" use percore_net::", $imports, ";")]
        ///
        /// percore::run(async {
        $(#[doc = concat!("     ", $setup)])*
        ///     a.write_all(b"hel".to_vec()).await.0.unwrap();
        ///     a.write_all(b"lo".to_vec()).await.0.unwrap();
        ///     let (res, buf) = b.read_exact(Vec::with_capacity(5)).await;
        ///     res.unwrap();
        ///     assert_eq!(buf, b"hello");
        /// });
        /// ```
        pub async fn read_exact<B: ::percore::buf::IoBufMut>(
            &self,
            buf: B,
        ) -> ::percore::buf::BufResult<(), B> {
            self.$field.read_exact(buf).await
        }
    };
}

/// The write methods of every byte stream (`TcpStream`, `UnixStream` and the
/// owned write half), written once, as `stream_reads` is; `write_doc` is
/// what a protocol adds to `write`'s description.
macro_rules! stream_writes {
    (
        field = $field:ident,
        imports = $imports:literal,
        setup = [$($setup:literal),* $(,)?],
        write_doc = [$($write_doc:literal),* $(,)?] $(,)?
    ) => {
        /// Writes some of `buf`'s initialized bytes and returns how many.
        $(#[doc = $write_doc])*
        ///
        /// # Errors
        ///
        /// `EPIPE` or `ECONNRESET` when the peer is gone (never a `SIGPIPE`).
        ///
        /// # Cancellation
        ///
        /// Dropping the future cancels the write; some bytes may have been sent.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!(" use percore_net::", $imports, ";")]
        ///
        /// percore::run(async {
        $(#[doc = concat!("     ", $setup)])*
        ///     let (res, buf) = a.write(b"hello".to_vec()).await;
        ///     assert_eq!(res.unwrap(), 5); // may be short for large buffers: see write_all
        ///     assert_eq!(buf, b"hello");
        ///     # drop(b);
        /// });
        /// ```
        pub async fn write<B: ::percore::buf::IoBuf>(
            &self,
            buf: B,
        ) -> ::percore::buf::BufResult<usize, B> {
            self.$field.write(buf).await
        }

        /// Writes all of `buf`'s initialized bytes.
        ///
        /// # Errors
        ///
        /// As [`write`](Self::write); on error an unknown part was sent.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!(" use percore_net::", $imports, ";")]
        ///
        /// percore::run(async {
        $(#[doc = concat!("     ", $setup)])*
        ///     // More than a socket buffer holds: a reader runs alongside.
        ///     let reader = percore::spawn(async move { b.read_exact(Vec::with_capacity(1 << 20)).await });
        ///     let (res, _buf) = a.write_all(vec![7u8; 1 << 20]).await;
        ///     res.unwrap();
        ///     let (res, buf) = reader.await.unwrap();
        ///     res.unwrap();
        ///     assert!(buf.iter().all(|&b| b == 7));
        /// });
        /// ```
        // Not an `async fn`: the stream's own future, with no layer (and
        // copy of it) around it.
        #[inline(always)]
        pub fn write_all<B: ::percore::buf::IoBuf>(
            &self,
            buf: B,
        ) -> impl ::std::future::Future<Output = ::percore::buf::BufResult<(), B>> {
            self.$field.write_all(buf)
        }

        /// Writes the buffers, in order, with one `sendmsg`; returns how many
        /// bytes went out (possibly fewer than all).
        ///
        /// # Errors
        ///
        /// As [`write`](Self::write).
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!(" use percore_net::", $imports, ";")]
        ///
        /// percore::run(async {
        $(#[doc = concat!("     ", $setup)])*
        ///     let (n, _) = a.write_vectored(vec![b"head".to_vec(), b"body".to_vec()]).await;
        ///     assert_eq!(n.unwrap(), 8);
        ///     let (res, buf) = b.read_exact(Vec::with_capacity(8)).await;
        ///     res.unwrap();
        ///     assert_eq!(buf, b"headbody");
        /// });
        /// ```
        pub async fn write_vectored<B: ::percore::buf::IoBuf>(
            &self,
            bufs: Vec<B>,
        ) -> ::percore::buf::BufResult<usize, Vec<B>> {
            self.$field.write_vectored(bufs).await
        }
    };
}

/// `stream_reads` and `stream_writes` together: inside a stream type's `impl`
/// (`field`: its [`Stream`]), or, given `read` and `write`, as two `impl`
/// blocks of a protocol's owned halves (`field = stream`), which share one
/// doc setup.
macro_rules! stream_io {
    (
        field = $field:ident,
        imports = $imports:literal,
        setup = [$($setup:literal),* $(,)?],
        write_doc = [$($write_doc:literal),* $(,)?] $(,)?
    ) => {
        $crate::stream::stream_reads! { field = $field, imports = $imports, setup = [$($setup),*] }
        $crate::stream::stream_writes! {
            field = $field,
            imports = $imports,
            setup = [$($setup),*],
            write_doc = [$($write_doc),*],
        }
    };
    (
        read = $read:ident,
        write = $write:ident,
        imports = $imports:literal,
        setup = [$($setup:literal),* $(,)?] $(,)?
    ) => {
        impl<S: StreamSocket> $read<S> {
            $crate::stream::stream_reads! { field = stream, imports = $imports, setup = [$($setup),*] }
        }

        impl<S: StreamSocket> $write<S> {
            $crate::stream::stream_writes! {
                field = stream,
                imports = $imports,
                setup = [$($setup),*],
                write_doc = [],
            }
        }
    };
}

pub(crate) use {stream_io, stream_reads, stream_writes};
