//! The current core: while a runtime runs on this thread, one slot holds
//! its driver, executor, timers and shutdown, and every layer reaches them
//! here. One guard sets it and puts back what was there before (a runtime
//! built inside another's `spawn_blocking` thread, a test's nested runtime).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::driver::Driver;
use crate::executor::Executor;
use crate::shutdown::ShutdownHandle;
use crate::time::Timers;

/// What a running core is made of.
pub(crate) struct Core {
    pub(crate) driver: Rc<RefCell<Driver>>,
    pub(crate) executor: Rc<Executor>,
    pub(crate) timers: Rc<Timers>,
    pub(crate) shutdown: ShutdownHandle,
}

struct Slot {
    core: RefCell<Option<Core>>,
    /// The current executor's id (0: none), read by every task wake-up to
    /// tell a local wake from a remote one without a borrow.
    executor_id: Cell<usize>,
}

thread_local! {
    static CURRENT: Slot = const {
        Slot {
            core: RefCell::new(None),
            executor_id: Cell::new(0),
        }
    };
}

/// Makes `core` this thread's current core until the guard drops.
pub(crate) fn enter(core: Core) -> Guard {
    let id = core.executor.shared().id;
    CURRENT.with(|s| Guard {
        prev: s.core.replace(Some(core)),
        prev_id: s.executor_id.replace(id),
    })
}

/// Restores the core that was current before [`enter`].
pub(crate) struct Guard {
    prev: Option<Core>,
    prev_id: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let prev_id = self.prev_id;
        // The slot is gone only while the thread's locals are destroyed,
        // and then nothing runs on this core any more.
        let _ = CURRENT.try_with(|s| {
            s.executor_id.set(prev_id);
            // The core leaves the slot before it drops, outside the borrow.
            let _left = s.core.replace(prev);
        });
    }
}

/// Runs `f` with the current core; `None` outside a runtime, or while this
/// thread's locals are being destroyed.
pub(crate) fn with<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    CURRENT
        .try_with(|s| s.core.borrow().as_ref().map(f))
        .ok()
        .flatten()
}

/// Runs `f` with the current executor and `value` if that executor's id is
/// `id`; else hands `value` back. One thread-local access: the task wake-up
/// path's check for a wake on the task's own core.
pub(crate) fn with_executor<T>(id: usize, value: T, f: impl FnOnce(&Executor, T)) -> Result<(), T> {
    let mut value = Some(value);
    // Gone only while the thread's locals are destroyed: `value` comes back.
    let _ = CURRENT.try_with(|s| {
        if s.executor_id.get() != id {
            return;
        }
        if let Some(core) = s.core.borrow().as_ref()
            && let Some(v) = value.take()
        {
            f(&core.executor, v);
        }
    });
    value.map_or(Ok(()), Err)
}

/// Whether this thread's slot still exists (it is gone while the thread's
/// locals are being destroyed).
pub(crate) fn alive() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}
