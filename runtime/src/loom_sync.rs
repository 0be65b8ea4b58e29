//! Locks, atomics and threads of the code that crosses threads (the wait
//! queue, the channel, the blocking pool), taken from here so that a loom
//! model checks the real code rather than a copy: under `--cfg loom`
//! (`RUSTFLAGS="--cfg loom"`, the models in `tests/loom_*.rs`) these are
//! loom's instrumented types, otherwise std's and the crates' own.
//!
//! Under loom, crossbeam's `ArrayQueue` and the `atomic-waker` crate are
//! replaced by small stand-ins with the same methods (a locked bounded deque,
//! loom's `AtomicWaker`): those crates are checked by their own authors, and
//! what the models check is percore's protocol around them (who registers,
//! who wakes, in which order).

#![forbid(unsafe_code)]

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use atomic_waker::AtomicWaker;
#[cfg(not(loom))]
pub(crate) use crossbeam_queue::ArrayQueue;

/// Locks `mutex`; a panic while it was held does not poison it for us (every
/// critical section here leaves its data consistent before anything can
/// panic).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(loom)]
pub(crate) use self::loom_stand_ins::{ArrayQueue, AtomicWaker};

#[cfg(loom)]
mod loom_stand_ins {
    use std::collections::VecDeque;
    use std::task::Waker;

    use super::{Mutex, lock};

    /// `crossbeam_queue::ArrayQueue`'s methods over a locked deque.
    pub(crate) struct ArrayQueue<T> {
        cap: usize,
        items: Mutex<VecDeque<T>>,
    }

    impl<T> ArrayQueue<T> {
        pub(crate) fn new(cap: usize) -> ArrayQueue<T> {
            ArrayQueue {
                cap,
                items: Mutex::new(VecDeque::new()),
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = lock(&self.items);
            if items.len() == self.cap {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.items).pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            lock(&self.items).len()
        }

        pub(crate) fn is_full(&self) -> bool {
            lock(&self.items).len() == self.cap
        }
    }

    /// `atomic_waker::AtomicWaker`'s methods over loom's.
    pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

    impl AtomicWaker {
        pub(crate) fn new() -> AtomicWaker {
            AtomicWaker(loom::future::AtomicWaker::new())
        }

        pub(crate) fn register(&self, waker: &Waker) {
            self.0.register_by_ref(waker);
        }

        pub(crate) fn wake(&self) {
            self.0.wake();
        }
    }
}
