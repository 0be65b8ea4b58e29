//! A counting semaphore for tasks on one core.

use std::cell::Cell;
use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use crate::wait_queue::{LocalWaitQueue, LocalWaiter, Woken};

/// A counting semaphore for tasks on one core: `tokio::sync::Semaphore`
/// without atomics.
///
/// [`acquire`](Semaphore::acquire) waits for a permit and returns a
/// [`SemaphorePermit`] that gives it back when dropped. Permits are granted
/// first in, first out (see the [module docs](crate::sync)).
///
/// # Examples
///
/// At most two tasks in the section at a time:
///
/// ```
/// use std::rc::Rc;
/// use percore::sync::Semaphore;
///
/// percore::run(async {
///     let sem = Rc::new(Semaphore::new(2));
///     let mut tasks = Vec::new();
///     for _ in 0..4 {
///         let sem = sem.clone();
///         tasks.push(percore::task::spawn_local(async move {
///             let _permit = sem.acquire().await.unwrap();
///             percore::yield_now().await;
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    /// `acquire` futures in the queue (registered, not finished).
    waiting: Cell<usize>,
    closed: Cell<bool>,
    queue: LocalWaitQueue,
}

/// A permit from a [`Semaphore`]; dropping it gives its permits back.
///
/// # Examples
///
/// ```
/// use percore::sync::Semaphore;
///
/// let sem = Semaphore::new(3);
/// let permit = sem.try_acquire_many(2).unwrap();
/// assert_eq!(permit.num_permits(), 2);
/// assert_eq!(sem.available_permits(), 1);
/// drop(permit);
/// assert_eq!(sem.available_permits(), 3);
/// ```
#[must_use = "the permit is given back at once if it is not kept"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: u32,
}

/// The error of [`Semaphore::acquire`]: the semaphore was
/// [closed](Semaphore::close).
///
/// # Examples
///
/// ```
/// use percore::sync::Semaphore;
///
/// percore::run(async {
///     let sem = Semaphore::new(1);
///     sem.close();
///     assert!(sem.acquire().await.is_err());
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireError(());

/// The error of [`Semaphore::try_acquire`].
///
/// # Examples
///
/// ```
/// use percore::sync::{Semaphore, TryAcquireError};
///
/// let sem = Semaphore::new(0);
/// assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::NoPermits));
/// sem.close();
/// assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Too few permits are free, or other tasks wait for them first.
    NoPermits,
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl std::error::Error for AcquireError {}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

