//! Dropping an op while the kernel owns it: the buffer (and everything else
//! the SQE points at) lives until the op's completion arrives, never less.
//!
//! Each test uses `TrackedBuf`, which logs its own drop, and checks the order
//! of events: the future is dropped, the buffer is still alive, the cancel
//! (or the data) completes the op, and only then the buffer is dropped.

mod support;

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Op, PollAdd, Read, Readv, TimeoutOp, Write};
use support::{CountingWaker, Event, EventLog, poll_once, poll_with, settle, wait_until};

/// Polls `op` once and lets the loop submit it, so the kernel owns it.
async fn start<T: percore::op::OpCode>(op: &mut Op<T>) {
    assert!(poll_once(op).await.is_pending());
    percore::yield_now().await;
}

#[percore::test]
async fn read_dropped_in_flight_keeps_buffer_until_cancel_completes() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let buf = log.buf(64);
    let id = buf.id();
    let in_flight = percore::stats().in_flight;
    let mut op = Op::new(Read::new(
        SharedFd::new(reader.into()),
        buf,
        CURRENT_POSITION,
    ));
    start(&mut op).await;
    assert_eq!(percore::stats().in_flight, in_flight + 1);

    // 1. Drop the future while the read waits for data in the kernel.
    drop(op);
    log.mark("future dropped");
    // 2. The kernel may still write into the buffer: it must be alive.
    assert!(!log.is_dropped(id), "buffer freed while the kernel owns it");
    assert_eq!(percore::stats().in_flight, in_flight + 1);
    // 3. The loop submits the async-cancel; its CQE frees the buffer.
    settle().await;
    log.assert_before(&Event::Mark("future dropped"), &Event::Dropped(id));
    assert!(log.is_dropped(id));

    // 4. The read was cancelled, not completed, and its fd closed with
    //    it (once the loop submitted the close): the pipe has no reader.
    percore::yield_now().await;
    let err = writer.write_all(b"late").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[percore::test]
async fn read_dropped_in_flight_then_data_arrives() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());
    let buf = log.buf(64);
    let id = buf.id();
    let mut op = Op::new(Read::new(fd.clone(), buf, CURRENT_POSITION));
    start(&mut op).await;
    drop(op);
    // The data races the cancel: whichever wins, the buffer stays alive
    // until the op's own CQE.
    writer.write_all(b"race").unwrap();
    log.mark("written");
    assert!(!log.is_dropped(id));
    settle().await;
    log.assert_before(&Event::Mark("written"), &Event::Dropped(id));
    drop(fd);
}

#[percore::test]
async fn read_queued_but_not_yet_submitted_is_safe_to_drop() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let buf = log.buf(64);
    let id = buf.id();
    let mut op = Op::new(Read::new(
        SharedFd::new(reader.into()),
        buf,
        CURRENT_POSITION,
    ));
    // Polled once: the SQE sits in the SQ, the loop has not entered yet.
    assert!(poll_once(&mut op).await.is_pending());
    drop(op);
    assert!(
        !log.is_dropped(id),
        "the queued SQE still points at the buffer"
    );
    settle().await;
    assert!(log.is_dropped(id));
}

#[percore::test]
async fn op_dropped_before_first_poll_frees_at_once_and_submits_nothing() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let buf = log.buf(64);
    let id = buf.id();
    let before = percore::stats();
    let op = Op::new(Read::new(
        SharedFd::new(reader.into()),
        buf,
        CURRENT_POSITION,
    ));
    drop(op);
    assert!(log.is_dropped(id));
    let after = percore::stats();
    assert_eq!(after.in_flight, before.in_flight);
    assert_eq!(after.driver.submitted, before.driver.submitted);
}

