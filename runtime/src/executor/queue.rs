//! Task queues: scheduling classes on one core.
//!
//! Every task belongs to one queue of its core. Queue 0 is the default
//! queue, which every task joins unless told otherwise; while it is the only
//! queue the executor runs exactly as it always has (see `run_ready`).
//! Once a second queue exists, each pass picks queues by virtual runtime:
//! the CPU time a queue's polls took, divided by its shares. Latency-
//! sensitive queues also get a deadline when they become runnable, which
//! ends the running turn early and, past due, wins the next pick.
//!
//! This file holds the per-queue state, its statistics and the public
//! handle ([`TaskQueue`]); the picking is in `mod.rs`.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Runnable;
use super::task::spawn_in;
use super::{JoinHandle, with_current};

/// How much a queue's tasks care about the time from becoming runnable to
/// running (glommio's `Latency`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::task::{Latency, TaskQueue};
///
/// percore::run(async {
///     let requests = TaskQueue::new("requests", 100, Latency::Matters(Duration::from_millis(1)));
///     let compaction = TaskQueue::new("compaction", 50, Latency::NotImportant);
///     assert_eq!(requests.latency(), Latency::Matters(Duration::from_millis(1)));
///     assert_eq!(compaction.latency(), Latency::NotImportant);
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// A task of this queue that becomes runnable (its I/O completed, its
    /// timer fired, another task woke it) should run within this time, even
    /// while other queues have work: the loop then looks for completions at
    /// least twice per goal, and the running task of another queue is asked
    /// to yield ([`need_yield`](crate::task::need_yield)) as soon as
    /// completions wait in the ring or a task of this queue is woken (at
    /// its goal when the queue is over its share). Best effort: a task that
    /// does not yield holds the core for as long as its poll lasts.
    Matters(Duration),
    /// Throughput work (compaction, bulk copies): runs in turns as its
    /// shares allow.
    NotImportant,
}

/// The shares of the default queue (glommio's default is 1000; any unit
/// works, only the ratios between queues count).
pub const DEFAULT_SHARES: u32 = 100;

/// A queue's name, shares and counters, read with [`TaskQueue::stats`], or
/// for every queue of the core in [`Stats::queues`](crate::Stats::queues).
///
/// CPU time and queueing delay are measured only while the core has a
/// queue besides the default one: a core that never made one reads no clock
/// for them. Polls and tasks are always counted.
///
/// # Examples
///
/// ```
/// use percore::task::{Latency, TaskQueue};
///
/// percore::run(async {
///     let q = TaskQueue::new("work", 100, Latency::NotImportant);
///     q.spawn(async { std::hint::black_box(2 + 2) }).await.unwrap();
///     let s = q.stats();
///     assert_eq!((s.spawned, s.finished), (1, 1));
///     assert!(s.polls >= 1 && s.turns >= 1);
///     assert!(s.cpu > std::time::Duration::ZERO);
/// });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskQueueStats {
    /// The name given to [`TaskQueue::new`] (`"default"` for the default
    /// queue).
    pub name: Arc<str>,
    /// The queue's shares when the counters were read.
    pub shares: u32,
    /// Wall time spent in this queue's task polls (which is CPU time, as the
    /// core does nothing else meanwhile, unless the OS takes the thread away).
    pub cpu: Duration,
    /// Task polls.
    pub polls: u64,
    /// Tasks spawned into the queue.
    pub spawned: u64,
    /// Tasks of the queue whose future is gone.
    pub finished: u64,
    /// Turns the queue was given (one queueing-delay sample each).
    pub turns: u64,
    /// Median time the queue waited, with a task ready to run, for its turn.
    /// Recorded with about 25% precision (a log-linear histogram).
    pub delay_p50: Duration,
    /// 99th percentile of the same wait.
    pub delay_p99: Duration,
    /// The longest such wait.
    pub delay_max: Duration,
    /// File operations (reads, writes, syncs of [`File`](crate::fs::File))
    /// the queue's tasks sent to the ring; counted once a queue of the core
    /// has had a [file I/O limit](TaskQueue::set_file_io_limit), so that
    /// file I/O pays nothing for the count before.
    pub file_ops: u64,
    /// Of those, how many waited for a slot under the queue's
    /// [file I/O limit](TaskQueue::set_file_io_limit).
    pub file_op_waits: u64,
}

/// Queueing delays in nanoseconds, in log-linear buckets: four per power of
/// two, so a value is known within 25%, in 252 counters.
pub(crate) struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

