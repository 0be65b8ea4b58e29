//! File I/O benchmark: percore (buffered, RWF_NOWAIT on/off, fixed buffers,
//! O_DIRECT) against std's pread and tokio::fs on the same file, with the same
//! access pattern as the fio jobs in scripts/bench-fs.sh.
//!
//! ```text
//! cargo run --release -p percore-bench --bin fs-bench -- --file /var/tmp/f --engine percore \
//!     --mode randread --bs 4096 --qd 32 --secs 5 [--direct] [--fixed] [--nowait off]
//! ```
//!
//! Prints one line: `engine=... mode=... bs=... qd=... ops=... secs=... iops=... mib_s=...`.

use std::cell::Cell;
use std::io::{SeekFrom, Write as _};
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use percore::buf::{AlignedBuf, FixedBufPool, IoBufMut};
use percore::fs::{File, OpenOptions};

#[derive(Clone, Debug)]
struct Args {
    file: String,
    engine: String,
    mode: String,
    bs: usize,
    qd: usize,
    secs: f64,
    direct: bool,
    fixed: bool,
    nowait: bool,
    /// `None`: the file's default (on for O_DIRECT).
    submit_now: Option<bool>,
    /// Stop after this many ops in all (`--secs` still caps the run).
    ops: Option<u64>,
    size: Option<u64>,
}

