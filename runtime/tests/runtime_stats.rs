//! The per-core counters move as the work they count happens.

use std::time::Duration;

use io_uring::opcode;
use percore::DriverKind;
use percore::op::{Nop, Op};

#[percore::test]
async fn nops_are_counted_by_kind() {
    let before = percore::stats().driver;
    for _ in 0..10 {
        Op::new(Nop).await.unwrap();
    }
    let after = percore::stats().driver;
    let nop = opcode::Nop::CODE;
    assert_eq!(after.ops.submitted(nop) - before.ops.submitted(nop), 10);
    assert_eq!(after.ops.completed(nop) - before.ops.completed(nop), 10);
    // Every CQE the ring produced is counted under some kind.
    let by_kind: u64 = after.ops.iter().map(|(_, _, completed)| completed).sum();
    assert_eq!(by_kind, after.completed);
    assert!(after.submitted - before.submitted >= 10);
    match percore::stats().backend {
        DriverKind::IoUring => {
            assert!(after.ticks - before.ticks >= 10, "one op awaited per tick")
        }
        // The epoll driver starts an op inside its first poll: a nop is
        // done before the poll returns, with no tick of its own.
        _ => assert_eq!(after.ticks, before.ticks, "nops complete inline"),
    }
}

#[percore::test]
async fn concurrent_nops_share_enters() {
    let before = percore::stats().driver;
    // 32 nops issued in one poll (not by 32 tasks, which a slow build may
    // spread over several passes of the executor) are queued in one tick:
    // they go in together, in an enter or two, not one each.
    for res in percore::join_all((0..32).map(|_| Op::new(Nop))).await {
        res.unwrap();
    }
    let after = percore::stats().driver;
    let nop = opcode::Nop::CODE;
    assert_eq!(after.ops.submitted(nop) - before.ops.submitted(nop), 32);
    assert!(after.enters - before.enters <= 2, "{after:?}");
}

#[percore::test]
async fn submit_now_enters_the_kernel_during_the_first_poll() {
    use std::future::Future;
    use std::task::Poll;

    let inline = percore::stats().backend == DriverKind::Epoll;
    for submit_now in [false, true] {
        let op = Op::new(Nop);
        let mut op = std::pin::pin!(if submit_now { op.submit_now() } else { op });
        let before = percore::stats().driver;
        let first = std::future::poll_fn(|cx| Poll::Ready(op.as_mut().poll(cx).is_ready())).await;
        let after = percore::stats().driver;
        if inline {
            // The epoll driver starts every op inside its first poll, and a
            // nop is then done: no enter, batched or not.
            assert!(first, "submit_now={submit_now}");
            assert_eq!(after.submitted - before.submitted, 1);
            assert_eq!(after.enters, before.enters);
            continue;
        }
        assert!(!first, "submit_now={submit_now}");
        // A batched op waits for the tick's end; a submit_now op is in the
        // kernel before its first poll returns.
        let expect = u64::from(submit_now);
        assert_eq!(
            after.submitted - before.submitted,
            expect,
            "submit_now={submit_now}"
        );
        assert_eq!(
            after.enters - before.enters,
            expect,
            "submit_now={submit_now}"
        );
        op.await.unwrap();
    }
}

#[percore::test]
async fn detached_entries_are_counted_by_kind() {
    let before = percore::stats().driver.ops;
    // Dropping a SharedFd closes it through the ring (a detached close).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(percore::fd::SharedFd::new(reader.into()));
    drop(percore::fd::SharedFd::new(writer.into()));
    percore::yield_now().await;
    Op::new(Nop).await.unwrap();
    let after = percore::stats().driver.ops;
    let close = opcode::Close::CODE;
    assert_eq!(after.submitted(close) - before.submitted(close), 2);
    assert_eq!(after.completed(close) - before.completed(close), 2);
}

#[percore::test]
async fn tasks_are_counted_from_spawn_to_finish() {
    let before = percore::stats().executor;
    let ok = percore::spawn(async { 1 });
    let panics = percore::spawn(async { panic!("counted") });
    let aborted = percore::spawn(percore::time::sleep(Duration::from_secs(60)));
    aborted.abort();
    assert_eq!(ok.await.unwrap(), 1);
    assert!(panics.await.is_err());
    assert!(aborted.await.is_err());
    let after = percore::stats().executor;
    assert_eq!(after.spawned - before.spawned, 3);
    assert_eq!(after.finished - before.finished, 3);
    assert!(after.polled - before.polled >= 3);
}

