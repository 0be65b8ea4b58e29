//! Ops that name a descriptor hold it: `Close` owns the one it closes,
//! `PollAdd` keeps its `SharedFd` open while it may run, and a `FixedFd`
//! is used only on the ring whose file table it names.

mod support;

use std::io::Write as _;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{Close, Op, PollAdd};
use support::{poll_once, settle, wait_until};

/// Whether the read end of `writer`'s pipe is closed (its write end then
/// polls as POLLERR). Writes nothing, so it never blocks.
fn reader_closed(writer: &mut std::io::PipeWriter) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: writer.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: polls one live pollfd, without waiting.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    pfd.revents & libc::POLLERR != 0
}

/// Runs the loop (a close of a dropped descriptor goes through the ring
/// with the next tick) until the read end is closed, for at most 5 s.
async fn wait_reader_closed(writer: &mut std::io::PipeWriter) -> bool {
    wait_until(Duration::from_secs(5), || reader_closed(writer)).await
}

#[percore::test]
async fn close_closes_its_fd() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    Op::new(Close::new(reader.into())).await.unwrap();
    assert!(reader_closed(&mut writer));
}

/// `Close` took a raw number and, dropped before it ran, forgot it: the
/// descriptor leaked.
#[percore::test]
async fn close_dropped_before_submit_closes_its_fd() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let op = Op::new(Close::new(reader.into()));
    drop(op);
    settle().await;
    assert!(
        wait_reader_closed(&mut writer).await,
        "the descriptor leaked"
    );
}

#[percore::test]
async fn close_cancelled_before_submit_closes_its_fd() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut op = Op::new(Close::new(reader.into()));
    op.cancel();
    let res = op.await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    settle().await;
    assert!(
        wait_reader_closed(&mut writer).await,
        "the descriptor leaked"
    );
}

/// `PollAdd` took a raw number: the caller could close the descriptor
/// before the op was submitted, and the poll then watched whatever file
/// reused the number. It holds a `SharedFd` clone now.
#[percore::test]
async fn poll_add_keeps_its_fd_until_it_completes() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut op = Op::new(PollAdd::new(
        SharedFd::new(reader.into()),
        libc::POLLIN as u32,
    ));
    // Another pipe, opened after the op was made; data arrives only there.
    let (_other_reader, mut other_writer) = std::io::pipe().unwrap();
    other_writer.write_all(b"other").unwrap();
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    assert!(
        poll_once(&mut op).await.is_pending(),
        "polled the wrong file"
    );
    assert!(!reader_closed(&mut writer));
    writer.write_all(b"mine").unwrap();
    let events = percore::time::timeout(Duration::from_secs(5), op)
        .await
        .expect("poll completes")
        .unwrap();
    assert!(events & libc::POLLIN as u32 != 0);
}

#[percore::test]
async fn poll_add_dropped_in_flight_closes_its_fd_after_the_completion() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut op = Op::new(PollAdd::new(
        SharedFd::new(reader.into()),
        libc::POLLIN as u32,
    ));
    assert!(poll_once(&mut op).await.is_pending());
    percore::yield_now().await;
    drop(op);
    settle().await;
    assert_eq!(percore::stats().in_flight, 0);
    assert!(
        wait_reader_closed(&mut writer).await,
        "the descriptor leaked"
    );
}

/// A `FixedFd` names a slot of one ring's file table. Used on another
/// runtime, the op worked on whatever file that ring has in the same slot:
/// here it read the other runtime's file.
#[test]
fn fixed_fd_used_on_another_runtime_panics() {
    use percore::buf::FixedBufPool;
    use percore::op::{FixedFd, ReadFixed};

    let dir = std::env::temp_dir();
    let path_a = dir.join(format!("percore-fixed-a-{}", std::process::id()));
    let path_b = dir.join(format!("percore-fixed-b-{}", std::process::id()));
    std::fs::write(&path_a, b"AAAA").unwrap();
    std::fs::write(&path_b, b"BBBB").unwrap();
    let open = |p: &std::path::Path| SharedFd::new(std::fs::File::open(p).unwrap().into());
    let first = percore::Runtime::new().unwrap();
    let second = percore::Runtime::new().unwrap();
    let Ok(fixed_a) = first.block_on(async { FixedFd::register(&open(&path_a)) }) else {
        eprintln!("SKIPPED: cannot register files");
        return;
    };
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        second.block_on(async {
            // The other runtime's own file, likely in the same slot.
            let fixed_b = FixedFd::register(&open(&path_b)).unwrap();
            let Ok(pool) = FixedBufPool::new(1, 4096) else {
                return None;
            };
            let (res, buf) = Op::new(ReadFixed::new(fixed_a, pool.get().await, 0)).await;
            drop(fixed_b);
            Some(res.map(|n| buf[..n].to_vec()))
        })
    }));
    let _ = std::fs::remove_file(&path_a);
    let _ = std::fs::remove_file(&path_b);
    let panic = match res {
        Ok(None) => {
            eprintln!("SKIPPED: no registered buffers");
            return;
        }
        Ok(Some(read)) => panic!("the op ran on the other runtime's file table: {read:?}"),
        Err(panic) => panic,
    };
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("different runtime"), "{msg}");
}
