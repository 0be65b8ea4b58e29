//! A paced HTTP/1.1 load generator, on percore itself (one io_uring per
//! core): C keep-alive connections, each sending `GET PATH` and reading the
//! whole response before its next request, at a fixed offered rate or as
//! fast as the server answers.
//!
//! ```text
//! cargo run --release -p percore-bench --bin http-load -- --addr 127.0.0.1:8080 \
//!     --conns 64 --duration 10 [--path /] [--rate 0] \
//!     [--pacing burst|even|poisson] [--cores 1] [--client raw|pooled|tokio-pooled]
//! ```
//!
//! - `--rate R`: R requests/s in total, open loop (latency counted from each
//!   request's due time, so a slow server shows up as latency instead of
//!   lowering the rate it is offered); `0` or absent: closed loop, as fast
//!   as possible. `--pacing` (default `even`) as in `echo-client`
//!   (`examples/common/load.rs`):
//!   `even` spaces the requests 1/R apart on whichever connection is idle,
//!   `poisson` draws the gaps from an exponential distribution, `burst` runs
//!   each connection on its own period (released in the timer wheel's 1 ms
//!   ticks).
//! - Every response must be `200` with a `Content-Length` body (what the
//!   `http-server` and `axum-server` examples and their tokio peers send);
//!   anything else (another status, chunked encoding, a closed connection)
//!   counts as an error and ends that connection.
//! - `--cores N`: N threads, each with its own runtime and its share of the
//!   connections and of the rate.
//! - `--client raw|pooled|tokio-pooled` (default `raw`): who sends the
//!   requests. `raw` is this program's own HTTP/1.1 code on percore
//!   sockets, one connection per `--conns`. The other two measure an HTTP
//!   client library instead, closed loop only (`--rate 0`): `--conns`
//!   requests in flight at a time on each core's one pooled client, which
//!   keeps its connections alive and reuses them. `pooled` is
//!   percore-net's pooled client (`percore_net::client`: hyper-util's
//!   `Client` on percore); `tokio-pooled` is hyper-util's `Client` with its
//!   `HttpConnector` on a tokio current-thread runtime per core, its usual
//!   setup. `scripts/bench-http.sh` (`MODE=client`) runs both against one
//!   server.
//!
//! Prints a progress line every second and a summary; the last line is
//! machine-readable, as echo-client's:
//! `RESULT rps=... mbps=... p50_us=... p99_us=... p999_us=... errors=...`
//! (mbps: MB/s of response bodies, 1 MB = 10^6 bytes).
//! `scripts/bench-http.sh` (`MODE=rate`) uses it to offer the axum servers
//! a fixed rate.

#[path = "../../examples/common/flags.rs"]
mod flags;
#[path = "../../examples/common/load.rs"]
mod load;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flags::Flags;
use hdrhistogram::Histogram;
use load::{Live, Pacing, Schedule, new_hist};
use percore_net::TcpStream;

/// Who sends the requests (`--client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientKind {
    /// This program's own HTTP/1.1 code, one connection per `--conns`.
    Raw,
    /// percore-net's pooled client.
    Pooled,
    /// hyper-util's pooled client on tokio.
    TokioPooled,
}

struct Config {
    client: ClientKind,
    addr: SocketAddr,
    path: String,
    conns: usize,
    duration: Duration,
    rate: f64,
    pacing: Pacing,
    cores: usize,
}

