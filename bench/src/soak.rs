//! Soak and hostile-peer runs against the `echo-server` example, which runs
//! as a child process so its descriptors and memory can be read from /proc.
//!
//! ```text
//! cargo build --release --example echo-server && cargo build --release -p percore-bench --bin soak
//! target/release/soak [--mode soak|hostile|slowloris|never-read|abandon]
//!     [--duration SECS] [--cores N] [--conns N] [--seed N] [--server PATH]
//! ```
//!
//! `--server` defaults to the `echo-server` example of the same build
//! (`examples/echo-server` beside this binary).
//!
//! - `soak` (default): `--conns` (2,000) client connections on one percore
//!   core run sessions against a server on `--cores` cores for `--duration`
//!   seconds (300). A session connects, exchanges 1-30 messages of
//!   log-uniform random size (1 B .. 64 KiB), checks that every byte comes
//!   back intact, and ends at random: close (50%), half-close and wait for
//!   the server's end of stream (20%), reset with `SO_LINGER` 0 (15%),
//!   abandon in the middle of an echo (10%), or go idle until the server's
//!   idle timeout closes it (5%). A warm-up of a tenth of the duration
//!   (5-30 s) comes first; after it, and again at the end, the clients stop,
//!   the server's open descriptors and resident memory are read, and the end
//!   values must be within 5% of the warm-up values (memory: plus 4 MiB of
//!   slack for allocator noise).
//! - `slowloris`: 200 connections send one byte a second (each echoed) for
//!   5 s while a normal client runs 200 verified round trips.
//! - `never-read`: 100 clients write without ever reading; the server's
//!   writes back up, its idle timeout closes every one of them, and its
//!   memory stays bounded (under 32 MiB above its baseline).
//! - `abandon`: 10,000 connections opened, sent a few bytes and dropped
//!   (half of them reset); the server's descriptors return to the baseline.
//! - `hostile`: the three above, one after the other, on one server.
//!
//! Every mode checks the server is still running at the end and stops it
//! with SIGTERM (it must exit cleanly). Exit status 1 if any check failed.

#[path = "../../examples/common/flags.rs"]
mod flags;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use percore::time::{sleep, timeout};
use percore_net::TcpStream;

/// The server's idle timeout in every mode.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Soak,
    Hostile,
    Slowloris,
    NeverRead,
    Abandon,
}

struct Args {
    mode: Mode,
    duration: Duration,
    cores: usize,
    conns: usize,
    seed: u64,
    server: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        mode: Mode::Soak,
        duration: Duration::from_secs(300),
        cores: 1,
        conns: 2000,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        server: exe.with_file_name("examples").join("echo-server"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "soak" => Mode::Soak,
                    "hostile" => Mode::Hostile,
                    "slowloris" => Mode::Slowloris,
                    "never-read" => Mode::NeverRead,
                    "abandon" => Mode::Abandon,
                    other => return Err(format!("unknown mode {other}")),
                }
            }
            "--duration" => args.duration = Duration::from_secs(num(value()?)?),
            "--cores" => args.cores = num(value()?)?.max(1) as usize,
            "--conns" => args.conns = num(value()?)?.max(1) as usize,
            "--seed" => args.seed = num(value()?)?,
            "--server" => args.server = value()?.into(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// splitmix64: seedable, cheap, enough for sizes, bytes and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// 1 B .. 64 KiB, log-uniform: as many 1-byte as 32-KiB-ish messages.
    fn msg_len(&mut self) -> usize {
        let bits = self.below(17) as u32;
        let lo = 1usize << bits.saturating_sub(1);
        (lo + self.below(lo as u64) as usize).min(65536)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// The echo server child process.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(path: &PathBuf, cores: usize) -> io::Result<Server> {
        let mut child = Command::new(path)
            .args(["--addr", "127.0.0.1:0", "--cores", &cores.to_string()])
            .args(["--idle-timeout", &IDLE_TIMEOUT.as_secs_f64().to_string()])
            .arg("--stats")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        out.read_line(&mut line)?;
        // "echo-server listening on 127.0.0.1:PORT (...)"
        let addr = line
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected server output: {line:?}")))?;
        // Pass the rest (the --stats report at exit) through.
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                println!("  server: {line}");
            }
        });
        Ok(Server { child, addr })
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the descriptor count is at most `target` (if given) or
    /// has not changed for a second; at most 30 s. Returns the count.
    fn settle_fds(&self, target: Option<usize>) -> usize {
        let start = Instant::now();
        let (mut last, mut since) = (self.fds(), Instant::now());
        while start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.fds();
            if target.is_some_and(|t| now <= t) {
                return now;
            }
            if now != last {
                (last, since) = (now, Instant::now());
            } else if target.is_none() && since.elapsed() >= Duration::from_secs(1) {
                break;
            }
        }
        last
    }

    /// SIGTERM, then wait: true if it exited cleanly.
    fn stop(mut self) -> bool {
        // SAFETY: kill(2) on our own child's pid; no memory is passed.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        matches!(self.child.wait(), Ok(status) if status.success())
    }
}

