//! Timer micro-benchmarks, percore's wheel side by side with tokio's.
//!
//! `timer_insert_cancel`: create a sleep, poll it once (it enters the
//! wheel), drop it (it leaves). `sleep_round_trip`: a whole sleep through
//! the loop, for 0 and 1 ms.
//!
//! `cargo bench -p percore-bench --bench time`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::Poll;
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

/// Polls `fut` once with the current task's context; returns whether it was pending.
async fn poll_once<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
}

fn insert_cancel(g: &mut BenchmarkGroup<'_, WallTime>) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let s = percore::time::sleep(
                        Duration::from_secs(1) + Duration::from_micros(i % 1000),
                    );
                    assert!(poll_once(s).await);
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
                for i in 0..iters {
                    let s = tokio::time::sleep(
                        Duration::from_secs(1) + Duration::from_micros(i % 1000),
                    );
                    assert!(poll_once(s).await);
                }
                start.elapsed()
            })
        })
    });
}

fn sleep_round_trip(g: &mut BenchmarkGroup<'_, WallTime>, dur: Duration) {
    let rt = percore::Runtime::new().expect("percore runtime");
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    percore::time::sleep(black_box(dur)).await;
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
                    tokio::time::sleep(black_box(dur)).await;
                }
                start.elapsed()
            })
        })
    });
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer_insert_cancel");
    g.throughput(Throughput::Elements(1));
    insert_cancel(&mut g);
    g.finish();

    let mut g = c.benchmark_group("sleep_0ms_round_trip");
    g.throughput(Throughput::Elements(1));
    sleep_round_trip(&mut g, Duration::ZERO);
    g.finish();

    // ~1 ms per iteration: fewer samples keep the run short.
    let mut g = c.benchmark_group("sleep_1ms_round_trip");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    sleep_round_trip(&mut g, Duration::from_millis(1));
    g.finish();
}

criterion_group! {
    name = time;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(time);