#[percore::test]
async fn completed_then_dropped_before_repoll() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let buf = log.buf(64);
    let id = buf.id();
    let (woken, waker) = CountingWaker::new();
    // Keep a handle so dropping the op closes nothing (no close SQE).
    let fd = SharedFd::new(reader.into());
    let mut op = Op::new(Read::new(fd.clone(), buf, CURRENT_POSITION));
    // Data comes after the first poll, so no driver completes it inside.
    assert!(poll_with(&mut op, &waker).is_pending());
    writer.write_all(b"hello").unwrap();
    // 1. Run the loop until the CQE has arrived (it wakes our waker).
    assert!(wait_until(Duration::from_secs(5), || woken.count() > 0).await);
    // 2. The slot holds the result; nothing was freed yet.
    assert_eq!(percore::stats().in_flight, 1);
    assert!(!log.is_dropped(id));
    // 3. Dropping now frees everything at once: no cancel needed.
    let submitted = percore::stats().driver.submitted;
    drop(op);
    assert!(log.is_dropped(id));
    assert_eq!(percore::stats().in_flight, 0);
    percore::yield_now().await;
    assert_eq!(
        percore::stats().driver.submitted,
        submitted,
        "no cancel was sent"
    );
    // The kernel did consume the bytes (the read had completed): the
    // pipe is empty now.
    support::set_nonblocking(fd.as_raw_fd());
    let mut probe = [0u8; 8];
    // SAFETY: reads at most 8 bytes into a live stack buffer.
    let n = unsafe { libc::read(fd.as_raw_fd(), probe.as_mut_ptr().cast(), 8) };
    assert_eq!(n, -1);
    assert_eq!(
        std::io::Error::last_os_error().kind(),
        std::io::ErrorKind::WouldBlock
    );
    drop(writer);
}

#[percore::test]
async fn readv_dropped_in_flight_keeps_every_buffer() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let bufs: Vec<_> = (0..3).map(|_| log.buf(16)).collect();
    let ids: Vec<usize> = bufs.iter().map(|b| b.id()).collect();
    let mut op = Op::new(Readv::new(
        SharedFd::new(reader.into()),
        bufs,
        CURRENT_POSITION,
    ));
    start(&mut op).await;
    drop(op);
    log.mark("future dropped");
    assert_eq!(log.dropped_count(), 0);
    settle().await;
    for id in ids {
        log.assert_before(&Event::Mark("future dropped"), &Event::Dropped(id));
    }
}

#[percore::test]
async fn write_to_full_pipe_dropped_in_flight_keeps_buffer() {
    let log = EventLog::new();
    let (mut reader, writer) = std::io::pipe().unwrap();
    support::set_nonblocking(writer.as_raw_fd());
    // Fill the pipe so the next write must wait inside the kernel.
    let chunk = [7u8; 4096];
    let mut filled = 0usize;
    loop {
        match (&writer).write(&chunk) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let buf = log.buf_with(&[9u8; 4096]);
    let id = buf.id();

    let mut op = Op::new(Write::new(
        SharedFd::new(writer.into()),
        buf,
        CURRENT_POSITION,
    ));
    start(&mut op).await;
    drop(op);
    log.mark("future dropped");
    assert!(!log.is_dropped(id), "the kernel may still read the buffer");
    settle().await;
    log.assert_before(&Event::Mark("future dropped"), &Event::Dropped(id));
    // Drain what was written so the reader sees the pipe is consistent.
    let mut sink = vec![0u8; filled];
    reader.read_exact(&mut sink).unwrap();
}

#[percore::test]
async fn timeout_op_dropped_in_flight_wakes_nobody() {
    let (woken, waker) = CountingWaker::new();
    let mut op = Op::new(TimeoutOp::new(Duration::from_millis(20)));
    assert!(poll_with(&mut op, &waker).is_pending());
    percore::yield_now().await;
    assert_eq!(percore::stats().in_flight, 1);
    drop(op);
    settle().await;
    // Past the timeout's original expiry: the dropped op stays silent.
    percore::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(woken.count(), 0);
    assert_eq!(percore::stats().in_flight, 0);
}

#[percore::test]
async fn poll_add_dropped_in_flight_is_cancelled() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let (woken, waker) = CountingWaker::new();
    let mut op = Op::new(PollAdd::new(
        SharedFd::new(reader.try_clone().unwrap().into()),
        libc::POLLIN as u32,
    ));
    assert!(poll_with(&mut op, &waker).is_pending());
    percore::yield_now().await;
    assert_eq!(percore::stats().in_flight, 1);
    drop(op);
    settle().await;
    writer.write_all(b"x").unwrap();
    percore::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(woken.count(), 0);
    assert_eq!(percore::stats().in_flight, 0);
    drop(reader);
}

