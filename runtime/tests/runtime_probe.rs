//! Ring set-up: the probe, every builder flag, and the fallback paths that
//! `minimal_features` forces (no EXT_ARG: parking uses a timeout SQE).
//!
//! These check the io_uring driver itself, so they ask for it by name
//! (the rest of the suite runs on whichever driver `PERCORE_DRIVER` picks).

mod support;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Nop, Op, Read, TimeoutOp, Write};
use percore::{Builder, DriverKind, Runtime};
use support::watchdog;

#[test]
fn probe_reports_this_kernel() {
    let caps = percore::Capabilities::probe().unwrap();
    assert!(!caps.kernel_release.is_empty());
    assert!(caps.supports(io_uring::opcode::Nop::CODE));
    assert!(caps.supports(io_uring::opcode::Read::CODE));
    assert!(caps.sq_entries >= 2);
    assert!(caps.cq_entries >= caps.sq_entries);
    assert!(!caps.sqpoll);
    // Display names every field a user needs to diagnose a slow path.
    let text = caps.to_string();
    for word in ["kernel", "defer_taskrun", "ext_arg", "memlock"] {
        assert!(text.contains(word), "{text}");
    }
}

/// Exercises the basic paths on `rt`: nop, write + read through a pipe,
/// a wheel sleep, `timeout` both ways, a kernel timeout, a wake from
/// another thread while parked.
fn basic_ops(rt: &Runtime) {
    rt.block_on(async {
        Op::new(Nop).await.unwrap();

        let (reader, writer) = std::io::pipe().unwrap();
        let (n, _) = Op::new(Write::new(
            SharedFd::new(writer.into()),
            b"ping".to_vec(),
            CURRENT_POSITION,
        ))
        .await;
        assert_eq!(n.unwrap(), 4);
        let (n, buf) = Op::new(Read::new(
            SharedFd::new(reader.into()),
            Vec::with_capacity(8),
            CURRENT_POSITION,
        ))
        .await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(buf, b"ping");

        let start = Instant::now();
        percore::time::sleep(Duration::from_millis(3)).await;
        assert!(start.elapsed() >= Duration::from_millis(3));

        let start = Instant::now();
        Op::new(TimeoutOp::new(Duration::from_millis(2)))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(2));

        let r =
            percore::time::timeout(Duration::from_millis(2), std::future::pending::<()>()).await;
        assert!(r.is_err());
        assert_eq!(
            percore::time::timeout(Duration::from_secs(5), async { 9 }).await,
            Ok(9)
        );

        // Parked with no timer: only the cross-thread wake ends the wait.
        let v = percore::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(5));
            11
        })
        .await
        .unwrap();
        assert_eq!(v, 11);

        let h = percore::spawn(async { Op::new(Nop).await.map(|_| 1) });
        assert_eq!(h.await.unwrap().unwrap(), 1);
        assert_eq!(percore::stats().in_flight, 0);
    });
}

#[test]
fn default_runtime_uses_the_fast_paths() {
    let _dog = watchdog("default_runtime", Duration::from_secs(30));
    // Explicit, so the test means the same under PERCORE_MINIMAL=1.
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(false)
        .build()
        .unwrap();
    let caps = rt.capabilities();
    // Linux 6.1+: DEFER_TASKRUN; 5.11+: EXT_ARG.
    assert!(caps.ext_arg, "{caps}");
    assert!(caps.defer_taskrun, "{caps}");
    basic_ops(&rt);
}

#[test]
fn minimal_features_runs_every_fallback() {
    let _dog = watchdog("minimal_features", Duration::from_secs(30));
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(true)
        .build()
        .unwrap();
    let caps = rt.capabilities();
    assert!(
        !caps.ext_arg && !caps.defer_taskrun && !caps.coop_taskrun,
        "{caps}"
    );
    assert!(!caps.multishot_accept && !caps.multishot_recv && !caps.buf_ring && !caps.send_zc);
    basic_ops(&rt);
}

/// The SQEs submitted and the parks made while `n` 1 ms sleeps run alone
/// on `rt`.
fn sqes_and_parks_for_sleeps(rt: &Runtime, n: u32) -> (u64, u64) {
    rt.block_on(async move {
        // Arm the wake-up read first, so only the sleeps count.
        percore::time::sleep(Duration::from_millis(1)).await;
        let before = percore::stats().driver;
        for _ in 0..n {
            percore::time::sleep(Duration::from_millis(1)).await;
        }
        let after = percore::stats().driver;
        (
            after.submitted - before.submitted,
            after.parks - before.parks,
        )
    })
}

