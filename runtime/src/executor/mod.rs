//! The executor: a run queue of local tasks per core.
//!
//! Provides: `spawn` of `!Send` futures, [`JoinHandle`] with abort and panic
//! capture, a cross-thread wake path (a lock-free remote queue plus a callback
//! that unparks the core), and a registry of live tasks so shutdown can drop
//! every future while the driver is still there to take over their ops.
//!
//! A pass over the run queue ([`Executor::run_ready`]) is bounded in polls
//! and in time, so the loop reaps completions at least every
//! [`PASS_TIME`] of task CPU (plus the few short polls that go between two
//! clock reads, [`CLOCK_STRIDE`]). A task that wakes itself while it runs
//! (`yield_now`, or any future that calls its own waker) is held back until
//! the loop has reaped completions and fired timers: yielding lets I/O in.
//! Each pass then runs one such task, after the woken ones.
//!
//! Task queues (`queue.rs`): every task belongs to a queue of its core.
//! While the default queue is the only one, a pass is the one above. Once
//! there are more, [`Executor::run_ready`] hands out turns: the runnable
//! queue with the least virtual runtime (CPU time over shares) goes next,
//! a latency-sensitive queue that waited past its goal goes first, and a
//! turn ends when the queue runs out of ready tasks, gets ahead of the next
//! contender, or another latency-sensitive queue's goal comes due. A pass
//! lasts at most [`PASS_TIME`], or half the smallest goal among the
//! latency-sensitive queues with live tasks, so their I/O is reaped in
//! time; [`need_yield`] tells a long-running task when its turn is over,
//! and, while such a queue has live tasks, as soon as one of them is woken
//! or (after a quarter of the pass) completions wait in the ring: then the
//! pass ends after that poll, so the loop reaps them.
//! A queue may also cap its file ops in flight (`FileIoSlot`). The design
//! note is `docs/scheduling-classes.md`.
//!
//! May not: touch any io_uring type. Unparking the ring is a callback given
//! by the runtime.

mod inbox;
mod join;
mod join_set;
mod oneshot;
mod queue;
mod task;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{self, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_task::ScheduleInfo;
use crossbeam_queue::SegQueue;
use slab::Slab;

use crate::context;

pub use self::join::{Either, join_all, race, select};
pub use self::join_set::JoinSet;
pub(crate) use self::oneshot::oneshot;
pub use self::queue::{DEFAULT_SHARES, Latency, TaskQueue, TaskQueueStats};
pub use self::task::{AbortHandle, AbortOnDropHandle, JoinError, JoinHandle, spawn, yield_now};

use self::inbox::Inbox;
use self::queue::Queue;

/// What every task of this runtime carries in its header: its core and its
/// queue. Kept in the task (async-task's metadata) rather than captured by
/// the schedule function, so that function is zero-sized: async-task then
/// wakes a task with one atomic update, where a capturing closure costs a
/// waker clone and two drops (three more atomic updates) per wake.
pub(crate) struct TaskMeta {
    shared: Arc<Shared>,
    queue: u32,
}

/// A task ready to be polled.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// Executor counters, readable through [`crate::stats`].
///
/// `spawned - finished` is the number of live tasks.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let before = percore::stats().executor;
///     percore::spawn(async {}).await.unwrap();
///     let after = percore::stats().executor;
///     assert_eq!(after.spawned - before.spawned, 1);
///     assert_eq!(after.finished - before.finished, 1);
///     assert!(after.polled > before.polled);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Tasks spawned on this core.
    pub spawned: u64,
    /// Tasks whose future is gone: returned, panicked, aborted, or dropped
    /// at shutdown.
    pub finished: u64,
    /// Task polls.
    pub polled: u64,
    /// Wake-ups that arrived from other threads.
    pub remote_wakes: u64,
}

/// The part of an executor other threads may touch.
pub(crate) struct Shared {
    pub(crate) id: usize,
    /// Tasks woken on other threads (each knows its queue).
    remote: SegQueue<Runnable>,
    /// Closures sent by [`spawn_on`] from other cores; each spawns a task here.
    remote_spawns: SegQueue<Box<dyn FnOnce() + Send>>,
    /// Set after a push onto either queue: what the loop looks at.
    inbox: Inbox,
    unpark: Box<dyn Fn() + Send + Sync>,
}

impl Shared {
    /// Queues a task woken on another thread and unparks the core. Cold and
    /// out of line: the wake-up path on the task's own core stays short.
    #[cold]
    #[inline(never)]
    fn schedule_remote(&self, runnable: Runnable) {
        self.remote.push(runnable);
        self.inbox.announce();
        (self.unpark)();
    }

    /// Queues a closure that spawns a task on this core, and unparks it.
    fn spawn_remote(&self, spawn_here: Box<dyn FnOnce() + Send>) {
        self.remote_spawns.push(spawn_here);
        self.inbox.announce();
        (self.unpark)();
    }

    /// Wakes the core without queuing a task (used by the main future's waker).
    pub(crate) fn unpark(&self) {
        (self.unpark)();
    }
}

