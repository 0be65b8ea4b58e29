//! The readiness backend: performs the same submission entries the ring
//! would, on epoll, non-blocking syscalls and the blocking pool.
//!
//! An op says *what* to do by building an SQE; this backend reads the entry
//! (its layout is the kernel's ABI) and does it the readiness way, then posts
//! a completion with the same `user_data`, result and flags the kernel would.
//! So the driver's slots, cancellation and the ops' buffer ownership are the
//! same on both backends, and no op knows which one runs.
//!
//! - Sockets, pipes, eventfds: the syscall is tried at once, non-blocking
//!   (`MSG_DONTWAIT`, `RWF_NOWAIT`, an `O_NONBLOCK` listener). Only on
//!   `EAGAIN` does the op wait: its fd is registered with epoll once for its
//!   life, edge-triggered, and the op is retried straight into (or out of)
//!   its own buffer when the fd turns ready. No copy, no syscall per wait.
//! - Regular files: a read tries `preadv2(RWF_NOWAIT)` (served from the page
//!   cache); everything else (a cache miss, writes, open, statx, fsync, ...)
//!   runs on the blocking pool, whose thread posts the completion back.
//! - Timeouts and linked timeouts keep their deadlines here; the wait uses
//!   the nearest one (`epoll_pwait2`, microseconds).
//! - Cancellation removes a waiting op at once and completes it with
//!   `ECANCELED`; an op already running on the pool cannot be stopped and
//!   completes on its own (as the kernel's uncancellable ops do).
//!
//! Memory: every pointer in an entry points into the op that built it,
//! which its slot keeps alive until the completion is posted (the `OpCode`
//! contract); a pool thread may use it until it pushes the completion.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue};
use slab::Slab;

#[path = "epoll_bufs.rs"]
mod bufs;

pub(crate) use self::bufs::DirectWait;

/// `struct io_uring_sqe` as the kernel lays it out: what an op asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    /// `off`, or `addr2`.
    off: u64,
    addr: u64,
    len: u32,
    /// `rw_flags`, `msg_flags`, `accept_flags`, `poll32_events`, ...
    op_flags: u32,
    user_data: u64,
    buf_index: u16,
    personality: u16,
    /// `file_index`, or `addr_len` in its low 16 bits.
    file_index: u32,
    addr3: u64,
    pad: u64,
}

const _: () = assert!(std::mem::size_of::<Sqe>() == 64);
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

const IOSQE_FIXED_FILE: u8 = 1 << 0;
const IOSQE_IO_LINK: u8 = 1 << 2;
const IOSQE_BUFFER_SELECT: u8 = 1 << 5;
const IOSQE_CQE_SKIP_SUCCESS: u8 = 1 << 6;
const IORING_ACCEPT_MULTISHOT: u16 = 1 << 0;
const IORING_POLL_ADD_MULTI: u32 = 1 << 0;
const IORING_TIMEOUT_ABS: u32 = 1 << 0;
const IORING_ASYNC_CANCEL_ALL: u32 = 1 << 0;
const IORING_ASYNC_CANCEL_ANY: u32 = 1 << 2;
const IORING_CQE_F_MORE: u32 = 1 << 1;
const IORING_CQE_F_NOTIF: u32 = 1 << 3;
const RWF_NOWAIT: i32 = 0x8;

/// epoll's token for the pool's completion eventfd (fds use their number).
const POOL_TOKEN: u64 = u64::MAX;

impl Sqe {
    fn from_entry(entry: &squeue::Entry) -> Sqe {
        // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's
        // `io_uring_sqe`, 64 bytes (asserted above), whose layout is the ABI
        // `Sqe` spells out field by field; every field is a plain integer,
        // so any bit pattern is a valid `Sqe`.
        unsafe { std::mem::transmute_copy(entry) }
    }
}

/// Entries started inline per tick (see [`Epoll::start_inline`]); tokio's
/// per-task budget has the same size.
const INLINE_BUDGET: u32 = 128;

/// A completion, as the kernel would post it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

/// What a descriptor is, for the read/write ops: a regular file (or block
/// device, directory) is never "ready" and goes to the pool when the page
/// cache cannot serve it; anything else is waited on with epoll.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    File,
    Pollable,
}

/// One descriptor this backend has seen: 64 bytes, aligned to a cache
/// line, so that an edge and the ops it retries touch one line of it.
#[derive(Debug)]
#[repr(align(64))]
struct FdState {
    kind: Kind,
    /// Added to epoll (edge-triggered, in and out), once for its life.
    registered: bool,
    /// Set `O_NONBLOCK` (listeners and connecting sockets need it).
    nonblocking: bool,
    /// No `EAGAIN` since the last edge epoll reported (or ever): worth a
    /// try. A new op on an fd known not to be ready waits at once, without
    /// a syscall that would only say `EAGAIN` again.
    readable: bool,
    writable: bool,
    /// A byte stream (TCP, Unix stream, pipe), where a short read or write
    /// means the queue was drained or filled; `None` until asked.
    stream: Option<bool>,
    /// epoll reported a hang-up or error (`EPOLLRDHUP`, `EPOLLHUP`,
    /// `EPOLLERR`): from now on every op is tried, since the end of stream
    /// (or the error) stays readable with no further edge to announce it.
    hung_up: bool,
    /// Waiting ops, oldest first, by the readiness they wait for.
    readers: Vec<usize>,
    writers: Vec<usize>,
    /// The op that receives straight into a buffer ring when polled
    /// ([`Epoll::recv_ring`]): its wait, from its first wait on this fd
    /// until it is dropped; each read edge fires it.
    direct_reader: Option<std::rc::Rc<DirectWait>>,
}

// A field more would make it two lines.
const _: () = assert!(std::mem::size_of::<FdState>() == 64);

impl FdState {
    /// A short read (or, with `write`, write) on `fd`, this record's: on a
    /// byte stream that drained its queue (or filled it), so the fd waits
    /// for epoll's next edge without another try. Whether it is a byte
    /// stream; never after a hang-up, whose state stays readable.
    #[inline]
    fn filled(&mut self, fd: RawFd, write: bool) -> bool {
        if self.hung_up {
            return false;
        }
        let stream = *self.stream.get_or_insert_with(|| is_byte_stream(fd));
        if stream {
            if write {
                self.writable = false;
            } else {
                self.readable = false;
            }
        }
        stream
    }

    /// The ops waiting for `interest`, oldest first.
    fn waiting_mut(&mut self, interest: Interest) -> &mut Vec<usize> {
        match interest {
            Interest::Read => &mut self.readers,
            Interest::Write => &mut self.writers,
        }
    }

