//! Cross-core messages: percore's channel against a crossbeam channel between
//! plain threads and tokio's mpsc, with both ends pinned to two different
//! CPUs (the first two of the process's affinity mask).
//!
//! Two measurements per implementation, in interleaved rounds (the order
//! rotates each round) with medians over the rounds:
//!
//! - **throughput**: one producer sends `--messages` (1M) `u64`s through a
//!   bounded channel of capacity 1024 to one consumer, which checks that they
//!   arrive in order and none is lost. Timed from a barrier both sides pass
//!   to the consumer's last receive.
//! - **ping-pong**: `--round-trips` (100k) round trips over two channels of
//!   capacity 1 (one each way); every round trip after the first 1% is
//!   recorded in an HDR histogram; p50, p99 and mean are reported.
//!
//! Implementations:
//!
//! | name | ends | channel |
//! |---|---|---|
//! | percore | `Runtime::builder().cores(2).pin(true)`, core 0 and core 1 | `percore::channel::channel` |
//! | crossbeam | two plain pinned threads, blocking `send`/`recv` | `crossbeam_channel::bounded` |
//! | tokio-ct | two pinned threads, each a current-thread runtime (`enable_all`) | `tokio::sync::mpsc::channel` |
//! | tokio-mt | one multi-thread runtime, 2 workers pinned, two spawned tasks | `tokio::sync::mpsc::channel` |
//!
//! tokio-mt's scheduler decides where the two tasks run; they may share one
//! worker for a while, which is how that runtime behaves.
//!
//! ```text
//! cargo run --release -p percore-bench --bin cross-core-bench -- [--rounds 5] [--messages 1000000] \
//!     [--round-trips 100000] [--budget-secs 55]
//! ```
//!
//! `--budget-secs`: no new round starts when it would likely end past the
//! budget (at least one round always runs); the report says how many rounds
//! ran. On a loaded machine the ping-pong tails grow and a round can take
//! several times longer than on a quiet one.
//!
//! Prints progress on stderr and a markdown table on stdout.

#[path = "../../runtime/src/affinity.rs"]
mod affinity;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Capacity of the throughput channel.
const CAPACITY: usize = 1024;

struct Config {
    rounds: usize,
    budget: Duration,
    messages: u64,
    round_trips: u64,
}

const USAGE: &str = "usage: cross-core-bench [--rounds N] [--messages N] [--round-trips N] \
                     [--budget-secs S]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        rounds: 5,
        budget: Duration::from_secs(55),
        messages: 1_000_000,
        round_trips: 100_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        let v = match flag.as_str() {
            "-h" | "--help" => return Err("help".into()),
            _ => inline
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        let n: u64 = v.parse().map_err(|e| format!("{flag} {v}: {e}"))?;
        if n == 0 {
            return Err(format!("{flag} must be at least 1"));
        }
        match flag.as_str() {
            "--rounds" => cfg.rounds = n as usize,
            "--budget-secs" => cfg.budget = Duration::from_secs(n),
            "--messages" => cfg.messages = n,
            "--round-trips" => cfg.round_trips = n,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(cfg)
}

/// One implementation under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    Percore,
    Crossbeam,
    TokioCt,
    TokioMt,
}

impl Impl {
    const ALL: [Impl; 4] = [Impl::Percore, Impl::Crossbeam, Impl::TokioCt, Impl::TokioMt];

