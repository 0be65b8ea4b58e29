//! File system access whose every operation goes through the ring.
//!
//! Provides: [`File`] (positional reads and writes with owned buffers,
//! vectored and registered-buffer variants, reads and writes at a cursor
//! with seek, sync, metadata, set_len, allocate, close), [`copy`], [`OpenOptions`] (with `O_DIRECT` and the `RWF_NOWAIT`
//! read fast path), [`Metadata`] from `statx`, and std-like free functions.
//!
//! Which syscall each function uses:
//!
//! | function | io_uring op | fallback |
//! |---|---|---|
//! | [`File::open`], [`File::create`], [`OpenOptions::open`] | `OPENAT` | |
//! | [`File::read_at`] and friends | `READ`, `READV`, `READ_FIXED` | `preadv2(RWF_NOWAIT)` tried first, see below |
//! | [`File::write_at`] and friends | `WRITE`, `WRITEV`, `WRITE_FIXED` | |
//! | [`File::read`], [`File::write`] (at the file's offset) | `READ`, `WRITE` at offset -1 | as `read_at`; [`File::seek`] is `lseek(2)` (no ring op exists, no I/O) |
//! | [`copy`] | none: `copy_file_range(2)`, chosen by a benchmark | on [`spawn_blocking`](crate::spawn_blocking) |
//! | [`File::sync_all`], [`File::sync_data`] | `FSYNC` | |
//! | [`File::metadata`], [`metadata`], [`symlink_metadata`] | `STATX` | |
//! | [`File::set_len`] | `FTRUNCATE` (6.9) | `ftruncate(2)` on [`spawn_blocking`](crate::spawn_blocking) |
//! | [`File::allocate`] | `FALLOCATE` | |
//! | [`File::advise`] | `FADVISE` (5.6) | `posix_fadvise(2)` (does not block) |
//! | [`File::close`], drop | `CLOSE` | |
//! | [`remove_file`], [`remove_dir`] | `UNLINKAT` | |
//! | [`rename`] | `RENAMEAT` | |
//! | [`create_dir`], [`create_dir_all`] | `MKDIRAT` | |
//! | [`hard_link`], [`symlink`] | `LINKAT`, `SYMLINKAT` | |
//! | [`read_dir`], [`read_link`], [`canonicalize`], [`set_permissions`] | none exists | `spawn_blocking` |
//!
//! A lone reader first tries `preadv2(RWF_NOWAIT)` when
//! [`NOWAIT_READS_DEFAULT`] (or [`OpenOptions::nowait_reads`]) says so: data
//! in the page cache then costs one syscall instead of a ring round trip;
//! if only a prefix was cached, the rest is read through the ring, so a
//! short count still means end of file.
//!
//! Reads of `O_DIRECT` files, and of other files while their reads miss the
//! page cache, are handed to the kernel as they are issued rather than at
//! the end of the tick ([`OpenOptions::submit_now`]): a device fed one
//! request at a time keeps a steady queue.
//!
//! Errors keep their `io::ErrorKind` and carry the path in their message
//! (a [`PathError`] inside the `io::Error`). std then answers
//! `raw_os_error()` with `None`; [`IoErrorExt::os_error`] gives the errno.
//!
//! May not: use `unsafe`; every syscall is an op from [`crate::op`].
//!
//! # Examples
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("percore-doc-fs-{}", std::process::id()));
//! percore::run(async {
//!     percore::fs::create_dir_all(dir.join("a/b")).await.unwrap();
//!     percore::fs::write(dir.join("a/b/f"), b"data".to_vec()).await.unwrap();
//!     assert_eq!(percore::fs::read(dir.join("a/b/f")).await.unwrap(), b"data");
//! });
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

// Denied, not forbidden: `syscall` alone opts out, for the few syscalls a
// `File` makes without the ring; everything else here is safe code over ops.
#![deny(unsafe_code)]

mod error;
mod file;
mod metadata;
mod open_options;
mod read_policy;
#[allow(unsafe_code)]
mod syscall;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use self::error::with_path;
pub use self::error::{IoErrorExt, PathError, raw_os_error};
pub use self::file::{Advice, File};
pub use self::metadata::{DioAlignment, FileType, Metadata};
pub use self::open_options::OpenOptions;
use crate::buf::IoBuf;
use crate::op::{
    LinkAt, MkDirAt, Op, RenameAt, STATX_BASIC_STATS, STATX_BTIME, Statx, SymlinkAt, UnlinkAt,
};

