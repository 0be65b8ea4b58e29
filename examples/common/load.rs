//! The open-loop pacing, latency histogram and reporting shared by the load
//! generators `examples/echo-client.rs` (echo) and `bench/src/http_load.rs`
//! (HTTP/1.1), so both offer a rate the same way and print the same lines
//! (`scripts/bench-lib.sh` reads them). Included with
//! `#[path = "common/load.rs"] mod load;`.
//!
//! A client core builds one [`Schedule`] per connection with [`schedules`]
//! and, for each request batch, awaits [`Schedule::next`] (the due time,
//! from which latency is measured) and calls [`Schedule::done`] when the
//! batch's answers are in.

#![allow(dead_code)] // each includer uses a part

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use percore::op::{Op, TimeoutOp};

/// How the requests of `--rate` arrive.
///
/// - `burst` (default): each connection on its own period; the timer
///   wheel's 1 ms ticks release the requests due in one tick together, so
///   the server sees them in batches.
/// - `even`: one schedule per client core, request k due at t0 + k/rate,
///   sent on whichever connection is idle (the first that became idle);
/// - `poisson`: the same, with exponentially distributed gaps of mean
///   1/rate (independent clients).
///
/// `even` and `poisson` wait for each due time with a kernel timeout
/// (`IORING_OP_TIMEOUT`), finer than the wheel's 1 ms ticks, or by spinning
/// ([`Wait::Spin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    Burst,
    Even,
    Poisson,
}

impl Pacing {
    /// Parses the value of `--pacing`.
    pub fn parse(v: &str) -> Result<Pacing, String> {
        match v {
            "burst" => Ok(Pacing::Burst),
            "even" => Ok(Pacing::Even),
            "poisson" => Ok(Pacing::Poisson),
            other => Err(format!("--pacing {other}: burst, even or poisson")),
        }
    }
}

/// How the pacer of `even` and `poisson` waits for a due time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Sleeps in the kernel until the due time (`IORING_OP_TIMEOUT`). On a
    /// VM an idle vCPU wakes 50-200 µs late, and that lateness is counted
    /// as the server's latency.
    Sleep,
    /// Spins on the client's core (yielding, so answers keep being reaped)
    /// until the due time: the client never sleeps, its core runs at 100%,
    /// and the latency it measures is the server's and the network's, not
    /// the client's own wake-ups (`--spin`).
    Spin,
}

/// A latency histogram: nanoseconds, from 1 ns to 100 s, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Totals shared by all client cores, for the progress line.
#[derive(Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub connected: AtomicU64,
}

impl Live {
    /// Counts one answered request of `bytes` payload bytes.
    pub fn answered(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one failed connection; prints the first five errors.
    pub fn failed(&self, who: &str, e: &std::io::Error) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("{who}: connection error: {e}");
        }
    }
}

/// Connections that wait for their next request, first idle first.
type Idle = Rc<RefCell<VecDeque<usize>>>;

/// When a connection sends its next batch.
pub enum Schedule {
    /// At once, as fast as the server answers.
    ClosedLoop { end: Instant },
    /// On its own period (`--pacing burst`).
    Periodic {
        first: Instant,
        period: Duration,
        end: Instant,
        batch: u64,
    },
    /// When the core's pacer hands it a due time; it is idle meanwhile.
    Dispatched {
        rx: percore::channel::Receiver<Instant>,
        idle: Idle,
        id: usize,
    },
}

impl Schedule {
    /// Waits until the next batch is due and returns its due time, or
    /// `None` when the run is over.
    pub async fn next(&mut self) -> Option<Instant> {
        match self {
            Schedule::Periodic {
                first,
                period,
                end,
                batch,
            } => {
                let at = *first + period.mul_f64(*batch as f64);
                if at >= *end {
                    return None;
                }
                *batch += 1;
                percore::time::sleep_until(at).await;
                Some(at)
            }
            Schedule::Dispatched { rx, .. } => rx.recv().await,
            Schedule::ClosedLoop { end } => Some(Instant::now()).filter(|now| now < end),
        }
    }

    /// The batch is answered: the connection is idle again.
    pub fn done(&self) {
        if let Schedule::Dispatched { idle, id, .. } = self {
            idle.borrow_mut().push_back(*id);
        }
    }
}

