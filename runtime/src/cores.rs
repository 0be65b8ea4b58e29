//! Thread-per-core: one pinned thread, ring and executor per core.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use crate::affinity::{self, allowed_cpus};
use crate::executor::{self, CoreSet, Either, JoinError, select};
use crate::latch::Latch;
use crate::runtime::{Builder, Runtime};
use crate::shutdown::{ShutdownHandle, Signals};

/// A core of a multi-core [`Runtime::run_on_every_core`] failed.
///
/// # Examples
///
/// ```
/// let err = percore::Runtime::builder()
///     .cores(2)
///     .build()
///     .unwrap()
///     .run_on_every_core(|core| async move {
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

/// Counts cores whose future is done; sets `all` when every one is.
struct Finished {
    remaining: AtomicUsize,
    all: Latch,
}

impl Finished {
    fn arrive(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all.set();
        }
    }
}

/// What the cores of one [`Runtime::run_on_every_core`] share.
struct Shared<F> {
    f: F,
    /// Set when a core fails: the others stop.
    stop: Latch,
    finished: Finished,
    shutdown: ShutdownHandle,
    /// Read by core 0 when the runtime handles SIGINT/SIGTERM.
    signals: Option<Signals>,
}

/// A core's panic as a message for its [`CoreError`]; the payload is read
/// as a task's is ([`JoinError`]).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    JoinError::from_panic(payload)
        .panic_message()
        .unwrap_or("panic with a non-string payload")
        .to_string()
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
    /// # Panics
    ///
    /// When called from inside a running runtime, before any core starts:
    /// see [`Runtime::block_on`].
    ///
    /// # Examples
    ///
    /// ```
    /// let ids = percore::Runtime::builder()
    ///     .cores(2)
    ///     .build()
    ///     .unwrap()
    ///     .run_on_every_core(|core| async move { core * 100 })
    ///     .unwrap();
    /// assert_eq!(ids, [0, 100]);
    /// ```
    pub fn run_on_every_core<F, Fut>(self, f: F) -> Result<Vec<Fut::Output>, CoreError>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        crate::runtime::refuse_nested();
        let cpus = allowed_cpus();
        let n = self.builder.cores_or(cpus.len());
        let pin = self.builder.pins();
        // Before any core thread starts, so that they inherit the mask.
        let signals = match self.builder.handles_signals() {
            true => Some(Signals::block().map_err(|err| CoreError {
                core: 0,
                message: format!("cannot take over SIGINT/SIGTERM: {err}"),
            })?),
            false => None,
        };
        let shared = Arc::new(Shared {
            f,
            stop: Latch::new(),
            finished: Finished {
                remaining: AtomicUsize::new(n),
                all: Latch::new(),
            },
            shutdown: self.shutdown.clone(),
            signals,
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
            let shared = shared.clone();
            let cpu = cpus.get(core % cpus.len().max(1)).copied();
            let spawned = std::thread::Builder::new()
                .name(format!("percore-core-{core}"))
                .spawn(move || -> Result<Option<Fut::Output>, CoreError> {
                    if let (true, Some(cpu)) = (pin, cpu) {
                        // Failure (a CPU went away) leaves the thread unpinned,
                        // which is harmless.
                        let _ = affinity::pin_current_thread(cpu);
                    }
                    let mut rt = match builder.build() {
                        Ok(rt) => rt,
                        Err(err) => {
                            let _ = ready_tx.send((core, None));
                            return Err(CoreError {
                                core,
                                message: err.to_string(),
                            });
                        }
                    };
                    rt.shutdown = shared.shutdown.clone();
                    let _ = ready_tx.send((core, Some(rt.executor_shared())));
                    let Ok(set) = go_rx.recv() else {
                        return Ok(None);
                    };
                    rt.run_core(core, set, &shared)
                });
            match spawned {
                Ok(t) => threads.push((core, t)),
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
        let mut executors = vec![None; n];
        executors[0] = Some(self.executor_shared());
        let mut failed = None;
        for _ in 1..n {
            match ready_rx.recv() {
                Ok((core, Some(s))) => executors[core] = Some(s),
                Ok((core, None)) => failed = failed.or(Some(core)),
                Err(_) => break,
            }
        }
        if failed.is_some() || executors.iter().any(Option::is_none) {
            drop(go_txs);
            let mut first_err = None;
            for (_, t) in threads {
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
            cores: executors
                .into_iter()
                .map(|s| s.expect("every core reported"))
                .collect(),
        });
        for tx in &go_txs {
            let _ = tx.send(set.clone());
        }

        // 3. Core 0 runs here, pinned for the duration if asked.
        if pin && let Some(&cpu) = cpus.first() {
            // As on the other cores, failure leaves it unpinned.
            let _ = affinity::pin_current_thread(cpu);
        }
        let mut results = vec![self.run_core(0, set, &shared)];
        if pin {
            let _ = affinity::set_current_thread_cpus(&cpus);
        }
        for (core, t) in threads {
            // A panic outside the core's future (its runtime's drop, say)
            // ends the thread: the core's index is still known here.
            results.push(t.join().unwrap_or_else(|payload| {
                Err(CoreError {
                    core,
                    message: panic_message(payload),
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

    /// Runs one core's future until it finishes, another core fails, or a
    /// shutdown's grace period ends; after a shutdown request, also lets the
    /// core's other tasks finish within the grace period.
    fn run_core<F, Fut>(
        &self,
        core: usize,
        set: Arc<CoreSet>,
        shared: &Shared<F>,
    ) -> Result<Option<Fut::Output>, CoreError>
    where
        F: Fn(usize) -> Fut,
        Fut: Future,
    {
        let _core = executor::enter_core(core, set);
        let shutdown = &shared.shutdown;
        let work = async {
            let out = match select(
                (shared.f)(core),
                select(shared.stop.wait(), shutdown.expired()),
            )
            .await
            {
                Either::Left(v) => Ok(Some(v)),
                Either::Right(Either::Left(())) => Ok(None),
                Either::Right(Either::Right(())) => Err(format!(
                    "did not stop within the shutdown grace period ({:?})",
                    shutdown.grace()
                )),
            };
            if shutdown.is_requested() {
                // Connections in flight finish, or are cut at the deadline.
                let _ = select(executor::tasks_done(), shutdown.expired()).await;
            }
            // Keep serving `spawn_on` from the other cores until every
            // core's future is done, or one failed.
            shared.finished.arrive();
            let _ = select(shared.finished.all.wait(), shared.stop.wait()).await;
            out
        };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.block_on(async {
                match (core, &shared.signals) {
                    (0, Some(signals)) => match select(work, signals.watch(shutdown)).await {
                        Either::Left(out) => out,
                        Either::Right(()) => unreachable!("the signal watch never ends"),
                    },
                    _ => work.await,
                }
            })
        }));
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(message)) => Err(CoreError { core, message }),
            Err(payload) => {
                shared.stop.set();
                Err(CoreError {
                    core,
                    message: panic_message(payload),
                })
            }
        }
    }
}

impl Builder {
    fn cores_or(&self, default: usize) -> usize {
        self.cores_setting().unwrap_or(default).max(1)
    }
}