#[percore::test]
async fn task_aborted_and_timed_out_with_reads_in_flight() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());

    // Through abort. The mark guard is declared before the op, so it is
    // dropped after it: had the op freed its buffer synchronously on
    // drop, `Dropped` would come first.
    let buf = log.buf(32);
    let aborted_id = buf.id();
    let (l, f) = (log.clone(), fd.clone());
    let h = percore::spawn(async move {
        let _mark = l.mark_on_drop("task future dropped");
        Op::new(Read::new(f, buf, CURRENT_POSITION)).await
    });
    percore::yield_now().await;
    percore::yield_now().await;
    assert_eq!(percore::stats().in_flight, 1);
    h.abort();
    assert!(h.await.unwrap_err().is_cancelled());

    // Through a timeout.
    let buf = log.buf(32);
    let timed_out_id = buf.id();
    let l = log.clone();
    let read = async {
        let _mark = l.mark_on_drop("timed-out future dropped");
        Op::new(Read::new(fd.clone(), buf, CURRENT_POSITION)).await
    };
    assert!(
        percore::time::timeout(Duration::from_millis(3), read)
            .await
            .is_err()
    );

    settle().await;
    log.assert_before(
        &Event::Mark("task future dropped"),
        &Event::Dropped(aborted_id),
    );
    log.assert_before(
        &Event::Mark("timed-out future dropped"),
        &Event::Dropped(timed_out_id),
    );
}

#[percore::test]
async fn many_reads_dropped_in_flight() {
    let log = EventLog::new();
    let mut pipes = Vec::new();
    let mut ops = Vec::new();
    for _ in 0..200 {
        let (reader, writer) = std::io::pipe().unwrap();
        pipes.push(writer);
        ops.push(Op::new(Read::new(
            SharedFd::new(reader.into()),
            log.buf(8),
            CURRENT_POSITION,
        )));
    }
    for op in ops.iter_mut() {
        assert!(poll_once(op).await.is_pending());
    }
    percore::yield_now().await;
    assert_eq!(percore::stats().in_flight, 200);
    // Complete half of them by writing, drop all.
    for w in pipes.iter_mut().step_by(2) {
        w.write_all(b"z").unwrap();
    }
    drop(ops);
    log.mark("dropped all");
    assert!(log.dropped_count() <= 200);
    settle().await;
    assert_eq!(log.dropped_count(), 200);
    let events = log.events();
    let mark = events
        .iter()
        .position(|e| *e == Event::Mark("dropped all"))
        .unwrap();
    // Any buffer freed before the mark belonged to an op whose CQE had
    // already arrived; none may be freed while still in flight, which
    // `settle` + in_flight == 0 vouch for.
    assert!(mark <= events.len());
    assert_eq!(percore::stats().in_flight, 0);
}

#[test]
fn runtime_dropped_with_read_in_flight() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let rt = percore::Runtime::new().unwrap();
    let l = log.clone();
    let (id, handle) = rt.block_on(async move {
        let buf = l.buf(64);
        let id = buf.id();
        let h = percore::spawn(Op::new(Read::new(
            SharedFd::new(reader.into()),
            buf,
            CURRENT_POSITION,
        )));
        percore::yield_now().await;
        percore::yield_now().await;
        assert_eq!(percore::stats().in_flight, 1);
        (id, h)
    });
    assert!(!log.is_dropped(id));
    // 1. Shutdown drops the task, the op moves to its slot, the runtime
    //    cancels it and waits for the CQE before freeing the buffer.
    drop(rt);
    assert!(log.is_dropped(id), "the cancel completed during shutdown");
    // 2. The kernel holds no reference to the read end any more.
    let err = writer.write_all(b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    // 3. The handle outlives its runtime and reports cancellation.
    let rt = percore::Runtime::new().unwrap();
    assert!(rt.block_on(handle).unwrap_err().is_cancelled());
}