    /// No `EAGAIN` for `interest` since its last edge (or ever).
    fn may_be_ready(&self, interest: Interest) -> bool {
        match interest {
            Interest::Read => self.readable,
            Interest::Write => self.writable,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Interest {
    Read,
    Write,
}

/// An op parked until its fd turns ready.
#[derive(Debug)]
struct Waiter {
    sqe: Sqe,
    fd: RawFd,
    /// A linked timeout: its deadline key and `user_data`.
    link: Option<((Instant, u64), u64)>,
    /// A connect in progress: readiness means "look at SO_ERROR".
    connecting: bool,
}

/// Where an op that has not completed is, for cancellation.
#[derive(Clone, Copy, Debug)]
enum Pending {
    Waiting(usize),
    Timer((Instant, u64)),
    Pool,
}

#[derive(Debug)]
enum Timer {
    /// `IORING_OP_TIMEOUT`: completes with `ETIME`.
    Timeout { user_data: u64 },
    /// A waiting op's linked timeout.
    Deadline { waiter: usize },
}

/// Completions that pool threads post back, and the eventfd that tells.
#[derive(Debug)]
struct PoolDone {
    cqes: Mutex<Vec<Cqe>>,
    any: AtomicBool,
    eventfd: OwnedFd,
}

impl PoolDone {
    fn post(&self, cqe: Cqe) {
        self.cqes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cqe);
        self.any.store(true, Ordering::Release);
        super::syscall::signal_eventfd(self.eventfd.as_fd());
    }
}

/// The descriptors this backend has seen, indexed by fd number (small,
/// dense integers): a lookup per op costs an index, not a hash.
#[derive(Default)]
struct FdTable {
    slots: Vec<Option<FdState>>,
}

impl FdTable {
    fn get(&self, fd: &RawFd) -> Option<&FdState> {
        self.slots.get(usize::try_from(*fd).ok()?)?.as_ref()
    }

    fn get_mut(&mut self, fd: &RawFd) -> Option<&mut FdState> {
        self.slots.get_mut(usize::try_from(*fd).ok()?)?.as_mut()
    }

    fn insert(&mut self, fd: RawFd, state: FdState) {
        let Ok(i) = usize::try_from(fd) else { return };
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some(state);
    }

    fn remove(&mut self, fd: &RawFd) -> Option<FdState> {
        self.slots.get_mut(usize::try_from(*fd).ok()?)?.take()
    }
}

/// Hashes a `user_data` (a slot index, unique) with one multiply: the
/// default SipHash showed up in profiles of the hot path.
#[derive(Default)]
struct UserDataHasher(u64);

impl Hasher for UserDataHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// An `Sqe` moved to a pool thread. Its pointers stay valid until its
/// completion is posted (see the module docs), which the job does last.
struct PoolJob(Sqe);

/// The readiness backend of one core.
pub(crate) struct Epoll {
    epfd: OwnedFd,
    /// Entries queued since the last enter (the "SQ").
    queued: Vec<Sqe>,
    /// Completions not yet reaped (the "CQ").
    cq: VecDeque<Cqe>,
    fds: FdTable,
    waiters: Slab<Waiter>,
    pending: HashMap<u64, Pending, BuildHasherDefault<UserDataHasher>>,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    pool: Arc<PoolDone>,
    /// The registered file table (`IOSQE_FIXED_FILE` entries name a slot).
    fixed_files: Vec<RawFd>,
    events: Vec<libc::epoll_event>,
    /// `epoll_pwait2` exists (5.11); else `epoll_wait` in milliseconds.
    pwait2: bool,
    /// Inline starts left in this tick.
    inline_budget: u32,
    /// Entries started so far (the ring's "submitted").
    started: u64,
    /// Provided-buffer rings (`epoll_bufs.rs`).
    bufs: bufs::BufGroups,
    /// Fds with a `direct_reader`: while any exists, every enter asks epoll.
    direct_readers: usize,
    /// Direct readers whose fd turned readable, for the driver to wake.
    wakes: Vec<Waker>,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 returns a new descriptor or -1 (checked).
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `epfd` is a fresh descriptor nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
        // SAFETY: eventfd returns a new descriptor or -1 (checked).
        let efd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: as above.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: POOL_TOKEN,
        };
        // SAFETY: epoll_ctl reads one event from this frame.
        cvt(unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, efd, &mut ev) })?;
        Ok(Epoll {
            epfd,
            queued: Vec::with_capacity(64),
            cq: VecDeque::with_capacity(256),
            fds: FdTable::default(),
            waiters: Slab::new(),
            pending: HashMap::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            pool: Arc::new(PoolDone {
                cqes: Mutex::new(Vec::new()),
                any: AtomicBool::new(false),
                eventfd,
            }),
            fixed_files: Vec::new(),
            events: Vec::with_capacity(256),
            pwait2: true,
            inline_budget: INLINE_BUDGET,
            started: 0,
            bufs: bufs::BufGroups::default(),
            direct_readers: 0,
            wakes: Vec::new(),
        })
    }

    /// Queues entries; they start at the next [`Epoll::enter`].
    ///
    /// # Safety
    ///
    /// As for pushing to a ring: every pointer in the entries stays valid
    /// until the entry's completion is reaped.
    pub(crate) unsafe fn push(&mut self, entries: &[squeue::Entry]) {
        self.queued.extend(entries.iter().map(Sqe::from_entry));
    }

    /// Starts one entry now, inside the first poll of its op, as tokio's
    /// I/O does: a send with room or a receive with data waiting completes
    /// before the poll returns, with no wake-up, second poll or tick of its
    /// own. Past [`INLINE_BUDGET`] starts in a tick, the entry is queued for
    /// the next enter instead, so a task whose ops always complete at once
    /// still gives the core back. Returns the entry's completion if it
    /// finished here (nobody else sees it); else it comes the usual way.
    ///
    /// # Safety
    ///
    /// As for [`Epoll::push`].
    pub(crate) unsafe fn start_inline(&mut self, entry: &squeue::Entry) -> Option<Cqe> {
        let sqe = Sqe::from_entry(entry);
        // A plain send or receive starts inline (the common case, decided
        // without the general test).
        let plain = sqe.flags == 0 && matches!(sqe.opcode, opcode::Recv::CODE | opcode::Send::CODE);
        if self.inline_budget == 0 || !(plain || self.starts_inline(&sqe)) {
            self.queued.push(sqe);
            return None;
        }
        self.inline_budget -= 1;
        // What was queued before it (a close, a linked pair) starts first,
        // as the kernel takes a ring's entries in order.
        if !self.queued.is_empty() {
            self.start_queued();
        }
        self.started += 1;
        if let Some(done) = self.try_plain_stream(&sqe) {
            return done;
        }
        let posted = self.cq.len();
        self.start(sqe, None);
        // Its completion, if it finished at once and posted only that: a
        // zero-copy send's two, or another op's, go the usual way.
        let only_its_own = self.cq.len() == posted + 1
            && self
                .cq
                .back()
                .is_some_and(|c| c.user_data == sqe.user_data && c.flags & IORING_CQE_F_MORE == 0);
        if only_its_own {
            self.cq.pop_back()
        } else {
            None
        }
    }

    /// The common inline start, a plain send or receive on a socket seen
    /// before that may be ready, without the general path's dispatch: one
    /// syscall, and its result handed straight back (never posted to the
    /// CQ). `None` if the entry is not of that kind; the general path then
    /// starts it. An entry with flags (a linked timeout, a selected buffer,
    /// a registered file, skipped success) always takes the general path.
    fn try_plain_stream(&mut self, sqe: &Sqe) -> Option<Option<Cqe>> {
        let interest = match sqe.opcode {
            opcode::Recv::CODE => Interest::Read,
            opcode::Send::CODE => Interest::Write,
            _ => return None,
        };
        if sqe.flags != 0 || !self.fds.get(&sqe.fd)?.may_be_ready(interest) {
            return None;
        }
        let res = loop {
            // SAFETY: the entry points into its op's own buffer (and
            // address), alive until its completion (`start_inline`'s
            // contract), which this call returns.
            let r = unsafe { send_or_recv(sqe, sqe.fd) };
            match errno_of(r) {
                None => break r as i32,
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    // The try was made: wait for the edge without another.
                    self.wait(*sqe, sqe.fd, interest, None, false);
                    self.set_ready(sqe.fd, interest, false);
                    return Some(None);
                }
                Some(errno) => break -errno,
            }
        };
        // A whole send or receive (the usual send) says nothing new.
        if res > 0 && (res as u32) < sqe.len {
            self.note_short(sqe, sqe.fd, res);
        }
        Some(Some(Cqe {
            user_data: sqe.user_data,
            res,
            flags: 0,
        }))
    }

    /// A plain send of `buf` on `fd`, made now with no entry, slot or
    /// completion: one non-blocking `send(2)` if `fd` is a descriptor this
    /// backend knows and may be writable (no `EAGAIN` since its last edge).
    /// `None` if it cannot be tried here (an unknown fd, one known full, the
    /// tick's inline budget spent) or said `EAGAIN` (the fd is then known
    /// full, so the send op the caller makes instead waits for its edge
    /// without another try).
    pub(crate) fn try_send(&mut self, fd: RawFd, buf: &[u8]) -> Option<io::Result<usize>> {
        if self.inline_budget == 0 {
            return None;
        }
        // What was queued before it starts first, as in `start_inline`.
        if !self.queued.is_empty() {
            self.start_queued();
        }
        if !self.fds.get(&fd)?.writable {
            return None;
        }
        self.inline_budget -= 1;
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let n = loop {
            // SAFETY: `buf` is a live slice for the length passed; the
            // kernel reads it only during the call.
            let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
            match errno_of(r) {
                None => break r as usize,
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    self.set_ready(fd, Interest::Write, false);
                    return None;
                }
                Some(errno) => {
                    self.started += 1;
                    return Some(Err(io::Error::from_raw_os_error(errno)));
                }
            }
        };
        self.started += 1;
        if n > 0 && n < buf.len() {
            self.filled(fd, true);
        }
        Some(Ok(n))
    }

    /// Queued entries not yet started.
    pub(crate) fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Entries started so far, inline or queued.
    pub(crate) fn started(&self) -> u64 {
        self.started
    }

    /// Whether an entry starts inside its op's first poll. File-system ops
    /// and reads or writes of regular files keep the ring's batching: the
    /// page-cache heuristics and per-queue file-op caps of `fs` count the
    /// ops in flight, and a file op is no cheaper inline. Sockets, pipes,
    /// timers and the rest start at once.
    fn starts_inline(&mut self, sqe: &Sqe) -> bool {
        if is_pool_op(sqe.opcode) {
            return false;
        }
        if !is_rw_op(sqe.opcode) {
            return true;
        }
        match self.resolve_fd(sqe) {
            Ok(fd) => self.kind(fd) == Kind::Pollable,
            Err(_) => true,
        }
    }

    /// Completions waiting to be reaped, or pool results to collect.
    pub(crate) fn work_pending(&self) -> bool {
        !self.cq.is_empty() || self.pool.any.load(Ordering::Acquire)
    }

    /// Whether completions wait to be reaped.
    pub(crate) fn has_cqes(&self) -> bool {
        !self.cq.is_empty()
    }

    /// Takes the completions reaped so far.
    pub(crate) fn take_cqes(&mut self, into: &mut VecDeque<Cqe>) {
        std::mem::swap(&mut self.cq, into);
    }

    /// Receives that wait for readiness with a waker and no entry
    /// ([`Epoll::recv_ring`]).
    pub(crate) fn direct_readers(&self) -> usize {
        self.direct_readers
    }

    /// Moves the wakers of direct readers whose fds turned readable to `into`.
    pub(crate) fn take_wakes(&mut self, into: &mut Vec<Waker>) {
        if self.wakes.is_empty() {
            return;
        }
        if into.is_empty() {
            std::mem::swap(&mut self.wakes, into);
        } else {
            into.append(&mut self.wakes);
        }
    }

    /// Starts every queued entry, then collects what is ready: with `wait`,
    /// blocks (up to `timeout`, or the nearest deadline) until at least one
    /// completion exists.
    pub(crate) fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.inline_budget = INLINE_BUDGET;
        self.start_queued();
        self.collect_pool();
        self.fire_timers();
        let block = wait && self.cq.is_empty();
        if block || !self.waiters.is_empty() || self.direct_readers > 0 {
            let timeout = if block {
                let next = self
                    .timers
                    .keys()
                    .next()
                    .map(|(at, _)| at.saturating_duration_since(Instant::now()));
                match (timeout, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            } else {
                Some(Duration::ZERO)
            };
            self.poll_events(timeout)?;
            self.collect_pool();
            self.fire_timers();
        }
        Ok(())
    }

    /// Starts the queued entries, in order.
    #[inline]
    fn start_queued(&mut self) {
        // Most often nothing is queued: checked here, in the caller.
        if !self.queued.is_empty() {
            self.start_queued_now();
        }
    }

    #[inline(never)]
    fn start_queued_now(&mut self) {
        let queued = std::mem::take(&mut self.queued);
        let mut i = 0;
        while i < queued.len() {
            let sqe = queued[i];
            // A linked timeout travels right behind its op.
            let link = (sqe.flags & IOSQE_IO_LINK != 0)
                .then(|| queued.get(i + 1))
                .flatten()
                .filter(|l| l.opcode == opcode::LinkTimeout::CODE)
                .copied();
            let n = 1 + link.is_some() as usize;
            i += n;
            self.started += n as u64;
            self.start(sqe, link);
        }
        // Keep the allocation for the next tick.
        let mut queued = queued;
        queued.clear();
        if self.queued.is_empty() {
            self.queued = queued;
        }
    }

    /// One `epoll_pwait2` (or `epoll_wait`), then retries the ops whose fds
    /// turned ready.
    fn poll_events(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.events.clear();
        let cap = self.events.capacity() as i32;
        let n = loop {
            let n = self.epoll_wait(cap, timeout);
            match n {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) && self.pwait2 => {
                    self.pwait2 = false;
                }
                other => break other?,
            }
        };
        // SAFETY: the kernel initialized the first `n` events (n <= cap).
        unsafe { self.events.set_len(n) };
        for k in 0..n {
            let ev = self.events[k];
            let (token, mask) = (ev.u64, ev.events as i32);
            if token == POOL_TOKEN {
                continue; // collected by the caller
            }
            let fd = token as RawFd;
            let Some(state) = self.fds.get_mut(&fd) else {
                continue;
            };
            let err = mask & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            if err || mask & libc::EPOLLRDHUP != 0 {
                state.hung_up = true;
            }
            let read = mask & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0 || err;
            let write = mask & libc::EPOLLOUT != 0 || err;
            state.readable |= read;
            state.writable |= write;
            if read
                && let Some(wait) = &state.direct_reader
                && let Some(waker) = wait.fire()
            {
                // A push, not `extend` with the option: that reserves
                // room first, a call's worth of instructions per edge.
                self.wakes.push(waker);
            }
            // An edge reports every readiness the fd has: most often nobody
            // waits for the other one (a send with room never waits).
            let retry_readers = read && !state.readers.is_empty();
            let retry_writers = write && !state.writers.is_empty();
            if retry_readers {
                self.ready(fd, Interest::Read, mask);
            }
            if retry_writers {
                self.ready(fd, Interest::Write, mask);
            }
        }
        Ok(())
    }

    fn epoll_wait(&mut self, cap: i32, timeout: Option<Duration>) -> io::Result<usize> {
        let ptr = self.events.as_mut_ptr();
        let n = if self.pwait2 {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: epoll_pwait2(2) writes at most `cap` events into the
            // vector's spare capacity (`cap` is that capacity) and reads the
            // timespec on this frame; no signal mask.
            unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.epfd.as_raw_fd(),
                    ptr,
                    cap,
                    ts_ptr,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            }
        } else {
            let ms = wait_ms(timeout);
            // SAFETY: as above, at most `cap` events into spare capacity.
            unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), ptr, cap, ms) as libc::c_long }
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Whether `fd` may be ready for `interest` (no `EAGAIN` since its last edge).
    fn may_be_ready(&self, fd: RawFd, interest: Interest) -> bool {
        self.fds.get(&fd).is_none_or(|s| s.may_be_ready(interest))
    }

    fn set_ready(&mut self, fd: RawFd, interest: Interest, ready: bool) {
        if let Some(s) = self.fds.get_mut(&fd) {
            if !ready && s.hung_up {
                return;
            }
            match interest {
                Interest::Read => s.readable = ready,
                Interest::Write => s.writable = ready,
            }
        }
    }

    /// A short read (or write) on a byte stream drained (or filled) its
    /// queue: the next op waits for the edge epoll reports when more data
    /// (or room) comes, instead of trying a syscall that would say `EAGAIN`.
    /// The edge cannot be missed: epoll reports every arrival after the
    /// last one it handed out, and this read took everything before it.
    fn note_short(&mut self, sqe: &Sqe, fd: RawFd, res: i32) {
        let code = sqe.opcode;
        let single = matches!(
            code,
            opcode::Recv::CODE | opcode::Send::CODE | opcode::Read::CODE | opcode::Write::CODE
        );
        if res <= 0 || res as u32 >= sqe.len || !single {
            return;
        }
        self.filled(fd, is_write_side(code));
    }

    /// A short write (`write`) or read on `fd`: on a byte stream, its queue
    /// is full (or drained), see [`Epoll::note_short`].
    fn filled(&mut self, fd: RawFd, write: bool) {
        let Some(state) = self.fds.get_mut(&fd) else {
            return;
        };
        if state.kind == Kind::Pollable {
            state.filled(fd, write);
        }
    }

    /// Retries the ops waiting on `fd` for `interest`, oldest first (the
    /// caller marked the fd ready for it).
    fn ready(&mut self, fd: RawFd, interest: Interest, mask: i32) {
        let Some(state) = self.fds.get_mut(&fd) else {
            return;
        };
        let waiting = state.waiting_mut(interest);
        if let [idx] = waiting[..] {
            // Most often one op waits (a connection's receive): the list
            // stays in place, emptied as a taken one would be.
            waiting.clear();
            if self.waiters.contains(idx)
                && self.retry(idx, mask)
                && let Some(state) = self.fds.get_mut(&fd)
            {
                state.waiting_mut(interest).insert(0, idx);
            }
            return;
        }
        let mut list = std::mem::take(waiting);
        list.retain(|&idx| self.waiters.contains(idx) && self.retry(idx, mask));
        if let Some(state) = self.fds.get_mut(&fd) {
            let now = state.waiting_mut(interest);
            // Ops that started waiting while these were retried go after
            // them; the list keeps its allocation for the next wait.
            list.append(now);
            std::mem::swap(now, &mut list);
        }
    }

    /// Retries a waiting op after its fd turned ready; returns whether it
    /// still waits.
    fn retry(&mut self, idx: usize, mask: i32) -> bool {
        let w = &self.waiters[idx];
        let (sqe, fd) = (w.sqe, w.fd);
        if sqe.opcode == opcode::PollAdd::CODE {
            let revents = (mask as u32) & (sqe.op_flags | (libc::POLLERR | libc::POLLHUP) as u32);
            if revents == 0 {
                return true;
            }
            if sqe.len & IORING_POLL_ADD_MULTI != 0 {
                self.post(sqe.user_data, revents as i32, IORING_CQE_F_MORE);
                return true;
            }
            self.finish_waiter(idx, revents as i32, false);
            return false;
        }
        if w.connecting {
            let res = so_error(fd);
            self.finish_waiter(idx, res, false);
            return false;
        }
        if is_multishot_accept(&sqe) {
            return match self.accept_all(&sqe, fd) {
                None => true,
                Some(res) => {
                    self.finish_waiter(idx, res, false);
                    false
                }
            };
        }
        if sqe.flags & IOSQE_BUFFER_SELECT != 0 {
            return self.retry_buffer_select(idx, &sqe, fd);
        }
        match attempt(&sqe, fd, Kind::Pollable) {
            Attempt::Again => {
                let interest = if is_write_side(sqe.opcode) {
                    Interest::Write
                } else {
                    Interest::Read
                };
                self.set_ready(fd, interest, false);
                true
            }
            Attempt::Done(res) => {
                self.note_short(&sqe, fd, res);
                self.finish_waiter(idx, res, false);
                false
            }
            Attempt::Blocking => {
                let waiter = self.remove_waiter(idx);
                self.run_on_pool(waiter.sqe, fd);
                if let Some((_, link_ud)) = waiter.link {
                    self.post(link_ud, -libc::ECANCELED, 0);
                }
                false
            }
        }
    }

    /// Starts one entry (and its linked timeout, if any).
    fn start(&mut self, sqe: Sqe, link: Option<Sqe>) {
        let fd = match self.resolve_fd(&sqe) {
            Ok(fd) => fd,
            Err(errno) => return self.complete(sqe, link, -errno),
        };
        let code = sqe.opcode;
        if sqe.flags & IOSQE_BUFFER_SELECT != 0 {
            return self.start_buffer_select(sqe, fd, link);
        }
        match code {
            opcode::Nop::CODE => self.complete(sqe, link, 0),
            opcode::Timeout::CODE => {
                // SAFETY: `addr` points to the op's timespec, alive until its
                // completion (the `OpCode` contract); read once, here.
                let ts = unsafe { read_timespec(sqe.addr) };
                let at = deadline(ts, sqe.op_flags & IORING_TIMEOUT_ABS != 0);
                let key = self.add_timer(
                    at,
                    Timer::Timeout {
                        user_data: sqe.user_data,
                    },
                );
                self.pending.insert(sqe.user_data, Pending::Timer(key));
            }
            opcode::TimeoutRemove::CODE => {
                let res = match self.pending.get(&sqe.addr).copied() {
                    Some(Pending::Timer(key)) => {
                        self.timers.remove(&key);
                        self.pending.remove(&sqe.addr);
                        self.post(sqe.addr, -libc::ECANCELED, 0);
                        0
                    }
                    _ => -libc::ENOENT,
                };
                self.complete(sqe, link, res);
            }
            // AsyncCancel2 shares the opcode.
            opcode::AsyncCancel::CODE => {
                let res = if sqe.op_flags & (IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL) != 0
                {
                    self.cancel_all()
                } else {
                    self.cancel(sqe.addr)
                };
                self.complete(sqe, link, res);
            }
            opcode::Close::CODE => {
                let res = self.close(&sqe, fd);
                self.complete(sqe, link, res);
            }
            opcode::Socket::CODE => {
                // SAFETY: socket(2) takes integers only.
                let res = unsafe { libc::socket(sqe.fd, sqe.off as i32, sqe.len as i32) };
                self.complete(sqe, link, ret(res as isize));
            }
            opcode::Shutdown::CODE => {
                // SAFETY: shutdown(2) on a descriptor the op keeps open.
                let res = unsafe { libc::shutdown(fd, sqe.len as i32) };
                self.complete(sqe, link, ret(res as isize));
            }
            opcode::Connect::CODE => self.start_connect(sqe, fd, link),
            opcode::PollAdd::CODE => {
                let mut pfd = libc::pollfd {
                    fd,
                    events: sqe.op_flags as i16,
                    revents: 0,
                };
                // SAFETY: poll(2) on one pollfd on this frame, no wait.
                let n = unsafe { libc::poll(&mut pfd, 1, 0) };
                if pfd.revents & libc::POLLNVAL != 0 {
                    // Not a descriptor that can be polled (O_PATH): as the ring says.
                    return self.complete(sqe, link, -libc::EBADF);
                }
                let multi = sqe.len & IORING_POLL_ADD_MULTI != 0;
                if n > 0 && !multi {
                    return self.complete(sqe, link, pfd.revents as i32);
                }
                if n > 0 {
                    self.post(sqe.user_data, pfd.revents as i32, IORING_CQE_F_MORE);
                }
                let interest = if sqe.op_flags & libc::POLLOUT as u32 != 0
                    && sqe.op_flags & libc::POLLIN as u32 == 0
                {
                    Interest::Write
                } else {
                    Interest::Read
                };
                self.wait(sqe, fd, interest, link, false);
            }
            // AcceptMulti shares the opcode.
            opcode::Accept::CODE => {
                if sqe.file_index != 0 {
                    // Direct descriptors need the ring's file table.
                    return self.complete(sqe, link, -libc::EINVAL);
                }
                if let Err(errno) = self.set_nonblocking(fd) {
                    return self.complete(sqe, link, -errno);
                }
                if is_multishot_accept(&sqe) {
                    match self.accept_all(&sqe, fd) {
                        None => self.wait(sqe, fd, Interest::Read, link, false),
                        Some(res) => self.complete(sqe, link, res),
                    }
                } else {
                    self.try_or_wait(sqe, fd, link, Kind::Pollable);
                }
            }
            c if is_stream_op(c) => self.try_or_wait(sqe, fd, link, Kind::Pollable),
            c if is_rw_op(c) => {
                let kind = self.kind(fd);
                self.try_or_wait(sqe, fd, link, kind);
            }
            c if is_pool_op(c) => {
                self.run_on_pool(sqe, fd);
                if let Some(l) = link {
                    self.post(l.user_data, -libc::ECANCELED, 0);
                }
            }
            _ => self.complete(sqe, link, -libc::EOPNOTSUPP),
        }
    }

    /// The descriptor an entry names: its own, or a registered file's.
    fn resolve_fd(&self, sqe: &Sqe) -> Result<RawFd, i32> {
        if sqe.flags & IOSQE_FIXED_FILE == 0 {
            return Ok(sqe.fd);
        }
        match self.fixed_files.get(sqe.fd as usize) {
            Some(&fd) if fd >= 0 => Ok(fd),
            _ => Err(libc::EBADF),
        }
    }

    /// Tries a socket/pipe/file op now; parks it on `EAGAIN`, hands it to
    /// the pool if only a blocking call can do it.
    fn try_or_wait(&mut self, sqe: Sqe, fd: RawFd, link: Option<Sqe>, kind: Kind) {
        let interest = if is_write_side(sqe.opcode) {
            Interest::Write
        } else {
            Interest::Read
        };
        if kind == Kind::Pollable && !self.may_be_ready(fd, interest) {
            return self.wait(sqe, fd, interest, link, false);
        }
        match attempt(&sqe, fd, kind) {
            Attempt::Done(res) => {
                self.note_short(&sqe, fd, res);
                self.complete(sqe, link, res)
            }
            Attempt::Again => {
                self.wait(sqe, fd, interest, link, false);
                self.set_ready(fd, interest, false);
            }
            Attempt::Blocking => {
                self.run_on_pool(sqe, fd);
                if let Some(l) = link {
                    self.post(l.user_data, -libc::ECANCELED, 0);
                }
            }
        }
    }

    fn start_connect(&mut self, sqe: Sqe, fd: RawFd, link: Option<Sqe>) {
        if let Err(errno) = self.set_nonblocking(fd) {
            return self.complete(sqe, link, -errno);
        }
        // SAFETY: `addr` points to the op's sockaddr of `off` bytes, alive
        // until the op's completion.
        let res = unsafe {
            libc::connect(
                fd,
                sqe.addr as *const libc::sockaddr,
                sqe.off as libc::socklen_t,
            )
        };
        match errno_of(res as isize) {
            None => self.complete(sqe, link, 0),
            Some(libc::EINPROGRESS) => self.wait(sqe, fd, Interest::Write, link, true),
            // A Unix socket whose listener's backlog is full: retry later.
            Some(libc::EAGAIN) => self.wait(sqe, fd, Interest::Write, link, false),
            Some(errno) => self.complete(sqe, link, -errno),
        }
    }

    /// Accepts until `EAGAIN`, posting each connection as a multishot
    /// completion. Returns the final result if the stream ended.
    fn accept_all(&mut self, sqe: &Sqe, fd: RawFd) -> Option<i32> {
        loop {
            match attempt(sqe, fd, Kind::Pollable) {
                Attempt::Again => return None,
                Attempt::Done(res) if res >= 0 => self.post(sqe.user_data, res, IORING_CQE_F_MORE),
                Attempt::Done(res) if res == -libc::ECONNABORTED => {}
                Attempt::Done(res) => return Some(res),
                Attempt::Blocking => return Some(-libc::EINVAL),
            }
        }
    }

    /// Parks an op until `fd` is ready for `interest`.
    fn wait(
        &mut self,
        sqe: Sqe,
        fd: RawFd,
        interest: Interest,
        link: Option<Sqe>,
        connecting: bool,
    ) {
        if let Err(errno) = self.register(fd) {
            if errno == libc::EPERM {
                // Not pollable after all (a regular file): block on the pool.
                if let Some(state) = self.fds.get_mut(&fd) {
                    state.kind = Kind::File;
                }
                self.run_on_pool(sqe, fd);
                if let Some(l) = link {
                    self.post(l.user_data, -libc::ECANCELED, 0);
                }
            } else {
                self.complete(sqe, link, -errno);
            }
            return;
        }
        let idx = self.waiters.vacant_key();
        let link = link.map(|l| {
            // SAFETY: the linked timeout's timespec lives until its own
            // completion (the driver keeps it boxed); read once, here.
            let ts = unsafe { read_timespec(l.addr) };
            let at = deadline(ts, l.op_flags & IORING_TIMEOUT_ABS != 0);
            (
                self.add_timer(at, Timer::Deadline { waiter: idx }),
                l.user_data,
            )
        });
        self.waiters.insert(Waiter {
            sqe,
            fd,
            link,
            connecting,
        });
        self.pending.insert(sqe.user_data, Pending::Waiting(idx));
        let state = self.fds.get_mut(&fd).expect("registered above");
        state.waiting_mut(interest).push(idx);
    }

    /// Adds `fd` to epoll, once for its life.
    fn register(&mut self, fd: RawFd) -> Result<(), i32> {
        let kind = self.kind(fd);
        let state = self.fds.get_mut(&fd).expect("kind() records the fd");
        if state.registered {
            return Ok(());
        }
        if kind == Kind::File {
            return Err(libc::EPERM);
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: epoll_ctl reads one event from this frame; `fd` is kept
        // open by the op about to wait on it.
        let res =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        match errno_of(res as isize) {
            None | Some(libc::EEXIST) => {
                state.registered = true;
                Ok(())
            }
            Some(errno) => Err(errno),
        }
    }

    /// What `fd` is (one `fstat` the first time it is seen).
    fn kind(&mut self, fd: RawFd) -> Kind {
        if let Some(state) = self.fds.get(&fd) {
            return state.kind;
        }
        // SAFETY: fstat writes one `stat` into this zeroed local.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `fd` is kept open by the op that names it.
        let res = unsafe { libc::fstat(fd, &mut st) };
        let fmt = st.st_mode & libc::S_IFMT;
        let kind =
            if res == 0 && (fmt == libc::S_IFREG || fmt == libc::S_IFBLK || fmt == libc::S_IFDIR) {
                Kind::File
            } else {
                Kind::Pollable
            };
        self.fds.insert(
            fd,
            FdState {
                kind,
                registered: false,
                nonblocking: false,
                readable: true,
                writable: true,
                stream: None,
                hung_up: false,
                readers: Vec::new(),
                writers: Vec::new(),
                direct_reader: None,
            },
        );
        kind
    }

    fn set_nonblocking(&mut self, fd: RawFd) -> Result<(), i32> {
        self.kind(fd);
        let state = self.fds.get_mut(&fd).expect("kind() records the fd");
        if state.nonblocking {
            return Ok(());
        }
        // SAFETY: fcntl(2) on a descriptor the op keeps open; integers only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(last_errno());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(last_errno());
        }
        state.nonblocking = true;
        Ok(())
    }

    /// Closes an fd (or a registered file's slot), forgetting it first.
    fn close(&mut self, sqe: &Sqe, fd: RawFd) -> i32 {
        if sqe.file_index != 0 {
            let slot = sqe.file_index as usize - 1;
            return match self.fixed_files.get_mut(slot) {
                Some(f) if *f >= 0 => {
                    *f = -1;
                    0
                }
                _ => -libc::EBADF,
            };
        }
        self.forget(fd);
        // SAFETY: the Close op owns `fd` (it took an `OwnedFd`) and gives it
        // up here; nothing else uses it.
        ret(unsafe { libc::close(fd) } as isize)
    }

    /// Drops everything known about `fd` before it is closed, so a new
    /// descriptor with the same number starts afresh.
    fn forget(&mut self, fd: RawFd) {
        if let Some(state) = self.fds.remove(&fd) {
            if state.registered {
                // SAFETY: epoll_ctl on our epoll fd and `fd`, still open.
                unsafe {
                    libc::epoll_ctl(
                        self.epfd.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        fd,
                        std::ptr::null_mut(),
                    )
                };
            }
            // An op still waiting on a closed fd would never be woken.
            if let Some(wait) = state.direct_reader {
                self.direct_readers -= 1;
                self.wakes.extend(wait.fire());
            }
            for idx in state.readers.into_iter().chain(state.writers) {
                if self.waiters.contains(idx) {
                    self.finish_waiter(idx, -libc::ECANCELED, false);
                }
            }
        }
    }

    /// Runs an entry on the blocking pool.
    fn run_on_pool(&mut self, mut sqe: Sqe, fd: RawFd) {
        sqe.fd = fd;
        sqe.flags &= !IOSQE_FIXED_FILE;
        self.pending.insert(sqe.user_data, Pending::Pool);
        let done = self.pool.clone();
        let job = PoolJob(sqe);
        crate::blocking::submit_job(Box::new(move || {
            let job = job;
            // SAFETY: the entry's pointers stay valid until its completion
            // is posted (module docs), which is the last thing this does.
            let res = unsafe { blocking(&job.0) };
            done.post(Cqe {
                user_data: job.0.user_data,
                res,
                flags: 0,
            });
        }));
    }

    #[inline]
    fn collect_pool(&mut self) {
        // A plain load first, here in the caller: most ticks no pool job
        // finished (the collecting, apart, costs a call's frame only when
        // one did).
        if self.pool.any.load(Ordering::Relaxed) {
            self.collect_pool_now();
        }
    }

    #[inline(never)]
    fn collect_pool_now(&mut self) {
        if !self.pool.any.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut buf = 0u64;
        // SAFETY: read(2) of 8 bytes into a local from our own eventfd; it
        // is non-blocking, so an empty counter returns EAGAIN.
        let _ = unsafe {
            libc::read(
                self.pool.eventfd.as_raw_fd(),
                (&mut buf as *mut u64).cast(),
                8,
            )
        };
        let cqes = std::mem::take(&mut *self.pool.cqes.lock().unwrap_or_else(|e| e.into_inner()));
        for cqe in cqes {
            self.pending.remove(&cqe.user_data);
            self.push_cqe(cqe);
        }
    }

    /// Completes an op that was never parked, and its linked timeout.
    fn complete(&mut self, sqe: Sqe, link: Option<Sqe>, res: i32) {
        self.finish(&sqe, res);
        if let Some(l) = link {
            self.post(l.user_data, -libc::ECANCELED, 0);
        }
    }

    /// Completes a parked op: out of its fd's lists, its deadline dropped.
    fn finish_waiter(&mut self, idx: usize, res: i32, timed_out: bool) {
        let w = self.remove_waiter(idx);
        self.finish(&w.sqe, res);
        if let Some((_, link_ud)) = w.link {
            let link_res = if timed_out {
                -libc::ETIME
            } else {
                -libc::ECANCELED
            };
            self.post(link_ud, link_res, 0);
        }
    }

    fn remove_waiter(&mut self, idx: usize) -> Waiter {
        let w = self.waiters.remove(idx);
        self.pending.remove(&w.sqe.user_data);
        if let Some((key, _)) = w.link {
            self.timers.remove(&key);
        }
        if let Some(state) = self.fds.get_mut(&w.fd) {
            state.readers.retain(|&i| i != idx);
            state.writers.retain(|&i| i != idx);
        }
        w
    }

    /// Posts an op's completion as the kernel would: a zero-copy send posts
    /// its result flagged `MORE`, then the notification.
    fn finish(&mut self, sqe: &Sqe, res: i32) {
        let code = sqe.opcode;
        if code == opcode::SendZc::CODE || code == opcode::SendMsgZc::CODE {
            self.post(sqe.user_data, res, IORING_CQE_F_MORE);
            self.post(sqe.user_data, 0, IORING_CQE_F_NOTIF);
            return;
        }
        if res >= 0 && sqe.flags & IOSQE_CQE_SKIP_SUCCESS != 0 {
            return;
        }
        self.post(sqe.user_data, res, 0);
    }

    fn post(&mut self, user_data: u64, res: i32, flags: u32) {
        self.push_cqe(Cqe {
            user_data,
            res,
            flags,
        });
    }

    fn push_cqe(&mut self, cqe: Cqe) {
        self.cq.push_back(cqe);
    }

    fn add_timer(&mut self, at: Instant, timer: Timer) -> (Instant, u64) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        self.timers.insert(key, timer);
        key
    }

    /// Completes the timeouts that are due. Twice per loop turn, and most
    /// turns have none: the check is inline, the work is not.
    #[inline]
    fn fire_timers(&mut self) {
        if !self.timers.is_empty() {
            self.fire_due_timers();
        }
    }

    #[inline(never)]
    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Timer::Timeout { user_data } => {
                    self.pending.remove(&user_data);
                    self.post(user_data, -libc::ETIME, 0);
                }
                Timer::Deadline { waiter } => {
                    if self.waiters.contains(waiter) {
                        // The linked timeout fired: the op is cancelled,
                        // the timeout itself completes with ETIME.
                        self.finish_waiter(waiter, -libc::ECANCELED, true);
                    }
                }
            }
        }
    }

    /// `IORING_OP_ASYNC_CANCEL` of one op.
    fn cancel(&mut self, target: u64) -> i32 {
        match self.pending.get(&target).copied() {
            Some(Pending::Waiting(idx)) => {
                self.finish_waiter(idx, -libc::ECANCELED, false);
                0
            }
            Some(Pending::Timer(key)) => {
                self.timers.remove(&key);
                self.pending.remove(&target);
                self.post(target, -libc::ECANCELED, 0);
                0
            }
            Some(Pending::Pool) => -libc::EALREADY,
            None => -libc::ENOENT,
        }
    }

    /// Cancels every waiting op and timeout; returns how many.
    fn cancel_all(&mut self) -> i32 {
        let targets: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| !matches!(p, Pending::Pool))
            .map(|(&ud, _)| ud)
            .collect();
        let n = targets.len();
        for ud in targets {
            self.cancel(ud);
        }
        n as i32
    }

    /// `IORING_REGISTER_FILES` (sparse): a table of `n` empty slots.
    pub(crate) fn register_files_sparse(&mut self, n: u32) -> io::Result<()> {
        if !self.fixed_files.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        self.fixed_files = vec![-1; n as usize];
        Ok(())
    }

    /// `IORING_REGISTER_FILES_UPDATE`: `-1` clears a slot.
    pub(crate) fn register_files_update(&mut self, offset: u32, fds: &[RawFd]) -> io::Result<()> {
        let end = offset as usize + fds.len();
        if end > self.fixed_files.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.fixed_files[offset as usize..end].copy_from_slice(fds);
        Ok(())
    }
}

