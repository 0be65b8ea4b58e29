//! Fork detection: a driver inherited by a forked child shares its parent's
//! ring, so every entry point checks for it and refuses.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Driver;

/// Bumped in every forked child (a `pthread_atfork` handler), so a driver
/// can tell in one load that it was inherited from its parent process: the
/// child shares the parent's ring (the SQ and CQ are shared memory), and
/// any use of it would corrupt the parent's submissions or steal its
/// completions.
pub(super) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_fork_child() {
    // Async-signal-safe, as a handler run in the child of fork(2) must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn watch_forks() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a child handler that only bumps an atomic, which
        // is async-signal-safe; the function lives for the whole process.
        // Failure (ENOMEM) leaves forks undetected, as before.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
    });
}

impl Driver {
    /// Whether this driver was inherited by a forked child: one atomic load,
    /// cheap enough for every entry point. Forks that bypass the C library's
    /// `fork` (a raw `clone`) are caught by [`Driver::inherited_by_pid`].
    pub(crate) fn inherited(&self) -> bool {
        FORK_GENERATION.load(Ordering::Relaxed) != self.fork_generation
    }

    /// Like [`Driver::inherited`], and also compares the process id (a
    /// syscall): for the entry points a program passes rarely (`block_on`,
    /// the runtime's drop).
    pub(crate) fn inherited_by_pid(&self) -> bool {
        self.inherited() || std::process::id() != self.pid
    }

    /// The error for any use of an inherited driver.
    pub(crate) fn fork_error(&self) -> io::Error {
        io::Error::other(format!(
            "percore: this runtime was built by process {} and is used in a forked child \
             (process {}), which shares its io_uring with the parent; build a new runtime \
             in the child",
            self.pid,
            std::process::id()
        ))
    }
}
