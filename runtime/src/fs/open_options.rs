//! `OpenOptions`: how to open a file, std's builder plus `O_DIRECT` and the
//! non-blocking read fast path.

use std::io;
use std::path::Path;

use super::File;

/// Options for opening a file, like [`std::fs::OpenOptions`], plus
/// [`direct`](OpenOptions::direct) (`O_DIRECT`) and
/// [`nowait_reads`](OpenOptions::nowait_reads).
///
/// The open itself is an `IORING_OP_OPENAT` on the ring.
///
/// # Examples
///
/// ```
/// use percore::fs::OpenOptions;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-opts-{}", std::process::id()));
/// percore::run(async {
///     let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).await.unwrap();
///     file.write_all_at(b"hi".to_vec(), 0).await.0.unwrap();
///     file.close().await.unwrap();
/// });
/// assert_eq!(std::fs::read(&path).unwrap(), b"hi");
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    custom_flags: i32,
    mode: u32,
    pub(crate) direct: bool,
    pub(crate) nowait_reads: Option<bool>,
    pub(crate) submit_now: Option<bool>,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off; mode 0o666 (less the umask) for new files.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-new", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            custom_flags: 0,
            mode: 0o666,
            direct: false,
            nowait_reads: None,
            submit_now: None,
        }
    }

    /// Open for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-read", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .read(true)
    ///         .write(true)
    ///         .create(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     let (res, _) = file.read_at(Vec::with_capacity(4), 0).await;
    ///     assert_eq!(res.unwrap(), 0);
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.read = read;
        self
    }

    /// Open for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-write", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     file.write_all_at(b"abc".to_vec(), 0).await.0.unwrap();
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    /// Open for appending (`O_APPEND`): every write goes to the end of the
    /// file, whatever offset it names.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-append", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .append(true)
    ///         .create(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     file.write_all_at(b"one".to_vec(), percore::op::CURRENT_POSITION).await.0.unwrap();
    ///     file.write_all_at(b"two".to_vec(), percore::op::CURRENT_POSITION).await.0.unwrap();
    ///     assert_eq!(std::fs::read(&path).unwrap(), b"onetwo");
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.append = append;
        self
    }

    /// Truncate the file to 0 bytes on open (needs write access).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-trunc", std::process::id()));
    /// std::fs::write(&path, b"old contents").unwrap();
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .truncate(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(file.metadata().await.unwrap().len(), 0);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (needs write or append access).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-create", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     assert!(path.exists());
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists (`O_EXCL`).
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-new", std::process::id()));
    /// percore::run(async {
    ///     let mut opts = percore::fs::OpenOptions::new();
    ///     opts.write(true).create_new(true);
    ///     let first = opts.open(&path).await;
    ///     assert!(first.is_ok());
    ///     let err = opts.open(&path).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.create_new = create_new;
        self
    }

    /// Extra `open(2)` flags (`libc::O_NOATIME`, `O_SYNC`, ...); the access
    /// mode bits are ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-flags", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .custom_flags(libc::O_NOATIME)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.custom_flags = flags;
        self
    }

    /// Permission bits for a file this open creates (default 0o666, less the umask).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-mode", std::process::id()));
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .mode(0o600)
    ///         .open(&path)
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    ///     drop(file);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// Open with `O_DIRECT`: reads and writes bypass the page cache.
    ///
    /// Buffers must then start at a multiple of the device's memory
    /// alignment, and offsets and lengths must be multiples of its offset
    /// alignment; the file learns both from `statx` (`STATX_DIOALIGN`, Linux
    /// 6.1; 4096 otherwise) and checks every op before it is submitted, with
    /// an `InvalidInput` error that names the path. Use
    /// [`AlignedBuf`](crate::buf::AlignedBuf) or a
    /// [`FixedBufPool`](crate::buf::FixedBufPool) buffer.
    ///
    /// # Errors
    ///
    /// Opening fails with `InvalidInput` and a message saying so when the
    /// filesystem refuses direct I/O.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-oo-{}-direct", std::process::id()));
    /// percore::run(async {
    ///     // Not every filesystem takes O_DIRECT (tmpfs does not): fall back.
    ///     let direct = percore::fs::OpenOptions::new()
    ///         .write(true)
    ///         .create(true)
    ///         .direct(true)
    ///         .open(&path)
    ///         .await;
    ///     if let Err(e) = direct {
    ///         assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    ///     }
    /// });
    /// let _ = std::fs::remove_file(&path);
    /// ```
    pub fn direct(&mut self, direct: bool) -> &mut OpenOptions {
        self.direct = direct;
        self
    }

    /// Try each read with `preadv2(RWF_NOWAIT)` before going to the ring.
    ///
    /// A read of data already in the page cache then completes in one
    /// syscall, without an SQE, a CQE and a task wake-up; data not cached
    /// fails that attempt with `EAGAIN` (the kernel may start readahead, but
    /// never waits for it) and the read goes to the ring. After a few misses
    /// in a row the file stops trying for a while, so cold files pay almost
    /// nothing. The attempt is made only for a lone reader: when other file
    /// reads are waiting on the ring or other tasks are ready, reads go
    /// straight to the ring, which batches them into one `io_uring_enter`.
    /// Never used with `O_DIRECT`.
    ///
    /// Default: [`NOWAIT_READS_DEFAULT`](super::NOWAIT_READS_DEFAULT), chosen
    /// from the fs benchmark (`scripts/bench-fs.sh`).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .read(true)
    ///         .nowait_reads(false) // every read goes through the ring
    ///         .open("/proc/self/stat")
    ///         .await
    ///         .unwrap();
    ///     let (res, _) = file.read_at(Vec::with_capacity(16), 0).await;
    ///     assert!(res.unwrap() > 0);
    /// });
    /// ```
    pub fn nowait_reads(&mut self, on: bool) -> &mut OpenOptions {
        self.nowait_reads = Some(on);
        self
    }

    /// Hand each read, write and sync of this file to the kernel as soon as
    /// it is issued, in an `io_uring_enter` of its own, rather than with the
    /// rest of the tick's submissions (see [`Op::submit_now`](crate::op::Op::submit_now)).
    ///
    /// A device fed one request at a time keeps a steady queue; fed a tick's
    /// batch at once, it serves and completes the batch in a burst and idles
    /// between bursts. Costs a syscall per op, so it pays only where the
    /// device is the bottleneck, and is used only while other tasks are ready
    /// (a lone op goes in with the `io_uring_enter` that ends the tick anyway).
    ///
    /// Default: on for [`direct`](OpenOptions::direct) files, whose every
    /// request reaches the device. Other files decide by their last read
    /// through the ring: on after one that waited for the disk (a page-cache
    /// miss), off after one that completed at once (a hit), since cached
    /// reads and writes are cheapest batched.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let file = percore::fs::OpenOptions::new()
    ///         .read(true)
    ///         .submit_now(true) // e.g. a cold file read at high queue depth
    ///         .open("/proc/self/stat")
    ///         .await
    ///         .unwrap();
    ///     let (res, _) = file.read_at(Vec::with_capacity(16), 0).await;
    ///     assert!(res.unwrap() > 0);
    /// });
    /// ```
    pub fn submit_now(&mut self, on: bool) -> &mut OpenOptions {
        self.submit_now = Some(on);
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// The kernel's error wrapped in a [`PathError`](super::PathError) (kind
    /// kept: `NotFound`, `PermissionDenied`, `IsADirectory`, ...), or
    /// `InvalidInput` for contradictory options (as std does).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path.as_ref(), self).await
    }

    /// Permission bits for a created file.
    pub(crate) fn mode_bits(&self) -> u32 {
        self.mode
    }

    /// The `open(2)` flags these options stand for.
    pub(crate) fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => {
                return Err(invalid("open options need read, write or append access"));
            }
        };
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(invalid(
                "truncate, create and create_new need write or append access",
            ));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("append and truncate together make no sense"));
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        };
        let direct = if self.direct { libc::O_DIRECT } else { 0 };
        Ok(access | creation | direct | (self.custom_flags & !libc::O_ACCMODE))
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