enum Attempt {
    Done(i32),
    Again,
    /// Only a blocking call can do it (a regular file the cache cannot serve).
    Blocking,
}

/// The stream ops: always on a pollable descriptor.
fn is_stream_op(code: u8) -> bool {
    matches!(
        code,
        opcode::Recv::CODE
            | opcode::Send::CODE
            | opcode::SendZc::CODE
            | opcode::RecvMsg::CODE
            | opcode::SendMsg::CODE
            | opcode::SendMsgZc::CODE
    )
}

/// Read and write ops, on files or streams.
fn is_rw_op(code: u8) -> bool {
    matches!(
        code,
        opcode::Read::CODE
            | opcode::Write::CODE
            | opcode::Readv::CODE
            | opcode::Writev::CODE
            | opcode::ReadFixed::CODE
            | opcode::WriteFixed::CODE
    )
}

/// File-system ops: always a blocking call.
fn is_pool_op(code: u8) -> bool {
    matches!(
        code,
        opcode::Fsync::CODE
            | opcode::Fallocate::CODE
            | opcode::Fadvise::CODE
            | opcode::Ftruncate::CODE
            | opcode::OpenAt::CODE
            | opcode::Statx::CODE
            | opcode::UnlinkAt::CODE
            | opcode::RenameAt::CODE
            | opcode::MkDirAt::CODE
            | opcode::SymlinkAt::CODE
            | opcode::LinkAt::CODE
    )
}

