//! Spawning local tasks, join handles, abort and panic capture.

use std::any::Any;
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::oneshot::{Cancel, Receiver};
use super::{Executor, TaskMeta, schedule, with_current};

/// Why a task did not return its output.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let handle = percore::spawn(async { panic!("boom") });
///     let err = handle.await.unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(err.panic_message(), Some("boom"));
/// });
/// ```
#[derive(Debug)]
pub enum JoinError {
    /// The task panicked; the message, when the payload was a string.
    Panic(Option<String>),
    /// The task was aborted, or dropped when its runtime shut down.
    Cancelled,
}

impl JoinError {
    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let err = percore::spawn(async { panic!("oops") }).await.unwrap_err();
    ///     assert!(err.is_panic());
    /// });
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panic(_))
    }

    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let h = percore::spawn(std::future::pending::<()>());
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// The panic message, if the task panicked with a string.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let err = percore::spawn(async { panic!("code {}", 7) }).await.unwrap_err();
    ///     assert_eq!(err.panic_message(), Some("code 7"));
    /// });
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panic(msg) => msg.as_deref(),
            JoinError::Cancelled => None,
        }
    }

    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> JoinError {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JoinError::Panic(msg)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panic(Some(msg)) => write!(f, "task panicked: {msg}"),
            JoinError::Panic(None) => f.write_str("task panicked"),
            JoinError::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(err: JoinError) -> io::Error {
        io::Error::other(err)
    }
}

/// An owned permission to await a task's output.
///
/// Awaiting it yields `Ok(output)`, or a [`JoinError`] if the task panicked or
/// was aborted. Dropping it detaches the task, which keeps running; to cancel
/// the task when the handle goes away (asyncio's `wait_for`), wrap it with
/// [`JoinHandle::abort_on_drop`].
///
/// A `JoinHandle` (like the task it stands for) belongs to the core that
/// spawned it: it is `!Send`.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let handle = percore::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// });
/// ```
pub struct JoinHandle<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    /// A task on this core.
    Local {
        task: Option<async_task::FallibleTask<Result<T, JoinError>, TaskMeta>>,
        abort: Rc<AbortState>,
    },
    /// Work on another thread (another core, the blocking pool) whose
    /// result crosses back through a one-shot slot.
    Remote {
        rx: Receiver<Result<T, JoinError>>,
        /// The same slot, type-erased for [`AbortHandle`]s.
        cancel: Arc<dyn Cancel>,
    },
}

/// What a local task and the handles that may abort it share.
pub(crate) struct AbortState {
    requested: Cell<bool>,
    /// Set when the task's future is gone (returned, panicked, aborted, or
    /// dropped at shutdown).
    finished: Cell<bool>,
    /// The task's own waker, set right after the task is created.
    waker: OnceCell<Waker>,
}

thread_local! {
    /// This thread's tasks whose abort was requested and that have not
    /// finished yet. While there are none, a task's poll does not look at
    /// its [`AbortState`]: an allocation of its own, so a cache line more
    /// on every poll of every task (and a miss, with many tasks).
    static ABORTS_PENDING: Cell<usize> = const { Cell::new(0) };
}

impl AbortState {
    fn abort(&self) {
        if !self.finished.get() && !self.requested.replace(true) {
            // Paired with the decrement in `TaskFuture::drop`, which every
            // unfinished task reaches once (`finished` is set only there).
            ABORTS_PENDING.with(|n| n.set(n.get() + 1));
            if let Some(waker) = self.waker.get() {
                waker.wake_by_ref();
            }
        }
    }
}

impl<T> JoinHandle<T> {
    /// A handle whose output another thread will send.
    pub(crate) fn remote(rx: Receiver<Result<T, JoinError>>) -> JoinHandle<T>
    where
        T: 'static,
    {
        let cancel = rx.canceller();
        JoinHandle {
            inner: Inner::Remote { rx, cancel },
        }
    }