fn parse() -> Args {
    let mut a = Args {
        file: String::new(),
        engine: "percore".into(),
        mode: "randread".into(),
        bs: 4096,
        qd: 1,
        secs: 5.0,
        direct: false,
        fixed: false,
        nowait: percore::fs::NOWAIT_READS_DEFAULT,
        submit_now: None,
        ops: None,
        size: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--file" => a.file = val(),
            "--engine" => a.engine = val(),
            "--mode" => a.mode = val(),
            "--bs" => a.bs = val().parse().expect("--bs"),
            "--qd" => a.qd = val().parse().expect("--qd"),
            "--secs" => a.secs = val().parse().expect("--secs"),
            "--ops" => a.ops = Some(val().parse().expect("--ops")),
            "--size" => a.size = Some(val().parse().expect("--size")),
            "--direct" => a.direct = true,
            "--fixed" => a.fixed = true,
            "--nowait" => a.nowait = matches!(val().as_str(), "on" | "1" | "true"),
            "--submit-now" => a.submit_now = Some(matches!(val().as_str(), "on" | "1" | "true")),
            "--create" => {
                // --create BYTES: write the test file (pattern data) and exit.
                let bytes: u64 = val().parse().expect("--create");
                a.size = Some(bytes);
                a.mode = "create".into();
            }
            "-h" | "--help" => {
                println!(
                    "fs-bench --file PATH [--create BYTES] --engine percore|std|tokio \
                     --mode randread|seqread|randwrite --bs N --qd N --secs S [--ops N] \
                     [--direct] [--fixed] [--nowait on|off] [--submit-now on|off]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.file.is_empty(), "--file is required");
    a
}

/// The access-pattern advice fio gives by default (`fadvise_hint=1`):
/// random for random reads and writes, sequential for sequential reads.
/// Every engine gets the same, so readahead is the same for all.
fn advice(args: &Args) -> percore::fs::Advice {
    if args.mode == "seqread" {
        percore::fs::Advice::Sequential
    } else {
        percore::fs::Advice::Random
    }
}

/// [`advice`] through `posix_fadvise(2)`, for the std and tokio engines.
fn advise_fd(args: &Args, fd: std::os::fd::RawFd) {
    // SAFETY: plain syscall on a descriptor the caller keeps open.
    let rc = unsafe { libc::posix_fadvise(fd, 0, 0, advice(args) as i32) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// The order in which an engine's tasks visit blocks, through one shared
/// cursor: file order for sequential reads; for random reads and writes a
/// shuffle that visits every block once before any repeats, as fio's random
/// map does (`norandommap=0`), so a cold run never re-reads a block it
/// cached itself and measures misses, as fio does.
fn block_order(args: &Args, nblocks: u64) -> Arc<[u32]> {
    let mut order: Vec<u32> = (0..u32::try_from(nblocks).expect("block count")).collect();
    if args.mode != "seqread" {
        let mut rng = Rng::new(1);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
    }
    order.into()
}

/// Byte offset of the `i`-th block visited.
fn block_pos(order: &[u32], i: u64, bs: usize) -> u64 {
    u64::from(order[(i % order.len() as u64) as usize]) * bs as u64
}

/// xorshift64*: cheap, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn create(args: &Args) {
    let size = args.size.unwrap();
    let mut f = std::fs::File::create(&args.file).expect("create test file");
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    f.sync_all().unwrap();
    println!("created {} ({} MiB)", args.file, size >> 20);
}

fn report(args: &Args, engine: &str, ops: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let iops = ops as f64 / secs;
    println!(
        "engine={engine} mode={} bs={} qd={} ops={ops} secs={secs:.2} iops={iops:.0} mib_s={:.1}",
        args.mode,
        args.bs,
        args.qd,
        iops * args.bs as f64 / (1 << 20) as f64
    );
}

fn blocks(args: &Args, len: u64) -> u64 {
    let len = args.size.unwrap_or(len);
    assert!(len >= args.bs as u64, "file smaller than one block");
    len / args.bs as u64
}

// ---- percore -----------------------------------------------------------------

fn percore_engine(args: &Args) {
    let mut name = String::from("percore");
    if args.direct {
        name.push_str("-direct");
    }
    if args.fixed {
        name.push_str("-fixed");
    }
    if !args.direct && !args.fixed {
        name.push_str(if args.nowait { "-nowait" } else { "-ring" });
    }
    match args.submit_now {
        Some(true) => name.push_str("-submit-now"),
        Some(false) => name.push_str("-batched"),
        None => {}
    }
    let defer = std::env::var("PERCORE_DEFER_TASKRUN").map_or(true, |v| v != "0");
    let rt = percore::Runtime::builder()
        .entries(256.max(args.qd as u32 * 2))
        .defer_taskrun(defer)
        .build()
        .unwrap();
    let (ops, elapsed) = rt.block_on(async {
        let write = args.mode == "randwrite";
        let mut opts = OpenOptions::new();
        opts.read(true)
            .write(write)
            .direct(args.direct)
            .nowait_reads(args.nowait);
        if let Some(on) = args.submit_now {
            opts.submit_now(on);
        }
        let mut file = opts.open(&args.file).await.expect("open");
        file.advise(0, 0, advice(args)).await.expect("advise");
        if args.fixed {
            file.register().expect("register file");
        }
        let file = Rc::new(file);
        let nblocks = blocks(args, file.metadata().await.unwrap().len());
        let pool = if args.fixed {
            Some(FixedBufPool::new(args.qd, args.bs).expect("fixed buffer pool"))
        } else {
            None
        };
        let stop = Rc::new(Cell::new(false));
        let next = Rc::new(Cell::new(0u64));
        let order = block_order(args, nblocks);
        let start = Instant::now();
        let tasks: Vec<_> = (0..args.qd)
            .map(|_| {
                let (file, pool, stop, next, order, args) = (
                    file.clone(),
                    pool.clone(),
                    stop.clone(),
                    next.clone(),
                    order.clone(),
                    args.clone(),
                );
                percore::spawn(async move {
                    percore_task(&args, &file, pool, &stop, &next, &order).await
                })
            })
            .collect();
        let stopper = stop.clone();
        let secs = args.secs;
        percore::spawn(async move {
            percore::time::sleep(Duration::from_secs_f64(secs)).await;
            stopper.set(true);
        });
        let mut ops = 0;
        for t in percore::join_all(tasks).await {
            ops += t.unwrap();
        }
        let elapsed = start.elapsed();
        if std::env::var_os("FS_BENCH_STATS").is_some() {
            let st = percore::stats();
            eprintln!(
                "ring: {} enters, {} SQEs, {} CQEs for {ops} ops",
                st.driver.enters, st.driver.submitted, st.driver.completed
            );
        }
        (ops, elapsed)
    });
    report(args, &name, ops, elapsed);
}

async fn percore_task(
    args: &Args,
    file: &File,
    pool: Option<FixedBufPool>,
    stop: &Cell<bool>,
    next: &Cell<u64>,
    order: &[u32],
) -> u64 {
    let bs = args.bs;
    let limit = args.ops.unwrap_or(u64::MAX);
    let done = || stop.get() || next.get() >= limit;
    let pos = || {
        let i = next.get();
        next.set(i + 1);
        block_pos(order, i, bs)
    };
    let mut ops = 0u64;
    let write = args.mode == "randwrite";
    if let Some(pool) = pool {
        let mut buf = pool.get().await;
        if write {
            buf.extend_from_slice(&vec![0x5a; bs]);
        }
        while !done() {
            let p = pos();
            if write {
                let (res, b) = file.write_fixed_at(buf, p).await;
                buf = b;
                assert_eq!(res.expect("write_fixed_at"), bs);
                file.sync_data().await.expect("sync_data");
            } else {
                buf.clear();
                let (res, b) = file.read_fixed_at(buf, p).await;
                buf = b;
                assert_eq!(res.expect("read_fixed_at"), bs);
            }
            ops += 1;
        }
    } else if args.direct {
        let mut buf = AlignedBuf::new(bs);
        if write {
            buf.resize(bs, 0x5a);
        }
        ops = rw_loop(file, buf, AlignedBuf::clear, bs, write, done, pos).await;
    } else {
        let mut buf = Vec::with_capacity(bs);
        if write {
            buf.resize(bs, 0x5a);
        }
        ops = rw_loop(file, buf, Vec::clear, bs, write, done, pos).await;
    }
    ops
}

/// One task's loop of positional reads (or writes + fdatasync) with an owned
/// buffer, plain or O_DIRECT-aligned; `clear` empties it before each read.
async fn rw_loop<B: IoBufMut>(
    file: &File,
    mut buf: B,
    clear: fn(&mut B),
    bs: usize,
    write: bool,
    done: impl Fn() -> bool,
    mut next_pos: impl FnMut() -> u64,
) -> u64 {
    let mut ops = 0u64;
    while !done() {
        let p = next_pos();
        if write {
            let (res, b) = file.write_at(buf, p).await;
            buf = b;
            assert_eq!(res.expect("write_at"), bs);
            file.sync_data().await.expect("sync_data");
        } else {
            clear(&mut buf);
            let (res, b) = file.read_at(buf, p).await;
            buf = b;
            assert_eq!(res.expect("read_at"), bs);
        }
        ops += 1;
    }
    ops
}

// ---- std: one thread, pread / pwrite + fdatasync ------------------------------

fn std_engine(args: &Args, nowait: bool) {
    let write = args.mode == "randwrite";
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(&args.file)
        .expect("open");
    let nblocks = blocks(args, file.metadata().unwrap().len());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    advise_fd(args, fd);
    let order = block_order(args, nblocks);
    let mut buf = vec![0x5au8; args.bs];
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let start = Instant::now();
    let mut ops = 0u64;
    let mut next = 0u64;
    let limit = args.ops.unwrap_or(u64::MAX);
    'run: loop {
        for _ in 0..64 {
            if next >= limit {
                break 'run;
            }
            let p = block_pos(&order, next, args.bs);
            next += 1;
            if write {
                file.write_all_at(&buf, p).unwrap();
                file.sync_data().unwrap();
            } else if nowait {
                let iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                // SAFETY: one iovec over `buf`, which outlives the call.
                let n = unsafe { libc::preadv2(fd, &iov, 1, p as libc::off_t, libc::RWF_NOWAIT) };
                assert_eq!(n, args.bs as isize, "preadv2(RWF_NOWAIT) on a warm file");
            } else {
                file.read_exact_at(&mut buf, p).unwrap();
            }
            ops += 1;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    report(
        args,
        if nowait {
            "std-preadv2-nowait"
        } else {
            "std-pread"
        },
        ops,
        start.elapsed(),
    );
}

// ---- tokio::fs: qd tasks, each with its own File (seek + read_exact) -----------

fn tokio_engine(args: &Args) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ops, elapsed) = rt.block_on(async {
        let write = args.mode == "randwrite";
        let len = std::fs::metadata(&args.file).unwrap().len();
        let nblocks = blocks(args, len);
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let order = block_order(args, nblocks);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.qd {
            let (stop, next, order, args) =
                (stop.clone(), next.clone(), order.clone(), args.clone());
            tasks.push(tokio::spawn(async move {
                let mut file = tokio::fs::OpenOptions::new()
                    .read(true)
                    .write(write)
                    .open(&args.file)
                    .await
                    .unwrap();
                advise_fd(&args, std::os::fd::AsRawFd::as_raw_fd(&file));
                let mut buf = vec![0x5au8; args.bs];
                let mut ops = 0u64;
                let limit = args.ops.unwrap_or(u64::MAX);
                while !stop.load(Ordering::Relaxed) && next.load(Ordering::Relaxed) < limit {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    file.seek(SeekFrom::Start(block_pos(&order, i, args.bs)))
                        .await
                        .unwrap();
                    if write {
                        file.write_all(&buf).await.unwrap();
                        file.sync_data().await.unwrap();
                    } else {
                        file.read_exact(&mut buf).await.unwrap();
                    }
                    ops += 1;
                }
                ops
            }));
        }
        let stopper = stop.clone();
        let secs = args.secs;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            stopper.store(true, Ordering::Relaxed);
        });
        let mut ops = 0;
        for t in tasks {
            ops += t.await.unwrap();
        }
        (ops, start.elapsed())
    });
    report(args, "tokio-fs", ops, elapsed);
}

fn main() {
    let args = parse();
    match (args.mode.as_str(), args.engine.as_str()) {
        ("create", _) => create(&args),
        (_, "percore") => percore_engine(&args),
        (_, "std") => std_engine(&args, false),
        (_, "std-nowait") => std_engine(&args, true),
        (_, "tokio") => tokio_engine(&args),
        (_, other) => panic!("unknown engine {other}"),
    }
}