/// VmRSS of process `pid` in KiB (0 if it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Failed checks, printed at the end.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: String) {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failures.push(what);
        }
    }
}

/// What the soak clients saw.
#[derive(Default)]
struct Tally {
    sessions: Cell<u64>,
    messages: Cell<u64>,
    bytes: Cell<u64>,
    corrupt: Cell<u64>,
    /// Deliberate endings, by kind.
    endings: RefCell<BTreeMap<&'static str, u64>>,
    /// Errors, by kind; none is expected except client port exhaustion.
    errors: RefCell<BTreeMap<String, u64>>,
}

impl Tally {
    fn end(&self, kind: &'static str) {
        *self.endings.borrow_mut().entry(kind).or_default() += 1;
    }
    fn error(&self, what: &str, e: &io::Error) {
        let key = format!("{what}: {}", e.kind());
        *self.errors.borrow_mut().entry(key).or_default() += 1;
    }
    fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }
}

/// Writes one message and checks its echo; false if the session must end.
async fn echo_one(conn: &TcpStream, rng: &mut Rng, tally: &Tally) -> bool {
    let len = rng.msg_len();
    let (res, sent) = conn.write_all(rng.bytes(len)).await;
    if let Err(e) = res {
        tally.error("write", &e);
        return false;
    }
    let (res, back) = conn.read_exact(Vec::with_capacity(len)).await;
    if let Err(e) = res {
        tally.error("read", &e);
        return false;
    }
    if back != sent {
        Tally::add(&tally.corrupt, 1);
        return false;
    }
    Tally::add(&tally.messages, 1);
    Tally::add(&tally.bytes, len as u64);
    true
}

