//! The epoll driver's hot path, written three ways: `libc` directly (what
//! `runtime/src/driver/epoll.rs` does), mio and polling. The issue that
//! asked for the epoll driver asked for the crate to be chosen by measuring
//! this; ARCHITECTURE.md gives the result and the choice.
//!
//! Each backend gets the same setup: `--fds` (256) Unix socket pairs, one
//! end of each registered once, edge-triggered, for reading. A round makes
//! `--ready` (16) of them readable (a 1-byte write to the peer end, the
//! fds taken in turn), waits once, and receives the byte on every fd the
//! wait reported. The receive and the writes are the same syscalls for all
//! three; what differs is the wait and turning its events into work, which
//! is what a readiness crate would add to the driver.
//!
//! ```text
//! cargo run --release -p percore-bench --bin readiness-bench -- [--rounds 200000] [--fds 256] [--ready 16] \
//!     [--repeats 5] [--only libc|mio|polling]
//! ```
//!
//! Prints ns per event for each backend (wall time, interleaved repeats,
//! median). For user-space instructions, which do not depend on the
//! machine's load, run it under callgrind and read the inclusive counts of
//! the three `round_*` functions (each runs one whole round):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/readiness.cg \
//!     target/release/readiness-bench --rounds 20000 --repeats 1
//! callgrind_annotate --inclusive=yes /tmp/readiness.cg | grep round_
//! ```
//!
//! Divide by rounds x ready for instructions per event.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The backends, in the order of the report.
const NAMES: [&str; 3] = ["libc", "mio", "polling"];

struct Config {
    rounds: usize,
    fds: usize,
    ready: usize,
    repeats: usize,
    /// Only this backend (`--only libc|mio|polling`), e.g. to count its
    /// syscalls with `perf stat`.
    only: Option<String>,
}

fn parse() -> Result<Config, String> {
    let mut cfg = Config {
        rounds: 200_000,
        fds: 256,
        ready: 16,
        repeats: 5,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        if flag == "--only" {
            if !NAMES.contains(&value.as_str()) {
                return Err(format!("--only {value}: not one of {NAMES:?}"));
            }
            cfg.only = Some(value);
            continue;
        }
        let n: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--rounds" => cfg.rounds = n,
            "--fds" => cfg.fds = n,
            "--ready" => cfg.ready = n,
            "--repeats" => cfg.repeats = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if cfg.ready == 0 || cfg.ready > cfg.fds || cfg.rounds == 0 || cfg.repeats == 0 {
        return Err("need 0 < --ready <= --fds, --rounds > 0 and --repeats > 0".into());
    }
    Ok(cfg)
}

/// The socket pairs: `watched[i]` is registered, `peers[i]` is written to.
struct Pairs {
    watched: Vec<UnixStream>,
    peers: Vec<UnixStream>,
    next: usize,
}

impl Pairs {
    fn new(n: usize) -> io::Result<Pairs> {
        let (mut watched, mut peers) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (a, b) = UnixStream::pair()?;
            a.set_nonblocking(true)?;
            watched.push(a);
            peers.push(b);
        }
        Ok(Pairs {
            watched,
            peers,
            next: 0,
        })
    }

    /// Makes the next `k` watched fds readable.
    fn make_ready(&mut self, k: usize) {
        for _ in 0..k {
            let fd = self.peers[self.next].as_raw_fd();
            // SAFETY: one byte from a live stack value into an fd we own.
            let n = unsafe { libc::send(fd, b"x".as_ptr().cast(), 1, 0) };
            assert_eq!(n, 1, "send: {}", io::Error::last_os_error());
            self.next = (self.next + 1) % self.peers.len();
        }
    }

    /// Receives the byte waiting on watched fd `i`.
    fn drain(&self, i: usize) {
        let mut byte = 0u8;
        let fd = self.watched[i].as_raw_fd();
        // SAFETY: receives at most one byte into a live stack value.
        let n = unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, 0) };
        assert_eq!(n, 1, "recv on fd {fd}: {}", io::Error::last_os_error());
    }
}

/// A backend: registers every watched fd once, then runs rounds.
trait Backend {
    fn name(&self) -> &'static str;
    /// Waits for readiness and receives on every fd reported; returns how
    /// many events it handled.
    fn round(&mut self, pairs: &Pairs) -> usize;
}

struct Libc {
    epfd: RawFd,
    events: Vec<libc::epoll_event>,
    /// `epoll_pwait2` exists; else `epoll_wait`, as the driver falls back
    /// (valgrind 3.19 does not know `epoll_pwait2`).
    pwait2: bool,
}

impl Libc {
    fn new(pairs: &Pairs) -> io::Result<Libc> {
        // SAFETY: plain syscall; the fd is closed in Drop.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        for (i, s) in pairs.watched.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: i as u64,
            };
            // SAFETY: epoll_ctl reads one event from this frame.
            if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Libc {
            epfd,
            events: Vec::with_capacity(pairs.watched.len()),
            pwait2: true,
        })
    }
}

impl Drop for Libc {
    fn drop(&mut self) {
        // SAFETY: our own epoll fd, closed once.
        unsafe { libc::close(self.epfd) };
    }
}

impl Backend for Libc {
    fn name(&self) -> &'static str {
        "libc"
    }
    fn round(&mut self, pairs: &Pairs) -> usize {
        round_libc(self, pairs)
    }
}

