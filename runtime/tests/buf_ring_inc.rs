//! Incrementally consumed provided-buffer rings (`IOU_PBUF_RING_INC`, Linux
//! 6.12, and the epoll driver's emulation): receives fill one large buffer
//! piece by piece, each `ProvidedBuf` is the slice one receive filled, and a
//! buffer goes back to the ring only when the kernel is done with it and its
//! last slice was dropped. Run with `PERCORE_DRIVER=epoll` too.

mod support;

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use percore::buf::{BufRing, ProvidedBuf};
use percore::fd::SharedFd;
use percore::op::{MultishotOp, Nop, Op, RecvMulti};

use support::watchdog;

/// An incrementally consumed ring, or `None` (with a note) where the kernel
/// cannot.
fn inc_ring(entries: u16, len: usize) -> Option<BufRing> {
    let caps = percore::capabilities().unwrap();
    if !caps.buf_ring_inc {
        eprintln!("SKIPPED: no incremental buffer rings (Linux 6.12)");
        return None;
    }
    let ring = BufRing::builder(entries, len)
        .incremental(true)
        .build()
        .unwrap();
    assert!(ring.is_incremental());
    Some(ring)
}

fn pattern(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// Bytes waiting in `fd`'s receive queue (`FIONREAD`).
fn unread(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into a local.
    let res = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(res, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    n as usize
}

/// Runs the loop until the receive armed on `fd` has taken everything queued
/// on it (its completion is then posted, though nobody took it yet).
async fn until_drained(fd: &impl AsRawFd) {
    for _ in 0..10_000 {
        if unread(fd) == 0 {
            return;
        }
        Op::new(Nop).await.unwrap();
    }
    panic!("the armed receive never took the queued bytes");
}

/// A pooled receive on one end of a socket pair, and the other end.
fn pooled_pair(ring: &BufRing) -> (MultishotOp<RecvMulti>, UnixStream) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    let recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), ring));
    (recv, theirs)
}

async fn next(recv: &mut MultishotOp<RecvMulti>) -> ProvidedBuf {
    recv.next_buf()
        .await
        .unwrap()
        .expect("data, not end of stream")
}

#[percore::test]
async fn small_messages_land_one_after_another_in_one_buffer() {
    let _dog = watchdog("small_messages", Duration::from_secs(60));
    let Some(ring) = inc_ring(2, 4096) else {
        return;
    };
    let (mut recv, mut theirs) = pooled_pair(&ring);
    let mut held = Vec::new();
    for i in 0..10u8 {
        let msg = pattern(i, 100);
        theirs.write_all(&msg).unwrap();
        let buf = next(&mut recv).await;
        assert_eq!(&buf[..], &msg[..], "message {i}");
        assert_eq!(
            buf.offset(),
            i as usize * 100,
            "message {i} follows the last"
        );
        assert_eq!(
            buf.bid(),
            held.first().map_or(buf.bid(), |b: &ProvidedBuf| b.bid())
        );
        held.push(buf);
    }
    // The buffer is only partly used: the kernel keeps it, none is out.
    assert_eq!(ring.available(), 2);
    // Later receives did not touch earlier slices.
    for (i, buf) in held.iter().enumerate() {
        assert_eq!(&buf[..], &pattern(i as u8, 100)[..], "slice {i} intact");
    }
}

#[percore::test]
async fn a_message_larger_than_a_buffer_spans_several() {
    let _dog = watchdog("spans", Duration::from_secs(60));
    let Some(ring) = inc_ring(4, 1024) else {
        return;
    };
    let (mut recv, mut theirs) = pooled_pair(&ring);
    let msg = pattern(7, 3000);
    theirs.write_all(&msg).unwrap();
    let mut got = Vec::new();
    let mut held = Vec::new();
    while got.len() < msg.len() {
        let buf = next(&mut recv).await;
        assert!(buf.offset() + buf.len() <= 1024);
        got.extend_from_slice(&buf);
        held.push(buf);
    }
    assert_eq!(got, msg);
    let mut bids: Vec<u16> = held.iter().map(|b| b.bid()).collect();
    bids.dedup();
    assert!(bids.len() >= 3, "3000 bytes in 1 KiB buffers: {bids:?}");
    // Two buffers are used up and still referenced; the third is current.
    assert_eq!(ring.available(), 2);
    drop(held);
    assert_eq!(ring.available(), 4);
}

#[percore::test]
async fn a_buffer_comes_back_only_after_its_last_slice_is_dropped() {
    let _dog = watchdog("last_slice", Duration::from_secs(60));
    let Some(ring) = inc_ring(1, 256) else { return };
    let (mut recv, mut theirs) = pooled_pair(&ring);
    // 1. Four 64-byte receives fill the one buffer; the last uses it up.
    let mut slices = Vec::new();
    for i in 0..4u8 {
        theirs.write_all(&pattern(i, 64)).unwrap();
        let buf = next(&mut recv).await;
        assert_eq!((buf.bid(), buf.offset()), (0, i as usize * 64));
        slices.push(Some(buf));
        let expect_available = if i < 3 { 1 } else { 0 };
        assert_eq!(ring.available(), expect_available, "after receive {i}");
    }
    // 2. Dropping all slices but one keeps it out of the ring.
    for i in [2, 0, 3] {
        slices[i] = None;
        assert_eq!(ring.available(), 0, "slice 1 is still alive");
    }
    assert_eq!(&slices[1].as_ref().unwrap()[..], &pattern(1, 64)[..]);
    // 3. The last slice goes: the buffer is back, and filled from its start.
    slices[1] = None;
    assert_eq!(ring.available(), 1);
    theirs.write_all(b"again").unwrap();
    let buf = next(&mut recv).await;
    assert_eq!((&buf[..], buf.bid(), buf.offset()), (&b"again"[..], 0, 0));
}