/// Whether files try `preadv2(RWF_NOWAIT)` before the ring for reads, unless
/// [`OpenOptions::nowait_reads`] says otherwise.
///
/// Chosen from `scripts/bench-fs.sh` (numbers in `docs/bench-fs.md`): a lone
/// reader of cached data (queue depth 1) runs about 1.3x faster through it
/// than through the ring, at about the speed of plain `pread`; with many
/// reads at once the ring is faster (one `io_uring_enter` serves them all),
/// so the attempt is made only when no other file read is waiting on the
/// ring and no other task is ready to run. Reads of uncached data pay one
/// failed syscall a few times, then the file stops trying for a while; the
/// benchmark shows no measurable cost there.
pub const NOWAIT_READS_DEFAULT: bool = true;

/// A path as the kernel wants it.
pub(crate) fn cstring(path: &Path, op: &'static str) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        with_path(
            io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
            op,
            path,
        )
    })
}

/// Reads the whole file into a `Vec<u8>` sized from `statx`, so the data is
/// read into it directly (no growing, no extra copy).
///
/// # Errors
///
/// The kernel's error with the path in the message.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-read-{}", std::process::id()));
/// std::fs::write(&path, b"contents").unwrap();
/// percore::run(async {
///     assert_eq!(percore::fs::read(&path).await.unwrap(), b"contents");
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let (res, buf) = file.read_to_end_at(Vec::new(), 0).await;
    res.map(|_| buf)
}

/// Reads the whole file as UTF-8.
///
/// # Errors
///
/// As [`read`], or `InvalidData` if the file is not UTF-8.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-rts-{}", std::process::id()));
/// std::fs::write(&path, "héllo").unwrap();
/// percore::run(async {
///     assert_eq!(percore::fs::read_to_string(&path).await.unwrap(), "héllo");
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|e| {
        with_path(
            io::Error::new(io::ErrorKind::InvalidData, e),
            "read_to_string",
            path,
        )
    })
}

/// Creates or truncates `path` and writes `contents` to it.
///
/// # Errors
///
/// The kernel's error with the path in the message.
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-write-{}", std::process::id()));
/// percore::run(async {
///     percore::fs::write(&path, "text").await.unwrap();
/// });
/// assert_eq!(std::fs::read(&path).unwrap(), b"text");
/// std::fs::remove_file(&path).unwrap();
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl IoBuf) -> io::Result<()> {
    let path = path.as_ref();
    let file = File::create(path).await?;
    let (res, _) = file.write_all_at(contents, 0).await;
    res.map_err(|e| with_path(e, "write", path))?;
    file.close().await.map_err(|e| with_path(e, "close", path))
}

async fn unlink(path: &Path, flags: i32, op: &'static str) -> io::Result<()> {
    let c = cstring(path, op)?;
    Op::new(UnlinkAt::new(c, flags))
        .await
        .map_err(|e| with_path(e, op, path))
}

/// Removes a file (`unlinkat`).
///
/// # Errors
///
/// The kernel's error with the path (`NotFound`, `IsADirectory`, ...).
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-rm-{}", std::process::id()));
/// std::fs::write(&path, b"x").unwrap();
/// percore::run(async { percore::fs::remove_file(&path).await.unwrap() });
/// assert!(!path.exists());
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), 0, "remove_file").await
}

/// Removes an empty directory (`unlinkat` with `AT_REMOVEDIR`).
///
/// # Errors
///
/// The kernel's error with the path (`DirectoryNotEmpty`, `NotADirectory`, ...).
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-rmdir-{}", std::process::id()));
/// std::fs::create_dir(&path).unwrap();
/// percore::run(async { percore::fs::remove_dir(&path).await.unwrap() });
/// assert!(!path.exists());
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), libc::AT_REMOVEDIR, "remove_dir").await
}