#[percore::test]
async fn timers_is_a_gauge() {
    let timers = percore::stats().timers;
    let sleeper = percore::spawn(percore::time::sleep(Duration::from_secs(60)));
    percore::yield_now().await; // the sleeper runs and arms its timer
    assert_eq!(percore::stats().timers, timers + 1);
    sleeper.abort();
    assert!(sleeper.await.is_err());
    assert_eq!(percore::stats().timers, timers);
}

#[percore::test]
async fn display_is_a_short_report() {
    Op::new(Nop).await.unwrap();
    let report = percore::stats().to_string();
    let lines: Vec<_> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert!(lines[0].starts_with("ring:"), "{report}");
    let driver = percore::capabilities().unwrap().driver;
    assert!(lines[0].contains(&format!("{driver} driver")), "{report}");
    assert!(lines[1].starts_with("tasks:"), "{report}");
    assert!(lines[2].contains(" nop 1/1"), "{report}");
}

#[percore::test]
async fn the_default_queue_alone_is_listed_and_counts_its_tasks() {
    let before = percore::stats().queues;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!((&*before[0].name, before[0].shares), ("default", 100));
    percore::spawn(async {}).await.unwrap();
    let after = percore::stats().queues;
    assert_eq!(after[0].spawned - before[0].spawned, 1);
    assert_eq!(after[0].finished - before[0].finished, 1);
    assert!(after[0].polls > before[0].polls);
}

/// Steps: make a second queue; run tasks in it that spin ~1 ms each (with a
/// yield between chunks, so the queue takes turns); then `stats()` lists
/// both queues with what `TaskQueue::stats` says, and prints a line for
/// each.
#[percore::test]
async fn every_task_queue_is_in_stats_and_in_its_report() {
    use percore::task::{Latency, TaskQueue};

    let bulk = TaskQueue::new("bulk", 50, Latency::NotImportant);
    let spin = |n| async move {
        for _ in 0..n {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_micros(100) {
                std::hint::spin_loop();
            }
            percore::task::yield_if_needed().await;
        }
    };
    let tasks: Vec<_> = (0..3).map(|_| bulk.spawn(spin(10))).collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = percore::stats();
    let names: Vec<&str> = stats.queues.iter().map(|q| &*q.name).collect();
    assert_eq!(names, ["default", "bulk"]);
    let q = &stats.queues[1];
    assert_eq!(*q, bulk.stats(), "the two views of one queue differ");
    assert_eq!((q.shares, q.spawned, q.finished), (50, 3, 3));
    assert!(q.polls >= 3 && q.turns >= 1, "{q:?}");
    // Three tasks spun 100 µs ten times each in this queue's polls.
    assert!(q.cpu >= Duration::from_millis(3), "{q:?}");
    assert!(
        q.delay_p50 <= q.delay_p99 && q.delay_p99 <= q.delay_max,
        "{q:?}"
    );
    let report = stats.to_string();
    let queue_lines: Vec<_> = report.lines().filter(|l| l.starts_with("queue ")).collect();
    assert_eq!(queue_lines.len(), 2, "{report}");
    assert!(
        queue_lines[0].starts_with("queue default: 100 shares"),
        "{report}"
    );
    assert!(
        queue_lines[1].starts_with("queue bulk: 50 shares"),
        "{report}"
    );
    assert!(queue_lines[1].contains("3 tasks (3 finished)"), "{report}");
}

#[test]
fn runtime_stats_lists_the_queues_from_outside() {
    let rt = percore::Runtime::new().unwrap();
    rt.block_on(async {
        percore::task::TaskQueue::new("made-inside", 10, percore::task::Latency::NotImportant);
    });
    let names: Vec<String> = rt
        .stats()
        .queues
        .iter()
        .map(|q| q.name.to_string())
        .collect();
    assert_eq!(names, ["default", "made-inside"]);
}
