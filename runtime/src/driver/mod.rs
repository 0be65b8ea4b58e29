//! The driver: the only layer that talks to the ring.
//!
//! Provides: ring set-up with the kernel's fast paths (`probe.rs`), a slot per
//! in-flight op keyed by `user_data`, submission (one `io_uring_enter` per loop
//! tick, a full SQ flushes and continues), reaping completions in batches,
//! cancellation, the cross-thread wake-up (an eventfd read kept posted on the
//! ring) and a shutdown that frees nothing the kernel may still touch.
//!
//! May not: know concrete op types, spawn or poll tasks. Wakers collected while
//! reaping, and abandoned ops with the CQEs for their `OpCode::abandon`, are
//! handed to the loop, which wakes and drops them after the driver borrow is
//! released, so no user code ever runs while the ring is borrowed.
//!
//! Files:
//! - `mod.rs`: the `Driver`: set-up, submission, polling ops, cancellation,
//!   park and `io_uring_enter`, dispatch of completions, shutdown.
//! - `slot.rs`: the op slots, their `Lifecycle`, and `complete`, the one
//!   place a CQE moves a slot on.
//! - `context.rs`: the functions ops reach the current core's driver
//!   through (`with_driver`, `abandon`, `close_fd`); the driver itself sits
//!   in the core's context (`crate::context`).
//! - `unpark.rs`: `Unparker`, the wake-up of a parked core from any thread.
//! - `park.rs`: the `parked` flag protocol under it (checked by loom).
//! - `fork.rs`: detecting a driver inherited by a forked child.
//! - `register.rs`: resources registered with the ring (buffer rings, the
//!   fixed buffer and file tables, the ring fd).
//! - `tables.rs`: which entries of those two tables percore has taken.
//! - `syscall.rs`: the raw `io_uring_enter` flags and argument.
//! - `op.rs`: the `OpCode` trait and the `Op` futures.
//! - `probe.rs`: ring set-up and what the kernel supports (`Capabilities`).
//! - `epoll.rs`: the readiness backend that runs the same entries on epoll.
//! - `stats.rs`: the driver's counters.

