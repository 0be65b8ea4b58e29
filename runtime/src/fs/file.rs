//! `File`: an open file whose every operation is an op on the ring; when a
//! read skips the ring or goes to the kernel at once is `read_policy`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::{with_hint, with_path};
use super::read_policy::{self, ReadPolicy};
use super::syscall;
use super::{DioAlignment, Metadata, NOWAIT_READS_DEFAULT, OpenOptions, cstring};
use crate::buf::{BufResult, FixedBuf, IoBuf, IoBufMut};
use crate::fd::SharedFd;
use crate::op::{
    Fallocate, FixedFd, Fsync, Ftruncate, Op, OpCode, OpenAt, Read, ReadFixed, Readv,
    STATX_BASIC_STATS, STATX_BTIME, STATX_DIOALIGN, Statx, Write, WriteFixed, Writev,
};

/// How a file's data will be read, for [`File::advise`] (`posix_fadvise`).
///
/// # Examples
///
/// ```
/// use percore::fs::{Advice, File};
///
/// percore::run(async {
///     let file = File::open("/proc/self/exe").await.unwrap();
///     file.advise(0, 0, Advice::Sequential).await.unwrap();
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Advice {
    /// No particular order (the default readahead).
    Normal = libc::POSIX_FADV_NORMAL,
    /// In order from low to high offsets: read ahead more.
    Sequential = libc::POSIX_FADV_SEQUENTIAL,
    /// In random order: no readahead around each read.
    Random = libc::POSIX_FADV_RANDOM,
    /// Soon: start reading the range into the page cache now.
    WillNeed = libc::POSIX_FADV_WILLNEED,
    /// Not again soon: the kernel may drop the range's clean pages.
    DontNeed = libc::POSIX_FADV_DONTNEED,
    /// Once only.
    NoReuse = libc::POSIX_FADV_NOREUSE,
}

/// An open file. Reads and writes take owned buffers:
/// `let (res, buf) = file.read_at(buf, pos).await`.
///
/// Two ways to say where: the positional [`read_at`](File::read_at) /
/// [`write_at`](File::write_at) family names the offset and never moves the
/// file's position, while [`read`](File::read) / [`write`](File::write) (and
/// `read_exact`, `write_all`) read and write at the position and advance
/// it, and [`seek`](File::seek) moves it, as with `std::fs::File`. The
/// position is the descriptor's own file offset (so it is shared with
/// `dup`licates and a `std::fs::File` it came from).
///
/// Every read fills the buffer's spare room after its initialized bytes; a
/// buffer with none (a full `vec![0u8; n]`) is an `InvalidInput` error, see
/// [`read_room`](crate::buf::read_room).
///
/// Every operation is an op on the current core's ring (openat, read,
/// write, fsync, statx, fallocate, ftruncate, close). Reads may first try
/// `preadv2(RWF_NOWAIT)`, see [`OpenOptions::nowait_reads`].
///
/// Dropping a `File` closes it through the ring once no op on it is in
/// flight any more (each op holds a handle to the descriptor), so a closed
/// descriptor never races an op still using it.
///
/// # Examples
///
/// ```
/// use percore::fs::File;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-file-{}", std::process::id()));
/// percore::run(async {
///     let file = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
///     let (res, _) = file.write_all_at(b"hello world".to_vec(), 0).await;
///     res.unwrap();
///     let (n, buf) = file.read_at(Vec::with_capacity(5), 6).await;
///     assert_eq!(n.unwrap(), 5);
///     assert_eq!(buf, b"world");
///     file.close().await.unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct File {
    fd: SharedFd,
    path: Option<Rc<Path>>,
    direct: Option<DioAlignment>,
    fixed: Option<FixedFd>,
    /// When to read without the ring and when to submit at once.
    reads: ReadPolicy,
}

