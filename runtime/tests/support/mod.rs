//! Helpers shared by the integration tests: a buffer that records its own
//! drop, a waker that counts wake-ups, a watchdog that aborts a hung test,
//! and small loops that drive the runtime until a condition holds.

#![allow(dead_code)] // each test file uses a different subset

pub mod fs;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use percore::buf::{IoBuf, IoBufMut};

/// One entry of an [`EventLog`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The [`TrackedBuf`] with this id was dropped.
    Dropped(usize),
    /// A point the test marked (e.g. "written to pipe").
    Mark(&'static str),
}

/// An ordered, thread-safe log of buffer drops and test marks.
#[derive(Clone, Default, Debug)]
pub struct EventLog {
    events: Arc<Mutex<Vec<Event>>>,
    next_id: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl EventLog {
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// A new empty buffer with `capacity` bytes of room, tracked by this log.
    pub fn buf(&self, capacity: usize) -> TrackedBuf {
        TrackedBuf {
            data: Vec::with_capacity(capacity),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            log: self.clone(),
        }
    }

    /// A tracked buffer holding `bytes` (to write from).
    pub fn buf_with(&self, bytes: &[u8]) -> TrackedBuf {
        let mut b = self.buf(bytes.len());
        b.data.extend_from_slice(bytes);
        b
    }

    pub fn mark(&self, what: &'static str) {
        self.events.lock().unwrap().push(Event::Mark(what));
    }

    /// A guard that logs `Mark(what)` when dropped.
    pub fn mark_on_drop(&self, what: &'static str) -> MarkOnDrop {
        MarkOnDrop {
            log: self.clone(),
            what,
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn is_dropped(&self, id: usize) -> bool {
        self.position(&Event::Dropped(id)).is_some()
    }

    /// Tracked buffers made by this log and not dropped yet.
    pub fn live(&self) -> usize {
        self.next_id.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }

    pub fn dropped_count(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Dropped(_)))
            .count()
    }

    pub fn position(&self, event: &Event) -> Option<usize> {
        self.events.lock().unwrap().iter().position(|e| e == event)
    }

    /// Asserts `first` was logged, and before `then`, if `then` was logged.
    pub fn assert_before(&self, first: &Event, then: &Event) {
        let a = self.position(first);
        let b = self.position(then);
        assert!(
            a.is_some() && (b.is_none() || a < b),
            "expected {first:?} before {then:?} in {:?}",
            self.events()
        );
    }
}

/// Logs a mark when dropped; see [`EventLog::mark_on_drop`].
pub struct MarkOnDrop {
    log: EventLog,
    what: &'static str,
}

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.log.mark(self.what);
    }
}

/// A `Vec<u8>` buffer that logs its drop, to prove when the runtime frees it.
#[derive(Debug)]
pub struct TrackedBuf {
    data: Vec<u8>,
    id: usize,
    log: EventLog,
}

impl TrackedBuf {
    pub fn id(&self) -> usize {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for TrackedBuf {
    fn drop(&mut self) {
        self.log.dropped.fetch_add(1, Ordering::SeqCst);
        self.log
            .events
            .lock()
            .unwrap()
            .push(Event::Dropped(self.id));
    }
}

// SAFETY: delegates to `Vec<u8>`, whose heap allocation stays put when the
// `TrackedBuf` moves; `bytes_init <= bytes_total` holds for the Vec.
unsafe impl IoBuf for TrackedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.data.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.data.bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.data.bytes_total()
    }
}

// SAFETY: delegates to `Vec<u8>`'s `IoBufMut`, which upholds the contract.
unsafe impl IoBufMut for TrackedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data.stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller guarantees `pos` bytes are initialized.
        unsafe { self.data.set_init(pos) }
    }
}

/// A waker that counts how often it was woken.
#[derive(Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    pub fn new() -> (Arc<CountingWaker>, Waker) {
        let c = Arc::new(CountingWaker::default());
        let w = Waker::from(c.clone());
        (c, w)
    }

    pub fn count(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `fut` once with the current task's context.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// Polls `fut` once with `waker` instead of the task's own.
pub fn poll_with<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Runs the loop (yielding to it) until `cond` holds or `limit` passes;
/// returns whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        percore::yield_now().await;
    }
    true
}

/// Runs the loop until descriptor `fd` no longer names `path` (bounded):
/// the file's close went through.
pub async fn assert_closed_soon(fd: std::os::fd::RawFd, path: &std::path::Path) {
    let closed = wait_until(Duration::from_secs(10), || {
        std::fs::read_link(format!("/proc/self/fd/{fd}")).map_or(true, |p| p != path)
    })
    .await;
    assert!(
        closed,
        "fd {fd} still names {path:?} 10 s after its file was dropped"
    );
}

/// Runs the loop until the kernel owns no op of this core (bounded).
pub async fn settle() {
    let ok = wait_until(Duration::from_secs(5), || percore::stats().in_flight == 0).await;
    assert!(ok, "ops still in flight after 5 s: {:?}", percore::stats());
}

/// Aborts the whole test process if the guard is still alive after `limit`,
/// so a lost wake-up fails the run instead of hanging it.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: test `{name}` still running after {limit:?}, aborting");
            std::process::abort();
        }
    });
    Watchdog {
        stop: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Number of open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// This process's open descriptors and what each points to.
pub fn fd_table() -> std::collections::BTreeMap<i32, String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// Asserts the process has no descriptor that `baseline` did not have,
/// giving closes the kernel finishes asynchronously up to a second.
pub fn assert_no_new_fds(baseline: &std::collections::BTreeMap<i32, String>, when: &str) {
    let start = Instant::now();
    loop {
        let now = fd_table();
        let extra: Vec<_> = now
            .iter()
            .filter(|(fd, _)| !baseline.contains_key(fd))
            .collect();
        if extra.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(1) {
            panic!("{when}: {} descriptors leaked: {extra:?}", extra.len());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: std::os::fd::RawFd) {
    // SAFETY: fcntl on a descriptor the caller owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0);
    // SAFETY: as above.
    let res = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(res, 0);
}
