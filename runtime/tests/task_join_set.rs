//! `percore::task::JoinSet`: spawn many `!Send` tasks, join them as they
//! finish, abort the rest on drop.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use percore::task::JoinSet;
use percore::time::sleep;

struct DropCount(Rc<Cell<u32>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[percore::test]
async fn join_next_yields_in_finishing_order() {
    let mut set = JoinSet::new();
    // Spawned in one order, finishing in another (1 ms steps, 40 ms apart).
    for i in [3u64, 1, 2, 0] {
        set.spawn(async move {
            sleep(Duration::from_millis(1 + 40 * i)).await;
            i
        });
    }
    assert_eq!(set.len(), 4);
    let mut order = Vec::new();
    while let Some(res) = set.join_next().await {
        order.push(res.unwrap());
    }
    assert_eq!(order, [0, 1, 2, 3]);
    assert!(set.is_empty());
    assert!(set.join_next().await.is_none());
}

#[percore::test]
async fn tasks_that_finish_before_the_first_join_are_all_returned() {
    let mut set = JoinSet::new();
    for i in 0..100u32 {
        set.spawn(async move { i });
    }
    // Let every task run to its end before joining.
    for _ in 0..3 {
        percore::yield_now().await;
    }
    let mut sum = 0;
    let mut n = 0;
    while let Some(res) = set.join_next().await {
        sum += res.unwrap();
        n += 1;
    }
    assert_eq!((n, sum), (100, 4950));
}

#[percore::test]
async fn not_send_futures_and_panics() {
    let local = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    let l = local.clone();
    set.spawn(async move {
        percore::yield_now().await; // an Rc held across an await
        l.set(l.get() + 1);
        1
    });
    set.spawn(async { panic!("task failed") });
    let mut ok = 0;
    let mut panicked = 0;
    while let Some(res) = set.join_next().await {
        match res {
            Ok(v) => ok += v,
            Err(e) => {
                assert_eq!(e.panic_message(), Some("task failed"));
                panicked += 1;
            }
        }
    }
    assert_eq!((ok, panicked, local.get()), (1, 1, 1));
}

#[percore::test]
async fn try_join_next_does_not_wait() {
    let mut set = JoinSet::new();
    assert!(set.try_join_next().is_none(), "empty");
    set.spawn(async { 1u8 });
    set.spawn(std::future::pending::<u8>());
    assert!(set.try_join_next().is_none(), "nothing has run yet");
    let mut got = None;
    for _ in 0..100 {
        if let Some(res) = set.try_join_next() {
            got = Some(res.unwrap());
            break;
        }
        percore::yield_now().await;
    }
    assert_eq!(got, Some(1));
    assert_eq!(set.len(), 1);
    assert!(set.try_join_next().is_none(), "the pending task stays");
}

#[percore::test]
async fn abort_all_then_join_gives_cancelled() {
    let drops = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    for _ in 0..5 {
        let d = DropCount(drops.clone());
        set.spawn(async move {
            let _d = d;
            sleep(Duration::from_secs(60)).await;
        });
    }
    percore::yield_now().await;
    set.abort_all();
    let mut cancelled = 0;
    while let Some(res) = set.join_next().await {
        assert!(res.unwrap_err().is_cancelled());
        cancelled += 1;
    }
    assert_eq!(cancelled, 5);
    assert_eq!(drops.get(), 5);
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn spawn_returns_an_abort_handle_for_that_task() {
    let mut set = JoinSet::new();
    let pending = set.spawn(std::future::pending::<u32>());
    set.spawn(async { 2 });
    pending.abort();
    let mut outcomes = Vec::new();
    while let Some(res) = set.join_next().await {
        outcomes.push(res.map_err(|e| e.is_cancelled()));
    }
    outcomes.sort();
    assert_eq!(outcomes, [Ok(2), Err(true)]);
    assert!(pending.is_finished());
}

#[percore::test]
async fn shutdown_aborts_and_waits_for_everything() {
    let drops = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    for _ in 0..3 {
        let d = DropCount(drops.clone());
        set.spawn(async move {
            let _d = d;
            std::future::pending::<()>().await;
        });
    }
    set.shutdown().await;
    assert!(set.is_empty());
    assert_eq!(
        drops.get(),
        3,
        "every future was dropped before shutdown returned"
    );
}

#[percore::test]
async fn dropping_the_set_aborts_the_rest() {
    let drops = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    let mut aborts = Vec::new();
    for _ in 0..4 {
        let d = DropCount(drops.clone());
        aborts.push(set.spawn(async move {
            let _d = d;
            sleep(Duration::from_secs(60)).await;
        }));
    }
    percore::yield_now().await;
    assert_eq!(drops.get(), 0);
    drop(set);
    for _ in 0..100 {
        if drops.get() == 4 {
            break;
        }
        percore::yield_now().await;
    }
    assert_eq!(drops.get(), 4);
    assert!(aborts.iter().all(|a| a.is_finished()));
}

#[percore::test]
async fn detach_all_lets_the_tasks_run_on() {
    let ran = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    for _ in 0..3 {
        let r = ran.clone();
        set.spawn(async move {
            sleep(Duration::from_millis(1)).await;
            r.set(r.get() + 1);
        });
    }
    set.detach_all();
    assert!(set.is_empty());
    drop(set);
    sleep(Duration::from_millis(20)).await;
    for _ in 0..100 {
        if ran.get() == 3 {
            break;
        }
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(ran.get(), 3);
}

#[percore::test]
async fn join_next_is_cancel_safe() {
    let mut set = JoinSet::new();
    set.spawn(async {
        sleep(Duration::from_millis(20)).await;
        7
    });
    // A join_next dropped before its task finished loses nothing.
    assert!(
        percore::time::timeout(Duration::from_millis(1), set.join_next())
            .await
            .is_err()
    );
    assert_eq!(set.len(), 1);
    assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
}

#[percore::test]
async fn ten_thousand_tasks_all_join() {
    // (That each join polls only the finished task's handle, not all of
    // them, is checked by the unit test in src/executor/join_set.rs.)
    let mut set = JoinSet::new();
    for i in 0..10_000u64 {
        set.spawn(async move {
            sleep(Duration::from_millis(i % 7)).await;
            i
        });
    }
    let mut sum = 0;
    let mut n = 0;
    while let Some(res) = set.join_next().await {
        sum += res.unwrap();
        n += 1;
    }
    assert_eq!((n, sum), (10_000, 10_000 * 9_999 / 2));
}

#[percore::test]
async fn join_all_collects_every_output() {
    let mut set = JoinSet::new();
    for i in 0..5u32 {
        set.spawn_local(async move {
            sleep(Duration::from_millis(u64::from(5 - i))).await;
            i
        });
    }
    let mut all = set.join_all().await;
    all.sort();
    assert_eq!(all, [0, 1, 2, 3, 4]);
}

#[percore::test]
async fn join_all_panics_on_a_failed_task_and_aborts_the_rest() {
    let drops = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    let d = DropCount(drops.clone());
    set.spawn(async move {
        let _d = d;
        std::future::pending::<()>().await;
    });
    set.spawn(async { panic!("broken") });
    let joined = percore::spawn(set.join_all());
    let err = joined.await.unwrap_err();
    assert_eq!(
        err.panic_message(),
        Some("JoinSet::join_all: task panicked: broken")
    );
    for _ in 0..100 {
        if drops.get() == 1 {
            break;
        }
        percore::yield_now().await;
    }
    assert_eq!(drops.get(), 1, "the pending task was aborted");
}
