//! How a [`File`](super::File) schedules its reads, kept apart from the file
//! API (which only builds ops):
//!
//! - **`RWF_NOWAIT` first.** A lone reader tries `preadv2(RWF_NOWAIT)`
//!   before the ring: for a page-cache hit one syscall beats an SQE, a CQE
//!   and a wake-up. After [`NOWAIT_MISSES`] misses in a row a file skips the
//!   attempt for [`NOWAIT_BACKOFF`] reads; a file or filesystem that cannot
//!   do it turns it off for good.
//! - **A budget for the fast path.** Reads that never wait never yield, so
//!   after [`FAST_PATH_BUDGET`] of them in a row the task yields once.
//! - **Submit now.** A file whose reads wait for the device (or that asked,
//!   [`OpenOptions::submit_now`](super::OpenOptions::submit_now)) hands its
//!   ops to the kernel at once when other tasks are ready, instead of at the
//!   end of the tick. Whether a read waited is read off the driver's tick.
//!
//! The per-core part (file reads waiting on the ring, the fast streak) is
//! two thread-locals: both are about this core's tasks, whichever file.

use std::cell::Cell;
use std::future::Future;
use std::io;

use super::syscall;
use crate::buf::IoBufMut;
use crate::fd::SharedFd;

/// Misses in a row after which a file stops trying `RWF_NOWAIT` for a while.
const NOWAIT_MISSES: u8 = 4;
/// Reads that skip the `RWF_NOWAIT` attempt after [`NOWAIT_MISSES`] misses.
const NOWAIT_BACKOFF: u16 = 256;
/// Reads a task may finish without ever waiting before it yields once, so a
/// loop over cached data cannot starve the other tasks of its core.
const FAST_PATH_BUDGET: u32 = 64;

thread_local! {
    /// Reads in a row (on this core) that finished without waiting.
    static FAST_STREAK: Cell<u32> = const { Cell::new(0) };
    /// File reads of this core now waiting on the ring.
    static RING_READS: Cell<u32> = const { Cell::new(0) };
}

/// Counts a read in [`RING_READS`] while it is in flight (also when its
/// future is dropped).
struct RingRead;

impl RingRead {
    fn start() -> RingRead {
        RING_READS.with(|n| n.set(n.get() + 1));
        RingRead
    }
}

impl Drop for RingRead {
    fn drop(&mut self) {
        RING_READS.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether a read is better tried synchronously: the benchmark shows one
/// `preadv2(RWF_NOWAIT)` beats a ring round trip for a lone reader (one
/// syscall either way, minus the SQE/CQE/wake-up), while several readers at
/// once do better on the ring, whose one `io_uring_enter` serves them all.
/// So: only when no other file read is waiting on the ring and no other task
/// is ready to run (and so about to issue one).
fn lone_reader() -> bool {
    RING_READS.with(Cell::get) == 0 && !crate::executor::current_has_ready()
}

/// State of the `RWF_NOWAIT` fast path of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Nowait {
    enabled: bool,
    misses: u8,
    skip: u16,
}

impl Nowait {
    fn new(enabled: bool) -> Nowait {
        Nowait {
            enabled,
            misses: 0,
            skip: 0,
        }
    }

    /// Whether this read skips the attempt, backing off after misses.
    fn backing_off(&mut self) -> bool {
        if self.skip == 0 {
            return false;
        }
        self.skip -= 1;
        true
    }

    /// Learns from one attempt's result.
    fn record(&mut self, res: &io::Result<usize>) {
        match res {
            Ok(_) => self.misses = 0,
            Err(err) => match err.raw_os_error() {
                Some(libc::EAGAIN) => {
                    self.misses += 1;
                    if self.misses >= NOWAIT_MISSES {
                        self.misses = 0;
                        self.skip = NOWAIT_BACKOFF;
                    }
                }
                // The file or its filesystem cannot do it: stop trying.
                Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ESPIPE) => self.enabled = false,
                // Anything else: the ring gives the authoritative answer.
                _ => {}
            },
        }
    }
}

/// One file's read scheduling: its `RWF_NOWAIT` state, and whether its ops
/// go to the kernel at once.
#[derive(Debug)]
pub(super) struct ReadPolicy {
    nowait: Cell<Nowait>,
    /// Submit ops at once rather than at the end of the tick
    /// ([`OpenOptions::submit_now`](super::OpenOptions::submit_now));
    /// `None`: decide by `reads_wait`.
    submit_now: Option<bool>,
    /// The last read through the ring waited for the device (took more
    /// than the one tick a page-cache hit takes).
    reads_wait: Cell<bool>,
}

impl ReadPolicy {
    pub(super) fn new(nowait: bool, submit_now: Option<bool>) -> ReadPolicy {
        ReadPolicy {
            nowait: Cell::new(Nowait::new(nowait)),
            submit_now,
            reads_wait: Cell::new(false),
        }
    }

    /// Turns the `RWF_NOWAIT` attempt on or off, forgetting past misses.
    pub(super) fn set_nowait(&self, on: bool) {
        self.nowait.set(Nowait::new(on));
    }

    pub(super) fn set_submit_now(&mut self, on: bool) {
        self.submit_now = Some(on);
    }

    /// Whether an op of this file goes to the kernel at once: if the file
    /// asks for it (or its reads wait for the device) and other tasks are
    /// ready; otherwise the tick ends right away and submits it in the same
    /// `io_uring_enter` that waits.
    pub(super) fn submit_now(&self) -> bool {
        let wanted = self.submit_now.unwrap_or_else(|| self.reads_wait.get());
        wanted && crate::executor::current_has_ready()
    }

