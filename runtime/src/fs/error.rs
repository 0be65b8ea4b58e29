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

/// The errno behind `err`, looking through a [`PathError`].
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let err = percore::fs::remove_file("/no/such/file").await.unwrap_err();
///     assert_eq!(percore::fs::raw_os_error(&err), Some(libc::ENOENT));
/// });
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()?
            .downcast_ref::<PathError>()
            .and_then(PathError::raw_os_error)
    })
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
