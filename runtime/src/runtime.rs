//! `Runtime`, its `Builder`, and the loop that ties executor, timers and driver.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::context;
use crate::driver::{self, Capabilities, Driver, DriverConfig, DriverKind, DriverStats};
use crate::executor::{self, Executor, ExecutorStats, Shared, TaskQueueStats};
use crate::shutdown::ShutdownHandle;
use crate::time::{self, Timers};

/// How many task polls run between two looks at the ring, so a busy core
/// still submits and reaps I/O regularly; the pass also ends after
/// [`executor::PASS_TIME`] of task CPU, whichever comes first.
const TASK_BUDGET: usize = 128;

/// Configures and builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = percore::Runtime::builder().entries(256).build().unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    config: DriverConfig,
    /// `PERCORE_DRIVER` when the builder was made, until [`Builder::driver`]
    /// chooses; checked by `build`.
    driver_from_env: Option<String>,
    /// `PERCORE_MIN_WAIT_US` when the builder was made, until
    /// [`Builder::min_wait`] chooses; checked by `build`.
    min_wait_from_env: Option<String>,
    cores: Option<usize>,
    pin: bool,
    shutdown_grace: Duration,
    shutdown_on_signals: bool,
    spin_before_park: Duration,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            config: DriverConfig {
                entries: 1024,
                sqpoll_idle: None,
                defer_taskrun: true,
                coop_taskrun: true,
                register_ring_fd: true,
                minimal: minimal_from_env(),
                slow_op: Some(Duration::from_secs(1)),
                driver: DriverKind::Auto,
                min_wait: None,
            },
            driver_from_env: std::env::var("PERCORE_DRIVER").ok(),
            min_wait_from_env: std::env::var("PERCORE_MIN_WAIT_US").ok(),
            cores: None,
            pin: false,
            shutdown_grace: Duration::from_secs(5),
            shutdown_on_signals: false,
            spin_before_park: Duration::from_micros(20),
        }
    }
}

/// `PERCORE_MIN_WAIT_US`: [`Builder::min_wait`] in microseconds, `0` or
/// empty for off.
fn parse_min_wait_us(us: &str) -> io::Result<Option<Duration>> {
    if us.trim().is_empty() {
        return Ok(None);
    }
    let us: u64 = us.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("PERCORE_MIN_WAIT_US={us:?}: expected a whole number of microseconds"),
        )
    })?;
    Ok(Some(Duration::from_micros(us)).filter(|d| !d.is_zero()))
}

/// `PERCORE_MINIMAL=1` turns [`Builder::minimal_features`] on by default.
fn minimal_from_env() -> bool {
    std::env::var_os("PERCORE_MINIMAL").is_some_and(|v| v == "1")
}

impl Builder {
    /// A builder with the defaults: 1024 SQ entries (4x CQ), DEFER_TASKRUN or
    /// else COOP_TASKRUN when the kernel has them, registered ring fd.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Builder::new().build().unwrap();
    /// assert_eq!(rt.block_on(async { 2 + 2 }), 4);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// SQ entries (rounded up to a power of two; the CQ gets four times as many).
    /// The ring shrinks on its own if locked memory is short.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder().entries(64).build().unwrap();
    /// assert!(rt.capabilities().sq_entries <= 64);
    /// ```
    pub fn entries(mut self, entries: u32) -> Builder {
        self.config.entries = entries;
        self
    }

    /// Use a kernel SQ polling thread that sleeps after `idle` without work.
    /// Off by default; it excludes DEFER_TASKRUN.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // A kernel thread polls the SQ; it sleeps after 10 ms without work.
    /// let rt = percore::Runtime::builder()
    ///     .sqpoll(Some(Duration::from_millis(10)))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async { percore::op::Op::new(percore::op::Nop).await.unwrap() });
    /// ```
    pub fn sqpoll(mut self, idle: Option<Duration>) -> Builder {
        self.config.sqpoll_idle = idle;
        self
    }

    /// Use `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` when the
    /// kernel has it (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder().defer_taskrun(false).build().unwrap();
    /// assert!(!rt.capabilities().defer_taskrun);
    /// ```
    pub fn defer_taskrun(mut self, on: bool) -> Builder {
        self.config.defer_taskrun = on;
        self
    }