/// One schedule for each of this core's `conns` connections, starting at
/// `start` and ending at `end`. `rate` is this core's share of the offered
/// requests per second (0: closed loop), sent in batches of `pipeline`.
/// With `even` or `poisson` pacing this spawns the core's pacer task, which
/// waits for each due time as `wait` says.
#[allow(clippy::too_many_arguments)]
pub fn schedules(
    conns: usize,
    rate: f64,
    pacing: Pacing,
    wait: Wait,
    pipeline: usize,
    start: Instant,
    end: Instant,
) -> Vec<Schedule> {
    if rate <= 0.0 || conns == 0 {
        return (0..conns).map(|_| Schedule::ClosedLoop { end }).collect();
    }
    if pacing == Pacing::Burst {
        // Each connection on its own period, the periods spread over one.
        let per_conn = rate / conns as f64;
        let period = Duration::from_secs_f64(pipeline as f64 / per_conn);
        return (0..conns)
            .map(|i| Schedule::Periodic {
                first: start + period.mul_f64(i as f64 / conns as f64),
                period,
                end,
                batch: 0,
            })
            .collect();
    }
    let idle: Idle = Rc::default();
    let mut dispatch = Vec::with_capacity(conns);
    let schedules = (0..conns)
        .map(|id| {
            let (tx, rx) = percore::channel::channel(1);
            dispatch.push(tx);
            idle.borrow_mut().push_back(id);
            Schedule::Dispatched {
                rx,
                idle: idle.clone(),
                id,
            }
        })
        .collect();
    let seed = 0x9E37_79B9_7F4A_7C15 ^ (percore::core_id() as u64 + 1);
    let batches_per_s = rate / pipeline as f64;
    percore::spawn(pace(
        pacing,
        wait,
        batches_per_s,
        seed,
        start,
        end,
        dispatch,
        idle,
    ));
    schedules
}

/// `--pacing even|poisson`: hands each due time of this core's schedule to
/// the connection that has been idle longest, until `end`. The wheel's ticks
/// are 1 ms, so each due time is waited for with a kernel timeout
/// (`IORING_OP_TIMEOUT`, a high-resolution timer) or by spinning
/// ([`Wait`]); with no connection idle,
/// the request waits for one (and its latency, counted from the due time,
/// shows it).
#[allow(clippy::too_many_arguments)]
async fn pace(
    pacing: Pacing,
    wait: Wait,
    batches_per_s: f64,
    mut seed: u64,
    start: Instant,
    end: Instant,
    dispatch: Vec<percore::channel::Sender<Instant>>,
    idle: Idle,
) {
    let mean_gap = 1.0 / batches_per_s;
    let mut due = start;
    while due < end {
        match wait {
            Wait::Sleep => {
                let left = due.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    // The kernel's timer, not the wheel's 1 ms ticks.
                    let _ = Op::new(TimeoutOp::new(left)).await;
                }
            }
            // Each yield lets the loop reap answers without parking.
            Wait::Spin => {
                while Instant::now() < due {
                    percore::yield_now().await;
                }
            }
        }
        let conn = loop {
            let next = idle.borrow_mut().pop_front();
            match next {
                Some(conn) => break conn,
                // Every connection failed or hangs: stop with them.
                None if Instant::now() >= end + Duration::from_secs(5) => return,
                None => percore::yield_now().await,
            }
        };
        // The connection is idle, so its one-slot channel is empty.
        if dispatch[conn].try_send(due).is_err() {
            break;
        }
        let gap = match pacing {
            Pacing::Poisson => {
                // xorshift64*; uniform in (0, 1], then an exponential gap.
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let u = ((seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) + 1) as f64
                    / (1u64 << 53) as f64;
                -mean_gap * u.ln()
            }
            Pacing::Even | Pacing::Burst => mean_gap,
        };
        due += Duration::from_secs_f64(gap);
    }
    // Dropping the senders ends every connection's wait.
}

/// Prints a progress line once a second until `end`:
/// `[   2.0s]      51234 req/s      3.28 MB/s  errors 0`
/// (`scripts/bench-echo.sh` averages these to get the delivered rate).
pub fn progress(live: &Live, start: Instant, end: Instant) {
    let mut last = (0, 0, start);
    let mut tick = start;
    while Instant::now() < end {
        tick += Duration::from_secs(1);
        std::thread::sleep(tick.min(end).saturating_duration_since(Instant::now()));
        let now = Instant::now();
        let reqs = live.requests.load(Ordering::Relaxed);
        let bytes = live.bytes.load(Ordering::Relaxed);
        let secs = now.duration_since(last.2).as_secs_f64().max(1e-9);
        println!(
            "[{:6.1}s] {:>10.0} req/s {:>9.2} MB/s  errors {}",
            now.duration_since(start).as_secs_f64(),
            (reqs - last.0) as f64 / secs,
            (bytes - last.1) as f64 / secs / 1e6,
            live.errors.load(Ordering::Relaxed)
        );
        last = (reqs, bytes, now);
    }
}

/// Prints the summary and the machine-readable last line,
/// `RESULT rps=... mbps=... p50_us=... p99_us=... p999_us=... errors=...`,
/// over `secs` seconds (the time the run really took).
pub fn summary(hist: &Histogram<u64>, requests: u64, bytes: u64, errors: u64, secs: f64) {
    let rps = requests as f64 / secs;
    let mbps = bytes as f64 / secs / 1e6;
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "summary: {requests} requests in {secs:.1}s: {rps:.0} req/s, {mbps:.2} MB/s; \
         latency p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; errors {errors}",
        us(0.5),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0
    );
    println!(
        "RESULT rps={rps:.0} mbps={mbps:.3} p50_us={:.1} p99_us={:.1} p999_us={:.1} errors={errors}",
        us(0.5),
        us(0.99),
        us(0.999)
    );
}
