//! Executor micro-benchmarks, percore side by side with tokio's
//! current-thread runtime running the same body.
//!
//! `spawn_join_*` and `yield_now` use the default task queue only, the
//! path that must not pay for task queues; `spawn_join_100/percore-queues`
//! spawns into a second queue, so every pass hands out turns and times each
//! poll; `need_yield` is the check a long CPU loop makes.
//!
//! Each measurement runs its whole loop inside one `block_on`
//! (`iter_custom`), so runtime entry is not part of the cost.
//!
//! `cargo bench -p percore-bench --bench executor`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn spawn_join_empty(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    percore::spawn(async {}).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
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

const BATCH: u64 = 100;

fn spawn_join_100(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..BATCH)
                        .map(|i| percore::spawn(async move { black_box(i) }))
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..BATCH)
                        .map(|i| tokio::task::spawn(async move { black_box(i) }))
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
}

/// The same body as `spawn_join_100`'s percore one, into a task queue of
/// its own: the cost of scheduling classes.
fn spawn_join_100_queues(g: &mut BenchmarkGroup<'_, WallTime>) {
    use percore::task::{Latency, TaskQueue};
    let rt = percore::Runtime::new().expect("percore runtime");
    let queue = rt.block_on(async { TaskQueue::new("bench", 100, Latency::NotImportant) });
    g.bench_function("percore-queues", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..BATCH)
                        .map(|i| queue.spawn(async move { black_box(i) }))
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
}

fn need_yield(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                percore::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if black_box(percore::task::need_yield()) {
                            percore::yield_now().await;
                        }
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
}

fn yield_now(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                // In a task: the main future is woken through its own path.
                percore::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        percore::yield_now().await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    let rt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                tokio::task::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join_empty");
    g.throughput(Throughput::Elements(1));
    spawn_join_empty(&mut g);
    g.finish();

    let mut g = c.benchmark_group("spawn_join_100");
    g.throughput(Throughput::Elements(BATCH));
    spawn_join_100(&mut g);
    spawn_join_100_queues(&mut g);
    g.finish();

    let mut g = c.benchmark_group("yield_now");
    g.throughput(Throughput::Elements(1));
    yield_now(&mut g);
    g.finish();

    let mut g = c.benchmark_group("need_yield");
    g.throughput(Throughput::Elements(1));
    need_yield(&mut g);
    g.finish();
}

criterion_group! {
    name = executor;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(executor);
