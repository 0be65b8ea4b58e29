//! Thread-per-core: one pinned thread, ring and executor per core.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};

use crate::executor::{self, CoreSet, Either, select};
use crate::runtime::{Builder, Runtime};

/// A core of a multi-core [`Runtime::run`] failed.
///
/// # Examples
///
/// ```
/// let err = percore::Runtime::builder()
///     .cores(2)
///     .build()
///     .unwrap()
///     .run(|core| async move {
///         if core == 1 {
///             panic!("core one gives up");
///         }
///         // Core 0 would wait forever; core 1's panic stops it.
///         std::future::pending::<()>().await
///     })
///     .unwrap_err();
/// assert_eq!(err.core, 1);
/// assert_eq!(err.message, "core one gives up");
/// ```
#[derive(Debug)]
pub struct CoreError {
    /// Which core.
    pub core: usize,
    /// Why: the panic message, or the error that kept its ring from starting.
    pub message: String,
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {} failed: {}", self.core, self.message)
    }
}

impl std::error::Error for CoreError {}

/// Tells every core to stop when one of them fails.
struct Stop {
    flag: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    fn new() -> Stop {
        Stop {
            flag: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
        }
    }

    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.flag.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            self.wakers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            // Re-check: a trigger between the load and the push took the list.
            if self.flag.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Counts cores whose future is done; fires `all` when every one is.
struct Finished {
    remaining: std::sync::atomic::AtomicUsize,
    all: Stop,
}

impl Finished {
    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all.trigger();
        }
    }
}

/// CPUs this process may run on, from its affinity mask.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // fills at most size_of::<cpu_set_t>() bytes of it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid 0 is the calling thread.
    let res =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if res != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET on a valid set with an index below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set) };
    // SAFETY: sched_setaffinity reads the set we own; pid 0 = this thread.
    // Failure (a CPU went away) leaves the thread unpinned, which is harmless.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

impl Runtime {
    /// Runs `f(core)` on every core, each on its own thread with its own
    /// ring and executor (this thread is core 0), and returns each core's
    /// output in core order.
    ///
    /// # Errors
    ///
    /// If a core panics or its ring cannot start, the others are stopped
    /// (their futures dropped, in-flight I/O cancelled safely) and the error
    /// names the core and why.
    ///
    /// # Examples
    ///
    /// ```
    /// let ids = percore::Runtime::builder()
    ///     .cores(2)
    ///     .build()
    ///     .unwrap()
    ///     .run(|core| async move { core * 100 })
    ///     .unwrap();
    /// assert_eq!(ids, [0, 100]);
    /// ```
    pub fn run<F, Fut>(self, f: F) -> Result<Vec<Fut::Output>, CoreError>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let cpus = allowed_cpus();
        let n = self.builder.cores_or(cpus.len());
        let pin = self.builder.pins();
        let f = Arc::new(f);
        let stop = Arc::new(Stop::new());
        let finished = Arc::new(Finished {
            remaining: std::sync::atomic::AtomicUsize::new(n),
            all: Stop::new(),
        });

        // 1. Start cores 1..n; each builds its ring and reports its executor.
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut go_txs = Vec::new();
        let mut threads = Vec::new();
        for core in 1..n {
            let (go_tx, go_rx) = mpsc::channel::<Arc<CoreSet>>();
            go_txs.push(go_tx);
            let ready_tx = ready_tx.clone();
            let builder = self.builder.clone();
            let f = f.clone();
            let stop = stop.clone();
            let finished = finished.clone();
            let cpu = cpus.get(core % cpus.len().max(1)).copied();
            let spawned = std::thread::Builder::new()
                .name(format!("percore-core-{core}"))
                .spawn(move || -> Result<Option<Fut::Output>, CoreError> {
                    if let (true, Some(cpu)) = (pin, cpu) {
                        pin_to(cpu);
                    }
                    let rt = match builder.build() {
                        Ok(rt) => rt,
                        Err(err) => {
                            let _ = ready_tx.send((core, None));
                            return Err(CoreError {
                                core,
                                message: err.to_string(),
                            });
                        }
                    };
                    let _ = ready_tx.send((core, Some(rt.executor_shared())));
                    let Ok(set) = go_rx.recv() else {
                        return Ok(None);
                    };
                    rt.run_core(core, set, &*f, &stop, &finished)
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(err) => {
                    return Err(CoreError {
                        core,
                        message: format!("cannot start its thread: {err}"),
                    });
                }
            }
        }
        drop(ready_tx);

        // 2. Gather every core's executor so they can reach each other.
        let mut shared = vec![None; n];
        shared[0] = Some(self.executor_shared());
        let mut failed = None;
        for _ in 1..n {
            match ready_rx.recv() {
                Ok((core, Some(s))) => shared[core] = Some(s),
                Ok((core, None)) => failed = failed.or(Some(core)),
                Err(_) => break,
            }
        }
        if failed.is_some() || shared.iter().any(Option::is_none) {
            drop(go_txs);
            let mut first_err = None;
            for t in threads {
                if let Ok(Err(e)) = t.join() {
                    first_err = first_err.or(Some(e));
                }
            }
            return Err(first_err.unwrap_or(CoreError {
                core: failed.unwrap_or(0),
                message: "its ring did not start".into(),
            }));
        }
        let set = Arc::new(CoreSet {
            cores: shared
                .into_iter()
                .map(|s| s.expect("every core reported"))
                .collect(),
        });
        for tx in &go_txs {
            let _ = tx.send(set.clone());
        }

        // 3. Core 0 runs here, pinned for the duration if asked.
        if pin && let Some(&cpu) = cpus.first() {
            pin_to(cpu);
        }
        let mut results = vec![self.run_core(0, set, &*f, &stop, &finished)];
        if pin {
            restore_affinity(&cpus);
        }
        for t in threads {
            results.push(t.join().unwrap_or_else(|payload| {
                Err(CoreError {
                    core: usize::MAX,
                    message: panic_message(&*payload),
                })
            }));
        }
        let mut outputs = Vec::with_capacity(n);
        let mut first_err = None;
        for r in results {
            match r {
                Ok(Some(v)) => outputs.push(v),
                Ok(None) => {}
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None if outputs.len() == n => Ok(outputs),
            None => Err(CoreError {
                core: 0,
                message: "stopped before finishing".into(),
            }),
        }
    }

    /// Runs one core's future until it finishes or another core fails.
    fn run_core<F, Fut>(
        &self,
        core: usize,
        set: Arc<CoreSet>,
        f: &F,
        stop: &Arc<Stop>,
        finished: &Arc<Finished>,
    ) -> Result<Option<Fut::Output>, CoreError>
    where
        F: Fn(usize) -> Fut,
        Fut: Future,
    {
        let _core = executor::enter_core(core, set);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.block_on(async {
                let out = match select(f(core), stop.wait()).await {
                    Either::Left(v) => Some(v),
                    Either::Right(()) => None,
                };
                // Keep serving `spawn_on` from the other cores until every
                // core's future is done.
                // Keep serving until all are done or one failed.
                finished.arrive();
                let _ = select(finished.all.wait(), stop.wait()).await;
                out
            })
        }));
        match res {
            Ok(v) => Ok(v),
            Err(payload) => {
                stop.trigger();
                Err(CoreError {
                    core,
                    message: panic_message(&*payload),
                })
            }
        }
    }
}

fn restore_affinity(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: indexes come from the affinity mask, below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: sched_setaffinity reads the set we own; pid 0 = this thread.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

impl Builder {
    fn cores_or(&self, default: usize) -> usize {
        self.cores_setting().unwrap_or(default).max(1)
    }
}
