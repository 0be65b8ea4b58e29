//! Synchronization for tasks on one core: [`Mutex`], [`RwLock`],
//! [`Semaphore`], [`Notify`], [`oneshot`] and [`mpsc`] channels.
//!
//! These are `tokio::sync`'s types with tokio's names and method shapes, so
//! that a port is a search and replace of `tokio::sync` by `percore::sync`,
//! but built for tasks that share one core: plain `Cell`s, `RefCell`s and
//! `Rc`s instead of atomics and `Arc`s. None of them is `Sync`, and the
//! channel halves (which hold an `Rc`) are not `Send`: a value shared between
//! tasks of one core needs no atomic, and the compiler stops it from crossing
//! to another core. To talk across cores use [`crate::channel`] (or tokio's
//! own `sync` types, which need no tokio runtime).
//!
//! # What this layer may use
//!
//! `Cell`/`RefCell`/`Rc` and the crate's single-core wait queue
//! (`LocalWaitQueue` in `wait_queue.rs`), which takes a dropped waiter out
//! of the line and hands on a wake-up it had been given. It does not touch
//! the executor, the driver or timers.
//!
//! # Fairness and cancellation
//!
//! [`Semaphore`] (and so [`Mutex`] and [`RwLock`], which are built on it)
//! grants permits first in, first out, as tokio's does: an `acquire` that
//! finds others waiting queues behind them even if permits are free, and a
//! waiter at the front that needs more permits than are free (an
//! [`acquire_many`](Semaphore::acquire_many) or a [`RwLock::write`]) keeps
//! its place; the waiters behind it do not overtake it.
//!
//! Every waiting future may be dropped at any time (a timeout, a `select`,
//! an aborted task) without losing a permit, a message or a notification: a
//! dropped waiter leaves the queue and passes on any wake-up it had been
//! given.

#![forbid(unsafe_code)]

mod mutex;
mod notify;
mod rwlock;
mod semaphore;

pub mod mpsc;
pub mod oneshot;

pub use self::mutex::{Mutex, MutexGuard, TryLockError};
pub use self::notify::{Notified, Notify};
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{AcquireError, Semaphore, SemaphorePermit, TryAcquireError};
