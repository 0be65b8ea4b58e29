//! A load generator for echo servers, on percore itself (one io_uring per
//! core): C connections, each sending S-byte messages and checking that the
//! very same bytes come back.
//!
//! ```text
//! cargo run --release --example echo-client -- --addr 127.0.0.1:7000 \
//!     --conns 100 --size 64 --duration 10 [--pipeline 1] [--rate 0] \
//!     [--pacing burst|even|poisson] [--spin] [--cores 1] [--stats]
//! ```
//!
//! - ping-pong per connection: send `--pipeline` messages (default 1), read
//!   their echoes, repeat;
//! - `--rate R`: R requests/s in total, spread over the connections, each
//!   connection on its own schedule; latency is measured from the scheduled
//!   send time, so a slow server shows up as latency instead of hiding it
//!   (open loop as far as ping-pong allows). `0` or absent: as fast as
//!   possible.
//! - `--pacing`: how the requests of `--rate` arrive.
//!   - `burst` (default): each connection on its own period; the timer
//!     wheel's 1 ms ticks release the requests due in one tick together, so
//!     the server sees them in batches.
//!   - `even`: one schedule per client core, request k due at t0 + k/rate,
//!     sent on whichever connection is idle (the first that became idle);
//!   - `poisson`: the same, with exponentially distributed gaps of mean
//!     1/rate (independent clients).
//!
//!   `even` and `poisson` wait for each due time with a kernel timeout
//!   (`IORING_OP_TIMEOUT`), finer than the wheel's 1 ms ticks.
//! - `--spin` (with `even` or `poisson`): wait for each due time by spinning
//!   instead. The client's core then runs at 100%, but its own wake-ups
//!   (50-200 µs late on a VM) no longer count as the server's latency.
//! - `--cores N`: N threads, each with its own runtime and its share of the
//!   connections.
//! - `--stats`: print each core's runtime counters (`percore::stats()`) at
//!   the end, before the `RESULT` line.
//!
//! Prints a progress line every second and a summary at the end; the last
//! line is machine-readable:
//! `RESULT rps=... mbps=... p50_us=... p99_us=... p999_us=... errors=...`
//! (mbps: MB/s of echoed payload, 1 MB = 10^6 bytes).

#[path = "common/flags.rs"]
mod flags;
#[path = "common/load.rs"]
mod load;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flags::Flags;
use hdrhistogram::Histogram;
use load::{Live, Pacing, Schedule, Wait, new_hist};
use percore_net::TcpStream;

struct Config {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    duration: Duration,
    pipeline: usize,
    rate: f64,
    pacing: Pacing,
    wait: Wait,
    cores: usize,
    stats: bool,
}

const USAGE: &str = "usage: echo-client [--addr HOST:PORT] [--conns C] [--size BYTES] \
                     [--duration SECS] [--pipeline P] [--rate REQ_PER_SEC] \
                     [--pacing burst|even|poisson] [--spin] [--cores N] [--stats]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        addr: "127.0.0.1:7000".parse().expect("valid default address"),
        conns: 1,
        size: 64,
        duration: Duration::from_secs(10),
        pipeline: 1,
        rate: 0.0,
        pacing: Pacing::Burst,
        wait: Wait::Sleep,
        cores: 1,
        stats: false,
    };
    let mut flags = Flags::new(std::env::args().skip(1), USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--addr" => cfg.addr = flags.parse(&flag)?,
            "--conns" => cfg.conns = flags.parse(&flag)?,
            "--size" => cfg.size = flags.parse(&flag)?,
            "--duration" => {
                cfg.duration = flags.seconds(&flag)?;
                if cfg.duration.is_zero() {
                    return Err("--duration must be positive".into());
                }
            }
            "--pipeline" => cfg.pipeline = flags.parse(&flag)?,
            "--rate" => cfg.rate = flags.parse(&flag)?,
            "--pacing" => cfg.pacing = Pacing::parse(&flags.value(&flag)?)?,
            "--spin" => cfg.wait = Wait::Spin,
            "--cores" => cfg.cores = flags.parse(&flag)?,
            "--stats" => cfg.stats = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if cfg.conns == 0 || cfg.size == 0 || cfg.pipeline == 0 || cfg.cores == 0 {
        return Err("--conns, --size, --pipeline and --cores must be at least 1".into());
    }
    if cfg.rate < 0.0 || !cfg.rate.is_finite() {
        return Err("--rate must be 0 (unlimited) or positive".into());
    }
    if cfg.wait == Wait::Spin && (cfg.rate == 0.0 || cfg.pacing == Pacing::Burst) {
        return Err("--spin paces --rate with --pacing even or poisson".into());
    }
    Ok(cfg)
}

