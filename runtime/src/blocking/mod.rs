//! `spawn_blocking`: run blocking code on a small thread pool and get the
//! result back on the calling core.
//!
//! Provides: one process-wide pool whose threads start on demand (up to
//! [`MAX_THREADS`]) and exit after [`IDLE_TIMEOUT`] without work. The result
//! wakes the calling task through the executor's cross-thread path, which
//! unparks the core's ring.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::executor::{JoinError, JoinHandle, oneshot};
use crate::loom_sync::{Condvar, Mutex, MutexGuard, lock, thread};

/// Most threads the pool runs at once; further jobs queue.
pub const MAX_THREADS: usize = 64;
/// How long an idle pool thread waits for work before it exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A job for the pool.
pub type Job = Box<dyn FnOnce() + Send>;

/// The thread pool behind [`spawn_blocking`]: one per process (see
/// [`pool`]); `pub` only so that the loom models can drive one directly
/// (through `percore::loom_internals`, under `--cfg loom`).
pub struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

/// A thread is *idle* while it waits on `work` without a job handed to it,
/// and *busy* otherwise. `submit` counts a thread busy at hand-off (it takes
/// one from `idle` and adds one to `notified`), not when the woken thread
/// gets to the lock: two submits in a row must not both count on the same
/// idle thread, or the second job queues behind the first, and a first job
/// that waits for the second never ends.
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    /// Threads waiting for work that no submit has claimed.
    idle: usize,
    /// Wake-ups handed to idle threads and not yet taken: each stands for
    /// one thread moved from `idle` to busy by `submit`. A waiting thread
    /// that finds one takes it, whichever thread the condvar woke.
    notified: usize,
    /// Set by [`Pool::close`]: threads exit once the queue is empty.
    closed: bool,
}

fn pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(Pool::new()))
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new()
    }
}

impl Pool {
    /// A pool with no thread yet.
    pub fn new() -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                closed: false,
            }),
            work: Condvar::new(),
        }
    }

    /// Queues `job` and hands it to an idle thread, or starts a thread for
    /// it if none is idle (up to [`MAX_THREADS`]).
    pub fn submit(self: &Arc<Self>, job: Job) {
        let mut st = lock(&self.state);
        st.queue.push_back(job);
        if st.idle > 0 {
            // That thread is busy from now on: the next submit must not
            // count on it (see `PoolState`).
            st.idle -= 1;
            st.notified += 1;
            self.work.notify_one();
        } else if st.threads < MAX_THREADS {
            st.threads += 1;
            let pool = self.clone();
            let spawned = thread::Builder::new()
                .name("percore-blocking".into())
                .spawn(move || pool.worker());
            if spawned.is_err() {
                // No thread could be started: a running one will take the
                // job when it frees up (there is at least one, or this job
                // waits for the next successful spawn).
                st.threads -= 1;
            }
        }
    }

    /// Lets every thread exit once the queue is empty (the loom models end
    /// with it: a model must end with no thread blocked); the process-wide
    /// pool is never closed.
    #[cfg(loom)]
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.work.notify_all();
    }

    fn worker(&self) {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = lock(&self.state);
                continue;
            }
            if st.closed {
                st.threads -= 1;
                return;
            }
            st.idle += 1;
            match self.wait_for_work(st) {
                Some(guard) => st = guard,
                None => return,
            }
        }
    }

    /// Waits as an idle thread until a submit hands this thread work; `None`
    /// once the thread has exited (idle for [`IDLE_TIMEOUT`], or closed).
    fn wait_for_work<'a>(
        &'a self,
        mut st: MutexGuard<'a, PoolState>,
    ) -> Option<MutexGuard<'a, PoolState>> {
        let deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (guard, _) = self
                .work
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            if st.notified > 0 {
                // A submit counted a thread busy: this one is it (`submit`
                // already took it out of `idle`).
                st.notified -= 1;
                return Some(st);
            }
            if st.closed || Instant::now() >= deadline {
                // Still counted idle: no submit claimed this thread.
                st.idle -= 1;
                if !st.queue.is_empty() {
                    // Cannot happen while every queued job has a claimed
                    // thread on its way, but a job is not left behind on
                    // that reasoning alone.
                    return Some(st);
                }
                st.threads -= 1;
                return None;
            }
            // A spurious wake-up, or another thread took the notification.
        }
    }
}

/// Runs `f` on the blocking thread pool and returns a handle to its result,
/// awaited on the calling core. A panic in `f` becomes
/// [`JoinError::Panic`](crate::JoinError::Panic).
///
/// Use it for CPU-heavy work or blocking calls that have no io_uring op,
/// so they never stall the core's other tasks.
///
/// # Examples
///
/// Runs `job` on the process-wide pool: the epoll driver's file ops, which
/// post their own completion.
pub(crate) fn submit_job(job: Job) {
    pool().submit(job);
}

/// ```
/// percore::run(async {
///     let sum = percore::spawn_blocking(|| (1..=100u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 5050);
/// });
/// ```
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::<Result<T, JoinError>>();
    pool().submit(Box::new(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        tx.send(out.map_err(JoinError::from_panic));
    }));
    JoinHandle::remote(rx)
}