/// The opcodes this backend performs (for `Capabilities::opcodes`).
pub(crate) fn supported_opcodes() -> Vec<bool> {
    let mut codes = vec![false; 256];
    let own = [
        opcode::Nop::CODE,
        opcode::Timeout::CODE,
        opcode::TimeoutRemove::CODE,
        opcode::LinkTimeout::CODE,
        opcode::AsyncCancel::CODE,
        opcode::AsyncCancel2::CODE,
        opcode::Close::CODE,
        opcode::Socket::CODE,
        opcode::Shutdown::CODE,
        opcode::Connect::CODE,
        opcode::PollAdd::CODE,
        opcode::Accept::CODE,
        opcode::AcceptMulti::CODE,
    ];
    for code in own
        .into_iter()
        .chain((0..=255u8).filter(|&c| is_stream_op(c) || is_rw_op(c) || is_pool_op(c)))
    {
        codes[code as usize] = true;
    }
    codes
}

fn is_write_side(code: u8) -> bool {
    matches!(
        code,
        opcode::Send::CODE
            | opcode::SendZc::CODE
            | opcode::SendMsg::CODE
            | opcode::SendMsgZc::CODE
            | opcode::Write::CODE
            | opcode::Writev::CODE
            | opcode::WriteFixed::CODE
    )
}

