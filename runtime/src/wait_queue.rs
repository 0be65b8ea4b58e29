//! A first-in first-out queue of tasks waiting for something, where a waiter
//! that gives up leaves the queue.
//!
//! Every place in percore that parks wakers until something frees up uses
//! this one type: channel senders waiting for room, fixed-buffer pool `get`s
//! waiting for a buffer, latch waiters waiting for the latch. The bug class it
//! closes: with a plain `VecDeque<Waker>`, a waiting future dropped by a
//! timeout, a `select` or an abort leaves its waker behind; the next
//! `wake_one` wakes that dead entry, and a live waiter behind it sleeps on
//! while what it waits for is free. Here a wait is a [`Waiter`] value owned
//! by the waiting future: dropping it takes its entry out, and if the entry
//! had already been woken but the wake-up was never used, it passes the
//! wake-up on to the next waiter.
//!
//! # Protocol
//!
//! For a resource *R* (room in a channel, a free buffer):
//!
//! - **waiting side** (in `poll`): try to take *R*; if that fails, call
//!   [`Waiter::register`] with the task's waker, then try again, and return
//!   `Pending` only if the retry fails too. Once *R* is taken (or the wait
//!   ends for another reason, such as a closed channel), call
//!   [`Waiter::done`] with a check of whether more of *R* is free.
//! - **releasing side**: make *R* available, then call
//!   [`WaitQueue::wake_one`] (or [`WaitQueue::wake_all`] for a condition that
//!   stays true, like a latch).
//!
//! `register` ends with a `SeqCst` fence and `wake_one` starts with one: with
//! *R* and the queue possibly on different threads, either the waiter's retry
//! sees *R*, or `wake_one` sees the waiter's entry. Each `wake_one` wakes one
//! entry and takes it out of the queue; a woken waiter whose retry fails
//! registers again at the back.
//!
//! A waiter can be woken for a unit it does not take: it took another one in
//! its retry just before the wake-up came (the loom model found this), or it
//! was cancelled. Its wake-up then belongs to the next waiter: `done` hands
//! it on when the caller's check says more is free, and the drop of a waiter
//! that did not call `done` always hands it on.
//!
//! # Cost
//!
//! `wake_one` with nobody waiting is a fence and one atomic load, no lock.
//! `register` with the waker it stored last, while no entry of the queue has
//! been woken since, is two loads and no lock (a task polled again for other
//! reasons, e.g. one that selects on the shutdown latch every poll).
//!
//! [`LocalWaitQueue`] is the same queue for `percore::sync`'s single-core
//! primitives: a `RefCell` instead of the lock, no fences and no atomics
//! (the fences and the lock were most of `Notify`'s cost).
//!
//! The items are `pub` only so that the loom models can reach them (through
//! `percore::loom_internals`, which exists only under `--cfg loom`); the
//! module itself is private.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::task::Waker;

use slab::Slab;

use crate::loom_sync::{AtomicUsize, Mutex, Ordering, fence, lock};

/// No entry (the end of the list, or a waiter that has none).
const NIL: usize = usize::MAX;

/// Whether, and how, a waiter has been woken since it last registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// Not woken: still in the queue, or never registered.
    No,
    /// Taken out of the queue by a `wake_one`.
    One,
    /// Taken out of the queue by a `wake_all`.
    All,
}

/// A queue of waiting tasks; see the [module docs](self).
pub struct WaitQueue {
    /// Entries in the list now (a copy of `List::linked`, stored under the
    /// lock), so `wake_one` skips the lock when nobody waits.
    linked: AtomicUsize,
    /// Bumped (under the lock) by every call that woke an entry: a waiter
    /// that saw no change since it registered is still in the list.
    wakes: AtomicUsize,
    list: Mutex<List>,
}

/// The entries, in a slab so a waiter finds its own in O(1), linked into a
/// FIFO list by slab key. Both queues keep their entries here; they differ
/// only in how they guard it (a lock and fences, or a `RefCell`).
struct List {
    entries: Slab<Entry>,
    head: usize,
    tail: usize,
    /// Entries in the list (entries woken but not yet dropped are not).
    linked: usize,
}

struct Entry {
    /// The waker to call; taken when the entry is woken.
    waker: Option<Waker>,
    prev: usize,
    next: usize,
    /// `No` while in the list. Once woken the entry stays in the slab until
    /// its waiter registers again (back into the list) or leaves.
    woken: Woken,
}