const BUCKETS: usize = 252;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < 4 {
            return ns as usize;
        }
        let bit = 63 - ns.leading_zeros(); // >= 2
        let sub = (ns >> (bit - 2)) & 3;
        ((bit - 1) * 4) as usize + sub as usize
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 4 {
            return i as u64;
        }
        let bit = (i / 4 + 1) as u32;
        let sub = (i % 4) as u64;
        let lower = (4 + sub) << (bit - 2);
        lower + (1u64 << (bit - 2)) - 1
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// The value at quantile `q` (0..=1): the upper bound of its bucket,
    /// never above the largest value recorded.
    fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(Self::upper(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }
}

/// One queue's run lists, its place in the schedule and its counters.
pub(crate) struct Queue {
    pub(crate) name: Arc<str>,
    pub(crate) shares: u32,
    pub(crate) latency: Option<Duration>,
    /// Woken tasks, FIFO.
    pub(crate) local: VecDeque<Runnable>,
    /// Tasks that woke themselves while running, held until the loop has
    /// reaped completions.
    pub(crate) yielded: VecDeque<Runnable>,
    /// Yielded tasks whose reap has happened. With one queue they run one
    /// per pass, after the woken ones; with classes, released tasks join
    /// `local` instead and this list only drains what was left in it.
    pub(crate) released: VecDeque<Runnable>,
    /// CPU time used, divided by shares (units: [`VR_UNIT`] per ns at one
    /// share).
    pub(crate) vruntime: u64,
    /// Since when the queue has had a runnable task but no turn (classes
    /// only).
    pub(crate) waiting_since: Option<Instant>,
    pub(crate) cpu: Duration,
    pub(crate) polls: u64,
    pub(crate) spawned: u64,
    pub(crate) finished: u64,
    pub(crate) turns: u64,
    pub(crate) delay: Histogram,
    /// File ops this queue may have in flight at once (`None`: no limit).
    pub(crate) io_limit: Option<usize>,
    pub(crate) io_in_flight: usize,
    /// Tasks waiting for a file-op slot; all are woken when one frees up.
    pub(crate) io_waiters: Vec<std::task::Waker>,
    pub(crate) file_ops: u64,
    pub(crate) file_op_waits: u64,
}

/// Virtual runtime added per nanosecond of CPU at one share.
const VR_UNIT: u128 = 1024;

impl Queue {
    pub(crate) fn new(name: Arc<str>, shares: u32, latency: Latency) -> Queue {
        Queue {
            name,
            shares: shares.max(1),
            latency: match latency {
                Latency::Matters(goal) => Some(goal),
                Latency::NotImportant => None,
            },
            local: VecDeque::new(),
            yielded: VecDeque::new(),
            released: VecDeque::new(),
            vruntime: 0,
            waiting_since: None,
            cpu: Duration::ZERO,
            polls: 0,
            spawned: 0,
            finished: 0,
            turns: 0,
            delay: Histogram::new(),
            io_limit: None,
            io_in_flight: 0,
            io_waiters: Vec::new(),
            file_ops: 0,
            file_op_waits: 0,
        }
    }

    /// Whether a task of the queue can run now.
    pub(crate) fn is_runnable(&self) -> bool {
        !self.local.is_empty() || !self.released.is_empty()
    }

    /// Whether the queue wants the CPU: a task can run now, or yielded and
    /// runs after the next reap.
    pub(crate) fn is_contending(&self) -> bool {
        self.is_runnable() || !self.yielded.is_empty()
    }

    /// Virtual runtime that `d` of CPU adds to this queue.
    pub(crate) fn vr_of(&self, d: Duration) -> u64 {
        u64::try_from(d.as_nanos() * VR_UNIT / u128::from(self.shares)).unwrap_or(u64::MAX)
    }