/// The longest a pass over the run queue goes on before the loop reaps
/// completions again. A task poll that takes longer than this still ends the
/// pass, at the next clock read (at most [`CLOCK_STRIDE`]` - 1` polls
/// later): only a task that never returns can hold the core.
pub(crate) const PASS_TIME: Duration = Duration::from_micros(200);

/// How many polls of a pass go between clock reads while the polls are
/// short: the pass ends at most `CLOCK_STRIDE - 1` polls after the one
/// during which [`PASS_TIME`] ran out (after that very poll once a read saw
/// polls that were not short, see [`LONG_STRIDE`]). A read costs about as
/// much as waking and polling a small task.
const CLOCK_STRIDE: usize = 4;

/// Polls that took this long since the last clock read were not short: the
/// pass reads the clock after the next poll again.
const LONG_STRIDE: Duration = Duration::from_micros(20);

/// How far (in its own CPU time) a queue may run ahead of the queue with
/// the least virtual runtime before its turn ends: the granularity of
/// fairness between queues.
const SLACK: Duration = Duration::from_micros(100);

/// The shortest turn a latency-sensitive queue gets when it is picked
/// because its goal came due, however far ahead of its share it is: enough
/// for a burst of small requests, short enough that the others go on.
const MIN_URGENT_TURN: Duration = Duration::from_micros(50);

/// The shortest pass, however small a latency goal is.
const MIN_PASS: Duration = Duration::from_micros(5);

pub(crate) struct Executor {
    shared: Arc<Shared>,
    /// The core's task queues; index 0 is the default queue. Each holds its
    /// woken tasks (by I/O, timers, other tasks, other threads, `spawn`),
    /// the ones that yielded, held until the loop has reaped completions
    /// ([`Executor::release_yielded`]), and, with one queue, the released
    /// ones: one runs per pass, after the woken ones, so neither kind
    /// starves the other.
    queues: RefCell<Vec<Queue>>,
    /// Whether a queue besides the default one exists: only then are turns
    /// handed out and polls timed per queue.
    classes: Cell<bool>,
    /// The queue whose turn runs (classes only; `None` between turns).
    turn: Cell<Option<u32>>,
    /// When the running turn ends; lowered when a latency-sensitive queue
    /// becomes runnable meanwhile.
    turn_end: Cell<Instant>,
    /// While a latency-sensitive queue has live tasks (this pass): how long
    /// a turn runs before [`need_yield`] also asks its task to yield when
    /// completions or work from another thread wait for the loop, since
    /// they may be that queue's (see [`YieldAt::AtOrWork`]).
    watch_after: Cell<Option<Duration>>,
    /// When the running turn started watching for such work.
    watch_from: Cell<Instant>,
    /// The latest clock reading (classes only): when a task is woken, the
    /// loop's or the last poll's, whichever came last.
    clock: Cell<Instant>,
    /// Never decreasing; a queue that had nothing to do starts from here
    /// when it gets work, so idling earns no credit.
    min_vruntime: Cell<u64>,
    /// Whether any queue ever had a file I/O limit: until then file ops
    /// skip the slot accounting.
    pub(crate) file_limits: Cell<bool>,
    /// Whether a task yielded (joined a queue's `yielded` list) since the
    /// last [`Executor::release_yielded`]: the loop calls that after every
    /// reap, and most reaps have nothing to release.
    any_yielded: Cell<bool>,
    /// Wakers of live tasks, so shutdown can reach and drop each one.
    tasks: RefCell<Slab<Waker>>,
    /// Woken when the last live task ends (see [`tasks_done`]).
    idle: RefCell<Option<Waker>>,
    stats: Cell<ExecutorStats>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

impl Executor {
    pub(crate) fn new(unpark: Box<dyn Fn() + Send + Sync>) -> Executor {
        Executor {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                remote: SegQueue::new(),
                remote_spawns: SegQueue::new(),
                inbox: Inbox::new(),
                unpark,
            }),
            queues: RefCell::new(vec![{
                let mut q = Queue::new("default".into(), DEFAULT_SHARES, Latency::NotImportant);
                q.local.reserve(256);
                q
            }]),
            classes: Cell::new(false),
            turn: Cell::new(None),
            turn_end: Cell::new(Instant::now()),
            watch_after: Cell::new(None),
            watch_from: Cell::new(Instant::now()),
            clock: Cell::new(Instant::now()),
            min_vruntime: Cell::new(0),
            file_limits: Cell::new(false),
            any_yielded: Cell::new(false),
            tasks: RefCell::new(Slab::new()),
            idle: RefCell::new(None),
            stats: Cell::new(ExecutorStats::default()),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn stats(&self) -> ExecutorStats {
        self.stats.get()
    }

    /// Every task queue's counters, the default queue first.
    pub(crate) fn queue_stats(&self) -> Vec<TaskQueueStats> {
        let mut queues = self.queues.borrow_mut();
        self.sync_default_polls(&mut queues);
        queues.iter().map(Queue::stats).collect()
    }

