//! Buffered reading over percore's owned-buffer reads: [`OwnedRead`], the
//! one-method trait that files and sockets share, and [`BufReader`] with
//! `read_line`, `read_until` and [`lines`](BufReader::lines), as in
//! `tokio::io`.
//!
//! `OwnedRead` is implemented by [`File`](crate::fs::File) (reading at its
//! position), by `&mut R` for any implementor, by [`BufReader`] itself, and
//! in percore-net by `TcpStream`, `UnixStream` and their `OwnedReadHalf`s (and by
//! shared references to them, so a connection can be read through a
//! `BufReader` while it is written to).
//!
//! # Examples
//!
//! ```
//! use percore::io::BufReader;
//!
//! let path = std::env::temp_dir().join(format!("percore-doc-io-{}", std::process::id()));
//! std::fs::write(&path, "first\nsecond\r\nthird").unwrap();
//! percore::run(async {
//!     let file = percore::fs::File::open(&path).await.unwrap();
//!     let mut lines = BufReader::new(file).lines();
//!     let mut all = Vec::new();
//!     while let Some(line) = lines.next_line().await.unwrap() {
//!         all.push(line);
//!     }
//!     assert_eq!(all, ["first", "second", "third"]);
//! });
//! std::fs::remove_file(&path).unwrap();
//! ```

use std::future::Future;
use std::io;

use crate::buf::{BufResult, IoBufMut};

/// Default buffer size of [`BufReader::new`].
///
/// ```
/// use percore::io::{BufReader, DEFAULT_BUF_SIZE};
///
/// percore::run(async {
///     let file = percore::fs::File::open("/dev/null").await.unwrap();
///     assert_eq!(BufReader::new(file).capacity(), DEFAULT_BUF_SIZE);
/// });
/// ```
pub const DEFAULT_BUF_SIZE: usize = 8 * 1024;

/// A source of bytes read into owned buffers: percore's counterpart of
/// `std::io::Read` (`tokio::io::AsyncRead`), which [`BufReader`] builds on.
///
/// `read` fills the room after the buffer's initialized bytes, up to its
/// capacity, and returns how many bytes it read with the buffer; `Ok(0)` is
/// end of file or stream. A buffer with no spare room is an `InvalidInput`
/// error, never `Ok(0)` (see [`read_room`](crate::buf::read_room)).
///
/// # Examples
///
/// A reader of your own:
///
/// ```
/// use percore::buf::{BufResult, IoBufMut};
/// use percore::io::{BufReader, OwnedRead};
///
/// /// Bytes from a slice, a few at a time.
/// struct Slow(&'static [u8]);
///
/// impl OwnedRead for Slow {
///     async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
///         let room = match percore::buf::read_room(&buf) {
///             Ok(room) => room,
///             Err(e) => return (Err(e), buf),
///         };
///         let n = room.min(self.0.len()).min(3);
///         let init = buf.bytes_init();
///         let (spare, _) = buf.spare_room();
///         // SAFETY: `n <= room`, so the bytes land in the buffer's spare
///         // capacity, and are initialized before set_init marks them.
///         unsafe {
///             spare.copy_from(self.0.as_ptr(), n);
///             buf.set_init(init + n);
///         }
///         self.0 = &self.0[n..];
///         (Ok(n), buf)
///     }
/// }
///
/// percore::run(async {
///     let mut reader = BufReader::new(Slow(b"one line\nnext"));
///     let mut line = String::new();
///     reader.read_line(&mut line).await.unwrap();
///     assert_eq!(line, "one line\n");
/// });
/// ```
pub trait OwnedRead {
    /// Reads into `buf`'s spare room; returns the bytes read and the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::io::OwnedRead;
    ///
    /// async fn first_bytes(mut r: impl OwnedRead) -> Vec<u8> {
    ///     let (res, buf) = r.read(Vec::with_capacity(4)).await;
    ///     res.unwrap();
    ///     buf
    /// }
    ///
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     assert_eq!(first_bytes(file).await, [0; 4]);
    /// });
    /// ```
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>>;
}

impl<R: OwnedRead + ?Sized> OwnedRead for &mut R {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        (**self).read(buf)
    }
}

impl OwnedRead for crate::fs::File {
    fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        crate::fs::File::read(self, buf)
    }
}

/// Adds a buffer to an [`OwnedRead`] source, for line-oriented and small
/// reads: like `tokio::io::BufReader` with `AsyncBufReadExt`.
///
/// One read asks the source for up to [`capacity`](BufReader::capacity)
/// bytes into the reader's own buffer (allocated on the first read and then
/// reused), and the methods hand bytes out of it.
///
/// # Cancellation
///
/// Dropping a `fill_buf`, `read_until`, `read_line` or `next_line` future
/// while its read is in flight loses the bytes of that read (the buffer goes
/// with the op); bytes already buffered, or already appended to the
/// caller's `Vec`, stay.
///
/// # Examples
///
/// ```
/// use percore::io::BufReader;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-bufreader-{}", std::process::id()));
/// std::fs::write(&path, "key=value\n").unwrap();
/// percore::run(async {
///     let mut reader = BufReader::new(percore::fs::File::open(&path).await.unwrap());
///     let mut key = Vec::new();
///     reader.read_until(b'=', &mut key).await.unwrap();
///     assert_eq!(key, b"key=");
///     assert_eq!(reader.buffer(), b"value\n");
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct BufReader<R> {
    inner: R,
    /// `buf[pos..]` is read and not yet handed out.
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
}