impl File {
    /// Opens `path` read-only.
    ///
    /// # Errors
    ///
    /// The kernel's error, with the path in its message (see [`PathError`](super::PathError)).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let (n, _) = file.read_at(Vec::with_capacity(8), 0).await;
    ///     assert_eq!(n.unwrap(), 0);
    /// });
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` write-only, creating it or truncating it to 0 bytes.
    ///
    /// # Errors
    ///
    /// The kernel's error, with the path in its message.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-create-{}", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::File::create(&path).await.unwrap();
    ///     assert_eq!(file.metadata().await.unwrap().len(), 0);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// A new [`OpenOptions`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::options().read(true).open("/dev/zero").await.unwrap();
    ///     let (n, _) = file.read_at(Vec::with_capacity(4), 0).await;
    ///     assert_eq!(n.unwrap(), 4);
    /// });
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    pub(crate) async fn open_with(path: &Path, opts: &OpenOptions) -> io::Result<File> {
        let flags = opts.flags().map_err(|e| with_path(e, "open", path))?;
        let c = cstring(path, "open")?;
        let fd = match Op::new(OpenAt::new(c, flags, opts.mode_bits())).await {
            Ok(fd) => fd,
            Err(err) if opts.direct && err.raw_os_error() == Some(libc::EINVAL) => {
                return Err(refused_direct(err, path));
            }
            Err(err) => return Err(with_path(err, "open", path)),
        };
        let mut file = File {
            fd,
            path: Some(Rc::from(path)),
            direct: None,
            fixed: None,
            reads: ReadPolicy::new(
                opts.nowait_reads.unwrap_or(NOWAIT_READS_DEFAULT) && !opts.direct,
                opts.submit_now.or(opts.direct.then_some(true)),
            ),
        };
        if opts.direct {
            let meta = Op::new(Statx::fd(file.fd.clone(), STATX_DIOALIGN))
                .await
                .map(Metadata::from_raw)
                .map_err(|e| with_path(e, "statx", path))?;
            file.direct = Some(match meta.dio_alignment() {
                Some(align) => align,
                // The kernel answered, and the answer is "no direct I/O here".
                None if meta.dio_reported() => {
                    return Err(refused_direct(
                        io::Error::from_raw_os_error(libc::EINVAL),
                        path,
                    ));
                }
                None => DioAlignment::default(),
            });
        }
        Ok(file)
    }

    /// Wraps a file opened by std (or anything else), e.g. to use an
    /// inherited descriptor. Reads use the `RWF_NOWAIT` fast path per
    /// [`NOWAIT_READS_DEFAULT`](super::NOWAIT_READS_DEFAULT); a file opened
    /// with `O_DIRECT` elsewhere is not known to be direct, so open such files
    /// with [`OpenOptions::direct`] instead.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::from_std(std::fs::File::open("/dev/zero").unwrap());
    ///     let (n, _) = file.read_at(Vec::with_capacity(3), 0).await;
    ///     assert_eq!(n.unwrap(), 3);
    /// });
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File {
            fd: SharedFd::new(file.into()),
            path: None,
            direct: None,
            fixed: None,
            reads: ReadPolicy::new(NOWAIT_READS_DEFAULT, None),
        }
    }

    /// The path the file was opened with, if it was opened by path.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/proc/self/stat").await.unwrap();
    ///     assert_eq!(file.path(), Some(std::path::Path::new("/proc/self/stat")));
    /// });
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The descriptor handle, to build ops of your own.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::op::{Op, Read};
    ///
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/proc/self/stat").await.unwrap();
    ///     // An op of your own on the file's descriptor.
    ///     let (res, buf) = Op::new(Read::new(file.fd().clone(), Vec::with_capacity(8), 0)).await;
    ///     assert_eq!(res.unwrap(), buf.len());
    /// });
    /// ```
    pub fn fd(&self) -> &SharedFd {
        &self.fd
    }

    /// For messages: the path, or the descriptor number.
    fn name(&self) -> PathBuf {
        match &self.path {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from(format!("<fd {}>", self.fd.raw_fd())),
        }
    }

    /// The direct I/O alignment, if the file was opened with `O_DIRECT`.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     assert_eq!(file.dio_alignment(), None);
    /// });
    /// ```
    pub fn dio_alignment(&self) -> Option<DioAlignment> {
        self.direct
    }

    /// Turns the `RWF_NOWAIT` read fast path on or off for this file (no
    /// effect on `O_DIRECT` files, which never use it).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     file.set_nowait_reads(false);
    ///     let (n, _) = file.read_at(Vec::with_capacity(3), 0).await;
    ///     assert_eq!(n.unwrap(), 3);
    /// });
    /// ```
    pub fn set_nowait_reads(&mut self, on: bool) {
        self.reads.set_nowait(on && self.direct.is_none());
    }

    /// Hands each of this file's reads, writes and syncs to the kernel as
    /// soon as it is issued; see [`OpenOptions::submit_now`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut file = percore::fs::File::from_std(std::fs::File::open("/dev/zero").unwrap());
    ///     file.set_submit_now(true);
    ///     let (n, _) = file.read_at(Vec::with_capacity(3), 0).await;
    ///     assert_eq!(n.unwrap(), 3);
    /// });
    /// ```
    pub fn set_submit_now(&mut self, on: bool) {
        self.reads.set_submit_now(on);
    }

    /// [`check_direct`](Self::check_direct) for a read into `buf`'s spare room.
    fn check_direct_read<B: IoBufMut>(&self, buf: &mut B, pos: u64) -> io::Result<()> {
        let (ptr, room) = buf.spare_room();
        self.check_direct("read", ptr as usize, room, pos)
    }

    /// [`check_direct`](Self::check_direct) for a write of `buf`'s initialized bytes.
    fn check_direct_write<B: IoBuf>(&self, buf: &B, pos: u64) -> io::Result<()> {
        self.check_direct("write", buf.stable_ptr() as usize, buf.bytes_init(), pos)
    }

