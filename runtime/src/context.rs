//! The current core: while a runtime runs on this thread, one slot holds
//! its driver, executor, timers and shutdown, and every layer reaches them
//! here. One guard sets it and puts back what was there before (a runtime
//! built inside another's `spawn_blocking` thread, a test's nested runtime).
//!
//! Every op poll, wake and ring access reads the slot, so it is a plain
//! thread-local without a destructor (no lazy-init or destroyed-state check
//! on access) holding a pointer, not a `RefCell` (no borrow count): the core
//! it points to is kept alive by the guard that set it, which outlives every
//! read made while it is current (see [`Guard`]).

use std::cell::{Cell, RefCell};
use std::ptr;
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
    /// The current core (null: none): `Rc::into_raw` of a core whose
    /// [`Guard`] is alive (see there).
    core: Cell<*const Core>,
    /// The current executor's id (0: none), read by every task wake-up to
    /// tell a local wake from a remote one without a borrow.
    executor_id: Cell<usize>,
}

/// Lives as long as this thread's locals: its destructor state is what
/// [`alive`] reports, the one place teardown order matters.
struct Alive;

impl Drop for Alive {
    fn drop(&mut self) {}
}

thread_local! {
    // No destructor (only `Cell`s of plain data): accessing it is a
    // thread-pointer offset, with no state to check.
    static CURRENT: Slot = const {
        Slot {
            core: Cell::new(ptr::null()),
            executor_id: Cell::new(0),
        }
    };
    static ALIVE: Alive = const { Alive };
}

const _: () = assert!(!std::mem::needs_drop::<Slot>());

/// Makes `core` this thread's current core until the guard drops.
pub(crate) fn enter(core: Core) -> Guard {
    // Registers `ALIVE`'s destructor no later than a runtime first runs
    // here, as the slot's own destructor was before it had none.
    let _ = ALIVE.try_with(|_| ());
    let id = core.executor.shared().id;
    let core = Rc::new(core);
    let raw = Rc::into_raw(core.clone());
    CURRENT.with(|s| Guard {
        prev: s.core.replace(raw),
        prev_id: s.executor_id.replace(id),
        core,
    })
}

/// Restores the core that was current before [`enter`].
///
/// Keeps its core alive (`core`) until it drops, and guards drop in the
/// reverse order of [`enter`]: `Runtime` binds each to one function's
/// scope, and a `Guard` is never moved out of it. So a core that is current
/// outlives every read of the slot made while it is current, including
/// reads made while a nested runtime enters and leaves.
pub(crate) struct Guard {
    /// The core current before this one (null: none).
    prev: *const Core,
    prev_id: usize,
    core: Rc<Core>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mine = CURRENT.with(|s| {
            s.executor_id.set(self.prev_id);
            s.core.replace(self.prev)
        });
        if ptr::eq(mine, Rc::as_ptr(&self.core)) {
            // SAFETY: `mine` is the `Rc::into_raw` made by `enter` for this
            // guard's core and put in the slot; it just left the slot, so
            // this is the one place its count is given back.
            drop(unsafe { Rc::from_raw(mine) });
        }
        // Otherwise guards dropped out of order (not done in this crate):
        // whatever the slot held keeps its count (leaked), so nothing the
        // slot may point to again is ever freed.
    }
}

/// Runs `f` with the current core; `None` outside a runtime.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let core = CURRENT.with(|s| s.core.get());
    // SAFETY: a non-null pointer in the slot came from `Rc::into_raw` in
    // `enter` and keeps that count until its guard drops; the guard is alive
    // while its core is current and drops only after every caller up the
    // stack returned (guards drop in reverse order of `enter`, see
    // `Guard`), so the core outlives this call. The reference goes only to
    // `f`, whose signature keeps it from escaping.
    unsafe { core.as_ref() }.map(f)
}

/// Runs `f` with the current executor and `value` if that executor's id is
/// `id`; else hands `value` back. One thread-local access: the task wake-up
/// path's check for a wake on the task's own core.
#[inline]
pub(crate) fn with_executor<T>(id: usize, value: T, f: impl FnOnce(&Executor, T)) -> Result<(), T> {
    let core = CURRENT.with(|s| {
        if s.executor_id.get() == id {
            s.core.get()
        } else {
            ptr::null()
        }
    });
    // SAFETY: as in `with`: the slot's pointer, when not null, is a core
    // its live guard keeps alive for the duration of this call.
    match unsafe { core.as_ref() } {
        Some(core) => {
            f(&core.executor, value);
            Ok(())
        }
        None => Err(value),
    }
}

/// Whether this thread's locals still exist (they are being destroyed when
/// a runtime kept in a `thread_local` drops at thread exit).
pub(crate) fn alive() -> bool {
    ALIVE.try_with(|_| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_empty_outside_a_runtime_and_after_one() {
        assert!(with(|_| ()).is_none());
        assert_eq!(with_executor(0, 7, |_, _| {}), Err(7));
        crate::Runtime::builder().build().unwrap().block_on(async {
            assert!(with(|_| ()).is_some());
        });
        assert!(with(|_| ()).is_none());
        assert!(alive());
    }

    #[test]
    fn a_nested_runtime_puts_the_outer_core_back() {
        let outer = crate::Runtime::builder().build().unwrap();
        outer.block_on(async {
            let id = with(|c| c.executor.shared().id).unwrap();
            // Its drop enters the inner core and leaves it again.
            drop(crate::Runtime::builder().build().unwrap());
            assert_eq!(with(|c| c.executor.shared().id), Some(id));
            assert_eq!(with_executor(id, (), |_, ()| {}), Ok(()));
            assert_eq!(with_executor(id + 1, (), |_, ()| {}), Err(()));
        });
        assert!(with(|_| ()).is_none());
    }
}
