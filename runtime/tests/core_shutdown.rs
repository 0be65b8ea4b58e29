//! Graceful shutdown of a multi-core `Runtime::run_on_every_core`: requests reach every
//! core, work in flight finishes within the grace period, the rest is cut.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use percore::{Either, Runtime, select};

fn two_cores(grace: Duration) -> Runtime {
    Runtime::builder()
        .cores(2)
        .pin(false)
        .shutdown_grace(grace)
        .build()
        .unwrap()
}

/// Counts drops, to see which tasks were cut rather than finished.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_request_from_one_core_reaches_every_core() {
    let out = two_cores(Duration::from_secs(5))
        .run_on_every_core(|core| async move {
            if core == 1 {
                percore::time::sleep(Duration::from_millis(20)).await;
                percore::shutdown::request();
            }
            percore::shutdown::requested().await;
            percore::shutdown::is_requested()
        })
        .unwrap();
    assert_eq!(out, [true, true]);
}

#[test]
fn a_request_from_another_thread_reaches_every_core() {
    let rt = two_cores(Duration::from_secs(5));
    let handle = rt.shutdown_handle();
    let requester = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.request();
    });
    let out = rt
        .run_on_every_core(|core| async move {
            percore::shutdown::requested().await;
            core
        })
        .unwrap();
    requester.join().unwrap();
    assert_eq!(out, [0, 1]);
}

#[test]
fn tasks_in_flight_finish_before_run_returns() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let out = two_cores(Duration::from_secs(30))
        .run_on_every_core(move |core| {
            let finished = f.clone();
            async move {
                // Three "connections" per core, each busy for a while after
                // the request; the accept loop (this future) returns at once.
                for i in 0..3u64 {
                    let finished = finished.clone();
                    percore::spawn(async move {
                        percore::shutdown::requested().await;
                        percore::time::sleep(Duration::from_millis(20 * (i + 1))).await;
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
                if core == 0 {
                    percore::shutdown::request();
                }
                percore::shutdown::requested().await;
                core
            }
        })
        .unwrap();
    assert_eq!(out, [0, 1]);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        6,
        "every task in flight finished"
    );
}

#[test]
fn tasks_still_running_at_the_deadline_are_dropped() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (d, f) = (dropped.clone(), finished.clone());
    let started = Instant::now();
    // A grace period long enough for a core of a paused machine to start
    // and run its quick task: the slow tasks are cut at its end either way.
    let out = two_cores(Duration::from_secs(2))
        .run_on_every_core(move |core| {
            let (dropped, finished) = (d.clone(), f.clone());
            async move {
                // One quick task, one that would outlive any grace period.
                let quick = finished.clone();
                percore::spawn(async move {
                    percore::shutdown::requested().await;
                    quick.fetch_add(1, Ordering::SeqCst);
                });
                percore::spawn(async move {
                    let _guard = OnDrop(dropped);
                    percore::time::sleep(Duration::from_secs(3600)).await;
                    finished.fetch_add(100, Ordering::SeqCst);
                });
                if core == 1 {
                    percore::shutdown::request();
                }
                percore::shutdown::requested().await;
                core
            }
        })
        .unwrap();
    assert_eq!(out, [0, 1]);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        2,
        "only the quick tasks finished"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the slow tasks were dropped"
    );
    // Bounded by the grace period, not by the hour-long sleep.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_core_that_ignores_the_request_is_cut_and_named() {
    let err = two_cores(Duration::from_millis(100))
        .run_on_every_core(|core| async move {
            if core == 0 {
                percore::shutdown::request();
                return;
            }
            // Never looks at the request.
            percore::time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap_err();
    assert_eq!(err.core, 1);
    assert!(err.message.contains("grace period"), "{err}");
}

#[test]
fn a_second_request_ends_the_grace_period_at_once() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let started = Instant::now();
    let out = two_cores(Duration::from_secs(3600))
        .run_on_every_core(move |core| {
            let dropped = d.clone();
            async move {
                percore::spawn(async move {
                    let _guard = OnDrop(dropped);
                    percore::time::sleep(Duration::from_secs(3600)).await;
                });
                if core == 0 {
                    percore::shutdown::request();
                    percore::time::sleep(Duration::from_millis(20)).await;
                    percore::shutdown::request();
                }
                percore::shutdown::requested().await;
            }
        })
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() < Duration::from_secs(600));
}

#[test]
fn an_accept_style_loop_stops_taking_work_after_the_request() {
    // A loop that takes "work" from a channel until shutdown; work sent after
    // the request is not taken.
    let out = two_cores(Duration::from_secs(5))
        .run_on_every_core(|core| async move {
            let (tx, mut rx) = percore::channel::channel::<u32>(64);
            let taken = Rc::new(std::cell::Cell::new(0));
            let t = taken.clone();
            let seen = taken.clone();
            let producer = percore::spawn(async move {
                for i in 0..10 {
                    tx.send(i).await.unwrap();
                    percore::time::sleep(Duration::from_millis(1)).await;
                }
                if core == 0 {
                    // Once this core's loop has taken all ten.
                    while seen.get() < 10 {
                        percore::yield_now().await;
                    }
                    percore::shutdown::request();
                }
                // Work arriving while shutting down (on core 1, once core
                // 0's request has reached it).
                percore::shutdown::requested().await;
                let _ = tx.try_send(99);
            });
            // The request first: `select` polls left to right, so a request
            // and new work arriving together end the loop.
            while let Either::Right(Some(_)) =
                select(percore::shutdown::requested(), rx.recv()).await
            {
                t.set(t.get() + 1);
            }
            producer.await.unwrap();
            taken.get()
        })
        .unwrap();
    // Each core took its ten messages (or fewer if the other core's request
    // came first), never the one sent after the request.
    assert!(out.iter().all(|&n| n <= 10), "{out:?}");
    assert_eq!(out[0], 10, "core 0 requested after its own ten");
}
