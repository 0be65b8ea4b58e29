//! Dropping a runtime with thousands of ops in flight: every op is cancelled
//! and its buffer freed after its completion, none leaked.
//!
//! Regression: the shutdown used to re-issue a cancel-everything request on
//! each wait round, making the kernel walk every op again while only a small
//! batch of completions was delivered per `io_uring_enter`; past ~5,000 ops
//! the 2 s shutdown bound ran out and the ops were leaked.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Op, Read};

mod support;
use support::EventLog;

fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit on this frame.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = want.min(lim.rlim_max);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

#[test]
fn runtime_dropped_with_8000_reads_in_flight_frees_every_buffer() {
    let limit = raise_nofile(20_000);
    // Two descriptors per pair plus the test's own; stay well inside.
    let n = ((limit as usize).saturating_sub(200) / 2).min(8000);
    assert!(
        n >= 6000,
        "RLIMIT_NOFILE hard limit {limit} is too low for this test"
    );
    let log = EventLog::new();
    let mut peers = Vec::with_capacity(n);
    {
        let rt = percore::Runtime::new().unwrap();
        rt.block_on(async {
            for _ in 0..n {
                let (ours, theirs) = UnixStream::pair().unwrap();
                peers.push(theirs);
                let fd = SharedFd::new(ours.into());
                let buf = log.buf(64);
                percore::spawn(async move {
                    let _ = Op::new(Read::new(fd, buf, CURRENT_POSITION)).await;
                });
            }
            // Let every task run and its read reach the kernel (bounded).
            for _ in 0..1000 {
                if percore::stats().in_flight >= n {
                    break;
                }
                percore::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(percore::stats().in_flight, n);
        });
        // No buffer freed while the kernel owns it.
        assert_eq!(log.live(), n);
    }
    // The runtime is gone: every read was cancelled, completed, and freed.
    assert_eq!(log.live(), 0, "buffers leaked at shutdown");
    drop(peers);
}
