//! The wake-up path of local tasks: a task woken several times before it
//! runs is queued and polled once, and the poll counters in
//! `percore::stats()` stay exact however many tasks a pass runs (the pass
//! reads the clock only every few polls, and counts its polls in one go).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A task that counts its polls and stays pending until `done` is set,
/// leaving its waker in `waker` each time.
fn counting_task(
    polls: Rc<Cell<u64>>,
    waker: Rc<RefCell<Option<Waker>>>,
    done: Rc<Cell<bool>>,
) -> impl std::future::Future<Output = ()> {
    std::future::poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        if done.get() {
            return Poll::Ready(());
        }
        *waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// A spawned [`counting_task`] and what it shares with the test.
struct Counted {
    polls: Rc<Cell<u64>>,
    waker: Rc<RefCell<Option<Waker>>>,
    done: Rc<Cell<bool>>,
    task: percore::task::JoinHandle<()>,
}

fn spawn_counted() -> Counted {
    let polls = Rc::new(Cell::new(0));
    let waker = Rc::new(RefCell::new(None));
    let done = Rc::new(Cell::new(false));
    let task = percore::spawn(counting_task(polls.clone(), waker.clone(), done.clone()));
    Counted {
        polls,
        waker,
        done,
        task,
    }
}

#[test]
fn a_task_woken_twice_before_it_runs_is_polled_once() {
    percore::run(async {
        let c = spawn_counted();
        percore::yield_now().await;
        assert_eq!(c.polls.get(), 1, "the first pass polls the new task once");

        let before = percore::stats().executor.polled;
        let w = c
            .waker
            .borrow_mut()
            .take()
            .expect("the task left its waker");
        // By reference and by value (another path in async-task).
        let by_value = w.clone();
        w.wake_by_ref();
        w.wake_by_ref();
        by_value.wake();
        percore::yield_now().await;
        assert_eq!(
            c.polls.get(),
            2,
            "three wakes before the task ran: one poll"
        );
        assert_eq!(percore::stats().executor.polled - before, 1);

        // A wake after that poll queues it again.
        c.done.set(true);
        w.wake();
        c.task.await.unwrap();
        assert_eq!(c.polls.get(), 3);
    });
}

#[test]
fn poll_counts_stay_exact_when_many_tasks_run_in_one_pass() {
    percore::run(async {
        const TASKS: usize = 37;
        const ROUNDS: u64 = 5;
        let polls = Rc::new(Cell::new(0));
        let done = Rc::new(Cell::new(false));
        let wakers: Vec<_> = (0..TASKS).map(|_| Rc::new(RefCell::new(None))).collect();
        let before = percore::stats();
        let handles: Vec<_> = wakers
            .iter()
            .map(|w| percore::spawn(counting_task(polls.clone(), w.clone(), done.clone())))
            .collect();
        for round in 0..ROUNDS {
            // A pass may end on its time bound on a loaded machine: the
            // rest run in the next ones.
            let want = (round + 1) * TASKS as u64;
            for _ in 0..1000 {
                if polls.get() >= want {
                    break;
                }
                percore::yield_now().await;
            }
            assert_eq!(polls.get(), want);
            if round + 1 == ROUNDS {
                done.set(true);
            }
            // Every task woken at once: one pass runs them all, in strides.
            for w in &wakers {
                w.borrow_mut()
                    .take()
                    .expect("pending task left its waker")
                    .wake();
            }
        }
        for h in handles {
            h.await.unwrap();
        }
        let after = percore::stats();
        let total = (ROUNDS + 1) * TASKS as u64;
        assert_eq!(polls.get(), total);
        assert_eq!(after.executor.polled - before.executor.polled, total);
        assert_eq!(after.queues[0].polls - before.queues[0].polls, total);
        assert_eq!(
            after.executor.spawned - before.executor.spawned,
            TASKS as u64
        );
        assert_eq!(
            after.executor.finished - before.executor.finished,
            TASKS as u64
        );
    });
}

#[test]
fn a_task_woken_from_another_thread_runs_on_its_own_core() {
    percore::run(async {
        let c = spawn_counted();
        percore::yield_now().await;
        let before = percore::stats().executor;
        c.done.set(true);
        let w = c
            .waker
            .borrow_mut()
            .take()
            .expect("the task left its waker");
        std::thread::spawn(move || w.wake()).join().unwrap();
        c.task.await.unwrap();
        assert_eq!(c.polls.get(), 2);
        let after = percore::stats().executor;
        assert_eq!(after.remote_wakes - before.remote_wakes, 1);
        assert_eq!(after.finished - before.finished, 1);
    });
}