const USAGE: &str = "usage: http-load [--addr HOST:PORT] [--path /] [--conns C] \
                     [--duration SECS] [--rate REQ_PER_SEC] [--pacing burst|even|poisson] [--cores N] \
                     [--client raw|pooled|tokio-pooled]";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        client: ClientKind::Raw,
        addr: "127.0.0.1:8080".parse().expect("valid default address"),
        path: "/".into(),
        conns: 64,
        duration: Duration::from_secs(10),
        rate: 0.0,
        pacing: Pacing::Even,
        cores: 1,
    };
    let mut flags = Flags::new(std::env::args().skip(1), USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--addr" => cfg.addr = flags.parse(&flag)?,
            "--path" => cfg.path = flags.value(&flag)?,
            "--conns" => cfg.conns = flags.positive(&flag)?,
            "--duration" => cfg.duration = flags.seconds(&flag)?,
            "--rate" => cfg.rate = flags.parse(&flag)?,
            "--pacing" => cfg.pacing = Pacing::parse(&flags.value(&flag)?)?,
            "--cores" => cfg.cores = flags.positive(&flag)?,
            "--client" => {
                cfg.client = match flags.value(&flag)?.as_str() {
                    "raw" => ClientKind::Raw,
                    "pooled" => ClientKind::Pooled,
                    "tokio-pooled" => ClientKind::TokioPooled,
                    other => {
                        return Err(format!("--client {other}: raw, pooled or tokio-pooled"));
                    }
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if cfg.duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if cfg.rate < 0.0 || !cfg.rate.is_finite() {
        return Err("--rate must be 0 (unlimited) or positive".into());
    }
    if cfg.client != ClientKind::Raw && cfg.rate > 0.0 {
        return Err(format!(
            "--client {:?} runs closed loop only: drop --rate",
            cfg.client
        ));
    }
    if !cfg.path.starts_with('/') || cfg.path.bytes().any(|b| b <= b' ') {
        return Err(format!(
            "--path {}: an absolute path without spaces",
            cfg.path
        ));
    }
    Ok(cfg)
}

/// What one core (or one connection) measured.
struct Measured {
    hist: Histogram<u64>,
    requests: u64,
    bytes: u64,
    errors: u64,
}

impl Measured {
    fn new() -> Measured {
        Measured {
            hist: new_hist(),
            requests: 0,
            bytes: 0,
            errors: 0,
        }
    }

    fn add(&mut self, other: &Measured) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.errors += other.errors;
    }
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => Arc::new(cfg),
        Err(msg) => flags::usage_error("http-load", &msg, USAGE),
    };
    let live = Arc::new(Live::default());
    println!(
        "http-load: {} {} to http://{}{}, {}, {:?}, {} core{}",
        cfg.conns,
        match cfg.client {
            ClientKind::Raw => "connections",
            ClientKind::Pooled => "requests in flight on percore-net's pooled client",
            ClientKind::TokioPooled => "requests in flight on hyper-util's pooled client (tokio)",
        },
        cfg.addr,
        cfg.path,
        if cfg.rate > 0.0 {
            format!("{} req/s offered ({:?} pacing)", cfg.rate, cfg.pacing)
        } else {
            "closed loop".to_string()
        },
        cfg.duration,
        cfg.cores,
        if cfg.cores == 1 { "" } else { "s" }
    );

    // Every core connects first; the measurement starts when all are ready.
    let barrier = Arc::new(Barrier::new(cfg.cores + 1));
    let start_at = Arc::new(OnceLock::<Instant>::new());
    let threads: Vec<_> = (0..cfg.cores)
        .map(|core| {
            let share = cfg.conns / cfg.cores + usize::from(core < cfg.conns % cfg.cores);
            let (cfg, live, barrier, start_at) =
                (cfg.clone(), live.clone(), barrier.clone(), start_at.clone());
            std::thread::Builder::new()
                .name(format!("http-load-{core}"))
                .spawn(move || match cfg.client {
                    ClientKind::Raw => run_core(share, &cfg, &live, &barrier, &start_at),
                    ClientKind::Pooled => run_core_pooled(share, &cfg, &live, &barrier, &start_at),
                    ClientKind::TokioPooled => {
                        run_core_tokio(share, &cfg, &live, &barrier, &start_at)
                    }
                })
                .expect("spawn client thread")
        })
        .collect();
    barrier.wait(); // all connected (or failed)
    let start = Instant::now();
    let end = start + cfg.duration;
    start_at.set(start).expect("start set once");
    barrier.wait(); // go
    load::progress(&live, start, end);

    let mut total = Measured::new();
    for t in threads {
        match t.join() {
            Ok(m) => total.add(&m),
            Err(_) => {
                eprintln!("http-load: a client core panicked");
                total.errors += 1;
            }
        }
    }
    // Over the time it really took (a server that fell behind makes the
    // scheduled requests finish after the nominal end).
    let secs = start.elapsed().max(cfg.duration).as_secs_f64();
    load::summary(&total.hist, total.requests, total.bytes, total.errors, secs);
}

