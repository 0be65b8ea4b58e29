//! `percore::select!`: biased and fair order, `else`, preconditions,
//! pattern mismatches, borrowed state and `!Send` futures.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use percore::time::sleep;

/// Pending on its first poll (waking itself), ready on the second.
struct ReadyOnSecondPoll<T>(Option<T>, bool);

impl<T: Unpin> Future for ReadyOnSecondPoll<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.1 {
            Poll::Ready(self.0.take().unwrap())
        } else {
            self.1 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[percore::test]
async fn biased_polls_in_written_order() {
    for _ in 0..50 {
        let polled = RefCell::new(Vec::new());
        let out = percore::select! {
            biased;
            v = async { polled.borrow_mut().push(1); 1 } => v,
            v = async { polled.borrow_mut().push(2); 2 } => v,
            v = async { polled.borrow_mut().push(3); 3 } => v,
        };
        assert_eq!(out, 1, "every branch is ready: the first one wins");
        assert_eq!(*polled.borrow(), [1], "the others were not polled");
    }
}

#[percore::test]
async fn unbiased_is_fair() {
    let mut wins = [0u32; 3];
    for _ in 0..300 {
        let i = percore::select! {
            () = async {} => 0,
            () = async {} => 1,
            () = async {} => 2,
        };
        wins[i] += 1;
    }
    // Each branch should win about 100 times; 20 is far out in the tail.
    assert!(wins.iter().all(|&w| w >= 20), "unfair: {wins:?}");
}

#[percore::test]
async fn pending_branches_lose_to_the_ready_one_and_are_dropped() {
    let dropped = Rc::new(Cell::new(0));
    struct CountDrop(Rc<Cell<u32>>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let (d1, d2) = (CountDrop(dropped.clone()), CountDrop(dropped.clone()));
    let out = percore::select! {
        () = async move { let _d = d1; sleep(Duration::from_secs(60)).await } => "sleep",
        v = ReadyOnSecondPoll(Some("quick"), false) => v,
        () = async move { let _d = d2; std::future::pending::<()>().await } => "pending",
    };
    assert_eq!(out, "quick");
    assert_eq!(dropped.get(), 2, "the losers are dropped when select! ends");
    assert_eq!(
        percore::stats().timers,
        0,
        "the losing sleep left the wheel"
    );
}

#[percore::test]
async fn else_runs_when_every_branch_is_disabled() {
    let out = percore::select! {
        Some(v) = async { None::<u32> } => v,
        v = async { 5 }, if false => v,
        else => 99,
    };
    assert_eq!(out, 99);
}

#[percore::test]
#[should_panic(expected = "all branches are disabled and there is no else branch")]
async fn no_else_panics_when_every_branch_is_disabled() {
    let _: u32 = percore::select! {
        Some(v) = async { None::<u32> } => v,
    };
}

#[percore::test]
async fn false_precondition_disables_a_ready_branch() {
    for _ in 0..50 {
        let polled = Cell::new(false);
        let out = percore::select! {
            v = async { polled.set(true); 1 }, if 1 + 1 == 3 => v,
            v = ReadyOnSecondPoll(Some(2), false) => v,
        };
        assert_eq!(out, 2);
        assert!(!polled.get(), "a disabled branch's future is never polled");
    }
}

#[percore::test]
async fn pattern_mismatch_disables_the_branch_and_selection_goes_on() {
    for _ in 0..50 {
        let out = percore::select! {
            Ok(v) = async { Err::<u32, &str>("no") } => v,
            v = ReadyOnSecondPoll(Some(7u32), false) => v,
        };
        assert_eq!(out, 7);
    }
}

#[percore::test]
async fn handlers_use_bindings_and_control_flow_of_the_caller() {
    let (tx, mut rx) = percore::channel::channel::<u32>(8);
    percore::spawn(async move {
        for i in 1..=4 {
            tx.send(i).await.unwrap();
        }
    });
    let mut sum = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        percore::select! {
            Some(mut v) = rx.recv() => {
                v *= 10; // `mut` bindings work
                sum += v;
                continue;
            }
            // Disabled by its precondition: once `recv` gives `None` (no
            // match), every branch is disabled and `else` runs.
            () = sleep(Duration::from_secs(30)), if sum > 1000 => panic!("not polled"),
            else => break,
        }
    }
    assert_eq!(sum, 100);
    assert_eq!(rounds, 5, "four values, then the closed channel ends it");
}

#[percore::test]
async fn futures_borrow_local_state() {
    let mut log = Vec::new();
    let counter = Cell::new(0);
    let bump = || async {
        counter.set(counter.get() + 1);
        counter.get()
    };
    let out = percore::select! {
        biased;
        n = bump() => { log.push(n); n }
        n = bump() => { log.push(n); n }
    };
    assert_eq!(out, 1);
    assert_eq!(log, [1]);
    assert_eq!(counter.get(), 1);
}

#[percore::test]
async fn not_send_futures_and_outputs() {
    let shared = Rc::new(RefCell::new(String::from("a")));
    let s = shared.clone();
    let out: Rc<RefCell<String>> = percore::select! {
        v = async move {
            percore::yield_now().await; // held across an await: a !Send future
            s.borrow_mut().push('b');
            s
        } => v,
        () = sleep(Duration::from_secs(30)) => unreachable!(),
    };
    assert!(Rc::ptr_eq(&out, &shared));
    assert_eq!(*shared.borrow(), "ab");
}

#[percore::test]
async fn join_handles_and_into_future() {
    let h = percore::spawn(async { 3 });
    let out = percore::select! {
        Ok(v) = h => v,
        () = sleep(Duration::from_secs(30)) => 0,
    };
    assert_eq!(out, 3);
}

#[percore::test]
async fn a_sleep_wins_against_a_longer_one() {
    let out = percore::select! {
        () = sleep(Duration::from_secs(30)) => "long",
        () = sleep(Duration::from_millis(1)) => "short",
    };
    assert_eq!(out, "short");
}