    /// While the default queue is the only one, every poll is one of its
    /// tasks', and a pass counts them only in the executor's counters: this
    /// brings the queue's count up to date before it is read, or before
    /// another queue makes passes charge each queue's own.
    pub(crate) fn sync_default_polls(&self, queues: &mut [Queue]) {
        if !self.classes.get() {
            queues[0].polls = self.stats.get().polled;
        }
    }

    fn bump(&self, f: impl FnOnce(&mut ExecutorStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Runs the woken tasks until none is left, `max_polls` have run, or
    /// they have taken [`PASS_TIME`]; then one released yielded task, if
    /// any. Returns the clock read when the pass ended, if it read one after
    /// its last poll; `None` if not (read it if the time is wanted).
    ///
    /// One yielded task per pass means the loop reaps completions after
    /// every turn of background work, so I/O waits for at most one turn, and
    /// a background task runs every pass however busy the woken ones keep
    /// it. `before_yielded` runs first: the loop hands the I/O that the woken
    /// tasks queued to the kernel there, so a reply does not wait for the
    /// background turn either.
    ///
    /// With task queues besides the default one, the pass hands out turns
    /// instead ([`Executor::run_turns`]); they always read the clock.
    pub(crate) fn run_ready(
        &self,
        max_polls: usize,
        before_yielded: &mut dyn FnMut(),
    ) -> Option<Instant> {
        if self.classes.get() {
            return Some(self.run_turns(max_polls, before_yielded));
        }
        self.drain_remote();
        // Until the first poll has read the clock, a task asking whether to
        // yield starts the pass's clock itself.
        set_yield_at(YieldAt::FromFirstCheck);
        // The clock is read between two polls, never after the last one: a
        // tick that runs one task (a request) reads none, and the loop
        // reads it only if its timers need it. The pass's clock starts
        // before the second poll; from there on it is read every
        // CLOCK_STRIDE polls while the polls since the last read were short
        // (under LONG_STRIDE together), else before each poll.
        let mut start = None;
        let mut now = None;
        let mut stride = 1;
        let mut unread = 0;
        let mut ran = 0;
        // The released task, once the woken ones ran out: taken in the
        // same borrow as the look that found none.
        let mut released = None;
        let mut next = self.pop_woken(&mut released);
        while let Some(runnable) = next {
            runnable.run();
            ran += 1;
            unread += 1;
            if ran >= max_polls {
                break;
            }
            next = self.pop_woken(&mut released);
            if next.is_none() || unread < stride {
                continue;
            }
            unread = 0;
            let t = Instant::now();
            let Some(prev) = now.replace(t) else {
                start = Some(t);
                set_yield_at(YieldAt::PassFrom(t));
                continue;
            };
            stride = if t - prev < LONG_STRIDE {
                CLOCK_STRIDE
            } else {
                1
            };
            if start.is_some_and(|s| t - s >= PASS_TIME) {
                // Back to the front: it runs first in the next pass.
                if let Some(runnable) = next.take() {
                    self.queues.borrow_mut()[0].local.push_front(runnable);
                }
            }
        }
        let yielded = released.unwrap_or_else(|| self.queues.borrow_mut()[0].released.pop_front());
        if let Some(runnable) = yielded {
            before_yielded();
            set_yield_at(YieldAt::FromFirstCheck);
            runnable.run();
            ran += 1;
            unread += 1;
        }
        set_yield_at(YieldAt::Never);
        // The default queue's `polls` follow from this while it is the only
        // queue (`Executor::sync_default_polls`).
        self.bump(|s| s.polled += ran as u64);
        if unread > 0 { None } else { now }
    }

    /// The default queue's next woken task (classes off); when there is
    /// none, its next released one goes to `released`, taken in the same
    /// borrow.
    #[inline(always)]
    fn pop_woken(&self, released: &mut Option<Option<Runnable>>) -> Option<Runnable> {
        let mut queues = self.queues.borrow_mut();
        let q = &mut queues[0];
        let next = q.local.pop_front();
        if next.is_none() {
            *released = Some(q.released.pop_front());
        }
        next
    }

    /// A pass with task queues: turns, each of one queue, until no queue is
    /// ready, `max_polls` have run, or the pass has lasted its time (see
    /// [`Executor::pass_len`]). `before_other_queue` runs between turns of
    /// different queues, so the I/O one queue's tasks queued (a reply)
    /// does not wait for the next queue's turn.
    fn run_turns(&self, max_polls: usize, before_other_queue: &mut dyn FnMut()) -> Instant {
        let mut now = Instant::now();
        self.clock.set(now);
        self.drain_remote();
        let (pass_len, watch) = self.pass_len();
        // A quarter of the pass: a completion waits at most that long (or
        // until the running task next checks), and a queue whose tasks
        // check often and wait for I/O themselves (a bulk copy) is not
        // sent back to the loop after every short poll.
        self.watch_after.set(watch.then_some(pass_len / 4));
        let pass_end = now + pass_len;
        let mut ran = 0;
        let mut last = None;
        let mut pass_over = false;
        while !pass_over {
            let Some(index) = self.pick(now, pass_end) else {
                break;
            };
            if last.is_some_and(|l| l != index) {
                before_other_queue();
                // The submit may have done work inline (a send, a buffered
                // write): no queue's poll, so charged to none.
                now = Instant::now();
            }
            last = Some(index);
            self.turn.set(Some(index));
            if let Some(after) = self.watch_after.get() {
                self.watch_from.set(now + after);
            }
            self.arm_yield(self.turn_end.get());
            loop {
                let next = {
                    let mut queues = self.queues.borrow_mut();
                    let q = &mut queues[index as usize];
                    q.local.pop_front().or_else(|| q.released.pop_front())
                };
                let Some(runnable) = next else { break };
                runnable.run();
                let t = Instant::now();
                self.queues.borrow_mut()[index as usize].charge(t - now);
                now = t;
                self.clock.set(t);
                ran += 1;
                // `Reap`: a task saw completions (or remote work) waiting;
                // only the loop can hand them to their tasks.
                if ran >= max_polls || t >= pass_end || yield_at() == YieldAt::Reap {
                    pass_over = true;
                    break;
                }
                if t >= self.turn_end.get() {
                    break;
                }
            }
            self.turn.set(None);
            let mut queues = self.queues.borrow_mut();
            let q = &mut queues[index as usize];
            // Still ready: it waits for its next turn from now.
            q.waiting_since = q.is_runnable().then_some(now);
        }
        set_yield_at(YieldAt::Never);
        self.bump(|s| s.polled += ran as u64);
        now
    }

    /// How long a pass with task queues may last: [`PASS_TIME`], or half
    /// the smallest latency goal among the queues with live tasks, since a
    /// task of theirs may wait on I/O that only a reap between passes finds;
    /// and whether there is such a queue, so that tasks are also asked to
    /// yield as soon as the driver has completions waiting.
    fn pass_len(&self) -> (Duration, bool) {
        let queues = self.queues.borrow();
        let goal = queues
            .iter()
            .filter(|q| q.spawned > q.finished)
            .filter_map(|q| q.latency)
            .min();
        match goal {
            Some(goal) => ((goal / 2).clamp(MIN_PASS, PASS_TIME), true),
            None => (PASS_TIME, false),
        }
    }

    /// Makes [`need_yield`] turn true at `at`, and, while a latency-sensitive
    /// queue has live tasks, as soon as work waits for the loop. A `Reap`
    /// already seen stays: the pass ends after this poll either way.
    fn arm_yield(&self, at: Instant) {
        if yield_at() == YieldAt::Reap {
            return;
        }
        set_yield_at(match self.watch_after.get() {
            Some(_) => YieldAt::AtOrWork {
                at,
                from: self.watch_from.get(),
            },
            None => YieldAt::At(at),
        });
    }

    /// Picks the queue for the next turn and sets [`Executor::turn_end`]; `None`
    /// when no queue is ready, or when the ready ones are ahead of a queue
    /// whose tasks yielded and wait for the reap (ending the pass lets that
    /// one in).
    ///
    /// A latency-sensitive queue that has waited its goal goes first (the
    /// earliest due first). Otherwise the least virtual runtime goes, a
    /// latency-sensitive queue first among equals, then the older queue.
    fn pick(&self, now: Instant, pass_end: Instant) -> Option<u32> {
        let mut queues = self.queues.borrow_mut();
        let mut urgent: Option<(usize, Instant)> = None;
        let mut best: Option<usize> = None;
        let mut min_contending = u64::MAX;
        for (i, q) in queues.iter().enumerate() {
            if q.is_contending() {
                min_contending = min_contending.min(q.vruntime);
            }
            if !q.is_runnable() {
                continue;
            }
            if let (Some(goal), Some(since)) = (q.latency, q.waiting_since) {
                let due = since + goal;
                if due <= now && urgent.is_none_or(|(_, d)| due < d) {
                    urgent = Some((i, due));
                }
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let b = &queues[b];
                    q.vruntime < b.vruntime
                        || (q.vruntime == b.vruntime && q.latency.is_some() && b.latency.is_none())
                }
            };
            if better {
                best = Some(i);
            }
        }
        let chosen = match urgent {
            Some((i, _)) => i,
            None => {
                let b = best?;
                if queues[b].vruntime > min_contending.saturating_add(queues[b].vr_of(SLACK)) {
                    return None;
                }
                b
            }
        };
        self.min_vruntime
            .set(self.min_vruntime.get().max(min_contending));
        // The turn ends at the pass's end, when a ready latency-sensitive
        // queue's goal comes due, or when this queue gets `SLACK` ahead of
        // the next contender.
        let mut end = pass_end;
        let mut other_min = u64::MAX;
        for (i, o) in queues.iter().enumerate() {
            if i == chosen || !o.is_contending() {
                continue;
            }
            other_min = other_min.min(o.vruntime);
            if o.is_runnable()
                && let (Some(goal), Some(since)) = (o.latency, o.waiting_since)
            {
                end = end.min(since + goal);
            }
        }
        let q = &mut queues[chosen];
        if other_min != u64::MAX {
            let limit = other_min.saturating_add(q.vr_of(SLACK));
            end = end.min(now + q.time_of(limit.saturating_sub(q.vruntime)));
        }
        if urgent.is_some() {
            end = end.max((now + MIN_URGENT_TURN).min(pass_end));
        }
        self.turn_end.set(end);
        q.turns += 1;
        if let Some(since) = q.waiting_since.take() {
            q.delay.record(now.saturating_duration_since(since));
        }
        Some(chosen as u32)
    }

    /// Queues a task woken on this core: at the back of its queue's woken
    /// tasks, or of its yielded ones when it woke itself while running.
    ///
    /// Inlined into the wake-up path; the bookkeeping of task queues is out
    /// of line, in [`Executor::push_class`].
    #[inline(always)]
    fn push(&self, index: u32, runnable: Runnable, yielded: bool) {
        if self.classes.get() {
            return self.push_class(index, runnable, yielded);
        }
        let mut queues = self.queues.borrow_mut();
        let q = &mut queues[index as usize];
        if yielded {
            self.any_yielded.set(true);
            q.yielded.push_back(runnable);
        } else {
            q.local.push_back(runnable);
        }
    }

    /// [`Executor::push`] with task queues besides the default one.
    #[inline(never)]
    fn push_class(&self, index: u32, runnable: Runnable, yielded: bool) {
        let mut queues = self.queues.borrow_mut();
        let q = &mut queues[index as usize];
        let (was_contending, was_runnable) = (q.is_contending(), q.is_runnable());
        if yielded {
            self.any_yielded.set(true);
            q.yielded.push_back(runnable);
        } else {
            q.local.push_back(runnable);
        }
        if !was_contending {
            // Back from idle: level with the others, no credit for idling.
            q.vruntime = q.vruntime.max(self.min_vruntime.get());
        }
        if !yielded && !was_runnable {
            self.became_runnable(&mut queues, index);
        }
    }

    /// Notes when queue `index` got a ready task. If it is latency-sensitive
    /// and another queue's turn runs, that turn ends at once when the
    /// newcomer would win the next pick (its virtual runtime is not above
    /// the running queue's), else when its goal comes due (it is over its
    /// share, and waits for its urgent turn).
    fn became_runnable(&self, queues: &mut [Queue], index: u32) {
        let running = self.turn.get();
        if running == Some(index) {
            return; // runs in this turn
        }
        let q = &mut queues[index as usize];
        let since = *q.waiting_since.get_or_insert(self.clock.get());
        let (Some(goal), Some(running)) = (q.latency, running) else {
            return;
        };
        let end = if q.vruntime <= queues[running as usize].vruntime {
            since
        } else {
            since + goal
        };
        if end < self.turn_end.get() {
            self.turn_end.set(end);
            self.arm_yield(end);
        }
    }

    /// Makes `queue` a new task queue of this core; returns its index.
    pub(crate) fn add_queue(&self, queue: Queue) -> u32 {
        let mut queues = self.queues.borrow_mut();
        let index = u32::try_from(queues.len()).expect("fewer than 2^32 task queues");
        self.sync_default_polls(&mut queues);
        queues.push(queue);
        if !self.classes.replace(true) {
            let now = Instant::now();
            self.clock.set(now);
            self.turn_end.set(now);
        }
        index
    }

    /// The queue a task spawned now joins: the running turn's, else the
    /// default one.
    pub(crate) fn current_queue(&self) -> u32 {
        self.turn.get().unwrap_or(0)
    }

    /// The loop has reaped completions and is about to wake their tasks:
    /// with task queues, read the clock so their queues' waits start now.
    #[inline]
    pub(crate) fn completions_reaped(&self) {
        if self.classes.get() {
            self.clock.set(Instant::now());
        }
    }

    /// Makes the tasks that yielded since the last call runnable again. The
    /// loop calls it after each reap of completions and firing of timers.
    #[inline]
    pub(crate) fn release_yielded(&self) {
        if self.any_yielded.replace(false) {
            self.release_yielded_now();
        }
    }

    /// [`Executor::release_yielded`] when a task did yield.
    #[inline(never)]
    fn release_yielded_now(&self) {
        let mut queues = self.queues.borrow_mut();
        if !self.classes.get() {
            let q = &mut queues[0];
            move_all(&mut q.yielded, &mut q.released);
            return;
        }
        // With queues, a released task is just ready again: it runs in its
        // queue's order, in its queue's turns.
        for i in 0..queues.len() {
            let q = &mut queues[i];
            if q.yielded.is_empty() {
                continue;
            }
            let was_runnable = q.is_runnable();
            move_all(&mut q.yielded, &mut q.local);
            if !was_runnable {
                self.became_runnable(&mut queues, i as u32);
            }
        }
    }

    /// Takes in the tasks woken and spawned from other threads.
    #[inline]
    fn drain_remote(&self) {
        // One load while nothing arrived (`inbox.rs`). A push whose
        // announce is not visible here is seen by the loop's check before
        // it parks (`has_ready`), or its unpark ends the park.
        if self.shared.inbox.take() {
            self.drain_remote_now();
        }
    }

    /// [`Executor::drain_remote`] when something arrived: both queues until
    /// empty, since the flag is clear now.
    #[inline(never)]
    fn drain_remote_now(&self) {
        /// A closure that panics leaves the rest queued: set the flag
        /// again, so they are not left behind a clear one.
        struct Reannounce<'a>(&'a Inbox);
        impl Drop for Reannounce<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.announce();
                }
            }
        }
        let _reannounce = Reannounce(&self.shared.inbox);
        while let Some(spawn_here) = self.shared.remote_spawns.pop() {
            spawn_here();
        }
        let mut n = 0;
        while let Some(r) = self.shared.remote.pop() {
            self.push(r.metadata().queue, r, false);
            n += 1;
        }
        if n > 0 {
            self.bump(|s| s.remote_wakes += n);
        }
    }

    /// Whether a task is ready to run (locally or woken from elsewhere), or
    /// yielded and waits only for the next reap.
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        let local = {
            let queues = self.queues.borrow();
            if self.classes.get() {
                queues.iter().any(Queue::is_contending)
            } else {
                queues[0].is_contending()
            }
        };
        local || self.has_remote_ready()
    }

    /// Whether work arrived from another thread (a remote wake or spawn).
    #[inline]
    pub(crate) fn has_remote_ready(&self) -> bool {
        self.shared.inbox.has_work()
    }

    /// Drops every task's future. Called at shutdown while the driver is
    /// still current, so ops in flight move into their slots.
    pub(crate) fn shutdown(&self) {
        for _ in 0..16 {
            let wakers: Vec<Waker> = self.tasks.borrow().iter().map(|(_, w)| w.clone()).collect();
            if wakers.is_empty() && !self.has_ready() {
                return;
            }
            for w in wakers {
                w.wake();
            }
            // Dropping a runnable drops its future without polling it.
            self.release_yielded();
            loop {
                self.drain_remote();
                let next = self.queues.borrow_mut().iter_mut().find_map(|q| {
                    q.local
                        .pop_front()
                        .or_else(|| q.released.pop_front())
                        .or_else(|| q.yielded.pop_front())
                });
                match next {
                    Some(r) => drop(r),
                    None => break,
                }
            }
        }
    }
}