    /// One `RWF_NOWAIT` attempt at reading `fd` into `buf`, if the fast
    /// path is on and the reader alone; `None` means "use the ring".
    pub(super) fn try_nowait<B: IoBufMut>(
        &self,
        fd: &SharedFd,
        buf: &mut B,
        pos: u64,
    ) -> Option<io::Result<usize>> {
        let mut st = self.nowait.get();
        if !st.enabled || !lone_reader() {
            return None;
        }
        if st.backing_off() {
            self.nowait.set(st);
            return None;
        }
        let res = syscall::read_nowait(fd, buf, pos);
        st.record(&res);
        self.nowait.set(st);
        res.ok().map(Ok)
    }

    /// Runs a read op, noting whether it waited for the device: a page-cache
    /// hit completes in the enter that submits it, so its task runs in the
    /// next tick; a read that waited took longer.
    pub(super) async fn timed<F: Future>(&self, read: F) -> F::Output {
        let tick = crate::driver::current_tick();
        let out = read.await;
        self.reads_wait
            .set(waited(tick, crate::driver::current_tick()));
        out
    }
}

/// Whether a read issued in tick `start` and finished in tick `end` waited
/// for the device.
fn waited(start: u64, end: u64) -> bool {
    end > start + 1
}

/// Runs a read through the ring: it counts as waiting while in flight (so
/// other readers take the ring too, see [`lone_reader`]) and ends the fast
/// streak.
pub(super) async fn ring_read<F: Future>(read: F) -> F::Output {
    let counted = RingRead::start();
    let out = read.await;
    drop(counted);
    FAST_STREAK.with(|s| s.set(0));
    out
}

/// After [`FAST_PATH_BUDGET`] reads in a row that finished without waiting,
/// yields once so other tasks run.
pub(super) async fn fast_path_yield() {
    let streak = FAST_STREAK.with(|s| {
        let (n, stored) = next_streak(s.get());
        s.set(stored);
        n
    });
    if streak >= FAST_PATH_BUDGET {
        crate::yield_now().await;
    }
}

/// The streak after one more fast read, and what to store (back to 0 once
/// the budget is spent).
fn next_streak(streak: u32) -> (u32, u32) {
    let n = streak + 1;
    (n, if n >= FAST_PATH_BUDGET { 0 } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eagain() -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    #[test]
    fn misses_in_a_row_back_off_then_try_again() {
        let mut st = Nowait::new(true);
        for _ in 0..NOWAIT_MISSES {
            assert!(!st.backing_off());
            st.record(&eagain());
        }
        // 1. The backoff: this many reads skip the attempt.
        for _ in 0..NOWAIT_BACKOFF {
            assert!(st.backing_off());
        }
        // 2. Then the file tries again, still enabled, misses forgotten.
        assert!(!st.backing_off());
        assert_eq!(st, Nowait::new(true));
    }

    #[test]
    fn a_hit_resets_the_misses() {
        let mut st = Nowait::new(true);
        for _ in 1..NOWAIT_MISSES {
            st.record(&eagain());
        }
        st.record(&Ok(10));
        for _ in 1..NOWAIT_MISSES {
            st.record(&eagain());
        }
        assert!(!st.backing_off(), "misses not in a row must not back off");
    }

    #[test]
    fn files_that_cannot_turn_it_off_and_other_errors_do_nothing() {
        for errno in [libc::EOPNOTSUPP, libc::EINVAL, libc::ESPIPE] {
            let mut st = Nowait::new(true);
            st.record(&Err(io::Error::from_raw_os_error(errno)));
            assert!(!st.enabled, "errno {errno} must turn the attempt off");
        }
        let mut st = Nowait::new(true);
        st.record(&Err(io::Error::from_raw_os_error(libc::EIO)));
        assert_eq!(st, Nowait::new(true));
    }

    #[test]
    fn only_a_read_past_the_next_tick_waited() {
        assert!(!waited(7, 7));
        assert!(!waited(7, 8));
        assert!(waited(7, 9));
    }

    #[test]
    fn the_fast_path_yields_once_per_budget() {
        let mut stored = 0;
        let mut yields = Vec::new();
        for read in 1..=3 * FAST_PATH_BUDGET {
            let (n, s) = next_streak(stored);
            stored = s;
            if n >= FAST_PATH_BUDGET {
                yields.push(read);
            }
        }
        assert_eq!(
            yields,
            [FAST_PATH_BUDGET, 2 * FAST_PATH_BUDGET, 3 * FAST_PATH_BUDGET]
        );
    }

    #[test]
    fn nowait_serves_cached_reads_and_turns_off_on_espipe() {
        let path = std::env::temp_dir().join(format!("percore-unit-nowait-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        crate::run(async {
            // A cached file: the attempt succeeds without the ring.
            let file = SharedFd::new(std::fs::File::open(&path).unwrap().into());
            let policy = ReadPolicy::new(true, None);
            let mut buf = Vec::with_capacity(8);
            assert_eq!(policy.try_nowait(&file, &mut buf, 0).unwrap().unwrap(), 3);
            assert_eq!(buf, b"abc");
            // A pipe: preadv2 with an offset fails with ESPIPE, so the fast
            // path turns itself off for this file.
            let (reader, _writer) = std::io::pipe().unwrap();
            let pipe = SharedFd::new(reader.into());
            let policy = ReadPolicy::new(true, None);
            assert!(
                policy
                    .try_nowait(&pipe, &mut Vec::with_capacity(8), 0)
                    .is_none()
            );
            assert!(!policy.nowait.get().enabled);
        });
        std::fs::remove_file(&path).unwrap();
    }
}