#[percore::test]
async fn a_used_up_ring_is_enobufs_until_a_buffer_comes_back() {
    let _dog = watchdog("enobufs_inc", Duration::from_secs(60));
    let Some(ring) = inc_ring(1, 64) else { return };
    let (mut recv, mut theirs) = pooled_pair(&ring);
    // 1. 64 bytes use the only buffer up; the test holds them.
    theirs.write_all(&pattern(1, 64)).unwrap();
    let mut held = Vec::new();
    while held.iter().map(|b: &ProvidedBuf| b.len()).sum::<usize>() < 64 {
        held.push(next(&mut recv).await);
    }
    assert_eq!(ring.available(), 0);
    // 2. More data, no buffer: ENOBUFS, as with whole buffers.
    theirs.write_all(b"more").unwrap();
    let err = match recv.next_buf().await {
        Err(e) => e,
        Ok(buf) => panic!("expected ENOBUFS, got {:?}", buf.map(|b| b.len())),
    };
    assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS), "{err}");
    // 3. The buffer comes back: the receive re-arms and gets the data.
    drop(held);
    let buf = next(&mut recv).await;
    assert_eq!((&buf[..], buf.offset()), (&b"more"[..], 0));
}

/// Two connections fill the same buffer; their completions are taken in the
/// other order than the kernel posted them. Each slice must still be where
/// its own bytes are: the offset is counted when the driver reaps the
/// completion, not when a task takes it.
#[percore::test]
async fn completions_taken_out_of_order_keep_their_own_bytes() {
    let _dog = watchdog("out_of_order", Duration::from_secs(60));
    let Some(ring) = inc_ring(1, 4096) else {
        return;
    };
    let (a, mut a_peer) = UnixStream::pair().unwrap();
    let (b, mut b_peer) = UnixStream::pair().unwrap();
    let (a_probe, b_probe) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let mut recv_a = MultishotOp::new(RecvMulti::new(SharedFd::new(a.into()), &ring));
    let mut recv_b = MultishotOp::new(RecvMulti::new(SharedFd::new(b.into()), &ring));
    // 1. Arm both receives (the first poll submits).
    for recv in [&mut recv_a, &mut recv_b] {
        let armed = std::future::poll_fn(|cx| {
            assert!(recv.poll_next(cx).is_pending(), "nothing was sent yet");
            std::task::Poll::Ready(())
        });
        armed.await;
    }
    // 2. A's bytes, received first; then B's, after them in the buffer.
    a_peer.write_all(b"from a, first").unwrap();
    until_drained(&a_probe).await;
    b_peer.write_all(b"from b").unwrap();
    until_drained(&b_probe).await;
    // 3. Take B's first.
    let from_b = next(&mut recv_b).await;
    let from_a = next(&mut recv_a).await;
    assert_eq!(&from_b[..], b"from b");
    assert_eq!(&from_a[..], b"from a, first");
    assert_eq!((from_a.offset(), from_b.offset()), (0, 13));
}

/// A completion nobody takes (its receive was dropped) still releases its
/// slice: the buffer comes back once the rest of it is dropped.
#[percore::test]
async fn a_dropped_receive_releases_its_untaken_slices() {
    let _dog = watchdog("dropped_recv", Duration::from_secs(60));
    let Some(ring) = inc_ring(1, 64) else { return };
    let (a, mut a_peer) = UnixStream::pair().unwrap();
    let probe = a.try_clone().unwrap();
    let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(a.into()), &ring));
    a_peer.write_all(&pattern(2, 32)).unwrap();
    let first = next(&mut recv).await;
    // The rest of the buffer, received but never taken.
    a_peer.write_all(&pattern(3, 32)).unwrap();
    until_drained(&probe).await;
    drop(recv);
    support::settle().await;
    assert_eq!(ring.available(), 0, "the first slice is alive");
    drop(first);
    assert_eq!(ring.available(), 1);
}

#[percore::test]
async fn forced_off_each_receive_takes_a_whole_buffer() {
    let _dog = watchdog("forced_off", Duration::from_secs(60));
    if !percore::capabilities().unwrap().buf_ring {
        eprintln!("SKIPPED: no provided-buffer rings");
        return;
    }
    let ring = BufRing::builder(4, 4096)
        .incremental(false)
        .build()
        .unwrap();
    assert!(!ring.is_incremental());
    let (mut recv, mut theirs) = pooled_pair(&ring);
    theirs.write_all(b"one").unwrap();
    let one = next(&mut recv).await;
    theirs.write_all(b"two").unwrap();
    let two = next(&mut recv).await;
    assert_eq!((&one[..], &two[..]), (&b"one"[..], &b"two"[..]));
    assert_ne!(one.bid(), two.bid());
    assert_eq!((one.offset(), two.offset()), (0, 0));
    assert_eq!(ring.available(), 2);
    drop((one, two));
    assert_eq!(ring.available(), 4);
}
