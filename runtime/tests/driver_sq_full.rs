//! A small SQ that fills up in the middle of a tick: the flush reaps
//! completions early, and the loop must run their tasks instead of parking.
//!
//! These check the io_uring driver itself, so they ask for it by name
//! (the rest of the suite runs on whichever driver `PERCORE_DRIVER` picks).

mod support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Nop, Op, Read};
use percore::{Builder, DriverKind, Runtime};
use support::watchdog;

fn rings() -> [(&'static str, Runtime); 2] {
    [
        (
            "default",
            Builder::new()
                .driver(DriverKind::IoUring)
                .entries(4)
                .build()
                .unwrap(),
        ),
        (
            "minimal",
            Builder::new()
                .driver(DriverKind::IoUring)
                .entries(4)
                .minimal_features(true)
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn ops_filling_the_sq_exactly_complete_without_a_timer() {
    // Regression: with exactly a full SQ queued, arming the wake-up read
    // flushed it, reaped every completion, then parked with no timeout
    // waiting for more: a hang.
    let _dog = watchdog("sq_exactly_full", Duration::from_secs(30));
    for (name, rt) in rings() {
        for n in [4usize, 8, 64, 500] {
            rt.block_on(async {
                let start = Instant::now();
                for r in percore::join_all((0..n).map(|_| Op::new(Nop))).await {
                    r.unwrap();
                }
                assert!(start.elapsed() < Duration::from_secs(5), "{name}: {n} nops");
                assert!(percore::stats().driver.sq_full > 0);
            });
        }
    }
}

#[test]
fn flushed_completions_run_even_if_the_last_op_never_completes() {
    let _dog = watchdog("flush_then_pending_read", Duration::from_secs(30));
    for (name, rt) in rings() {
        rt.block_on(async {
            let (reader, mut writer) = std::io::pipe().unwrap();
            // A read that stays pending until we write, queued after the nops.
            let read = percore::spawn(async move {
                Op::new(Read::new(
                    SharedFd::new(reader.into()),
                    Vec::with_capacity(4),
                    CURRENT_POSITION,
                ))
                .await
            });
            let nops = percore::join_all((0..3).map(|_| Op::new(Nop)));
            let start = Instant::now();
            // With a timer pending the loop would wake at the deadline
            // anyway: demand the nops finish well before it.
            let res = percore::time::timeout(Duration::from_secs(10), nops).await;
            assert!(res.is_ok(), "{name}");
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{name}: {:?}",
                start.elapsed()
            );
            writer.write_all(b"done").unwrap();
            let (n, buf) = read.await.unwrap();
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, b"done");
        });
    }
}
