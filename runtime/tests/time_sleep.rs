//! Timers: deadline order, never early, cancellation, timeout, interval.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use percore::time::{Sleep, interval, sleep, sleep_until, timeout, timeout_at};
use support::{CountingWaker, poll_once, poll_with};

#[test]
fn sleeps_complete_in_deadline_order_and_never_early() {
    // 60 sleeps 2 ms apart, spawned in a scrambled order. Their deadlines
    // count from one start, so their order does not depend on when each
    // task first runs (a paused machine may run some 100 ms later).
    const N: u64 = 60;
    let log = percore::run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let others = percore::stats().timers;
        let start = Instant::now();
        let handles: Vec<_> = (0..N)
            .map(|i| (i * 37) % N) // a permutation: 37 is coprime with 60
            .map(|k| {
                let log = log.clone();
                let dur = Duration::from_millis(2 * k + 1);
                percore::spawn(async move {
                    sleep_until(start + dur).await;
                    let late = start.elapsed();
                    assert!(late >= dur, "sleep({dur:?}) woke after {late:?}");
                    // The timers still in the wheel: those that have not
                    // fired yet (a fired one leaves it before its task runs).
                    log.borrow_mut().push((k, percore::stats().timers - others));
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        Rc::try_unwrap(log).unwrap().into_inner()
    });
    let mut keys: Vec<u64> = log.iter().map(|(k, _)| *k).collect();
    assert_eq!(log.len() as u64, N);
    // When sleep k runs, every earlier sleep has fired (its task may still
    // wait to run, after k's, if both came due in one turn of the wheel: a
    // slow or paused machine's turn may fire many): at most the N - 1 - k
    // later ones are still in the wheel. No clock decides this.
    for &(k, pending) in &log {
        assert!(
            pending as u64 <= N - 1 - k,
            "sleep {k} ran while {pending} sleeps were still in the wheel: {log:?}"
        );
    }
    keys.sort();
    assert_eq!(
        keys,
        (0..N).collect::<Vec<_>>(),
        "every sleep finished once"
    );
}

#[percore::test]
async fn sleep_is_never_early_for_sub_millisecond_and_odd_durations() {
    for us in [1u64, 10, 250, 999, 1000, 1001, 1500, 2999, 7003] {
        let dur = Duration::from_micros(us);
        let start = Instant::now();
        sleep(dur).await;
        assert!(
            start.elapsed() >= dur,
            "sleep({dur:?}) took {:?}",
            start.elapsed()
        );
    }
}

#[percore::test]
async fn zero_and_past_deadlines_complete_at_once() {
    let before = percore::stats().driver.enters;
    sleep(Duration::ZERO).await;
    sleep_until(Instant::now() - Duration::from_millis(5)).await;
    // Completed on first poll: no trip through the loop.
    assert_eq!(percore::stats().driver.enters, before);
    assert_eq!(percore::stats().timers, 0);
}

/// A sleep a second or more past the loop's last clock reading registers
/// on its first poll without reading the clock; one whose deadline passed
/// while the turn ran that long (here: a task that blocks its core for
/// longer) still completes, after its deadline, on a later turn.
#[percore::test]
async fn a_long_sleep_due_during_a_long_turn_still_completes_never_early() {
    let dur = Duration::from_millis(1100);
    let deadline = Instant::now() + dur;
    let mut s = sleep_until(deadline);
    // Block the core past the deadline, as a long-running task would.
    std::thread::sleep(dur + Duration::from_millis(100));
    timeout(Duration::from_secs(10), &mut s)
        .await
        .expect("a passed deadline fires on the next turn");
    assert!(Instant::now() >= deadline);
    assert!(s.is_elapsed());
    assert_eq!(percore::stats().timers, 0);
}

/// The clock-free first poll registers a far deadline and leaves it
/// pending: it is neither taken as reached nor lost.
#[percore::test]
async fn a_far_sleep_registers_on_first_poll_and_drop_removes_it() {
    let (count, waker) = CountingWaker::new();
    let mut s = sleep(Duration::from_secs(30));
    assert!(poll_with(&mut s, &waker).is_pending());
    assert!(!s.is_elapsed());
    assert_eq!(percore::stats().timers, 1);
    drop(s);
    assert_eq!(percore::stats().timers, 0);
    assert_eq!(count.count(), 0);
}

#[percore::test]
async fn dropped_sleep_never_wakes_anything() {
    let (count, waker) = CountingWaker::new();
    let mut s = sleep(Duration::from_millis(2));
    assert!(poll_with(&mut s, &waker).is_pending());
    assert_eq!(percore::stats().timers, 1);
    drop(s);
    assert_eq!(percore::stats().timers, 0, "drop removes the timer");
    // Run well past its deadline: nothing may wake the dropped sleep.
    sleep(Duration::from_millis(10)).await;
    assert_eq!(count.count(), 0);
}

#[percore::test]
async fn sleep_wakes_its_latest_waker_exactly_once() {
    let (first, w1) = CountingWaker::new();
    let (second, w2) = CountingWaker::new();
    let mut s = sleep(Duration::from_millis(2));
    assert!(poll_with(&mut s, &w1).is_pending());
    assert!(poll_with(&mut s, &w2).is_pending());
    sleep(Duration::from_millis(10)).await;
    assert_eq!(first.count(), 0, "the replaced waker is not woken");
    assert_eq!(second.count(), 1);
    assert!(poll_with(&mut s, &w2).is_ready());
    assert!(s.is_elapsed());
}

#[percore::test]
async fn reset_moves_the_deadline_both_ways() {
    let start = Instant::now();
    let mut s = sleep(Duration::from_millis(1));
    s.reset(start + Duration::from_millis(15));
    (&mut s).await;
    assert!(start.elapsed() >= Duration::from_millis(15));
    let start = Instant::now();
    s.reset(start + Duration::from_secs(60));
    assert!(!s.is_elapsed());
    s.reset(start + Duration::from_millis(1));
    (&mut s).await;
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(percore::stats().timers, 0);
}

/// A sleep registered for 2 ms with `waker`, reset to 60 s, and run past
/// its old deadline: its kept entry has fired (one spurious wake-up).
async fn fired_before_its_deadline(waker: &Waker, count: &CountingWaker) -> Sleep {
    let before = count.count();
    let mut s = sleep(Duration::from_millis(2));
    assert!(poll_with(&mut s, waker).is_pending());
    s.reset(Instant::now() + Duration::from_secs(60));
    assert_eq!(percore::stats().timers, 1, "a later reset keeps the entry");
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        count.count(),
        before + 1,
        "the kept entry fired at the old deadline"
    );
    s
}

#[percore::test]
async fn reset_later_keeps_the_entry_and_the_early_fire_does_not_complete_it() {
    let (count, waker) = CountingWaker::new();
    // The poll after the early fire waits for the new deadline.
    let mut s = fired_before_its_deadline(&waker, &count).await;
    assert!(poll_with(&mut s, &waker).is_pending());
    assert!(!s.is_elapsed());
    assert_eq!(
        percore::stats().timers,
        1,
        "registered again at the new deadline"
    );
    // Brought back in: it ends at the earlier deadline, never before it.
    let deadline = Instant::now() + Duration::from_millis(3);
    s.reset(deadline);
    (&mut s).await;
    assert!(Instant::now() >= deadline);
    assert!(s.is_elapsed());
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn reset_later_completes_after_the_new_deadline_only() {
    for extra in [1, 7, 64, 70] {
        let mut s = sleep(Duration::from_millis(1));
        assert!(poll_once(&mut s).await.is_pending());
        let deadline = Instant::now() + Duration::from_millis(extra);
        s.reset(deadline);
        (&mut s).await;
        assert!(
            Instant::now() >= deadline,
            "ended early after reset(+{extra} ms)"
        );
        assert_eq!(percore::stats().timers, 0);
    }
}

#[percore::test]
async fn reset_earlier_wakes_the_last_poller_without_another_poll() {
    let (count, waker) = CountingWaker::new();
    let mut s = sleep(Duration::from_secs(60));
    assert!(poll_with(&mut s, &waker).is_pending());
    let deadline = Instant::now() + Duration::from_millis(2);
    s.reset(deadline);
    assert_eq!(percore::stats().timers, 1, "moved, not removed");
    // A later timer firing means the moved one has fired (deadline order).
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        count.count(),
        1,
        "the moved entry woke the last poll's waker"
    );
    assert!(poll_with(&mut s, &waker).is_ready());
    assert!(Instant::now() >= deadline);
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn many_later_resets_leave_one_entry_and_drop_removes_it() {
    // An idle timeout pushed to now + 30 s for each message, then far out
    // between messages.
    let (count, waker) = CountingWaker::new();
    let mut s = sleep(Duration::from_secs(30));
    assert!(poll_with(&mut s, &waker).is_pending());
    for i in 0..1_000u64 {
        let base = Instant::now() + Duration::from_secs(30);
        s.reset(base + Duration::from_millis(i));
        assert_eq!(percore::stats().timers, 1);
        s.reset(base + Duration::from_secs(86_400));
        assert_eq!(percore::stats().timers, 1);
        if i % 100 == 0 {
            assert!(poll_with(&mut s, &waker).is_pending());
            assert_eq!(percore::stats().timers, 1);
        }
    }
    assert!(!s.is_elapsed());
    drop(s);
    assert_eq!(percore::stats().timers, 0, "drop removes the kept entry");
    assert_eq!(count.count(), 0);
}

#[percore::test]
async fn reset_after_an_early_fire_waits_for_the_newest_deadline() {
    let (count, waker) = CountingWaker::new();
    let mut s = fired_before_its_deadline(&waker, &count).await;
    // Reset again before the poll that would register it anew: later, then
    // dropped, leaves nothing behind.
    s.reset(Instant::now() + Duration::from_secs(120));
    assert!(poll_with(&mut s, &waker).is_pending());
    assert_eq!(percore::stats().timers, 1);
    drop(s);
    assert_eq!(percore::stats().timers, 0);
    // Earlier than the fired entry's new deadline, with no poll between.
    let mut s = fired_before_its_deadline(&waker, &count).await;
    let deadline = Instant::now() + Duration::from_millis(3);
    s.reset(deadline);
    (&mut s).await;
    assert!(Instant::now() >= deadline);
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn reset_later_then_dropped_leaves_no_entry() {
    let mut s = sleep(Duration::from_millis(50));
    assert!(poll_once(&mut s).await.is_pending());
    s.reset(Instant::now() + Duration::from_secs(60));
    assert_eq!(percore::stats().timers, 1);
    drop(s);
    assert_eq!(percore::stats().timers, 0);
}

struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[percore::test]
async fn timeout_elapses_and_drops_the_inner_future() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let inner = async move {
        let _f = DropFlag(d);
        sleep(Duration::from_secs(60)).await;
        7
    };
    let start = Instant::now();
    let res = timeout(Duration::from_millis(5), inner).await;
    let err = res.unwrap_err();
    assert_eq!(err.to_string(), "deadline has elapsed");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert!(dropped.get(), "the timed-out future is dropped");
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn timeout_that_completes_in_time_returns_the_output() {
    let res = timeout(Duration::from_secs(5), async {
        sleep(Duration::from_millis(2)).await;
        "done"
    })
    .await;
    assert_eq!(res, Ok("done"));
    // The timeout's own timer is gone with it.
    assert_eq!(percore::stats().timers, 0);
    let at = Instant::now() + Duration::from_secs(5);
    assert_eq!(timeout_at(at, async { 3 }).await, Ok(3));
}

#[percore::test]
async fn timeout_prefers_a_ready_future_over_an_elapsed_deadline() {
    let past = Instant::now() - Duration::from_millis(1);
    assert_eq!(timeout_at(past, async { 1 }).await, Ok(1));
    assert!(
        timeout_at(past, std::future::pending::<()>())
            .await
            .is_err()
    );
}

#[percore::test]
async fn interval_ticks_on_its_grid() {
    let period = Duration::from_millis(4);
    let mut every = interval(period);
    assert_eq!(every.period(), period);
    let start = Instant::now();
    // Immediate: ready on its first poll (whatever the clock says by then).
    let first = match poll_once(&mut std::pin::pin!(every.tick())).await {
        Poll::Ready(at) => at,
        Poll::Pending => panic!("the first tick waited"),
    };
    assert!(first <= Instant::now());
    let mut last = first;
    for n in 1..=5u32 {
        let at = every.tick().await;
        assert_eq!(
            at,
            first + period * n,
            "ticks stay on the start + n*period grid"
        );
        assert!(Instant::now() >= at, "tick {n} came early");
        assert!(at > last);
        last = at;
    }
    assert!(start.elapsed() >= period * 5);
}

#[percore::test]
async fn late_interval_catches_up() {
    let period = Duration::from_millis(2);
    let mut every = interval(period);
    let first = every.tick().await;
    // Block the core past several periods.
    std::thread::sleep(Duration::from_millis(10));
    let enters = percore::stats().driver.enters;
    let a = every.tick().await;
    let b = every.tick().await;
    assert_eq!(a, first + period);
    assert_eq!(b, first + period * 2);
    // Missed ticks are ready on their first poll: no trip through the loop.
    assert_eq!(percore::stats().driver.enters, enters);
}

#[test]
#[should_panic(expected = "interval period must be non-zero")]
fn zero_interval_panics() {
    let _ = interval(Duration::ZERO);
}

#[test]
fn timers_on_separate_runtimes_are_independent() {
    let threads: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                percore::run(async move {
                    let start = Instant::now();
                    sleep(Duration::from_millis(5 + i)).await;
                    assert_eq!(percore::stats().timers, 0);
                    start.elapsed()
                })
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert!(t.join().unwrap() >= Duration::from_millis(5 + i as u64));
    }
}

// ----- far deadlines (issue 12, item 6): clamped, never a panic ------------

/// About 30 years, the far deadline a too-long duration is clamped to; the
/// tests only need "more than 20 years from now".
const YEARS_20: Duration = Duration::from_secs(86_400 * 365 * 20);

#[percore::test]
async fn far_sleep_duration_max_does_not_panic() {
    let mut far = sleep(Duration::MAX);
    assert!(far.deadline() > Instant::now() + YEARS_20);
    assert!(poll_once(&mut far).await.is_pending());
    assert_eq!(percore::stats().timers, 1);
    // Other timers still fire first, and the far one can be dropped.
    sleep(Duration::from_millis(2)).await;
    assert!(poll_once(&mut far).await.is_pending());
    drop(far);
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn far_timeout_duration_max_does_not_panic_and_the_future_completes_first() {
    let res = timeout(Duration::MAX, async {
        sleep(Duration::from_millis(2)).await;
        7
    })
    .await;
    assert_eq!(res, Ok(7));
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn far_sleep_until_beyond_u64_millis_never_fires_early() {
    // More than u64::MAX ms from the runtime's start: the tick must
    // saturate, not wrap round to "50 ms from now".
    let far = Instant::now() + Duration::from_millis(u64::MAX) + Duration::from_millis(50);
    let mut s = sleep_until(far);
    assert!(
        timeout(Duration::from_millis(300), &mut s).await.is_err(),
        "a deadline beyond u64 ms fired early"
    );
    assert!(!s.is_elapsed());
    // The same deadline through reset and timeout_at.
    s.reset(far);
    assert!(timeout(Duration::from_millis(100), &mut s).await.is_err());
    assert_eq!(timeout_at(far, async { 5 }).await, Ok(5));
    assert!(
        timeout(
            Duration::from_millis(100),
            timeout_at(far, std::future::pending::<()>())
        )
        .await
        .is_err()
    );
}

#[percore::test]
async fn far_timeout_at_far_instant_does_not_panic_and_the_future_completes_first() {
    let far = Instant::now() + YEARS_20 * 1000;
    let res = timeout_at(far, async {
        sleep(Duration::from_millis(2)).await;
        "done"
    })
    .await;
    assert_eq!(res, Ok("done"));
    assert_eq!(percore::stats().timers, 0);
}

#[percore::test]
async fn far_interval_period_max_ticks_once_then_is_pending() {
    let mut every = interval(Duration::MAX);
    assert_eq!(every.period(), Duration::MAX);
    let start = Instant::now();
    let first = every.tick().await;
    assert!(first <= Instant::now());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "first tick is immediate"
    );
    // The second tick is about 30 years out: pending, not a panic.
    assert!(
        timeout(Duration::from_millis(20), every.tick())
            .await
            .is_err()
    );
    assert!(
        timeout(Duration::from_millis(5), every.tick())
            .await
            .is_err()
    );
}