impl List {
    fn new() -> List {
        List {
            entries: Slab::new(),
            head: NIL,
            tail: NIL,
            linked: 0,
        }
    }

    /// Links `key`'s entry in at the back of the list, or at the front:
    /// between `prev` and `next`, one of which is `NIL`, as `unlink` undoes.
    fn link(&mut self, key: usize, front: bool) {
        let (prev, next) = if front {
            (NIL, self.head)
        } else {
            (self.tail, NIL)
        };
        let entry = &mut self.entries[key];
        entry.prev = prev;
        entry.next = next;
        entry.woken = Woken::No;
        if prev == NIL {
            self.head = key;
        } else {
            self.entries[prev].next = key;
        }
        if next == NIL {
            self.tail = key;
        } else {
            self.entries[next].prev = key;
        }
        self.linked += 1;
    }

    fn unlink(&mut self, key: usize, woken: Woken) {
        let entry = &mut self.entries[key];
        debug_assert_eq!(entry.woken, Woken::No, "entry {key} is not linked");
        let (prev, next) = (entry.prev, entry.next);
        entry.woken = woken;
        if prev == NIL {
            self.head = next;
        } else {
            self.entries[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entries[next].prev = prev;
        }
        self.linked -= 1;
    }

    /// Takes the first entry out of the list, marks it woken by `how`, and
    /// returns its waker.
    fn wake_front(&mut self, how: Woken) -> Option<Waker> {
        let key = self.head;
        if key == NIL {
            return None;
        }
        self.unlink(key, how);
        self.entries[key].waker.take()
    }

    /// Takes every entry out of the list, marked woken by `wake_all`, and
    /// returns their wakers, for the caller to call after its guard.
    fn wake_every(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::with_capacity(self.linked);
        while let Some(w) = self.wake_front(Woken::All) {
            wakers.push(w);
        }
        wakers
    }

    /// Whether `key`'s entry is still in the list with a waker that wakes
    /// the same task as `waker`: registering again would change nothing.
    fn is_queued_with(&self, key: usize, waker: &Waker) -> bool {
        key != NIL && {
            let entry = &self.entries[key];
            entry.woken == Woken::No && entry.waker.as_ref().is_some_and(|w| w.will_wake(waker))
        }
    }

    /// Puts `*key`'s entry (a new one if `NIL`) in the list with `waker`, or
    /// keeps its place if it is still there. A woken entry goes back to the
    /// back, or for `keep_turn` to the front. Returns the waker it replaced,
    /// for the caller to drop after its guard: dropping a waker may run
    /// code that uses this queue.
    fn enqueue(&mut self, key: &mut usize, waker: &Waker, keep_turn: bool) -> Option<Waker> {
        if *key == NIL {
            *key = self.entries.insert(Entry {
                waker: Some(waker.clone()),
                prev: NIL,
                next: NIL,
                woken: Woken::No,
            });
            self.link(*key, false);
            return None;
        }
        let entry = &mut self.entries[*key];
        let old = match &entry.waker {
            Some(w) if w.will_wake(waker) => None,
            _ => entry.waker.replace(waker.clone()),
        };
        if entry.woken != Woken::No {
            // Woken before, and the retry after that wake-up failed: the
            // wake-up is used; wait again at the back (or, to keep the turn,
            // at the front).
            self.link(*key, keep_turn);
        }
        old
    }

    /// Takes `key`'s entry out; returns how it had been woken, and its
    /// waker for the caller to drop after its guard.
    fn remove(&mut self, key: usize) -> (Woken, Option<Waker>) {
        let woken = self.entries[key].woken;
        if woken == Woken::No {
            self.unlink(key, Woken::No);
        }
        (woken, self.entries.remove(key).waker)
    }
}

/// Wakes `waker`, if there is one; whether there was. Both queues' `wake_one`
/// end here, after their guard is gone.
#[inline]
fn wake(waker: Option<Waker>) -> bool {
    waker.map(Waker::wake).is_some()
}

impl Default for WaitQueue {
    fn default() -> WaitQueue {
        WaitQueue::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> WaitQueue {
        WaitQueue {
            linked: AtomicUsize::new(0),
            wakes: AtomicUsize::new(0),
            list: Mutex::new(List::new()),
        }
    }

    /// A new wait on this queue, not registered yet. Keep it in the waiting
    /// future, so that dropping the future takes its entry out.
    pub fn waiter(&self) -> Waiter<'_> {
        Waiter {
            queue: self,
            key: NIL,
            waker: None,
            wakes_seen: 0,
        }
    }

