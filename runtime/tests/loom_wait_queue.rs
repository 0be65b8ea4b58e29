//! Loom model of the wait queue (`RUSTFLAGS="--cfg loom"`, see `.ci/run`):
//! a waiter cancelled while others wait never loses a wake-up, in every
//! interleaving of register, wake and cancel across threads.

#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use percore::loom_internals::WaitQueue;

/// The smallest user of the protocol: permits, taken by waiting tasks.
struct Permits {
    free: AtomicUsize,
    waiters: WaitQueue,
}

impl Permits {
    fn new() -> Permits {
        Permits {
            free: AtomicUsize::new(0),
            waiters: WaitQueue::new(),
        }
    }

    fn try_take(&self) -> bool {
        let mut n = self.free.load(Ordering::SeqCst);
        while n > 0 {
            match self
                .free
                .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    fn give(&self) {
        self.free.fetch_add(1, Ordering::SeqCst);
        self.waiters.wake_one();
    }

    /// Takes a permit, waiting in the queue: the protocol of the module docs.
    async fn take(&self) {
        let mut waiter = self.waiters.waiter();
        std::future::poll_fn(|cx| {
            let more_free = || self.free.load(Ordering::SeqCst) > 0;
            if self.try_take() {
                waiter.done(more_free);
                return Poll::Ready(());
            }
            waiter.register(cx.waker());
            if self.try_take() {
                waiter.done(more_free);
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

/// Polls a `take` once and drops it (a timeout fired): if it got a permit,
/// the permit goes back, as a buffer taken and dropped would.
fn take_then_cancel(permits: &Permits) {
    let mut take = pin!(permits.take());
    if take
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
    {
        permits.give();
    }
}

#[test]
fn loom_wait_queue_cancel_in_the_middle_loses_no_wake_up() {
    loom::model(|| {
        let permits = Arc::new(Permits::new());
        let cancelled = thread::spawn({
            let permits = permits.clone();
            move || take_then_cancel(&permits)
        });
        let live = thread::spawn({
            let permits = permits.clone();
            move || loom::future::block_on(permits.take())
        });
        permits.give();
        cancelled.join().unwrap();
        // Deadlocks (and loom reports it) if the live waiter is never woken.
        live.join().unwrap();
    });
}

#[test]
fn loom_wait_queue_two_live_waiters_behind_a_cancelled_one() {
    loom::model(|| {
        let permits = Arc::new(Permits::new());
        let cancelled = thread::spawn({
            let permits = permits.clone();
            move || take_then_cancel(&permits)
        });
        let live: Vec<_> = (0..2)
            .map(|_| {
                let permits = permits.clone();
                thread::spawn(move || loom::future::block_on(permits.take()))
            })
            .collect();
        permits.give();
        permits.give();
        cancelled.join().unwrap();
        for t in live {
            t.join().unwrap();
        }
    });
}

/// The latch on the same queue: `set` from one thread wakes a waiter on
/// another, whether that waiter registers before or after the set, while a
/// third waiter gives up.
#[test]
fn loom_latch_set_wakes_every_live_waiter() {
    use percore::loom_internals::Latch;

    loom::model(|| {
        let latch = Arc::new(Latch::new());
        let cancelled = thread::spawn({
            let latch = latch.clone();
            move || {
                let mut wait = pin!(latch.wait());
                let _ = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            }
        });
        let live = thread::spawn({
            let latch = latch.clone();
            move || loom::future::block_on(latch.wait())
        });
        assert!(latch.set());
        cancelled.join().unwrap();
        live.join().unwrap();
        assert!(latch.is_set());
    });
}
