//! `spawn_blocking`: results, panics, many jobs, and waking a parked core.

mod support;

use std::time::{Duration, Instant};

use support::watchdog;

#[test]
fn returns_the_closure_result() {
    let _dog = watchdog("returns_the_closure_result", Duration::from_secs(30));
    percore::run(async {
        let main_thread = std::thread::current().id();
        let (v, tid) = percore::spawn_blocking(|| (6 * 7, std::thread::current().id()))
            .await
            .unwrap();
        assert_eq!(v, 42);
        assert_ne!(tid, main_thread, "runs on a pool thread");
    });
}

#[test]
fn panic_becomes_join_error() {
    let _dog = watchdog("panic_becomes_join_error", Duration::from_secs(30));
    percore::run(async {
        let err = percore::spawn_blocking(|| -> u8 { panic!("blocking {}", "boom") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("blocking boom"));
        // The pool survives the panic.
        assert_eq!(percore::spawn_blocking(|| 1).await.unwrap(), 1);
    });
}

#[test]
fn hundred_concurrent_jobs() {
    let _dog = watchdog("hundred_concurrent_jobs", Duration::from_secs(60));
    percore::run(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                percore::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    i * 2
                })
            })
            .collect();
        let out: Vec<u64> = percore::join_all(handles)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        // They overlapped: 100 x 20 ms one after the other would be 2 s.
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn wakes_a_core_parked_with_nothing_else_to_do() {
    let _dog = watchdog("wakes_a_core_parked", Duration::from_secs(30));
    percore::run(async {
        for _ in 0..20 {
            let start = Instant::now();
            // No timer, no I/O: the core parks in io_uring_enter with no
            // timeout, and only the pool thread's wake-up can end that.
            let v = percore::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(50));
                7
            })
            .await
            .unwrap();
            assert_eq!(v, 7);
            assert!(start.elapsed() >= Duration::from_millis(50));
            // Nothing else could have woken it: no timer was pending.
            assert_eq!(percore::stats().timers, 0);
        }
    });
}

#[test]
fn dropped_handle_detaches_the_job() {
    let _dog = watchdog("dropped_handle_detaches", Duration::from_secs(30));
    let (tx, rx) = std::sync::mpsc::channel();
    percore::run(async move {
        drop(percore::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.send("ran").unwrap();
        }));
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("ran"));
}

#[test]
fn jobs_from_several_runtimes_at_once() {
    let _dog = watchdog("several_runtimes", Duration::from_secs(60));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                percore::run(async move {
                    let hs: Vec<_> = (0..25u64)
                        .map(|i| percore::spawn_blocking(move || t * 100 + i))
                        .collect();
                    percore::join_all(hs)
                        .await
                        .into_iter()
                        .map(Result::unwrap)
                        .sum::<u64>()
                })
            })
        })
        .collect();
    for (t, th) in threads.into_iter().enumerate() {
        let t = t as u64;
        assert_eq!(
            th.join().unwrap(),
            (0..25).map(|i| t * 100 + i).sum::<u64>()
        );
    }
}