/// A core whose runtime did not start: it still meets the others at the
/// two barriers, and counts its share as errors.
fn failed_core(share: usize, e: &dyn std::fmt::Display, barrier: &Barrier) -> Measured {
    eprintln!("http-load: {e}");
    barrier.wait();
    barrier.wait();
    let mut m = Measured::new();
    m.errors = share as u64;
    m
}

fn run_core(
    conns: usize,
    cfg: &Config,
    live: &Arc<Live>,
    barrier: &Barrier,
    start_at: &OnceLock<Instant>,
) -> Measured {
    let rt = match percore::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return failed_core(conns, &e, barrier),
    };
    rt.block_on(async {
        let mut streams = Vec::with_capacity(conns);
        let mut failed = 0;
        for _ in 0..conns {
            let s = TcpStream::connect_timeout(&cfg.addr, Duration::from_secs(10))
                .await
                .and_then(|s| s.set_nodelay(true).map(|()| s));
            match s {
                Ok(s) => streams.push(s),
                Err(e) => {
                    live.failed(
                        "http-load",
                        &io::Error::new(e.kind(), format!("connect: {e}")),
                    );
                    failed += 1;
                }
            }
        }
        // Start together with the other cores (blocking this core is fine:
        // nothing else runs on it yet).
        barrier.wait();
        barrier.wait();
        let start = *start_at.get().expect("start set before the second barrier");
        let end = start + cfg.duration;
        let rate = cfg.rate / cfg.conns as f64 * streams.len() as f64;
        let schedules = load::schedules(
            streams.len(),
            rate,
            cfg.pacing,
            load::Wait::Sleep,
            1,
            start,
            end,
        );
        let request = Bytes::from(format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
            cfg.path, cfg.addr
        ));
        let tasks: Vec<_> = streams
            .into_iter()
            .zip(schedules)
            .map(|(s, schedule)| {
                percore::spawn(connection(s, request.clone(), schedule, end, live.clone()))
            })
            .collect();
        let mut total = Measured::new();
        total.errors = failed;
        for t in percore::join_all(tasks).await {
            match t {
                Ok(m) => total.add(&m),
                Err(_) => total.errors += 1,
            }
        }
        total
    })
}

/// One connection: a request each time the schedule says, the whole response
/// read before the next.
async fn connection(
    s: TcpStream,
    request: Bytes,
    mut schedule: Schedule,
    end: Instant,
    live: Arc<Live>,
) -> Measured {
    let mut m = Measured::new();
    // Received bytes; `buf[..]` not yet parsed.
    let mut buf = Vec::with_capacity(4096);
    // Bound every wait, so a stalled server cannot hang the client.
    let deadline = end + Duration::from_secs(5);
    while let Some(due) = schedule.next().await {
        let res = percore::time::timeout_at(deadline, async {
            s.write_all(request.clone()).await.0?;
            read_response(&s, &mut buf).await
        })
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
        match res {
            Ok(body) => {
                let latency = due.elapsed();
                let _ = m.hist.record((latency.as_nanos() as u64).max(1));
                m.requests += 1;
                m.bytes += body as u64;
                live.answered(body as u64);
            }
            Err(e) => {
                live.failed("http-load", &e);
                m.errors += 1;
                break;
            }
        }
        schedule.done();
    }
    m
}

/// Reads one response from `s` (after what `buf` holds already) and
/// removes it from `buf`; returns the body's length.
async fn read_response(s: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        if let Some(len) = parse_response(buf)? {
            buf.drain(..len.0);
            return Ok(len.1);
        }
        if buf.len() == buf.capacity() {
            if buf.len() >= 1 << 20 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response over 1 MiB",
                ));
            }
            buf.reserve(buf.len());
        }
        let (res, b) = s.read(std::mem::take(buf)).await;
        *buf = b;
        if res? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    }
}

