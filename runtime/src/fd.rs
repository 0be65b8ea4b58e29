//! The fd handle shared by a file or socket and the ops in flight on it.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::driver;
use crate::op::{Close, Op};

/// A reference-counted descriptor: each op in flight holds a clone, so the
/// descriptor is closed only after the last op using it has completed — a
/// closed fd can never race an op still using it (nor a new file that reused
/// its number).
///
/// Closing happens when the last clone drops: through the ring when a
/// runtime is current (no syscall of its own), else with close(2).
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
///
/// let (reader, _writer) = std::io::pipe().unwrap();
/// let fd = SharedFd::new(reader.into());
/// assert!(fd.raw_fd() >= 0);
/// ```
#[derive(Clone)]
pub struct SharedFd {
    /// The descriptor's number, a copy of `inner.fd`: reading it here
    /// costs no trip to the shared allocation (a cache line of its own,
    /// and a miss per I/O call with many sockets).
    fd: RawFd,
    inner: Rc<Inner>,
}

struct Inner {
    fd: RawFd,
}

impl SharedFd {
    /// Takes ownership of `fd`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    ///
    /// let file = std::fs::File::open("/proc/self/stat").unwrap();
    /// let fd = SharedFd::new(file.into());
    /// let other = fd.clone(); // the descriptor closes when the last clone is gone
    /// assert_eq!(fd.raw_fd(), other.raw_fd());
    /// ```
    pub fn new(fd: OwnedFd) -> SharedFd {
        let fd = fd.into_raw_fd();
        SharedFd {
            fd,
            inner: Rc::new(Inner { fd }),
        }
    }

    /// The raw descriptor number (valid while this handle lives).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use percore::fd::SharedFd;
    ///
    /// let file = std::fs::File::open("/proc/self/stat").unwrap();
    /// let raw = file.as_raw_fd();
    /// assert_eq!(SharedFd::new(file.into()).raw_fd(), raw);
    /// ```
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Closes the descriptor through the ring and reports close(2)'s result.
    ///
    /// If ops on it are still in flight (other clones exist), the descriptor
    /// is closed when the last of them completes and this returns `Ok(())`
    /// at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    ///
    /// percore::run(async {
    ///     let (reader, _writer) = std::io::pipe().unwrap();
    ///     SharedFd::new(reader.into()).close().await.unwrap();
    /// });
    /// ```
    pub async fn close(self) -> io::Result<()> {
        match Rc::try_unwrap(self.inner) {
            Ok(inner) => {
                let fd = inner.fd;
                std::mem::forget(inner);
                // SAFETY: this was the last handle, which owned `fd`; it is
                // forgotten above, so the descriptor has exactly one owner.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                Op::new(Close::new(fd)).await
            }
            Err(_) => Ok(()),
        }
    }
}

impl AsRawFd for SharedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open while any clone of this handle
        // lives, and the borrow cannot outlive `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl fmt::Debug for SharedFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedFd").field(&self.fd).finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `Inner` owns the descriptor (taken from an `OwnedFd`) and
        // this is the last handle to it, so nothing uses it after this.
        let fd = unsafe { OwnedFd::from_raw_fd(self.fd) };
        driver::close_fd(fd);
    }
}