async fn session(addr: SocketAddr, rng: &mut Rng, tally: &Tally) {
    let conn = match TcpStream::connect(addr).await {
        Ok(conn) => conn,
        Err(e) => {
            tally.error("connect", &e);
            sleep(Duration::from_millis(100)).await;
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    Tally::add(&tally.sessions, 1);
    let ending = rng.below(100);
    for _ in 0..1 + rng.below(30) {
        if !echo_one(&conn, rng, tally).await {
            return;
        }
    }
    match ending {
        0..50 => tally.end("close"),
        50..70 => {
            // Half-close: the server sees end of stream and closes its side.
            if let Err(e) = conn.shutdown(Shutdown::Write).await {
                return tally.error("shutdown", &e);
            }
            match conn.read(Vec::with_capacity(16)).await.0 {
                Ok(0) => tally.end("half-close"),
                Ok(_) => tally.error("half-close", &io::Error::other("data after EOF")),
                Err(e) => tally.error("half-close read", &e),
            }
        }
        70..85 => {
            let _ = conn.set_linger(Some(Duration::ZERO));
            tally.end("reset");
        }
        85..95 => {
            // Abandon in the middle of an echo, after a random pause.
            let len = rng.msg_len();
            let _ = conn.write_all(rng.bytes(len)).await;
            let wait = Duration::from_millis(rng.below(300));
            let _ = timeout(wait, conn.read(Vec::with_capacity(len))).await;
            tally.end("abandon");
        }
        _ => {
            // Go idle: the server's idle timeout must close the connection.
            let limit = IDLE_TIMEOUT * 5;
            match timeout(limit, conn.read(Vec::with_capacity(16))).await {
                Ok((Ok(0), _)) => tally.end("server idle timeout"),
                Ok((Err(e), _)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    tally.end("server idle timeout")
                }
                Ok((res, _)) => tally.error("idle", &res.err().unwrap_or(io::Error::other("data"))),
                Err(_) => tally.error("idle", &io::Error::other("server never timed out")),
            }
        }
    }
}

/// Runs `conns` clients doing sessions for `dur`, then waits for them all.
fn run_load(addr: SocketAddr, conns: usize, dur: Duration, seed: u64) -> Tally {
    let tally = Rc::new(Tally::default());
    let t = tally.clone();
    percore::run(async move {
        let deadline = Instant::now() + dur;
        let tasks: Vec<_> = (0..conns as u64)
            .map(|i| {
                let t = t.clone();
                percore::spawn(async move {
                    let mut rng = Rng(seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
                    // Spread the first connects over 100 ms.
                    sleep(Duration::from_micros(rng.below(100_000))).await;
                    while Instant::now() < deadline {
                        session(addr, &mut rng, &t).await;
                    }
                })
            })
            .collect();
        for task in percore::join_all(tasks).await {
            task.expect("client task panicked");
        }
    });
    Rc::try_unwrap(tally).unwrap_or_default()
}

fn print_tally(phase: &str, t: &Tally, dur: Duration) {
    println!(
        "{phase}: {} sessions, {} messages, {} MiB echoed and verified in {:.0} s; corrupt {}",
        t.sessions.get(),
        t.messages.get(),
        t.bytes.get() >> 20,
        dur.as_secs_f64(),
        t.corrupt.get()
    );
    println!("  endings: {:?}", t.endings.borrow());
    println!("  errors: {:?}", t.errors.borrow());
}

fn soak(args: &Args, server: &mut Server, v: &mut Verdict) {
    let warm = (args.duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(30));
    println!(
        "soak: {} connections, server on {} core(s), warm-up {} s, run {} s, seed {}",
        args.conns,
        args.cores,
        warm.as_secs(),
        args.duration.as_secs(),
        args.seed
    );
    let t = run_load(server.addr, args.conns, warm, args.seed);
    print_tally("warm-up", &t, warm);
    let fds0 = server.settle_fds(None);
    let rss0 = server.rss_kib();
    println!("after warm-up: server fds {fds0}, rss {rss0} KiB");

    let start = Instant::now();
    let t = run_load(
        server.addr,
        args.conns,
        args.duration,
        args.seed.rotate_left(17),
    );
    let took = start.elapsed();
    print_tally("run", &t, took);
    let fds1 = server.settle_fds(Some(fds0));
    let rss1 = server.rss_kib();
    println!(
        "after run: server fds {fds1} (warm-up {fds0}), rss {rss1} KiB (warm-up {rss0} KiB, {:+.1}%)",
        (rss1 as f64 - rss0 as f64) * 100.0 / rss0.max(1) as f64
    );
    v.check(
        t.corrupt.get() == 0,
        format!("no corrupt echo ({})", t.corrupt.get()),
    );
    let errors = t.errors.borrow();
    let bad: u64 = errors
        .iter()
        .filter(|(k, _)| !k.starts_with("connect: AddrNotAvailable"))
        .map(|(_, n)| n)
        .sum();
    v.check(
        bad == 0,
        format!("no connection errors ({bad}; client port exhaustion excepted)"),
    );
    v.check(
        t.messages.get() > 0 && t.endings.borrow().len() == 5,
        "every session ending was exercised".into(),
    );
    v.check(
        fds1 as f64 <= fds0 as f64 * 1.05,
        format!("server fds back within 5% ({fds1} vs {fds0})"),
    );
    v.check(
        rss1 as f64 <= rss0 as f64 * 1.05 + 4096.0,
        format!("server rss back within 5% + 4 MiB ({rss1} vs {rss0} KiB)"),
    );
}

fn slowloris(server: &Server, v: &mut Verdict) {
    const CONNS: usize = 200;
    const SECS: u64 = 5;
    let addr = server.addr;
    let base = server.fds();
    let (slow_ok, normal_trips, errors) = percore::run(async move {
        let open = Rc::new(Cell::new(0usize));
        let normal_done = Rc::new(Cell::new(false));
        let errors = Rc::new(Cell::new(0u64));
        let slow: Vec<_> = (0..CONNS)
            .map(|i| {
                let (open, done, errors) = (open.clone(), normal_done.clone(), errors.clone());
                percore::spawn(async move {
                    let conn = TcpStream::connect(addr).await?;
                    open.set(open.get() + 1);
                    let start = Instant::now();
                    let mut sent = 0u64;
                    // One byte a second, each echoed, for SECS seconds and
                    // until the normal client is done.
                    while start.elapsed() < Duration::from_secs(SECS) || !done.get() {
                        let byte = (i as u8).wrapping_add(sent as u8);
                        conn.write_all(vec![byte]).await.0?;
                        let (res, back) = conn.read_exact(Vec::with_capacity(1)).await;
                        res?;
                        if back != [byte] {
                            errors.set(errors.get() + 1);
                        }
                        sent += 1;
                        sleep(Duration::from_secs(1)).await;
                    }
                    io::Result::Ok(sent)
                })
            })
            .collect();
        while open.get() < CONNS {
            sleep(Duration::from_millis(10)).await;
        }
        // A normal client, served while all slow connections are open.
        let conn = TcpStream::connect(addr)
            .await
            .expect("normal client connect");
        let mut rng = Rng(7);
        let mut trips = 0;
        for _ in 0..200 {
            let msg = rng.bytes(1024);
            let (res, msg) = conn.write_all(msg).await;
            res.expect("normal client write");
            let (res, back) = conn.read_exact(Vec::with_capacity(1024)).await;
            res.expect("normal client read");
            trips += usize::from(back == msg);
        }
        normal_done.set(true);
        let mut slow_ok = 0;
        for s in percore::join_all(slow).await {
            match s.expect("slow task") {
                Ok(sent) if sent >= SECS => slow_ok += 1,
                Ok(_) => {}
                Err(e) => eprintln!("slowloris connection: {e}"),
            }
        }
        (slow_ok, trips, errors.get())
    });
    v.check(
        normal_trips == 200,
        format!("slowloris: normal client got 200/200 verified echoes ({normal_trips})"),
    );
    v.check(
        slow_ok == CONNS && errors == 0,
        format!("slowloris: {slow_ok}/{CONNS} slow connections served, {errors} bad echoes"),
    );
    let fds = server.settle_fds(Some(base));
    v.check(
        fds <= base,
        format!("slowloris: server fds back to {base} ({fds})"),
    );
}

fn never_read(server: &Server, v: &mut Verdict) {
    const CONNS: usize = 100;
    let addr = server.addr;
    let (base_fds, base_rss) = (server.fds(), server.rss_kib());
    let pid = server.child.id();
    let (closed_by_server, peak_rss) = percore::run(async move {
        let peak = Rc::new(Cell::new(0u64));
        let running = Rc::new(Cell::new(true));
        let (p, r) = (peak.clone(), running.clone());
        let monitor = percore::spawn(async move {
            while r.get() {
                p.set(p.get().max(rss_kib(pid)));
                sleep(Duration::from_millis(50)).await;
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|_| {
                percore::spawn(async move {
                    let conn = TcpStream::connect(addr).await.expect("connect");
                    let chunk = vec![0x5a; 64 * 1024];
                    // Write, never read, until the server gives up on us:
                    // its idle timeout closes the connection and our write
                    // fails. 60 s without that is a failure.
                    let res = timeout(Duration::from_secs(60), async {
                        let mut chunk = chunk;
                        loop {
                            let (res, c) = conn.write_all(chunk).await;
                            res?;
                            chunk = c;
                        }
                    })
                    .await;
                    matches!(res, Ok(Err::<(), io::Error>(_)))
                })
            })
            .collect();
        let mut closed = 0;
        for c in percore::join_all(clients).await {
            closed += usize::from(c.expect("client task"));
        }
        running.set(false);
        monitor.await.expect("monitor");
        (closed, peak.get())
    });
    v.check(
        closed_by_server == CONNS,
        format!("never-read: server timed out {closed_by_server}/{CONNS} stalled connections"),
    );
    let growth = peak_rss.saturating_sub(base_rss);
    v.check(
        growth < 32 * 1024,
        format!(
            "never-read: server rss peak {peak_rss} KiB, {growth} KiB above its baseline (bound 32 MiB)"
        ),
    );
    let fds = server.settle_fds(Some(base_fds));
    v.check(
        fds <= base_fds,
        format!("never-read: server fds back to {base_fds} ({fds})"),
    );
}

fn abandon(server: &Server, v: &mut Verdict) {
    const CONNS: usize = 10_000;
    let addr = server.addr;
    let base = server.fds();
    let streams = percore::run(async move {
        let tasks: Vec<_> = (0..CONNS)
            .map(|i| {
                percore::spawn(async move {
                    let conn = TcpStream::connect(addr).await?;
                    conn.write_all(vec![b'x'; 1 + i % 100]).await.0?;
                    if i % 2 == 0 {
                        conn.set_linger(Some(Duration::ZERO))?;
                    }
                    io::Result::Ok(conn)
                })
            })
            .collect();
        let mut streams = Vec::new();
        for t in percore::join_all(tasks).await {
            match t.expect("connect task") {
                Ok(s) => streams.push(s),
                Err(e) => eprintln!("abandon: connect: {e}"),
            }
        }
        streams
    });
    let opened = streams.len();
    let peak = server.settle_fds(None);
    println!("abandon: {opened} connections open, server fds {peak} (baseline {base})");
    // Dropped outside the runtime: plain close(2), half of them resets.
    drop(streams);
    let fds = server.settle_fds(Some(base));
    v.check(opened == CONNS, format!("abandon: opened {opened}/{CONNS}"));
    v.check(
        fds <= base,
        format!("abandon: server fds back to {base} ({fds})"),
    );
}

const USAGE: &str = "usage: soak [--mode soak|hostile|slowloris|never-read|abandon] \
                     [--duration SECS] [--cores N] [--conns N] [--seed N] [--server PATH]";

fn main() {
    flags::exit_if_help(USAGE);
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => flags::usage_error("soak", &e, USAGE),
    };
    let mut server = match Server::start(&args.server, args.cores) {
        // The cores set up their rings after the address is printed.
        Ok(s) => {
            s.settle_fds(None);
            s
        }
        Err(e) => {
            eprintln!(
                "soak: cannot start the echo server: {e} (build it: cargo build --release --example echo-server)"
            );
            std::process::exit(2);
        }
    };
    println!(
        "server pid {} on {}: fds {}, rss {} KiB",
        server.child.id(),
        server.addr,
        server.fds(),
        server.rss_kib()
    );
    let mut v = Verdict::default();
    match args.mode {
        Mode::Soak => soak(&args, &mut server, &mut v),
        Mode::Slowloris => slowloris(&server, &mut v),
        Mode::NeverRead => never_read(&server, &mut v),
        Mode::Abandon => abandon(&server, &mut v),
        Mode::Hostile => {
            slowloris(&server, &mut v);
            never_read(&server, &mut v);
            abandon(&server, &mut v);
        }
    }
    println!(
        "server at the end: fds {}, rss {} KiB",
        server.fds(),
        server.rss_kib()
    );
    let running = server.running();
    v.check(running, "server still running".into());
    if running {
        v.check(server.stop(), "server stopped cleanly on SIGTERM".into());
    }
    if !v.failures.is_empty() {
        eprintln!(
            "soak: {} check(s) failed: {:?}",
            v.failures.len(),
            v.failures
        );
        std::process::exit(1);
    }
    println!("soak: all checks passed");
}