/// A complete `200` response at the start of `buf`: its total length and
/// its body's length; `None` if more bytes are needed.
fn parse_response(buf: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("response head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") && status != "HTTP/1.1 200" {
        return Err(bad(&format!("unexpected status line {status:?}")));
    }
    let mut body = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        if name.eq_ignore_ascii_case("content-length") {
            body = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported"));
        }
    }
    let body = body.ok_or_else(|| bad("response without content-length"))?;
    let total = head_end + 4 + body;
    Ok((buf.len() >= total).then_some((total, body)))
}

/// The URI every pooled request asks for.
fn uri_of(cfg: &Config) -> hyper::Uri {
    format!("http://{}{}", cfg.addr, cfg.path)
        .parse()
        .expect("an address and an absolute path make a URI")
}

/// One pooled request's outcome, recorded the same way for both clients.
fn record<E: std::fmt::Display>(
    m: &mut Measured,
    live: &Live,
    sent: Instant,
    res: Result<usize, E>,
) -> bool {
    match res {
        Ok(body) => {
            let _ = m.hist.record((sent.elapsed().as_nanos() as u64).max(1));
            m.requests += 1;
            m.bytes += body as u64;
            live.answered(body as u64);
            true
        }
        Err(e) => {
            live.failed("http-load", &io::Error::other(e.to_string()));
            m.errors += 1;
            false
        }
    }
}

/// The body of a `200` response, or why not.
async fn body_len<B>(res: hyper::Response<B>) -> Result<usize, String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt;
    if res.status() != hyper::StatusCode::OK {
        return Err(format!("status {}", res.status()));
    }
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(body.to_bytes().len())
}

/// One core with percore-net's pooled client: `inflight` tasks, each
/// sending its next request as soon as the last one's body arrived.
fn run_core_pooled(
    inflight: usize,
    cfg: &Config,
    live: &Arc<Live>,
    barrier: &Barrier,
    start_at: &OnceLock<Instant>,
) -> Measured {
    use percore_net::client::Connector;
    let rt = match percore::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return failed_core(inflight, &e, barrier),
    };
    rt.block_on(async {
        let client = percore_net::client::builder()
            .pool_max_idle_per_host(inflight)
            .build::<_, http_body_util::Empty<Bytes>>(Connector::new());
        let uri = uri_of(cfg);
        barrier.wait();
        barrier.wait();
        let end = *start_at.get().expect("start set before the second barrier") + cfg.duration;
        let tasks: Vec<_> = (0..inflight)
            .map(|_| {
                let (client, uri, live) = (client.clone(), uri.clone(), live.clone());
                percore::spawn(async move {
                    let mut m = Measured::new();
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let res = match client.get(uri.clone()).await {
                            Ok(res) => body_len(res).await,
                            Err(e) => Err(e.to_string()),
                        };
                        if !record(&mut m, &live, sent, res) {
                            break;
                        }
                    }
                    m
                })
            })
            .collect();
        let mut total = Measured::new();
        for t in percore::join_all(tasks).await {
            match t {
                Ok(m) => total.add(&m),
                Err(_) => total.errors += 1,
            }
        }
        total
    })
}

/// One core with hyper-util's pooled client on a tokio current-thread
/// runtime: the same loop as [`run_core_pooled`].
fn run_core_tokio(
    inflight: usize,
    cfg: &Config,
    live: &Arc<Live>,
    barrier: &Barrier,
    start_at: &OnceLock<Instant>,
) -> Measured {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed_core(inflight, &e, barrier),
    };
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(inflight)
            .build_http::<http_body_util::Empty<Bytes>>();
        let uri = uri_of(cfg);
        barrier.wait();
        barrier.wait();
        let end = *start_at.get().expect("start set before the second barrier") + cfg.duration;
        let tasks: Vec<_> = (0..inflight)
            .map(|_| {
                let (client, uri, live) = (client.clone(), uri.clone(), live.clone());
                tokio::spawn(async move {
                    let mut m = Measured::new();
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let res = match client.get(uri.clone()).await {
                            Ok(res) => body_len(res).await,
                            Err(e) => Err(e.to_string()),
                        };
                        if !record(&mut m, &live, sent, res) {
                            break;
                        }
                    }
                    m
                })
            })
            .collect();
        let mut total = Measured::new();
        for t in tasks {
            match t.await {
                Ok(m) => total.add(&m),
                Err(_) => total.errors += 1,
            }
        }
        total
    })
}