fn is_multishot_accept(sqe: &Sqe) -> bool {
    sqe.opcode == opcode::Accept::CODE && sqe.ioprio & IORING_ACCEPT_MULTISHOT != 0
}

/// One non-blocking try of a stream or read/write op.
fn attempt(sqe: &Sqe, fd: RawFd, kind: Kind) -> Attempt {
    let code = sqe.opcode;
    // Buffered file writes are not worth a try that the page cache's
    // locking would mostly refuse: straight to the pool.
    if kind == Kind::File && is_write_side(code) {
        return Attempt::Blocking;
    }
    let nowait_flags = libc::MSG_DONTWAIT;
    let res: isize = loop {
        // SAFETY: for every call below, the pointers come from the entry, which
        // the op built to point into its own buffers, iovecs, msghdrs and
        // sockaddrs, alive until its completion; lengths are the op's own.
        let r = unsafe {
            match code {
                opcode::Recv::CODE | opcode::Send::CODE | opcode::SendZc::CODE => {
                    send_or_recv(sqe, fd)
                }
                opcode::RecvMsg::CODE => libc::recvmsg(
                    fd,
                    sqe.addr as *mut libc::msghdr,
                    sqe.op_flags as i32 | nowait_flags,
                ),
                opcode::SendMsg::CODE | opcode::SendMsgZc::CODE => libc::sendmsg(
                    fd,
                    sqe.addr as *const libc::msghdr,
                    sqe.op_flags as i32 | nowait_flags | libc::MSG_NOSIGNAL,
                ),
                opcode::Accept::CODE => {
                    let multishot = sqe.ioprio & IORING_ACCEPT_MULTISHOT != 0;
                    let (addr, len) = if multishot {
                        (std::ptr::null_mut(), std::ptr::null_mut())
                    } else {
                        (
                            sqe.addr as *mut libc::sockaddr,
                            sqe.off as *mut libc::socklen_t,
                        )
                    };
                    libc::accept4(fd, addr, len, sqe.op_flags as i32) as isize
                }
                _ => rw(sqe, fd, kind, true),
            }
        };
        if r < 0 && last_errno() == libc::EINTR {
            continue;
        }
        break r;
    };
    match errno_of(res) {
        None => Attempt::Done(res as i32),
        Some(libc::EAGAIN) if kind == Kind::File => Attempt::Blocking,
        Some(libc::EAGAIN) => Attempt::Again,
        // This descriptor cannot be asked not to wait (a tty, an old pipe).
        Some(libc::EOPNOTSUPP) if is_rw_op(code) => Attempt::Blocking,
        Some(errno) => Attempt::Done(-errno),
    }
}