    /// Cancels the task: its future is dropped the next time the executor
    /// reaches it (ops it had in flight are cancelled safely), and awaiting
    /// the handle yields [`JoinError::Cancelled`]. No effect on a task that
    /// already finished: its output is kept. For work on another thread
    /// ([`spawn_on`](crate::spawn_on), [`spawn_blocking`](crate::spawn_blocking))
    /// it stops waiting: the handle yields `Cancelled` (unless the output had
    /// already arrived), and the work runs to its end over there.
    ///
    /// Takes `&self`, like tokio's: a handle shared by reference can abort.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let handle = percore::spawn(percore::time::sleep(Duration::from_secs(60)));
    ///     handle.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        match &self.inner {
            Inner::Local { abort, .. } => abort.abort(),
            Inner::Remote { rx, .. } => rx.cancel(),
        }
    }

    /// A handle that can abort the task without owning its output; it may be
    /// cloned and kept after this `JoinHandle` is awaited or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let handle = percore::spawn(std::future::pending::<()>());
    ///     let abort = handle.abort_handle();
    ///     assert!(!abort.is_finished());
    ///     abort.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    ///     assert!(abort.is_finished());
    /// });
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            inner: match &self.inner {
                Inner::Local { abort, .. } => AbortInner::Local(abort.clone()),
                Inner::Remote { cancel, .. } => AbortInner::Remote(cancel.clone()),
            },
        }
    }

    /// Turns this handle into one that aborts the task when it is dropped:
    /// asyncio's `wait_for`. A plain `JoinHandle` detaches its task on drop,
    /// so `timeout(d, handle)` stops waiting but leaves the task running;
    /// `timeout(d, handle.abort_on_drop())` cancels it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use percore::time::{sleep, timeout};
    ///
    /// percore::run(async {
    ///     let task = percore::spawn(sleep(Duration::from_secs(60)));
    ///     let abort = task.abort_handle();
    ///     // Times out, drops the guard, and so cancels the task.
    ///     assert!(timeout(Duration::from_millis(5), task.abort_on_drop()).await.is_err());
    ///     while !abort.is_finished() {
    ///         percore::yield_now().await;
    ///     }
    /// });
    /// ```
    pub fn abort_on_drop(self) -> AbortOnDropHandle<T> {
        AbortOnDropHandle::new(self)
    }

    /// Whether the task has finished (returned, panicked or was cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let h = percore::spawn(async { 1 });
    ///     assert!(!h.is_finished()); // it has not run yet
    ///     percore::yield_now().await;
    ///     assert!(h.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            Inner::Local { task, .. } => task.as_ref().is_none_or(|t| t.is_finished()),
            Inner::Remote { rx, .. } => rx.is_ready(),
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Local { task, .. } => {
                let t = task.as_mut().expect("JoinHandle polled after completion");
                match Pin::new(t).poll(cx) {
                    Poll::Ready(out) => {
                        *task = None;
                        // `None`: the runtime dropped the task before it finished.
                        Poll::Ready(out.unwrap_or(Err(JoinError::Cancelled)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            // `None`: aborted, or the other side shut down without an output.
            Inner::Remote { rx, .. } => Pin::new(rx)
                .poll(cx)
                .map(|out| out.unwrap_or(Err(JoinError::Cancelled))),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Inner::Local { task, .. } = &mut self.inner
            && let Some(task) = task.take()
        {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Aborts a task without owning its output: tokio's `AbortHandle`, for
/// percore's local tasks. Made by [`JoinHandle::abort_handle`] or returned
/// by [`JoinSet::spawn`](crate::task::JoinSet::spawn); cloning it is cheap.
///
/// Dropping it does nothing to the task. Like the task, it belongs to the
/// core that spawned it (`!Send`).
///
/// # Examples
///
/// ```
/// use percore::task::AbortHandle;
///
/// percore::run(async {
///     let handle = percore::spawn(std::future::pending::<()>());
///     let abort: AbortHandle = handle.abort_handle();
///     let also = abort.clone();
///     also.abort();
///     assert!(handle.await.unwrap_err().is_cancelled());
///     assert!(abort.is_finished());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    inner: AbortInner,
}

#[derive(Clone)]
enum AbortInner {
    Local(Rc<AbortState>),
    Remote(Arc<dyn Cancel>),
}

impl AbortHandle {
    /// Cancels the task, as [`JoinHandle::abort`] does. No effect on a task
    /// that already finished.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let handle = percore::spawn(std::future::pending::<()>());
    ///     handle.abort_handle().abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        match &self.inner {
            AbortInner::Local(state) => state.abort(),
            AbortInner::Remote(slot) => slot.cancel(),
        }
    }

    /// Whether the task has finished: returned, panicked, or was cancelled
    /// (for a local task: its future is gone).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let handle = percore::spawn(async { 1 });
    ///     let abort = handle.abort_handle();
    ///     assert!(!abort.is_finished());
    ///     assert_eq!(handle.await.unwrap(), 1);
    ///     assert!(abort.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        match &self.inner {
            AbortInner::Local(state) => state.finished.get(),
            AbortInner::Remote(slot) => slot.is_done(),
        }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// A [`JoinHandle`] that aborts its task when dropped (tokio-util's
/// `AbortOnDropHandle`; the behaviour of asyncio's `wait_for`). Awaiting it
/// yields the task's result, as the `JoinHandle` would.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::task::AbortOnDropHandle;
/// use percore::time::{sleep, timeout};
///
/// percore::run(async {
///     // Finishes in time: the result comes through.
///     let quick = AbortOnDropHandle::new(percore::spawn(async { 7 }));
///     assert_eq!(timeout(Duration::from_secs(5), quick).await.unwrap().unwrap(), 7);
///
///     // Does not: the task is cancelled with the guard.
///     let slow = percore::spawn(sleep(Duration::from_secs(60))).abort_on_drop();
///     let abort = slow.abort_handle();
///     assert!(timeout(Duration::from_millis(5), slow).await.is_err());
///     while !abort.is_finished() {
///         percore::yield_now().await;
///     }
/// });
/// ```
#[must_use = "dropping an AbortOnDropHandle aborts its task"]
pub struct AbortOnDropHandle<T>(Option<JoinHandle<T>>);

impl<T> AbortOnDropHandle<T> {
    /// Wraps `handle`; see [`JoinHandle::abort_on_drop`].
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::task::AbortOnDropHandle;
    ///
    /// percore::run(async {
    ///     let h = AbortOnDropHandle::new(percore::spawn(async { 1 }));
    ///     assert_eq!(h.await.unwrap(), 1);
    /// });
    /// ```
    pub fn new(handle: JoinHandle<T>) -> AbortOnDropHandle<T> {
        AbortOnDropHandle(Some(handle))
    }

    fn handle(&self) -> &JoinHandle<T> {
        self.0.as_ref().expect("present until detach or drop")
    }

    /// Aborts the task now, as [`JoinHandle::abort`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let h = percore::spawn(std::future::pending::<()>()).abort_on_drop();
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        self.handle().abort();
    }

    /// An [`AbortHandle`] for the task.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let h = percore::spawn(std::future::pending::<()>()).abort_on_drop();
    ///     let abort = h.abort_handle();
    ///     drop(h);
    ///     while !abort.is_finished() {
    ///         percore::yield_now().await;
    ///     }
    /// });
    /// ```
    pub fn abort_handle(&self) -> AbortHandle {
        self.handle().abort_handle()
    }

    /// Whether the task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let h = percore::spawn(async {}).abort_on_drop();
    ///     percore::yield_now().await;
    ///     assert!(h.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handle().is_finished()
    }

    /// Gives the plain handle back: dropping it then detaches the task again.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let guard = percore::spawn(async { 3 }).abort_on_drop();
    ///     let handle = guard.detach();
    ///     assert_eq!(handle.await.unwrap(), 3);
    /// });
    /// ```
    pub fn detach(mut self) -> JoinHandle<T> {
        self.0.take().expect("present until detach or drop")
    }
}

impl<T> Future for AbortOnDropHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handle = self.0.as_mut().expect("present until detach or drop");
        Pin::new(handle).poll(cx)
    }
}

