//! An async reader-writer lock for tasks on one core.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::mutex::TryLockError;
use super::semaphore::{Semaphore, SemaphorePermit};

/// Readers a [`RwLock`] admits at once (tokio's limit); a writer takes all of
/// them.
const MAX_READS: u32 = u32::MAX >> 3;

/// An async reader-writer lock for tasks on one core:
/// `tokio::sync::RwLock` without atomics.
///
/// Many readers or one writer. Fair, as tokio's: a waiting writer stops
/// later readers, and everyone is served first in, first out.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let lock = percore::sync::RwLock::new(5);
///     {
///         let r1 = lock.read().await;
///         let r2 = lock.read().await;
///         assert_eq!(*r1 + *r2, 10);
///     }
///     *lock.write().await += 1;
///     assert_eq!(*lock.read().await, 6);
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    sem: Semaphore,
    data: RefCell<T>,
}

/// Shared access to a [`RwLock`]'s value; released when dropped.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let lock = percore::sync::RwLock::new(String::from("a"));
///     let r = lock.read().await;
///     assert_eq!(r.len(), 1);
/// });
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    data: Ref<'a, T>,
    _permit: SemaphorePermit<'a>,
}

/// Exclusive access to a [`RwLock`]'s value; released when dropped.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let lock = percore::sync::RwLock::new(Vec::new());
///     lock.write().await.push(1);
///     assert_eq!(*lock.read().await, [1]);
/// });
/// ```
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    data: RefMut<'a, T>,
    _permit: SemaphorePermit<'a>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(percore::sync::RwLock::new(1).into_inner(), 1);
    /// ```
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            sem: Semaphore::new(MAX_READS as usize),
            data: RefCell::new(value),
        }
    }

    /// The value, taking the lock apart.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(percore::sync::RwLock::new("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared access.
    ///
    /// # Cancellation
    ///
    /// Dropping the future gives up its place in line and loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let lock = percore::sync::RwLock::new(1);
    ///     assert_eq!(*lock.read().await, 1);
    /// });
    /// ```
    pub async fn read(&self) -> RwLockReadGuard<'_, T> {
        let permit = match self.sem.acquire().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("a lock's semaphore is never closed"),
        };
        RwLockReadGuard {
            // Holding a read permit: no writer holds all of them.
            data: self.data.borrow(),
            _permit: permit,
        }
    }

    /// Waits for exclusive access.
    ///
    /// # Cancellation
    ///
    /// Dropping the future gives up its place in line and loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let lock = percore::sync::RwLock::new(1);
    ///     *lock.write().await = 2;
    ///     assert_eq!(*lock.read().await, 2);
    /// });
    /// ```
    pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
        let permit = match self.sem.acquire_many(MAX_READS).await {
            Ok(permit) => permit,
            Err(_) => unreachable!("a lock's semaphore is never closed"),
        };
        RwLockWriteGuard {
            // All permits are held: no other guard borrows `data`.
            data: self.data.borrow_mut(),
            _permit: permit,
        }
    }

    /// Shared access now, if no writer holds or waits for the lock.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = percore::sync::RwLock::new(1);
    /// let w = lock.try_write().unwrap();
    /// assert!(lock.try_read().is_err());
    /// drop(w);
    /// assert_eq!(*lock.try_read().unwrap(), 1);
    /// ```
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire() {
            Ok(permit) => Ok(RwLockReadGuard {
                data: self.data.borrow(),
                _permit: permit,
            }),
            Err(_) => Err(TryLockError::new()),
        }
    }

    /// Exclusive access now, if nobody holds or waits for the lock.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = percore::sync::RwLock::new(1);
    /// let r = lock.try_read().unwrap();
    /// assert!(lock.try_write().is_err());
    /// drop(r);
    /// *lock.try_write().unwrap() = 2;
    /// ```
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, TryLockError> {
        match self.sem.try_acquire_many(MAX_READS) {
            Ok(permit) => Ok(RwLockWriteGuard {
                data: self.data.borrow_mut(),
                _permit: permit,
            }),
            Err(_) => Err(TryLockError::new()),
        }
    }

    /// The value, through `&mut self`: no lock is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = percore::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.data.try_borrow() {
            Ok(data) => d.field("data", &&*data),
            Err(_) => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}