    fn name(self) -> &'static str {
        match self {
            Impl::Percore => "percore",
            Impl::Crossbeam => "crossbeam",
            Impl::TokioCt => "tokio-ct",
            Impl::TokioMt => "tokio-mt",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Impl::Percore => "percore channel, Runtime cores(2) pin(true)",
            Impl::Crossbeam => "crossbeam_channel::bounded, 2 plain pinned threads (blocking)",
            Impl::TokioCt => "tokio::sync::mpsc, 2 pinned current-thread runtimes",
            Impl::TokioMt => "tokio::sync::mpsc, multi-thread runtime with 2 pinned workers",
        }
    }

    /// The time to pass `n` messages, and for tokio-mt the share of
    /// samples with both ends on one CPU.
    fn throughput(self, n: u64) -> (Duration, Option<f64>) {
        match self {
            Impl::Percore => (percore_throughput(n), None),
            Impl::Crossbeam => (crossbeam_throughput(n), None),
            Impl::TokioCt => (tokio_ct_throughput(n), None),
            Impl::TokioMt => {
                let (d, share) = tokio_mt_throughput(n);
                (d, Some(share))
            }
        }
    }

    /// The round-trip histogram, and for tokio-mt the share of round trips
    /// with both ends on one CPU.
    fn ping_pong(self, n: u64) -> (Histogram<u64>, Option<f64>) {
        match self {
            Impl::Percore => (percore_ping_pong(n), None),
            Impl::Crossbeam => (crossbeam_ping_pong(n), None),
            Impl::TokioCt => (tokio_ct_ping_pong(n), None),
            Impl::TokioMt => {
                let (h, share) = tokio_mt_ping_pong(n);
                (h, Some(share))
            }
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // Nanoseconds, 1 ns to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Round trips before this index are warm-up and not recorded.
fn warmup(n: u64) -> u64 {
    n / 100
}

/// Checks the consumer's view: message `v` must be the next expected one.
fn check_next(v: u64, next: &mut u64) {
    assert_eq!(v, *next, "message out of order or lost");
    *next += 1;
}

// --- where the two ends run --------------------------------------------------

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Runs `a()`'s future on percore core 0 and `b()`'s on core 1, both pinned,
/// and returns their outputs.
fn on_percore_cores<T, A, B, FA, FB>(a: A, b: B) -> (T, T)
where
    T: Send + 'static,
    A: FnOnce() -> FA + Send + 'static,
    B: FnOnce() -> FB + Send + 'static,
    FA: Future<Output = T> + 'static,
    FB: Future<Output = T> + 'static,
{
    let ends = (Mutex::new(Some(a)), Mutex::new(Some(b)));
    let rt = percore::Runtime::builder()
        .cores(2)
        .pin(true)
        .build()
        .expect("start a 2-core percore runtime");
    let mut out = rt
        .run_on_every_core(move |core| -> LocalFuture<T> {
            match core {
                0 => Box::pin(ends.0.lock().unwrap().take().expect("core 0 starts once")()),
                _ => Box::pin(ends.1.lock().unwrap().take().expect("core 1 starts once")()),
            }
        })
        .expect("percore run");
    let b = out.pop().expect("core 1 output");
    let a = out.pop().expect("core 0 output");
    (a, b)
}

/// Runs `a` and `b` on two plain threads pinned to the first two allowed CPUs.
fn on_pinned_threads<T, A, B>(a: A, b: B) -> (T, T)
where
    T: Send + 'static,
    A: FnOnce() -> T + Send + 'static,
    B: FnOnce() -> T + Send + 'static,
{
    fn pinned<T: Send + 'static>(
        index: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        std::thread::Builder::new()
            .name(format!("cross-core-{index}"))
            .spawn(move || {
                pin(index);
                f()
            })
            .expect("spawn a bench thread")
    }
    let (ha, hb) = (pinned(0, a), pinned(1, b));
    (
        ha.join().expect("first thread panicked"),
        hb.join().expect("second thread panicked"),
    )
}

/// Pins the calling thread to the `index`-th allowed CPU.
fn pin(index: usize) {
    if let Err(e) = affinity::pin_current_thread(affinity::nth_cpu(index)) {
        eprintln!("cross-core-bench: cannot pin to CPU index {index}: {e}");
    }
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio current-thread runtime")
}

/// A multi-thread runtime whose 2 workers are pinned to the first two
/// allowed CPUs.
fn tokio_multi_thread() -> tokio::runtime::Runtime {
    let next = AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || pin(next.fetch_add(1, Ordering::Relaxed)))
        .build()
        .expect("build a tokio multi-thread runtime")
}

// --- percore -----------------------------------------------------------------

fn percore_throughput(n: u64) -> Duration {
    let (tx, mut rx) = percore::channel::channel(CAPACITY);
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    let (start, end) = on_percore_cores(
        move || async move {
            barrier.wait();
            let start = Instant::now();
            for i in 0..n {
                tx.send(i).await.expect("receiver alive");
            }
            start
        },
        move || async move {
            b2.wait();
            let mut next = 0;
            while let Some(v) = rx.recv().await {
                check_next(v, &mut next);
            }
            assert_eq!(next, n, "messages lost");
            Instant::now()
        },
    );
    end - start
}