    /// Wakes the longest-waiting entry, taking it out of the queue; false if
    /// nobody waits. Call it after making one unit of the resource available.
    pub fn wake_one(&self) -> bool {
        // Pairs with the fence at the end of `register`: either that
        // waiter's retry sees what the caller just made available, or this
        // load sees the waiter's entry.
        fence(Ordering::SeqCst);
        if self.linked.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let waker = {
            let mut list = lock(&self.list);
            let waker = list.wake_front(Woken::One);
            if waker.is_some() {
                self.wakes.fetch_add(1, Ordering::Release);
                self.linked.store(list.linked, Ordering::SeqCst);
            }
            waker
        };
        // Woken outside the lock: a waker may do anything, even register
        // again on this queue.
        wake(waker)
    }

    /// Wakes every entry, taking them all out of the queue. For a condition
    /// that stays true once set (a latch): set it, then call this.
    pub fn wake_all(&self) {
        let wakers = {
            let mut list = lock(&self.list);
            let wakers = list.wake_every();
            self.wakes.fetch_add(1, Ordering::Release);
            self.linked.store(0, Ordering::SeqCst);
            wakers
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// One task's wait on a [`WaitQueue`]; see the [module docs](self) for the
/// protocol. Dropping it without [`done`](Waiter::done) (the wait was
/// cancelled) takes its entry out of the queue and, if the entry had been
/// woken, wakes the next waiter in its place.
pub struct Waiter<'a> {
    queue: &'a WaitQueue,
    /// Slab key of this waiter's entry, or `NIL`.
    key: usize,
    /// The waker stored in the entry at the last `register`.
    waker: Option<Waker>,
    /// `queue.wakes` at the last `register`.
    wakes_seen: usize,
}

impl Waiter<'_> {
    /// Puts this waiter at the back of the queue with `waker`, or keeps its
    /// place (and updates the waker) if it is still queued. Call it after a
    /// failed attempt, then try once more before returning `Pending`.
    pub fn register(&mut self, waker: &Waker) {
        // Still in the list with this waker: no entry has been woken since
        // this waiter registered, so neither has this one. The fence of that
        // registration already orders the caller's retry.
        if self.key != NIL
            && self.waker.as_ref().is_some_and(|w| w.will_wake(waker))
            && self.queue.wakes.load(Ordering::Acquire) == self.wakes_seen
        {
            return;
        }
        let old = {
            let mut list = lock(&self.queue.list);
            let old = list.enqueue(&mut self.key, waker, false);
            // `wakes` changes only under the lock.
            self.wakes_seen = self.queue.wakes.load(Ordering::Relaxed);
            self.queue.linked.store(list.linked, Ordering::SeqCst);
            old
        };
        drop(old);
        match &mut self.waker {
            Some(w) => w.clone_from(waker),
            None => self.waker = Some(waker.clone()),
        }
        // Pairs with the fence in `wake_one`; see there.
        fence(Ordering::SeqCst);
    }

    /// The wait is over: the resource was taken, or the wait ended for
    /// another reason (then `more_free` can say `false`). Leaves the queue.
    ///
    /// If this waiter had been woken, the wake-up may have been meant for a
    /// unit other than the one it took (it took one in its retry, and the
    /// wake-up for the next came before it left). `more_free` is asked only
    /// then: if more of the resource is free, the wake-up goes on to the next
    /// waiter, which otherwise would sleep with it free.
    pub fn done(&mut self, more_free: impl FnOnce() -> bool) {
        if self.leave() && more_free() {
            self.queue.wake_one();
        }
    }

    /// Takes the entry out; returns whether it had been woken (and so was
    /// out of the list already).
    fn leave(&mut self) -> bool {
        if self.key == NIL {
            return false;
        }
        let key = std::mem::replace(&mut self.key, NIL);
        self.waker = None;
        let (woken, waker) = {
            let mut list = lock(&self.queue.list);
            let removed = list.remove(key);
            self.queue.linked.store(list.linked, Ordering::SeqCst);
            removed
        };
        drop(waker);
        woken != Woken::No
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.leave() {
            // Woken for something this waiter will not take now: hand the
            // wake-up on, or the waiter behind it sleeps with it free.
            self.queue.wake_one();
        }
    }
}

/// [`WaitQueue`] for tasks of one core (`percore::sync`): the same queue
/// and protocol, guarded by a `RefCell` instead of a lock and fences, and
/// so neither `Send` nor `Sync`. A waiter may ask whether, and by which
/// call, it was woken ([`LocalWaiter::woken`]), at the cost of a borrow.
pub struct LocalWaitQueue {
    list: RefCell<List>,
}

impl Default for LocalWaitQueue {
    fn default() -> LocalWaitQueue {
        LocalWaitQueue::new()
    }
}

impl LocalWaitQueue {
    /// An empty queue.
    pub fn new() -> LocalWaitQueue {
        LocalWaitQueue {
            list: RefCell::new(List::new()),
        }
    }