impl<R: OwnedRead> BufReader<R> {
    /// Wraps `inner` with a buffer of [`DEFAULT_BUF_SIZE`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let reader = percore::io::BufReader::new(file);
    ///     assert!(reader.buffer().is_empty());
    /// });
    /// ```
    pub fn new(inner: R) -> BufReader<R> {
        BufReader::with_capacity(DEFAULT_BUF_SIZE, inner)
    }

    /// Wraps `inner`; one read asks it for at most `capacity` bytes.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let mut reader = percore::io::BufReader::with_capacity(16, file);
    ///     assert_eq!(reader.fill_buf().await.unwrap().len(), 16);
    /// });
    /// ```
    pub fn with_capacity(capacity: usize, inner: R) -> BufReader<R> {
        assert!(capacity > 0, "a BufReader needs a capacity of at least 1");
        BufReader {
            inner,
            buf: Vec::new(),
            pos: 0,
            cap: capacity,
        }
    }

    /// Returns the buffered bytes, reading from the source first if there
    /// are none; an empty slice is end of file or stream. Call
    /// [`consume`](BufReader::consume) with what you used.
    ///
    /// # Errors
    ///
    /// The source's read error.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let mut reader = percore::io::BufReader::new(file);
    ///     assert!(reader.fill_buf().await.unwrap().is_empty()); // end of file
    /// });
    /// ```
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.buf.len() {
            let mut buf = std::mem::take(&mut self.buf);
            self.pos = 0;
            buf.clear();
            buf.reserve_exact(self.cap);
            let (res, buf) = self.inner.read(buf).await;
            self.buf = buf;
            if let Err(err) = res {
                self.buf.clear();
                return Err(err);
            }
        }
        Ok(&self.buf[self.pos..])
    }

    /// Marks `n` buffered bytes as used (at most all of them).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let mut reader = percore::io::BufReader::with_capacity(8, file);
    ///     reader.fill_buf().await.unwrap();
    ///     reader.consume(5);
    ///     assert_eq!(reader.buffer().len(), 3);
    /// });
    /// ```
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Reads until `byte` (included) or end of input, appending to `out`;
    /// returns the number of bytes appended (0 at end of input).
    ///
    /// # Errors
    ///
    /// The source's read error; bytes read before it stay in `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-until-{}", std::process::id()));
    /// std::fs::write(&path, b"a,b").unwrap();
    /// percore::run(async {
    ///     let file = percore::fs::File::open(&path).await.unwrap();
    ///     let mut reader = percore::io::BufReader::new(file);
    ///     let mut field = Vec::new();
    ///     assert_eq!(reader.read_until(b',', &mut field).await.unwrap(), 2);
    ///     assert_eq!(field, b"a,");
    ///     field.clear();
    ///     assert_eq!(reader.read_until(b',', &mut field).await.unwrap(), 1);
    ///     assert_eq!(field, b"b");
    ///     assert_eq!(reader.read_until(b',', &mut field).await.unwrap(), 0);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn read_until(&mut self, byte: u8, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let avail = self.fill_buf().await?;
            if avail.is_empty() {
                return Ok(total);
            }
            match avail.iter().position(|&b| b == byte) {
                Some(i) => {
                    out.extend_from_slice(&avail[..=i]);
                    self.consume(i + 1);
                    return Ok(total + i + 1);
                }
                None => {
                    let n = avail.len();
                    out.extend_from_slice(avail);
                    self.consume(n);
                    total += n;
                }
            }
        }
    }

    /// Reads one line, `\n` included, and appends it to `out`; returns the
    /// number of bytes appended (0 at end of input).
    ///
    /// # Errors
    ///
    /// `InvalidData` if the line is not UTF-8 (nothing is appended then), or
    /// the source's read error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// percore::run(async {
    ///     let (rd, mut wr) = std::io::pipe().unwrap();
    ///     wr.write_all(b"HELLO there\r\nrest").unwrap();
    ///     let pipe = percore::fs::File::from_std(std::os::fd::OwnedFd::from(rd).into());
    ///     let mut reader = percore::io::BufReader::new(pipe);
    ///     let mut line = String::new();
    ///     reader.read_line(&mut line).await.unwrap();
    ///     assert_eq!(line, "HELLO there\r\n");
    /// });
    /// ```
    pub async fn read_line(&mut self, out: &mut String) -> io::Result<usize> {
        let mut bytes = Vec::new();
        let res = self.read_until(b'\n', &mut bytes).await;
        match std::str::from_utf8(&bytes) {
            Ok(s) => {
                out.push_str(s);
                res
            }
            Err(_) => Err(res.err().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "line is not valid UTF-8")
            })),
        }
    }

    /// The lines of the input, without their `\n` or `\r\n`, one
    /// [`next_line`](Lines::next_line) call at a time (as tokio's
    /// `Lines`).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-doc-lines-{}", std::process::id()));
    /// std::fs::write(&path, "1\n2\n").unwrap();
    /// percore::run(async {
    ///     let file = percore::fs::File::open(&path).await.unwrap();
    ///     let mut lines = percore::io::BufReader::new(file).lines();
    ///     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("1"));
    ///     assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("2"));
    ///     assert_eq!(lines.next_line().await.unwrap(), None);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn lines(self) -> Lines<R> {
        Lines {
            reader: self,
            line: Vec::new(),
        }
    }
}

