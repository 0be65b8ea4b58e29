//! Task notification for tasks on one core.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::wait_queue::{LocalWaitQueue, LocalWaiter, Woken};

/// Wakes tasks waiting on it: `tokio::sync::Notify` without atomics.
///
/// [`notify_one`](Notify::notify_one) wakes the first task waiting in
/// [`notified`](Notify::notified), or, if none waits, stores one permit that
/// the next `notified().await` takes at once (several calls store one).
/// [`notify_waiters`](Notify::notify_waiters) wakes every `Notified` future
/// created before the call and stores nothing.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use percore::sync::Notify;
///
/// percore::run(async {
///     let notify = Rc::new(Notify::new());
///     let n = notify.clone();
///     let waiter = percore::task::spawn_local(async move {
///         n.notified().await;
///         "woken"
///     });
///     notify.notify_one();
///     assert_eq!(waiter.await.unwrap(), "woken");
/// });
/// ```
#[derive(Default)]
pub struct Notify {
    /// The one stored permit (`notify_one` with nobody waiting).
    stored: Cell<bool>,
    /// `notify_waiters` calls so far.
    generation: Cell<u64>,
    /// Waiters in the order they first waited. A waiter woken by
    /// `notify_one` holds that notification until it takes it or passes it
    /// on; the queue tells it from a `notify_waiters` wake-up.
    queue: LocalWaitQueue,
}

/// The future of [`Notify::notified`].
///
/// # Cancellation
///
/// Dropping it leaves the queue; a notification `notify_one` had handed to
/// it goes to the next waiter, or is stored if none waits.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let notify = percore::sync::Notify::new();
///     let notified = notify.notified();
///     notify.notify_waiters(); // counts for futures created before it
///     notified.await;
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// `notify.generation` when created.
    generation: u64,
    waiter: LocalWaiter<'a>,
    done: bool,
}

impl Notify {
    /// A `Notify` with no stored permit.
    ///
    /// # Examples
    ///
    /// ```
    /// let notify = percore::sync::Notify::new();
    /// notify.notify_one();
    /// ```
    pub fn new() -> Notify {
        Notify::default()
    }

    /// A future that completes when this is notified.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let notify = percore::sync::Notify::new();
    ///     notify.notify_one(); // stored
    ///     notify.notified().await; // takes it at once
    /// });
    /// ```
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.get(),
            waiter: self.queue.waiter(),
            done: false,
        }
    }

    /// Wakes the first waiting task, or stores a permit if none waits.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let notify = percore::sync::Notify::new();
    ///     notify.notify_one();
    ///     notify.notify_one(); // still one permit
    ///     notify.notified().await;
    /// });
    /// ```
    pub fn notify_one(&self) {
        if !self.queue.wake_one() {
            self.stored.set(true);
        }
    }

    /// Wakes every `Notified` future created before this call (polled yet
    /// or not). Stores no permit.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let notify = percore::sync::Notify::new();
    ///     let (a, b) = (notify.notified(), notify.notified());
    ///     notify.notify_waiters();
    ///     a.await;
    ///     b.await;
    /// });
    /// ```
    pub fn notify_waiters(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.queue.wake_all();
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("stored", &self.stored.get())
            .finish_non_exhaustive()
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        let notify = this.notify;
        // Only the waiter `notify_one` woke takes its notification: one
        // polled for another reason while queued keeps waiting its turn.
        // (A `notify_one` wake-up taken here is used: nothing to hand on.)
        let ready = this.waiter.take_wake() != Woken::No
            || notify.generation.get() != this.generation
            || notify.stored.replace(false);
        if ready {
            this.waiter.cancel();
            this.done = true;
            return Poll::Ready(());
        }
        this.waiter.register(cx.waker());
        Poll::Pending
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        // A `notify_one` notification this waiter was woken for and did not
        // take goes on: to the next waiter, or stored.
        if !self.done && self.waiter.cancel() == Woken::One {
            self.notify.notify_one();
        }
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").finish_non_exhaustive()
    }
}