    /// Use `IORING_SETUP_COOP_TASKRUN` when DEFER_TASKRUN is off or missing (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder()
    ///     .defer_taskrun(false)
    ///     .coop_taskrun(false)
    ///     .build()
    ///     .unwrap();
    /// assert!(!rt.capabilities().coop_taskrun);
    /// ```
    pub fn coop_taskrun(mut self, on: bool) -> Builder {
        self.config.coop_taskrun = on;
        self
    }

    /// Register the ring fd so each `io_uring_enter` skips the fd lookup (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder().register_ring_fd(false).build().unwrap();
    /// rt.block_on(async { percore::op::Op::new(percore::op::Nop).await.unwrap() });
    /// ```
    pub fn register_ring_fd(mut self, on: bool) -> Builder {
        self.config.register_ring_fd = on;
        self
    }

    /// Pretend the kernel has none of the optional io_uring features, so every
    /// fallback path runs (for testing code against old kernels): no
    /// DEFER_TASKRUN or COOP_TASKRUN, no `IORING_FEAT_EXT_ARG` or FAST_POLL,
    /// no registered ring fd, no multishot accept or recv, no provided-buffer
    /// rings, and [`Capabilities::opcodes`] cut down to what Linux 5.11 has
    /// (no `send_zc`, `msg_ring`, `socket`, `ftruncate`, ...).
    ///
    /// The default is off, or on when the environment variable
    /// `PERCORE_MINIMAL` is `1` when the builder is made: so
    /// `PERCORE_MINIMAL=1 cargo test --workspace` runs a whole suite on the
    /// fallbacks. This method overrides the variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder().minimal_features(true).build().unwrap();
    /// let caps = rt.capabilities();
    /// assert!(!caps.multishot_accept && !caps.buf_ring && !caps.send_zc);
    /// assert!(!caps.supports(io_uring::opcode::Socket::CODE));
    /// ```
    pub fn minimal_features(mut self, on: bool) -> Builder {
        self.config.minimal = on;
        self
    }

    /// Chooses the driver backend: [`DriverKind::Auto`] (the default) runs
    /// io_uring and falls back to epoll where the ring cannot be set up (a
    /// container's seccomp profile, `kernel.io_uring_disabled`, `ENOSYS`, a
    /// memlock limit even the smallest ring does not fit);
    /// [`DriverKind::IoUring`] fails there with an error that names the
    /// cause and the fix; [`DriverKind::Epoll`] always runs on epoll.
    ///
    /// Without this call the environment variable `PERCORE_DRIVER`
    /// (`auto`, `io_uring` or `epoll`) decides, so a whole program or test
    /// suite can be run on either driver unchanged. Which one runs, and why,
    /// is in [`Capabilities::driver`] and [`Capabilities::fallback_reason`]
    /// (and a `tracing` WARN, once, when the fallback happens).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::DriverKind;
    ///
    /// let rt = percore::Runtime::builder().driver(DriverKind::Auto).build().unwrap();
    /// let caps = rt.capabilities();
    /// match caps.driver {
    ///     DriverKind::IoUring => println!("io_uring: {caps}"),
    ///     _ => println!("epoll, because {:?}", caps.fallback_reason),
    /// }
    /// ```
    pub fn driver(mut self, kind: DriverKind) -> Builder {
        self.config.driver = kind;
        self.driver_from_env = None;
        self
    }

    /// With the `tracing` feature, a WARN event names any op that was in
    /// flight longer than `threshold` when its completion arrives (default
    /// 1 s; `None` turns it off). Ops that wait for a peer or a timer by
    /// nature (accept, recv, poll, timeouts) are never reported; a plain read
    /// of a pipe or signalfd is, so a program that keeps one in flight may
    /// want a larger threshold. Without the feature nothing is timed and
    /// this setting has no effect.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = percore::Runtime::builder()
    ///     .slow_op_warning(Some(Duration::from_millis(100)))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async {});
    /// ```
    pub fn slow_op_warning(mut self, threshold: Option<Duration>) -> Builder {
        self.config.slow_op = threshold;
        self
    }