    /// A new wait on this queue, not registered yet.
    pub fn waiter(&self) -> LocalWaiter<'_> {
        LocalWaiter {
            queue: self,
            key: NIL,
        }
    }

    /// Wakes the longest-waiting entry, taking it out of the queue; false if
    /// nobody waits.
    pub fn wake_one(&self) -> bool {
        // The borrow ends before the wake: a waker may use this queue.
        let waker = self.list.borrow_mut().wake_front(Woken::One);
        wake(waker)
    }

    /// Wakes every entry, taking them all out of the queue.
    pub fn wake_all(&self) {
        // The borrow ends before the wakes: a waker may use this queue.
        let wakers = self.list.borrow_mut().wake_every();
        for w in wakers {
            w.wake();
        }
    }
}

/// One task's wait on a [`LocalWaitQueue`]; as [`Waiter`]. Dropping it
/// without [`done`](LocalWaiter::done) takes its entry out and, if a
/// `wake_one` had woken it, wakes the next waiter in its place.
pub struct LocalWaiter<'a> {
    queue: &'a LocalWaitQueue,
    /// Slab key of this waiter's entry, or `NIL`.
    key: usize,
}

impl LocalWaiter<'_> {
    /// As [`Waiter::register`]. No retry is needed after it: nothing can
    /// change between the caller's attempt and this call.
    pub fn register(&mut self, waker: &Waker) {
        self.register_at(waker, false);
    }

    /// As [`register`](LocalWaiter::register), but a waiter that was woken
    /// and waits again goes back to the *front* of the queue: it keeps its
    /// turn. For a strictly first-in first-out resource where the woken
    /// waiter may find too little free (a semaphore's `acquire_many` woken by
    /// a release of fewer permits than it needs), so that the waiters behind
    /// it do not overtake it. A waiter never woken joins at the back.
    pub fn register_first(&mut self, waker: &Waker) {
        self.register_at(waker, true);
    }

    fn register_at(&mut self, waker: &Waker, keep_turn: bool) {
        let old = {
            let mut list = self.queue.list.borrow_mut();
            if list.is_queued_with(self.key, waker) {
                return;
            }
            list.enqueue(&mut self.key, waker, keep_turn)
        };
        drop(old);
    }

    /// As [`Waiter::done`].
    pub fn done(&mut self, more_free: impl FnOnce() -> bool) {
        if self.leave() != Woken::No && more_free() {
            self.queue.wake_one();
        }
    }

    /// Whether, and by which call, this waiter has been woken since it last
    /// registered (it is out of the list, its wake-up not used yet). `No`
    /// for a waiter that never registered.
    pub fn woken(&self) -> Woken {
        if self.key == NIL {
            return Woken::No;
        }
        self.queue.list.borrow().entries[self.key].woken
    }

    /// If this waiter has been woken, leaves the queue (as
    /// [`cancel`](LocalWaiter::cancel)) and returns how; otherwise keeps its
    /// place and returns `No`. One look-up for the common poll of a woken
    /// waiter: [`woken`](LocalWaiter::woken), then `cancel`.
    pub fn take_wake(&mut self) -> Woken {
        if self.key == NIL {
            return Woken::No;
        }
        let (woken, waker) = {
            let mut list = self.queue.list.borrow_mut();
            match list.entries[self.key].woken {
                Woken::No => return Woken::No,
                woken => (woken, list.entries.remove(self.key).waker),
            }
        };
        self.key = NIL;
        drop(waker);
        woken
    }

    /// Leaves the queue without handing anything on, and returns how this
    /// waiter had been woken. The caller then owns a `wake_one`'s wake-up
    /// and must pass it on itself if it will not use it (for a resource
    /// whose wake-ups carry a unit handed to the woken waiter, like a
    /// notification).
    pub fn cancel(&mut self) -> Woken {
        self.leave()
    }

    fn leave(&mut self) -> Woken {
        if self.key == NIL {
            return Woken::No;
        }
        let key = std::mem::replace(&mut self.key, NIL);
        let (woken, waker) = self.queue.list.borrow_mut().remove(key);
        drop(waker);
        woken
    }
}

