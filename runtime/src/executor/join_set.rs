//! `JoinSet`: many local tasks, joined in the order they finish.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use super::task::{AbortHandle, JoinError, JoinHandle, spawn};

/// A set of tasks on the current core, joined in the order they finish:
/// tokio's `JoinSet`, for `!Send` futures.
///
/// [`join_next`](JoinSet::join_next) costs O(1) per finished task however
/// many are in the set: each task's handle has its own waker, which queues
/// the task's slot when it finishes, and only queued slots are polled.
///
/// Dropping the set aborts every task still in it (their futures are
/// dropped the next time the executor reaches them).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::task::JoinSet;
///
/// percore::run(async {
///     let mut set = JoinSet::new();
///     for ms in [30u64, 10, 20] {
///         set.spawn(async move {
///             percore::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut seen = Vec::new();
///     while let Some(res) = set.join_next().await {
///         seen.push(res.unwrap());
///     }
///     seen.sort();
///     assert_eq!(seen, [10, 20, 30]);
/// });
/// ```
pub struct JoinSet<T> {
    tasks: Slab<Entry<T>>,
    ready: Arc<Ready>,
    /// Handle polls so far, for the test that joining does not rescan.
    #[cfg(test)]
    handle_polls: u64,
}

struct Entry<T> {
    handle: JoinHandle<T>,
    waker: Waker,
    /// The result, when the handle was ready at its first poll in `spawn`.
    early: Option<Result<T, JoinError>>,
}

/// Slots whose task woke its handle since they were last polled, and the
/// waker of whoever waits in `join_next`.
struct Ready {
    queue: Mutex<ReadyQueue>,
}

struct ReadyQueue {
    slots: VecDeque<usize>,
    waiter: Option<Waker>,
}