impl<T> Drop for AbortOnDropHandle<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for AbortOnDropHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortOnDropHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The spawned future, wrapped: catches panics, honours abort, and leaves the
/// live-task registry when it is dropped.
struct TaskFuture<F> {
    future: F,
    abort: Rc<AbortState>,
    key: usize,
    /// The task queue it belongs to.
    queue: u32,
    /// The task's number on its core (1 for the first spawned), for events.
    #[cfg(feature = "tracing")]
    id: u64,
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `TaskFuture`, which is itself pinned inside the task allocation.
        let this = unsafe { self.get_unchecked_mut() };
        if ABORTS_PENDING.with(Cell::get) > 0 && this.abort.requested.get() {
            crate::event!(DEBUG, task = this.id, outcome = "aborted", "task finished");
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        // SAFETY: see above; `this.future` stays in place.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(out)) => {
                crate::event!(DEBUG, task = this.id, outcome = "returned", "task finished");
                Poll::Ready(Ok(out))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let err = JoinError::from_panic(payload);
                crate::event!(DEBUG, task = this.id, outcome = "panicked", error = %err, "task finished");
                Poll::Ready(Err(err))
            }
        }
    }
}

impl<F> Drop for TaskFuture<F> {
    fn drop(&mut self) {
        self.abort.finished.set(true);
        if self.abort.requested.get() {
            ABORTS_PENDING.with(|n| n.set(n.get() - 1));
        }
        let key = self.key;
        let idle = with_current(|e| {
            e.bump(|s| s.finished += 1);
            if let Ok(mut queues) = e.queues.try_borrow_mut()
                && let Some(q) = queues.get_mut(self.queue as usize)
            {
                q.finished += 1;
            }
            let mut tasks = e.tasks.borrow_mut();
            tasks.try_remove(key);
            if tasks.is_empty() {
                e.idle.borrow_mut().take()
            } else {
                None
            }
        });
        if let Some(w) = idle.flatten() {
            w.wake();
        }
    }
}

