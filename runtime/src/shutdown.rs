//! Graceful shutdown: stop taking new work, let work in flight finish within
//! a grace period, then stop.
//!
//! Every runtime has one [`ShutdownHandle`]; the cores of a
//! [`Runtime::run_on_every_core`] share core 0's. A shutdown starts with [`request`] (from any core, or from any
//! thread through a [`ShutdownHandle`]), or on SIGINT/SIGTERM when the
//! runtime was built with
//! [`Builder::shutdown_on_signals`](crate::Builder::shutdown_on_signals).
//! Then, under [`Runtime::run_on_every_core`]:
//!
//! 1. [`requested`] resolves on every core: accept loops stop accepting and
//!    return, and connection handlers may finish at a request boundary;
//! 2. once a core's future has returned, the core keeps running its other
//!    tasks (connections in flight) until they are all done or the grace
//!    period ([`Builder::shutdown_grace`](crate::Builder::shutdown_grace),
//!    counted from the request) is over;
//! 3. what is still running then is dropped, its I/O cancelled safely, and
//!    `run_on_every_core` returns. A core whose own future did not return within the grace
//!    period is reported as a [`CoreError`](crate::CoreError).
//!
//! A second request (a second Ctrl-C) ends the grace period at once.
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = percore::Runtime::builder()
//!     .cores(2)
//!     .shutdown_grace(Duration::from_secs(1))
//!     .build()
//!     .unwrap();
//! let served = rt
//!     .run_on_every_core(|core| async move {
//!         if core == 0 {
//!             percore::time::sleep(Duration::from_millis(10)).await;
//!             percore::shutdown::request();
//!         }
//!         // An accept loop would `select` on this and its next connection.
//!         percore::shutdown::requested().await;
//!         core
//!     })
//!     .unwrap();
//! assert_eq!(served, [0, 1]);
//! ```
//!
//! [`Runtime::run_on_every_core`]: crate::Runtime::run_on_every_core

use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::context;
use crate::executor::select;
use crate::fd::SharedFd;
use crate::latch::Latch;
use crate::op::{CURRENT_POSITION, Op, Read};

/// A handle to a runtime's shutdown, usable from any thread.
///
/// # Examples
///
/// ```
/// let rt = percore::Runtime::new().unwrap();
/// let shutdown = rt.shutdown_handle();
/// std::thread::spawn(move || shutdown.request());
/// rt.block_on(percore::shutdown::requested());
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    inner: Arc<Inner>,
}

struct Inner {
    grace: Duration,
    started: Latch,
    /// Set by a second request: the grace period ends now.
    forced: Latch,
    deadline: OnceLock<Instant>,
}

impl ShutdownHandle {
    pub(crate) fn new(grace: Duration) -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::new(Inner {
                grace,
                started: Latch::new(),
                forced: Latch::new(),
                deadline: OnceLock::new(),
            }),
        }
    }

    /// Starts the shutdown; if it has already started, ends its grace period
    /// now (as a second Ctrl-C does).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// let shutdown = rt.shutdown_handle();
    /// assert!(!shutdown.is_requested());
    /// shutdown.request();
    /// assert!(shutdown.is_requested());
    /// ```
    pub fn request(&self) {
        let inner = &self.inner;
        inner.deadline.get_or_init(|| Instant::now() + inner.grace);
        if !inner.started.set() {
            inner.forced.set();
        }
    }

    /// Whether the shutdown has started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// assert!(!rt.shutdown_handle().is_requested());
    /// ```
    pub fn is_requested(&self) -> bool {
        self.inner.started.is_set()
    }

    /// Waits until the shutdown starts.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// let shutdown = rt.shutdown_handle();
    /// shutdown.request();
    /// rt.block_on(shutdown.requested());
    /// ```
    pub async fn requested(&self) {
        self.inner.started.wait().await
    }

    /// Waits until the grace period is over: its deadline passed, or a
    /// second request cut it short. A server that drains its connections
    /// itself stops waiting for them here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = percore::Runtime::builder()
    ///     .shutdown_grace(Duration::from_secs(3600))
    ///     .build()
    ///     .unwrap();
    /// let shutdown = rt.shutdown_handle();
    /// shutdown.request();
    /// shutdown.request(); // a second request ends the grace period now
    /// rt.block_on(shutdown.expired());
    /// ```
    pub async fn expired(&self) {
        self.inner.started.wait().await;
        let deadline = *self
            .inner
            .deadline
            .get()
            .expect("a started shutdown has a deadline");
        let _ = select(crate::time::sleep_until(deadline), self.inner.forced.wait()).await;
    }

    pub(crate) fn grace(&self) -> Duration {
        self.inner.grace
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &self.is_requested())
            .field("grace", &self.inner.grace)
            .finish()
    }
}