    /// Checks an `O_DIRECT` op's buffer address, length and offset.
    fn check_direct(
        &self,
        what: &'static str,
        addr: usize,
        len: usize,
        pos: u64,
    ) -> io::Result<()> {
        let Some(align) = self.direct else {
            return Ok(());
        };
        let problem = if !addr.is_multiple_of(align.memory as usize) {
            Some(format!(
                "buffer address {addr:#x} is not a multiple of {} (the device's memory alignment)",
                align.memory
            ))
        } else if !len.is_multiple_of(align.offset as usize) {
            Some(format!(
                "length {len} is not a multiple of {} (the device's offset alignment)",
                align.offset
            ))
        } else if pos != crate::op::CURRENT_POSITION && !pos.is_multiple_of(align.offset as u64) {
            Some(format!(
                "offset {pos} is not a multiple of {} (the device's offset alignment)",
                align.offset
            ))
        } else {
            None
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(with_hint(
                io::Error::new(io::ErrorKind::InvalidInput, format!("misaligned O_DIRECT {what}: {problem}")),
                what,
                &self.name(),
                Some("use percore::buf::AlignedBuf or a FixedBufPool buffer, and aligned offsets and lengths".into()),
            )),
        }
    }

    /// Explains an EINVAL from the kernel on an `O_DIRECT` file.
    fn direct_error(&self, err: io::Error, what: &'static str) -> io::Error {
        if self.direct.is_some() && err.raw_os_error() == Some(libc::EINVAL) {
            with_hint(
                err,
                what,
                &self.name(),
                Some("the kernel rejected this O_DIRECT request: check buffer, offset and length alignment".into()),
            )
        } else {
            err
        }
    }

    /// An op on this file's data, run within the task queue's file I/O
    /// limit, if it has one (`TaskQueue::set_file_io_limit`).
    async fn op<T: OpCode>(&self, data: T) -> T::Output {
        let _slot = crate::executor::FileIoSlot::acquire().await;
        self.ring_op(data).await
    }

    /// The op itself, submitted at once when the read policy says so.
    fn ring_op<T: OpCode>(&self, data: T) -> Op<T> {
        let op = Op::new(data);
        if self.reads.submit_now() {
            op.submit_now()
        } else {
            op
        }
    }

    /// Reads into `buf`'s spare room (after its initialized bytes) from
    /// offset `pos`, and returns the number of bytes read with the buffer.
    /// `Ok(0)` means end of file; fewer bytes than asked do not by themselves
    /// mean end of file. For pipes and terminals pass
    /// [`CURRENT_POSITION`](crate::op::CURRENT_POSITION). Does not move the
    /// file's position (see [`File::read`] for reads that do).
    ///
    /// Works with `Vec<u8>` (reads into its spare capacity:
    /// `Vec::with_capacity(n)`, or `clear()` a buffer before reusing it),
    /// `BytesMut`, [`AlignedBuf`](crate::buf::AlignedBuf),
    /// [`Slice`](crate::buf::Slice) and any [`IoBufMut`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` ("buffer has no spare capacity; clear() it or
    /// reserve") if `buf` is full, e.g. `vec![0u8; 1024]` or a zero-capacity
    /// `Vec::new()`: never `Ok(0)`, which would read as end of file (see
    /// [`read_room`](crate::buf::read_room)). The kernel's error; on
    /// `O_DIRECT` files an `InvalidInput` error naming the path for a
    /// misaligned buffer, length or offset.
    ///
    /// # Cancellation
    ///
    /// Dropping the future while the read is in flight keeps the buffer alive
    /// until the kernel is done with it, then frees it.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let mut buf = Vec::with_capacity(8);
    ///     buf.extend_from_slice(&[1, 1]);
    ///     // The two existing bytes stay; the read fills the spare capacity.
    ///     let (n, buf) = file.read_at(buf, 0).await;
    ///     assert_eq!(n.unwrap(), 6);
    ///     assert_eq!(buf, [1, 1, 0, 0, 0, 0, 0, 0]);
    /// });
    /// ```
    pub async fn read_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> BufResult<usize, B> {
        if let Err(err) = crate::buf::read_room(&buf) {
            return (Err(with_path(err, "read", &self.name())), buf);
        }
        if self.direct.is_some() {
            if let Err(err) = self.check_direct_read(&mut buf, pos) {
                return (Err(err), buf);
            }
        } else if let Some(res) = self.reads.try_nowait(&self.fd, &mut buf, pos) {
            return match res {
                // Only a prefix was cached: read the rest through the ring,
                // so that a short count means end of file, as with pread.
                // Should that read fail, the prefix is still returned. (A
                // pipe read at the current position is short when the pipe
                // holds less: that is its answer.)
                Ok(n)
                    if n > 0
                        && pos != crate::op::CURRENT_POSITION
                        && buf.bytes_init() < buf.bytes_total() =>
                {
                    let (rest, buf) = self.ring_read(buf, pos + n as u64).await;
                    (Ok(n + rest.unwrap_or(0)), buf)
                }
                res => {
                    read_policy::fast_path_yield().await;
                    (res, buf)
                }
            };
        }
        self.ring_read(buf, pos).await
    }

