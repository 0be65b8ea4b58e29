//! Unix signals as things to await: [`ctrl_c`], and [`unix::signal`] for any
//! catchable signal (SIGHUP for a reload, SIGUSR1, ...), on every core.
//!
//! Names and semantics follow `tokio::signal`: the first listener of a
//! signal installs a process-wide handler for it (kept for the life of the
//! process, so the signal's default action, such as ending the process, no
//! longer happens); a listener sees the signals delivered after it was made;
//! several deliveries between two `recv` calls may count as one.
//!
//! How it works: the handler counts each delivery (one counter per signal)
//! and writes to the eventfd of every listener. A waiting listener has a
//! poll of its eventfd in flight on its core's ring, so a signal wakes
//! exactly the cores that wait for one, with no thread of its own. The
//! eventfds come from a process-wide pool that only grows (to the most
//! listeners ever alive at once) and is never closed, since the handler may
//! write to any of them at any time; a listener borrows one while it lives.
//! A poll, unlike a read, consumes nothing, so a poll of the listener before
//! (still being cancelled) cannot take a wake-up meant for the next.
//!
//! Why not a signalfd per listener: a signalfd sees a signal only if every
//! thread of the process blocks it, and percore cannot block signals in
//! threads it did not start (the user's, `spawn_blocking`'s, a library's);
//! an unblocked thread would take the signal through its default action
//! and the signalfd would never see it. A handler runs in whichever thread
//! the kernel picks, so the eventfd it writes reaches every core. (The
//! graceful shutdown's signalfd is the exception: see
//! `Builder::shutdown_on_signals` for what it blocks and where.)
//!
//! Signals that `Builder::shutdown_on_signals` takes (SIGINT and SIGTERM,
//! blocked in the runtime's threads and read from a signalfd) cannot also be
//! listened for in those threads: [`unix::signal`] says so with an error.
//!
//! May not: touch the ring other than through ops.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crate::fd::SharedFd;
use crate::op::{Op, PollAdd};

/// Completes when the process receives SIGINT (Ctrl-C in a terminal).
///
/// The first call installs the handler: from then on SIGINT no longer ends
/// the process; the program decides what to do.
///
/// # Errors
///
/// If SIGINT is blocked in this thread, as in the cores of a runtime built
/// with [`Builder::shutdown_on_signals`](crate::Builder::shutdown_on_signals)
/// (await [`percore::shutdown::requested`](crate::shutdown::requested) there
/// instead), or the handler cannot be installed.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let ctrl_c = percore::spawn(async { percore::signal::ctrl_c().await });
///     percore::yield_now().await; // the listener exists before the signal
///     // SAFETY (for the test): sends SIGINT to this process, which the
///     // listener now handles.
///     unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
///     ctrl_c.await.unwrap().unwrap();
/// });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut sigint = unix::signal(unix::SignalKind::interrupt())?;
    sigint.recv().await;
    Ok(())
}

/// Unix signals: [`signal`](unix::signal), [`Signal`](unix::Signal),
/// [`SignalKind`](unix::SignalKind), as in `tokio::signal::unix`.
pub mod unix {
    use super::*;

    /// Which signal to listen for.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::signal::unix::SignalKind;
    ///
    /// assert_eq!(SignalKind::hangup().as_raw_value(), libc::SIGHUP);
    /// assert_eq!(SignalKind::from_raw(libc::SIGUSR1), SignalKind::user_defined1());
    /// ```
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SignalKind(libc::c_int);

    impl SignalKind {
        /// Any signal by number; [`signal`] refuses the ones that cannot be
        /// caught or must not be (SIGKILL, SIGSTOP, SIGSEGV, ...).
        pub const fn from_raw(signum: libc::c_int) -> SignalKind {
            SignalKind(signum)
        }
        /// The signal's number.
        pub const fn as_raw_value(&self) -> libc::c_int {
            self.0
        }
        /// SIGALRM.
        pub const fn alarm() -> SignalKind {
            SignalKind(libc::SIGALRM)
        }
        /// SIGCHLD.
        pub const fn child() -> SignalKind {
            SignalKind(libc::SIGCHLD)
        }
        /// SIGHUP, conventionally "reload your configuration".
        pub const fn hangup() -> SignalKind {
            SignalKind(libc::SIGHUP)
        }
        /// SIGINT (Ctrl-C).
        pub const fn interrupt() -> SignalKind {
            SignalKind(libc::SIGINT)
        }
        /// SIGIO.
        pub const fn io() -> SignalKind {
            SignalKind(libc::SIGIO)
        }
        /// SIGPIPE.
        pub const fn pipe() -> SignalKind {
            SignalKind(libc::SIGPIPE)
        }
        /// SIGQUIT.
        pub const fn quit() -> SignalKind {
            SignalKind(libc::SIGQUIT)
        }
        /// SIGTERM, the polite request to stop.
        pub const fn terminate() -> SignalKind {
            SignalKind(libc::SIGTERM)
        }
        /// SIGUSR1.
        pub const fn user_defined1() -> SignalKind {
            SignalKind(libc::SIGUSR1)
        }
        /// SIGUSR2.
        pub const fn user_defined2() -> SignalKind {
            SignalKind(libc::SIGUSR2)
        }
        /// SIGWINCH, the terminal's size changed.
        pub const fn window_change() -> SignalKind {
            SignalKind(libc::SIGWINCH)
        }
    }