/// A receive (`IORING_OP_RECV`) or send entry as `recv(2)` or
/// `send(2)`/`sendto(2)`, non-blocking.
///
/// # Safety
///
/// The entry's buffer (and, for `sendto`, address) pointers are valid for
/// its lengths.
unsafe fn send_or_recv(sqe: &Sqe, fd: RawFd) -> isize {
    let buf = sqe.addr as *mut libc::c_void;
    let len = sqe.len as usize;
    let flags = sqe.op_flags as i32 | libc::MSG_DONTWAIT;
    // SAFETY: the caller's contract: the entry's buffer and address.
    unsafe {
        if sqe.opcode == opcode::Recv::CODE {
            libc::recv(fd, buf, len, flags)
        } else if sqe.off != 0 {
            libc::sendto(
                fd,
                buf,
                len,
                flags | libc::MSG_NOSIGNAL,
                sqe.off as *const libc::sockaddr,
                (sqe.file_index & 0xffff) as libc::socklen_t,
            )
        } else {
            libc::send(fd, buf, len, flags | libc::MSG_NOSIGNAL)
        }
    }
}

/// A read or write op as `preadv2`/`pwritev2`: `RWF_NOWAIT` when `nowait`.
/// On a stream the offset is ignored, as the ring does.
///
/// # Safety
///
/// The entry's buffer or iovec pointers are valid for its lengths.
unsafe fn rw(sqe: &Sqe, fd: RawFd, kind: Kind, nowait: bool) -> isize {
    let code = sqe.opcode;
    let write = is_write_side(code);
    let one = libc::iovec {
        iov_base: sqe.addr as *mut libc::c_void,
        iov_len: sqe.len as usize,
    };
    let (iov, cnt) = if code == opcode::Readv::CODE || code == opcode::Writev::CODE {
        (sqe.addr as *const libc::iovec, sqe.len as i32)
    } else {
        (&one as *const libc::iovec, 1)
    };
    let flags = (sqe.op_flags as i32 & !RWF_NOWAIT) | if nowait { RWF_NOWAIT } else { 0 };
    // u64::MAX (-1): the file's own position, as for the ring; a stream
    // (socket, pipe, eventfd) has no offset, and the ring ignores it there.
    let off = if kind == Kind::File {
        sqe.off as i64
    } else {
        -1
    };
    // SAFETY: the caller's contract: `iov` names `cnt` valid iovecs.
    unsafe {
        if write {
            libc::pwritev2(fd, iov, cnt, off, flags)
        } else {
            libc::preadv2(fd, iov, cnt, off, flags)
        }
    }
}

