//! The executor: a run queue of local tasks per core.
//!
//! Provides: `spawn` of `!Send` futures, [`JoinHandle`] with abort and panic
//! capture, a cross-thread wake path (a lock-free remote queue plus a callback
//! that unparks the core), and a registry of live tasks so shutdown can drop
//! every future while the driver is still there to take over their ops.
//!
//! A pass over the run queue ([`Executor::run_ready`]) is bounded in polls
//! and in time, so the loop reaps completions at least every
//! [`PASS_TIME`] of task CPU. A task that wakes itself while it runs
//! (`yield_now`, or any future that calls its own waker) is held back until
//! the loop has reaped completions and fired timers: yielding lets I/O in.
//! Each pass then runs one such task, after the woken ones.
//!
//! May not: touch any io_uring type. Unparking the ring is a callback given
//! by the runtime.

mod join;
mod join_set;
mod oneshot;
mod task;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use async_task::{Runnable, ScheduleInfo};
use crossbeam_queue::SegQueue;
use slab::Slab;

pub use self::join::{Either, join_all, race, select};
pub use self::join_set::JoinSet;
pub(crate) use self::oneshot::oneshot;
pub use self::task::{AbortHandle, AbortOnDropHandle, JoinError, JoinHandle, spawn, yield_now};

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
    id: usize,
    remote: SegQueue<Runnable>,
    /// Closures sent by [`spawn_on`] from other cores; each spawns a task here.
    remote_spawns: SegQueue<Box<dyn FnOnce() + Send>>,
    unpark: Box<dyn Fn() + Send + Sync>,
}

impl Shared {
    /// Queues a task woken on another thread and unparks the core.
    fn schedule_remote(&self, runnable: Runnable) {
        self.remote.push(runnable);
        (self.unpark)();
    }

    /// Wakes the core without queuing a task (used by the main future's waker).
    pub(crate) fn unpark(&self) {
        (self.unpark)();
    }
}

/// The longest a pass over the run queue goes on before the loop reaps
/// completions again. A task poll that takes longer than this still ends the
/// pass after it: only a task that never returns can hold the core.
pub(crate) const PASS_TIME: Duration = Duration::from_micros(200);

pub(crate) struct Executor {
    shared: Arc<Shared>,
    /// Woken tasks (by I/O, timers, other tasks, other threads, `spawn`).
    local: RefCell<VecDeque<Runnable>>,
    /// Tasks that woke themselves while running, held until the loop has
    /// reaped completions ([`Executor::release_yielded`]).
    yielded: RefCell<VecDeque<Runnable>>,
    /// Yielded tasks whose reap has happened: one runs per pass, after the
    /// woken ones, so neither kind starves the other.
    released: RefCell<VecDeque<Runnable>>,
    /// Wakers of live tasks, so shutdown can reach and drop each one.
    tasks: RefCell<Slab<Waker>>,
    /// Woken when the last live task ends (see [`tasks_done`]).
    idle: RefCell<Option<Waker>>,
    stats: Cell<ExecutorStats>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// Id of the executor running on this thread (0: none); lets the schedule
    /// function tell a local wake from a remote one without a lock.
    static CURRENT_ID: Cell<usize> = const { Cell::new(0) };
    static CURRENT: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
}

impl Executor {
    pub(crate) fn new(unpark: Box<dyn Fn() + Send + Sync>) -> Executor {
        Executor {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                remote: SegQueue::new(),
                remote_spawns: SegQueue::new(),
                unpark,
            }),
            local: RefCell::new(VecDeque::with_capacity(256)),
            yielded: RefCell::new(VecDeque::new()),
            released: RefCell::new(VecDeque::new()),
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