/// Moves every task of `from` to the back of `to`, in order. Usually `to`
/// is empty and the two lists just trade places, which costs less than
/// `append`'s copy even of a single task.
fn move_all(from: &mut VecDeque<Runnable>, to: &mut VecDeque<Runnable>) {
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.append(from);
    }
}

/// When the running task should yield, for [`need_yield`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum YieldAt {
    /// No task runs (or the main future does): never.
    Never,
    /// A pass started and has not read the clock yet: the first check does,
    /// and the pass ends [`PASS_TIME`] after it.
    FromFirstCheck,
    At(Instant),
    /// [`PASS_TIME`] after this: [`YieldAt::At`] with the sum left to the
    /// checks, which are fewer than the passes that start a clock.
    PassFrom(Instant),
    /// At `at`, or from `from` on as soon as the driver has completions
    /// waiting or another thread woke a task here (classes, while a
    /// latency-sensitive queue has live tasks): they may be that queue's,
    /// and only the loop can hand them over. A look at the ring's shared
    /// memory, no syscall; the epoll driver sees only the completions it
    /// already holds (blocking-pool results), not sockets turned ready.
    AtOrWork {
        at: Instant,
        from: Instant,
    },
    /// A check found work waiting: the running task yields and the pass
    /// ends after its poll, so the loop reaps.
    Reap,
}

