//! A one-way flag that tasks on any core can wait for.
//!
//! The items are `pub` only so that the loom model can reach them (through
//! `percore::loom_internals`, under `--cfg loom`); the module is private.

#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::loom_sync::{AtomicBool, Ordering};
use crate::wait_queue::{WaitQueue, Waiter};

/// Starts unset; once [`Latch::set`], every waiter wakes (on whichever core
/// it runs, through that core's ring) and later waits return at once.
pub struct Latch {
    flag: AtomicBool,
    /// A waiter that gives up takes its entry out, so a long-lived latch
    /// (the shutdown latch, waited on by every connection) collects no dead
    /// ones.
    waiters: WaitQueue,
}

impl Default for Latch {
    fn default() -> Latch {
        Latch::new()
    }
}

impl Latch {
    /// An unset latch.
    pub fn new() -> Latch {
        Latch {
            flag: AtomicBool::new(false),
            waiters: WaitQueue::new(),
        }
    }

    /// Sets the latch; returns whether this call was the one that set it.
    pub fn set(&self) -> bool {
        if self.flag.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.waiters.wake_all();
        true
    }

    /// Whether the latch is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Waits until the latch is set.
    pub fn wait(&self) -> LatchWait<'_> {
        LatchWait {
            latch: self,
            waiter: self.waiters.waiter(),
        }
    }
}

/// The future of [`Latch::wait`].
pub struct LatchWait<'a> {
    latch: &'a Latch,
    waiter: Waiter<'a>,
}

impl Future for LatchWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.is_set() {
            // Everyone was woken: no wake-up to hand on.
            self.waiter.done(|| false);
            return Poll::Ready(());
        }
        // Polled again with the same waker (a connection task that selects
        // on the shutdown every poll): `register` takes no lock then.
        self.waiter.register(cx.waker());
        // Re-check after registering: `set` stores the flag before it takes
        // the queue's lock to wake everyone, so either this load sees the
        // flag or `set` finds this waiter.
        if self.latch.is_set() {
            self.waiter.done(|| false);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::Latch;
    use crate::wait_queue::tests::{counter, woken};

    #[test]
    fn latch_waiter_cancelled_in_the_middle_leaves_the_others_woken() {
        let latch = Latch::new();
        let (counts, wakers): (Vec<_>, Vec<Waker>) = (0..3).map(|_| counter()).unzip();
        let mut a = Box::pin(latch.wait());
        let mut b = Box::pin(latch.wait());
        let mut c = Box::pin(latch.wait());
        for (w, waker) in [&mut a, &mut b, &mut c].into_iter().zip(&wakers) {
            assert!(
                w.as_mut()
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        drop(b); // cancelled in the middle of the queue
        assert!(latch.set());
        let wakes: Vec<_> = counts.iter().map(|c| woken(c)).collect();
        assert_eq!(wakes, [1, 0, 1]);
        assert!(
            a.as_mut()
                .poll(&mut Context::from_waker(&wakers[0]))
                .is_ready()
        );
        assert!(
            c.as_mut()
                .poll(&mut Context::from_waker(&wakers[2]))
                .is_ready()
        );
    }

    #[test]
    fn latch_waiters_that_give_up_leave_no_entry() {
        let latch = Latch::new();
        let (count, waker) = counter();
        for _ in 0..1000 {
            let mut w = pin!(latch.wait());
            assert!(
                w.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            // Polled again with the same waker: still one entry.
            assert!(
                w.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
        }
        assert!(!latch.waiters.wake_one(), "every waiter took its entry out");
        assert!(latch.set());
        assert_eq!(woken(&count), 0);
        assert!(!latch.set(), "set once");
    }
}