/// Renames `from` to `to`, replacing `to` if it exists (`renameat`).
///
/// # Errors
///
/// The kernel's error, naming `from`.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir();
/// let a = dir.join(format!("percore-doc-mv-a-{}", std::process::id()));
/// let b = dir.join(format!("percore-doc-mv-b-{}", std::process::id()));
/// std::fs::write(&a, b"x").unwrap();
/// percore::run(async { percore::fs::rename(&a, &b).await.unwrap() });
/// assert!(b.exists() && !a.exists());
/// std::fs::remove_file(&b).unwrap();
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let op = RenameAt::new(cstring(from, "rename")?, cstring(to, "rename")?, 0);
    Op::new(op).await.map_err(|e| with_path(e, "rename", from))
}

/// Creates a directory (`mkdirat`, mode 0o777 less the umask).
///
/// # Errors
///
/// The kernel's error with the path (`AlreadyExists`, `NotFound` for a
/// missing parent, ...).
///
/// # Examples
///
/// ```
/// let path = std::env::temp_dir().join(format!("percore-doc-mkdir1-{}", std::process::id()));
/// percore::run(async { percore::fs::create_dir(&path).await.unwrap() });
/// assert!(path.is_dir());
/// std::fs::remove_dir(&path).unwrap();
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    mkdir(path)
        .await
        .map_err(|e| with_path(e, "create_dir", path))
}

async fn mkdir(path: &Path) -> io::Result<()> {
    Op::new(MkDirAt::new(cstring(path, "create_dir")?, 0o777)).await
}

async fn is_dir(path: &Path) -> bool {
    match cstring(path, "stat") {
        Ok(c) => Op::new(Statx::path(c, 0, STATX_BASIC_STATS))
            .await
            .is_ok_and(|st| st.stx_mode as u32 & libc::S_IFMT == libc::S_IFDIR),
        Err(_) => false,
    }
}

/// Creates a directory and any missing parents; an existing directory is fine.
///
/// # Errors
///
/// The kernel's error with the path of the directory that could not be made.
///
/// # Examples
///
/// ```
/// let root = std::env::temp_dir().join(format!("percore-doc-mkdirall-{}", std::process::id()));
/// percore::run(async {
///     percore::fs::create_dir_all(root.join("x/y/z")).await.unwrap();
///     percore::fs::create_dir_all(root.join("x/y/z")).await.unwrap();
/// });
/// assert!(root.join("x/y/z").is_dir());
/// std::fs::remove_dir_all(&root).unwrap();
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up until a directory exists or can be made, then come back down.
    let mut missing: Vec<&Path> = Vec::new();
    let mut cur = path;
    loop {
        if cur.as_os_str().is_empty() {
            break;
        }
        match mkdir(cur).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(cur).await => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.parent() {
                Some(parent) => {
                    missing.push(cur);
                    cur = parent;
                }
                None => return Err(with_path(e, "create_dir_all", cur)),
            },
            Err(e) => return Err(with_path(e, "create_dir_all", cur)),
        }
    }
    for dir in missing.into_iter().rev() {
        match mkdir(dir).await {
            Ok(()) => {}
            // Someone else made it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_dir(dir).await => {}
            Err(e) => return Err(with_path(e, "create_dir_all", dir)),
        }
    }
    Ok(())
}

async fn stat(path: &Path, flags: i32, op: &'static str) -> io::Result<Metadata> {
    let c = cstring(path, op)?;
    Op::new(Statx::path(c, flags, STATX_BASIC_STATS | STATX_BTIME))
        .await
        .map(Metadata::from_raw)
        .map_err(|e| with_path(e, op, path))
}

/// Metadata of `path`, following symlinks (`statx`).
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     assert!(percore::fs::metadata("/").await.unwrap().is_dir());
/// });
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), 0, "metadata").await
}

/// Metadata of `path` itself, not following a final symlink.
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// let link = std::env::temp_dir().join(format!("percore-doc-lmeta-{}", std::process::id()));
/// std::os::unix::fs::symlink("/", &link).unwrap();
/// percore::run(async {
///     assert!(percore::fs::symlink_metadata(&link).await.unwrap().is_symlink());
/// });
/// std::fs::remove_file(&link).unwrap();
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), libc::AT_SYMLINK_NOFOLLOW, "symlink_metadata").await
}