    /// How many cores [`Runtime::run_on_every_core`] runs on, each a thread with its own
    /// ring and executor. Default: every CPU in the process's affinity mask.
    ///
    /// # Examples
    ///
    /// ```
    /// let out = percore::Runtime::builder()
    ///     .cores(3)
    ///     .build()
    ///     .unwrap()
    ///     .run_on_every_core(|core| async move { core })
    ///     .unwrap();
    /// assert_eq!(out, [0, 1, 2]);
    /// ```
    pub fn cores(mut self, n: usize) -> Builder {
        self.cores = Some(n.max(1));
        self
    }

    /// Pin core `i`'s thread to the `i`-th CPU of the process's affinity mask
    /// while [`Runtime::run_on_every_core`] runs (default off).
    ///
    /// # Examples
    ///
    /// ```
    /// let out = percore::Runtime::builder()
    ///     .cores(2)
    ///     .pin(true)
    ///     .build()
    ///     .unwrap()
    ///     .run_on_every_core(|core| async move { core })
    ///     .unwrap();
    /// assert_eq!(out, [0, 1]);
    /// ```
    pub fn pin(mut self, on: bool) -> Builder {
        self.pin = on;
        self
    }

    /// How long, from the start of a [graceful shutdown](crate::shutdown),
    /// [`Runtime::run_on_every_core`] lets work in flight finish before dropping it
    /// (default 5 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = percore::Runtime::builder()
    ///     .shutdown_grace(Duration::from_millis(100))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Builder {
        self.shutdown_grace = grace;
        self
    }

    /// Let SIGINT (Ctrl-C) and SIGTERM start a [graceful
    /// shutdown](crate::shutdown) of [`Runtime::run_on_every_core`], and a second one end
    /// its grace period (default off).
    ///
    /// While `run_on_every_core` runs, the two signals are blocked in its threads and read
    /// from a signalfd on core 0's ring; the mask is restored when `run_on_every_core`
    /// returns. Call `run_on_every_core` from the main thread before starting other
    /// threads (they inherit the mask), or block the signals in them too:
    /// a thread that does not block them would take the default action.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let rt = percore::Runtime::builder().shutdown_on_signals(true).build().unwrap();
    /// rt.run_on_every_core(|_core| async {
    ///     percore::shutdown::requested().await; // Ctrl-C
    /// })
    /// .unwrap();
    /// ```
    pub fn shutdown_on_signals(mut self, on: bool) -> Builder {
        self.shutdown_on_signals = on;
        self
    }

    /// How long an idle core may spin, watching for work from other cores,
    /// before it parks in `io_uring_enter` (default 20 µs; zero turns it off).
    ///
    /// A core spins only while cross-core traffic is brisk: when the last
    /// time it went idle, another core woke it within this time. Then a
    /// message from another core is picked up without either core making a
    /// syscall or the parked one being rescheduled, which is most of a
    /// cross-core round trip. A core woken by its own I/O, or by messages
    /// further apart, never spins, so an idle or I/O-bound core burns no
    /// CPU on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Latency-sensitive cross-core pipelines may spin longer.
    /// let rt = percore::Runtime::builder()
    ///     .spin_before_park(Duration::from_micros(50))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn spin_before_park(mut self, limit: Duration) -> Builder {
        self.spin_before_park = limit;
        self
    }

    /// Lets each park batch completions for up to `min_wait` (off by
    /// default; `Duration::ZERO` turns it off): a trade of latency for CPU
    /// when requests arrive spread out.
    ///
    /// A core that parks waits, as usual, for a completion, a wake-up or its
    /// next timer; with a min-wait a completion that arrives early in the
    /// park no longer ends it at once: the park ends when 64 completions are
    /// there, or once `min_wait` has passed since the park began and at
    /// least one is (one that arrives later ends it at once), or when a
    /// timer is due, whichever is first. A lone request thus waits at most
    /// `min_wait` longer, and requests that arrive within it are served by
    /// one wake-up, which is one `io_uring_enter` and one loop turn fewer
    /// for each. Wake-ups from other cores are completions too, and may wait
    /// as long. Timers are not delayed: a park never waits past the nearest
    /// one.
    ///
    /// Needs io_uring with `IORING_FEAT_MIN_TIMEOUT` (Linux 6.12). Elsewhere
    /// (an older kernel, [`Builder::minimal_features`], the epoll driver,
    /// which has no batch wait) it is ignored, with a `tracing` WARN once per
    /// process; [`Capabilities::min_wait`] tells which. Without this call
    /// the environment variable `PERCORE_MIN_WAIT_US` (microseconds, `0`
    /// off) chooses.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = percore::Runtime::builder()
    ///     .min_wait(Duration::from_micros(50))
    ///     .build()
    ///     .unwrap();
    /// let caps = rt.capabilities();
    /// if caps.min_timeout && caps.driver == percore::DriverKind::IoUring {
    ///     assert_eq!(caps.min_wait, Some(Duration::from_micros(50)));
    /// } else {
    ///     assert_eq!(caps.min_wait, None); // ignored here
    /// }
    /// ```
    pub fn min_wait(mut self, min_wait: Duration) -> Builder {
        self.config.min_wait = Some(min_wait).filter(|d| !d.is_zero());
        self.min_wait_from_env = None;
        self
    }

    pub(crate) fn handles_signals(&self) -> bool {
        self.shutdown_on_signals
    }

    pub(crate) fn cores_setting(&self) -> Option<usize> {
        self.cores
    }

    pub(crate) fn pins(&self) -> bool {
        self.pin
    }

    /// Sets up the ring and the executor for the current thread.
    ///
    /// # Errors
    ///
    /// When io_uring is unavailable, an `ErrorKind::Unsupported` error whose
    /// message names the cause (io_uring_disabled sysctl, seccomp, memlock)
    /// and the fix.
    ///
    /// # Examples
    ///
    /// ```
    /// match percore::Runtime::builder().build() {
    ///     Ok(rt) => rt.block_on(async {}),
    ///     // e.g. "io_uring unavailable (...): ... fix: ..."
    ///     Err(err) => eprintln!("cannot start: {err}"),
    /// }
    /// ```
    pub fn build(mut self) -> io::Result<Runtime> {
        if let Some(name) = self.driver_from_env.take() {
            self.config.driver = DriverKind::parse(&name).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("PERCORE_DRIVER={name:?}: expected `auto`, `io_uring` or `epoll`"),
                )
            })?;
        }
        if let Some(us) = self.min_wait_from_env.take() {
            self.config.min_wait = parse_min_wait_us(&us)?;
        }
        let driver = Driver::new(&self.config)?;
        let unparker = driver.unparker();
        let executor = Executor::new(Box::new(move || unparker.unpark()));
        Ok(Runtime {
            shutdown: ShutdownHandle::new(self.shutdown_grace),
            builder: self,
            driver: Rc::new(RefCell::new(driver)),
            executor: Rc::new(executor),
            timers: Rc::new(Timers::new()),
            _not_send: PhantomData,
        })
    }
}