thread_local! {
    static YIELD_AT: Cell<YieldAt> = const { Cell::new(YieldAt::Never) };
}

fn set_yield_at(at: YieldAt) {
    YIELD_AT.with(|y| y.set(at));
}

fn yield_at() -> YieldAt {
    YIELD_AT.with(Cell::get)
}

/// Whether the loop has something to hand to this core's tasks: completions
/// the driver has not reaped, or tasks woken or spawned from other threads.
fn work_waiting() -> bool {
    with_current(|e| e.has_remote_ready()).unwrap_or(false)
        || crate::driver::try_with_driver(|d| d.work_pending()).unwrap_or(false)
}

/// Whether the running task should yield now: its turn is over, because
/// the loop must look for completions (they may wake a latency-sensitive
/// task), another queue's turn is due, or the pass has lasted its time.
/// False outside a task, and always false for the future given to
/// [`run`](crate::run) or `block_on`.
///
/// While a latency-sensitive queue ([`Latency::Matters`]) has live tasks,
/// it also turns true as soon as one of them is woken (if that queue is
/// not over its share), and, once the turn has run a quarter of its pass
/// (50 µs with a 1 ms goal), as soon as completions wait in the ring
/// (io_uring: a look at the ring's shared memory, no syscall) or work
/// arrived from another thread: those may be for the latency-sensitive
/// queue, and only the loop can reap them.
///
/// It costs a thread-local read and a clock read (about 20 ns with the TSC
/// clock), and with a latency-sensitive queue a few loads more; a coarse
/// clock would be cheaper but ticks every few ms, too slowly for the goals
/// it serves. Call it every few µs of work at most.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::spawn(async {
///         let mut chunks = 0;
///         for _ in 0..1000 {
///             std::hint::black_box(chunks += 1); // a chunk of work
///             if percore::task::need_yield() {
///                 percore::yield_now().await;
///             }
///         }
///         chunks
///     })
///     .await
///     .unwrap();
///     assert!(!percore::task::need_yield()); // not a task
/// });
/// ```
pub fn need_yield() -> bool {
    YIELD_AT
        .try_with(|y| match y.get() {
            YieldAt::Never => false,
            YieldAt::At(t) => Instant::now() >= t,
            YieldAt::PassFrom(start) => Instant::now() - start >= PASS_TIME,
            YieldAt::AtOrWork { at, from } => {
                let now = Instant::now();
                if now >= at {
                    return true;
                }
                if now < from || !work_waiting() {
                    return false;
                }
                y.set(YieldAt::Reap);
                true
            }
            YieldAt::Reap => true,
            YieldAt::FromFirstCheck => {
                y.set(YieldAt::PassFrom(Instant::now()));
                false
            }
        })
        .unwrap_or(false)
}

