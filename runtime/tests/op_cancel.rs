//! `Op::cancel`: the op is cancelled but its future still returns the
//! buffer; a result that won the race against the cancel is kept.

mod support;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Nop, Op, PollAdd, Read, Readv, TimeoutOp};
use support::{CountingWaker, EventLog, poll_once, poll_with, settle, wait_until};

#[percore::test]
async fn cancel_in_flight_read_returns_ecanceled_and_the_buffer() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let buf = log.buf(64);
    let id = buf.id();
    let mut op = Op::new(Read::new(
        SharedFd::new(reader.into()),
        buf,
        CURRENT_POSITION,
    ));
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    op.cancel();
    let (res, buf) = op.await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    assert_eq!(buf.id(), id, "the same buffer comes back");
    assert!(buf.bytes().is_empty());
    assert!(!log.is_dropped(id), "the caller owns it again");
    assert_eq!(percore::stats().in_flight, 0);
    drop(buf);
    assert!(log.is_dropped(id));
    // Cancelled means the kernel read nothing, and once the loop has
    // submitted the close of the op's fd nothing holds the read end.
    percore::yield_now().await;
    assert_eq!(
        writer.write_all(b"x").unwrap_err().kind(),
        std::io::ErrorKind::BrokenPipe
    );
}

#[percore::test]
async fn read_completed_before_cancel_keeps_its_bytes() {
    let log = EventLog::new();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let (woken, waker) = CountingWaker::new();
    // Keep a handle so completing the op closes nothing (no close SQE).
    let fd = SharedFd::new(reader.into());
    let mut op = Op::new(Read::new(fd.clone(), log.buf(64), CURRENT_POSITION));
    // Data comes after the first poll, so no driver completes it inside.
    assert!(poll_with(&mut op, &waker).is_pending());
    writer.write_all(b"payload").unwrap();
    assert!(wait_until(Duration::from_secs(5), || woken.count() > 0).await);
    let submitted = percore::stats().driver.submitted;
    // The CQE is already here: cancel is a no-op.
    op.cancel();
    let (res, buf) = op.await;
    assert_eq!(res.unwrap(), 7);
    assert_eq!(buf.bytes(), b"payload");
    percore::yield_now().await;
    assert_eq!(
        percore::stats().driver.submitted,
        submitted,
        "no cancel SQE was sent"
    );
}

#[percore::test]
async fn cancel_racing_data_either_cancels_or_keeps_the_bytes() {
    for round in 0..50 {
        let log = EventLog::new();
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut op = Op::new(Read::new(
            SharedFd::new(reader.into()),
            log.buf(16),
            CURRENT_POSITION,
        ));
        assert!(poll_once(&mut op).await.is_pending());
        if round % 2 == 0 {
            percore::yield_now().await;
        }
        writer.write_all(b"abc").unwrap();
        op.cancel();
        let (res, buf) = op.await;
        match res {
            Ok(n) => {
                assert_eq!(n, 3);
                assert_eq!(buf.bytes(), b"abc");
            }
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
                assert!(buf.bytes().is_empty());
            }
        }
        assert_eq!(log.dropped_count(), 0);
    }
    assert_eq!(percore::stats().in_flight, 0);
}

#[percore::test]
async fn cancel_before_first_poll_submits_nothing() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());
    let before = percore::stats().driver.submitted;
    let mut op = Op::new(Read::new(fd.clone(), log.buf(8), CURRENT_POSITION));
    op.cancel();
    let (res, buf) = op.await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    assert_eq!(percore::buf::IoBuf::bytes_total(&buf), 8);
    percore::yield_now().await;
    assert_eq!(percore::stats().driver.submitted, before);
}

#[percore::test]
async fn cancel_is_idempotent() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());
    let mut op = Op::new(PollAdd::new(fd, libc::POLLIN as u32));
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    op.cancel();
    op.cancel();
    op.cancel();
    assert_eq!(op.await.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    settle().await;
}

#[percore::test]
async fn cancel_readv_returns_all_buffers() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let bufs = vec![log.buf(4), log.buf(4), log.buf(4)];
    let ids: Vec<_> = bufs.iter().map(|b| b.id()).collect();
    let mut op = Op::new(Readv::new(
        SharedFd::new(reader.into()),
        bufs,
        CURRENT_POSITION,
    ));
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    op.cancel();
    let (res, bufs) = op.await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    assert_eq!(bufs.iter().map(|b| b.id()).collect::<Vec<_>>(), ids);
    assert_eq!(log.dropped_count(), 0);
}

#[percore::test]
async fn cancel_kernel_timeout() {
    let mut op = Op::new(TimeoutOp::new(Duration::from_secs(60)));
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    let start = std::time::Instant::now();
    op.cancel();
    assert_eq!(op.await.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    assert!(start.elapsed() < Duration::from_secs(30));
    // An uncancelled one expires normally.
    let start = std::time::Instant::now();
    Op::new(TimeoutOp::new(Duration::from_millis(3)))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(3));
}

#[percore::test]
async fn timeout_wrapper_cancels_a_read() {
    let log = EventLog::new();
    let (reader, _writer) = std::io::pipe().unwrap();
    let read = Op::new(Read::new(
        SharedFd::new(reader.into()),
        log.buf(8),
        CURRENT_POSITION,
    ));
    let res = percore::time::timeout(Duration::from_millis(5), read).await;
    assert!(res.is_err());
    // Dropped by the timeout: freed only once the cancel completed.
    assert_eq!(log.dropped_count(), 0);
    settle().await;
    assert_eq!(log.dropped_count(), 1);
}

#[percore::test]
async fn errors_come_back_as_errno_with_the_buffer() {
    let log = EventLog::new();
    // Reading from a pipe's write end: EBADF through the CQE.
    let (_reader, writer) = std::io::pipe().unwrap();
    let buf = log.buf(4);
    let id = buf.id();
    let (res, buf) = Op::new(Read::new(
        SharedFd::new(writer.into()),
        buf,
        CURRENT_POSITION,
    ))
    .await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(buf.id(), id);
    // An O_PATH descriptor is no file to the ring: EBADF.
    let path_fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open("/")
        .unwrap();
    let events = Op::new(PollAdd::new(
        SharedFd::new(path_fd.into()),
        libc::POLLIN as u32,
    ))
    .await;
    assert_eq!(events.unwrap_err().raw_os_error(), Some(libc::EBADF));
    Op::new(Nop).await.unwrap();
}