    fn bump(&self, f: impl FnOnce(&mut ExecutorStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Runs the woken tasks until none is left, `max_polls` have run, or
    /// they have taken [`PASS_TIME`]; then one released yielded task, if
    /// any. Returns the clock read when the pass ended.
    ///
    /// One yielded task per pass means the loop reaps completions after
    /// every turn of background work, so I/O waits for at most one turn, and
    /// a background task runs every pass however busy the woken ones keep
    /// it. `before_yielded` runs first: the loop hands the I/O that the woken
    /// tasks queued to the kernel there, so a reply does not wait for the
    /// background turn either.
    pub(crate) fn run_ready(&self, max_polls: usize, before_yielded: &mut dyn FnMut()) -> Instant {
        self.drain_remote();
        // The pass's clock starts after its first poll: a tick that runs one
        // task reads the clock once, as the timers need it anyway.
        let mut start = None;
        let mut now = None;
        let mut ran = 0;
        while ran < max_polls && !matches!((start, now), (Some(s), Some(n)) if n - s >= PASS_TIME) {
            let next = self.local.borrow_mut().pop_front();
            let Some(runnable) = next else { break };
            runnable.run();
            ran += 1;
            let t = Instant::now();
            start.get_or_insert(t);
            now = Some(t);
        }
        let yielded = self.released.borrow_mut().pop_front();
        if let Some(runnable) = yielded {
            before_yielded();
            runnable.run();
            ran += 1;
            now = Some(Instant::now());
        }
        self.bump(|s| s.polled += ran as u64);
        now.unwrap_or_else(Instant::now)
    }

    /// Makes the tasks that yielded since the last call runnable again. The
    /// loop calls it after each reap of completions and firing of timers.
    pub(crate) fn release_yielded(&self) {
        let mut yielded = self.yielded.borrow_mut();
        if !yielded.is_empty() {
            self.released.borrow_mut().append(&mut yielded);
        }
    }

    fn drain_remote(&self) {
        while let Some(spawn_here) = self.shared.remote_spawns.pop() {
            spawn_here();
        }
        let mut n = 0;
        while let Some(r) = self.shared.remote.pop() {
            self.local.borrow_mut().push_back(r);
            n += 1;
        }
        if n > 0 {
            self.bump(|s| s.remote_wakes += n);
        }
    }

    /// Whether a task is ready to run (locally or woken from elsewhere), or
    /// yielded and waits only for the next reap.
    pub(crate) fn has_ready(&self) -> bool {
        !self.local.borrow().is_empty()
            || !self.released.borrow().is_empty()
            || !self.yielded.borrow().is_empty()
            || !self.shared.remote.is_empty()
            || !self.shared.remote_spawns.is_empty()
    }

    /// Whether work arrived from another thread (a remote wake or spawn).
    pub(crate) fn has_remote_ready(&self) -> bool {
        !self.shared.remote.is_empty() || !self.shared.remote_spawns.is_empty()
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
                let next = self.local.borrow_mut().pop_front();
                let next = next.or_else(|| self.released.borrow_mut().pop_front());
                match next {
                    Some(r) => drop(r),
                    None => break,
                }
            }
        }
    }
}

/// Makes `exec` the current thread's executor until the guard drops.
pub(crate) fn enter_context(exec: Rc<Executor>) -> ContextGuard {
    let id = exec.shared.id;
    let prev = CURRENT.with(|c| c.replace(Some(exec)));
    let prev_id = CURRENT_ID.with(|c| c.replace(id));
    ContextGuard { prev, prev_id }
}

/// Whether this thread's context slots still exist (they are gone while the
/// thread's locals are being destroyed).
pub(crate) fn context_alive() -> bool {
    CURRENT.try_with(|_| ()).is_ok() && CURRENT_ID.try_with(|_| ()).is_ok()
}

pub(crate) struct ContextGuard {
    prev: Option<Rc<Executor>>,
    prev_id: usize,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CURRENT_ID.with(|c| c.set(self.prev_id));
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

fn with_current<R>(f: impl FnOnce(&Executor) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| c.borrow().as_ref().map(|e| f(e)))
        .ok()
        .flatten()
}

/// Schedules a woken task: onto the local queue when woken on its own core
/// (the yielded queue when it woke while running, which is how a task
/// yields), else onto the remote queue with an unpark.
fn schedule(shared: &Arc<Shared>, runnable: Runnable, info: ScheduleInfo) {
    let mut runnable = Some(runnable);
    if CURRENT_ID.try_with(|c| c.get()) == Ok(shared.id) {
        with_current(|e| {
            let queue = if info.woken_while_running {
                &e.yielded
            } else {
                &e.local
            };
            queue.borrow_mut().extend(runnable.take())
        });
    }
    if let Some(runnable) = runnable {
        shared.schedule_remote(runnable);
    }
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

/// The current executor's counters, if inside a runtime.
pub(crate) fn current_stats() -> Option<ExecutorStats> {
    with_current(|e| e.stats())
}

/// Whether other tasks of the current executor are ready to run (false
/// outside a runtime). The fs read path uses it to tell a lone reader, for
/// whom a synchronous `RWF_NOWAIT` attempt is cheapest, from a crowd whose
/// reads batch into one `io_uring_enter`.
pub(crate) fn current_has_ready() -> bool {
    with_current(|e| e.has_ready()).unwrap_or(false)
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
///     .run(|_core| async { percore::cores() })
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
///     .run(|core| async move {
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
             Runtime::run (one thread per core) or percore::run"
        ),
        None => panic!(
            "percore::spawn_on({core}): this runtime has {n} core(s), numbered 0..{n}",
            n = cores()
        ),
    };
    let (tx, rx) = oneshot::<Result<Fut::Output, JoinError>>();
    target.remote_spawns.push(Box::new(move || {
        let handle = spawn(make());
        drop(spawn(async move { tx.send(handle.await) }));
    }));
    target.unpark();
    JoinHandle::remote(rx)
}