/// Yields ([`yield_now`]) if [`need_yield`] says so, else returns at once:
/// the call to put in a long CPU loop (glommio's `yield_if_needed`). A
/// task that calls it every 100 µs or so of work lets I/O in, and tasks of
/// latency-sensitive queues run within their goals, while it does as few
/// yields as that takes.
///
/// # Examples
///
/// ```
/// use percore::task::{Latency, TaskQueue, yield_if_needed};
///
/// percore::run(async {
///     let bulk = TaskQueue::new("bulk", 100, Latency::NotImportant);
///     let sum = bulk
///         .spawn(async {
///             let mut sum = 0u64;
///             for i in 0..100_000u64 {
///                 sum = sum.wrapping_add(i * i);
///                 if i % 1024 == 0 {
///                     yield_if_needed().await;
///                 }
///             }
///             sum
///         })
///         .await
///         .unwrap();
///     assert!(sum > 0);
/// });
/// ```
pub async fn yield_if_needed() {
    if need_yield() {
        yield_now().await;
    }
}

fn with_current<R>(f: impl FnOnce(&Executor) -> R) -> Option<R> {
    context::with(|core| f(&core.executor))
}

/// Schedules a woken task: onto its queue when woken on its own core
/// (among its yielded tasks when it woke while running, which is how a
/// task yields), else onto its core's remote queue with an unpark.
///
/// A plain function (no captures), given to async-task as the schedule
/// function of every task; the task's core and queue are its metadata.
#[inline]
fn schedule(runnable: Runnable, info: ScheduleInfo) {
    let (id, queue) = {
        let meta = runnable.metadata();
        (meta.shared.id, meta.queue)
    };
    let local = context::with_executor(id, runnable, |e, r| {
        e.push(queue, r, info.woken_while_running);
    });
    if let Err(runnable) = local {
        schedule_remote(runnable);
    }
}

