//! A TCP echo server on percore: every byte a client sends comes back.
//!
//! ```text
//! cargo run --release --example echo-server -- [--addr 127.0.0.1:7000] [--cores N]
//!     [--buf BYTES] [--plain] [--ring-entries N] [--idle-timeout SECS] [--grace SECS]
//!     [--pin] [--stats] [--background N] [--classes] [--copy SRC] [--min-wait-us N]
//! ```
//!
//! - `--cores N`: N cores (`Runtime::run_on_every_core`), each a thread with its own ring,
//!   executor and `SO_REUSEPORT` listener on the same address
//!   (`ReservedPort::listener`, which gives every core the same port even
//!   for port 0); the kernel spreads connections across them. Default 1. `--pin` pins core i to the i-th allowed CPU.
//! - By default each core receives through a provided-buffer ring with one
//!   multishot receive per connection, so idle connections hold no buffer;
//!   each received slice is written back as it is and then released. Where
//!   the kernel consumes ring buffers incrementally (Linux 6.12, and the
//!   epoll driver) the ring holds 64 buffers of 64 KiB that the kernel fills
//!   piece by piece, so every message size from 64 B to 64 KiB is received
//!   in one or two pieces with no size to choose; elsewhere it holds 1024 x
//!   4 KiB whole buffers. When the ring runs dry a receive falls back to a
//!   buffer of its own. Measured in BENCHMARKS.md: less server CPU per
//!   request and less memory per idle connection than `--plain`.
//! - `--buf BYTES` / `--ring-entries N`: experiments with the ring's shape
//!   (entries a power of two; default with `--buf`: 1024). `PERCORE_BUF_RING_INC=0` turns
//!   incremental consumption off, for an A/B against whole buffers.
//! - `--plain`: one `--buf`-byte buffer per connection (default 4096),
//!   reused for every read (`--pooled` is accepted and is the default).
//! - `--idle-timeout SECS`: close a connection when one read or one write
//!   makes no progress for SECS seconds (fractions allowed; default: never).
//!   A client that stops reading stalls the server's write to it: without a
//!   timeout the connection (its fd and its one buffer) stays until the
//!   client goes away. Memory per connection is bounded either way: one
//!   buffer of `--buf` bytes, since the server reads again only after the
//!   echo is written.
//! - `--min-wait-us N`: each park batches completions for up to N µs
//!   (`Builder::min_wait`; Linux 6.12's `IORING_FEAT_MIN_TIMEOUT`, ignored
//!   with a note elsewhere): fewer wake-ups and syscalls per request when
//!   requests arrive spread out, for up to N µs more latency each. `0`, the
//!   default, turns it off; without the flag `PERCORE_MIN_WAIT_US` chooses.
//! - `--stats`: print each core's counters (`percore::stats()`) on exit.
//! - `--background N`: N tasks per core that loop "100 µs of CPU work, then
//!   `percore::yield_now()`", to see that background work does not hold up
//!   the echoes (`scripts/bench-yield.sh`); prints `BACKGROUND turns=T` once
//!   a second (`examples/common/background.rs`).
//! - `--classes`: task queues (`percore::task::TaskQueue`). The connections
//!   run in a queue with `Latency::Matters(1 ms)`, the background tasks in
//!   one with `Latency::NotImportant` and the same shares, and they call
//!   `percore::task::yield_if_needed()` after each 100 µs of work instead
//!   of `yield_now()` (`scripts/bench-classes.sh`). With `--stats`, each
//!   queue's counters are printed too.
//! - `--copy SRC`: the `--background N` tasks copy the file SRC (to
//!   `SRC.copy-PID-CORE-TASK`, removed at shutdown) in 256 KiB reads and
//!   writes, over and over, instead of CPU work, and the server prints
//!   `BACKGROUND copied=BYTES` once a second. With `--classes` they run in
//!   the background queue, capped at 2 file ops in flight
//!   (`TaskQueue::set_file_io_limit`).
//!
//! SIGINT (Ctrl-C) or SIGTERM starts a graceful shutdown
//! (`percore::shutdown`): every core stops accepting, each connection closes
//! after the echo it is doing, and connections still open after `--grace`
//! seconds (default 5) are cut. A second Ctrl-C cuts them at once.
//!
//! Out of descriptors (EMFILE/ENFILE), the accept loop reports it, backs off
//! 50 ms and keeps serving the open connections.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use percore::buf::BufRing;
use percore::task::{Latency, TaskQueue};
use percore::{Either, select};
use percore_net::{ReservedPort, TcpListener, TcpStream};