/// Performs an entry with a blocking syscall (on a pool thread); returns
/// the result as the kernel would (`-errno` on failure).
///
/// # Safety
///
/// The entry's pointers are valid until this returns.
unsafe fn blocking(sqe: &Sqe) -> i32 {
    let fd = sqe.fd;
    let code = sqe.opcode;
    let path = sqe.addr as *const libc::c_char;
    // SAFETY: the caller's contract: paths, buffers, iovecs and the statx
    // buffer named by the entry are valid; each call is the syscall the
    // opcode names, with the entry's own arguments.
    let res: isize = unsafe {
        match code {
            c if is_rw_op(c) => rw(sqe, fd, Kind::File, false),
            opcode::Fsync::CODE => {
                if sqe.op_flags & 1 != 0 {
                    libc::fdatasync(fd) as isize
                } else {
                    libc::fsync(fd) as isize
                }
            }
            opcode::Fallocate::CODE => {
                libc::fallocate(fd, sqe.len as i32, sqe.off as i64, sqe.addr as i64) as isize
            }
            opcode::Fadvise::CODE => {
                let err =
                    libc::posix_fadvise(fd, sqe.off as i64, sqe.len as i64, sqe.op_flags as i32);
                if err != 0 {
                    return -err;
                }
                0
            }
            opcode::Ftruncate::CODE => libc::ftruncate(fd, sqe.off as i64) as isize,
            opcode::OpenAt::CODE => {
                libc::openat(fd, path, sqe.op_flags as i32, sqe.len as libc::c_uint) as isize
            }
            opcode::Statx::CODE => libc::statx(
                fd,
                path,
                sqe.op_flags as i32,
                sqe.len,
                sqe.off as *mut libc::statx,
            ) as isize,
            opcode::UnlinkAt::CODE => libc::unlinkat(fd, path, sqe.op_flags as i32) as isize,
            opcode::RenameAt::CODE => libc::syscall(
                libc::SYS_renameat2,
                fd,
                path,
                sqe.len as i32,
                sqe.off as *const libc::c_char,
                sqe.op_flags,
            ) as isize,
            opcode::MkDirAt::CODE => libc::mkdirat(fd, path, sqe.len as libc::mode_t) as isize,
            opcode::SymlinkAt::CODE => {
                libc::symlinkat(path, fd, sqe.off as *const libc::c_char) as isize
            }
            opcode::LinkAt::CODE => libc::linkat(
                fd,
                path,
                sqe.len as i32,
                sqe.off as *const libc::c_char,
                sqe.op_flags as i32,
            ) as isize,
            _ => return -libc::EOPNOTSUPP,
        }
    };
    ret(res)
}