/// [`schedule`] for a task woken off its core: out of line, as it keeps
/// the task's core alive (an `Arc` clone) while it queues the task there.
#[cold]
#[inline(never)]
fn schedule_remote(runnable: Runnable) {
    let shared = runnable.metadata().shared.clone();
    shared.schedule_remote(runnable);
}

/// Waits until the current core has no live tasks (the future awaiting this
/// is not one of them when it is the one given to `block_on`).
pub(crate) async fn tasks_done() {
    std::future::poll_fn(|cx| {
        let done = with_current(|e| {
            if e.tasks.borrow().is_empty() {
                return true;
            }
            *e.idle.borrow_mut() = Some(cx.waker().clone());
            false
        });
        if done.unwrap_or(true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The current executor's counters and its queues', if inside a runtime.
pub(crate) fn current_stats() -> Option<(ExecutorStats, Vec<TaskQueueStats>)> {
    with_current(|e| (e.stats(), e.queue_stats()))
}

/// Whether other tasks of the current executor are ready to run (false
/// outside a runtime). The fs read path uses it to tell a lone reader, for
/// whom a synchronous `RWF_NOWAIT` attempt is cheapest, from a crowd whose
/// reads batch into one `io_uring_enter`.
#[inline]
pub(crate) fn current_has_ready() -> bool {
    with_current(|e| e.has_ready()).unwrap_or(false)
}

/// A file op's place under its task queue's file I/O limit
/// ([`TaskQueue::set_file_io_limit`]); frees the place when dropped.
pub(crate) struct FileIoSlot {
    /// `(executor id, queue)`, or `None` when nothing was counted.
    held: Option<(usize, u32)>,
}

impl FileIoSlot {
    /// Waits for a place for one file op of the running task's queue. Free
    /// (no clock, no borrow) while no queue ever had a limit.
    pub(crate) async fn acquire() -> FileIoSlot {
        enum Try {
            /// No limit anywhere (or no runtime: the op itself will say so).
            Free,
            Held(usize, u32),
            Wait,
        }
        let mut waited = false;
        std::future::poll_fn(|cx| {
            let next = with_current(|e| {
                if !e.file_limits.get() {
                    return Try::Free;
                }
                let index = e.current_queue();
                let mut queues = e.queues.borrow_mut();
                let q = &mut queues[index as usize];
                if q.io_limit.is_some_and(|limit| q.io_in_flight >= limit) {
                    if !waited {
                        waited = true;
                        q.file_op_waits += 1;
                    }
                    q.io_waiters.push(cx.waker().clone());
                    return Try::Wait;
                }
                q.io_in_flight += 1;
                q.file_ops += 1;
                Try::Held(e.shared.id, index)
            });
            match next.unwrap_or(Try::Free) {
                Try::Free => std::task::Poll::Ready(FileIoSlot { held: None }),
                Try::Held(exec, index) => std::task::Poll::Ready(FileIoSlot {
                    held: Some((exec, index)),
                }),
                Try::Wait => std::task::Poll::Pending,
            }
        })
        .await
    }
}

impl Drop for FileIoSlot {
    fn drop(&mut self) {
        let Some((exec, index)) = self.held else {
            return;
        };
        let waiters = with_current(|e| {
            if e.shared.id != exec {
                return Vec::new();
            }
            let Ok(mut queues) = e.queues.try_borrow_mut() else {
                return Vec::new();
            };
            let q = &mut queues[index as usize];
            q.io_in_flight -= 1;
            std::mem::take(&mut q.io_waiters)
        });
        for w in waiters.into_iter().flatten() {
            w.wake();
        }
    }
}

/// The cores of a multi-core runtime, as seen from each of them.
pub(crate) struct CoreSet {
    pub(crate) cores: Vec<Arc<Shared>>,
}

thread_local! {
    static CORE: RefCell<Option<(usize, Arc<CoreSet>)>> = const { RefCell::new(None) };
}

/// Marks this thread as core `id` of `set` until the guard drops.
pub(crate) fn enter_core(id: usize, set: Arc<CoreSet>) -> CoreGuard {
    let prev = CORE.with(|c| c.replace(Some((id, set))));
    CoreGuard { prev }
}

pub(crate) struct CoreGuard {
    prev: Option<(usize, Arc<CoreSet>)>,
}

impl Drop for CoreGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CORE.with(|c| *c.borrow_mut() = prev);
    }
}

/// The index of the core running the caller: `0..cores()`. A single-core
/// runtime (`percore::run`) is core 0.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     assert_eq!(percore::core_id(), 0);
///     assert_eq!(percore::cores(), 1);
/// });
/// ```
pub fn core_id() -> usize {
    CORE.with(|c| c.borrow().as_ref().map_or(0, |(id, _)| *id))
}

/// How many cores the current runtime runs on (1 for `percore::run`).
///
/// # Examples
///
/// ```
/// let counts = percore::Runtime::builder()
///     .cores(2)
///     .pin(false)
///     .build()
///     .unwrap()
///     .run_on_every_core(|_core| async { percore::cores() })
///     .unwrap();
/// assert_eq!(counts, [2, 2]);
/// ```
pub fn cores() -> usize {
    CORE.with(|c| c.borrow().as_ref().map_or(1, |(_, set)| set.cores.len()))
}

/// Runs a task on another core: `make` is sent there and builds the
/// (possibly `!Send`) future on that core; the returned handle is awaited
/// here. The output crosses back, so it must be `Send`.
///
/// Aborting the returned handle stops waiting for the output; the task on
/// the target core runs on.
///
/// # Examples
///
/// ```
/// let out = percore::Runtime::builder()
///     .cores(2)
///     .pin(false)
///     .build()
///     .unwrap()
///     .run_on_every_core(|core| async move {
///         if core == 0 {
///             percore::spawn_on(1, || async { percore::core_id() * 10 }).await.unwrap()
///         } else {
///             0
///         }
///     })
///     .unwrap();
/// assert_eq!(out[0], 10);
/// ```
///
/// # Panics
///
/// If `core >= cores()`, or outside a runtime (each with a message that
/// says which).
pub fn spawn_on<F, Fut>(core: usize, make: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + 'static,
    Fut::Output: Send + 'static,
{
    let target = CORE.with(|c| match c.borrow().as_ref() {
        Some((_, set)) => set.cores.get(core).cloned(),
        None => None,
    });
    let target = match target {
        Some(t) => t,
        None if core == 0 => {
            // A single-core runtime: core 0 is this one.
            return spawn(async move { make().await });
        }
        None if with_current(|_| ()).is_none() => panic!(
            "percore::spawn_on({core}) called outside a runtime: call it from a task of \
             Runtime::run_on_every_core (one thread per core) or percore::run"
        ),
        None => panic!(
            "percore::spawn_on({core}): this runtime has {n} core(s), numbered 0..{n}",
            n = cores()
        ),
    };
    let (tx, rx) = oneshot::<Result<Fut::Output, JoinError>>();
    target.spawn_remote(Box::new(move || {
        let handle = spawn(make());
        drop(spawn(async move { tx.send(handle.await) }));
    }));
    JoinHandle::remote(rx)
}