impl Semaphore {
    /// The most permits a semaphore can hold (tokio's limit).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(percore::sync::Semaphore::MAX_PERMITS);
    /// assert_eq!(sem.available_permits(), usize::MAX >> 3);
    /// ```
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` is more than [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(4);
    /// assert_eq!(sem.available_permits(), 4);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Semaphore::MAX_PERMITS,
            "a semaphore holds at most MAX_PERMITS permits"
        );
        Semaphore {
            permits: Cell::new(permits),
            waiting: Cell::new(0),
            closed: Cell::new(false),
            queue: LocalWaitQueue::new(),
        }
    }

    /// Permits free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(2);
    /// let _p = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.permits.get()
    }

    /// Adds `n` permits and wakes the first waiter.
    ///
    /// # Panics
    ///
    /// If the total would pass [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let total = self
            .permits
            .get()
            .checked_add(n)
            .filter(|&t| t <= Semaphore::MAX_PERMITS);
        self.permits
            .set(total.expect("a semaphore holds at most MAX_PERMITS permits"));
        if n > 0 && self.waiting.get() > 0 {
            // Only the front waiter: when it has taken its share it hands
            // the wake-up on if permits are left (`LocalWaiter::done`).
            self.queue.wake_one();
        }
    }

    /// Waits for one permit.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed (before or while waiting).
    ///
    /// # Cancellation
    ///
    /// Dropping the future gives up its place in the queue and takes no
    /// permit; a wake-up it had been given goes to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let sem = percore::sync::Semaphore::new(1);
    ///     let permit = sem.acquire().await.unwrap();
    ///     assert_eq!(sem.available_permits(), 0);
    ///     drop(permit);
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_many(1).await
    }

    /// Waits for `n` permits, taken all at once. While this waits at the
    /// front of the queue, later waiters wait behind it even for fewer.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is closed (before or while waiting).
    ///
    /// # Cancellation
    ///
    /// As [`acquire`](Semaphore::acquire): no permit is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let sem = percore::sync::Semaphore::new(3);
    ///     let permit = sem.acquire_many(3).await.unwrap();
    ///     assert_eq!(permit.num_permits(), 3);
    ///     assert_eq!(sem.available_permits(), 0);
    /// });
    /// ```
    pub async fn acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, AcquireError> {
        // Fast path: nobody waits and enough is free.
        if let Ok(permit) = self.try_acquire_many(n) {
            return Ok(permit);
        }
        let mut wait = Acquire {
            sem: self,
            need: n as usize,
            waiter: self.queue.waiter(),
            queued: false,
        };
        poll_fn(|cx| {
            if self.closed.get() {
                wait.finish();
                return Poll::Ready(Err(AcquireError(())));
            }
            // Only a newcomer with nobody ahead, or the queued waiter that
            // was woken (the front), may take: a queued waiter polled for
            // another reason (a `select!` branch) must not pass the front.
            let turn = if wait.queued {
                wait.waiter.woken() != Woken::No
            } else {
                self.waiting.get() == 0
            };
            if turn && self.permits.get() >= wait.need {
                self.permits.set(self.permits.get() - wait.need);
                wait.finish();
                return Poll::Ready(Ok(SemaphorePermit {
                    sem: self,
                    permits: n,
                }));
            }
            if !wait.queued {
                wait.queued = true;
                self.waiting.set(self.waiting.get() + 1);
            }
            // Woken at the front but too little free: keep the turn.
            wait.waiter.register_first(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Takes one permit if one is free and nobody waits for it.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if none is free or others wait,
    /// [`TryAcquireError::Closed`] if the semaphore is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// drop(p);
    /// assert!(sem.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody waits for permits.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Semaphore::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_err());
    /// assert!(sem.try_acquire_many(2).is_ok());
    /// ```
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        if self.closed.get() {
            return Err(TryAcquireError::Closed);
        }
        let free = self.permits.get();
        if self.waiting.get() == 0 && free >= n as usize {
            self.permits.set(free - n as usize);
            Ok(SemaphorePermit {
                sem: self,
                permits: n,
            })
        } else {
            Err(TryAcquireError::NoPermits)
        }
    }

    /// Closes the semaphore: every waiting and later `acquire` fails.
    /// Permits already held stay valid.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(1);
    /// sem.close();
    /// assert!(sem.is_closed());
    /// ```
    pub fn close(&self) {
        self.closed.set(true);
        self.queue.wake_all();
    }

    /// Whether [`close`](Semaphore::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!percore::sync::Semaphore::new(1).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Gives `n` permits back (a permit's drop).
    fn release(&self, n: usize) {
        self.permits.set(self.permits.get() + n);
        if self.waiting.get() > 0 {
            self.queue.wake_one();
        }
    }
}

impl Default for Semaphore {
    /// A semaphore with no permits.
    fn default() -> Semaphore {
        Semaphore::new(0)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.permits.get())
            .field("waiting", &self.waiting.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}

/// One `acquire_many` in the queue.
struct Acquire<'a> {
    sem: &'a Semaphore,
    need: usize,
    waiter: LocalWaiter<'a>,
    /// Counted in `sem.waiting`.
    queued: bool,
}

impl Acquire<'_> {
    /// The wait is over (permits taken, or closed): leave the queue, and
    /// hand a wake-up on if permits are left for the next waiter.
    fn finish(&mut self) {
        if self.queued {
            self.queued = false;
            self.sem.waiting.set(self.sem.waiting.get() - 1);
        }
        let sem = self.sem;
        self.waiter
            .done(|| sem.permits.get() > 0 && !sem.closed.get());
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if !self.queued {
            return;
        }
        // Cancelled while queued. Whether or not it had been woken, the
        // waiter now at the front may be able to go: a woken waiter's
        // wake-up is handed on, and a front waiter that needed more than is
        // free no longer blocks the ones behind it.
        self.queued = false;
        self.sem.waiting.set(self.sem.waiting.get() - 1);
        self.waiter.cancel();
        if self.sem.permits.get() > 0 && self.sem.waiting.get() > 0 {
            self.sem.queue.wake_one();
        }
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permits out of the semaphore for good.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(2);
    /// sem.try_acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = percore::sync::Semaphore::new(2);
    /// assert_eq!(sem.try_acquire().unwrap().num_permits(), 1);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits as usize
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits as usize);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