    /// The CPU time that adds `vr` to this queue's virtual runtime.
    pub(crate) fn time_of(&self, vr: u64) -> Duration {
        let ns = u128::from(vr) * u128::from(self.shares) / VR_UNIT;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Charges one poll that took `d`.
    pub(crate) fn charge(&mut self, d: Duration) {
        self.cpu += d;
        self.polls += 1;
        self.vruntime = self.vruntime.saturating_add(self.vr_of(d));
    }

    pub(crate) fn stats(&self) -> TaskQueueStats {
        TaskQueueStats {
            name: self.name.clone(),
            shares: self.shares,
            cpu: self.cpu,
            polls: self.polls,
            spawned: self.spawned,
            finished: self.finished,
            turns: self.turns,
            delay_p50: self.delay.quantile(0.50),
            delay_p99: self.delay.quantile(0.99),
            delay_max: Duration::from_nanos(self.delay.max),
            file_ops: self.file_ops,
            file_op_waits: self.file_op_waits,
        }
    }
}

/// A task queue of the current core: a scheduling class with a name,
/// shares and a [`Latency`] goal (glommio's task queues, Seastar's
/// scheduling groups).
///
/// While several queues have work, each gets CPU in proportion to its
/// shares, measured per task poll; within a queue tasks run first in, first
/// out. A queue without work takes nothing: its share goes to the others,
/// and when it wakes up it starts level with the busiest, not behind with
/// a debt to collect. A latency-sensitive queue's tasks run within its goal
/// while background queues have work, provided those call
/// [`yield_if_needed`](crate::task::yield_if_needed) in their long loops.
///
/// Every core starts with the default queue ([`TaskQueue::default_queue`],
/// [`DEFAULT_SHARES`], [`Latency::NotImportant`]). [`spawn`](crate::spawn)
/// puts a task into the queue of the task that spawns it (the default
/// queue outside tasks); [`TaskQueue::spawn`] into a given one. While the
/// default queue is a core's only one, the executor runs as if queues did
/// not exist and reads no clock for them.
///
/// A queue lives as long as its core's runtime: make queues once, at
/// start-up, not per request. The handle is `Copy` and belongs to its core
/// (`!Send`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::task::{self, Latency, TaskQueue};
///
/// percore::run(async {
///     let requests = TaskQueue::new("requests", 100, Latency::Matters(Duration::from_millis(1)));
///     let background = TaskQueue::new("background", 100, Latency::NotImportant);
///     let work = background.spawn(async {
///         let mut sum = 0u64;
///         for i in 0..10_000u64 {
///             sum += i;
///             if i % 1000 == 0 {
///                 task::yield_if_needed().await; // let the requests in
///             }
///         }
///         sum
///     });
///     let answer = requests.spawn(async { 42 });
///     assert_eq!(answer.await.unwrap(), 42);
///     assert_eq!(work.await.unwrap(), 49_995_000);
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TaskQueue {
    exec: usize,
    index: u32,
    _not_send: PhantomData<*const ()>,
}

impl TaskQueue {
    /// Makes a task queue on the current core. `shares` weigh its CPU
    /// against the other queues' (0 counts as 1); the default queue has
    /// [`DEFAULT_SHARES`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::new("checksums", 50, Latency::NotImportant);
    ///     assert_eq!(q.name(), "checksums");
    ///     assert_eq!(q.shares(), 50);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn new(name: &str, shares: u32, latency: Latency) -> TaskQueue {
        with_current(|e| {
            let index = e.add_queue(Queue::new(name.into(), shares, latency));
            TaskQueue {
                exec: e.shared.id,
                index,
                _not_send: PhantomData,
            }
        })
        .expect("TaskQueue::new called outside a runtime: call it inside percore::run")
    }

