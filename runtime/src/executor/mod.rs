//! The executor: a run queue of local tasks per core.
//!
//! Provides: `spawn` of `!Send` futures, [`JoinHandle`] with abort and panic
//! capture, a cross-thread wake path (a lock-free remote queue plus a callback
//! that unparks the core), and a registry of live tasks so shutdown can drop
//! every future while the driver is still there to take over their ops.
//!
//! May not: touch any io_uring type. Unparking the ring is a callback given
//! by the runtime.

mod join;
mod task;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;

use async_task::Runnable;
use crossbeam_queue::SegQueue;
use slab::Slab;

pub use self::join::{Either, join_all, race, select};
pub use self::task::{JoinError, JoinHandle, spawn, yield_now};

/// Executor counters, readable through [`crate::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecutorStats {
    /// Tasks spawned on this core.
    pub spawned: u64,
    /// Task polls.
    pub polled: u64,
    /// Wake-ups that arrived from other threads.
    pub remote_wakes: u64,
}

/// The part of an executor other threads may touch.
pub(crate) struct Shared {
    id: usize,
    remote: SegQueue<Runnable>,
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

pub(crate) struct Executor {
    shared: Arc<Shared>,
    local: RefCell<VecDeque<Runnable>>,
    /// Wakers of live tasks, so shutdown can reach and drop each one.
    tasks: RefCell<Slab<Waker>>,
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
                unpark,
            }),
            local: RefCell::new(VecDeque::with_capacity(256)),
            tasks: RefCell::new(Slab::new()),
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

    /// Runs up to `budget` ready tasks; returns how many ran.
    pub(crate) fn run_ready(&self, budget: usize) -> usize {
        self.drain_remote();
        let mut ran = 0;
        while ran < budget {
            let next = self.local.borrow_mut().pop_front();
            let Some(runnable) = next else { break };
            runnable.run();
            ran += 1;
        }
        self.bump(|s| s.polled += ran as u64);
        ran
    }

    fn drain_remote(&self) {
        let mut n = 0;
        while let Some(r) = self.shared.remote.pop() {
            self.local.borrow_mut().push_back(r);
            n += 1;
        }
        if n > 0 {
            self.bump(|s| s.remote_wakes += n);
        }
    }

    /// Whether a task is ready to run (locally or woken from elsewhere).
    pub(crate) fn has_ready(&self) -> bool {
        !self.local.borrow().is_empty() || !self.shared.remote.is_empty()
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
            loop {
                self.drain_remote();
                let next = self.local.borrow_mut().pop_front();
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

/// Schedules a woken task: onto the local queue when woken on its own core,
/// else onto the remote queue with an unpark.
fn schedule(shared: &Arc<Shared>, runnable: Runnable) {
    let mut runnable = Some(runnable);
    if CURRENT_ID.try_with(|c| c.get()) == Ok(shared.id) {
        with_current(|e| e.local.borrow_mut().extend(runnable.take()));
    }
    if let Some(runnable) = runnable {
        shared.schedule_remote(runnable);
    }
}

/// The current executor's counters, if inside a runtime.
pub(crate) fn current_stats() -> Option<ExecutorStats> {
    with_current(|e| e.stats())
}
