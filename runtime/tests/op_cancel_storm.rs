//! Cancellation storm: 100,000 ops (pipe and socket reads, writes, accepts,
//! connects, kernel timeouts) started by 64 concurrent tasks and dropped at
//! random points: before their first poll, in flight after a few loop turns,
//! by a `time::timeout`, or awaited to the end.
//!
//! Checks, with buffers that count their own drops (`support::TrackedBuf`):
//! - nothing is freed before its completion: dropping an op the kernel
//!   cannot have finished (a read of an empty pipe, a write into a full one)
//!   leaves its buffer alive;
//! - nothing leaks: once the loop has settled, and again after the runtime is
//!   dropped, no tracked buffer is alive and no descriptor is left open.
//!
//! `STORM_OPS=n` changes the count (default 100,000), `STORM_SEED=s` replays
//! a run (the seed is printed). `scripts/asan.sh` runs it under ASan.

mod support;

use std::cell::Cell;
use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{Accept, CURRENT_POSITION, Connect, Op, OpCode, Read, Recv, TimeoutOp, Write};
use support::{EventLog, assert_no_new_fds, fd_table, poll_once, settle, watchdog};

/// splitmix64: small, seedable, good enough to pick drop points.
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
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Where the op's future is dropped.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// Never polled: nothing was submitted.
    BeforePoll,
    /// Polled once (submitted), then the loop turns `n` times, then dropped.
    InFlight(u32),
    /// Awaited under a `time::timeout` of this many microseconds.
    Timeout(u64),
    /// Awaited to completion.
    Await,
}

#[derive(Default)]
struct Counts {
    dropped_before_poll: Cell<u64>,
    dropped_in_flight: Cell<u64>,
    dropped_checked: Cell<u64>,
    timed_out: Cell<u64>,
    completed: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Drops `op` while it may be in flight; with `pending` (the kernel cannot
/// have completed it) no tracked buffer may be freed by the drop.
fn drop_in_flight<T: OpCode>(op: Op<T>, pending: bool, log: &EventLog, n: &Counts) {
    let live = log.live();
    drop(op);
    if pending {
        assert_eq!(
            log.live(),
            live,
            "a buffer was freed while the kernel owned it"
        );
        bump(&n.dropped_checked);
    }
}

/// Runs `op` to `point`. With `pending`, the kernel cannot complete the op
/// by itself, so dropping it in flight must leave its tracked buffer alive.
async fn drive<T: OpCode>(mut op: Op<T>, point: Point, pending: bool, log: &EventLog, n: &Counts) {
    match point {
        Point::BeforePoll => {
            drop(op);
            bump(&n.dropped_before_poll);
        }
        Point::InFlight(turns) => {
            if poll_once(&mut op).await.is_ready() {
                bump(&n.completed);
                return;
            }
            for _ in 0..turns {
                percore::yield_now().await;
            }
            drop_in_flight(op, pending, log, n);
            bump(&n.dropped_in_flight);
        }
        Point::Timeout(us) => {
            let res = percore::time::timeout(Duration::from_micros(us), &mut op).await;
            if res.is_err() {
                drop_in_flight(op, pending, log, n);
                bump(&n.timed_out);
            } else {
                bump(&n.completed);
            }
        }
        Point::Await => {
            drop(op.await);
            bump(&n.completed);
        }
    }
}

/// A pipe whose buffer is full (one page), so a write into it waits.
fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, mut writer) = std::io::pipe().unwrap();
    // SAFETY: fcntl on a pipe we own; no memory is passed.
    let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    writer.write_all(&vec![0u8; size as usize]).unwrap();
    (reader, writer)
}