/// Whether `fd` is a byte stream: a stream socket or a pipe (not a
/// datagram socket, whose short reads say nothing about its queue).
fn is_byte_stream(fd: RawFd) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int and its length into locals.
    let res = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if res == 0 {
        return ty == libc::SOCK_STREAM;
    }
    // Not a socket: a FIFO is a byte stream too; anything else, play safe.
    // SAFETY: fstat writes one `stat` into this zeroed local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `fd` is kept open by the op that names it.
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO }
}

/// The result of a connect that waited: `SO_ERROR`, as `-errno`.
fn so_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int and its length into locals.
    let res = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if res < 0 {
        return -last_errno();
    }
    -err
}

/// Reads an op's `__kernel_timespec`.
///
/// # Safety
///
/// `addr` points to a live `io_uring::types::Timespec` (same layout).
unsafe fn read_timespec(addr: u64) -> Duration {
    #[repr(C)]
    struct KernelTimespec {
        sec: i64,
        nsec: i64,
    }
    // SAFETY: the caller's contract.
    let ts = unsafe { std::ptr::read(addr as *const KernelTimespec) };
    Duration::new(ts.sec.max(0) as u64, ts.nsec.clamp(0, 999_999_999) as u32)
}

/// When a timeout of `ts` (relative, or absolute on CLOCK_MONOTONIC) ends.
fn deadline(ts: Duration, absolute: bool) -> Instant {
    let now = Instant::now();
    let rel = if absolute {
        let mut cur = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into a local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut cur) };
        let cur = Duration::new(cur.tv_sec as u64, cur.tv_nsec as u32);
        ts.saturating_sub(cur)
    } else {
        ts
    };
    // Far deadlines are clamped like the timer wheel's.
    now.checked_add(rel)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600))
}

/// `epoll_wait`'s timeout: milliseconds, rounded up (waking early would
/// spin), at most `i32::MAX`; -1 (forever) for `None`. In u64, seconds and
/// nanoseconds apart: `as_nanos` is a u128, whose division is a call into
/// compiler-builtins on every wait.
fn wait_ms(timeout: Option<Duration>) -> i32 {
    timeout.map_or(-1, |d| {
        let ms = d
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)));
        ms.min(i32::MAX as u64) as i32
    })
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `Some(errno)` if a syscall returning `res` failed.
#[inline]
fn errno_of(res: isize) -> Option<i32> {
    (res < 0).then(last_errno)
}

/// A syscall's return turned into a CQE result.
fn ret(res: isize) -> i32 {
    match errno_of(res) {
        Some(errno) => -errno,
        None => res as i32,
    }
}

fn cvt(res: i32) -> io::Result<i32> {
    if res < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_ms_rounds_up_and_saturates() {
        assert_eq!(wait_ms(None), -1);
        assert_eq!(wait_ms(Some(Duration::ZERO)), 0);
        assert_eq!(wait_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(wait_ms(Some(Duration::from_millis(2))), 2);
        assert_eq!(wait_ms(Some(Duration::new(1, 1_000_001))), 1002);
        assert_eq!(wait_ms(Some(Duration::from_secs(3_000_000))), i32::MAX);
        assert_eq!(wait_ms(Some(Duration::MAX)), i32::MAX);
    }
}