impl Ready {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadyQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, slot: usize) {
        let waiter = {
            let mut q = self.lock();
            q.slots.push_back(slot);
            q.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    fn pop(&self) -> Option<usize> {
        self.lock().slots.pop_front()
    }
}

/// The waker of one slot's handle.
struct SlotWaker {
    slot: usize,
    ready: Arc<Ready>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.slot);
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = percore::task::JoinSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: Slab::new(),
            ready: Arc::new(Ready {
                queue: Mutex::new(ReadyQueue {
                    slots: VecDeque::new(),
                    waiter: None,
                }),
            }),
            #[cfg(test)]
            handle_polls: 0,
        }
    }

    /// How many tasks are in the set (running, or finished and not yet
    /// joined).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     set.spawn(async { 1 });
    ///     set.spawn(async { 2 });
    ///     assert_eq!(set.len(), 2);
    ///     set.join_next().await;
    ///     assert_eq!(set.len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     assert!(set.is_empty());
    ///     set.spawn(async {});
    ///     assert!(!set.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Spawns `future` on the current core as a task of this set and
    /// returns a handle that can abort it.
    ///
    /// # Panics
    ///
    /// Outside a runtime, as [`spawn`](crate::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     let local = Rc::new(3); // `!Send` futures are fine
    ///     set.spawn(async move { *local * 2 });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 6);
    /// });
    /// ```
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        let handle = spawn(future);
        let abort = handle.abort_handle();
        let slot = self.tasks.vacant_key();
        let waker = Waker::from(Arc::new(SlotWaker {
            slot,
            ready: self.ready.clone(),
        }));
        let mut entry = Entry {
            handle,
            waker,
            early: None,
        };
        // One poll registers the slot's waker with the task, so the slot is
        // queued when (and only when) the task finishes.
        let mut cx = Context::from_waker(&entry.waker);
        if let Poll::Ready(out) = Pin::new(&mut entry.handle).poll(&mut cx) {
            entry.early = Some(out);
            self.ready.push(slot);
        }
        self.tasks.insert(entry);
        abort
    }

    /// tokio's `JoinSet::spawn_local`: the same as [`spawn`](JoinSet::spawn),
    /// since every percore task is local to its core.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     set.spawn_local(async { 1 });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.spawn(future)
    }

    /// Waits for every task and returns their outputs in the order they
    /// finished, as tokio's `JoinSet::join_all` does.
    ///
    /// # Panics
    ///
    /// If a task panicked (with its panic message) or was aborted; the
    /// remaining tasks are aborted when the set is dropped on the way out.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     for i in 0..3 {
    ///         set.spawn(async move { i });
    ///     }
    ///     let mut all = set.join_all().await;
    ///     all.sort();
    ///     assert_eq!(all, [0, 1, 2]);
    /// });
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(err) => panic!("JoinSet::join_all: {err}"),
            }
        }
        out
    }

    /// Waits for the next task to finish and returns its result, or `None`
    /// when the set is empty. Tasks come out in the order they finish.
    ///
    /// Cancel safe: dropping the future before it is ready loses no result.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     set.spawn(async { panic!("boom") });
    ///     let err = set.join_next().await.unwrap().unwrap_err();
    ///     assert_eq!(err.panic_message(), Some("boom"));
    ///     assert!(set.join_next().await.is_none());
    /// });
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// The result of a task that has already finished, without waiting;
    /// `None` if none has (or the set is empty).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     set.spawn(async { 5 });
    ///     assert!(set.try_join_next().is_none()); // not run yet
    ///     while set.try_join_next().map(|r| r.unwrap()) != Some(5) {
    ///         percore::yield_now().await;
    ///     }
    /// });
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.next_ready()
    }

    /// Polls for the next finished task, as [`join_next`](JoinSet::join_next)
    /// awaits it: `Ready(None)` when the set is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     set.spawn(async { 1 });
    ///     let out = std::future::poll_fn(|cx| set.poll_join_next(cx)).await;
    ///     assert_eq!(out.unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        // Register first, so a wake between the scan and the return is seen.
        {
            let mut q = self.ready.lock();
            match &q.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => q.waiter = Some(cx.waker().clone()),
            }
        }
        match self.next_ready() {
            Some(out) => Poll::Ready(Some(out)),
            None => Poll::Pending,
        }
    }

    /// Polls the queued slots until one yields its task's result.
    fn next_ready(&mut self) -> Option<Result<T, JoinError>> {
        while let Some(slot) = self.ready.pop() {
            // A slot already joined (a late or repeated wake) has nothing.
            let Some(entry) = self.tasks.get_mut(slot) else {
                continue;
            };
            if let Some(out) = entry.early.take() {
                self.tasks.remove(slot);
                return Some(out);
            }
            let mut cx = Context::from_waker(&entry.waker);
            #[cfg(test)]
            {
                self.handle_polls += 1;
            }
            if let Poll::Ready(out) = Pin::new(&mut entry.handle).poll(&mut cx) {
                self.tasks.remove(slot);
                return Some(out);
            }
        }
        None
    }

    /// Aborts every task in the set. They stay in it until joined: each then
    /// yields [`JoinError::Cancelled`] (or its output, if it had finished).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     for _ in 0..3 {
    ///         set.spawn(std::future::pending::<()>());
    ///     }
    ///     set.abort_all();
    ///     while let Some(res) = set.join_next().await {
    ///         assert!(res.unwrap_err().is_cancelled());
    ///     }
    /// });
    /// ```
    pub fn abort_all(&mut self) {
        for (_, entry) in &self.tasks {
            entry.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it: they run on,
    /// detached.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// percore::run(async {
    ///     let ran = Rc::new(Cell::new(false));
    ///     let mut set = percore::task::JoinSet::new();
    ///     let r = ran.clone();
    ///     set.spawn(async move { r.set(true) });
    ///     set.detach_all();
    ///     assert!(set.is_empty());
    ///     drop(set);
    ///     percore::yield_now().await;
    ///     assert!(ran.get());
    /// });
    /// ```
    pub fn detach_all(&mut self) {
        self.tasks.clear();
        self.ready.lock().slots.clear();
    }

    /// Aborts every task and waits until all have ended, discarding their
    /// results; the set is empty afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let mut set = percore::task::JoinSet::new();
    ///     let abort = set.spawn(std::future::pending::<()>());
    ///     set.shutdown().await;
    ///     assert!(set.is_empty());
    ///     assert!(abort.is_finished());
    /// });
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::JoinSet;

    #[test]
    fn each_join_polls_only_the_finished_handles() {
        crate::run(async {
            let n = 2_000u64;
            let mut set = JoinSet::new();
            for i in 0..n {
                // One finishes per millisecond step, in reverse spawn order.
                set.spawn(async move {
                    crate::time::sleep(Duration::from_millis((n - i) % 50)).await;
                    i
                });
            }
            let mut joined = 0;
            while let Some(res) = set.join_next().await {
                res.unwrap();
                joined += 1;
            }
            assert_eq!(joined, n);
            // A scan of every handle per join would be about n * n / 2 = 2
            // million polls; queued slots only make it one per finished task
            // plus the odd repeated wake.
            assert!(
                set.handle_polls <= 2 * n,
                "{} handle polls for {n} tasks",
                set.handle_polls
            );
        });
    }
}
