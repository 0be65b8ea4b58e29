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
    pub fn is_file(self) -> bool {
        self.fmt_bits() == libc::S_IFREG
    }
    /// A directory.
    pub fn is_dir(self) -> bool {
        self.fmt_bits() == libc::S_IFDIR
    }
    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(self) -> bool {
        self.fmt_bits() == libc::S_IFLNK
    }
    /// A named pipe.
    pub fn is_fifo(self) -> bool {
        self.fmt_bits() == libc::S_IFIFO
    }
    /// A Unix socket.
    pub fn is_socket(self) -> bool {
        self.fmt_bits() == libc::S_IFSOCK
    }
    /// A block device.
    pub fn is_block_device(self) -> bool {
        self.fmt_bits() == libc::S_IFBLK
    }
    /// A character device.
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
    pub fn len(&self) -> u64 {
        self.st.stx_size
    }

    /// Whether the size is 0.
    pub fn is_empty(&self) -> bool {
        self.st.stx_size == 0
    }

    /// The kind of file.
    pub fn file_type(&self) -> FileType {
        FileType {
            mode: self.st.stx_mode as u32,
        }
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// A symbolic link (only from [`symlink_metadata`](super::symlink_metadata)).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// Permission bits, as std's type.
    pub fn permissions(&self) -> std::fs::Permissions {
        std::fs::Permissions::from_mode(self.mode() & 0o7777)
    }

    /// `st_mode`: type and permission bits.
    pub fn mode(&self) -> u32 {
        self.st.stx_mode as u32
    }

    /// Last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        Ok(to_system_time(self.st.stx_mtime))
    }

    /// Last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        Ok(to_system_time(self.st.stx_atime))
    }

    /// Creation time, where the filesystem records it.
    ///
    /// # Errors
    ///
    /// `Unsupported` when the filesystem does not report it.
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
    pub fn ino(&self) -> u64 {
        self.st.stx_ino
    }

    /// Device of the filesystem holding the file.
    pub fn dev(&self) -> u64 {
        libc::makedev(self.st.stx_dev_major, self.st.stx_dev_minor)
    }

    /// Number of hard links.
    pub fn nlink(&self) -> u64 {
        self.st.stx_nlink as u64
    }

    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.st.stx_uid
    }

    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.st.stx_gid
    }

    /// Preferred I/O block size.
    pub fn blksize(&self) -> u64 {
        self.st.stx_blksize as u64
    }

    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.st.stx_blocks
    }

    /// Direct I/O alignment, if the kernel reported it (`STATX_DIOALIGN`, 6.1)
    /// and the file supports direct I/O at all.
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
