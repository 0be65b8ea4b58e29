//! Tasks, with tokio's names and paths: [`spawn`], [`JoinHandle`],
//! [`AbortHandle`], [`JoinSet`], [`JoinError`], [`yield_now`],
//! [`spawn_blocking`].
//!
//! Every task is local: it runs on the core that spawned it, so its future
//! may be `!Send` (tokio's `spawn_local` is plain [`spawn`] here, also
//! reachable as [`spawn_local`]). To run work on another core use
//! [`spawn_on`](crate::spawn_on).
//!
//! Dropping a [`JoinHandle`] detaches its task; [`JoinHandle::abort_on_drop`]
//! gives a handle that cancels it instead (asyncio's `wait_for`).
//!
//! Scheduling classes: a [`TaskQueue`] has a name, shares and a
//! [`Latency`] goal; tasks spawned into it get CPU in proportion to its
//! shares while other queues have work, and a latency-sensitive queue's
//! tasks run within its goal when background tasks call
//! [`yield_if_needed`] (or check [`need_yield`]) in their long loops.
//!
//! # Examples
//!
//! ```
//! use percore::task::{self, JoinSet};
//!
//! percore::run(async {
//!     let mut set = JoinSet::new();
//!     for i in 0..4u32 {
//!         set.spawn(async move { i * i });
//!     }
//!     let mut total = 0;
//!     while let Some(res) = set.join_next().await {
//!         total += res.unwrap();
//!     }
//!     assert_eq!(total, 14);
//!
//!     let handle = task::spawn(std::future::pending::<()>());
//!     handle.abort();
//!     assert!(handle.await.unwrap_err().is_cancelled());
//! });
//! ```

pub use crate::blocking::spawn_blocking;
pub use crate::executor::{
    AbortHandle, AbortOnDropHandle, DEFAULT_SHARES, JoinError, JoinHandle, JoinSet, Latency,
    TaskQueue, TaskQueueStats, need_yield, spawn, yield_if_needed, yield_now,
};

/// tokio's `task::spawn_local`: the same as [`spawn`], since every percore
/// task is local to its core.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// percore::run(async {
///     let shared = Rc::new(1);
///     let s = shared.clone();
///     assert_eq!(percore::task::spawn_local(async move { *s + 1 }).await.unwrap(), 2);
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    spawn(future)
}