    /// One read through the ring.
    async fn ring_read<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let read = self.read_op(Read::new(self.fd.clone(), buf, pos));
        let (res, buf) = read_policy::ring_read(read).await;
        (res.map_err(|e| self.direct_error(e, "read")), buf)
    }

    /// A read op, timed for the read policy.
    async fn read_op<T: OpCode>(&self, data: T) -> T::Output {
        self.reads.timed(self.op(data)).await
    }

    /// Reads until `buf`'s spare room is full, starting at `pos`; a buffer
    /// that is full already reads nothing and returns `Ok(())`. Does not move
    /// the file's position.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the bytes read so far are in
    /// the returned buffer), or any error of [`File::read_at`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let (res, buf) = file.read_exact_at(Vec::with_capacity(100), 0).await;
    ///     res.unwrap();
    ///     assert_eq!(buf.len(), buf.capacity());
    /// });
    /// ```
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> BufResult<(), B> {
        let start = buf.bytes_init();
        while buf.bytes_init() < buf.bytes_total() {
            let done = (buf.bytes_init() - start) as u64;
            let (res, b) = self.read_at(buf, advance(pos, done)).await;
            buf = b;
            match res {
                Ok(0) => {
                    let err = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "file ended after {done} of {} bytes",
                            buf.bytes_total() - start
                        ),
                    );
                    return (Err(with_path(err, "read_exact", &self.name())), buf);
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads into the spare room of several buffers in order, from `pos`
    /// (`IORING_OP_READV`). Does not move the file's position.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if no buffer has spare room (or `bufs` is empty), or
    /// the kernel's error.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let (n, bufs) = file.read_vectored_at(vec![Vec::with_capacity(2), Vec::with_capacity(3)], 0).await;
    ///     assert_eq!(n.unwrap(), 5);
    ///     assert_eq!(bufs[1].len(), 3);
    /// });
    /// ```
    pub async fn read_vectored_at<B: IoBufMut>(
        &self,
        mut bufs: Vec<B>,
        pos: u64,
    ) -> BufResult<usize, Vec<B>> {
        if self.direct.is_some() {
            for b in &mut bufs {
                if let Err(err) = self.check_direct_read(b, pos) {
                    return (Err(err), bufs);
                }
            }
        }
        if bufs.iter().all(|b| b.bytes_init() == b.bytes_total()) {
            return (
                Err(with_path(crate::buf::no_room(), "read", &self.name())),
                bufs,
            );
        }
        let (res, bufs) = self.read_op(Readv::new(self.fd.clone(), bufs, pos)).await;
        (res.map_err(|e| self.direct_error(e, "read")), bufs)
    }

    /// Writes `buf`'s initialized bytes at `pos` and returns how many were
    /// written, with the buffer. On a file opened with
    /// [`append`](OpenOptions::append) every write goes to the end and `pos`
    /// is ignored (as with `pwrite(2)` on Linux). Does not move the file's
    /// position (see [`File::write`] for writes that do).
    ///
    /// # Errors
    ///
    /// The kernel's error; on `O_DIRECT` files an `InvalidInput` error naming
    /// the path for a misaligned buffer, length or offset.
    ///
    /// # Cancellation
    ///
    /// Dropping the future while the write is in flight keeps the buffer
    /// alive until the kernel is done with it; the write may or may not have
    /// happened, but never partly with freed memory.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::options().write(true).open("/dev/null").await.unwrap();
    ///     let (n, _) = file.write_at(b"abc".to_vec(), 0).await;
    ///     assert_eq!(n.unwrap(), 3);
    /// });
    /// ```
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        if let Err(err) = self.check_direct_write(&buf, pos) {
            return (Err(err), buf);
        }
        let (res, buf) = self.op(Write::new(self.fd.clone(), buf, pos)).await;
        (res.map_err(|e| self.direct_error(e, "write")), buf)
    }

    /// Writes all of `buf`'s initialized bytes at `pos`, issuing more writes
    /// after short ones. Does not move the file's position.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts nothing, or any error of [`File::write_at`].
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::options().write(true).open("/dev/null").await.unwrap();
    ///     let (res, buf) = file.write_all_at(vec![7u8; 10_000], 0).await;
    ///     res.unwrap();
    ///     assert_eq!(buf.len(), 10_000);
    /// });
    /// ```
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        let total = buf.bytes_init();
        let mut done = 0;
        let mut buf = buf;
        while done < total {
            let (res, slice) = self
                .write_at(buf.slice(done..total), advance(pos, done as u64))
                .await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let err =
                        io::Error::new(io::ErrorKind::WriteZero, "the file accepted no more bytes");
                    return (Err(with_path(err, "write_all", &self.name())), buf);
                }
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes several buffers in order at `pos` (`IORING_OP_WRITEV`).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::options().write(true).open("/dev/null").await.unwrap();
    ///     let (n, _) = file.write_vectored_at(vec![b"ab".to_vec(), b"cd".to_vec()], 0).await;
    ///     assert_eq!(n.unwrap(), 4);
    /// });
    /// ```
    pub async fn write_vectored_at<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> BufResult<usize, Vec<B>> {
        for b in &bufs {
            if let Err(err) = self.check_direct_write(b, pos) {
                return (Err(err), bufs);
            }
        }
        let (res, bufs) = self.op(Writev::new(self.fd.clone(), bufs, pos)).await;
        (res.map_err(|e| self.direct_error(e, "write")), bufs)
    }

    /// Reads into a registered buffer's spare room at `pos`
    /// (`IORING_OP_READ_FIXED`), through the registered file slot if
    /// [`File::register`] was called. Never tries `RWF_NOWAIT`: this is the
    /// ring's own fast path. A buffer from a pool of another core's ring is
    /// read into with an ordinary read. A full buffer is an `InvalidInput`
    /// error, as for [`File::read_at`]. Does not move the file's position.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::FixedBufPool;
    ///
    /// percore::run(async {
    ///     let pool = FixedBufPool::new(2, 4096).unwrap();
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let (n, buf) = file.read_fixed_at(pool.get().await, 0).await;
    ///     assert_eq!(n.unwrap(), 4096);
    ///     assert_eq!(buf.len(), 4096);
    /// });
    /// ```
    pub async fn read_fixed_at(&self, mut buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        if let Err(err) = crate::buf::read_room(&buf) {
            return (Err(with_path(err, "read", &self.name())), buf);
        }
        if let Err(err) = self.check_direct_read(&mut buf, pos) {
            return (Err(err), buf);
        }
        let (res, buf) = if buf.registered_here() {
            match &self.fixed {
                Some(fixed) => self.read_op(ReadFixed::new(fixed.clone(), buf, pos)).await,
                None => {
                    self.read_op(ReadFixed::new(self.fd.clone(), buf, pos))
                        .await
                }
            }
        } else {
            self.read_op(Read::new(self.fd.clone(), buf, pos)).await
        };
        (res.map_err(|e| self.direct_error(e, "read")), buf)
    }

    /// Writes a registered buffer's initialized bytes at `pos`
    /// (`IORING_OP_WRITE_FIXED`), through the registered file slot if
    /// [`File::register`] was called.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::FixedBufPool;
    ///
    /// percore::run(async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let file = percore::fs::File::options().write(true).open("/dev/null").await.unwrap();
    ///     let mut buf = pool.get().await;
    ///     buf.extend_from_slice(b"data");
    ///     let (n, _) = file.write_fixed_at(buf, 0).await;
    ///     assert_eq!(n.unwrap(), 4);
    /// });
    /// ```
    pub async fn write_fixed_at(&self, buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        if let Err(err) = self.check_direct_write(&buf, pos) {
            return (Err(err), buf);
        }
        let (res, buf) = if buf.registered_here() {
            match &self.fixed {
                Some(fixed) => self.op(WriteFixed::new(fixed.clone(), buf, pos)).await,
                None => self.op(WriteFixed::new(self.fd.clone(), buf, pos)).await,
            }
        } else {
            self.op(Write::new(self.fd.clone(), buf, pos)).await
        };
        (res.map_err(|e| self.direct_error(e, "write")), buf)
    }

    /// Registers the file in the current core's ring file table, so
    /// [`read_fixed_at`](File::read_fixed_at) and
    /// [`write_fixed_at`](File::write_fixed_at) name it by slot and the
    /// kernel skips the per-op file lookup. The slot is released when the
    /// file is closed and its last op completed.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` if the ring's file table is full or taken by other code.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     file.register().unwrap();
    ///     assert!(file.is_registered());
    /// });
    /// ```
    pub fn register(&mut self) -> io::Result<()> {
        if self.fixed.is_none() {
            self.fixed = Some(FixedFd::register(&self.fd)?);
        }
        Ok(())
    }

    /// Whether [`File::register`] was called.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     assert!(!file.is_registered());
    /// });
    /// ```
    pub fn is_registered(&self) -> bool {
        self.fixed.is_some()
    }

    /// Flushes data and metadata to storage (`fsync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-sync-{}", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::File::create(&path).await.unwrap();
    ///     file.write_all_at(b"x".to_vec(), 0).await.0.unwrap();
    ///     file.sync_all().await.unwrap();
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn sync_all(&self) -> io::Result<()> {
        self.op(Fsync::new(self.fd.clone(), false)).await
    }

    /// Flushes data (and the metadata needed to read it) to storage (`fdatasync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-datasync-{}", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::File::create(&path).await.unwrap();
    ///     file.write_all_at(b"x".to_vec(), 0).await.0.unwrap();
    ///     file.sync_data().await.unwrap();
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn sync_data(&self) -> io::Result<()> {
        self.op(Fsync::new(self.fd.clone(), true)).await
    }

    /// The file's metadata (`statx` on the descriptor).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     assert!(file.metadata().await.unwrap().file_type().is_char_device());
    /// });
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        Op::new(Statx::fd(
            self.fd.clone(),
            STATX_BASIC_STATS | STATX_BTIME | STATX_DIOALIGN,
        ))
        .await
        .map(Metadata::from_raw)
        .map_err(|e| with_path(e, "statx", &self.name()))
    }

    /// Truncates or extends the file to `len` bytes (extension reads as
    /// zeros).
    ///
    /// # Kernel
    ///
    /// `IORING_OP_FTRUNCATE` (6.9) when the probe finds it; otherwise
    /// `ftruncate(2)` on the blocking thread pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-setlen-{}", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::File::create(&path).await.unwrap();
    ///     file.set_len(1000).await.unwrap();
    ///     assert_eq!(file.metadata().await.unwrap().len(), 1000);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let ring =
            crate::capabilities().is_some_and(|c| c.supports(io_uring::opcode::Ftruncate::CODE));
        self.set_len_via(len, ring).await
    }

    pub(crate) async fn set_len_via(&self, len: u64, ring: bool) -> io::Result<()> {
        let res = if ring {
            Op::new(Ftruncate::new(self.fd.clone(), len)).await
        } else {
            syscall::ftruncate_blocking(&self.fd, len).await
        };
        res.map_err(|e| with_path(e, "set_len", &self.name()))
    }

    /// Allocates disk space for `offset..offset + len` (`fallocate` mode 0),
    /// extending the file if the range ends past it, so later writes there
    /// cannot fail for lack of space.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-alloc-{}", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::File::create(&path).await.unwrap();
    ///     file.allocate(0, 1 << 20).await.unwrap();
    ///     assert_eq!(file.metadata().await.unwrap().len(), 1 << 20);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        Op::new(Fallocate::new(self.fd.clone(), offset, len, 0))
            .await
            .map_err(|e| with_path(e, "allocate", &self.name()))
    }

    /// Tells the kernel how `offset..offset + len` will be read
    /// (`posix_fadvise`; `len` 0 means to the end of the file), e.g.
    /// [`Advice::Random`] to stop readahead from fetching pages around each
    /// random read, or [`Advice::WillNeed`] to start reading a range in now.
    /// An `IORING_OP_FADVISE` on the ring, or `posix_fadvise(2)` on kernels
    /// before 5.6 (it does not block).
    ///
    /// # Errors
    ///
    /// The kernel's error (`ESPIPE` on a pipe), with the path.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fs::{Advice, File};
    ///
    /// percore::run(async {
    ///     let file = File::open("/proc/self/exe").await.unwrap();
    ///     file.advise(0, 0, Advice::Random).await.unwrap();
    /// });
    /// ```
    pub async fn advise(&self, offset: u64, len: u64, advice: Advice) -> io::Result<()> {
        let advice = advice as i32;
        let res =
            if crate::capabilities().is_some_and(|c| c.supports(io_uring::opcode::Fadvise::CODE)) {
                Op::new(crate::op::Fadvise::new(
                    self.fd.clone(),
                    offset,
                    len,
                    advice,
                ))
                .await
            } else {
                syscall::fadvise_sync(&self.fd, offset, len, advice)
            };
        res.map_err(|e| with_path(e, "advise", &self.name()))
    }

    /// Reads from `pos` to the end of the file, appending to `buf`; the
    /// buffer is sized from `statx` first, so the data lands in it directly
    /// without regrowing or copying.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-rte-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789").unwrap();
    /// percore::run(async {
    ///     let file = percore::fs::File::open(&path).await.unwrap();
    ///     let (n, buf) = file.read_to_end_at(Vec::new(), 4).await;
    ///     assert_eq!(n.unwrap(), 6);
    ///     assert_eq!(buf, b"456789");
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn read_to_end_at(&self, mut buf: Vec<u8>, pos: u64) -> BufResult<usize, Vec<u8>> {
        let size = match self.metadata().await {
            Ok(meta) => meta.len(),
            Err(err) => return (Err(err), buf),
        };
        let expect = size.saturating_sub(pos) as usize;
        buf.reserve_exact(expect);
        let start = buf.len();
        loop {
            if buf.len() == buf.capacity() {
                if buf.len() - start == expect && expect > 0 {
                    // Read exactly what statx promised: one small read tells
                    // whether the file grew meanwhile.
                    let (res, probe) = self
                        .read_at(Vec::with_capacity(32), pos + (buf.len() - start) as u64)
                        .await;
                    match res {
                        Ok(0) => break,
                        Ok(_) => buf.extend_from_slice(&probe),
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => return (Err(err), buf),
                    }
                }
                buf.reserve(buf.capacity().max(4096));
            }
            let read = (buf.len() - start) as u64;
            let (res, b) = self.read_at(buf, pos + read).await;
            buf = b;
            match res {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
        (Ok(buf.len() - start), buf)
    }

    /// Reads into `buf`'s spare room at the file's position and advances
    /// the position by the bytes read, like `std::io::Read::read` (the
    /// read is `IORING_OP_READ` at the descriptor's own offset, or
    /// `preadv2(RWF_NOWAIT)` first as for [`File::read_at`]). `Ok(0)` is end
    /// of file. Works on pipes and terminals too.
    ///
    /// Takes `&mut self`: one cursor, one read or write at a time. The
    /// positional [`read_at`](File::read_at) family neither uses nor moves
    /// the position.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a buffer with no spare room (never `Ok(0)`), or
    /// any error of [`File::read_at`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future while the read is in flight keeps the buffer
    /// alive until the kernel is done; the kernel may still advance the
    /// position by what it read, and those bytes are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-cursor-read-{}", std::process::id()));
    /// std::fs::write(&path, b"hello world").unwrap();
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open(&path).await.unwrap();
    ///     let (n, buf) = file.read(Vec::with_capacity(6)).await;
    ///     assert_eq!((n.unwrap(), &buf[..]), (6, &b"hello "[..]));
    ///     let (n, buf) = file.read(Vec::with_capacity(64)).await;
    ///     assert_eq!((n.unwrap(), &buf[..]), (5, &b"world"[..]));
    ///     let (n, _) = file.read(Vec::with_capacity(64)).await;
    ///     assert_eq!(n.unwrap(), 0); // end of file
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        self.read_at(buf, crate::op::CURRENT_POSITION).await
    }

    /// Reads at the file's position until `buf`'s spare room is full,
    /// advancing the position by every byte read.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the bytes read so far are in
    /// the returned buffer, and the position is past them), or any error of
    /// [`File::read`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-cursor-rx-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789").unwrap();
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open(&path).await.unwrap();
    ///     let (res, head) = file.read_exact(Vec::with_capacity(4)).await;
    ///     res.unwrap();
    ///     assert_eq!(head, b"0123");
    ///     assert_eq!(file.stream_position().await.unwrap(), 4);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn read_exact<B: IoBufMut>(&mut self, buf: B) -> BufResult<(), B> {
        self.read_exact_at(buf, crate::op::CURRENT_POSITION).await
    }

    /// Writes some of `buf`'s initialized bytes at the file's position and
    /// advances it by the bytes written, like `std::io::Write::write`; on a
    /// file opened with [`append`](OpenOptions::append) the bytes go to the
    /// end and the position moves there.
    ///
    /// # Errors
    ///
    /// Any error of [`File::write_at`].
    ///
    /// # Cancellation
    ///
    /// Dropping the future while the write is in flight keeps the buffer
    /// alive until the kernel is done; the write (and the position's move)
    /// may or may not have happened.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-cursor-write-{}", std::process::id()));
    /// percore::run(async {
    ///     let mut file = percore::fs::File::create(&path).await.unwrap();
    ///     let (n, _) = file.write(b"hello ".to_vec()).await;
    ///     assert_eq!(n.unwrap(), 6);
    ///     file.write_all(b"world".to_vec()).await.0.unwrap();
    ///     assert_eq!(file.stream_position().await.unwrap(), 11);
    /// });
    /// assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn write<B: IoBuf>(&mut self, buf: B) -> BufResult<usize, B> {
        self.write_at(buf, crate::op::CURRENT_POSITION).await
    }

    /// Writes all of `buf`'s initialized bytes at the file's position,
    /// issuing more writes after short ones, and advances the position past
    /// them.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts nothing, or any error of
    /// [`File::write`]; the position is then past the bytes written.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-cursor-wa-{}", std::process::id()));
    /// percore::run(async {
    ///     let mut file = percore::fs::File::create(&path).await.unwrap();
    ///     file.write_all(vec![b'x'; 100_000]).await.0.unwrap();
    ///     assert_eq!(file.stream_position().await.unwrap(), 100_000);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn write_all<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        self.write_all_at(buf, crate::op::CURRENT_POSITION).await
    }

    /// Moves the file's position and returns it, counted from the start,
    /// like `std::io::Seek::seek` (`lseek(2)`: io_uring has no seek op; it
    /// does no I/O on local filesystems, so it runs on this thread). A
    /// position past the end is allowed: a write there leaves a hole that
    /// reads as zeros.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a position before the start; `ESPIPE` for pipes
    /// and terminals, which have no position. The message names the path.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::SeekFrom;
    ///
    /// let path = std::env::temp_dir().join(format!("percore-doc-seek-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789").unwrap();
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open(&path).await.unwrap();
    ///     assert_eq!(file.seek(SeekFrom::End(-3)).await.unwrap(), 7);
    ///     let (_, buf) = file.read(Vec::with_capacity(8)).await;
    ///     assert_eq!(buf, b"789");
    ///     assert_eq!(file.seek(SeekFrom::Current(-5)).await.unwrap(), 5);
    ///     assert_eq!(file.seek(SeekFrom::Start(1)).await.unwrap(), 1);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn seek(&mut self, pos: std::io::SeekFrom) -> io::Result<u64> {
        syscall::lseek(&self.fd, pos).map_err(|e| with_path(e, "seek", &self.name()))
    }

    /// The file's position, counted from the start (a seek by 0 from the
    /// current position).
    ///
    /// # Errors
    ///
    /// `ESPIPE` for pipes and terminals.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-streampos-{}", std::process::id()));
    /// std::fs::write(&path, [7u8; 100]).unwrap();
    /// percore::run(async {
    ///     let mut file = percore::fs::File::open(&path).await.unwrap();
    ///     file.read(Vec::with_capacity(10)).await.0.unwrap();
    ///     assert_eq!(file.stream_position().await.unwrap(), 10);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn stream_position(&mut self) -> io::Result<u64> {
        self.seek(std::io::SeekFrom::Current(0)).await
    }

    /// Moves the file's position back to the start.
    ///
    /// # Errors
    ///
    /// `ESPIPE` for pipes and terminals.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-rewind-{}", std::process::id()));
    /// percore::run(async {
    ///     let mut file = percore::fs::File::options().read(true).write(true).create(true).truncate(true)
    ///         .open(&path).await.unwrap();
    ///     file.write_all(b"abc".to_vec()).await.0.unwrap();
    ///     file.rewind().await.unwrap();
    ///     let (_, buf) = file.read(Vec::with_capacity(8)).await;
    ///     assert_eq!(buf, b"abc");
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn rewind(&mut self) -> io::Result<()> {
        self.seek(std::io::SeekFrom::Start(0)).await.map(|_| ())
    }

    /// Closes the file through the ring and reports close(2)'s result.
    ///
    /// If ops on it are still in flight (their futures were dropped), the
    /// descriptor is closed when the last of them completes, and this
    /// returns `Ok(())` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     file.close().await.unwrap();
    /// });
    /// ```
    pub async fn close(self) -> io::Result<()> {
        let File {
            fd, path, fixed, ..
        } = self;
        drop(fixed);
        fd.close().await.map_err(|e| match &path {
            Some(p) => with_path(e, "close", p),
            None => e,
        })
    }
}