/// What one core measured.
struct CoreResult {
    hist: Histogram<u64>,
    requests: u64,
    bytes: u64,
    errors: u64,
    /// The core's runtime counters, if its runtime started.
    stats: Option<percore::Stats>,
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(msg) => flags::usage_error("echo-client", &msg, USAGE),
    };
    let cfg = Arc::new(cfg);
    let live = Arc::new(Live::default());
    println!(
        "echo-client: {} connections to {}, {}-byte messages, pipeline {}, {}, {:?}, {} core{}",
        cfg.conns,
        cfg.addr,
        cfg.size,
        cfg.pipeline,
        if cfg.rate > 0.0 {
            let spin = if cfg.wait == Wait::Spin {
                ", spinning"
            } else {
                ""
            };
            format!("{} req/s offered ({:?} pacing{spin})", cfg.rate, cfg.pacing)
        } else {
            "closed loop".to_string()
        },
        cfg.duration,
        cfg.cores,
        if cfg.cores == 1 { "" } else { "s" }
    );

    // Every core connects first; the measurement starts when all are ready.
    let barrier = Arc::new(std::sync::Barrier::new(cfg.cores + 1));
    let start_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut threads = Vec::new();
    for core in 0..cfg.cores {
        let share = cfg.conns / cfg.cores + usize::from(core < cfg.conns % cfg.cores);
        let (cfg, live, barrier, start_at) =
            (cfg.clone(), live.clone(), barrier.clone(), start_at.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("echo-client-{core}"))
                .spawn(move || run_core(share, &cfg, &live, &barrier, &start_at))
                .expect("spawn client thread"),
        );
    }
    barrier.wait(); // all connected (or failed)
    let start = Instant::now();
    let end = start + cfg.duration;
    start_at.set(start).expect("start set once");
    barrier.wait(); // go

    load::progress(&live, start, end);

    let mut hist = new_hist();
    let (mut requests, mut bytes, mut errors) = (0, 0, 0);
    for (core, t) in threads.into_iter().enumerate() {
        match t.join() {
            Ok(r) => {
                if let (true, Some(stats)) = (cfg.stats, &r.stats) {
                    println!("core {core}:\n{stats}");
                }
                hist.add(&r.hist).expect("same histogram bounds");
                requests += r.requests;
                bytes += r.bytes;
                errors += r.errors;
            }
            Err(_) => {
                eprintln!("echo-client: a client core panicked");
                errors += 1;
            }
        }
    }
    // Over the time it really took: with --rate, a client (or server) that
    // fell behind finishes its scheduled requests after the nominal end, and
    // dividing by the nominal duration would report the offered rate.
    let secs = start.elapsed().max(cfg.duration).as_secs_f64();
    load::summary(&hist, requests, bytes, errors, secs);
}

fn run_core(
    conns: usize,
    cfg: &Config,
    live: &Arc<Live>,
    barrier: &std::sync::Barrier,
    start_at: &std::sync::OnceLock<Instant>,
) -> CoreResult {
    let rt = match percore::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo-client: {e}");
            barrier.wait();
            barrier.wait();
            return CoreResult {
                hist: new_hist(),
                requests: 0,
                bytes: 0,
                errors: conns as u64,
                stats: None,
            };
        }
    };
    rt.block_on(async {
        // 1. Connect everything, a bounded number at a time.
        let mut streams = Vec::with_capacity(conns);
        let mut errors = 0;
        for chunk in (0..conns).collect::<Vec<_>>().chunks(256) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|_| {
                    let addr = cfg.addr;
                    percore::spawn(async move {
                        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).await?;
                        s.set_nodelay(true)?;
                        Ok::<_, io::Error>(s)
                    })
                })
                .collect();
            for t in percore::join_all(tasks).await {
                match t.expect("connect task") {
                    Ok(s) => {
                        live.connected.fetch_add(1, Ordering::Relaxed);
                        streams.push(s);
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("echo-client: connect to {}: {e}", cfg.addr);
                        }
                        errors += 1;
                    }
                }
            }
        }
        live.errors.fetch_add(errors, Ordering::Relaxed);
        // 2. Start together with the other cores (blocking this core is
        //    fine: nothing else runs on it yet).
        barrier.wait();
        barrier.wait();
        let start = *start_at
            .get()
            .expect("start time set before the second barrier");
        let end = start + cfg.duration;
        // This core's share of the rate: the per-connection rate times the
        // connections it has.
        let rate = cfg.rate / cfg.conns as f64 * streams.len() as f64;
        let schedules = load::schedules(
            streams.len(),
            rate,
            cfg.pacing,
            cfg.wait,
            cfg.pipeline,
            start,
            end,
        );
        let tasks: Vec<_> = streams
            .into_iter()
            .zip(schedules)
            .map(|(s, schedule)| {
                let (size, pipeline) = (cfg.size, cfg.pipeline);
                percore::spawn(connection(s, size, pipeline, schedule, end, live.clone()))
            })
            .collect();
        let mut hist = new_hist();
        let (mut requests, mut bytes) = (0, 0);
        for t in percore::join_all(tasks).await {
            match t {
                Ok(r) => {
                    hist.add(&r.hist).expect("same histogram bounds");
                    requests += r.requests;
                    bytes += r.bytes;
                    errors += r.errors;
                }
                Err(_) => errors += 1,
            }
        }
        CoreResult {
            hist,
            requests,
            bytes,
            errors,
            stats: Some(percore::stats()),
        }
    })
}