/// Whether `path` exists: `Ok(false)` only when the kernel says it does not.
///
/// # Errors
///
/// Any other `statx` error (e.g. `PermissionDenied` on a parent).
///
/// # Examples
///
/// ```
/// percore::run(async {
///     assert!(percore::fs::try_exists("/").await.unwrap());
///     assert!(!percore::fs::try_exists("/no/such/path").await.unwrap());
/// });
/// ```
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the hard link `link` for the file `original` (`linkat`).
///
/// # Errors
///
/// The kernel's error, naming `link`.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir();
/// let a = dir.join(format!("percore-doc-hl-a-{}", std::process::id()));
/// let b = dir.join(format!("percore-doc-hl-b-{}", std::process::id()));
/// std::fs::write(&a, b"x").unwrap();
/// percore::run(async { percore::fs::hard_link(&a, &b).await.unwrap() });
/// assert_eq!(std::fs::read(&b).unwrap(), b"x");
/// std::fs::remove_file(&a).unwrap();
/// std::fs::remove_file(&b).unwrap();
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let op = LinkAt::new(
        cstring(original, "hard_link")?,
        cstring(link, "hard_link")?,
        0,
    );
    Op::new(op)
        .await
        .map_err(|e| with_path(e, "hard_link", link))
}

/// Creates the symbolic link `link` pointing at `original` (`symlinkat`).
///
/// # Errors
///
/// The kernel's error, naming `link`.
///
/// # Examples
///
/// ```
/// let link = std::env::temp_dir().join(format!("percore-doc-sl-{}", std::process::id()));
/// percore::run(async { percore::fs::symlink("/tmp", &link).await.unwrap() });
/// assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/tmp"));
/// std::fs::remove_file(&link).unwrap();
/// ```
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let op = SymlinkAt::new(cstring(original, "symlink")?, cstring(link, "symlink")?);
    Op::new(op).await.map_err(|e| with_path(e, "symlink", link))
}

/// Runs a std call with no io_uring counterpart on the blocking pool.
async fn blocking<T: Send + 'static>(
    path: &Path,
    op: &'static str,
    f: impl FnOnce(PathBuf) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let owned = path.to_path_buf();
    crate::spawn_blocking(move || f(owned))
        .await
        .map_err(io::Error::from)?
        .map_err(|e| with_path(e, op, path))
}

/// The entries of a directory. io_uring has no `getdents` op: this runs
/// `std::fs::read_dir` on the blocking pool and collects the entries.
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("percore-doc-ls-{}", std::process::id()));
/// std::fs::create_dir(&dir).unwrap();
/// std::fs::write(dir.join("f"), b"").unwrap();
/// percore::run(async {
///     let entries = percore::fs::read_dir(&dir).await.unwrap();
///     assert_eq!(entries.len(), 1);
///     assert_eq!(entries[0].file_name(), "f");
/// });
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<Vec<std::fs::DirEntry>> {
    blocking(path.as_ref(), "read_dir", |p| {
        std::fs::read_dir(p)?.collect()
    })
    .await
}

/// The target of a symbolic link. No io_uring op: runs `readlink` on the
/// blocking pool.
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// let link = std::env::temp_dir().join(format!("percore-doc-rl-{}", std::process::id()));
/// std::os::unix::fs::symlink("/tmp", &link).unwrap();
/// percore::run(async {
///     assert_eq!(percore::fs::read_link(&link).await.unwrap(), std::path::Path::new("/tmp"));
/// });
/// std::fs::remove_file(&link).unwrap();
/// ```
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    blocking(path.as_ref(), "read_link", std::fs::read_link).await
}

/// The absolute path with symlinks resolved. No io_uring op: runs
/// `realpath` on the blocking pool.
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     assert_eq!(percore::fs::canonicalize("/").await.unwrap(), std::path::Path::new("/"));
/// });
/// ```
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    blocking(path.as_ref(), "canonicalize", std::fs::canonicalize).await
}

/// Changes permission bits. No io_uring op: runs `chmod` on the blocking pool.
///
/// # Errors
///
/// The kernel's error with the path.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
///
/// let path = std::env::temp_dir().join(format!("percore-doc-chmod-{}", std::process::id()));
/// std::fs::write(&path, b"").unwrap();
/// percore::run(async {
///     percore::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await.unwrap();
///     assert_eq!(percore::fs::metadata(&path).await.unwrap().permissions().mode(), 0o600);
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub async fn set_permissions(path: impl AsRef<Path>, perm: std::fs::Permissions) -> io::Result<()> {
    blocking(path.as_ref(), "set_permissions", move |p| {
        std::fs::set_permissions(p, perm)
    })
    .await
}