#[test]
fn runtime_dropped_with_many_kinds_of_ops_in_flight() {
    let log = EventLog::new();
    let mut writers = Vec::new();
    let rt = percore::Runtime::new().unwrap();
    rt.block_on(async {
        for i in 0..50 {
            let (reader, writer) = std::io::pipe().unwrap();
            let fd = SharedFd::new(reader.into());
            drop(percore::spawn(Op::new(Read::new(
                fd.clone(),
                log.buf(16),
                CURRENT_POSITION,
            ))));
            drop(percore::spawn(Op::new(Readv::new(
                fd.clone(),
                vec![log.buf(4), log.buf(4)],
                CURRENT_POSITION,
            ))));
            drop(percore::spawn(Op::new(PollAdd::new(
                fd.clone(),
                libc::POLLIN as u32,
            ))));
            drop(percore::spawn(Op::new(TimeoutOp::new(
                Duration::from_secs(60 + i),
            ))));
            // Keep the fd alive as long as the poll-add might use it.
            drop(percore::spawn(async move {
                percore::time::sleep(Duration::from_secs(60)).await;
                drop(fd);
            }));
            writers.push(writer);
        }
        // 250 tasks take several loop ticks to start (a tick runs at most
        // 128 polls, or 200 µs of them).
        for _ in 0..1000 {
            if percore::stats().in_flight == 200 {
                break;
            }
            percore::yield_now().await;
        }
        assert_eq!(percore::stats().in_flight, 200);
    });
    drop(rt);
    assert_eq!(
        log.dropped_count(),
        150,
        "every buffer freed after its cancel"
    );
    for mut w in writers {
        assert_eq!(
            w.write_all(b"x").unwrap_err().kind(),
            std::io::ErrorKind::BrokenPipe
        );
    }
}

#[test]
fn op_outliving_its_runtime_is_leaked_not_freed() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let rt = percore::Runtime::new().unwrap();
    let l = log.clone();
    let (id, op) = rt.block_on(async move {
        let buf = l.buf(64);
        let id = buf.id();
        let mut op = Op::new(Read::new(
            SharedFd::new(reader.into()),
            buf,
            CURRENT_POSITION,
        ));
        start(&mut op).await;
        (id, op)
    });
    drop(rt);
    // No runtime is left to take the op over: it is leaked, never freed
    // under a kernel that might still write into it.
    drop(op);
    assert!(!log.is_dropped(id));
}

#[test]
fn op_moved_to_another_runtime_is_leaked_not_freed_and_leaves_its_ops_alone() {
    // Slot indices are per ring: the op started on `first` must not touch
    // the slot with the same index on `second`, nor free its buffer there.
    let log = EventLog::new();
    let (reader1, mut writer1) = std::io::pipe().unwrap();
    let (reader2, mut writer2) = std::io::pipe().unwrap();
    let first = percore::Runtime::new().unwrap();
    let second = percore::Runtime::new().unwrap();
    // A read of a pipe nobody writes yet: in flight until data arrives.
    let pipe_read = |reader: std::io::PipeReader, buf| {
        Op::new(Read::new(
            SharedFd::new(reader.into()),
            buf,
            CURRENT_POSITION,
        ))
    };
    let buf = log.buf(8);
    let moved_id = buf.id();
    let mut moved = pipe_read(reader1, buf);
    first.block_on(start(&mut moved));

    // Polling it on `second` panics with a clear message, and unwinding
    // drops it there: leaked, as it must be.
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        second.block_on(async move {
            let _ = poll_once(&mut moved).await;
        })
    }))
    .unwrap_err();
    let msg = panic
        .downcast_ref::<&str>()
        .map_or_else(|| format!("{panic:?}"), |s| s.to_string());
    assert!(msg.contains("different runtime"), "{msg}");
    assert!(
        !log.is_dropped(moved_id),
        "the kernel may still write into it"
    );

    // Dropped (not polled) on `second` while `second` has its own op in the
    // same slot: that op is not disturbed.
    let (reader3, mut writer3) = std::io::pipe().unwrap();
    let buf = log.buf(8);
    let moved_id = buf.id();
    let mut moved = pipe_read(reader3, buf);
    first.block_on(start(&mut moved));
    let got = second.block_on(async move {
        let mut own = Op::new(Read::new(
            SharedFd::new(reader2.into()),
            Vec::with_capacity(8),
            CURRENT_POSITION,
        ));
        start(&mut own).await;
        drop(moved);
        writer2.write_all(b"mine").unwrap();
        let (res, buf) = own.await;
        res.unwrap();
        buf
    });
    assert_eq!(got, b"mine");
    assert!(!log.is_dropped(moved_id));
    // `first` still owns both reads: their data completes them there (the
    // slots stay, holding nothing of the leaked buffers).
    let before = first.stats().driver.completed;
    writer1.write_all(b"x").unwrap();
    writer3.write_all(b"y").unwrap();
    first.block_on(async {
        let done = || percore::stats().driver.completed >= before + 2;
        assert!(wait_until(Duration::from_secs(5), done).await);
    });
    assert!(!log.is_dropped(moved_id));
}