async fn one_op(
    rng: &mut Rng,
    log: &EventLog,
    listener: &Rc<(SharedFd, std::net::SocketAddr)>,
    n: &Counts,
) {
    let mut point = match rng.below(8) {
        0 | 1 => Point::BeforePoll,
        2..=4 => Point::InFlight(rng.below(4) as u32),
        5 | 6 => Point::Timeout(rng.below(2000)),
        _ => Point::Await,
    };
    let len = 1 + rng.below(256) as usize;
    match rng.below(7) {
        // Pipe read; data arrives before the first poll, after it, or never.
        0 => {
            let (reader, mut writer) = std::io::pipe().unwrap();
            let when = rng.below(3);
            if when == 0 {
                writer.write_all(b"x").unwrap();
            }
            let op = Op::new(Read::new(
                SharedFd::new(reader.into()),
                log.buf(len),
                CURRENT_POSITION,
            ));
            if when == 2 && matches!(point, Point::Await) {
                point = Point::Timeout(500);
            }
            let mut op = std::pin::pin!(async { drive(op, point, when == 2, log, n).await });
            if when != 1 || poll_once(&mut op).await.is_pending() {
                if when == 1 {
                    writer.write_all(b"y").unwrap();
                }
                op.await;
            }
        }
        // Socket receive, likewise.
        1 => {
            let (mine, mut theirs) = UnixStream::pair().unwrap();
            let data = rng.below(2) == 0;
            if data {
                theirs.write_all(b"z").unwrap();
            } else if matches!(point, Point::Await) {
                point = Point::InFlight(1);
            }
            let op = Op::new(Recv::new(SharedFd::new(mine.into()), log.buf(len)));
            drive(op, point, !data, log, n).await;
        }
        // Write into a pipe with room, or into a full one (waits).
        2 => {
            let full = rng.below(2) == 0;
            let (reader, writer) = if full {
                full_pipe()
            } else {
                std::io::pipe().unwrap()
            };
            if full && matches!(point, Point::Await) {
                point = Point::Timeout(300);
            }
            let buf = log.buf_with(&vec![7u8; len]);
            let op = Op::new(Write::new(
                SharedFd::new(writer.into()),
                buf,
                CURRENT_POSITION,
            ));
            drive(op, point, full, log, n).await;
            drop(reader);
        }
        // Accept: a connection may or may not be waiting.
        3 => {
            if rng.below(2) == 0 {
                // Non-blocking: once the backlog is full a blocking connect
                // would wait for the SYN retries.
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                sock.set_nonblocking(true).unwrap();
                let _ = sock.connect(&listener.1.into());
            }
            if matches!(point, Point::Await) {
                point = Point::Timeout(1000);
            }
            drive(
                Op::new(Accept::new(listener.0.clone())),
                point,
                false,
                log,
                n,
            )
            .await;
        }
        // Connect to the listener (pends once its backlog is full).
        4 => {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let op = Op::new(Connect::new(
                SharedFd::new(OwnedFd::from(sock)),
                listener.1.into(),
            ));
            if matches!(point, Point::Await) {
                point = Point::Timeout(1000);
            }
            drive(op, point, false, log, n).await;
        }
        // Kernel timeouts.
        _ => {
            let op = Op::new(TimeoutOp::new(Duration::from_micros(rng.below(3000))));
            drive(op, point, false, log, n).await;
        }
    }
}

#[test]
fn storm_of_dropped_ops_frees_everything_after_its_completion() {
    let ops = env_u64("STORM_OPS").unwrap_or(100_000);
    let seed = env_u64("STORM_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("cancellation storm: {ops} ops, seed {seed} (replay with STORM_SEED={seed})");
    let _dog = watchdog("cancel_storm", Duration::from_secs(600));
    let baseline = fd_table();
    let log = EventLog::new();
    let counts = Rc::new(Counts::default());
    {
        let rt = percore::Runtime::new().unwrap();
        rt.block_on(async {
            let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
            std_listener.set_nonblocking(true).unwrap();
            let addr = std_listener.local_addr().unwrap();
            let listener = Rc::new((SharedFd::new(OwnedFd::from(std_listener)), addr));
            let next = Rc::new(Cell::new(0u64));
            let workers: Vec<_> = (0..64u64)
                .map(|w| {
                    let (log, listener, next, counts) =
                        (log.clone(), listener.clone(), next.clone(), counts.clone());
                    percore::spawn(async move {
                        let mut rng = Rng(seed ^ w.wrapping_mul(0xA24B_AED4_963E_E407));
                        while next.get() < ops {
                            next.set(next.get() + 1);
                            one_op(&mut rng, &log, &listener, &counts).await;
                        }
                    })
                })
                .collect();
            for w in percore::join_all(workers).await {
                w.unwrap();
            }
            drop(listener);
            // Every op's completion has arrived: every buffer is free.
            settle().await;
            assert_eq!(
                log.live(),
                0,
                "tracked buffers alive after the storm settled"
            );
        });
        let n = &counts;
        eprintln!(
            "dropped before poll {}, in flight {} ({} checked alive at the drop), \
             by timeout {}, completed {}; {} buffers",
            n.dropped_before_poll.get(),
            n.dropped_in_flight.get(),
            n.dropped_checked.get(),
            n.timed_out.get(),
            n.completed.get(),
            log.dropped_count()
        );
        let total = n.dropped_before_poll.get()
            + n.dropped_in_flight.get()
            + n.timed_out.get()
            + n.completed.get();
        assert_eq!(total, ops);
        assert!(
            n.dropped_checked.get() > ops / 20,
            "too few in-flight drops were checked"
        );
    }
    // The runtime is gone: nothing it held is alive, no descriptor is open.
    assert_eq!(log.live(), 0);
    assert_no_new_fds(&baseline, "after the storm");
}