#[path = "common/background.rs"]
mod background;
#[path = "common/flags.rs"]
mod flags;

use flags::Flags;

struct Config {
    addr: SocketAddr,
    cores: usize,
    /// `--buf`: `None` picks the default for the mode.
    buf: Option<usize>,
    pooled: bool,
    ring_entries: Option<u16>,
    idle_timeout: Option<Duration>,
    grace: Duration,
    pin: bool,
    stats: bool,
    background: usize,
    classes: bool,
    copy: Option<std::path::PathBuf>,
    /// `--min-wait-us`: `None` leaves it to `PERCORE_MIN_WAIT_US`.
    min_wait: Option<Duration>,
}

const USAGE: &str = "usage: echo-server [--addr HOST:PORT] [--cores N] [--buf BYTES] \
                     [--plain] [--ring-entries N] [--idle-timeout SECS] [--grace SECS] \
                     [--pin] [--stats] [--background N] [--classes] [--copy SRC] \
                     [--min-wait-us N]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        addr: "127.0.0.1:7000".parse().expect("valid default address"),
        cores: 1,
        buf: None,
        pooled: true,
        ring_entries: None,
        idle_timeout: None,
        grace: Duration::from_secs(5),
        pin: false,
        stats: false,
        background: 0,
        classes: false,
        copy: None,
        min_wait: None,
    };
    let mut flags = Flags::new(std::env::args().skip(1), USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--addr" => cfg.addr = flags.parse(&flag)?,
            "--cores" => cfg.cores = flags.positive(&flag)?,
            "--buf" => cfg.buf = Some(flags.positive(&flag)?),
            "--ring-entries" => cfg.ring_entries = Some(flags.parse(&flag)?),
            "--grace" => cfg.grace = flags.seconds(&flag)?,
            "--idle-timeout" => {
                let limit = flags.seconds(&flag)?;
                if limit.is_zero() {
                    return Err("--idle-timeout must be positive".into());
                }
                cfg.idle_timeout = Some(limit);
            }
            "--pin" => cfg.pin = true,
            "--pooled" => cfg.pooled = true,
            "--plain" => cfg.pooled = false,
            "--stats" => cfg.stats = true,
            "--background" => cfg.background = flags.parse(&flag)?,
            "--classes" => cfg.classes = true,
            "--copy" => cfg.copy = Some(flags.parse(&flag)?),
            "--min-wait-us" => cfg.min_wait = Some(Duration::from_micros(flags.parse(&flag)?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(cfg)
}

/// Per-core connection counters.
#[derive(Default)]
struct Counters {
    accepted: Cell<u64>,
    active: Cell<u64>,
    bytes: Cell<u64>,
    accept_errors: Cell<u64>,
    conn_errors: Cell<u64>,
    /// Connections closed by `--idle-timeout`.
    timeouts: Cell<u64>,
    /// Receives that fell back to a plain buffer because the ring was empty.
    ring_fallbacks: Cell<u64>,
}

fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// What a core reports when it stops.
struct CoreReport {
    core: usize,
    accepted: u64,
    bytes: u64,
    accept_errors: u64,
    conn_errors: u64,
    timeouts: u64,
    ring_fallbacks: u64,
    /// With `--classes`, each task queue's counters too.
    stats: percore::Stats,
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(msg) => flags::usage_error("echo-server", &msg, USAGE),
    };
    if let Err(e) = run(cfg) {
        eprintln!("echo-server: {e}");
        std::process::exit(1);
    }
}

fn run(cfg: Config) -> io::Result<()> {
    // Port 0 must mean one port for every core: reserve it once, and every
    // core binds its listener to it.
    let port = ReservedPort::new(cfg.addr)?;
    let mut builder = percore::Runtime::builder()
        .cores(cfg.cores)
        .pin(cfg.pin)
        .shutdown_on_signals(true)
        .shutdown_grace(cfg.grace);
    if let Some(min_wait) = cfg.min_wait {
        builder = builder.min_wait(min_wait);
    }
    let runtime = builder.build()?;
    let caps = runtime.capabilities();
    if let Some(why) = &caps.fallback_reason {
        eprintln!("echo-server: {why}; running on the epoll driver");
    }
    if cfg.min_wait.is_some_and(|d| !d.is_zero()) && caps.min_wait.is_none() {
        eprintln!(
            "echo-server: --min-wait-us ignored: needs io_uring with IORING_FEAT_MIN_TIMEOUT \
             (Linux 6.12; driver {}, kernel {})",
            caps.driver, caps.kernel_release
        );
    }
    // Core 0 says it listens once it knows its receive buffers.
    let cfg = std::sync::Arc::new(cfg);
    let c = cfg.clone();
    let reports = runtime
        .run_on_every_core(move |core| serve_core(core, port.clone(), c.clone()))
        .map_err(io::Error::other)?;
    let mut failed = false;
    for report in reports {
        match report {
            Ok(report) if cfg.stats => print_report(&report),
            Ok(_) => {}
            Err(e) => {
                eprintln!("echo-server: core failed: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(io::Error::other("a core failed"));
    }
    Ok(())
}

async fn serve_core(
    core: usize,
    port: ReservedPort,
    cfg: std::sync::Arc<Config>,
) -> io::Result<CoreReport> {
    let listener = port.listener()?;
    let counters = Rc::new(Counters::default());
    let caps = percore::capabilities().expect("inside the runtime");
    let ring = if cfg.pooled && caps.buf_ring {
        match make_ring(&cfg) {
            Ok(ring) => Some(ring),
            Err(e) => {
                eprintln!(
                    "echo-server: core {core}: no buffer ring ({e}); using per-connection buffers"
                );
                None
            }
        }
    } else {
        None
    };
    if core == 0 {
        let buffers = match &ring {
            Some(r) => format!(
                "pooled {} x {}-byte buffers per core{}",
                r.entries(),
                r.buf_len(),
                if r.is_incremental() {
                    ", incremental"
                } else {
                    ""
                }
            ),
            None => format!("per-connection {}-byte buffers", plain_buf(&cfg)),
        };
        println!(
            "echo-server listening on {} ({} driver, {} core{}, {buffers})",
            listener.local_addr()?,
            caps.driver,
            cfg.cores,
            if cfg.cores == 1 { "" } else { "s" },
        );
    }
    let queues = cfg.classes.then(|| Queues {
        echo: TaskQueue::new("echo", 100, Latency::Matters(ECHO_GOAL)),
        background: TaskQueue::new("background", 100, Latency::NotImportant),
    });
    match &cfg.copy {
        Some(src) => start_copies(core, cfg.background, src, queues.as_ref()),
        None => start_background(core, cfg.background, queues.as_ref()),
    }
    let conn_cfg = ConnConfig {
        ring,
        buf: plain_buf(&cfg),
        idle: cfg.idle_timeout,
        queue: queues.as_ref().map(|q| q.echo),
    };
    accept_loop(&listener, conn_cfg, &counters).await;
    // Stop accepting; `Runtime::run_on_every_core` lets the open connections finish
    // within the grace period.
    drop(listener);
    if core == 0 {
        eprintln!("echo-server: stopping");
    }
    if counters.active.get() > 0 {
        eprintln!(
            "echo-server: core {core}: {} connection(s) open, waiting up to {:?}",
            counters.active.get(),
            cfg.grace
        );
    }
    Ok(CoreReport {
        core,
        accepted: counters.accepted.get(),
        bytes: counters.bytes.get(),
        accept_errors: counters.accept_errors.get(),
        conn_errors: counters.conn_errors.get(),
        timeouts: counters.timeouts.get(),
        ring_fallbacks: counters.ring_fallbacks.get(),
        stats: percore::stats(),
    })
}

/// The default ring where the kernel consumes buffers incrementally: it
/// fills each 64 KiB buffer piece by piece, so one shape serves 64 B and
/// 64 KiB messages alike (4 MiB per core, touched only as data comes).
const INC_RING: (u16, usize) = (64, 64 << 10);
/// The default ring of whole buffers, one per receive (before Linux 6.12).
const WHOLE_RING: (u16, usize) = (1024, 4 << 10);

/// The core's provided-buffer ring: `--ring-entries` x `--buf` if given,
/// else large incrementally consumed buffers where the kernel has them, and
/// 4 KiB whole buffers where not.
fn make_ring(cfg: &Config) -> io::Result<BufRing> {
    if let Some(len) = cfg.buf {
        return BufRing::new(cfg.ring_entries.unwrap_or(WHOLE_RING.0), len);
    }
    let ring = BufRing::new(cfg.ring_entries.unwrap_or(INC_RING.0), INC_RING.1)?;
    if ring.is_incremental() {
        return Ok(ring);
    }
    drop(ring);
    BufRing::new(cfg.ring_entries.unwrap_or(WHOLE_RING.0), WHOLE_RING.1)
}

/// `--plain`'s per-connection buffer.
fn plain_buf(cfg: &Config) -> usize {
    cfg.buf.unwrap_or(WHOLE_RING.1)
}

/// `--classes`: the echo connections' latency goal.
const ECHO_GOAL: Duration = Duration::from_millis(1);

/// `--classes`: the core's task queues.
struct Queues {
    echo: TaskQueue,
    background: TaskQueue,
}

/// `--background N`: N tasks that work and yield until the shutdown starts
/// (in the background queue with `--classes`, yielding only when asked to);
/// core 0 also prints the work done, once a second.
fn start_background(core: usize, tasks: usize, queues: Option<&Queues>) {
    if tasks == 0 {
        return;
    }
    for _ in 0..tasks {
        match queues {
            Some(q) => q.background.spawn(async {
                while !percore::shutdown::is_requested() {
                    background::work_slice();
                    percore::task::yield_if_needed().await;
                }
            }),
            None => percore::spawn(async {
                while !percore::shutdown::is_requested() {
                    background::work_slice();
                    percore::yield_now().await;
                }
            }),
        };
    }
    if core == 0 {
        percore::spawn(async {
            while !percore::shutdown::is_requested() {
                println!("{}", background::report_line());
                percore::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// `--classes`: the background queue's cap on file ops in flight with
/// `--copy` (`TaskQueue::set_file_io_limit`).
const COPY_IO_LIMIT: usize = 2;

/// `--copy SRC`: `tasks` bulk copies of `src` until the shutdown starts (in
/// the background queue with `--classes`, capped at [`COPY_IO_LIMIT`] file
/// ops in flight and yielding only when asked to); core 0 also prints the
/// bytes copied, once a second.
fn start_copies(core: usize, tasks: usize, src: &std::path::Path, queues: Option<&Queues>) {
    if tasks == 0 {
        return;
    }
    if let Some(q) = queues {
        q.background.set_file_io_limit(Some(COPY_IO_LIMIT));
    }
    for task in 0..tasks {
        let (src, dst) = (src.to_path_buf(), background::copy_dst(src, core, task));
        let classes = queues.is_some();
        let copy = async move {
            if let Err(e) = copy_loop(&src, &dst, classes).await {
                eprintln!(
                    "echo-server: copy {} to {}: {e}",
                    src.display(),
                    dst.display()
                );
            }
            let _ = percore::fs::remove_file(&dst).await;
        };
        match queues {
            Some(q) => q.background.spawn(copy),
            None => percore::spawn(copy),
        };
    }
    if core == 0 {
        percore::spawn(async {
            while !percore::shutdown::is_requested() {
                println!("{}", background::copy_report_line());
                percore::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Copies `src` to `dst` chunk by chunk, from the start again at the end,
/// until the shutdown starts.
async fn copy_loop(src: &std::path::Path, dst: &std::path::Path, classes: bool) -> io::Result<()> {
    let from = percore::fs::File::open(src).await?;
    let to = percore::fs::File::create(dst).await?;
    let mut buf = Vec::with_capacity(background::COPY_CHUNK);
    let mut pos = 0;
    while !percore::shutdown::is_requested() {
        buf.clear();
        let (res, b) = from.read_at(buf, pos).await;
        let n = res?;
        if n == 0 {
            if pos == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the source is empty",
                ));
            }
            (buf, pos) = (b, 0);
            continue;
        }
        let (res, b) = to.write_all_at(b, pos).await;
        res?;
        buf = b;
        pos += n as u64;
        background::count_copied(n);
        if classes {
            percore::task::yield_if_needed().await;
        } else {
            percore::yield_now().await;
        }
    }
    Ok(())
}

/// What each connection of a core is served with.
#[derive(Clone)]
struct ConnConfig {
    ring: Option<BufRing>,
    buf: usize,
    idle: Option<Duration>,
    /// `--classes`: the queue connections run in.
    queue: Option<TaskQueue>,
}

/// Accepts until the shutdown starts.
async fn accept_loop(listener: &TcpListener, cfg: ConnConfig, counters: &Rc<Counters>) {
    let mut incoming = listener.incoming();
    loop {
        // The shutdown first, so that it wins over a waiting connection.
        let conn = match select(percore::shutdown::requested(), incoming.next()).await {
            Either::Left(()) => return,
            Either::Right(Ok(conn)) => conn,
            Either::Right(Err(e)) => {
                add(&counters.accept_errors, 1);
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    // Out of descriptors: the connection waits in the kernel's
                    // queue. Back off instead of spinning, keep serving.
                    if counters.accept_errors.get() % 100 == 1 {
                        eprintln!("echo-server: accept: {e}; backing off");
                    }
                    percore::time::sleep(Duration::from_millis(50)).await;
                } else {
                    eprintln!("echo-server: accept: {e}");
                }
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        add(&counters.accepted, 1);
        add(&counters.active, 1);
        let counters = counters.clone();
        let cfg = cfg.clone();
        let queue = cfg.queue.unwrap_or_else(TaskQueue::default_queue);
        queue.spawn(async move {
            let res = match &cfg.ring {
                Some(ring) => echo_pooled(&conn, ring, cfg.idle, &counters).await,
                None => echo_plain(&conn, cfg.buf, cfg.idle, &counters).await,
            };
            match res {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => add(&counters.timeouts, 1),
                Err(_) => add(&counters.conn_errors, 1),
            }
            counters.active.set(counters.active.get() - 1);
        });
    }
}

/// Awaits `io` under the idle timeout, if there is one, returning from the
/// caller with `TimedOut` when it runs out. On timeout the op is dropped (the
/// ring cancels it) and the caller closes the connection. A macro rather
/// than an `async fn`, so that without a timeout the op is awaited in the
/// connection's own future, as a plain `.await`: an `async fn` around it
/// would move the op into a future of its own and poll it through that.
macro_rules! within {
    ($limit:expr, $io:expr) => {
        match $limit {
            None => $io.await,
            Some(limit) => percore::time::timeout(limit, $io).await?,
        }
    };
}

/// One buffer per connection, reused for every read; the connection closes
/// after the echo in progress once the shutdown starts.
async fn echo_plain(
    conn: &TcpStream,
    len: usize,
    limit: Option<Duration>,
    counters: &Counters,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(len);
    while !percore::shutdown::is_requested() {
        buf.clear();
        let (res, b) = within!(limit, conn.read(buf));
        let n = res?;
        if n == 0 {
            return Ok(());
        }
        let (res, b) = within!(limit, conn.write_all(b));
        res?;
        buf = b;
        add(&counters.bytes, n as u64);
    }
    Ok(())
}

/// Buffers from the core's ring: the received buffer is written back as it
/// is, then dropped back into the ring.
async fn echo_pooled(
    conn: &TcpStream,
    ring: &BufRing,
    limit: Option<Duration>,
    counters: &Counters,
) -> io::Result<()> {
    let mut rx = conn.recv_pooled(ring);
    let mut fallbacks = 0;
    loop {
        // Not `while let`: its condition's temporaries (the `?`'s) would
        // live through the body, in the connection's future across the
        // write's await, a cache line more to touch per request.
        let Some(buf) = within!(limit, rx.next())? else {
            break;
        };
        let n = buf.len();
        within!(limit, conn.write_all(buf)).0?;
        add(&counters.bytes, n as u64);
        add(&counters.ring_fallbacks, rx.fallbacks() - fallbacks);
        fallbacks = rx.fallbacks();
        if percore::shutdown::is_requested() {
            break;
        }
    }
    Ok(())
}

fn print_report(r: &CoreReport) {
    println!(
        "core {}: accepted {} bytes {} accept_errors {} conn_errors {} timeouts {} \
         ring_fallbacks {}\n{}",
        r.core,
        r.accepted,
        r.bytes,
        r.accept_errors,
        r.conn_errors,
        r.timeouts,
        r.ring_fallbacks,
        r.stats,
    );
}
