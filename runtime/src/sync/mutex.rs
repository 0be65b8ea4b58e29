//! An async mutex for tasks on one core.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::semaphore::{Semaphore, SemaphorePermit};

/// An async mutual-exclusion lock for tasks on one core:
/// `tokio::sync::Mutex` without atomics.
///
/// Hold its guard across `.await`s; tasks that [`lock`](Mutex::lock) while
/// it is held wait in line, first in first out. (A `RefCell` is enough when
/// the guard never lives across an `.await`.)
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use percore::sync::Mutex;
///
/// percore::run(async {
///     let count = Rc::new(Mutex::new(0));
///     let mut tasks = Vec::new();
///     for _ in 0..10 {
///         let count = count.clone();
///         tasks.push(percore::task::spawn_local(async move {
///             let mut n = count.lock().await;
///             percore::yield_now().await; // still held
///             *n += 1;
///         }));
///     }
///     for t in tasks {
///         t.await.unwrap();
///     }
///     assert_eq!(*count.lock().await, 10);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    sem: Semaphore,
    data: RefCell<T>,
}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let m = percore::sync::Mutex::new(vec![1]);
///     m.lock().await.push(2);
///     assert_eq!(*m.lock().await, [1, 2]);
/// });
/// ```
#[must_use = "the mutex unlocks at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    // Declared first so it is dropped first: the borrow ends before the
    // permit wakes the next task.
    data: RefMut<'a, T>,
    _permit: SemaphorePermit<'a>,
}

/// The error of [`Mutex::try_lock`]: the mutex is locked (or others wait
/// for it first).
///
/// # Examples
///
/// ```
/// let m = percore::sync::Mutex::new(1);
/// let _g = m.try_lock().unwrap();
/// assert!(m.try_lock().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLockError(());

impl TryLockError {
    pub(super) fn new() -> TryLockError {
        TryLockError(())
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryLockError {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = percore::sync::Mutex::new(5);
    /// assert_eq!(m.into_inner(), 5);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            sem: Semaphore::new(1),
            data: RefCell::new(value),
        }
    }

    /// The value, taking the mutex apart.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(percore::sync::Mutex::new("a").into_inner(), "a");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits for the lock, in line behind earlier callers.
    ///
    /// # Cancellation
    ///
    /// Dropping the future gives up its place in line; if the lock had been
    /// passed to it, it passes on to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let m = percore::sync::Mutex::new(1);
    ///     *m.lock().await += 1;
    ///     assert_eq!(*m.lock().await, 2);
    /// });
    /// ```
    pub async fn lock(&self) -> MutexGuard<'_, T> {
        let permit = match self.sem.acquire().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("a mutex's semaphore is never closed"),
        };
        self.guard(permit)
    }

    /// Locks now if the mutex is free and nobody waits for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if it is locked or others are in line.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = percore::sync::Mutex::new(1);
    /// *m.try_lock().unwrap() = 2;
    /// assert_eq!(m.into_inner(), 2);
    /// ```
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(permit) => Ok(self.guard(permit)),
            Err(_) => Err(TryLockError(())),
        }
    }

    /// The value, through `&mut self`: no lock is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = percore::sync::Mutex::new(1);
    /// *m.get_mut() = 3;
    /// assert_eq!(m.into_inner(), 3);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn guard<'a>(&'a self, permit: SemaphorePermit<'a>) -> MutexGuard<'a, T> {
        MutexGuard {
            // The one permit is held, so no other guard borrows `data`.
            data: self.data.borrow_mut(),
            _permit: permit,
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.data.try_borrow() {
            Ok(data) => d.field("data", &&*data),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
