//! A million pending timers: the loop stays responsive and all of them cancel.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use percore::op::{Nop, Op};
use percore::time::{Sleep, sleep};

const TIMERS: usize = 1_000_000;

#[test]
fn million_pending_timers_keep_the_loop_fast_and_cancel() {
    let _dog = support::watchdog("million_pending_timers", Duration::from_secs(120));
    percore::run(async {
        // 1. Insert a million sleeps spread over 10 min .. ~27 min, each
        //    polled once so it sits in the wheel (none falls due even if a
        //    slow build takes minutes over this test).
        let t0 = Instant::now();
        let mut sleeps: Vec<Sleep> = (0..TIMERS)
            .map(|i| sleep(Duration::from_secs(600) + Duration::from_millis(i as u64)))
            .collect();
        std::future::poll_fn(|cx| {
            for s in sleeps.iter_mut() {
                assert!(Pin::new(s).poll(cx).is_pending());
            }
            Poll::Ready(())
        })
        .await;
        let inserted = t0.elapsed();
        assert_eq!(percore::stats().timers, TIMERS);

        // 2. While they are pending, ring and timer round trips stay quick:
        //    the loop's cost does not grow with the number of timers. The
        //    median of 21 rounds, so that a pause of the shared machine in
        //    a few of them does not count; a loop that walked the million
        //    timers would be slow in every round.
        let mut nops = Vec::new();
        let mut sleeps_1ms = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            Op::new(Nop).await.unwrap();
            nops.push(t.elapsed());
            let t = Instant::now();
            sleep(Duration::from_millis(1)).await;
            sleeps_1ms.push(t.elapsed());
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (nop, sleep_1ms) = (median(nops), median(sleeps_1ms));
        assert!(nop < Duration::from_millis(50), "nop took {nop:?}");
        assert!(
            sleep_1ms < Duration::from_millis(60),
            "1 ms sleep took {sleep_1ms:?}"
        );
        assert_eq!(percore::stats().timers, TIMERS);

        // 3. Cancel them all, in an order unrelated to insertion.
        let t0 = Instant::now();
        let mut slots: Vec<Option<Sleep>> = sleeps.into_iter().map(Some).collect();
        for n in 0..TIMERS {
            // n -> n * 611_953 mod 10^6 is a permutation (coprime).
            drop(slots[n * 611_953 % TIMERS].take());
            if n == TIMERS / 2 {
                assert_eq!(percore::stats().timers, TIMERS - n - 1);
            }
        }
        let cancelled = t0.elapsed();
        assert_eq!(percore::stats().timers, 0);
        // And the wheel still fires new timers afterwards.
        let t = Instant::now();
        sleep(Duration::from_millis(2)).await;
        assert!(t.elapsed() >= Duration::from_millis(2));
        eprintln!(
            "1M timers: insert {inserted:?}, cancel {cancelled:?}, median nop {nop:?}, median 1ms sleep {sleep_1ms:?}"
        );
    });
}

#[test]
fn hundred_thousand_timers_with_one_deadline_all_fire() {
    const N: usize = 100_000;
    let _dog = support::watchdog("hundred_thousand_fire", Duration::from_secs(60));
    percore::run(async {
        let deadline = Instant::now() + Duration::from_millis(20);
        let futs = (0..N).map(|_| percore::time::sleep_until(deadline));
        let fired = percore::join_all(futs).await.len();
        assert_eq!(fired, N);
        assert!(Instant::now() >= deadline);
        assert_eq!(percore::stats().timers, 0);
    });
}

#[test]
fn hundred_thousand_sleeping_tasks() {
    const N: usize = 100_000;
    let _dog = support::watchdog("hundred_thousand_tasks", Duration::from_secs(60));
    percore::run(async {
        let handles: Vec<_> = (0..N)
            .map(|i| percore::spawn(sleep(Duration::from_millis(1 + (i % 50) as u64))))
            .collect();
        assert!(percore::stats().timers <= N);
        // Awaited one by one: `join_all` re-polls every handle on each wake,
        // which is quadratic at this size.
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(percore::stats().timers, 0);
    });
}
