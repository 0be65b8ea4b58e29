//! Provided-buffer rings: group ids, allocation failure, and the ring an
//! op may pick from.

use percore::buf::BufRing;
use percore::fd::SharedFd;
use percore::op::{MultishotOp, RecvMulti};

fn require_buf_ring() -> bool {
    let ok = percore::capabilities().unwrap().buf_ring;
    if !ok {
        eprintln!("SKIPPED: no provided-buffer rings (Linux 5.19)");
    }
    ok
}

/// Group ids used to be a wrapping counter checked only by the kernel's
/// EEXIST, 64 tries deep: once the counter came round to 64 live rings in a
/// row, `BufRing::new` failed although 65,000 ids were free. Ids are now
/// handed out so that a live one is never tried again.
#[percore::test]
async fn buf_ring_ids_wrap_around_past_live_rings() {
    if !require_buf_ring() {
        return;
    }
    let live: Vec<BufRing> = (0..100).map(|_| BufRing::new(1, 64).unwrap()).collect();
    let live_ids: std::collections::HashSet<u16> = live.iter().map(|r| r.bgid()).collect();
    assert_eq!(live_ids.len(), live.len(), "live rings share an id");
    // One full turn of the 16-bit id space, one short-lived ring at a time.
    for i in 0..(1usize << 16) {
        let ring = BufRing::new(1, 64)
            .unwrap_or_else(|e| panic!("ring {i} of the turn could not be made: {e}"));
        assert!(
            !live_ids.contains(&ring.bgid()),
            "id {} of a live ring handed out again",
            ring.bgid()
        );
    }
    drop(live);
}

/// Any length from 1 byte to `u32::MAX` is a ring's buffer length (buffers
/// that are not a power of two are padded up to one apart, so a slice is
/// still found with a shift and a mask); 0 and larger ones are refused up
/// front with a clear error.
#[percore::test]
async fn buf_ring_takes_any_buffer_length_and_refuses_zero_and_too_large() {
    if !require_buf_ring() {
        return;
    }
    for len in [0, u32::MAX as usize + 1] {
        let err = BufRing::new(8, len).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{len}: {err}");
        assert!(err.to_string().contains("u32::MAX bytes"), "{len}: {err}");
    }
    for len in [1, 3, 64, 1500, 4095, 4096] {
        let ring = BufRing::new(8, len).unwrap();
        assert_eq!(ring.buf_len(), len);
    }
}

/// A ring of buffers whose length is not a power of two hands out each
/// message's bytes, in order, from the right place, whole buffers and
/// incremental ones alike (the padding between buffers is never data).
#[percore::test]
async fn buf_ring_of_odd_buffer_lengths_receives_every_byte() {
    if !require_buf_ring() {
        return;
    }
    for incremental in [false, true] {
        let ring = BufRing::builder(4, 1500)
            .incremental(incremental)
            .build()
            .unwrap();
        let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
        for round in 0u8..12 {
            // 1,490 bytes: the buffers are used in turn, wrap around the
            // ring, and an incremental one keeps 10 bytes for the next.
            let msg: Vec<u8> = (0..1490u32)
                .map(|i| (i as u8).wrapping_add(round))
                .collect();
            std::io::Write::write_all(&mut theirs, &msg).unwrap();
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let buf = recv
                    .next_buf()
                    .await
                    .unwrap()
                    .expect("data, not end of stream");
                assert!(buf.len() <= 1500, "a buffer holds at most its length");
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, msg, "round {round}, incremental {incremental}");
        }
    }
}

/// `BufRing::new` used to abort the process when the buffers could not be
/// allocated (reporting the layout of the other allocation, which it leaked).
#[percore::test]
async fn buf_ring_allocation_failure_is_an_error() {
    if !require_buf_ring() {
        return;
    }
    if std::env::var_os("ASAN_OPTIONS").is_some() {
        // ASan aborts on an allocation this size instead of returning null.
        eprintln!("SKIPPED under ASan: allocation-size-too-big is fatal there");
        return;
    }
    // 32768 buffers of 4 GiB: 128 TiB, more than the address space.
    let err = BufRing::new(32768, u32::MAX as usize).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{err}");
    // The ring that did allocate was freed, and ids are not used up.
    let ring = BufRing::new(8, 64).unwrap();
    assert_eq!(ring.available(), 8);
}

/// A ring belongs to the io_uring it was registered with. Armed on another
/// runtime, the receive would pick from whatever group has the same id
/// there and read the buffer ids against this ring. So for a receive made
/// on demand (no entry on the epoll driver) too.
#[test]
fn recv_multi_armed_on_another_runtime_panics() {
    for on_demand in [false, true] {
        let first = percore::Runtime::new().unwrap();
        let second = percore::Runtime::new().unwrap();
        let Some(ring) =
            first.block_on(async { require_buf_ring().then(|| BufRing::new(4, 64).unwrap()) })
        else {
            return;
        };
        let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // Data waits, so a receive that went ahead would not wait forever.
        std::io::Write::write_all(&mut theirs, b"x").unwrap();
        let ring2 = ring.clone();
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            second.block_on(async move {
                let recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring2));
                let mut recv = if on_demand { recv.on_demand() } else { recv };
                let _ = recv.next_buf().await;
            })
        }))
        .unwrap_err();
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(
            msg.contains("different runtime"),
            "on demand {on_demand}: {msg}"
        );
        drop(theirs);
        // Unregistered on its own ring.
        first.block_on(async move { drop(ring) });
    }
}
