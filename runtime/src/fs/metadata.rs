//! File metadata from `statx(2)`.

use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use crate::op::{RawStatx, STATX_BTIME, STATX_DIOALIGN, StatxTimestamp};

/// The alignment direct I/O (`O_DIRECT`) needs on a file, from `statx`'s
/// `STATX_DIOALIGN` (Linux 6.1), or 4096 for both when the kernel does not say.
///
/// # Examples
///
/// ```
/// let a = percore::fs::DioAlignment::default();
/// assert_eq!((a.memory, a.offset), (4096, 4096));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DioAlignment {
    /// Buffers must start at a multiple of this.
    pub memory: u32,
    /// File offsets and lengths must be multiples of this.
    pub offset: u32,
}

impl Default for DioAlignment {
    fn default() -> DioAlignment {
        DioAlignment {
            memory: 4096,
            offset: 4096,
        }
    }
}

/// What kind of file an entry is.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let meta = percore::fs::metadata("/dev/null").await.unwrap();
///     assert!(meta.file_type().is_char_device());
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    mode: u32,
}

impl FileType {
    fn fmt_bits(self) -> u32 {
        self.mode & libc::S_IFMT
    }
    /// A regular file.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let t = percore::fs::metadata("/proc/self/stat").await.unwrap().file_type();
    ///     assert!(t.is_file());
    /// });
    /// ```
    pub fn is_file(self) -> bool {
        self.fmt_bits() == libc::S_IFREG
    }
    /// A directory.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     assert!(percore::fs::metadata("/").await.unwrap().file_type().is_dir());
    /// });
    /// ```
    pub fn is_dir(self) -> bool {
        self.fmt_bits() == libc::S_IFDIR
    }
    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let t = percore::fs::symlink_metadata("/proc/self").await.unwrap().file_type();
    ///     assert!(t.is_symlink());
    /// });
    /// ```
    pub fn is_symlink(self) -> bool {
        self.fmt_bits() == libc::S_IFLNK
    }
    /// A named pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     let path = format!("/proc/self/fd/{}", reader.as_raw_fd());
    ///     assert!(percore::fs::metadata(path).await.unwrap().file_type().is_fifo());
    /// });
    /// ```
    pub fn is_fifo(self) -> bool {
        self.fmt_bits() == libc::S_IFIFO
    }
    /// A Unix socket.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// percore::run(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let path = format!("/proc/self/fd/{}", a.as_raw_fd());
    ///     assert!(percore::fs::metadata(path).await.unwrap().file_type().is_socket());
    /// });
    /// ```
    pub fn is_socket(self) -> bool {
        self.fmt_bits() == libc::S_IFSOCK
    }
    /// A block device.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let t = percore::fs::metadata("/dev/null").await.unwrap().file_type();
    ///     assert!(!t.is_block_device()); // a character device
    /// });
    /// ```
    pub fn is_block_device(self) -> bool {
        self.fmt_bits() == libc::S_IFBLK
    }
    /// A character device.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     assert!(percore::fs::metadata("/dev/null").await.unwrap().file_type().is_char_device());
    /// });
    /// ```
    pub fn is_char_device(self) -> bool {
        self.fmt_bits() == libc::S_IFCHR
    }
}

impl fmt::Debug for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.fmt_bits() {
            libc::S_IFREG => "file",
            libc::S_IFDIR => "dir",
            libc::S_IFLNK => "symlink",
            libc::S_IFIFO => "fifo",
            libc::S_IFSOCK => "socket",
            libc::S_IFBLK => "block device",
            libc::S_IFCHR => "char device",
            _ => "unknown",
        };
        f.write_str(kind)
    }
}

/// Metadata of a file, from one `statx` on the ring.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-meta-{}", std::process::id()));
/// std::fs::write(&path, b"12345").unwrap();
/// percore::run(async {
///     let meta = percore::fs::metadata(&path).await.unwrap();
///     assert!(meta.is_file());
///     assert_eq!(meta.len(), 5);
///     assert!(meta.modified().is_ok());
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone)]
pub struct Metadata {
    st: RawStatx,
}

fn to_system_time(ts: StatxTimestamp) -> SystemTime {
    let nanos = Duration::from_nanos(ts.tv_nsec as u64);
    if ts.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(ts.tv_sec as u64) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(ts.tv_sec.unsigned_abs()) + nanos
    }
}

impl Metadata {
    pub(crate) fn from_raw(st: RawStatx) -> Metadata {
        Metadata { st }
    }