impl Drop for LocalWaiter<'_> {
    fn drop(&mut self) {
        // A `wake_all` woke everyone: nothing to hand on.
        if self.leave() == Woken::One {
            self.queue.wake_one();
        }
    }
}

#[cfg(all(test, not(loom)))]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::{LocalWaitQueue, WaitQueue, Woken};

    /// A waker that counts its wake-ups (the latch's tests use it too).
    pub(crate) struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    pub(crate) fn woken(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    /// A registered waiter and the wake count of its waker.
    type Waiting<'q> = (super::Waiter<'q>, Arc<Count>);

    /// Waiters `a` then `b` registered on `q` (and `a`'s waker, to register
    /// it again).
    fn two_waiting(q: &WaitQueue) -> (Waiting<'_>, Waker, Waiting<'_>) {
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut a = q.waiter();
        let mut b = q.waiter();
        a.register(&wa);
        b.register(&wb);
        ((a, ca), wa, (b, cb))
    }

    #[test]
    fn a_waiter_cancelled_in_the_middle_does_not_swallow_a_wake_up() {
        let q = WaitQueue::new();
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let (cc, wc) = counter();
        let mut a = q.waiter();
        let mut b = q.waiter();
        let mut c = q.waiter();
        a.register(&wa);
        b.register(&wb);
        c.register(&wc);
        drop(b);
        assert!(q.wake_one());
        assert!(q.wake_one());
        assert_eq!((woken(&ca), woken(&cb), woken(&cc)), (1, 0, 1));
        assert!(!q.wake_one(), "nobody waits any more");
        a.done(|| false);
        c.done(|| false);
    }

    #[test]
    fn a_woken_waiter_that_is_dropped_hands_the_wake_up_on() {
        let q = WaitQueue::new();
        let ((a, ca), _, (mut b, cb)) = two_waiting(&q);
        assert!(q.wake_one());
        assert_eq!(woken(&ca), 1);
        drop(a); // woken, never took what it was woken for
        assert_eq!(woken(&cb), 1, "the wake-up passed to the next waiter");
        b.done(|| false);
        assert!(!q.wake_one());
    }

    #[test]
    fn a_waiter_that_used_its_wake_up_leaves_quietly() {
        let q = WaitQueue::new();
        let ((mut a, ca), _, (b, cb)) = two_waiting(&q);
        assert!(q.wake_one());
        a.done(|| false); // took the one unit there was
        drop(a);
        assert_eq!((woken(&ca), woken(&cb)), (1, 0));
        drop(b); // not woken: leaves without waking anyone
        assert_eq!(woken(&cb), 0);
    }

    /// The race the loom model found: `a` takes a unit in its retry while
    /// still queued, then the wake-up for a second unit reaches `a` before it
    /// leaves. That wake-up belongs to `b`.
    #[test]
    fn a_waiter_woken_for_a_unit_it_did_not_take_hands_the_wake_up_on() {
        let q = WaitQueue::new();
        let ((mut a, ca), _, (mut b, cb)) = two_waiting(&q);
        // `a`'s retry takes unit 1; unit 2 is released and wakes `a`.
        assert!(q.wake_one());
        a.done(|| true); // unit 2 is still free
        assert_eq!((woken(&ca), woken(&cb)), (1, 1));
        b.done(|| false);
    }

    #[test]
    fn a_woken_waiter_that_registers_again_waits_at_the_back() {
        let q = WaitQueue::new();
        let ((mut a, ca), wa, (mut b, cb)) = two_waiting(&q);
        assert!(q.wake_one());
        // Someone else took the resource: `a` waits again, with the same
        // waker (the fast path must not skip the re-queue).
        a.register(&wa);
        assert!(q.wake_one());
        assert_eq!((woken(&ca), woken(&cb)), (1, 1));
        assert!(q.wake_one());
        assert_eq!(woken(&ca), 2);
        a.done(|| false);
        b.done(|| false);
    }

    #[test]
    fn a_woken_local_waiter_that_registers_first_keeps_its_turn() {
        let q = LocalWaitQueue::new();
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let mut a = q.waiter();
        let mut b = q.waiter();
        a.register_first(&wa);
        b.register_first(&wb); // never woken: joins at the back
        assert!(q.wake_one());
        assert_eq!((woken(&ca), woken(&cb)), (1, 0));
        assert_eq!((a.woken(), b.woken()), (Woken::One, Woken::No));
        a.register_first(&wa); // too little was free: back to the front
        assert_eq!(a.woken(), Woken::No);
        assert!(q.wake_one());
        assert_eq!((woken(&ca), woken(&cb)), (2, 0), "`a` kept its turn");
        assert_eq!(a.cancel(), Woken::One, "`a` had been woken");
        assert!(q.wake_one());
        assert_eq!(woken(&cb), 1);
        b.done(|| false);
    }

    #[test]
    fn a_local_waiter_tells_wake_one_from_wake_all_and_hands_on_only_the_first() {
        let q = LocalWaitQueue::new();
        let (ca, wa) = counter();
        let (cb, wb) = counter();
        let (cc, wc) = counter();
        let mut a = q.waiter();
        let mut b = q.waiter();
        a.register(&wa);
        b.register(&wb);
        q.wake_all();
        assert_eq!((a.woken(), b.woken()), (Woken::All, Woken::All));
        let mut c = q.waiter();
        c.register(&wc);
        drop(a); // woken by `wake_all`: `c` is not owed anything
        assert_eq!(woken(&cc), 0);
        assert!(q.wake_one());
        assert_eq!(c.woken(), Woken::One);
        let mut d = q.waiter();
        let (cd, wd) = counter();
        d.register(&wd);
        drop(c); // woken by `wake_one`, unused: `d` gets it
        assert_eq!(
            (woken(&ca), woken(&cb), woken(&cc), woken(&cd)),
            (1, 1, 1, 1)
        );
        assert_eq!(d.woken(), Woken::One);
        b.done(|| false);
        d.done(|| false);
    }

    #[test]
    fn a_local_waiter_polled_again_keeps_its_place_and_the_newest_waker() {
        let q = LocalWaitQueue::new();
        let (c1, w1) = counter();
        let (c2, w2) = counter();
        let (cb, wb) = counter();
        let mut a = q.waiter();
        let mut b = q.waiter();
        a.register(&w1);
        b.register(&wb);
        a.register(&w1);
        a.register(&w2);
        assert!(q.wake_one());
        assert_eq!((woken(&c1), woken(&c2), woken(&cb)), (0, 1, 0));
        assert!(q.wake_one());
        assert!(!q.wake_one(), "one entry per waiter");
        a.done(|| false);
        b.done(|| false);
    }

    #[test]
    fn registering_again_keeps_one_entry_and_the_newest_waker() {
        let q = WaitQueue::new();
        let (c1, w1) = counter();
        let (c2, w2) = counter();
        let mut a = q.waiter();
        for _ in 0..3 {
            a.register(&w1);
        }
        a.register(&w2);
        assert!(q.wake_one());
        assert!(!q.wake_one(), "one entry per waiter");
        assert_eq!((woken(&c1), woken(&c2)), (0, 1));
        a.done(|| false);
    }

    #[test]
    fn wake_all_wakes_everyone_and_later_drops_wake_nobody_twice() {
        let q = WaitQueue::new();
        let counters: Vec<_> = (0..4).map(|_| counter()).collect();
        let mut waiters: Vec<_> = counters.iter().map(|_| q.waiter()).collect();
        for (w, (_, waker)) in waiters.iter_mut().zip(&counters) {
            w.register(waker);
        }
        q.wake_all();
        drop(waiters);
        for (c, _) in &counters {
            assert_eq!(woken(c), 1);
        }
    }
}
