//! Spawning, joining, aborting and detaching tasks; fairness; join helpers.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use percore::op::{Nop, Op};
use percore::time::sleep;
use percore::{Either, JoinError};

/// Sets a flag when dropped, to see whether a future was dropped.
struct DropGuard(Rc<Cell<bool>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn spawn_and_join_returns_output() {
    let out = percore::run(async {
        let a = percore::spawn(async { 1 });
        let b = percore::spawn(async {
            sleep(Duration::from_millis(1)).await;
            String::from("two")
        });
        (a.await.unwrap(), b.await.unwrap())
    });
    assert_eq!(out, (1, "two".to_string()));
}

#[percore::test]
async fn spawned_task_runs_without_being_awaited() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = percore::spawn(async move { r.set(true) });
    assert!(!ran.get(), "spawn must not run the task inline");
    percore::yield_now().await;
    assert!(ran.get(), "the task ran once the caller yielded");
    assert!(h.is_finished());
}

#[test]
fn nested_spawn() {
    let total = percore::run(async {
        let outer = percore::spawn(async {
            let inner: Vec<_> = (0..10u32)
                .map(|i| percore::spawn(async move { i * i }))
                .collect();
            let mut sum = 0;
            for h in inner {
                sum += h.await.unwrap();
            }
            sum
        });
        outer.await.unwrap()
    });
    assert_eq!(total, (0..10u32).map(|i| i * i).sum::<u32>());
}

#[percore::test]
async fn abort_cancels_and_drops_the_future() {
    let dropped = Rc::new(Cell::new(false));
    let progressed = Rc::new(Cell::new(false));
    let (d, p) = (dropped.clone(), progressed.clone());
    let h = percore::spawn(async move {
        let _guard = DropGuard(d);
        sleep(Duration::from_secs(60)).await;
        p.set(true);
    });
    // Let the task start and park on its sleep.
    percore::yield_now().await;
    assert_eq!(percore::stats().timers, 1);
    assert!(!dropped.get());
    h.abort();
    let err = h.await.unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert!(matches!(err, JoinError::Cancelled));
    assert!(dropped.get(), "an aborted task's future is dropped");
    assert!(!progressed.get());
    // Its sleep left the wheel with it.
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn abort_before_first_poll_never_runs_the_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = percore::spawn(async move { r.set(true) });
    h.abort();
    assert!(h.await.unwrap_err().is_cancelled());
    assert!(!ran.get());
}

#[percore::test]
async fn abort_after_completion_keeps_the_output() {
    let h = percore::spawn(async { 5 });
    percore::yield_now().await;
    assert!(h.is_finished());
    h.abort();
    assert_eq!(h.await.unwrap(), 5);
}

#[percore::test]
async fn dropping_the_handle_detaches_the_task() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let h = percore::spawn(async move {
        sleep(Duration::from_millis(5)).await;
        d.set(true);
    });
    drop(h);
    // Waited for, bounded, rather than one longer sleep: on a paused
    // machine both timers may fire in one tick, this task's first.
    let finished = support::wait_until(Duration::from_secs(10), || done.get()).await;
    assert!(finished, "a detached task still runs to completion");
}

#[test]
fn tasks_left_running_continue_on_the_next_block_on() {
    let rt = percore::Runtime::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    // Returning a JoinHandle out of block_on is the point here.
    #[allow(clippy::async_yields_async)]
    let h = rt.block_on(async move {
        percore::spawn(async move {
            for _ in 0..3 {
                sleep(Duration::from_millis(2)).await;
                c.set(c.get() + 1);
            }
            "finished"
        })
    });
    assert!(count.get() < 3);
    assert_eq!(rt.block_on(h).unwrap(), "finished");
    assert_eq!(count.get(), 3);
}