/// The current runtime's shutdown handle (shared by every core of a
/// [`Runtime::run_on_every_core`](crate::Runtime::run_on_every_core)).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let shutdown = percore::shutdown::handle();
///     assert!(!shutdown.is_requested());
/// });
/// ```
pub fn handle() -> ShutdownHandle {
    context::with(|core| core.shutdown.clone()).expect("percore::shutdown used outside a runtime")
}

/// Starts the current runtime's shutdown (see [`ShutdownHandle::request`]).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::shutdown::request();
///     assert!(percore::shutdown::is_requested());
/// });
/// ```
pub fn request() {
    handle().request()
}

/// Whether the current runtime's shutdown has started.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     assert!(!percore::shutdown::is_requested());
/// });
/// ```
pub fn is_requested() -> bool {
    // Cheap enough for a connection loop to ask after every request.
    context::with(|core| core.shutdown.is_requested())
        .expect("percore::shutdown used outside a runtime")
}

/// Waits until the current runtime's shutdown starts.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::shutdown::request();
///     percore::shutdown::requested().await;
/// });
/// ```
pub async fn requested() {
    handle().requested().await
}

/// Waits until the current runtime's shutdown has started and its grace
/// period is over (see [`ShutdownHandle::expired`]).
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = percore::Runtime::builder()
///     .shutdown_grace(Duration::from_millis(10))
///     .build()
///     .unwrap();
/// rt.block_on(async {
///     percore::shutdown::request();
///     percore::shutdown::expired().await; // 10 ms later
/// });
/// ```
pub async fn expired() {
    handle().expired().await
}

/// SIGINT and SIGTERM, blocked for the threads of a [`Runtime::run_on_every_core`] and
/// read from a signalfd on core 0's ring instead.
///
/// [`Runtime::run_on_every_core`]: crate::Runtime::run_on_every_core
pub(crate) struct Signals {
    /// The signalfd, until core 0's [`Signals::watch`] takes it.
    fd: std::sync::Mutex<Option<OwnedFd>>,
    set: libc::sigset_t,
    old_mask: libc::sigset_t,
}

impl Signals {
    /// Blocks the signals in the calling thread (threads it starts later
    /// inherit the mask) and opens a signalfd for them.
    pub(crate) fn block() -> io::Result<Signals> {
        // SAFETY: zeroed sigset_t values are valid storage that sigemptyset
        // initializes; every call below only reads or writes these locals.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old_mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            // A shell starts background jobs with SIGINT ignored, and an
            // ignored signal never reaches a signalfd: restore the default
            // disposition, harmless while the signals are blocked.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
            if fd < 0 {
                let err = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
                return Err(err);
            }
            Ok(Signals {
                fd: std::sync::Mutex::new(Some(OwnedFd::from_raw_fd(fd))),
                set,
                old_mask,
            })
        }
    }

    /// Reads signals until dropped: the first starts `shutdown`, the next
    /// ends its grace period.
    pub(crate) async fn watch(&self, shutdown: &ShutdownHandle) {
        let taken = self.fd.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(fd) = taken.map(SharedFd::new) else {
            // Only core 0 watches, once per `run_on_every_core`.
            return std::future::pending().await;
        };
        loop {
            let info = Vec::with_capacity(std::mem::size_of::<libc::signalfd_siginfo>());
            let (res, _) = Op::new(Read::new(fd.clone(), info, CURRENT_POSITION)).await;
            if res.is_err() {
                // Cannot happen on a signalfd we own; stop watching rather
                // than spin, and leave the signals blocked.
                return std::future::pending().await;
            }
            shutdown.request();
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // SAFETY: `set` and `old_mask` are initialized sigsets owned by self;
        // the zero timespec makes sigtimedwait poll.
        unsafe {
            // Take signals that arrived after the last read, so unblocking
            // does not deliver them with their default (fatal) action.
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while libc::sigtimedwait(&self.set, std::ptr::null_mut(), &zero) > 0 {}
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut());
        }
    }
}
