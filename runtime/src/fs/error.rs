//! Errors that name the path they happened on.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error with the operation and the path it failed on, carried inside
/// the `io::Error` that percore's file functions return. The error's kind is
/// the underlying one (`NotFound`, `IsADirectory`, ...), and its message reads
/// like `open /tmp/x: No such file or directory (os error 2)`.
///
/// # Why `raw_os_error()` is `None`, and how to get the errno
///
/// std keeps an errno only in an `io::Error` that carries nothing else
/// (`io::Error::from_raw_os_error`); an `io::Error` that also carries a
/// message, as this one does, answers `raw_os_error()` with `None`, and std
/// offers no way around that. The errno is kept inside: read it with
/// [`IoErrorExt::os_error`] (`err.os_error()`), [`raw_os_error`], or
/// [`PathError::raw_os_error`]. `kind()` is the errno's kind, as for a
/// plain OS error.
///
/// # Examples
///
/// ```
/// use percore::fs::PathError;
///
/// percore::run(async {
///     let err = percore::fs::File::open("/no/such/file").await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     assert!(err.to_string().contains("/no/such/file"));
///     let inner = err.get_ref().unwrap().downcast_ref::<PathError>().unwrap();
///     assert_eq!(inner.raw_os_error(), Some(libc::ENOENT));
/// });
/// ```
#[derive(Debug)]
pub struct PathError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
    hint: Option<String>,
}

impl PathError {
    /// The operation that failed (`open`, `read`, `remove_file`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fs::PathError;
    ///
    /// percore::run(async {
    ///     let err = percore::fs::File::open("/no/such/file").await.unwrap_err();
    ///     let e = err.get_ref().unwrap().downcast_ref::<PathError>().unwrap();
    ///     assert_eq!(e.op(), "open");
    /// });
    /// ```
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The path it failed on.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fs::PathError;
    ///
    /// percore::run(async {
    ///     let err = percore::fs::File::open("/no/such/file").await.unwrap_err();
    ///     let e = err.get_ref().unwrap().downcast_ref::<PathError>().unwrap();
    ///     assert_eq!(e.path(), std::path::Path::new("/no/such/file"));
    /// });
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The errno, if the failure came from the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fs::PathError;
    ///
    /// percore::run(async {
    ///     let err = percore::fs::File::open("/no/such/file").await.unwrap_err();
    ///     let e = err.get_ref().unwrap().downcast_ref::<PathError>().unwrap();
    ///     assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    /// });
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The errno behind `err`, looking through a [`PathError`] (or any error
/// wrapper whose [`source`](Error::source) chain leads to an OS error, such
/// as the address-naming errors of `percore-net`'s `bind` and `connect`).
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let err = percore::fs::remove_file("/no/such/file").await.unwrap_err();
///     assert_eq!(err.raw_os_error(), None); // std: the error carries a message too
///     assert_eq!(percore::fs::raw_os_error(&err), Some(libc::ENOENT));
/// });
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    if let Some(errno) = err.raw_os_error() {
        return Some(errno);
    }
    let mut cur: &(dyn Error + 'static) = err.get_ref()?;
    loop {
        if let Some(io) = cur.downcast_ref::<io::Error>()
            && let Some(errno) = raw_os_error(io)
        {
            return Some(errno);
        }
        if let Some(e) = cur.downcast_ref::<PathError>() {
            return e.raw_os_error();
        }
        cur = cur.source()?;
    }
}

/// Reads what percore's errors carry inside an `io::Error`: the errno
/// (`raw_os_error()` is `None` once std's error carries a message, see
/// [`PathError`]) and the path a file operation failed on.
///
/// Implemented for `io::Error`; also reachable as `percore::IoErrorExt`.
///
/// # Examples
///
/// ```
/// use percore::IoErrorExt;
///
/// percore::run(async {
///     let err = percore::fs::File::open("/no/such/file").await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     assert_eq!(err.os_error(), Some(libc::ENOENT));
///     assert_eq!(err.path(), Some(std::path::Path::new("/no/such/file")));
///
///     // A plain OS error answers the same.
///     let plain = std::io::Error::from_raw_os_error(libc::EPIPE);
///     assert_eq!(plain.os_error(), Some(libc::EPIPE));
///     assert_eq!(plain.path(), None);
/// });
/// ```
pub trait IoErrorExt {
    /// The errno, whether the error is a plain OS error or wraps one.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::IoErrorExt;
    ///
    /// percore::run(async {
    ///     let err = percore::fs::read("/no/such/file").await.unwrap_err();
    ///     assert_eq!(err.os_error(), Some(libc::ENOENT));
    /// });
    /// ```
    fn os_error(&self) -> Option<i32>;

    /// The path a `percore::fs` operation failed on, if this is one of its
    /// errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::IoErrorExt;
    ///
    /// percore::run(async {
    ///     let err = percore::fs::metadata("/no/such/file").await.unwrap_err();
    ///     assert_eq!(err.path().unwrap().to_str(), Some("/no/such/file"));
    /// });
    /// ```
    fn path(&self) -> Option<&Path>;
}

impl IoErrorExt for io::Error {
    fn os_error(&self) -> Option<i32> {
        raw_os_error(self)
    }

    fn path(&self) -> Option<&Path> {
        self.get_ref()?
            .downcast_ref::<PathError>()
            .map(PathError::path)
    }
}

/// Wraps `err` with the operation and path; keeps its kind.
pub(crate) fn with_path(err: io::Error, op: &'static str, path: &Path) -> io::Error {
    with_hint(err, op, path, None)
}

/// Like [`with_path`], with a sentence on what to do.
pub(crate) fn with_hint(
    err: io::Error,
    op: &'static str,
    path: &Path,
    hint: Option<String>,
) -> io::Error {
    if err.get_ref().is_some_and(|e| e.is::<PathError>()) {
        return err; // it names its path already
    }
    io::Error::new(
        err.kind(),
        PathError {
            op,
            path: path.to_path_buf(),
            source: err,
            hint,
        },
    )
}