impl<R> BufReader<R> {
    /// The bytes read and not yet handed out.
    ///
    /// # Examples
    ///
    /// See [`BufReader`].
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The most one read asks the source for.
    ///
    /// # Examples
    ///
    /// See [`DEFAULT_BUF_SIZE`].
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The source.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let reader = percore::io::BufReader::new(file);
    ///     assert_eq!(reader.get_ref().path(), Some(std::path::Path::new("/dev/null")));
    /// });
    /// ```
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The source, mutably. Reading from it directly skips the buffered
    /// bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/zero").await.unwrap();
    ///     let mut reader = percore::io::BufReader::new(file);
    ///     assert_eq!(reader.get_mut().stream_position().await.unwrap(), 0);
    /// });
    /// ```
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Unwraps the source; buffered bytes not yet handed out are lost.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let file = percore::io::BufReader::new(file).into_inner();
    ///     file.close().await.unwrap();
    /// });
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Reads hand out buffered bytes first; with none buffered, a read of at
/// least the reader's capacity goes straight to the source.
impl<R: OwnedRead> OwnedRead for BufReader<R> {
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let room = match crate::buf::read_room(&buf) {
            Ok(room) => room,
            Err(err) => return (Err(err), buf),
        };
        if self.pos >= self.buf.len() && room >= self.cap {
            return self.inner.read(buf).await;
        }
        let avail = match self.fill_buf().await {
            Ok(avail) => avail,
            Err(err) => return (Err(err), buf),
        };
        let n = avail.len().min(room);
        let (spare, _) = buf.spare_room();
        // SAFETY: `n <= room`, the length of the spare room, so the copy
        // stays inside the buffer's spare capacity; `avail` is our own Vec,
        // which cannot overlap the caller's buffer; the bytes are
        // initialized before `mark_read` marks them.
        unsafe {
            spare.copy_from_nonoverlapping(avail.as_ptr(), n);
            crate::buf::mark_read(&mut buf, n);
        }
        self.consume(n);
        (Ok(n), buf)
    }
}

impl<R> std::fmt::Debug for BufReader<R>
where
    R: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufReader")
            .field("inner", &self.inner)
            .field("buffered", &(self.buf.len() - self.pos))
            .field("capacity", &self.cap)
            .finish()
    }
}

/// The lines of a [`BufReader`], from [`BufReader::lines`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
///
/// percore::run(async {
///     let (rd, mut wr) = std::io::pipe().unwrap();
///     wr.write_all(b"one\ntwo\n").unwrap();
///     drop(wr);
///     let pipe = percore::fs::File::from_std(std::os::fd::OwnedFd::from(rd).into());
///     let mut lines = percore::io::BufReader::new(pipe).lines();
///     let mut got = Vec::new();
///     while let Some(line) = lines.next_line().await.unwrap() {
///         got.push(line);
///     }
///     assert_eq!(got, ["one", "two"]);
/// });
/// ```
#[derive(Debug)]
pub struct Lines<R> {
    reader: BufReader<R>,
    /// The line read so far (kept when a `next_line` future is dropped).
    line: Vec<u8>,
}

impl<R: OwnedRead> Lines<R> {
    /// The next line without its `\n` or `\r\n`; `None` at end of input. A
    /// last line without a newline is returned too.
    ///
    /// # Errors
    ///
    /// `InvalidData` if the line is not UTF-8 (it is skipped), or the
    /// source's read error.
    ///
    /// # Examples
    ///
    /// See [`Lines`].
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        self.reader.read_until(b'\n', &mut self.line).await?;
        if self.line.is_empty() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not valid UTF-8"))
    }

    /// The reader back, with the bytes it buffered.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::File::open("/dev/null").await.unwrap();
    ///     let lines = percore::io::BufReader::new(file).lines();
    ///     let reader = lines.into_inner();
    ///     assert!(reader.buffer().is_empty());
    /// });
    /// ```
    pub fn into_inner(self) -> BufReader<R> {
        self.reader
    }
}