mod context;
mod epoll;
mod fork;
pub(crate) mod op;
mod park;
pub(crate) mod probe;
mod register;
mod slot;
mod stats;
mod syscall;
mod tables;
mod unpark;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{self, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

pub(crate) use self::context::{
    abandon, close_fd, current_capabilities, current_id, current_tick, try_with_driver,
    with_driver, with_ring,
};
pub(crate) use self::epoll::DirectWait;
use self::epoll::{Cqe, Epoll};
use self::fork::{FORK_GENERATION, watch_forks};
use self::op::{Abandoned, CqeResult, DirectTarget};
use self::park::ParkFlag;
pub use self::probe::{Capabilities, DriverKind};
use self::register::register_ring_fd;
#[cfg(feature = "tracing")]
use self::slot::warn_if_slow;
use self::slot::{CqeQueue, Finished, Lifecycle, SlotMeta, complete};
pub use self::stats::{DriverStats, OpCounts, opcode_name};
use self::syscall::{
    ENTER_EXT_ARG, ENTER_GETEVENTS, ENTER_REGISTERED_RING, ENTER_SQ_WAKEUP, GeteventsArg,
    is_transient,
};
use self::tables::Tables;
pub use self::tables::{BUF_TABLE_SLOTS, FILE_TABLE_SLOTS};
use self::unpark::Unparker;
use crate::buf::ProvidedBuf;

/// `user_data` of the eventfd read that wakes a core parked in `io_uring_enter`.
const WAKE: u64 = u64::MAX - 1;
/// `user_data` of the park timeout on kernels without `IORING_FEAT_EXT_ARG`.
const PARK_TIMEOUT: u64 = u64::MAX - 2;
/// `user_data` of the completion another core posts with `IORING_OP_MSG_RING`
/// to wake this one; it carries nothing but the wake-up itself.
const WAKE_MSG: u64 = u64::MAX - 3;
/// Tag of a linked timeout's `user_data`; the low bits key its timespec.
const LINK_TIMEOUT: u64 = 1 << 62;
/// How many completions a park with a min-wait asks for: it returns once
/// that many are there, or when the min-wait has passed and at least one is.
/// Waiting for one would end the wait at the first completion, so no batch
/// would form; more than a loop turn handles well is no use.
const MIN_WAIT_BATCH: u32 = 64;
/// The overall timeout of a park with a min-wait and no timer due: without
/// one the kernel ends the wait when the min-wait passes, with or without a
/// completion, and an idle core would wake every min-wait. The loop parks
/// again when it passes.
const MIN_WAIT_IDLE: Duration = Duration::from_secs(3600);
/// Tag of fire-and-forget entries whose results nobody needs (async-cancel,
/// close of a dropped fd); the low byte is the opcode, for the counters.
const DETACHED: u64 = 1 << 61;

/// Ring options chosen by the runtime builder.
#[derive(Clone, Debug)]
pub(crate) struct DriverConfig {
    pub entries: u32,
    pub sqpoll_idle: Option<Duration>,
    pub defer_taskrun: bool,
    pub coop_taskrun: bool,
    pub register_ring_fd: bool,
    /// Pretend the kernel has none of the optional features (tests the fallbacks).
    pub minimal: bool,
    /// With the `tracing` feature: warn about ops in flight longer than this.
    pub slow_op: Option<Duration>,
    /// Which backend to run.
    pub driver: DriverKind,
    /// The batch wait of [`crate::Builder::min_wait`] (`None`: off).
    pub min_wait: Option<Duration>,
}

/// How the driver talks to the kernel: the io_uring itself, or the
/// readiness backend that performs the same entries on epoll.
enum Backend {
    IoUring(IoUring),
    Epoll(Epoll),
}

/// What [`Driver::start`] did with an op.
pub(crate) enum Started {
    /// It finished inside the call (the epoll backend): its completion.
    Done(CqeResult),
    /// It goes on in this slot.
    Slot(usize),
}

/// What [`Driver::recv_direct`] did with an on-demand receive.
pub(crate) enum StartedMulti {
    /// A receive the epoll backend made inside the call: its completion
    /// (a second, if the data went on into the next buffer, is left in the
    /// caller's `pending`); the op is re-armed by its next poll. With the
    /// fd if the op's [`DirectWait`] already waits for it (as `Direct`).
    Done {
        first: DirectDone,
        waiting: Option<RawFd>,
    },
    /// The op's [`DirectWait`] waits for `fd` to turn readable: its waker
    /// is woken then, and the op polls again.
    Direct { fd: RawFd },
    /// The tick's inline budget is spent: the task was woken to poll again.
    Yield,
}

/// The first completion of a direct receive ([`StartedMulti::Done`]).
pub(crate) enum DirectDone {
    /// Data, accounted with the op's ring and handed out as its buffer:
    /// no completion to decode and check again.
    Data(ProvidedBuf),
    /// The end of stream (0) or an error (`-errno`, `-ENOBUFS` when the
    /// ring is empty), which name no buffer: the completion's result.
    End(i32),
}

pub(crate) struct Driver {
    /// Unique among all drivers of the process: an op remembers it, so that
    /// it is never polled, cancelled or abandoned on another runtime's ring.
    id: u64,
    ring: Backend,
    /// Completions taken from the epoll backend, reaped like a CQ.
    epoll_cq: VecDeque<Cqe>,
    slots: Slab<Lifecycle>,
    /// Indexed like `slots`: the opcode (and queue time) of each slot's op.
    meta: Vec<SlotMeta>,
    /// Wakers collected while reaping; woken by the loop outside the borrow.
    wakes: Vec<Waker>,
    /// Ops whose final CQE arrived after they were abandoned; dropped by the
    /// loop outside the borrow, since dropping them may close an fd.
    garbage: Vec<Finished>,
    enter_fd: RawFd,
    enter_flags: u32,
    caps: Rc<Capabilities>,
    unparker: Arc<Unparker>,
    wake_buf: Box<u64>,
    wake_armed: bool,
    park_ts: Box<types::Timespec>,
    /// The batch wait each park passes (`IORING_FEAT_MIN_TIMEOUT`), in
    /// microseconds; 0: off.
    min_wait_usec: u32,
    /// Park timeouts (kernels without `EXT_ARG`) queued whose CQE has not
    /// arrived: the next park removes a pending one before queuing its own,
    /// so they never pile up.
    park_timeouts: u32,
    /// A completion of the driver's own (a wake-up, a park timeout) was
    /// reaped since the last park began: the loop has work to look at.
    driver_woke: bool,
    /// Timespecs of linked timeouts, kept until their own CQE: with SQPOLL
    /// the kernel reads them after `io_uring_enter` returns.
    link_timeouts: Slab<Box<types::Timespec>>,
    /// Provided-buffer rings registered here, told of each of their CQEs.
    buf_groups: register::BufGroups,
    stats: DriverStats,
    #[cfg(feature = "tracing")]
    slow_op: Option<Duration>,
    /// Set once `shutdown` has released the slots: completions of ops it
    /// leaked may still arrive and are ignored.
    shut_down: bool,
    /// The entries of the registered buffer and file tables in use.
    tables: Tables,
    /// The process that built the ring, and [`FORK_GENERATION`] then.
    pid: u32,
    fork_generation: u64,
}

impl Driver {
    pub(crate) fn new(config: &DriverConfig) -> io::Result<Driver> {
        let (ring, caps) = match config.driver {
            DriverKind::IoUring => {
                let (ring, caps) = probe::setup(config)?;
                (Backend::IoUring(ring), caps)
            }
            DriverKind::Epoll => (Backend::Epoll(Epoll::new()?), probe::epoll(config, None)),
            DriverKind::Auto => match probe::setup(config) {
                Ok((ring, caps)) => (Backend::IoUring(ring), caps),
                // Every way the ring can be refused (EPERM from a seccomp
                // profile, ENOSYS, the sysctl, memlock) is this kind.
                Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                    warn_fallback(&err);
                    (
                        Backend::Epoll(Epoll::new()?),
                        probe::epoll(config, Some(err.to_string())),
                    )
                }
                Err(err) => return Err(err),
            },
        };
        let mut enter_fd = -1;
        let mut enter_flags = 0;
        if let Backend::IoUring(ring) = &ring {
            enter_fd = ring.as_raw_fd();
            if config.register_ring_fd
                && caps.registered_ring_fd
                && let Ok(index) = register_ring_fd(ring.as_raw_fd())
            {
                enter_fd = index;
                enter_flags = ENTER_REGISTERED_RING;
            }
        }
        // SAFETY: eventfd(2) returns a new descriptor or -1; checked below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `efd` is open (checked above) and fresh: nothing else owns it.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let wake_ring = match &ring {
            Backend::IoUring(ring) if caps.msg_ring => {
                // SAFETY: `ring` (alive on this frame) owns the descriptor, so
                // it is open for the borrow, which ends on this line; the
                // duplicate is a new descriptor, owned by the unparker.
                Some(unsafe { BorrowedFd::borrow_raw(ring.as_raw_fd()) }.try_clone_to_owned()?)
            }
            _ => None,
        };
        let min_wait_usec = probe::min_wait_usec(config.min_wait, &caps);
        let mut caps = caps;
        if min_wait_usec > 0 {
            caps.min_wait = Some(Duration::from_micros(min_wait_usec.into()));
        } else if config.min_wait.is_some_and(|d| !d.is_zero()) {
            warn_min_wait_ignored(&caps);
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        watch_forks();
        Ok(Driver {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ring,
            epoll_cq: VecDeque::new(),
            slots: Slab::with_capacity(256),
            meta: Vec::with_capacity(256),
            wakes: Vec::with_capacity(64),
            garbage: Vec::new(),
            enter_fd,
            enter_flags,
            caps: Rc::new(caps),
            unparker: Arc::new(Unparker {
                eventfd,
                ring: wake_ring,
                parked: ParkFlag::new(),
            }),
            wake_buf: Box::new(0),
            wake_armed: false,
            park_ts: Box::new(types::Timespec::new()),
            min_wait_usec,
            park_timeouts: 0,
            driver_woke: false,
            link_timeouts: Slab::new(),
            buf_groups: register::BufGroups::default(),
            stats: DriverStats::default(),
            #[cfg(feature = "tracing")]
            slow_op: config.slow_op,
            shut_down: false,
            tables: Tables::default(),
            pid: std::process::id(),
            fork_generation: FORK_GENERATION.load(Ordering::Relaxed),
        })
    }