/// Fills `buf` with the bytes of request `seq`: its number, then a pattern
/// derived from it, so an echo of the wrong request or misordered bytes is
/// caught.
fn fill(buf: &mut Vec<u8>, size: usize, seq: u64) {
    buf.clear();
    let tag = seq.to_le_bytes();
    buf.extend((0..size).map(|i| {
        if i < 8 {
            tag[i]
        } else {
            (seq as u8).wrapping_add(i as u8)
        }
    }));
}

async fn connection(
    s: TcpStream,
    size: usize,
    pipeline: usize,
    mut schedule: Schedule,
    end: Instant,
    live: Arc<Live>,
) -> CoreResult {
    let mut hist = new_hist();
    let (mut requests, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(size * pipeline);
    let mut expected = Vec::with_capacity(size * pipeline);
    let mut one = Vec::with_capacity(size);
    // Bound every wait, so a stalled server cannot hang the client.
    let deadline = end + Duration::from_secs(5);
    loop {
        // When to send this batch: now (closed loop) or on the schedule.
        let Some(scheduled) = schedule.next().await else {
            break;
        };
        out.clear();
        expected.clear();
        for _ in 0..pipeline {
            fill(&mut one, size, seq);
            out.extend_from_slice(&one);
            seq += 1;
        }
        expected.extend_from_slice(&out);
        let sent = percore::time::timeout_at(deadline, s.write_all(out)).await;
        match sent {
            Ok((Ok(()), b)) => out = b,
            Ok((Err(e), _)) => {
                note_error(&mut errors, &live, &e);
                break;
            }
            Err(_) => {
                note_error(&mut errors, &live, &io::ErrorKind::TimedOut.into());
                break;
            }
        }
        // Read the echoes one message at a time, timing each.
        let mut failed = false;
        for k in 0..pipeline {
            one.clear();
            match percore::time::timeout_at(deadline, s.read_exact(one)).await {
                Ok((Ok(()), b)) => one = b,
                Ok((Err(e), b)) => {
                    one = b;
                    note_error(&mut errors, &live, &e);
                    failed = true;
                    break;
                }
                Err(_) => {
                    one = Vec::new();
                    note_error(&mut errors, &live, &io::ErrorKind::TimedOut.into());
                    failed = true;
                    break;
                }
            }
            let latency = scheduled.elapsed();
            if one[..] != expected[k * size..(k + 1) * size] {
                note_error(
                    &mut errors,
                    &live,
                    &io::Error::new(
                        io::ErrorKind::InvalidData,
                        "echo differs from what was sent",
                    ),
                );
                failed = true;
                break;
            }
            let _ = hist.record((latency.as_nanos() as u64).max(1));
            requests += 1;
            bytes += size as u64;
            live.answered(size as u64);
        }
        if failed {
            break;
        }
        schedule.done();
    }
    CoreResult {
        hist,
        requests,
        bytes,
        errors,
        stats: None,
    }
}

fn note_error(errors: &mut u64, live: &Live, e: &io::Error) {
    live.failed("echo-client", e);
    *errors += 1;
}