fn percore_ping_pong(n: u64) -> Histogram<u64> {
    let (ping_tx, mut ping_rx) = percore::channel::channel(1);
    let (pong_tx, mut pong_rx) = percore::channel::channel(1);
    let (hist, _) = on_percore_cores(
        move || async move {
            let mut hist = new_hist();
            for i in 0..n {
                let t = Instant::now();
                ping_tx.send(i).await.expect("echo side alive");
                assert_eq!(pong_rx.recv().await, Some(i), "wrong pong");
                if i >= warmup(n) {
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                }
            }
            Some(hist)
        },
        move || async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).await.expect("pinging side alive");
            }
            None
        },
    );
    hist.expect("core 0 returns the histogram")
}

// --- crossbeam ---------------------------------------------------------------

fn crossbeam_throughput(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    let (start, end) = on_pinned_threads(
        move || {
            barrier.wait();
            let start = Instant::now();
            for i in 0..n {
                tx.send(i).expect("receiver alive");
            }
            start
        },
        move || {
            b2.wait();
            let mut next = 0;
            while let Ok(v) = rx.recv() {
                check_next(v, &mut next);
            }
            assert_eq!(next, n, "messages lost");
            Instant::now()
        },
    );
    end - start
}

fn crossbeam_ping_pong(n: u64) -> Histogram<u64> {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded(1);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded(1);
    let (hist, _) = on_pinned_threads(
        move || {
            let mut hist = new_hist();
            for i in 0..n {
                let t = Instant::now();
                ping_tx.send(i).expect("echo side alive");
                assert_eq!(pong_rx.recv().ok(), Some(i), "wrong pong");
                if i >= warmup(n) {
                    hist.saturating_record(t.elapsed().as_nanos() as u64);
                }
            }
            Some(hist)
        },
        move || {
            while let Ok(v) = ping_rx.recv() {
                pong_tx.send(v).expect("pinging side alive");
            }
            None
        },
    );
    hist.expect("first thread returns the histogram")
}

// --- tokio -------------------------------------------------------------------

/// Where tokio-mt's scheduler put the two ends: the first end marks its CPU,
/// the second compares its own CPU with the latest mark. The other
/// implementations pin their ends to two CPUs and do not pay for this.
#[derive(Default)]
struct Colocation {
    first_end_cpu: AtomicI32,
    same: AtomicU64,
    samples: AtomicU64,
}

fn current_cpu() -> i32 {
    // SAFETY: sched_getcpu has no arguments and touches no memory of ours.
    unsafe { libc::sched_getcpu() }
}

impl Colocation {
    fn mark(co: &Option<Arc<Colocation>>) {
        if let Some(co) = co {
            co.first_end_cpu.store(current_cpu(), Ordering::Relaxed);
        }
    }

