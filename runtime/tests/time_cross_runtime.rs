//! Timers moved between runtimes: a `Sleep` (or `Timeout`) is `Send`, so it
//! can be registered on one runtime and then polled or dropped while another
//! runtime is current. A timer key names an entry of one wheel; it must never
//! reach the entry with the same index and generation in another runtime's
//! wheel (issue 12, item 4).

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use percore::Runtime;
use percore::time::{sleep, timeout};
use support::{poll_once, wait_until};

/// `b`'s own timer: a task sleeping 20 ms, registered before the foreign
/// future arrives. On a fresh wheel it takes the same entry (index 0,
/// generation 0) as the foreign timer took on its own fresh wheel.
async fn own_timer_then<T>(then: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let own = percore::spawn(async move {
        sleep(Duration::from_millis(20)).await;
        start.elapsed()
    });
    assert!(wait_until(Duration::from_secs(5), || percore::stats().timers == 1).await);
    let out = then.await;
    let took = timeout(Duration::from_secs(10), own)
        .await
        .expect("this runtime's 20 ms sleep never fired")
        .unwrap();
    (out, took)
}

/// Registers `foreign` on runtime `a`, then drops it while runtime `b` runs
/// its own timer in the same wheel entry: `b`'s timer must still fire.
fn drop_under_another_runtime<F: Future + Unpin + Send>(foreign: F) {
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let mut foreign = foreign;
    a.block_on(async { assert!(poll_once(&mut foreign).await.is_pending()) });
    assert_eq!(a.block_on(async { percore::stats().timers }), 1);
    let ((), took) = b.block_on(own_timer_then(async move {
        drop(foreign);
        assert_eq!(percore::stats().timers, 1, "b's own timer was removed");
    }));
    assert!(took >= Duration::from_millis(20), "fired early: {took:?}");
}

#[test]
fn foreign_sleep_dropped_does_not_remove_this_runtimes_timer() {
    drop_under_another_runtime(sleep(Duration::from_secs(60)));
}

#[test]
fn foreign_timeout_dropped_does_not_remove_this_runtimes_timer() {
    drop_under_another_runtime(timeout(
        Duration::from_secs(60),
        std::future::pending::<()>(),
    ));
}

#[test]
fn foreign_sleep_dropped_on_another_thread_does_not_remove_its_timer() {
    // The scenario across threads: registered on a runtime on one
    // thread, sent to a thread where another runtime runs, dropped there.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        let a = Runtime::new().unwrap();
        let mut foreign = sleep(Duration::from_secs(60));
        a.block_on(async { assert!(poll_once(&mut foreign).await.is_pending()) });
        tx.send(foreign).unwrap();
        // Keep `a` (and the entry the sleep left in its wheel) alive until
        // the other thread is done.
        done_rx.recv().unwrap();
    });
    let foreign = rx.recv().unwrap();
    let ((), took) = percore::run(own_timer_then(async move {
        drop(foreign);
        assert_eq!(
            percore::stats().timers,
            1,
            "this runtime's timer was removed"
        );
    }));
    assert!(took >= Duration::from_millis(20), "fired early: {took:?}");
    done_tx.send(()).unwrap();
    first.join().unwrap();
}

#[test]
fn foreign_sleep_polled_registers_here_and_leaves_this_runtimes_timer_alone() {
    // Polled under `b`, the sleep registers in `b`'s wheel: it ends at its
    // own deadline, not when `b`'s timer in the same entry fires, and it
    // does not take that timer's waker.
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let mut foreign = sleep(Duration::from_millis(40));
    let deadline = foreign.deadline();
    a.block_on(async { assert!(poll_once(&mut foreign).await.is_pending()) });
    let (ended, took) = b.block_on(own_timer_then(async {
        timeout(Duration::from_secs(10), &mut foreign)
            .await
            .expect("the moved sleep never ended");
        assert!(foreign.is_elapsed());
        Instant::now()
    }));
    assert!(ended >= deadline, "the moved sleep ended early");
    assert!(took >= Duration::from_millis(20), "fired early: {took:?}");
    // Back on `a`: its old entry is left alone (it only wakes a stale
    // waker when due), and the finished sleep stays finished.
    a.block_on(async move {
        assert!(foreign.is_elapsed());
        (&mut foreign).await;
    });
}

#[test]
fn foreign_sleep_reset_here_moves_neither_this_runtimes_timer_nor_its_old_entry() {
    // Reset earlier under `b`: the key names `a`'s entry, which has the same
    // index and generation as `b`'s own timer; `b`'s timer must not move.
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let mut foreign = sleep(Duration::from_secs(60));
    a.block_on(async { assert!(poll_once(&mut foreign).await.is_pending()) });
    let (ended, took) = b.block_on(own_timer_then(async {
        let deadline = Instant::now() + Duration::from_millis(1);
        foreign.reset(deadline);
        assert_eq!(percore::stats().timers, 1, "b's own timer only");
        timeout(Duration::from_secs(10), &mut foreign)
            .await
            .expect("the moved sleep never ended");
        Instant::now() >= deadline
    }));
    assert!(ended, "the moved sleep ended early");
    assert!(took >= Duration::from_millis(20), "fired early: {took:?}");
    assert_eq!(a.block_on(async { percore::stats().timers }), 1);

    // Reset later under `b`, then polled there: registers in `b`'s wheel,
    // and dropping it removes that entry, not `a`'s.
    let mut foreign = sleep(Duration::from_secs(60));
    a.block_on(async { assert!(poll_once(&mut foreign).await.is_pending()) });
    assert_eq!(a.block_on(async { percore::stats().timers }), 2);
    b.block_on(async move {
        foreign.reset(Instant::now() + Duration::from_secs(120));
        assert!(poll_once(&mut foreign).await.is_pending());
        assert_eq!(percore::stats().timers, 1);
        drop(foreign);
        assert_eq!(percore::stats().timers, 0);
    });
    assert_eq!(a.block_on(async { percore::stats().timers }), 2);
}
