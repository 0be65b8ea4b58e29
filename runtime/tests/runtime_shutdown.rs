//! Shutdown: no descriptor leaks, whatever was in flight or queued when the
//! runtime went away.
//!
//! One test in this file on purpose: it counts the process's open
//! descriptors, which other tests running in parallel would disturb.

mod support;

use std::io::Write as _;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Nop, Op, PollAdd, Read, TimeoutOp};
use support::{EventLog, assert_no_new_fds, fd_table, watchdog};

fn pipe_fd() -> (SharedFd, std::io::PipeWriter) {
    let (r, w) = std::io::pipe().unwrap();
    (SharedFd::new(r.into()), w)
}

#[test]
fn no_descriptor_leaks_across_shutdown_paths() {
    let _dog = watchdog("no_descriptor_leaks", Duration::from_secs(60));
    let log = EventLog::new();
    // Warm up process-wide state (thread pool, std's lazy fds) before counting.
    percore::run(async { percore::spawn_blocking(|| ()).await.unwrap() });
    let baseline = fd_table();

    // 1. Runtimes built and dropped: ring fd and eventfd are closed.
    for _ in 0..20 {
        let rt = percore::Runtime::new().unwrap();
        rt.block_on(async { Op::new(Nop).await.unwrap() });
    }
    assert_no_new_fds(&baseline, "after plain runtimes");

    // 2. A descriptor dropped as the main future returns: its close is only
    //    queued on the ring when the runtime shuts down.
    for _ in 0..20 {
        percore::run(async {
            let (fd, w) = pipe_fd();
            drop(fd);
            drop(w);
        });
    }
    assert_no_new_fds(&baseline, "after closes queued at shutdown");

    // 3. Completed reads, explicit closes.
    for _ in 0..20 {
        percore::run(async {
            let (fd, mut w) = pipe_fd();
            w.write_all(b"abc").unwrap();
            let (n, _) = Op::new(Read::new(
                fd.clone(),
                Vec::with_capacity(8),
                CURRENT_POSITION,
            ))
            .await;
            assert_eq!(n.unwrap(), 3);
            fd.close().await.unwrap();
        });
    }
    assert_no_new_fds(&baseline, "after completed reads");

    // 4. Reads dropped in flight (future dropped, cancel completes).
    for _ in 0..20 {
        percore::run(async {
            let (fd, _w) = pipe_fd();
            let read = Op::new(Read::new(fd, log.buf(8), CURRENT_POSITION));
            assert!(
                percore::time::timeout(Duration::from_millis(1), read)
                    .await
                    .is_err()
            );
        });
    }
    assert_no_new_fds(&baseline, "after reads dropped in flight");

    // 5. Runtime dropped with tasks holding reads, poll-adds and kernel
    //    timeouts in flight.
    for _ in 0..20 {
        let rt = percore::Runtime::new().unwrap();
        rt.block_on(async {
            for _ in 0..5 {
                let (fd, w) = pipe_fd();
                drop(percore::spawn(Op::new(Read::new(
                    fd.clone(),
                    log.buf(8),
                    CURRENT_POSITION,
                ))));
                drop(percore::spawn(async move {
                    let _keep = w;
                    Op::new(PollAdd::new(fd, libc::POLLIN as u32)).await
                }));
                drop(percore::spawn(Op::new(TimeoutOp::new(
                    Duration::from_secs(60),
                ))));
            }
            // 15 tasks may take more than one pass to start (a pass ends
            // after 200 µs of polls, which a slow build reaches sooner).
            support::wait_until(Duration::from_secs(10), || percore::stats().in_flight == 15).await;
            assert_eq!(percore::stats().in_flight, 15);
        });
        drop(rt);
    }
    assert_no_new_fds(&baseline, "after runtimes dropped with ops in flight");
    // Every tracked buffer came back: nothing leaked, nothing freed early
    // (op_drop.rs checks the order).
    assert_eq!(log.dropped_count(), 20 + 20 * 5);
}