    /// The current core's default queue, where tasks go that nobody put
    /// elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{DEFAULT_SHARES, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::default_queue();
    ///     assert_eq!(q.name(), "default");
    ///     assert_eq!(q.shares(), DEFAULT_SHARES);
    ///     assert_eq!(TaskQueue::current(), q);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn default_queue() -> TaskQueue {
        Self::on_current(|_| 0, "TaskQueue::default_queue")
    }

    /// The queue of the running task (the default queue outside tasks):
    /// where [`spawn`](crate::spawn) puts new tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::new("bulk", 100, Latency::NotImportant);
    ///     let seen = q.spawn(async { TaskQueue::current() }).await.unwrap();
    ///     assert_eq!(seen, q);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn current() -> TaskQueue {
        Self::on_current(|e| e.current_queue(), "TaskQueue::current")
    }

    fn on_current(index: impl FnOnce(&super::Executor) -> u32, what: &str) -> TaskQueue {
        with_current(|e| TaskQueue {
            exec: e.shared.id,
            index: index(e),
            _not_send: PhantomData,
        })
        .unwrap_or_else(|| panic!("{what} called outside a runtime: call it inside percore::run"))
    }

    /// Runs `f` on this queue's state; panics if the queue belongs to
    /// another runtime (or none is running).
    fn with<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        with_current(|e| {
            assert!(
                e.shared.id == self.exec,
                "a TaskQueue was used on a core other than the one that made it"
            );
            let mut queues = e.queues.borrow_mut();
            e.sync_default_polls(&mut queues);
            f(&mut queues[self.index as usize])
        })
        .expect("a TaskQueue was used outside a runtime: call it inside percore::run")
    }

    /// Spawns a `!Send` future into this queue, as [`spawn`](crate::spawn)
    /// does into the current one. Tasks the new task spawns join this queue
    /// too.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::new("bulk", 100, Latency::NotImportant);
    ///     assert_eq!(q.spawn(async { 1 + 1 }).await.unwrap(), 2);
    ///     assert_eq!(q.stats().spawned, 1);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        with_current(|exec| {
            assert!(
                exec.shared.id == self.exec,
                "TaskQueue::spawn: the queue belongs to another core; use percore::spawn_on \
                 and make the queue there"
            );
            spawn_in(exec, self.index, future)
        })
        .expect("TaskQueue::spawn called outside a runtime: call it inside percore::run")
    }

    /// The name given to [`TaskQueue::new`] (`"default"` for the default
    /// queue).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let q = percore::task::TaskQueue::new("io", 10, percore::task::Latency::NotImportant);
    ///     assert_eq!(q.name(), "io");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn name(&self) -> String {
        self.with(|q| q.name.to_string())
    }

    /// The queue's shares.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     assert_eq!(percore::task::TaskQueue::default_queue().shares(), 100);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn shares(&self) -> u32 {
        self.with(|q| q.shares)
    }

    /// Changes the queue's shares (0 counts as 1), from its next poll on:
    /// a compaction can get more CPU when it falls behind.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::new("compaction", 50, Latency::NotImportant);
    ///     q.set_shares(200);
    ///     assert_eq!(q.shares(), 200);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn set_shares(&self, shares: u32) {
        self.with(|q| q.shares = shares.max(1));
    }

    /// The queue's latency class.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     assert_eq!(TaskQueue::default_queue().latency(), Latency::NotImportant);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn latency(&self) -> Latency {
        self.with(|q| match q.latency {
            Some(goal) => Latency::Matters(goal),
            None => Latency::NotImportant,
        })
    }

    /// Caps the file operations ([`File`](crate::fs::File) reads, writes
    /// and syncs that go through the ring) this queue's tasks may have in
    /// flight at once; `None` (the default) lifts the cap. A bulk copy in a
    /// background queue then cannot fill the device's queue ahead of the
    /// reads of a latency-sensitive one: past the cap, its next op waits
    /// until one of its ops completes. Reads served from the page cache
    /// without the ring (`RWF_NOWAIT`) are not counted. A limit of 0
    /// counts as 1.
    ///
    /// An op whose future is dropped frees its slot at once, though the
    /// kernel may still be finishing it.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let copy = TaskQueue::new("copy", 50, Latency::NotImportant);
    ///     copy.set_file_io_limit(Some(2));
    ///     let writers: Vec<_> = (0..8)
    ///         .map(|_| {
    ///             copy.spawn(async {
    ///                 let null = percore::fs::File::create("/dev/null").await.unwrap();
    ///                 null.write_at(vec![0u8; 4096], 0).await.0.unwrap()
    ///             })
    ///         })
    ///         .collect();
    ///     for w in writers {
    ///         assert_eq!(w.await.unwrap(), 4096);
    ///     }
    ///     assert!(copy.stats().file_ops >= 8);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn set_file_io_limit(&self, limit: Option<usize>) {
        let waiters = self.with(|q| {
            q.io_limit = limit.map(|n| n.max(1));
            std::mem::take(&mut q.io_waiters)
        });
        with_current(|e| e.file_limits.set(true));
        // A raised limit may let them in.
        for w in waiters {
            w.wake();
        }
    }

    /// The queue's counters so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let q = TaskQueue::new("work", 100, Latency::NotImportant);
    ///     let before = q.stats();
    ///     q.spawn(async {}).await.unwrap();
    ///     let after = q.stats();
    ///     assert_eq!(after.finished - before.finished, 1);
    ///     println!("{after:?}");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime, or on a core other than the queue's.
    pub fn stats(&self) -> TaskQueueStats {
        self.with(|q| q.stats())
    }
}

impl std::fmt::Debug for TaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskQueue")
            .field("index", &self.index)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_contiguous_and_bound_their_values() {
        for ns in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3]) {
            let i = Histogram::index(ns);
            assert!(Histogram::upper(i) >= ns, "{ns} above its bucket {i}");
            if i > 0 {
                assert!(
                    Histogram::upper(i - 1) < ns,
                    "{ns} belongs below bucket {i}"
                );
            }
        }
        assert!(Histogram::index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn histogram_quantiles_are_within_a_quarter() {
        let mut h = Histogram::new();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).as_micros() as f64;
        let p99 = h.quantile(0.99).as_micros() as f64;
        assert!((50.0..=63.0).contains(&p50), "p50 {p50}");
        assert!((99.0..=100.0).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), Duration::from_micros(100));
    }

    #[test]
    fn virtual_runtime_is_cpu_over_shares() {
        let a = Queue::new("a".into(), 200, Latency::NotImportant);
        let b = Queue::new("b".into(), 100, Latency::NotImportant);
        let d = Duration::from_micros(300);
        assert_eq!(a.vr_of(d) * 2, b.vr_of(d));
        assert_eq!(a.time_of(a.vr_of(d)), d);
    }
}