    fn check(co: &Option<Arc<Colocation>>) {
        if let Some(co) = co {
            let same = co.first_end_cpu.load(Ordering::Relaxed) == current_cpu();
            co.same.fetch_add(u64::from(same), Ordering::Relaxed);
            co.samples.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The share of samples in which both ends were on one CPU.
    fn share(&self) -> f64 {
        self.same.load(Ordering::Relaxed) as f64
            / self.samples.load(Ordering::Relaxed).max(1) as f64
    }
}

/// Marks (producer) and checks (consumer) once every this many messages in
/// the throughput run, so tracking costs little.
const COLOCATION_EVERY: u64 = 64;

/// The producer and consumer bodies shared by both tokio variants; `co` is
/// `Some` for tokio-mt only.
async fn tokio_produce(
    tx: tokio::sync::mpsc::Sender<u64>,
    n: u64,
    co: Option<Arc<Colocation>>,
) -> Instant {
    let start = Instant::now();
    for i in 0..n {
        if i % COLOCATION_EVERY == 0 {
            Colocation::mark(&co);
        }
        tx.send(i).await.expect("receiver alive");
    }
    start
}

async fn tokio_consume(
    mut rx: tokio::sync::mpsc::Receiver<u64>,
    n: u64,
    co: Option<Arc<Colocation>>,
) -> Instant {
    let mut next = 0;
    while let Some(v) = rx.recv().await {
        if v % COLOCATION_EVERY == 0 {
            Colocation::check(&co);
        }
        check_next(v, &mut next);
    }
    assert_eq!(next, n, "messages lost");
    Instant::now()
}

async fn tokio_ping(
    ping_tx: tokio::sync::mpsc::Sender<u64>,
    mut pong_rx: tokio::sync::mpsc::Receiver<u64>,
    n: u64,
    co: Option<Arc<Colocation>>,
) -> Option<Histogram<u64>> {
    let mut hist = new_hist();
    for i in 0..n {
        let t = Instant::now();
        Colocation::mark(&co);
        ping_tx.send(i).await.expect("echo side alive");
        assert_eq!(pong_rx.recv().await, Some(i), "wrong pong");
        if i >= warmup(n) {
            hist.saturating_record(t.elapsed().as_nanos() as u64);
        }
    }
    Some(hist)
}

async fn tokio_pong(
    mut ping_rx: tokio::sync::mpsc::Receiver<u64>,
    pong_tx: tokio::sync::mpsc::Sender<u64>,
    co: Option<Arc<Colocation>>,
) -> Option<Histogram<u64>> {
    while let Some(v) = ping_rx.recv().await {
        Colocation::check(&co);
        pong_tx.send(v).await.expect("pinging side alive");
    }
    None
}

fn tokio_ct_throughput(n: u64) -> Duration {
    let (tx, rx) = tokio::sync::mpsc::channel(CAPACITY);
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    let (start, end) = on_pinned_threads(
        move || {
            let rt = tokio_current_thread();
            barrier.wait();
            rt.block_on(tokio_produce(tx, n, None))
        },
        move || {
            let rt = tokio_current_thread();
            b2.wait();
            rt.block_on(tokio_consume(rx, n, None))
        },
    );
    end - start
}

fn tokio_ct_ping_pong(n: u64) -> Histogram<u64> {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(1);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(1);
    let (hist, _) = on_pinned_threads(
        move || tokio_current_thread().block_on(tokio_ping(ping_tx, pong_rx, n, None)),
        move || tokio_current_thread().block_on(tokio_pong(ping_rx, pong_tx, None)),
    );
    hist.expect("first thread returns the histogram")
}

/// Also returns the share of samples with both tasks on one CPU.
fn tokio_mt_throughput(n: u64) -> (Duration, f64) {
    let rt = tokio_multi_thread();
    let co = Arc::new(Colocation::default());
    let (co1, co2) = (Some(co.clone()), Some(co.clone()));
    let (tx, rx) = tokio::sync::mpsc::channel(CAPACITY);
    // An async barrier: the two tasks may share one worker.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let b2 = barrier.clone();
    let producer = rt.spawn(async move {
        barrier.wait().await;
        tokio_produce(tx, n, co1).await
    });
    let consumer = rt.spawn(async move {
        b2.wait().await;
        tokio_consume(rx, n, co2).await
    });
    let (start, end) = rt.block_on(async { (producer.await, consumer.await) });
    let elapsed = end.expect("consumer task") - start.expect("producer task");
    (elapsed, co.share())
}

/// Also returns the share of round trips with both tasks on one CPU.
fn tokio_mt_ping_pong(n: u64) -> (Histogram<u64>, f64) {
    let rt = tokio_multi_thread();
    let co = Arc::new(Colocation::default());
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(1);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(1);
    let ping = rt.spawn(tokio_ping(ping_tx, pong_rx, n, Some(co.clone())));
    let pong = rt.spawn(tokio_pong(ping_rx, pong_tx, Some(co.clone())));
    let (hist, _) = rt.block_on(async { (ping.await, pong.await) });
    let hist = hist
        .expect("ping task")
        .expect("ping task returns the histogram");
    (hist, co.share())
}

// --- report ------------------------------------------------------------------

/// One implementation's results over the rounds.
#[derive(Default)]
struct Results {
    /// Messages per second, one per round.
    throughput: Vec<f64>,
    /// Ping-pong p50, p99 and mean in microseconds, one per round.
    p50: Vec<f64>,
    p99: Vec<f64>,
    mean: Vec<f64>,
    /// tokio-mt only: share of samples with both ends on one CPU, in the
    /// throughput and in the ping-pong run, one per round.
    same_cpu_throughput: Vec<f64>,
    same_cpu_ping_pong: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(msg) if msg == "help" => {
            println!("{USAGE}");
            std::process::exit(0);
        }
        Err(msg) => {
            eprintln!("cross-core-bench: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let cpus = affinity::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("cross-core-bench: warning: only CPU {cpus:?} allowed, both ends share it");
    }
    let (cpu_a, cpu_b) = (affinity::nth_cpu(0), affinity::nth_cpu(1));

    let mut results: Vec<Results> = Impl::ALL.iter().map(|_| Results::default()).collect();
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < cfg.rounds {
        // Stop when one more round, at the average pace so far, would end
        // past the budget.
        if rounds > 0 && started.elapsed() * (rounds as u32 + 1) / rounds as u32 > cfg.budget {
            eprintln!(
                "cross-core-bench: stopping after {rounds} of {} rounds: another would pass the \
                 {:?} budget",
                cfg.rounds, cfg.budget
            );
            break;
        }
        let round = rounds;
        for k in 0..Impl::ALL.len() {
            let i = (k + round) % Impl::ALL.len();
            let imp = Impl::ALL[i];
            let (elapsed, same_t) = imp.throughput(cfg.messages);
            let rate = cfg.messages as f64 / elapsed.as_secs_f64();
            let (hist, same_p) = imp.ping_pong(cfg.round_trips);
            let r = &mut results[i];
            r.same_cpu_throughput.extend(same_t);
            r.same_cpu_ping_pong.extend(same_p);
            r.throughput.push(rate);
            r.p50.push(hist.value_at_quantile(0.5) as f64 / 1e3);
            r.p99.push(hist.value_at_quantile(0.99) as f64 / 1e3);
            r.mean.push(hist.mean() / 1e3);
            eprintln!(
                "[cross-core-bench {:5.1}s] round {}/{} {:9}: {:6.2} M msg/s, ping-pong p50 {:.2} us p99 {:.2} us",
                started.elapsed().as_secs_f64(),
                round + 1,
                cfg.rounds,
                imp.name(),
                rate / 1e6,
                r.p50.last().unwrap(),
                r.p99.last().unwrap(),
            );
        }
        rounds += 1;
    }

    let of = |imp: Impl| &results[Impl::ALL.iter().position(|&i| i == imp).expect("measured")];
    let base = (
        median(&of(Impl::TokioCt).throughput),
        median(&of(Impl::TokioCt).p50),
    );
    println!(
        "### Cross-core messages: CPU {cpu_a} -> CPU {cpu_b} (median of {rounds} rounds{})\n",
        if rounds < cfg.rounds {
            format!(" of {} asked; the time budget ran out", cfg.rounds)
        } else {
            String::new()
        }
    );
    println!(
        "Throughput: {} `u64` messages, one producer, one consumer, capacity {CAPACITY}. \
         Ping-pong: {} round trips, capacity 1 each way, the first 1% not recorded. \
         Ratios are against tokio-ct (tokio mpsc between two current-thread runtimes).\n",
        cfg.messages, cfg.round_trips
    );
    println!(
        "| implementation | throughput, M msg/s | vs tokio-ct | ping-pong p50, µs | p99, µs | mean, µs \
         | p50 vs tokio-ct | both ends on one CPU (throughput / ping-pong) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (imp, r) in Impl::ALL.iter().zip(&results) {
        let (t, p50) = (median(&r.throughput), median(&r.p50));
        let same_cpu = match imp {
            Impl::TokioMt => format!(
                "{:.0}% / {:.0}%",
                100.0 * median(&r.same_cpu_throughput),
                100.0 * median(&r.same_cpu_ping_pong)
            ),
            _ => "never (pinned apart)".to_string(),
        };
        println!(
            "| {} ({}) | {:.2} | {:.2}x | {:.2} | {:.2} | {:.2} | {:.2}x | {same_cpu} |",
            imp.name(),
            imp.describe(),
            t / 1e6,
            t / base.0,
            p50,
            median(&r.p99),
            median(&r.mean),
            p50 / base.1,
        );
    }
    println!(
        "\ntokio-mt's scheduler places its two tasks itself: when both ends run on one \
         CPU, its numbers are not cross-core numbers."
    );
    let met = median(&of(Impl::Percore).p50) <= base.1;
    println!(
        "\nTarget \"cross-core ping-pong latency no worse than tokio mpsc's\" (p50, percore vs tokio-ct): **{}**",
        if met { "met" } else { "NOT met" }
    );
}
