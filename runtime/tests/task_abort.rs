//! `JoinHandle::abort(&self)`, `AbortHandle`, and `AbortOnDropHandle`
//! (asyncio's `wait_for`: a timeout that cancels the task).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use percore::task::{AbortHandle, AbortOnDropHandle, JoinHandle};
use percore::time::{sleep, timeout};

/// Sets a flag when dropped, to see whether a future was dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A task that sleeps for a minute holding a [`DropFlag`]; the flag and
/// whether it ran to its end.
fn long_task() -> (JoinHandle<()>, Rc<Cell<bool>>, Rc<Cell<bool>>) {
    let dropped = Rc::new(Cell::new(false));
    let finished = Rc::new(Cell::new(false));
    let (flag, f) = (DropFlag(dropped.clone()), finished.clone());
    let h = percore::spawn(async move {
        let _flag = flag;
        sleep(Duration::from_secs(60)).await;
        f.set(true);
    });
    (h, dropped, finished)
}

/// Yields until `cond` holds, at most 1000 times.
async fn yield_until(cond: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        percore::yield_now().await;
    }
    cond()
}

#[percore::test]
async fn abort_takes_a_shared_reference() {
    let (h, dropped, _) = long_task();
    let by_ref: &JoinHandle<()> = &h;
    by_ref.abort();
    by_ref.abort(); // twice is harmless
    assert!(h.await.unwrap_err().is_cancelled());
    assert!(dropped.get());
}

#[percore::test]
async fn abort_handle_aborts_a_running_task_and_reports_finished() {
    let (h, dropped, finished) = long_task();
    let abort: AbortHandle = h.abort_handle();
    percore::yield_now().await; // the task starts and parks on its sleep
    assert!(!abort.is_finished());
    assert!(!dropped.get());
    abort.clone().abort();
    assert!(h.await.unwrap_err().is_cancelled());
    assert!(dropped.get(), "the aborted task's future is dropped");
    assert!(!finished.get());
    assert!(abort.is_finished());
}

#[percore::test]
async fn abort_handle_outlives_a_dropped_join_handle() {
    let (h, dropped, _) = long_task();
    let abort = h.abort_handle();
    drop(h); // detached: it runs on
    percore::yield_now().await;
    assert!(!dropped.get());
    abort.abort();
    assert!(yield_until(|| abort.is_finished()).await);
    assert!(dropped.get());
}

#[percore::test]
async fn abort_handle_after_completion_keeps_the_output() {
    let h = percore::spawn(async { 9 });
    let abort = h.abort_handle();
    assert!(yield_until(|| abort.is_finished()).await);
    abort.abort();
    assert_eq!(h.await.unwrap(), 9);
}

#[percore::test]
async fn abort_handle_of_spawn_blocking_stops_waiting() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let h = percore::spawn_blocking(move || {
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        1
    });
    let abort = h.abort_handle();
    assert!(!abort.is_finished());
    abort.abort();
    assert!(abort.is_finished());
    assert!(h.await.unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();
}

#[percore::test]
async fn remote_abort_after_the_output_arrived_keeps_it() {
    let h = percore::spawn_blocking(|| 4);
    let abort = h.abort_handle();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !abort.is_finished() && std::time::Instant::now() < deadline {
        sleep(Duration::from_millis(1)).await;
    }
    h.abort();
    assert_eq!(h.await.unwrap(), 4);
}

#[percore::test]
async fn timeout_on_a_plain_handle_only_detaches_the_task() {
    let (h, dropped, _) = long_task();
    let abort = h.abort_handle();
    assert!(timeout(Duration::from_millis(5), h).await.is_err());
    for _ in 0..10 {
        percore::yield_now().await;
    }
    assert!(!dropped.get(), "the task runs on after the timeout");
    assert!(!abort.is_finished());
    abort.abort();
}

#[percore::test]
async fn timeout_on_abort_on_drop_cancels_the_task() {
    let (h, dropped, finished) = long_task();
    let abort = h.abort_handle();
    assert!(
        timeout(Duration::from_millis(5), h.abort_on_drop())
            .await
            .is_err()
    );
    assert!(
        yield_until(|| dropped.get()).await,
        "the task's future is dropped once the timeout drops its handle"
    );
    assert!(!finished.get());
    assert!(abort.is_finished());
    assert_eq!(percore::stats().timers, 0, "its sleep left the wheel");
}

#[percore::test]
async fn abort_on_drop_in_time_gives_the_output() {
    let guard = AbortOnDropHandle::new(percore::spawn(async {
        sleep(Duration::from_millis(1)).await;
        "done"
    }));
    let out = timeout(Duration::from_secs(30), guard).await;
    assert_eq!(out.unwrap().unwrap(), "done");
}

#[percore::test]
async fn detached_abort_on_drop_no_longer_aborts() {
    let (h, dropped, _) = long_task();
    let abort = h.abort_handle();
    let plain = h.abort_on_drop().detach();
    drop(plain);
    for _ in 0..10 {
        percore::yield_now().await;
    }
    assert!(!dropped.get());
    abort.abort();
    assert!(yield_until(|| dropped.get()).await);
}

/// An abort is seen by the task's next poll however many other aborts are
/// outstanding: requested, seen, or dropped unseen when a runtime shuts
/// down (a poll only looks at its task's abort flag while some abort on
/// its thread is pending, so that count must stay exact).
#[test]
fn aborts_are_seen_across_tasks_and_runtimes_on_one_thread() {
    // Two aborts requested; neither task polled again before its runtime
    // ends, so both are dropped with their abort unseen.
    let (dropped_a, dropped_b) = percore::run(async {
        let (a, dropped_a, _) = long_task();
        let (b, dropped_b, _) = long_task();
        percore::yield_now().await; // both park on their sleeps
        a.abort();
        b.abort();
        assert!(!dropped_a.get() && !dropped_b.get());
        (dropped_a, dropped_b) // the handles are dropped: nobody awaits them
    });
    assert!(dropped_a.get() && dropped_b.get(), "dropped at shutdown");
    // A later runtime on the same thread: aborts, one after the other and
    // two at once, each still ends its task.
    percore::run(async {
        for _ in 0..3 {
            let (h, dropped, finished) = long_task();
            percore::yield_now().await;
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
            assert!(dropped.get() && !finished.get());
        }
        let (a, dropped_a, _) = long_task();
        let (b, dropped_b, _) = long_task();
        percore::yield_now().await;
        a.abort();
        b.abort();
        assert!(b.await.unwrap_err().is_cancelled());
        assert!(a.await.unwrap_err().is_cancelled());
        assert!(dropped_a.get() && dropped_b.get());
        // An abort after the task finished changes nothing for the next one.
        let done = percore::spawn(async { 7 });
        assert!(!done.abort_handle().is_finished());
        percore::yield_now().await;
        done.abort(); // it finished: nothing to count
        let (h, _, finished) = long_task();
        percore::yield_now().await;
        assert!(!finished.get());
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert_eq!(done.await.unwrap(), 7);
    });
}