    /// Size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-len", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert_eq!(meta.len(), 5);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn len(&self) -> u64 {
        self.st.stx_size
    }

    /// Whether the size is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-empty", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(!meta.is_empty());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn is_empty(&self) -> bool {
        self.st.stx_size == 0
    }

    /// The kind of file.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-type", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(meta.file_type().is_file());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn file_type(&self) -> FileType {
        FileType {
            mode: self.st.stx_mode as u32,
        }
    }

    /// A regular file.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-isfile", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(meta.is_file() && !meta.is_dir());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// A directory.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     assert!(percore::fs::metadata("/").await.unwrap().is_dir());
    /// });
    /// ```
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     assert!(percore::fs::symlink_metadata("/proc/self").await.unwrap().is_symlink());
    ///     assert!(!percore::fs::metadata("/proc/self").await.unwrap().is_symlink());
    /// });
    /// ```
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// Permission bits, as std's type.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-perm", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(!meta.permissions().readonly());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.mode() & 0o7777)
    }

    /// `st_mode`: type and permission bits.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-mode", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert_eq!(meta.mode() & libc::S_IFMT, libc::S_IFREG);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn mode(&self) -> u32 {
        self.st.stx_mode as u32
    }

    /// Last modification time.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-mtime", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(meta.modified().unwrap() <= std::time::SystemTime::now());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn modified(&self) -> io::Result<SystemTime> {
        Ok(to_system_time(self.st.stx_mtime))
    }

    /// Last access time.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-atime", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(meta.accessed().unwrap() > std::time::UNIX_EPOCH);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accessed(&self) -> io::Result<SystemTime> {
        Ok(to_system_time(self.st.stx_atime))
    }

    /// Creation time, where the filesystem records it.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the filesystem does not report it.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-btime", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     // Not every filesystem records a birth time.
    ///     match meta.created() {
    ///         Ok(t) => assert!(t > std::time::UNIX_EPOCH),
    ///         Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
    ///     }
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.st.stx_mask & STATX_BTIME != 0 {
            Ok(to_system_time(self.st.stx_btime))
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "creation time is not available on this filesystem",
            ))
        }
    }

    /// Inode number.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-ino", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     use std::os::unix::fs::MetadataExt;
    ///     assert_eq!(meta.ino(), std::fs::metadata(&path).unwrap().ino());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn ino(&self) -> u64 {
        self.st.stx_ino
    }

    /// Device of the filesystem holding the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-dev", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     use std::os::unix::fs::MetadataExt;
    ///     assert_eq!(meta.dev(), std::fs::metadata(&path).unwrap().dev());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn dev(&self) -> u64 {
        libc::makedev(self.st.stx_dev_major, self.st.stx_dev_minor)
    }

    /// Number of hard links.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-nlink", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert_eq!(meta.nlink(), 1);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn nlink(&self) -> u64 {
        self.st.stx_nlink as u64
    }

    /// Owner's user id.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-uid", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     use std::os::unix::fs::MetadataExt;
    ///     assert_eq!(meta.uid(), std::fs::metadata(&path).unwrap().uid());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn uid(&self) -> u32 {
        self.st.stx_uid
    }

    /// Owner's group id.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-gid", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     use std::os::unix::fs::MetadataExt;
    ///     assert_eq!(meta.gid(), std::fs::metadata(&path).unwrap().gid());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn gid(&self) -> u32 {
        self.st.stx_gid
    }

    /// Preferred I/O block size.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-blksize", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert!(meta.blksize().is_power_of_two());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn blksize(&self) -> u64 {
        self.st.stx_blksize as u64
    }

    /// 512-byte blocks allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-blocks", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     use std::os::unix::fs::MetadataExt;
    ///     assert_eq!(meta.blocks(), std::fs::metadata(&path).unwrap().blocks());
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn blocks(&self) -> u64 {
        self.st.stx_blocks
    }

    /// Direct I/O alignment, if the kernel reported it (`STATX_DIOALIGN`, 6.1)
    /// and the file supports direct I/O at all.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-dio", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     if let Some(a) = meta.dio_alignment() {
    ///         assert!(a.memory.is_power_of_two() && a.offset.is_power_of_two());
    ///     }
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn dio_alignment(&self) -> Option<DioAlignment> {
        if self.st.stx_mask & STATX_DIOALIGN == 0 || self.st.stx_dio_mem_align == 0 {
            return None;
        }
        Some(DioAlignment {
            memory: self.st.stx_dio_mem_align,
            offset: self.st.stx_dio_offset_align,
        })
    }

    /// Whether the kernel answered the `STATX_DIOALIGN` question at all.
    pub(crate) fn dio_reported(&self) -> bool {
        self.st.stx_mask & STATX_DIOALIGN != 0
    }

    /// The raw `statx` record.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("percore-meta-{}-raw", std::process::id()));
    /// std::fs::write(&path, b"hello").unwrap();
    /// percore::run(async {
    ///     let meta = percore::fs::metadata(&path).await.unwrap();
    ///     assert_eq!(meta.as_raw().stx_size, 5);
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn as_raw(&self) -> &RawStatx {
        &self.st
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("file_type", &self.file_type())
            .field("len", &self.len())
            .field("mode", &format_args!("{:o}", self.mode()))
            .field("ino", &self.ino())
            .finish_non_exhaustive()
    }
}
