use std::ffi::CString;
use std::io;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::fd::SharedFd;

/// `STATX_TYPE | STATX_MODE | ... | STATX_BLOCKS`: what `stat(2)` returns.
pub const STATX_BASIC_STATS: u32 = 0x7ff;
/// `STATX_BTIME`: the file's creation time.
pub const STATX_BTIME: u32 = 0x800;
/// `STATX_DIOALIGN` (6.1): the alignment direct I/O needs.
pub const STATX_DIOALIGN: u32 = 0x2000;

/// A timestamp in [`RawStatx`], as the kernel writes it.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let meta = percore::fs::metadata("/").await.unwrap();
///     let mtime = meta.as_raw().stx_mtime;
///     assert!(mtime.tv_sec > 0 && mtime.tv_nsec < 1_000_000_000);
/// });
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    /// Seconds since the epoch.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: u32,
    reserved: i32,
}

/// The kernel's `struct statx` (256 bytes), including the direct I/O
/// alignment fields of Linux 6.1 that older C headers lack.
///
/// A field is meaningful only when its `STATX_*` bit is set in `stx_mask`.
///
/// # Examples
///
/// ```
/// let st = percore::op::RawStatx::default();
/// assert_eq!(st.stx_mask, 0);
/// assert_eq!(std::mem::size_of::<percore::op::RawStatx>(), 256);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RawStatx {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_attributes_mask: u64,
    pub stx_atime: StatxTimestamp,
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
    pub stx_mnt_id: u64,
    /// Memory alignment for direct I/O (`STATX_DIOALIGN`); 0 if unsupported.
    pub stx_dio_mem_align: u32,
    /// File offset and length alignment for direct I/O (`STATX_DIOALIGN`).
    pub stx_dio_offset_align: u32,
    spare3: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<RawStatx>() == 256);

/// `IORING_OP_STATX`: file status of a path, or of an open descriptor.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, Statx, STATX_BASIC_STATS};
///
/// percore::run(async {
///     let st = Op::new(Statx::path(c"/dev/null".into(), 0, STATX_BASIC_STATS)).await.unwrap();
///     assert_eq!(st.stx_mode as u32 & libc::S_IFMT, libc::S_IFCHR);
/// });
/// ```
pub struct Statx {
    /// The descriptor for `fstat`-style calls (empty path).
    fd: Option<SharedFd>,
    path: CString,
    flags: i32,
    mask: u32,
    /// Boxed: the kernel writes into it after the SQE is submitted.
    buf: Box<RawStatx>,
}

impl Statx {
    /// Status of `path` (relative to the current directory). `flags` may hold
    /// `libc::AT_SYMLINK_NOFOLLOW`; `mask` says which fields to fill.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::CString;
    /// use percore::op::{Op, STATX_BASIC_STATS, Statx};
    ///
    /// percore::run(async {
    ///     let st = Op::new(Statx::path(CString::new("/").unwrap(), 0, STATX_BASIC_STATS)).await.unwrap();
    ///     assert_eq!(st.stx_mode as u32 & libc::S_IFMT, libc::S_IFDIR);
    /// });
    /// ```
    pub fn path(path: CString, flags: i32, mask: u32) -> Statx {
        Statx {
            fd: None,
            path,
            flags,
            mask,
            buf: Box::default(),
        }
    }

    /// Status of the open descriptor `fd` (`AT_EMPTY_PATH`).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Statx, STATX_BASIC_STATS};
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     let fd = SharedFd::new(reader.into());
    ///     let st = Op::new(Statx::fd(fd, STATX_BASIC_STATS)).await.unwrap();
    ///     assert_eq!(st.stx_mode as u32 & libc::S_IFMT, libc::S_IFIFO);
    /// });
    /// ```
    pub fn fd(fd: SharedFd, mask: u32) -> Statx {
        Statx {
            fd: Some(fd),
            path: CString::default(),
            flags: libc::AT_EMPTY_PATH,
            mask,
            buf: Box::default(),
        }
    }
}

// SAFETY: the path, the fd handle and the boxed statx buffer are owned by the
// op until its CQE; the box keeps the buffer's address when the op moves.
unsafe impl OpCode for Statx {
    type Output = io::Result<RawStatx>;

    fn create_entry(&mut self) -> squeue::Entry {
        let dirfd = self.fd.as_ref().map_or(libc::AT_FDCWD, |fd| fd.raw_fd());
        let buf: *mut RawStatx = &mut *self.buf;
        opcode::Statx::new(
            types::Fd(dirfd),
            self.path.as_ptr(),
            buf.cast::<types::statx>(),
        )
        .flags(self.flags)
        .mask(self.mask)
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| *self.buf)
    }
}