#[inline(never)]
fn round_libc(b: &mut Libc, pairs: &Pairs) -> usize {
    b.events.clear();
    let (ptr, cap) = (b.events.as_mut_ptr(), b.events.capacity() as i32);
    let mut n = -1;
    if b.pwait2 {
        let ts = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        // SAFETY: epoll_pwait2(2) writes at most `cap` events into the
        // vector's spare capacity and reads the timespec on this frame.
        n = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                b.epfd,
                ptr,
                cap,
                &ts as *const libc::timespec,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        b.pwait2 = !(n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS));
    }
    if !b.pwait2 {
        // SAFETY: as above, at most `cap` events into spare capacity.
        n = unsafe { libc::epoll_wait(b.epfd, ptr, cap, 1000) } as libc::c_long;
    }
    assert!(n >= 0, "epoll wait: {}", io::Error::last_os_error());
    // SAFETY: the kernel initialized the first `n` events.
    unsafe { b.events.set_len(n as usize) };
    for ev in &b.events {
        pairs.drain(ev.u64 as usize);
    }
    n as usize
}

struct Mio {
    poll: mio::Poll,
    events: mio::Events,
}

impl Mio {
    fn new(pairs: &Pairs) -> io::Result<Mio> {
        let poll = mio::Poll::new()?;
        for (i, s) in pairs.watched.iter().enumerate() {
            poll.registry().register(
                &mut mio::unix::SourceFd(&s.as_raw_fd()),
                mio::Token(i),
                mio::Interest::READABLE,
            )?;
        }
        Ok(Mio {
            poll,
            events: mio::Events::with_capacity(pairs.watched.len()),
        })
    }
}

impl Backend for Mio {
    fn name(&self) -> &'static str {
        "mio"
    }
    fn round(&mut self, pairs: &Pairs) -> usize {
        round_mio(self, pairs)
    }
}

#[inline(never)]
fn round_mio(b: &mut Mio, pairs: &Pairs) -> usize {
    b.poll
        .poll(&mut b.events, Some(Duration::from_secs(1)))
        .expect("mio poll");
    let mut n = 0;
    for ev in &b.events {
        pairs.drain(ev.token().0);
        n += 1;
    }
    n
}

struct Polling {
    poller: polling::Poller,
    events: polling::Events,
}

impl Polling {
    fn new(pairs: &Pairs) -> io::Result<Polling> {
        let poller = polling::Poller::new()?;
        for (i, s) in pairs.watched.iter().enumerate() {
            // SAFETY: each watched stream outlives the poller's use of it:
            // both live until the end of `measure`, and the poller is
            // dropped first.
            unsafe {
                poller.add_with_mode(s, polling::Event::readable(i), polling::PollMode::Edge)?;
            }
        }
        let events = polling::Events::with_capacity(
            std::num::NonZeroUsize::new(pairs.watched.len()).expect("fds > 0"),
        );
        Ok(Polling { poller, events })
    }
}

impl Backend for Polling {
    fn name(&self) -> &'static str {
        "polling"
    }
    fn round(&mut self, pairs: &Pairs) -> usize {
        round_polling(self, pairs)
    }
}

#[inline(never)]
fn round_polling(b: &mut Polling, pairs: &Pairs) -> usize {
    b.events.clear();
    b.poller
        .wait(&mut b.events, Some(Duration::from_secs(1)))
        .expect("polling wait");
    let mut n = 0;
    for ev in b.events.iter() {
        pairs.drain(ev.key);
        n += 1;
    }
    n
}

/// Runs `cfg.rounds` rounds on one backend; returns ns per event.
fn measure(backend: &mut dyn Backend, pairs: &mut Pairs, cfg: &Config) -> f64 {
    let mut events = 0;
    let start = Instant::now();
    for _ in 0..cfg.rounds {
        pairs.make_ready(cfg.ready);
        let n = backend.round(pairs);
        assert_eq!(
            n,
            cfg.ready,
            "{}: events reported per round",
            backend.name()
        );
        events += n;
    }
    start.elapsed().as_nanos() as f64 / events as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let cfg = parse().unwrap_or_else(|e| {
        eprintln!(
            "readiness-bench: {e}\nusage: readiness-bench [--rounds N] [--fds N] [--ready N] [--repeats N] [--only libc|mio|polling]"
        );
        std::process::exit(2);
    });
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    for repeat in 0..cfg.repeats {
        // The order rotates each repeat; each backend gets fresh sockets.
        for k in 0..NAMES.len() {
            let which = (k + repeat) % NAMES.len();
            if cfg.only.as_deref().is_some_and(|o| o != NAMES[which]) {
                continue;
            }
            let mut pairs = Pairs::new(cfg.fds).expect("socket pairs");
            let ns = match which {
                0 => measure(&mut Libc::new(&pairs).expect("epoll"), &mut pairs, &cfg),
                1 => measure(&mut Mio::new(&pairs).expect("mio"), &mut pairs, &cfg),
                _ => measure(
                    &mut Polling::new(&pairs).expect("polling"),
                    &mut pairs,
                    &cfg,
                ),
            };
            results[which].push(ns);
        }
    }
    println!(
        "| backend | ns per event (median of {}; {} fds, {} ready per wait) | vs libc |",
        cfg.repeats, cfg.fds, cfg.ready
    );
    println!("|---|---:|---:|");
    let base = (!results[0].is_empty()).then(|| median(&mut results[0].clone()));
    for (name, r) in NAMES.iter().zip(results.iter_mut()) {
        if r.is_empty() {
            continue;
        }
        let m = median(r);
        let ratio = base.map_or("-".to_string(), |b| format!("{:.3}x", m / b));
        println!("| {name} | {m:.1} | {ratio} |");
    }
}