#[test]
fn runtime_drop_cancels_pending_tasks() {
    let dropped = Rc::new(Cell::new(false));
    let rt = percore::Runtime::new().unwrap();
    let d = dropped.clone();
    #[allow(clippy::async_yields_async)]
    let h = rt.block_on(async move {
        let h = percore::spawn(async move {
            let _g = DropGuard(d);
            sleep(Duration::from_secs(60)).await;
        });
        percore::yield_now().await;
        h
    });
    assert!(!dropped.get());
    drop(rt);
    assert!(dropped.get(), "runtime drop drops the future of every task");
    // The handle outlives the runtime and reports the task as cancelled.
    let rt2 = percore::Runtime::new().unwrap();
    assert!(rt2.block_on(h).unwrap_err().is_cancelled());
}

#[test]
fn yield_now_interleaves_two_tasks() {
    let log = percore::run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mk = |name: char| {
            let log = log.clone();
            percore::spawn(async move {
                for _ in 0..5 {
                    log.borrow_mut().push(name);
                    percore::yield_now().await;
                }
            })
        };
        let (a, b) = (mk('a'), mk('b'));
        a.await.unwrap();
        b.await.unwrap();
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    assert_eq!(log.iter().collect::<String>(), "ababababab");
}

#[test]
fn join_all_keeps_input_order() {
    let out = percore::run(async {
        let handles: Vec<_> = (0..8u64)
            .map(|i| {
                percore::spawn(async move {
                    sleep(Duration::from_millis(8 - i)).await;
                    i
                })
            })
            .collect();
        percore::join_all(handles).await
    });
    let values: Vec<u64> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(values, (0..8).collect::<Vec<_>>());
}

#[percore::test]
async fn join_all_of_plain_futures_and_of_nothing() {
    let futs = (0..4).map(|i| async move {
        Op::new(Nop).await.unwrap();
        i * 2
    });
    assert_eq!(percore::join_all(futs).await, [0, 2, 4, 6]);
    let none: Vec<std::future::Ready<u8>> = Vec::new();
    assert!(percore::join_all(none).await.is_empty());
}

#[percore::test]
async fn select_returns_first_and_drops_the_loser() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let slow = async move {
        let _g = DropGuard(d);
        sleep(Duration::from_secs(60)).await;
        "slow"
    };
    let fast = async {
        sleep(Duration::from_millis(2)).await;
        "fast"
    };
    assert_eq!(percore::select(slow, fast).await, Either::Right("fast"));
    assert!(dropped.get());
    assert_eq!(percore::stats().timers, 0);
    // On a tie the first wins.
    assert_eq!(
        percore::select(async { 1 }, async { 2 }).await,
        Either::Left(1)
    );
}

#[percore::test]
async fn race_returns_index_of_the_first() {
    // The losers are seconds away, so a loaded machine that stalls the
    // loop for a few ms cannot make two timers fire in the same tick.
    let sleeps = [4000u64, 2500, 2, 3000].map(|ms| async move {
        sleep(Duration::from_millis(ms)).await;
        ms
    });
    assert_eq!(percore::race(sleeps).await, (2, 2));
    assert_eq!(percore::stats().timers, 0, "the losers' timers are gone");
}

#[test]
#[should_panic(expected = "race needs at least one future")]
fn race_of_nothing_panics() {
    percore::run(async {
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        percore::race(none).await
    });
}

#[test]
fn ten_thousand_tasks_each_doing_a_nop() {
    const N: usize = 10_000;
    percore::run(async {
        let before = percore::stats();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                percore::spawn(async move {
                    Op::new(Nop).await.unwrap();
                    i
                })
            })
            .collect();
        let out = percore::join_all(handles).await;
        assert_eq!(out.len(), N);
        assert!(out.into_iter().enumerate().all(|(i, r)| r.unwrap() == i));
        let after = percore::stats();
        assert_eq!(after.executor.spawned - before.executor.spawned, N as u64);
        assert!(after.driver.completed - before.driver.completed >= N as u64);
        assert_eq!(after.in_flight, 0);
    });
}

#[test]
fn ten_thousand_tasks_each_sleeping() {
    const N: usize = 10_000;
    percore::run(async {
        let start = std::time::Instant::now();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                percore::spawn(async move {
                    sleep(Duration::from_millis(1 + (i % 10) as u64)).await;
                })
            })
            .collect();
        for r in percore::join_all(handles).await {
            r.unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert_eq!(percore::stats().timers, 0);
    });
}