/// `pos + done`, except that [`CURRENT_POSITION`](crate::op::CURRENT_POSITION)
/// (pipes, terminals, `O_APPEND`) stays as it is: the kernel advances it.
fn advance(pos: u64, done: u64) -> u64 {
    if pos == crate::op::CURRENT_POSITION {
        pos
    } else {
        pos + done
    }
}

fn refused_direct(err: io::Error, path: &Path) -> io::Error {
    // EINVAL's kind is already `InvalidInput`; keep the errno reachable.
    with_hint(
        err,
        "open",
        path,
        Some("the filesystem refused O_DIRECT (EINVAL): direct I/O is not supported there; open without OpenOptions::direct".into()),
    )
}

/// The descriptor, borrowed for as long as the `File` lives: for
/// `socket2`-style helpers, `rustix`, or `std`'s `try_clone_to_owned`.
///
/// ```
/// use std::os::fd::AsFd;
///
/// percore::run(async {
///     let path = std::env::temp_dir().join(format!("percore-doc-{}-as-fd", std::process::id()));
///     std::fs::write(&path, b"four").unwrap();
///     let file = percore::fs::File::open(&path).await.unwrap();
///     let dup = std::fs::File::from(file.as_fd().try_clone_to_owned().unwrap());
///     assert_eq!(dup.metadata().unwrap().len(), 4);
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.fd.raw_fd())
            .field("path", &self.path)
            .field("direct", &self.direct)
            .field("registered", &self.fixed.as_ref().map(FixedFd::slot))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_len_fallback_without_the_ftruncate_opcode() {
        // Kernels before 6.9 lack IORING_OP_FTRUNCATE: the blocking-pool path
        // must do the same job.
        let path = std::env::temp_dir().join(format!("percore-unit-setlen-{}", std::process::id()));
        crate::run(async {
            let file = File::create(&path).await.unwrap();
            file.set_len_via(12_345, false).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 12_345);
            file.set_len_via(7, false).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 7);
        });
        std::fs::remove_file(&path).unwrap();
    }
}
