//! Kernel-side deadlines on ops (`Op::timeout`, IORING_OP_LINK_TIMEOUT).

use std::io::Write;
use std::time::{Duration, Instant};

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Op, Read};

#[percore::test]
async fn a_read_that_never_completes_times_out_and_returns_its_buffer() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());
    let start = Instant::now();
    let op = Op::new(Read::new(fd, Vec::with_capacity(64), CURRENT_POSITION));
    let (res, buf) = op.timeout(Duration::from_millis(20)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(buf.capacity(), 64);
    // The timeout's own completion arrives too: nothing stays in flight.
    percore::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(percore::stats().in_flight, 0);
}

#[percore::test]
async fn a_read_that_completes_in_time_is_not_affected() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(b"ready").unwrap();
    let fd = SharedFd::new(reader.into());
    let op = Op::new(Read::new(fd, Vec::with_capacity(64), CURRENT_POSITION));
    let (res, buf) = op.timeout(Duration::from_secs(10)).await;
    assert_eq!(res.unwrap(), 5);
    assert_eq!(buf, b"ready");
}

#[percore::test]
async fn an_explicit_cancel_is_not_reported_as_a_timeout() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = SharedFd::new(reader.into());
    let mut op = Op::new(Read::new(fd, Vec::with_capacity(8), CURRENT_POSITION))
        .timeout(Duration::from_secs(10));
    // Submit it, then cancel it ourselves.
    let _ = percore::time::timeout(Duration::from_millis(2), &mut op).await;
    op.cancel();
    let (res, _buf) = op.await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
}

#[test]
fn many_linked_timeouts_fill_the_ring_without_breaking_links() {
    // A small ring: pairs of SQEs must never be split across submissions.
    let rt = percore::Runtime::builder().entries(8).build().unwrap();
    rt.block_on(async {
        let pipes: Vec<_> = (0..50).map(|_| std::io::pipe().unwrap()).collect();
        let ops = pipes.iter().map(|(r, _w)| {
            let fd = SharedFd::new(r.try_clone().unwrap().into());
            Op::new(Read::new(fd, Vec::with_capacity(8), CURRENT_POSITION))
                .timeout(Duration::from_millis(10))
        });
        for (res, _buf) in percore::join_all(ops).await {
            assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        }
    });
}
