//! Dropping in-flight file ops: buffers outlive the kernel's use of them, and
//! file contents are never torn.

mod support;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use percore::buf::AlignedBuf;
use percore::fs::{File, OpenOptions};
use support::EventLog;
use support::fs::{TempPath, pattern};

/// Polls `fut` exactly once and reports whether it was still pending.
async fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = Some(fut);
    poll_fn(|cx| Poll::Ready(fut.take().unwrap().poll(cx).is_pending())).await
}

/// Runs the loop until the tracked buffer `id` is dropped (at most 1 s).
async fn settle(log: &EventLog, id: usize) {
    for _ in 0..200 {
        if log.is_dropped(id) {
            return;
        }
        percore::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn dropped_read_keeps_its_buffer_until_the_cqe() {
    let tmp = TempPath::new("drop-read");
    std::fs::write(tmp.path(), pattern(1 << 20, 0)).unwrap();
    percore::run(async {
        // Ring reads only, so the first poll submits and cannot complete.
        let file = OpenOptions::new()
            .read(true)
            .nowait_reads(false)
            .open(tmp.path())
            .await
            .unwrap();
        let log = EventLog::new();
        let buf = log.buf(1 << 20);
        let id = buf.id();
        {
            let mut fut = pin!(file.read_at(buf, 0));
            assert!(poll_once(fut.as_mut()).await, "the read is in flight");
        }
        // 1. The future is gone, the kernel may still write: the driver holds the buffer.
        assert!(
            !log.is_dropped(id),
            "buffer freed while the kernel may still use it"
        );
        assert!(percore::stats().in_flight >= 1);
        // 2. Once the CQE arrives, the buffer is freed.
        settle(&log, id).await;
        assert!(log.is_dropped(id), "buffer freed after the completion");
        assert_eq!(percore::stats().in_flight, 0);
    });
}

#[test]
fn dropped_direct_read_keeps_its_buffer_until_the_cqe() {
    let tmp = TempPath::new("drop-dread");
    std::fs::write(tmp.path(), pattern(1 << 20, 0)).unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .direct(true)
            .open(tmp.path())
            .await
            .unwrap();
        for _ in 0..20 {
            let buf = AlignedBuf::new(256 * 1024);
            let ptr = buf.as_ptr() as usize;
            {
                let mut fut = pin!(file.read_at(buf, 0));
                assert!(poll_once(fut.as_mut()).await);
            }
            // The next allocation of the same size must not get the same
            // memory while the kernel may still DMA into it.
            let other = AlignedBuf::new(256 * 1024);
            assert_ne!(other.as_ptr() as usize, ptr, "in-flight buffer was freed");
        }
        support::settle().await;
    });
}

#[test]
fn dropped_write_keeps_its_buffer_and_never_tears() {
    const LEN: usize = 64 * 1024;
    let old = pattern(LEN, 1);
    let new = pattern(LEN, 2);
    for round in 0..20 {
        let tmp = TempPath::new("drop-write");
        std::fs::write(tmp.path(), &old).unwrap();
        percore::run(async {
            let file = OpenOptions::new()
                .write(true)
                .open(tmp.path())
                .await
                .unwrap();
            let log = EventLog::new();
            let buf = log.buf_with(&new);
            let id = buf.id();
            {
                let mut fut = pin!(file.write_at(buf, 0));
                assert!(poll_once(fut.as_mut()).await, "the write is in flight");
            }
            assert!(
                !log.is_dropped(id),
                "round {round}: buffer freed while the kernel may read it"
            );
            settle(&log, id).await;
            assert!(
                log.is_dropped(id),
                "round {round}: buffer freed after the completion"
            );
        });
        let got = std::fs::read(tmp.path()).unwrap();
        assert!(got == old || got == new, "round {round}: contents torn");
    }
}

#[test]
fn dropping_the_runtime_with_reads_in_flight() {
    let tmp = TempPath::new("drop-rt");
    std::fs::write(tmp.path(), pattern(1 << 20, 0)).unwrap();
    let log = EventLog::new();
    let buf = log.buf(1 << 20);
    let id = buf.id();
    let rt = percore::Runtime::new().unwrap();
    rt.block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .nowait_reads(false)
            .open(tmp.path())
            .await
            .unwrap();
        percore::spawn(async move {
            let _ = file.read_at(buf, 0).await;
            // Park forever so the task is still alive when the runtime drops.
            std::future::pending::<()>().await;
        });
        percore::yield_now().await;
    });
    drop(rt);
    assert!(
        log.is_dropped(id),
        "the buffer is freed once the runtime shut down after the CQE"
    );
}

#[test]
fn close_waits_for_ops_on_other_handles() {
    let tmp = TempPath::new("close");
    std::fs::write(tmp.path(), pattern(8192, 0)).unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .nowait_reads(false)
            .open(tmp.path())
            .await
            .unwrap();
        let fd = file.fd().clone();
        let read = percore::spawn(async move {
            let op = percore::op::Read::new(fd, Vec::with_capacity(4096), 0);
            percore::op::Op::new(op).await
        });
        percore::yield_now().await;
        // The read holds its own handle: close returns and the fd stays open for it.
        file.close().await.unwrap();
        let (n, buf) = read.await.unwrap();
        assert_eq!(n.unwrap(), 4096);
        assert_eq!(buf, &pattern(8192, 0)[..4096]);
    });
}

#[test]
fn file_read_then_drop_file_closes_fd() {
    let tmp = TempPath::new("dropfile");
    std::fs::write(tmp.path(), b"abc").unwrap();
    percore::run(async {
        let file = File::open(tmp.path()).await.unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        drop(file);
        support::assert_closed_soon(fd, tmp.path()).await;
    });
}
