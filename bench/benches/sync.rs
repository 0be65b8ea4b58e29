//! `percore::sync` (single-core, no atomics) against `tokio::sync`, both
//! running on a percore runtime, with the same body in each pair.
//!
//! - `mutex_lock`: uncontended `lock().await` and unlock;
//! - `semaphore_acquire`: uncontended `acquire().await` and release;
//! - `notify_round_trip`: two tasks pass the turn back and forth through
//!   two `Notify`s (each round trip: two `notify_one`, two wake-ups, two
//!   task switches);
//! - `oneshot`: create a channel, send, await the receiver;
//! - `mpsc_1000`: a producer task sends 1000 messages through a channel of
//!   capacity 64 to the receiving task.
//!
//! Each measurement runs its whole loop inside one `block_on`
//! (`iter_custom`), so runtime entry is not part of the cost.
//!
//! `cargo bench -p percore-bench --bench sync`

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn rt() -> percore::Runtime {
    percore::Runtime::new().expect("percore runtime")
}

fn mutex_lock(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_lock");
    g.throughput(Throughput::Elements(1));
    let rt = rt();
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let m = percore::sync::Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *black_box(&m).lock().await += 1;
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let m = tokio::sync::Mutex::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *black_box(&m).lock().await += 1;
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn semaphore_acquire(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_acquire");
    g.throughput(Throughput::Elements(1));
    let rt = rt();
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let s = percore::sync::Semaphore::new(4);
                let start = Instant::now();
                for _ in 0..iters {
                    drop(black_box(black_box(&s).acquire().await.unwrap()));
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let s = tokio::sync::Semaphore::new(4);
                let start = Instant::now();
                for _ in 0..iters {
                    drop(black_box(black_box(&s).acquire().await.unwrap()));
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn notify_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify_round_trip");
    g.throughput(Throughput::Elements(1));
    let rt = rt();
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let ping = Rc::new(percore::sync::Notify::new());
                let pong = Rc::new(percore::sync::Notify::new());
                let (p, q) = (ping.clone(), pong.clone());
                let other = percore::task::spawn_local(async move {
                    for _ in 0..iters {
                        p.notified().await;
                        q.notify_one();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    ping.notify_one();
                    pong.notified().await;
                }
                let elapsed = start.elapsed();
                other.await.unwrap();
                elapsed
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let ping = Rc::new(tokio::sync::Notify::new());
                let pong = Rc::new(tokio::sync::Notify::new());
                let (p, q) = (ping.clone(), pong.clone());
                let other = percore::task::spawn_local(async move {
                    for _ in 0..iters {
                        p.notified().await;
                        q.notify_one();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    ping.notify_one();
                    pong.notified().await;
                }
                let elapsed = start.elapsed();
                other.await.unwrap();
                elapsed
            })
        })
    });
    g.finish();
}

fn oneshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("oneshot");
    g.throughput(Throughput::Elements(1));
    let rt = rt();
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let (tx, rx) = percore::sync::oneshot::channel();
                    tx.send(black_box(i)).unwrap();
                    black_box(rx.await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tx.send(black_box(i)).unwrap();
                    black_box(rx.await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

const MESSAGES: u64 = 1000;
const CAPACITY: usize = 64;

fn mpsc_1000(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpsc_1000");
    g.throughput(Throughput::Elements(MESSAGES));
    let rt = rt();
    g.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (tx, mut rx) = percore::sync::mpsc::channel(CAPACITY);
                    let producer = percore::task::spawn_local(async move {
                        for i in 0..MESSAGES {
                            tx.send(i).await.unwrap();
                        }
                    });
                    let mut sum = 0;
                    while let Some(i) = rx.recv().await {
                        sum += i;
                    }
                    producer.await.unwrap();
                    total += start.elapsed();
                    assert_eq!(sum, MESSAGES * (MESSAGES - 1) / 2);
                }
                total
            })
        })
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (tx, mut rx) = tokio::sync::mpsc::channel(CAPACITY);
                    let producer = percore::task::spawn_local(async move {
                        for i in 0..MESSAGES {
                            tx.send(i).await.unwrap();
                        }
                    });
                    let mut sum = 0;
                    while let Some(i) = rx.recv().await {
                        sum += i;
                    }
                    producer.await.unwrap();
                    total += start.elapsed();
                    assert_eq!(sum, MESSAGES * (MESSAGES - 1) / 2);
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    mutex_lock,
    semaphore_acquire,
    notify_round_trip,
    oneshot,
    mpsc_1000
);
criterion_main!(benches);