#[test]
fn without_ext_arg_parking_submits_a_timeout_sqe() {
    let fast = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(false)
        .build()
        .unwrap();
    let slow = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(true)
        .build()
        .unwrap();
    // With EXT_ARG the timeout rides on io_uring_enter: no SQE per park.
    let (sqes, parks) = sqes_and_parks_for_sleeps(&fast, 10);
    assert!(parks >= 1 && sqes == 0, "{sqes} SQEs in {parks} parks");
    // Without it each park that waits on a timer queues a timeout SQE.
    // (Counted against the parks: a sleep whose time passed before the
    // loop got to park, on a paused machine, needs none.)
    let (sqes, parks) = sqes_and_parks_for_sleeps(&slow, 10);
    assert!(parks >= 1 && sqes >= parks, "{sqes} SQEs in {parks} parks");
}

#[test]
fn each_ring_flag_can_be_turned_off() {
    let _dog = watchdog("ring_flags", Duration::from_secs(60));
    let builds: [(&str, Builder); 5] = [
        (
            "no defer_taskrun",
            Builder::new()
                .driver(DriverKind::IoUring)
                .defer_taskrun(false),
        ),
        (
            "no coop_taskrun",
            Builder::new()
                .driver(DriverKind::IoUring)
                .coop_taskrun(false),
        ),
        (
            "neither",
            Builder::new()
                .driver(DriverKind::IoUring)
                .defer_taskrun(false)
                .coop_taskrun(false),
        ),
        (
            "no registered ring fd",
            Builder::new()
                .driver(DriverKind::IoUring)
                .register_ring_fd(false),
        ),
        (
            "small ring",
            Builder::new().driver(DriverKind::IoUring).entries(4),
        ),
    ];
    for (name, b) in builds {
        let rt = b
            .minimal_features(false)
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let caps = rt.capabilities();
        match name {
            "no defer_taskrun" => assert!(!caps.defer_taskrun && caps.coop_taskrun, "{caps}"),
            "no coop_taskrun" => assert!(caps.defer_taskrun, "{caps}"),
            "neither" => assert!(!caps.defer_taskrun && !caps.coop_taskrun, "{caps}"),
            "small ring" => assert_eq!(caps.sq_entries, 4),
            _ => {}
        }
        basic_ops(&rt);
    }
}

#[test]
fn sqpoll_ring_runs_the_basic_ops() {
    let _dog = watchdog("sqpoll", Duration::from_secs(30));
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .sqpoll(Some(Duration::from_millis(10)))
        .build()
        .unwrap();
    let caps = rt.capabilities();
    assert!(caps.sqpoll, "{caps}");
    assert!(!caps.defer_taskrun, "SQPOLL excludes DEFER_TASKRUN");
    basic_ops(&rt);
    // Let the SQ thread go idle, then submit again: it must be woken.
    std::thread::sleep(Duration::from_millis(30));
    basic_ops(&rt);
}

#[test]
fn small_ring_overflows_the_sq_without_losing_ops() {
    let _dog = watchdog("small_ring_overflow", Duration::from_secs(30));
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .entries(4)
        .build()
        .unwrap();
    rt.block_on(async {
        let before = percore::stats().driver;
        let ops = (0..500).map(|_| Op::new(Nop));
        for r in percore::join_all(ops).await {
            r.unwrap();
        }
        let after = percore::stats().driver;
        assert!(
            after.sq_full > before.sq_full,
            "a 4-entry SQ had to flush mid-tick"
        );
        assert!(after.completed - before.completed >= 500);
    });
}

#[test]
fn odd_entry_counts_are_clamped_or_fail_clearly() {
    for entries in [0u32, 1, 3, 100_000, u32::MAX] {
        match Builder::new()
            .driver(DriverKind::IoUring)
            .entries(entries)
            .build()
        {
            Ok(rt) => {
                let sq = rt.capabilities().sq_entries;
                assert!(
                    sq.is_power_of_two() && sq >= 2,
                    "entries({entries}) -> {sq}"
                );
                rt.block_on(async { Op::new(Nop).await.unwrap() });
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
                assert!(e.to_string().contains("fix"), "error says what to do: {e}");
            }
        }
    }
}

#[test]
fn runtimes_on_many_threads_and_in_sequence() {
    let _dog = watchdog("many_runtimes", Duration::from_secs(60));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..10 {
                    let rt = Runtime::new().unwrap();
                    basic_ops(&rt);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn capabilities_outside_and_inside_a_runtime() {
    assert!(percore::capabilities().is_none());
    let rt = Runtime::new().unwrap();
    let inside = rt.block_on(async { percore::capabilities().unwrap() });
    assert_eq!(*inside, *rt.capabilities());
}

#[test]
fn blocking_std_io_still_works_beside_the_ring() {
    // A sanity check that the runtime leaves ordinary descriptors alone.
    let (mut r, mut w) = std::io::pipe().unwrap();
    percore::run(async move {
        w.write_all(b"std").unwrap();
        let mut got = [0u8; 3];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"std");
    });
}
