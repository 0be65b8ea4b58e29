//! A task that yields lets I/O and timers in: yielded tasks wait for the
//! next reap, a pass over the run queue is bounded in time, and neither
//! woken nor yielded tasks starve the other.
//!
//! The bounds are counted in turns of the busy tasks, not in wall time, so
//! a noisy machine slows the test without failing it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use percore::time::sleep;

/// Burns `d` of CPU without yielding, as a slice of background work does.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The times at which the busy tasks finished a turn of work.
type Turns = Rc<RefCell<Vec<Instant>>>;

const WORK: Duration = Duration::from_micros(100);

/// How the busy work hands the core back.
#[derive(Clone, Copy, Debug)]
enum Busy {
    /// One task: work, then `yield_now`, forever.
    Yield,
    /// Two tasks passing a token over a channel, working on each hand-off.
    PingPong,
    /// Each task works, spawns the next, and ends.
    SpawnChain,
}

fn start_busy(kind: Busy, turns: &Turns) {
    let turn = {
        let turns = turns.clone();
        move || {
            spin(WORK);
            turns.borrow_mut().push(Instant::now());
        }
    };
    match kind {
        Busy::Yield => {
            percore::spawn(async move {
                loop {
                    turn();
                    percore::yield_now().await;
                }
            });
        }
        Busy::PingPong => {
            let (to_b, mut at_b) = percore::channel::channel::<()>(1);
            let (to_a, mut at_a) = percore::channel::channel::<()>(1);
            let turn_b = turn.clone();
            percore::spawn(async move {
                while at_b.recv().await.is_some() {
                    turn_b();
                    if to_a.send(()).await.is_err() {
                        break;
                    }
                }
            });
            percore::spawn(async move {
                loop {
                    turn();
                    if to_b.send(()).await.is_err() || at_a.recv().await.is_none() {
                        break;
                    }
                }
            });
        }
        Busy::SpawnChain => {
            fn link(turn: Rc<dyn Fn()>) {
                percore::spawn(async move {
                    turn();
                    link(turn);
                });
            }
            link(Rc::new(turn));
        }
    }
}

/// Starts the busy work, sleeps 1 ms, and returns how many turns of it ran
/// between the timer's deadline and the sleeping task running again.
fn turns_past_a_1ms_timer(kind: Busy) -> usize {
    percore::run(async move {
        let turns: Turns = Rc::default();
        start_busy(kind, &turns);
        // Let the busy work get going first.
        let deadline = percore::spawn(async {
            let deadline = Instant::now() + Duration::from_millis(1);
            percore::time::sleep_until(deadline).await;
            (deadline, Instant::now())
        });
        let (deadline, woke) = deadline.await.unwrap();
        turns
            .borrow()
            .iter()
            .filter(|t| **t > deadline && **t <= woke)
            .count()
    })
}

// Before yielding waited for the reap and passes were bounded in time, each
// of these ran 128 turns (12.8 ms of work) past the deadline: one pass of
// the 128-poll budget. Now a pass ends after 200 µs (or one yielded turn)
// and the timer's task is the next to run. The wheel fires on its 1 ms
// ticks, so up to 10 turns fall between the deadline and the tick that
// fires it; a pass adds 1 to 3.
const MAX_LATE_TURNS: usize = 16;

#[test]
fn a_timer_fires_within_a_few_turns_of_a_task_that_yields_in_a_loop() {
    let late = turns_past_a_1ms_timer(Busy::Yield);
    assert!(
        late <= MAX_LATE_TURNS,
        "{late} turns of the yielding task ran past the deadline"
    );
}

#[test]
fn a_timer_fires_within_a_few_turns_of_tasks_handing_off_over_a_channel() {
    let late = turns_past_a_1ms_timer(Busy::PingPong);
    assert!(
        late <= MAX_LATE_TURNS,
        "{late} hand-offs ran past the deadline"
    );
}

#[test]
fn a_timer_fires_within_a_few_turns_of_tasks_spawning_in_a_loop() {
    let late = turns_past_a_1ms_timer(Busy::SpawnChain);
    assert!(
        late <= MAX_LATE_TURNS,
        "{late} spawned tasks ran past the deadline"
    );
}

#[test]
fn a_yielded_task_never_runs_twice_in_one_pass() {
    let ticks = percore::run(async {
        let ticks = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let ticks = ticks.clone();
                percore::spawn(async move {
                    for _ in 0..200 {
                        ticks.borrow_mut().push(percore::stats().driver.ticks);
                        percore::yield_now().await;
                    }
                })
            })
            .collect();
        percore::join_all(tasks).await;
        Rc::try_unwrap(ticks).unwrap().into_inner()
    });
    // Two tasks alternate: each loop tick runs each of them at most once.
    for (tick, n) in count_by_value(&ticks) {
        assert!(n <= 2, "tick {tick} ran {n} turns of two yielding tasks");
    }
}

fn count_by_value(values: &[u64]) -> Vec<(u64, usize)> {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for &v in values {
        match counts.iter_mut().find(|(k, _)| *k == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    counts
}

#[test]
fn a_yielding_task_still_runs_while_woken_tasks_fill_every_pass() {
    let (yields, hand_offs) = percore::run(async {
        let yields = Rc::new(Cell::new(0u32));
        let done = Rc::new(Cell::new(false));
        let yielder = {
            let (yields, done) = (yields.clone(), done.clone());
            percore::spawn(async move {
                while !done.get() {
                    yields.set(yields.get() + 1);
                    percore::yield_now().await;
                }
            })
        };
        // Tasks woken by each other fill every pass with woken work.
        const HAND_OFFS: u32 = 4000;
        let (to_b, mut at_b) = percore::channel::channel::<u32>(1);
        let (to_a, mut at_a) = percore::channel::channel::<u32>(1);
        let b = percore::spawn(async move {
            while let Some(n) = at_b.recv().await {
                if to_a.send(n + 1).await.is_err() {
                    break;
                }
            }
        });
        let a = {
            let yields = yields.clone();
            percore::spawn(async move {
                let before = yields.get();
                let mut n = 0;
                while n < HAND_OFFS {
                    to_b.send(n).await.unwrap();
                    n = at_a.recv().await.unwrap() + 1;
                }
                yields.get() - before
            })
        };
        let during = a.await.unwrap();
        done.set(true);
        b.await.unwrap();
        yielder.await.unwrap();
        (during, HAND_OFFS)
    });
    // A pass holds at most 128 polls of woken tasks, then one yielded
    // task's: with the yielder left out until the hand-offs ended, it would
    // have run no turn at all meanwhile.
    let passes = hand_offs as usize / 128;
    assert!(
        yields as usize >= passes / 2,
        "the yielding task ran {yields} turns during {hand_offs} hand-offs (>= {passes} passes)"
    );
}

#[test]
fn sleeping_and_yielding_tasks_all_finish() {
    // A yielding task with nothing else to do does not park the loop: it
    // runs again on the next tick, and timers keep firing around it.
    percore::run(async {
        let spinner = percore::spawn(async {
            for _ in 0..1000 {
                percore::yield_now().await;
            }
        });
        sleep(Duration::from_millis(2)).await;
        spinner.await.unwrap();
    });
}