/// Spawns a `!Send` future on the current core and returns a handle to its
/// output. The task starts running once the caller yields to the runtime.
///
/// A panic inside the task stays in the task: it becomes
/// [`JoinError::Panic`] on the handle, and the core keeps running.
///
/// The task joins the [task queue](crate::task::TaskQueue) of the task that
/// spawns it (the default queue when the caller is not a task);
/// [`TaskQueue::spawn`](crate::task::TaskQueue::spawn) picks one.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// percore::run(async {
///     let shared = Rc::new(5); // !Send data is fine: the task stays on this core
///     let s = shared.clone();
///     let handle = percore::spawn(async move { *s * 2 });
///     assert_eq!(handle.await.unwrap(), 10);
/// });
/// ```
///
/// # Panics
///
/// When called outside a percore runtime.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    with_current(|exec| spawn_in(exec, exec.current_queue(), future))
        .expect("percore::spawn called outside a runtime: call it inside percore::run")
}

/// Spawns `future` on `exec` (the current executor) into task queue `queue`.
pub(crate) fn spawn_in<F>(exec: &Executor, queue: u32, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let shared = exec.shared.clone();
    let abort = Rc::new(AbortState {
        requested: Cell::new(false),
        finished: Cell::new(false),
        waker: OnceCell::new(),
    });
    let key = exec.tasks.borrow_mut().insert(Waker::noop().clone());
    exec.bump(|s| s.spawned += 1);
    exec.queues.borrow_mut()[queue as usize].spawned += 1;
    let wrapped = TaskFuture {
        future,
        abort: abort.clone(),
        key,
        queue,
        #[cfg(feature = "tracing")]
        id: exec.stats().spawned,
    };
    crate::event!(
        DEBUG,
        task = wrapped.id,
        core = super::core_id(),
        queue,
        future = std::any::type_name::<F>(),
        "task spawned"
    );
    let meta = TaskMeta { shared, queue };
    let (runnable, task) = async_task::Builder::new()
        .metadata(meta)
        .spawn_local(move |_| wrapped, async_task::WithInfo(schedule));
    let waker = runnable.waker();
    let _ = abort.waker.set(waker.clone());
    exec.tasks.borrow_mut()[key] = waker;
    runnable.schedule();
    JoinHandle {
        inner: Inner::Local {
            task: Some(task.fallible()),
            abort,
        },
    }
}

/// Yields to the runtime once, letting other ready tasks and I/O run.
///
/// The task runs again only after the loop has reaped I/O completions and
/// fired due timers, so a loop of "some work, then `yield_now`" never keeps
/// a received message or an expired timer waiting for more than one turn.
/// (Any task that wakes itself while it runs is treated the same way.)
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::yield_now().await;
/// });
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