    /// A listener for one signal, made by [`signal`].
    ///
    /// `!Send`: it waits on the ring of the core that made it.
    pub struct Signal {
        signum: usize,
        /// The count of deliveries this listener has already reported.
        seen: u64,
        /// The poll of the eventfd in flight while `recv` waits.
        poll: Option<Pin<Box<Op<PollAdd>>>>,
        wake: Option<WakeFd>,
    }

    /// Listens for `kind` on this core.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a signal that cannot or must not be caught
    /// (SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, or no signal at
    /// all); `InvalidInput` too if the signal is blocked in this thread (the
    /// cores of a runtime built with `Builder::shutdown_on_signals` block
    /// SIGINT and SIGTERM and read them for the graceful shutdown); an OS
    /// error if the handler or an eventfd cannot be had.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::signal::unix::{SignalKind, signal};
    ///
    /// percore::run(async {
    ///     let mut hangups = signal(SignalKind::hangup()).unwrap();
    ///     // SAFETY (for the test): sends SIGHUP to this process, which the
    ///     // listener now handles.
    ///     unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    ///     assert_eq!(hangups.recv().await, Some(()));
    ///     // Not a signal one may catch:
    ///     assert!(signal(SignalKind::from_raw(libc::SIGKILL)).is_err());
    /// });
    /// ```
    pub fn signal(kind: SignalKind) -> io::Result<Signal> {
        let signum = install(kind.0)?;
        Ok(Signal {
            signum,
            seen: DELIVERED[signum].load(Ordering::Acquire),
            poll: None,
            wake: None,
        })
    }

    impl Signal {
        /// Waits for the next delivery of the signal. Always `Some(())`:
        /// the stream never ends (the `Option` is tokio's signature).
        ///
        /// Cancel-safe: dropping the future loses no delivery.
        ///
        /// # Examples
        ///
        /// ```
        /// use percore::signal::unix::{SignalKind, signal};
        ///
        /// percore::run(async {
        ///     let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        ///     for _ in 0..2 {
        ///         // SAFETY (for the test): SIGUSR1 to this process, handled.
        ///         unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        ///         usr1.recv().await.unwrap();
        ///     }
        /// });
        /// ```
        pub async fn recv(&mut self) -> Option<()> {
            poll_fn(|cx| self.poll_recv(cx)).await
        }

        /// Polls for the next delivery (see [`Signal::recv`]), for code that
        /// implements `Future` or `Stream` by hand.
        pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
            loop {
                let delivered = DELIVERED[self.signum].load(Ordering::Acquire);
                if delivered != self.seen {
                    self.seen = delivered;
                    // A poll in flight goes on: the next `recv` waits on it,
                    // or dropping the listener cancels it.
                    return Poll::Ready(Some(()));
                }
                let Some(poll) = &mut self.poll else {
                    let fd = match &self.wake {
                        Some(wake) => wake.polled.clone(),
                        None => match WakeFd::borrow() {
                            Ok(wake) => self.wake.insert(wake).polled.clone(),
                            // Nothing could wake this listener: say so
                            // loudly rather than wait forever.
                            Err(err) => panic!("percore::signal: no eventfd for a listener: {err}"),
                        },
                    };
                    // Armed now: a delivery from here on makes the eventfd
                    // readable; one that came before was counted, and the
                    // check above sees it on the next turn of the loop.
                    let events = libc::POLLIN as u32;
                    self.poll = Some(Box::pin(Op::new(PollAdd::new(fd, events))));
                    continue;
                };
                match poll.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(res) => {
                        self.poll = None;
                        if let Err(err) = res {
                            // Polls of an eventfd that is never closed do not
                            // fail; if one did, polling again would spin.
                            panic!("percore::signal: polling the wake-up eventfd: {err}");
                        }
                        if let Some(wake) = &self.wake {
                            drain(wake.fd);
                        }
                    }
                }
            }
        }
    }

    impl std::fmt::Debug for Signal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Signal")
                .field("signum", &self.signum)
                .finish_non_exhaustive()
        }
    }
}

/// Signal numbers run from 1 to 64 on Linux.
const SIGNALS: usize = 65;

/// Deliveries of each signal since its handler was installed.
static DELIVERED: [AtomicU64; SIGNALS] = [const { AtomicU64::new(0) }; SIGNALS];

/// Signals whose handler is installed; guards installing it once.
static INSTALLED: Mutex<[bool; SIGNALS]> = Mutex::new([false; SIGNALS]);

