//! `spawn_blocking`: run blocking code on a small thread pool and get the
//! result back on the calling core.
//!
//! Provides: one process-wide pool whose threads start on demand (up to
//! [`MAX_THREADS`]) and exit after [`IDLE_TIMEOUT`] without work. The result
//! wakes the calling task through the executor's cross-thread path, which
//! unparks the core's ring.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::executor::{JoinError, JoinHandle, oneshot};

/// Most threads the pool runs at once; further jobs queue.
pub const MAX_THREADS: usize = 64;
/// How long an idle pool thread waits for work before it exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    fn submit(&'static self, job: Job) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.queue.push_back(job);
        if st.idle > 0 {
            self.work.notify_one();
        } else if st.threads < MAX_THREADS {
            st.threads += 1;
            let spawned = std::thread::Builder::new()
                .name("percore-blocking".into())
                .spawn(move || self.worker());
            if spawned.is_err() {
                // No thread could be started: a running one will take the
                // job when it frees up (there is at least one, or this job
                // waits for the next successful spawn).
                st.threads -= 1;
            }
        }
    }

    fn worker(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, IDLE_TIMEOUT)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.queue.is_empty() {
                st.threads -= 1;
                return;
            }
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