/// Copies the contents of `from` to `to` and returns the number of bytes
/// copied, like `std::fs::copy`: `to` is created or truncated, and gets
/// `from`'s permission bits.
///
/// The copy runs on the blocking pool with `copy_file_range(2)` (the
/// kernel copies inside the page cache, or shares extents or copies on the
/// server on filesystems that can; std's fallbacks to `sendfile` and plain
/// reads and writes apply where it is refused). The core does not wait:
/// other tasks run meanwhile.
///
/// Chosen with `cargo bench -p percore-bench --bench fs_copy` (ext4, warm cache; numbers
/// in BENCHMARKS.md), against splicing file → pipe → file through the
/// ring and reading and writing through the ring: `copy_file_range` was
/// ahead for 64 KiB files in every run (opening, truncating and `fchmod`
/// dominate there, and the ring splice paid the most), while for 16 MiB
/// the runs, on a loaded two-core machine, did not rank splice and
/// `copy_file_range` the same way twice. Counted instead of timed
/// (`strace -f -c` on the bench, per copy): 15 system calls for this
/// function at 16 MiB, 17 at 64 KiB (two `copy_file_range`, whatever the
/// size up to 1 GiB), against 41 and 14 for the ring splice, whose two
/// splices per 1 MiB pipe-full each take an `io_uring_enter` and, on a
/// regular file, a hand-off to an io-wq worker. `copy_file_range` also
/// gets reflinks and server-side copies where the filesystem has them.
///
/// # Errors
///
/// `from`'s errors (missing, not a regular file, unreadable) name `from`;
/// creating or writing `to` names `to`. Unlike `std::fs::copy`, which
/// empties a file copied onto itself, `InvalidInput` when `to` is `from`
/// (or a hard link to it), with both files left as they were.
///
/// # Cancellation
///
/// Dropping the future does not stop the copy: it finishes on the pool.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
///
/// let dir = std::env::temp_dir().join(format!("percore-doc-copy-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("a"), b"contents").unwrap();
/// std::fs::set_permissions(dir.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
/// percore::run(async {
///     let n = percore::fs::copy(dir.join("a"), dir.join("b")).await.unwrap();
///     assert_eq!(n, 8);
/// });
/// assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"contents");
/// assert_eq!(std::fs::metadata(dir.join("b")).unwrap().permissions().mode() & 0o777, 0o640);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    crate::spawn_blocking(move || copy_blocking(&from, &to))
        .await
        .map_err(io::Error::from)?
}

/// `std::fs::copy`'s steps, each error naming its own path.
fn copy_blocking(from: &Path, to: &Path) -> io::Result<u64> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    let mut src = std::fs::File::open(from).map_err(|e| with_path(e, "copy", from))?;
    let meta = src.metadata().map_err(|e| with_path(e, "copy", from))?;
    if !meta.is_file() {
        let err = io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source is not a regular file",
        );
        return Err(with_path(err, "copy", from));
    }
    let perm = meta.permissions();
    // Not O_TRUNC yet: copying a file onto itself (or a hard link of it)
    // would empty it first, as std::fs::copy does.
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(std::os::unix::fs::PermissionsExt::mode(&perm))
        .open(to)
        .map_err(|e| with_path(e, "copy", to))?;
    let dst_meta = dst.metadata().map_err(|e| with_path(e, "copy", to))?;
    if (dst_meta.dev(), dst_meta.ino()) == (meta.dev(), meta.ino()) {
        let err = io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "source and destination are the same file ({})",
                from.display()
            ),
        );
        return Err(with_path(err, "copy", to));
    }
    dst.set_len(0).map_err(|e| with_path(e, "copy", to))?;
    // The mode above is masked by the umask and ignored for an existing
    // file: set the bits exactly, as std does.
    dst.set_permissions(perm)
        .map_err(|e| with_path(e, "copy", to))?;
    // copy_file_range, with std's fallbacks (sendfile, read/write).
    std::io::copy(&mut src, &mut dst).map_err(|e| with_path(e, "copy", to))
}