    pub(crate) fn capabilities(&self) -> Rc<Capabilities> {
        self.caps.clone()
    }

    pub(crate) fn unparker(&self) -> Arc<Unparker> {
        self.unparker.clone()
    }

    pub(crate) fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Whether the kernel has completions (or completion work) waiting for
    /// this core, without entering the kernel to find out.
    pub(crate) fn work_pending(&mut self) -> bool {
        // Even a look writes the queue's head or tail back when its handle
        // drops: in a forked child that could move the parent's backwards.
        if self.inherited() {
            return false;
        }
        let ring = match &mut self.ring {
            Backend::IoUring(ring) => ring,
            Backend::Epoll(e) => return e.work_pending(),
        };
        let cq_ready = {
            let mut cq = ring.completion();
            cq.sync();
            !cq.is_empty()
        };
        let sq = ring.submission();
        cq_ready || sq.taskrun() || sq.cq_overflow()
    }

    /// The system call a failed enter names in its error: the ring's, or
    /// the readiness wait the epoll backend makes.
    pub(crate) fn enter_syscall(&self) -> &'static str {
        match self.ring {
            Backend::IoUring(_) => "io_uring_enter",
            Backend::Epoll(_) => "epoll_wait",
        }
    }

    /// This driver's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Number of ops the kernel still owns (in flight or abandoned), and
    /// on the epoll backend the receives that wait for readiness with no
    /// slot (see [`Driver::recv_direct`]).
    pub(crate) fn in_flight(&self) -> usize {
        let direct = match &self.ring {
            Backend::Epoll(e) => e.direct_readers(),
            Backend::IoUring(_) => 0,
        };
        self.slots.len() + direct
    }

    /// Queues an op and returns its slot.
    ///
    /// Either the op's slot is taken and its SQE queued, or (if a full SQ
    /// cannot be flushed and this panics) neither: see [`Driver::reserve`].
    /// [`Driver::start`] is the one caller: on the epoll backend it starts
    /// the op at once instead.
    fn submit(&mut self, sqe: squeue::Entry, waker: Waker) -> usize {
        self.reserve(1);
        let idx = self.slots.insert(Lifecycle::Waiting { waker, first: None });
        let sqe = self.slot_entry(idx, sqe, squeue::Flags::empty());
        self.push_reserved(&[sqe]);
        idx
    }

    /// Starts an op: on the epoll backend inside this call, where one that
    /// finishes at once comes back as [`Started::Done`] with no slot, waker
    /// clone or wake-up; anything else gets a slot, as [`Driver::submit`].
    pub(crate) fn start(&mut self, sqe: squeue::Entry, waker: &Waker) -> Started {
        if matches!(self.ring, Backend::Epoll(_)) && !self.shut_down {
            return self.start_inline(sqe, waker);
        }
        Started::Slot(self.submit(sqe, waker.clone()))
    }

    /// A plain send of `buf` on `fd` made now, on the epoll backend, with no
    /// entry, slot or completion (`Epoll::try_send`); counted as a send op
    /// that completed at once. `None` on io_uring, or where the backend
    /// cannot try it now: the caller then sends with an op.
    pub(crate) fn try_send(&mut self, fd: RawFd, buf: &[u8]) -> Option<io::Result<usize>> {
        let Backend::Epoll(e) = &mut self.ring else {
            return None;
        };
        if self.shut_down {
            return None;
        }
        let res = e.try_send(fd, buf)?;
        let code = io_uring::opcode::Send::CODE;
        self.stats.submitted = e.started();
        self.stats.completed += 1;
        self.stats.ops.on_submit(code);
        self.stats.ops.on_complete(code);
        Some(res)
    }

    /// Starts an op on the epoll backend under the slot index it would
    /// take, and takes the slot only if the op goes on: an op that
    /// finishes at once needs none (its counters and a buffer ring's
    /// accounting run as for any completion, [`Driver::account`]).
    fn start_inline(&mut self, sqe: squeue::Entry, waker: &Waker) -> Started {
        // The SQ's room is no concern here (the backend's queue grows); a
        // forked child, which must not touch the parent's epoll set, never
        // gets here (`with_driver` refuses it).
        let idx = self.slots.vacant_key();
        let opcode = sqe.get_opcode() as u8;
        let sqe = sqe.user_data(idx as u64);
        self.stats.ops.on_submit(opcode);
        let Backend::Epoll(e) = &mut self.ring else {
            unreachable!("checked by the caller");
        };
        // SAFETY: as for the ring in `push_reserved`: the backend uses the
        // entry's pointers only until its completion is reaped, and a
        // completion returned here ends that at once. Nothing takes a slot
        // before the insert below, so the index the entry carries is the
        // one its slot gets.
        let done = unsafe { e.start_inline(&sqe) };
        self.stats.submitted = e.started();
        match done {
            Some(cqe) => {
                // What `account` does for a slot's completion, without the
                // slot's record (an op that needs no slot writes none).
                self.stats.completed += 1;
                self.stats.ops.on_complete(opcode);
                let buf_offset = match register::selected_group(&sqe) {
                    Some(bgid) => self.buf_groups.on_cqe(bgid, cqe.res, cqe.flags),
                    None => 0,
                };
                let mut res = CqeResult::new(cqe.res, cqe.flags);
                res.buf_offset = buf_offset;
                Started::Done(res)
            }
            None => {
                // Its completions are reaped later, and read this record.
                self.record_meta(idx, &sqe);
                let slot = self.slots.insert(Lifecycle::Waiting {
                    waker: waker.clone(),
                    first: None,
                });
                debug_assert_eq!(slot, idx, "the slot the entry names");
                Started::Slot(idx)
            }
        }
    }

    /// Remembers the opcode of the op in slot `idx` and tags its SQE with
    /// the slot.
    fn slot_entry(
        &mut self,
        idx: usize,
        sqe: squeue::Entry,
        flags: squeue::Flags,
    ) -> squeue::Entry {
        self.record_meta(idx, &sqe);
        sqe.user_data(idx as u64).flags(flags)
    }

    /// Remembers the opcode (and buffer group) of the op in slot `idx`.
    fn record_meta(&mut self, idx: usize, sqe: &squeue::Entry) {
        let meta = SlotMeta {
            opcode: sqe.get_opcode() as u8,
            bgid: register::selected_group(sqe),
            #[cfg(feature = "tracing")]
            queued: std::time::Instant::now(),
        };
        match self.meta.get_mut(idx) {
            Some(m) => *m = meta,
            None => {
                // Slab indexes are dense: `idx` is at most one past the end.
                self.meta.resize(idx + 1, meta);
            }
        }
    }

    /// Queues an op linked to a timeout (`IORING_OP_LINK_TIMEOUT`): if it has
    /// not completed after `timeout`, the kernel cancels it (`ECANCELED`).
    ///
    /// The two entries are queued together or not at all: room for both is
    /// made first (the only step that can fail), and they are published with
    /// one update of the SQ tail, so neither the kernel nor an SQPOLL thread
    /// can take the op without its timeout.
    pub(crate) fn submit_with_timeout(
        &mut self,
        sqe: squeue::Entry,
        waker: Waker,
        timeout: Duration,
    ) -> usize {
        self.reserve(2);
        let idx = self.slots.insert(Lifecycle::Waiting { waker, first: None });
        let key = self
            .link_timeouts
            .insert(Box::new(types::Timespec::from(timeout)));
        let ts: *const types::Timespec = &*self.link_timeouts[key];
        let sqe = self.slot_entry(idx, sqe, squeue::Flags::IO_LINK);
        let link = opcode::LinkTimeout::new(ts)
            .build()
            .user_data(LINK_TIMEOUT | key as u64);
        self.push_reserved(&[sqe, link]);
        idx
    }

    /// An on-demand receive into a buffer ring ([`DirectTarget`]), made
    /// inside this call on the epoll backend (`Epoll::recv_ring`), with no
    /// entry, slot or completion queue; `wait` is the op's, for waiting on
    /// the fd. `None` on io_uring, or where the backend cannot take it: the
    /// op is then armed as an entry ([`Driver::submit_multishot`]).
    ///
    /// # Panics
    ///
    /// If the target's ring is registered with another driver.
    #[inline]
    pub(crate) fn recv_direct(
        &mut self,
        target: &DirectTarget,
        hint: &mut usize,
        waker: &Waker,
        wait: &Rc<DirectWait>,
        pending: &mut Option<ProvidedBuf>,
    ) -> Option<StartedMulti> {
        // (A forked child never gets here: `with_driver` refuses it.)
        let Backend::Epoll(e) = &mut self.ring else {
            return None;
        };
        if self.shut_down {
            return None;
        }
        assert!(
            target.ring == self.id,
            "percore: a RecvMulti was armed on a different runtime than the one its BufRing is registered with"
        );
        // SAFETY: as in `start_inline`: the group is one the op keeps
        // registered here (its `BufRing`, checked just above), and a
        // completion returned here ends the receive's use of its buffer.
        unsafe { e.recv_ring(target, hint, waker, wait, pending, &mut self.stats) }
    }

    /// Takes back the waker a direct receive on the epoll backend left
    /// (see [`Driver::recv_direct`]), for the caller to drop.
    pub(crate) fn unpark_direct(&mut self, fd: RawFd, wait: &Rc<DirectWait>) -> Option<Waker> {
        match &mut self.ring {
            Backend::Epoll(e) => e.unpark_direct(fd, wait),
            Backend::IoUring(_) => None,
        }
    }

    /// Queues a multishot op and returns its slot.
    pub(crate) fn submit_multishot(&mut self, sqe: squeue::Entry, waker: Waker) -> usize {
        self.reserve(1);
        let idx = self.slots.insert(Lifecycle::Multishot {
            cqes: CqeQueue::default(),
            waker: Some(waker),
            finished: false,
        });
        let sqe = self.slot_entry(idx, sqe, squeue::Flags::empty());
        self.push_reserved(&[sqe]);
        idx
    }

    /// Wakes the core parked on ring `target` with a MSG_RING entry, handed
    /// to the kernel at once. Left in this core's SQ, it would wait for this
    /// core's next `io_uring_enter` while the target's `parked` flag is
    /// already clear (so no other waker signals it): a core that wakes
    /// another and then blocks or computes would stall it for as long.
    /// Returns false if this kernel cannot, `target` is this very ring, or
    /// the entry is still queued after the enter (it then goes with the next
    /// one, and the caller signals the eventfd too).
    fn post_wake(&mut self, target: RawFd) -> bool {
        let Backend::IoUring(ring) = &self.ring else {
            return false;
        };
        if !self.caps.msg_ring || target == ring.as_raw_fd() {
            return false;
        }
        let sqe = opcode::MsgRingData::new(types::Fd(target), 0, WAKE_MSG, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        self.submit_detached(sqe);
        if self.enter(0, 0, None).is_err() {
            return false;
        }
        // The kernel stops taking entries at one it cannot even start (no
        // SUBMIT_ALL); an SQPOLL thread takes them on its own.
        let Backend::IoUring(ring) = &mut self.ring else {
            return false;
        };
        ring.params().is_setup_sqpoll() || ring.submission().is_empty()
    }

    /// Queues an entry whose completion nobody waits for (e.g. closing a dropped fd).
    pub(crate) fn submit_detached(&mut self, sqe: squeue::Entry) {
        let opcode = sqe.get_opcode() as u64;
        self.push(sqe.user_data(DETACHED | opcode));
    }

    /// Queues one SQE of the driver's own (its memory is the driver's, or
    /// none); a full SQ is flushed to the kernel first.
    fn push(&mut self, sqe: squeue::Entry) {
        self.reserve(1);
        self.push_reserved(&[sqe]);
    }

    /// Makes room for `n` entries in the SQ, handing a full SQ to the kernel
    /// as often as it takes. Pushes nothing: if a flush fails for good (a
    /// fatal errno) it panics before any entry of the caller's submission is
    /// queued or any slot taken, so a submission is queued whole or not at
    /// all, and no SQE is ever left behind for an op whose future is still
    /// idle (and whose buffer its owner may free).
    fn reserve(&mut self, n: usize) {
        // The SQ is shared memory: a forked child must not write into it.
        if self.inherited() {
            panic!("{}", self.fork_error());
        }
        loop {
            let free = match &mut self.ring {
                Backend::IoUring(ring) => {
                    let sq = ring.submission();
                    sq.capacity() - sq.len()
                }
                // Its queue grows as needed.
                Backend::Epoll(_) => return,
            };
            // Only the kernel takes entries out (an SQPOLL thread at any
            // time), so the room found here stays until the push.
            if free >= n {
                return;
            }
            self.flush_full_sq();
        }
    }

    /// Queues `sqes`, for which [`Driver::reserve`] made room, with one
    /// update of the SQ tail: the kernel sees all of them or none.
    fn push_reserved(&mut self, sqes: &[squeue::Entry]) {
        for sqe in sqes {
            self.stats.ops.on_submit(sqe.get_opcode() as u8);
        }
        let ring = match &mut self.ring {
            Backend::IoUring(ring) => ring,
            Backend::Epoll(e) => {
                // SAFETY: as for the ring below: the backend uses the
                // entries' pointers only until their completions are reaped.
                unsafe { e.push(sqes) };
                return;
            }
        };
        let mut sq = ring.submission();
        // SAFETY: every pointer in `sqes` stays valid until the entry's own
        // CQE (or forever):
        // - an op's entry points only into the op (the `OpCode` contract).
        //   Its slot was taken just before this push, and nothing between
        //   here and the caller's `Op` future recording the slot can fail
        //   (room was reserved first, and this push cannot fail); from then
        //   on the future owns the op and its drop moves the op into the
        //   slot (`drop_op`), which is freed only after the final CQE, or
        //   leaked by `shutdown`. An op dropped on another thread's runtime
        //   or after its runtime is leaked (`abandon`).
        // - a linked timeout points into its box in `link_timeouts`, removed
        //   only by its own CQE, and leaked by `shutdown` if still pending.
        // - the driver's own entries point into `wake_buf` and `park_ts`,
        //   boxes of the driver declared after `ring`, so they outlive it
        //   (and `shutdown` leaks `wake_buf` while its read is posted), or
        //   into nothing (cancel, close, msg_ring).
        let pushed = unsafe { sq.push_multiple(sqes) };
        // Dropping `sq` publishes the new tail, once for all of `sqes`.
        if pushed.is_err() {
            unreachable!("no room for {} SQEs after reserving it", sqes.len());
        }
    }

    /// Hands a full SQ to the kernel in the middle of a tick.
    fn flush_full_sq(&mut self) {
        self.stats.sq_full += 1;
        if let Err(err) = self.enter(0, ENTER_GETEVENTS, None) {
            // EBUSY/EAGAIN: the kernel wants the CQ drained first.
            if !is_transient(&err) {
                panic!("io_uring_enter failed while flushing a full SQ: {err}");
            }
        }
        self.dispatch_completions();
    }

    /// Polls a single-shot op.
    pub(crate) fn poll_op(&mut self, idx: usize, cx: &mut Context<'_>) -> Poll<CqeResult> {
        let slot = self
            .slots
            .get_mut(idx)
            .unwrap_or_else(|| panic!("poll of unknown op slot {idx}"));
        match slot {
            Lifecycle::Waiting { waker, .. } => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            Lifecycle::Completed(_) => match self.slots.remove(idx) {
                Lifecycle::Completed(cqe) => Poll::Ready(cqe),
                _ => unreachable!(),
            },
            _ => panic!("unexpected lifecycle for op slot {idx}"),
        }
    }

    /// Polls a multishot op: the next completion and whether it is the last.
    pub(crate) fn poll_multishot(
        &mut self,
        idx: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(CqeResult, bool)>> {
        let Some(Lifecycle::Multishot {
            cqes,
            waker,
            finished,
        }) = self.slots.get_mut(idx)
        else {
            panic!("unexpected lifecycle for multishot slot {idx}");
        };
        if let Some(cqe) = cqes.pop_front() {
            let last = *finished && cqes.is_empty();
            if last {
                self.slots.remove(idx);
            }
            return Poll::Ready(Some((cqe, last)));
        }
        if *finished {
            self.slots.remove(idx);
            return Poll::Ready(None);
        }
        match waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Asks the kernel to cancel the op in `idx`; its CQE still arrives.
    pub(crate) fn cancel(&mut self, idx: usize) {
        if matches!(
            self.slots.get(idx),
            Some(
                Lifecycle::Waiting { .. }
                    | Lifecycle::Multishot {
                        finished: false,
                        ..
                    }
            )
        ) {
            self.cancel_raw(idx);
        }
    }

    /// Takes over an op whose future was dropped. Returns the op if the kernel
    /// is already done with it; the caller drops it outside the driver borrow,
    /// which runs its `abandon` on the CQEs it got.
    fn drop_op(&mut self, idx: usize, op: Box<dyn Abandoned>) -> Option<Finished> {
        let slot = self
            .slots
            .get_mut(idx)
            .unwrap_or_else(|| panic!("drop of unknown op slot {idx}"));
        match slot {
            Lifecycle::Waiting { first, .. } => {
                let cqes = first.take().into_iter().collect();
                *slot = Lifecycle::Cancelled { op, cqes };
                self.cancel_raw(idx);
                None
            }
            Lifecycle::Completed(_) => {
                let Lifecycle::Completed(cqe) = self.slots.remove(idx) else {
                    unreachable!()
                };
                Some(Finished {
                    op,
                    cqes: vec![cqe],
                })
            }
            Lifecycle::Multishot { cqes, finished, .. } => {
                let cqes = cqes.take_all();
                if *finished {
                    self.slots.remove(idx);
                    Some(Finished { op, cqes })
                } else {
                    *slot = Lifecycle::Cancelled { op, cqes };
                    self.cancel_raw(idx);
                    None
                }
            }
            Lifecycle::Cancelled { .. } => panic!("op slot {idx} dropped twice"),
        }
    }

    fn cancel_raw(&mut self, idx: usize) {
        self.submit_detached(opcode::AsyncCancel::new(idx as u64).build());
    }

    /// Submits queued SQEs and reaps completions without waiting.
    pub(crate) fn submit_and_reap(&mut self) -> io::Result<()> {
        self.stats.ticks += 1;
        #[cfg(feature = "tracing")]
        let before = self.stats;
        match self.enter(0, ENTER_GETEVENTS, None) {
            Ok(()) => {}
            Err(err) if is_transient(&err) => {}
            Err(err) => return Err(err),
        }
        self.dispatch_completions();
        #[cfg(feature = "tracing")]
        self.trace_tick(&before, false);
        Ok(())
    }

    /// The per-tick TRACE event: what this tick handed to and took from the ring.
    #[cfg(feature = "tracing")]
    fn trace_tick(&self, before: &DriverStats, parked: bool) {
        tracing::trace!(
            target: "percore::driver",
            submitted = self.stats.submitted - before.submitted,
            completed = self.stats.completed - before.completed,
            enters = self.stats.enters - before.enters,
            parked,
            in_flight = self.slots.len(),
            "tick"
        );
    }

    /// Hands queued SQEs to the kernel, if any, without reaping; their
    /// completions are dispatched by a later tick or by shutdown.
    pub(crate) fn flush_queued(&mut self) {
        // See `work_pending`: a forked child must not even look.
        if self.inherited() {
            return;
        }
        if self.queued() > 0 {
            // A failure here leaves the entries queued for the next enter.
            let _ = self.enter(0, 0, None);
        }
    }

    /// Submits queued SQEs and waits for at least one completion, a wake-up
    /// from another thread, or the timeout, in one `io_uring_enter`.
    ///
    /// `timeout` counts from `since`. A wait ended only by completions that
    /// wake no task (a send whose caller did not wait for it, as hyper's
    /// flush on `percore_net`'s `Compat`) waits again, for what is left of
    /// the timeout, in this same park: a turn of the loop would find
    /// nothing to run.
    pub(crate) fn park(&mut self, timeout: Option<Duration>, since: Instant) -> io::Result<()> {
        self.stats.ticks += 1;
        self.stats.parks += 1;
        #[cfg(feature = "tracing")]
        let before = self.stats;
        self.driver_woke = false;
        let mut completed = self.stats.completed;
        let mut res = self.park_for(1, timeout, self.min_wait_usec);
        // Only a wait that reaped completions, all of them quiet, waits
        // again: one ended without any (the timeout, a signal, a wake-up
        // the epoll backend takes itself) returns.
        while res.is_ok() && self.stats.completed != completed && self.reaped_nothing_to_run() {
            completed = self.stats.completed;
            let left = match timeout {
                None => None,
                Some(t) => match t.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => break,
                },
            };
            res = self.park_for(1, left, self.min_wait_usec);
        }
        #[cfg(feature = "tracing")]
        self.trace_tick(&before, true);
        res
    }

    /// Whether what the last wait reaped leaves the loop nothing to do: no
    /// waker to run, no abandoned op to drop, no wake-up or timeout of the
    /// driver's own.
    fn reaped_nothing_to_run(&self) -> bool {
        self.wakes.is_empty() && self.garbage.is_empty() && !self.driver_woke
    }

    /// Like [`Driver::park`], waiting for `want` completions: with
    /// DEFER_TASKRUN the kernel runs only a bounded batch of completion work
    /// per `io_uring_enter` once the wait is satisfied, so draining many
    /// completions at once wants a larger `want`.
    ///
    /// With `min_wait_usec` > 0 (only where the ring has
    /// `IORING_FEAT_MIN_TIMEOUT`) the wait batches: see [`Driver::batch_wait`].
    fn park_for(
        &mut self,
        want: u32,
        timeout: Option<Duration>,
        min_wait_usec: u32,
    ) -> io::Result<()> {
        if !self.wake_armed {
            let sqe = opcode::Read::new(
                types::Fd(self.unparker.eventfd.as_raw_fd()),
                (&mut *self.wake_buf as *mut u64).cast(),
                8,
            )
            .build()
            .user_data(WAKE);
            self.push(sqe);
            self.wake_armed = true;
        }
        // Completions reaped while a full SQ was flushed this tick (while
        // tasks queued ops, or just now arming the wake-up read) already
        // have wakers waiting to run: waiting for more could sleep forever.
        let reaped = |d: &Driver| !d.wakes.is_empty() || !d.garbage.is_empty();
        let res = match timeout {
            _ if reaped(self) => self.enter(0, ENTER_GETEVENTS, None),
            _ if min_wait_usec > 0 => self.batch_wait(want, timeout, min_wait_usec),
            Some(dur) if self.caps.ext_arg => self.enter(want, ENTER_GETEVENTS, Some(dur)),
            Some(dur) => {
                // The previous park's timeout is still pending when that park
                // ended for another reason: remove it first (the kernel runs
                // the removal before the new timeout, in queue order), or one
                // would be left in the kernel per park until its deadline.
                if self.park_timeouts > 0 {
                    self.submit_detached(opcode::TimeoutRemove::new(PARK_TIMEOUT).build());
                }
                *self.park_ts = types::Timespec::from(dur);
                let sqe = opcode::Timeout::new(&*self.park_ts as *const _)
                    .build()
                    .user_data(PARK_TIMEOUT);
                self.push(sqe);
                self.park_timeouts += 1;
                let wait = if reaped(self) { 0 } else { want };
                self.enter(wait, ENTER_GETEVENTS, None)
            }
            None => self.enter(want, ENTER_GETEVENTS, None),
        };
        match res {
            Ok(()) => {}
            Err(err) if is_transient(&err) || err.raw_os_error() == Some(libc::ETIME) => {}
            Err(err) => return Err(err),
        }
        self.dispatch_completions();
        Ok(())
    }

    /// A wait with the kernel's min-wait (6.12, "io_uring: add support for
    /// batch wait timeout"): it ends once `MIN_WAIT_BATCH` completions are
    /// there; or when the min-wait, counted from the start of the wait, has
    /// passed and at least one is (one arriving later ends it at once); or at
    /// the overall timeout. So no completion waits more than the min-wait
    /// for the park to end.
    ///
    /// The kernel arms its timer for the min-wait first, even when the
    /// overall timeout is shorter: the min-wait is cut to the timeout here,
    /// so a timer due sooner is not fired late.
    fn batch_wait(
        &mut self,
        want: u32,
        timeout: Option<Duration>,
        min_wait_usec: u32,
    ) -> io::Result<()> {
        let min_wait_usec = match timeout {
            Some(t) => min_wait_usec.min(t.as_micros().min(u32::MAX as u128) as u32),
            None => min_wait_usec,
        };
        if min_wait_usec == 0 {
            // A timer due within the microsecond: a plain wait.
            return self.enter(want, ENTER_GETEVENTS, timeout);
        }
        let timeout = timeout.unwrap_or(MIN_WAIT_IDLE);
        self.enter_ext(
            want.max(MIN_WAIT_BATCH),
            ENTER_GETEVENTS,
            Some(timeout),
            min_wait_usec,
        )
    }

    /// How many entries wait in the io_uring SQ for the tick's next
    /// `io_uring_enter` (see [`crate::op::lone_sender`]); `None` on the
    /// epoll backend, which has no such batch.
    pub(crate) fn sq_pending(&mut self) -> Option<usize> {
        match self.ring {
            Backend::IoUring(_) => Some(self.queued()),
            Backend::Epoll(_) => None,
        }
    }

    /// Entries queued and not yet handed to the kernel (or started by the
    /// epoll backend).
    fn queued(&mut self) -> usize {
        match &mut self.ring {
            Backend::IoUring(ring) => ring.submission().len(),
            Backend::Epoll(e) => e.queued(),
        }
    }

    /// One `io_uring_enter`: submits everything queued, runs deferred task
    /// work, and with `min_complete` > 0 waits (at most `timeout`, which
    /// needs `IORING_FEAT_EXT_ARG`). On the epoll backend: starts the queued
    /// entries and collects readiness, waiting likewise.
    fn enter(
        &mut self,
        min_complete: u32,
        flags: u32,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.enter_ext(min_complete, flags, timeout, 0)
    }

    /// [`Driver::enter`] with a min-wait in the extended argument (only
    /// with a `timeout`, on a ring with `IORING_FEAT_MIN_TIMEOUT`; ignored
    /// by the epoll backend).
    fn enter_ext(
        &mut self,
        min_complete: u32,
        mut flags: u32,
        timeout: Option<Duration>,
        min_wait_usec: u32,
    ) -> io::Result<()> {
        if self.inherited() {
            return Err(self.fork_error());
        }
        let ring = match &mut self.ring {
            Backend::IoUring(ring) => ring,
            Backend::Epoll(e) => {
                self.stats.enters += 1;
                #[cfg(feature = "fault-injection")]
                if let Some(err) = crate::fault::take_enter() {
                    return Err(err);
                }
                let wait = min_complete > 0 && flags & ENTER_GETEVENTS != 0;
                let res = e.enter(wait, timeout);
                e.take_wakes(&mut self.wakes);
                self.stats.submitted = e.started();
                return res;
            }
        };
        let to_submit = ring.submission().len() as u32;
        if ring.params().is_setup_sqpoll() {
            std::sync::atomic::fence(Ordering::SeqCst);
            if ring.submission().need_wakeup() {
                flags |= ENTER_SQ_WAKEUP;
            } else if min_complete == 0 {
                // The kernel thread is awake and will pick the SQEs up.
                self.stats.submitted += to_submit as u64;
                return Ok(());
            }
        }
        let arg = timeout.map(|dur| {
            *self.park_ts = types::Timespec::from(dur);
            GeteventsArg {
                sigmask: 0,
                sigmask_sz: 0,
                min_wait_usec,
                ts: &*self.park_ts as *const types::Timespec as u64,
            }
        });
        let (arg_ptr, arg_len) = match &arg {
            Some(a) => {
                flags |= ENTER_EXT_ARG;
                (
                    a as *const GeteventsArg as *const libc::c_void,
                    std::mem::size_of::<GeteventsArg>(),
                )
            }
            None => (std::ptr::null(), 0),
        };
        self.stats.enters += 1;
        #[cfg(feature = "fault-injection")]
        if let Some(err) = crate::fault::take_enter() {
            return Err(err);
        }
        // SAFETY: io_uring_enter(2) on our own ring (its fd or registered
        // index). The kernel reads `arg` (on this frame) and the timespec it
        // points to (`park_ts`, a box the driver owns) during the call only.
        // The SQEs it takes point to memory that lives until their CQEs, as
        // `push_reserved` states; the ring is this process's (a forked child
        // that inherited it returned above).
        let res = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.enter_fd,
                to_submit,
                min_complete,
                flags | self.enter_flags,
                arg_ptr,
                arg_len,
            )
        };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        self.stats.submitted += res as u64;
        Ok(())
    }

    /// Reaps every completion: wakes waiting ops, queues multishot results,
    /// finishes abandoned ops. Only wakes or frees; runs no user code.
    #[inline]
    pub(crate) fn dispatch_completions(&mut self) {
        // The epoll backend's wake-ups come as wakers (`take_wakes`), and
        // most turns reap no completion: no call for nothing.
        if let Backend::Epoll(e) = &self.ring
            && !e.has_cqes()
        {
            return;
        }
        self.dispatch_completions_now();
    }

    #[inline(never)]
    fn dispatch_completions_now(&mut self) {
        // The CQ is shared memory: a forked child would take the parent's
        // completions.
        if self.inherited() {
            return;
        }
        loop {
            let ring = match &mut self.ring {
                Backend::IoUring(ring) => ring,
                Backend::Epoll(e) => {
                    if !e.has_cqes() {
                        return;
                    }
                    let mut cqes = std::mem::take(&mut self.epoll_cq);
                    e.take_cqes(&mut cqes);
                    if cqes.is_empty() {
                        self.epoll_cq = cqes;
                        return;
                    }
                    for cqe in cqes.drain(..) {
                        self.on_cqe(cqe.user_data, cqe.res, cqe.flags);
                    }
                    self.epoll_cq = cqes;
                    continue;
                }
            };
            let mut batch = [const { std::mem::MaybeUninit::<cqueue::Entry>::uninit() }; 64];
            let cqes = {
                let mut cq = ring.completion();
                cq.sync();
                cq.fill(&mut batch)
            };
            if cqes.is_empty() {
                break;
            }
            for cqe in cqes {
                self.on_cqe(cqe.user_data(), cqe.result(), cqe.flags());
            }
        }
        let Backend::IoUring(ring) = &mut self.ring else {
            return;
        };
        if ring.submission().cq_overflow() {
            // IORING_FEAT_NODROP: the kernel kept the overflowed CQEs; an
            // enter with GETEVENTS flushes them into the CQ we just drained.
            self.stats.cq_overflow += 1;
            let _ = self.enter(0, ENTER_GETEVENTS, None);
            self.dispatch_completions();
        }
    }

    /// Handles one completion: the driver's own, or an op's.
    fn on_cqe(&mut self, user_data: u64, res: i32, flags: u32) {
        {
            {
                self.stats.completed += 1;
                match user_data {
                    PARK_TIMEOUT => {
                        self.stats.ops.on_complete(opcode::Timeout::CODE);
                        self.park_timeouts = self.park_timeouts.saturating_sub(1);
                        self.driver_woke = true;
                    }
                    WAKE => {
                        self.stats.ops.on_complete(opcode::Read::CODE);
                        self.wake_armed = false;
                        self.driver_woke = true;
                    }
                    // Posted into this ring by another core's MSG_RING: it
                    // counts as a msg_ring completion here, where it lands.
                    WAKE_MSG => {
                        self.stats.ops.on_complete(opcode::MsgRingData::CODE);
                        self.driver_woke = true;
                    }
                    ud if ud & LINK_TIMEOUT != 0 => {
                        self.stats.ops.on_complete(opcode::LinkTimeout::CODE);
                        self.link_timeouts.try_remove((ud & !LINK_TIMEOUT) as usize);
                    }
                    ud if ud & DETACHED != 0 => self.stats.ops.on_complete(ud as u8),
                    ud => {
                        let buf_offset = self.account(ud as usize, res, flags);
                        if !self.shut_down {
                            complete(
                                &mut self.slots,
                                &mut self.wakes,
                                &mut self.garbage,
                                ud as usize,
                                res,
                                flags,
                                buf_offset,
                            );
                        }
                    }
                }
            }
        }
    }

    /// An op's completion in the per-opcode counters and, in CQE order
    /// before any task reads it, its buffer ring's accounting; returns the
    /// offset into the selected buffer.
    fn account(&mut self, idx: usize, res: i32, flags: u32) -> u32 {
        let Some(meta) = self.meta.get(idx) else {
            return 0;
        };
        self.stats.ops.on_complete(meta.opcode);
        #[cfg(feature = "tracing")]
        warn_if_slow(self.slow_op, meta, res);
        match meta.bgid.filter(|_| !self.shut_down) {
            Some(bgid) => self.buf_groups.on_cqe(bgid, res, flags),
            None => 0,
        }
    }

    /// Hands the collected wakers and finished abandoned ops to the loop.
    pub(crate) fn take_ready(&mut self, wakes: &mut Vec<Waker>, garbage: &mut Vec<Finished>) {
        std::mem::swap(&mut self.wakes, wakes);
        std::mem::swap(&mut self.garbage, garbage);
    }

    /// Ops and linked timeouts whose final completion has not arrived yet.
    fn kernel_owned(&self) -> usize {
        let ops = self
            .slots
            .iter()
            .filter(|(_, s)| !matches!(s, Lifecycle::Completed(_)))
            .count();
        ops + self.link_timeouts.len()
    }

    /// Cancels everything still in flight and waits (bounded) for the kernel
    /// to finish with it. Whatever is still owned by the kernel after that is
    /// leaked, never freed: the ring's teardown may still write into it.
    pub(crate) fn shutdown(&mut self) {
        // Submit what is still queued (closes of dropped fds, cancels): an
        // SQE left in the SQ when the ring goes away never runs, so its fd
        // would leak.
        let _ = self.submit_and_reap();
        if self.kernel_owned() > 0 {
            self.submit_detached(opcode::AsyncCancel2::new(types::CancelBuilder::any()).build());
        }
        // Finished ops are set aside, not dropped: dropping them may close
        // fds or unregister buffer rings, which needs the driver. The
        // runtime drops them after this returns, outside the borrow.
        let mut finished = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.kernel_owned() > 0 && std::time::Instant::now() < deadline {
            // No task runs any more: clear what was reaped, so that `park`
            // waits for the remaining CQEs instead of returning at once.
            self.wakes.clear();
            finished.append(&mut self.garbage);
            // Wait for all of them at once (bounded by the CQ): one cancel
            // above already reached every op; cancelling again each round
            // would make the kernel walk them all again.
            let want = (self.kernel_owned() as u32).clamp(1, self.caps.cq_entries.max(1));
            if self
                .park_for(want, Some(Duration::from_millis(10)), 0)
                .is_err()
            {
                break;
            }
        }
        self.shut_down = true;
        // Linked timeouts still pending may yet be read by the kernel.
        if !self.link_timeouts.is_empty() {
            std::mem::forget(std::mem::take(&mut self.link_timeouts));
        }
        for (_, slot) in std::mem::take(&mut self.slots) {
            match slot {
                Lifecycle::Completed(_) => {}
                // The op stays leaked, its CQEs' results are dropped unseen.
                Lifecycle::Cancelled { op, cqes } => {
                    std::mem::forget(op);
                    drop(cqes);
                }
                other => std::mem::forget(other),
            }
        }
        self.wakes.clear();
        self.garbage.append(&mut finished);
        // The eventfd read may still be posted: leak its buffer.
        if self.wake_armed {
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
    }
}

/// Says once per process, as a `tracing` WARN (the library prints nothing
/// on its own), that io_uring could not be set up and epoll runs instead.
fn warn_fallback(err: &io::Error) {
    #[cfg(feature = "tracing")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::warn!(
                target: "percore::driver",
                reason = %err,
                "io_uring unavailable: running on the epoll driver"
            );
        });
    }
    #[cfg(not(feature = "tracing"))]
    let _ = err;
}

/// Says once per process, as a `tracing` WARN, that the min-wait asked
/// for is not applied: the kernel lacks `IORING_FEAT_MIN_TIMEOUT` (6.12), or
/// the epoll driver runs, which has no batch wait.
fn warn_min_wait_ignored(caps: &Capabilities) {
    #[cfg(feature = "tracing")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::warn!(
                target: "percore::driver",
                driver = %caps.driver,
                kernel = %caps.kernel_release,
                "min-wait ignored: needs io_uring with IORING_FEAT_MIN_TIMEOUT (Linux 6.12)"
            );
        });
    }
    #[cfg(not(feature = "tracing"))]
    let _ = caps;
}

#[cfg(test)]
mod tests;
