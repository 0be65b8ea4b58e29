//! `spawn_blocking` hands each job to a thread of its own: a job submitted
//! right after another never queues behind it while that one blocks.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use support::watchdog;

/// Job A waits for job B, submitted right after it. Before the fix, both
/// submits counted on the one idle thread (a thread left `idle` only once it
/// got the lock again), so no second thread started; B queued behind A, and A
/// waited until it gave up.
#[test]
fn spawn_blocking_never_queues_a_job_behind_a_blocked_one() {
    let _dog = watchdog(
        "spawn_blocking_never_queues_a_job_behind_a_blocked_one",
        Duration::from_secs(240),
    );
    percore::run(async {
        for round in 0..20 {
            // Leave one pool thread idle (on a fresh pool; later rounds have
            // more threads, idle or not).
            percore::spawn_blocking(|| ()).await.unwrap();
            percore::time::sleep(Duration::from_millis(10)).await;
            let (tx, rx) = mpsc::channel::<()>();
            // Generous: only a job stuck in the queue waits this long.
            let a = percore::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)));
            let b = percore::spawn_blocking(move || tx.send(()).is_ok());
            assert_eq!(
                a.await.unwrap(),
                Ok(()),
                "round {round}: job B never ran while job A waited for it"
            );
            assert!(b.await.unwrap());
        }
    });
}