/// One core's runtime: an io_uring, an executor of local tasks and timers.
///
/// `Runtime` is `!Send`: it belongs to the thread that built it.
///
/// # Examples
///
/// ```
/// let rt = percore::Runtime::new().unwrap();
/// let out = rt.block_on(async {
///     let h = percore::spawn(async { "hello" });
///     h.await.unwrap()
/// });
/// assert_eq!(out, "hello");
/// ```
pub struct Runtime {
    pub(crate) builder: Builder,
    driver: Rc<RefCell<Driver>>,
    executor: Rc<Executor>,
    timers: Rc<Timers>,
    pub(crate) shutdown: ShutdownHandle,
    _not_send: PhantomData<*const ()>,
}

thread_local! {
    /// Whether a `block_on` runs on this thread (nested ones are refused).
    static IN_BLOCK_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as running a `block_on` until dropped (also when the
/// future panics).
struct BlockOnGuard;

impl BlockOnGuard {
    fn enter() -> BlockOnGuard {
        BlockOnGuard::refuse_nested();
        IN_BLOCK_ON.with(|b| b.set(true));
        BlockOnGuard
    }

    /// Panics if a `block_on` already runs on this thread.
    pub(crate) fn refuse_nested() {
        if IN_BLOCK_ON.with(|b| b.get()) {
            panic!(
                "percore::run (or Runtime::block_on) called from inside a running runtime: \
                 it would block this core and every task on it; \
                 spawn the future (percore::spawn) or await it instead"
            );
        }
    }
}

impl Drop for BlockOnGuard {
    fn drop(&mut self) {
        let _ = IN_BLOCK_ON.try_with(|b| b.set(false));
    }
}

/// Panics if a runtime already runs on this thread (for `Runtime::run_on_every_core`,
/// before it starts any core).
pub(crate) fn refuse_nested() {
    BlockOnGuard::refuse_nested();
}

/// Wakes the future passed to `block_on`.
struct MainWaker {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.shared.unpark();
    }
}

impl Runtime {
    /// A runtime with the default [`Builder`].
    ///
    /// # Errors
    ///
    /// See [`Builder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// rt.block_on(async { percore::yield_now().await });
    /// ```
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to configure the ring.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::builder().entries(128).build().unwrap();
    /// rt.block_on(async {});
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    fn enter(&self) -> context::Guard {
        context::enter(context::Core {
            driver: self.driver.clone(),
            executor: self.executor.clone(),
            timers: self.timers.clone(),
            shutdown: self.shutdown.clone(),
        })
    }

    pub(crate) fn executor_shared(&self) -> Arc<Shared> {
        self.executor.shared().clone()
    }

    /// A handle to this runtime's [graceful shutdown](crate::shutdown), to
    /// start it from another thread. The cores of [`Runtime::run_on_every_core`] share it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// let shutdown = rt.shutdown_handle();
    /// shutdown.request();
    /// rt.block_on(percore::shutdown::requested());
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// What the kernel offered when this runtime started.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// let caps = rt.capabilities();
    /// assert!(caps.supports(io_uring::opcode::Read::CODE));
    /// println!("{caps}");
    /// ```
    pub fn capabilities(&self) -> Rc<Capabilities> {
        self.driver.borrow().capabilities()
    }

    /// Runs `future` to completion on this thread, running spawned tasks, I/O
    /// and timers meanwhile, and returns its output. Tasks still running when
    /// it returns stay on the runtime until the next `block_on` or its drop.
    ///
    /// # Panics
    ///
    /// If `future` panics (panics in spawned tasks stay in their tasks), or
    /// if the ring fails in a way that cannot be recovered. Also when called
    /// from inside a running runtime (a task, or the future of another
    /// `block_on` on this thread), as tokio refuses it too: it would block
    /// that core and every task on it. Spawn the future or await it instead;
    /// [`spawn_blocking`](crate::spawn_blocking)'s threads may start
    /// runtimes of their own. And in a forked child process: the child
    /// shares the parent's io_uring, so it must build a runtime of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// // Tasks left running by one block_on go on in the next.
    /// let handle = rt.block_on(async { percore::spawn(async { 5 }) });
    /// assert_eq!(rt.block_on(handle).unwrap(), 5);
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        {
            let driver = self.driver.borrow();
            if driver.inherited_by_pid() {
                panic!("{}", driver.fork_error());
            }
        }
        let _running = BlockOnGuard::enter();
        let _guards = self.enter();
        let main = Arc::new(MainWaker {
            woken: AtomicBool::new(true),
            shared: self.executor.shared().clone(),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        let mut wakes = Vec::with_capacity(64);
        let mut garbage = Vec::new();
        let unparker = self.driver.borrow().unparker();
        let spin_limit = self.builder.spin_before_park;
        let mut spin_next = false;
        // Whether the next turn reads the clock for the spin's sake.
        let mut measure_idle = false;
        // The latest clock reading, for the park (which uses it only with
        // a timeout, and a timeout comes with a reading this turn).
        let mut last_clock = Instant::now();
        loop {
            // A load first: the swap is a locked instruction, and most
            // turns are for tasks, not the main future. A wake the load
            // misses is seen by `ready()` before the loop parks.
            if main.woken.load(Ordering::Acquire)
                && main.woken.swap(false, Ordering::AcqRel)
                && let Poll::Ready(out) = future.as_mut().poll(&mut cx)
            {
                // Entries queued by the last poll (a wake-up posted to
                // another core, a close) must not wait for a next tick that
                // may never come.
                self.driver.borrow_mut().flush_queued();
                return out;
            }
            let ended = self
                .executor
                .run_ready(TASK_BUDGET, &mut || self.driver.borrow_mut().flush_queued());
            // The clock is read only when something needs it: a pending
            // timer, or the spin before the next park, which measures this
            // idle spell (only after another thread ended the last one). A
            // turn that runs one request with no timer reads none.
            let now =
                ended.or_else(|| (self.timers.wants_clock() || measure_idle).then(Instant::now));
            match now {
                Some(now) => {
                    last_clock = now;
                    self.timers.fire_due(now, &mut wakes);
                    wake_all(&mut wakes);
                }
                None => self.timers.unread_turn(),
            }

            let ready = || self.executor.has_ready() || main.woken.load(Ordering::Acquire);
            let res = if ready() {
                self.driver.borrow_mut().submit_and_reap()
            } else if spin_next
                && let Some(now) = now
                && self.spin_for_remote_work(&ready, spin_limit, now)
            {
                // Work from another core, found without a syscall.
                Ok(())
            } else {
                unparker.prepare_park();
                // Re-check after announcing the park: a wake from another
                // thread either sees `parked` and sends a wake-up, or
                // queued its task before this check.
                if ready() {
                    unparker.cancel_park();
                    self.driver.borrow_mut().submit_and_reap()
                } else {
                    // No reading means no timer: no timeout, and the
                    // park ignores the instant it would count from.
                    let timeout = now.and_then(|now| self.timers.park_timeout(now));
                    let res = self.driver.borrow_mut().park(timeout, last_clock);
                    unparker.cancel_park();
                    // Spin next time if another core ended this idle spell
                    // soon (checked before any local code runs, so a wake
                    // seen here came from another thread). Without a
                    // reading from before the park it cannot tell: the next
                    // turn takes one, to tell next time.
                    let remote =
                        self.executor.has_remote_ready() || main.woken.load(Ordering::Acquire);
                    measure_idle = remote && !spin_limit.is_zero();
                    spin_next = remote && now.is_some_and(|now| now.elapsed() < spin_limit);
                    res
                }
            };
            if let Err(err) = res {
                let syscall = self.driver.borrow().enter_syscall();
                panic!("percore: {syscall} failed: {err}");
            }
            self.driver
                .borrow_mut()
                .take_ready(&mut wakes, &mut garbage);
            self.executor.completions_reaped();
            wake_all(&mut wakes);
            garbage.clear();
            // Completions are reaped and timers fired: tasks that yielded
            // may run again, behind the ones this tick woke.
            self.executor.release_yielded();
        }
    }

    /// Spins until `ready()`, the ring has something for this core, or
    /// `limit` has passed since `idle_since`; true if `ready()`. Queued SQEs
    /// go to the kernel first, so no I/O waits for the spin.
    fn spin_for_remote_work(
        &self,
        ready: &dyn Fn() -> bool,
        limit: Duration,
        idle_since: Instant,
    ) -> bool {
        self.driver.borrow_mut().flush_queued();
        loop {
            if ready() {
                return true;
            }
            if self.driver.borrow_mut().work_pending() || idle_since.elapsed() >= limit {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Per-core counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = percore::Runtime::new().unwrap();
    /// rt.block_on(async { percore::spawn(async {}).await.unwrap() });
    /// assert_eq!(rt.stats().executor.spawned, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        Stats {
            backend: self.driver.borrow().capabilities().driver,
            driver: self.driver.borrow().stats(),
            executor: self.executor.stats(),
            timers: self.timers.len(),
            in_flight: self.driver.borrow().in_flight(),
            queues: self.executor.queue_stats(),
        }
    }
}

/// Wakes the wakers the timers or the driver collected, in order, and
/// keeps the vector's capacity for the next turn.
#[inline]
fn wake_all(wakes: &mut Vec<Waker>) {
    // Most turns fire no timer: nothing to set up. Reversed and popped
    // rather than drained: a drain's set-up and drop cost more than the
    // wake-up of the one task a turn usually has.
    if wakes.is_empty() {
        return;
    }
    wakes.reverse();
    while let Some(w) = wakes.pop() {
        w.wake();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.driver.try_borrow().is_ok_and(|d| d.inherited_by_pid()) {
            // Dropped in a forked child: the ring is the parent's (shared
            // memory), so nothing may be cancelled, submitted or reaped on
            // it. The child's copies of the tasks and buffers are leaked;
            // the parent's are untouched.
            std::mem::forget(self.driver.clone());
            std::mem::forget(self.executor.clone());
            std::mem::forget(self.timers.clone());
            return;
        }
        if !context::alive() {
            // Dropped with this thread's locals (a runtime kept in a
            // thread_local): the driver cannot be made current to take over
            // in-flight ops, so leak the ring and the tasks instead of
            // freeing buffers the kernel may still write; the thread is
            // ending anyway.
            std::mem::forget(self.driver.clone());
            std::mem::forget(self.executor.clone());
            std::mem::forget(self.timers.clone());
            return;
        }
        let _guards = self.enter();
        // 1. Drop every task's future while the driver is current: ops in
        //    flight move into their slots and get cancelled.
        self.executor.shutdown();
        // 2. Wait (bounded) for the kernel to finish with them; leak what it
        //    still owns after that rather than free it under the kernel.
        let mut wakes = Vec::new();
        let mut garbage = Vec::new();
        {
            let mut driver = self.driver.borrow_mut();
            driver.shutdown();
            driver.take_ready(&mut wakes, &mut garbage);
        }
        // 3. Drop what the kernel is done with outside the borrow (closes of
        //    its fds are queued on the ring, buffer rings unregister), then
        //    submit those closes.
        drop(wakes);
        drop(garbage);
        let _ = self.driver.borrow_mut().submit_and_reap();
    }
}

/// A snapshot of one core's counters.
///
/// Its `Display` is a compact report of a few lines (what the examples print
/// with `--stats`), with one line per task queue once the core has more
/// than the default one.
///
/// It is `Clone` but not `Copy` since it lists the core's task queues;
/// read a field (`percore::stats().executor`) to keep a `Copy` part.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::op::Op::new(percore::op::Nop).await.unwrap();
///     let stats = percore::stats();
///     assert!(stats.driver.completed >= 1);
///     let report = stats.to_string();
///     assert!(report.contains("nop 1/1"), "{report}");
/// });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Which driver runs this core: io_uring, or epoll where the ring could
    /// not be set up (see [`Capabilities::fallback_reason`]).
    pub backend: DriverKind,
    /// Ring counters.
    pub driver: DriverStats,
    /// Task counters.
    pub executor: ExecutorStats,
    /// Pending timers.
    pub timers: usize,
    /// Ops the kernel still owns.
    pub in_flight: usize,
    /// Every task queue of the core, the default queue first, in the order
    /// they were made: name, shares, CPU time, polls, tasks, queueing delay.
    ///
    /// ```
    /// use percore::task::{Latency, TaskQueue};
    ///
    /// percore::run(async {
    ///     let bulk = TaskQueue::new("bulk", 50, Latency::NotImportant);
    ///     bulk.spawn(async {}).await.unwrap();
    ///     let stats = percore::stats();
    ///     let names: Vec<&str> = stats.queues.iter().map(|q| &*q.name).collect();
    ///     assert_eq!(names, ["default", "bulk"]);
    ///     assert_eq!((stats.queues[1].shares, stats.queues[1].finished), (50, 1));
    /// });
    /// ```
    pub queues: Vec<TaskQueueStats>,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.driver;
        let e = &self.executor;
        let per = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        writeln!(
            f,
            "ring:  {} driver, {} ticks ({} parked), {} enters, {} SQEs ({:.2}/enter), {} CQEs, \
             sq full {}, cq overflow {}",
            self.backend,
            d.ticks,
            d.parks,
            d.enters,
            d.submitted,
            per(d.submitted, d.enters),
            d.completed,
            d.sq_full,
            d.cq_overflow,
        )?;
        writeln!(
            f,
            "tasks: {} spawned, {} finished, {} polls, {} remote wakes; {} timers, {} ops in flight",
            e.spawned, e.finished, e.polled, e.remote_wakes, self.timers, self.in_flight,
        )?;
        f.write_str("ops (submitted/completed):")?;
        for (op, submitted, completed) in d.ops.iter() {
            write!(f, " {} {submitted}/{completed}", driver::opcode_name(op))?;
        }
        // The default queue alone measures no CPU time or delay (no clock
        // is read for it): the `tasks:` line says all there is.
        if self.queues.len() > 1 {
            for q in &self.queues {
                write!(
                    f,
                    "\nqueue {}: {} shares, cpu {:?}, {} polls, {} turns, {} tasks ({} finished), \
                     waited for a turn p50 {:?} p99 {:?} max {:?}",
                    q.name,
                    q.shares,
                    q.cpu,
                    q.polls,
                    q.turns,
                    q.spawned,
                    q.finished,
                    q.delay_p50,
                    q.delay_p99,
                    q.delay_max,
                )?;
                if q.file_ops > 0 {
                    write!(f, ", {} file ops ({} waited)", q.file_ops, q.file_op_waits)?;
                }
            }
        }
        Ok(())
    }
}

/// The current core's counters.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let spawned = percore::stats().executor.spawned;
///     percore::spawn(async {}).await.unwrap();
///     assert_eq!(percore::stats().executor.spawned, spawned + 1);
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime, with a message that says so (like tokio's
/// `Handle::current`); [`try_stats`] returns `None` there instead, and
/// [`Runtime::stats`] reads a runtime's counters from outside it.
pub fn stats() -> Stats {
    try_stats().expect(
        "percore::stats called outside a runtime: call it inside percore::run or \
         Runtime::block_on, use Runtime::stats on a runtime you hold, or percore::try_stats",
    )
}

/// The current core's counters, or `None` outside a runtime.
///
/// # Examples
///
/// ```
/// assert!(percore::try_stats().is_none());
/// percore::run(async {
///     assert!(percore::try_stats().is_some());
/// });
/// ```
pub fn try_stats() -> Option<Stats> {
    let (backend, driver, in_flight) =
        driver::try_with_driver(|d| (d.capabilities().driver, d.stats(), d.in_flight()))?;
    let (executor, queues) = executor::current_stats().unwrap_or_default();
    Some(Stats {
        backend,
        driver,
        executor,
        timers: time::current_len().unwrap_or(0),
        in_flight,
        queues,
    })
}

/// What the current core's kernel offers (or `None` outside a runtime).
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let caps = percore::capabilities().unwrap();
///     assert!(caps.supports(io_uring::opcode::Nop::CODE));
/// });
/// ```
pub fn capabilities() -> Option<Rc<Capabilities>> {
    driver::current_capabilities()
}

/// Runs `future` on a new single-core runtime on this thread and returns its
/// output — percore's `asyncio.run`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// async fn fetch_data(id: u32) -> u32 {
///     percore::time::sleep(Duration::from_millis(1)).await;
///     id * 10
/// }
///
/// let total = percore::run(async {
///     let a = percore::spawn(fetch_data(1));
///     let b = percore::spawn(fetch_data(2));
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(total, 30);
/// ```
///
/// # Panics
///
/// If io_uring is unavailable: the message names the cause and the fix (use
/// [`Runtime::builder`] to handle that as an error instead). Also if `future`
/// panics, and when called from inside a running runtime (see
/// [`Runtime::block_on`]):
///
/// ```should_panic
/// percore::run(async {
///     // panics: "percore::run (or Runtime::block_on) called from inside a running runtime ..."
///     percore::run(async {});
/// });
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    // Before a ring is set up for nothing.
    BlockOnGuard::refuse_nested();
    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(err) => panic!("percore: cannot start the runtime: {err}"),
    };
    rt.block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_wait_env_values() {
        assert_eq!(
            parse_min_wait_us(" 50 ").unwrap(),
            Some(Duration::from_micros(50))
        );
        assert_eq!(parse_min_wait_us("0").unwrap(), None);
        assert_eq!(parse_min_wait_us("").unwrap(), None);
        let err = parse_min_wait_us("50us").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("PERCORE_MIN_WAIT_US"), "{err}");
    }
}