/// Installs the handler of `signum` once; returns it as an index.
fn install(signum: libc::c_int) -> io::Result<usize> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
    let index = usize::try_from(signum)
        .ok()
        .filter(|&i| (1..SIGNALS).contains(&i))
        .ok_or_else(|| invalid(&format!("signal {signum} does not exist")))?;
    if signal_hook_registry::FORBIDDEN.contains(&signum) {
        return Err(invalid(&format!(
            "signal {signum} cannot be caught or must not be (SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE)"
        )));
    }
    if blocked_here(signum)? {
        return Err(invalid(&format!(
            "signal {signum} is blocked in this thread, so no handler would see it \
             (a runtime built with Builder::shutdown_on_signals blocks SIGINT and SIGTERM \
             for its graceful shutdown: await percore::shutdown::requested() instead)"
        )));
    }
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !installed[index] {
        // SAFETY: `on_signal` is async-signal-safe: it touches only atomics
        // and calls write(2), and saves and restores errno.
        unsafe { signal_hook_registry::register(signum, move || on_signal(index)) }?;
        installed[index] = true;
    }
    Ok(index)
}

/// Whether `signum` is blocked in the calling thread.
fn blocked_here(signum: libc::c_int) -> io::Result<bool> {
    // SAFETY: a zeroed sigset_t is valid storage that pthread_sigmask fills;
    // a null new set only reads the mask.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(libc::sigismember(&mask, signum) == 1)
    }
}

/// The handler: counts the delivery, then wakes every waiting listener.
/// Runs in signal context: atomics and write(2) only.
fn on_signal(index: usize) {
    // SAFETY: errno is thread-local; saved and restored so the interrupted
    // code never sees write(2)'s errno.
    let errno = unsafe { *libc::__errno_location() };
    DELIVERED[index].fetch_add(1, Ordering::AcqRel);
    let one = 1u64.to_ne_bytes();
    for slot in &WAKE_FDS[..WAKE_LEN.load(Ordering::Acquire)] {
        let fd = slot.load(Ordering::Acquire);
        // SAFETY: every fd in the pool is an eventfd that is never closed;
        // the write reads 8 bytes from a local. A full counter (EAGAIN)
        // still leaves the eventfd readable, which is all a waiter needs.
        unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// How many listeners may wait at once in one process.
const MAX_WAKE_FDS: usize = 1024;

/// The eventfds of the pool: slots `..WAKE_LEN` hold fds that stay open for
/// the life of the process (the handler may write to any of them at any
/// time, so none may ever be closed and its number reused).
static WAKE_FDS: [AtomicI32; MAX_WAKE_FDS] = [const { AtomicI32::new(-1) }; MAX_WAKE_FDS];
static WAKE_LEN: AtomicUsize = AtomicUsize::new(0);
/// Slots of the pool no listener holds.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A pool eventfd lent to one listener until it drops.
struct WakeFd {
    slot: usize,
    /// Open for the life of the process (see [`WAKE_FDS`]).
    fd: RawFd,
    /// The listener's own duplicate of `fd`, for its polls to hold: the
    /// pool's descriptor must never be closed, and a poll's descriptor is
    /// closed with its last op.
    polled: SharedFd,
}

impl WakeFd {
    fn borrow() -> io::Result<WakeFd> {
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match free.pop() {
            Some(slot) => slot,
            None => {
                let len = WAKE_LEN.load(Ordering::Acquire);
                if len == MAX_WAKE_FDS {
                    return Err(io::Error::other(format!(
                        "more than {MAX_WAKE_FDS} signal listeners at once"
                    )));
                }
                // SAFETY: eventfd takes no pointers; the result is checked.
                let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                WAKE_FDS[len].store(fd, Ordering::Release);
                WAKE_LEN.store(len + 1, Ordering::Release);
                len
            }
        };
        let fd = WAKE_FDS[slot].load(Ordering::Acquire);
        // SAFETY: `fd` is open for the life of the process (see WAKE_FDS);
        // F_DUPFD_CLOEXEC takes no pointers, and its result is checked.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            let err = io::Error::last_os_error();
            free.push(slot);
            return Err(err);
        }
        // SAFETY: `dup` is a new descriptor that nothing else owns.
        let polled = SharedFd::new(unsafe { OwnedFd::from_raw_fd(dup) });
        // Wake-ups meant for its last borrower must not wake this one.
        drain(fd);
        Ok(WakeFd { slot, fd, polled })
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        FREE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.slot);
    }
}

/// Empties an eventfd without blocking.
fn drain(fd: RawFd) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut count = [0u8; 8];
    // SAFETY: `pfd` and `count` are locals of the right sizes; a zero
    // timeout makes poll return at once, and the read happens only when the
    // eventfd is readable. Only the listener holding the slot reads it, so
    // it stays readable until this read, which therefore cannot block.
    unsafe {
        if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLIN != 0 {
            libc::read(fd, count.as_mut_ptr().cast(), count.len());
        }
    }
}
