//! A one-way flag that tasks on any core can wait for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// Starts unset; once [`Latch::set`], every waiter wakes (on whichever core
/// it runs, through that core's ring) and later waits return at once.
pub(crate) struct Latch {
    flag: AtomicBool,
    /// Waiters keyed by slot, so a waiter that gives up removes its waker
    /// and a long-lived latch does not collect dead ones.
    wakers: Mutex<Slab<Waker>>,
}

impl Latch {
    pub(crate) fn new() -> Latch {
        Latch {
            flag: AtomicBool::new(false),
            wakers: Mutex::new(Slab::new()),
        }
    }

    /// Sets the latch; returns whether this call was the one that set it.
    pub(crate) fn set(&self) -> bool {
        if self.flag.swap(true, Ordering::SeqCst) {
            return false;
        }
        let wakers = std::mem::take(&mut *self.lock());
        for (_, w) in wakers {
            w.wake();
        }
        true
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Waits until the latch is set.
    pub(crate) fn wait(&self) -> LatchWait<'_> {
        LatchWait {
            latch: self,
            key: None,
            waker: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The future of [`Latch::wait`].
pub(crate) struct LatchWait<'a> {
    latch: &'a Latch,
    key: Option<usize>,
    /// The waker stored under `key`, to skip the lock when it is unchanged.
    waker: Option<Waker>,
}

impl Future for LatchWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.is_set() {
            return Poll::Ready(());
        }
        // Already registered with this waker (a task polled again for other
        // reasons, e.g. a connection task that selects on the shutdown):
        // `set` will wake it, and there is nothing to update.
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let mut wakers = self.latch.lock();
        // Re-check under the lock: `set` takes the list after storing the flag.
        if self.latch.is_set() {
            return Poll::Ready(());
        }
        match self.key.and_then(|k| wakers.get_mut(k)) {
            Some(w) => w.clone_from(cx.waker()),
            None => {
                let key = wakers.insert(cx.waker().clone());
                drop(wakers);
                self.key = Some(key);
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for LatchWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key
            && !self.latch.is_set()
        {
            self.latch.lock().try_remove(key);
        }
    }
}
