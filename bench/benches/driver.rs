//! Ring round trips: percore's `Nop` op, tokio's nearest analogue (it has no
//! ring: a `yield_now` and a spawn round trip through its scheduler), and a
//! raw io_uring submit-and-wait loop with no runtime as the ceiling.
//!
//! Also an A/B of the ring set-up flags on the same nop round trip.
//!
//! `cargo bench -p percore-bench --bench driver`

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use io_uring::{IoUring, opcode};
use percore::op::{Nop, Op};

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `iters` sequential nops on `rt`, timed inside one `block_on`.
fn percore_nops(rt: &percore::Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            Op::new(Nop).await.unwrap();
        }
        start.elapsed()
    })
}

/// `iters` rounds of `batch` nops in flight at once.
fn percore_nop_batches(rt: &percore::Runtime, iters: u64, batch: usize) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            for r in percore::join_all((0..batch).map(|_| Op::new(Nop))).await {
                r.unwrap();
            }
        }
        start.elapsed()
    })
}

/// The ceiling: one nop per `io_uring_enter`, no runtime at all.
fn raw_nops(ring: &mut IoUring, iters: u64, batch: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..batch {
            let sqe = opcode::Nop::new().build().user_data(7);
            // SAFETY: a nop references no memory.
            unsafe { ring.submission().push(&sqe).expect("sq has room") };
        }
        ring.submit_and_wait(batch).expect("io_uring_enter");
        let mut seen = 0;
        for cqe in ring.completion() {
            assert!(cqe.result() >= 0);
            seen += 1;
        }
        assert_eq!(seen, batch);
    }
    start.elapsed()
}

fn nop_round_trip(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore_nop", |b| {
        b.iter_custom(|iters| percore_nops(&rt, iters))
    });

    let mut ring = IoUring::new(64).expect("io_uring");
    g.bench_function("raw_uring_nop", |b| {
        b.iter_custom(|iters| raw_nops(&mut ring, iters, 1))
    });

    let rt = tokio_rt();
    g.bench_function("tokio_yield_now", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::yield_now().await;
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio_spawn_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::spawn(async {}).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
}

const BATCH: usize = 32;

fn nop_batch(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore_join_all", |b| {
        b.iter_custom(|iters| percore_nop_batches(&rt, iters, BATCH))
    });
    let mut ring = IoUring::new(64).expect("io_uring");
    g.bench_function("raw_uring", |b| {
        b.iter_custom(|iters| raw_nops(&mut ring, iters, BATCH))
    });
}

fn ring_flags(g: &mut BenchmarkGroup<'_, WallTime>) {
    use percore::Builder;
    let variants: [(&str, Builder); 5] = [
        ("defer_taskrun+reg_fd", Builder::new()),
        ("defer_taskrun", Builder::new().register_ring_fd(false)),
        ("coop_taskrun+reg_fd", Builder::new().defer_taskrun(false)),
        (
            "no_taskrun_flags+reg_fd",
            Builder::new().defer_taskrun(false).coop_taskrun(false),
        ),
        (
            "no_taskrun_flags",
            Builder::new()
                .defer_taskrun(false)
                .coop_taskrun(false)
                .register_ring_fd(false),
        ),
    ];
    for (name, builder) in variants {
        let rt = builder.build().expect("percore runtime");
        g.bench_function(name, |b| b.iter_custom(|iters| percore_nops(&rt, iters)));
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("nop_round_trip");
    g.throughput(Throughput::Elements(1));
    nop_round_trip(&mut g);
    g.finish();

    let mut g = c.benchmark_group("nop_batch_32");
    g.throughput(Throughput::Elements(BATCH as u64));
    nop_batch(&mut g);
    g.finish();

    let mut g = c.benchmark_group("ring_flags_nop");
    g.throughput(Throughput::Elements(1));
    ring_flags(&mut g);
    g.finish();
}

criterion_group! {
    name = driver;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(driver);
