//! The epoll driver's own contract, beyond the suite that runs on it
//! unchanged (`PERCORE_DRIVER=epoll cargo test --workspace`): each fd is
//! registered with epoll once for its life and forgotten when it closes;
//! what it knows about readiness never hides data or an end of stream; the
//! ops that need the ring say so clearly.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use percore::buf::BufRing;
use percore::fd::SharedFd;
use percore::op::{MultishotOp, Nop, Op, Recv, RecvMulti, SendOp};
use percore::{DriverKind, Runtime};

mod support;

fn epoll_runtime() -> Runtime {
    // Every feature on, whatever PERCORE_MINIMAL says: this file tests them.
    let rt = Runtime::builder()
        .driver(DriverKind::Epoll)
        .minimal_features(false)
        .build()
        .unwrap();
    assert_eq!(rt.capabilities().driver, DriverKind::Epoll);
    assert_eq!(
        rt.capabilities().fallback_reason,
        None,
        "asked for, not a fallback"
    );
    rt
}

/// The fds registered with this process's epoll instances, from
/// `/proc/self/fdinfo` (one `tfd:` line per registration).
fn epoll_registrations() -> Vec<i32> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_epoll = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().contains("eventpoll"));
        if !is_epoll {
            continue;
        }
        let info = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(text) = std::fs::read_to_string(info) else {
            continue;
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("tfd:") {
                fds.push(rest.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
    }
    fds
}

#[test]
fn an_fd_is_registered_once_for_its_life_and_forgotten_on_close() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let raw = mine.as_raw_fd();
        let fd = SharedFd::new(mine.into());
        for i in 0..50u8 {
            // Each receive waits (nothing sent yet), then gets its byte.
            let recv = Op::new(Recv::new(fd.clone(), Vec::with_capacity(8)));
            let sender = std::thread::spawn({
                let mut theirs = theirs.try_clone().unwrap();
                move || {
                    std::thread::sleep(Duration::from_millis(1));
                    theirs.write_all(&[i]).unwrap();
                }
            });
            let (res, buf) = recv.await;
            assert_eq!(res.unwrap(), 1);
            assert_eq!(buf, [i]);
            sender.join().unwrap();
        }
        let count = epoll_registrations().iter().filter(|&&f| f == raw).count();
        assert_eq!(count, 1, "fd {raw} registered {count} times");
        // Closing it through the driver drops its registration.
        fd.close().await.unwrap();
        assert!(
            !epoll_registrations().contains(&raw),
            "fd {raw} still registered after close"
        );
        theirs.write_all(b"x").unwrap_err();
    });
}

#[test]
fn a_short_read_then_the_end_of_stream_is_seen() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let fd = SharedFd::new(mine.into());
        // Register the fd: a receive that waits.
        let waiting = Op::new(Recv::new(fd.clone(), Vec::with_capacity(64)));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            // Data and the end of stream at once: one edge for both.
            theirs.write_all(b"last words").unwrap();
            drop(theirs);
        });
        let (res, buf) = waiting.await;
        writer.join().unwrap();
        let n = res.unwrap();
        assert!(n > 0 && n <= 10);
        let mut got = buf;
        // A short read drained the data; the end of stream must still come.
        loop {
            let (res, b) = percore::time::timeout(
                Duration::from_secs(5),
                Op::new(Recv::new(fd.clone(), Vec::with_capacity(64))),
            )
            .await
            .expect("the end of stream was never reported");
            match res.unwrap() {
                0 => break,
                _ => got.extend_from_slice(&b),
            }
        }
        assert_eq!(got, b"last words");
    });
}

#[test]
fn a_send_to_a_full_socket_waits_for_room() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let fd = SharedFd::new(mine.into());
        let total = 4 << 20;
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0u8; total];
            theirs.read_exact(&mut sink).unwrap();
            sink.iter().map(|&b| b as u64).sum::<u64>()
        });
        let mut sent = 0;
        while sent < total {
            let chunk = vec![1u8; (total - sent).min(256 << 10)];
            let (res, _) = Op::new(SendOp::new(fd.clone(), chunk)).await;
            sent += res.unwrap();
        }
        assert_eq!(reader.join().unwrap(), total as u64);
    });
}

/// Provided-buffer rings are emulated on the same ring memory: a multishot
/// receive picks buffers from the ring percore publishes, incrementally,
/// and posts what the kernel would (the buffer id, BUF_MORE, ENOBUFS when
/// the ring is used up). Used to be `Unsupported`.
#[test]
fn provided_buffer_rings_work_on_epoll() {
    let _dog = support::watchdog("epoll_buf_ring", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let caps = percore::capabilities().unwrap();
        assert!(
            caps.buf_ring && caps.buf_ring_inc && caps.multishot_recv,
            "{caps}"
        );
        let ring = BufRing::new(2, 64).unwrap();
        assert!(ring.is_incremental());
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
        // 1. Two messages, one after the other in the first buffer.
        theirs.write_all(b"first").unwrap();
        let a = recv.next_buf().await.unwrap().unwrap();
        theirs.write_all(b"second").unwrap();
        let b = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        assert_eq!((a.bid(), a.offset(), b.bid(), b.offset()), (0, 0, 0, 5));
        // 2. 100 bytes more: the rest of buffer 0 (53), then 47 of buffer 1.
        theirs.write_all(&[7u8; 100]).unwrap();
        let mut rest = Vec::new();
        while rest
            .iter()
            .map(|b: &percore::buf::ProvidedBuf| b.len())
            .sum::<usize>()
            < 100
        {
            rest.push(recv.next_buf().await.unwrap().unwrap());
        }
        assert_eq!(
            (rest[0].bid(), rest[0].offset(), rest[0].len()),
            (0, 11, 53)
        );
        assert_eq!(
            ring.available(),
            1,
            "buffer 0 is used up and still referenced"
        );
        // 3. 27 bytes: 17 fill buffer 1, then no buffer is left: ENOBUFS.
        theirs.write_all(&[8u8; 27]).unwrap();
        let mut filled = 0;
        let err = loop {
            match recv.next_buf().await {
                Ok(Some(buf)) => {
                    filled += buf.len();
                    rest.push(buf);
                }
                Err(e) => break e,
                Ok(None) => panic!("end of stream"),
            }
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS), "{err}");
        assert_eq!((filled, ring.available()), (17, 0));
        // 4. Every slice dropped: both buffers come back, the rest flows.
        drop((a, b, rest));
        assert_eq!(ring.available(), 2);
        let last = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(
            (&last[..], last.bid(), last.offset()),
            (&[8u8; 10][..], 0, 0)
        );
        drop(theirs);
        assert!(recv.next_buf().await.unwrap().is_none(), "end of stream");
    });
}

/// An idle receive holds no buffer and waits on epoll; cancelling it (as
/// dropping a connection does) takes nothing from the ring.
#[test]
fn a_waiting_pooled_receive_holds_no_buffer_and_cancels() {
    let _dog = support::watchdog("epoll_buf_ring_cancel", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(1, 64).unwrap();
        let (mine, _theirs) = UnixStream::pair().unwrap();
        let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
        // 1. Armed (the first poll submits), then the loop runs on.
        std::future::poll_fn(|cx| {
            assert!(recv.poll_next(cx).is_pending(), "nothing was sent");
            std::task::Poll::Ready(())
        })
        .await;
        for _ in 0..10 {
            Op::new(percore::op::Nop).await.unwrap();
        }
        assert!(recv.is_armed());
        assert_eq!(ring.available(), 1);
        // 2. Cancelled: ECANCELED, and the buffer never left the ring.
        recv.cancel();
        let end = recv.next_buf().await;
        assert_eq!(end.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        assert_eq!(ring.available(), 1);
    });
}

#[test]
fn stats_and_capabilities_name_the_driver() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let stats = percore::stats();
        assert_eq!(stats.backend, DriverKind::Epoll);
        assert!(stats.to_string().contains("epoll driver"), "{stats}");
        let caps = percore::capabilities().unwrap();
        assert!(caps.to_string().starts_with("driver epoll"), "{caps}");
    });
}

/// Polls `fut` once, in the current task's context.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// An op whose syscall can finish at once does so inside its first poll,
/// as tokio's I/O does: no wake-up, no second poll, no enter of its own.
/// One that cannot waits as before, and data wakes it.
#[test]
fn an_op_that_can_finish_at_once_does_so_inside_its_first_poll() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let fd = SharedFd::new(mine.into());
        let before = percore::stats().driver;
        let mut send = Box::pin(Op::new(SendOp::new(fd.clone(), b"ping".to_vec())));
        let Poll::Ready((res, _)) = poll_once(&mut send).await else {
            panic!("a send with room waited for a tick");
        };
        assert_eq!(res.unwrap(), 4);
        let mut recv = Box::pin(Op::new(Recv::new(fd.clone(), Vec::with_capacity(16))));
        assert!(
            poll_once(&mut recv).await.is_pending(),
            "nothing to read yet"
        );
        let after = percore::stats().driver;
        assert_eq!(after.enters, before.enters, "neither op entered the driver");
        assert_eq!(after.completed - before.completed, 1, "the send is counted");
        let mut got = [0; 4];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        theirs.write_all(b"pong").unwrap();
        let (res, buf) = recv.await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"pong");
    });
}

/// Inline starts have a budget per tick: a task whose ops always finish at
/// once still gives the core back, as tokio's coop budget makes it.
#[test]
fn a_task_whose_ops_always_finish_at_once_still_gives_the_core_back() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let done = Rc::new(Cell::new(0u32));
        let looping = percore::spawn({
            let done = done.clone();
            async move {
                for _ in 0..1000 {
                    Op::new(Nop).await.unwrap();
                    done.set(done.get() + 1);
                }
            }
        });
        let other = percore::spawn({
            let done = done.clone();
            async move { done.get() }
        });
        looping.await.unwrap();
        let seen = other.await.unwrap();
        assert!(seen < 1000, "the other task waited for all 1000 nops");
    });
}

/// What was queued before an op starts before it, as the kernel takes a
/// ring's entries in order: a dropped socket's close (queued) comes before
/// a send to its peer that would otherwise finish inline.
#[test]
fn entries_queued_before_an_inline_start_go_first() {
    let rt = epoll_runtime();
    rt.block_on(async {
        let (mine, theirs) = UnixStream::pair().unwrap();
        let fd = SharedFd::new(mine.into());
        let theirs = SharedFd::new(theirs.into());
        drop(theirs); // its close is queued, not done
        let (res, _) = Op::new(SendOp::new(fd.clone(), b"x".to_vec())).await;
        assert_eq!(
            res.unwrap_err().raw_os_error(),
            Some(libc::EPIPE),
            "the send ran before the queued close"
        );
    });
}

/// A plain send or receive on a socket the driver already knows (it waited
/// on it once) starts inline: one that can finish does so inside its first
/// poll with no slot, and its buffer comes back to the caller, never
/// dropped inside the driver; one that would block waits, takes a slot, and
/// when dropped frees its buffer at once and leaves no interest behind, so
/// data that comes later goes to the next receive.
#[test]
fn ops_on_a_known_socket_finish_inline_or_wait_and_cancel() {
    let rt = epoll_runtime();
    let log = support::EventLog::new();
    rt.block_on(async {
        let _watchdog = support::watchdog("inline ops on a known socket", Duration::from_secs(20));
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let fd = SharedFd::new(mine.into());
        // 1. A receive with nothing to read waits: now the driver knows the fd.
        let mut first = Box::pin(Op::new(Recv::new(fd.clone(), log.buf(4))));
        assert!(poll_once(&mut first).await.is_pending());
        // 2. Data that fills the buffer exactly: not a short read, so the
        //    next receive may try at once.
        theirs.write_all(b"abcd").unwrap();
        let (res, buf) = first.await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf.bytes(), b"abcd");
        drop(buf);
        // 3. A send with room finishes inside its first poll, with no slot,
        //    and hands its buffer back alive.
        let mut send = Box::pin(Op::new(SendOp::new(fd.clone(), log.buf_with(b"ping"))));
        let Poll::Ready((res, buf)) = poll_once(&mut send).await else {
            panic!("a send with room waited for a tick");
        };
        assert_eq!(res.unwrap(), 4);
        assert_eq!(
            percore::stats().in_flight,
            0,
            "an inline send takes no slot"
        );
        assert!(!log.is_dropped(buf.id()), "the buffer came back alive");
        let sent_id = buf.id();
        drop(buf);
        assert!(log.is_dropped(sent_id));
        let mut got = [0; 4];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        // 4. A receive tries, finds nothing, and waits in a slot.
        let recv_buf = log.buf(8);
        let recv_id = recv_buf.id();
        let mut recv = Box::pin(Op::new(Recv::new(fd.clone(), recv_buf)));
        assert!(poll_once(&mut recv).await.is_pending());
        assert_eq!(percore::stats().in_flight, 1);
        // 5. Dropped, it frees its buffer at once (epoll cancels a waiting
        //    op inside the cancel) and no slot is left.
        drop(recv);
        support::settle().await;
        assert!(
            log.is_dropped(recv_id),
            "the dropped receive's buffer was freed"
        );
        assert_eq!(percore::stats().in_flight, 0);
        // 6. Data sent afterwards goes to the next receive.
        theirs.write_all(b"pong").unwrap();
        let (res, buf) = Op::new(Recv::new(fd.clone(), Vec::with_capacity(8))).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"pong");
    });
}

/// A multishot receive whose data may fill the rest of the head buffer
/// offers the next buffer too: a message that fills the rest exactly ends
/// that buffer (and the socket reads as drained, with no receive that could
/// only say `EAGAIN`), and one that goes past it completes the head buffer
/// first and goes on in the next, as the kernel posts them. No byte is lost
/// or reordered, and later data still wakes the receive.
#[test]
fn a_receive_that_may_fill_the_head_buffer_goes_on_in_the_next() {
    let _dog = support::watchdog("epoll_buf_span", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(4, 64).unwrap();
        assert!(ring.is_incremental());
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
        let mut got = Vec::new();
        // 1. 32 bytes into buffer 0.
        theirs.write_all(&[b'a'; 32]).unwrap();
        let a = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((a.bid(), a.offset(), a.len()), (0, 0, 32));
        // 2. 32 more fill buffer 0 exactly: it is used up (not in the ring,
        //    still referenced), and the next buffer was not touched.
        theirs.write_all(&[b'b'; 32]).unwrap();
        let b = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((b.bid(), b.offset(), b.len()), (0, 32, 32));
        assert_eq!(ring.available(), 3, "buffer 0 is used up");
        // 3. 40 bytes into buffer 1, then 40 more: 24 end buffer 1, 16 go
        //    into buffer 2, as two completions in that order.
        theirs.write_all(&[b'c'; 40]).unwrap();
        let c = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((c.bid(), c.offset(), c.len()), (1, 0, 40));
        theirs.write_all(&[b'd'; 40]).unwrap();
        let d1 = recv.next_buf().await.unwrap().unwrap();
        let d2 = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(
            (
                d1.bid(),
                d1.offset(),
                d1.len(),
                d2.bid(),
                d2.offset(),
                d2.len()
            ),
            (1, 40, 24, 2, 0, 16)
        );
        for buf in [&a, &b, &c, &d1, &d2] {
            got.extend_from_slice(buf);
        }
        let want: Vec<u8> = [(b'a', 32), (b'b', 32), (b'c', 40), (b'd', 40)]
            .iter()
            .flat_map(|&(byte, n)| std::iter::repeat_n(byte, n))
            .collect();
        assert_eq!(got, want);
        // 4. Buffers come back when their slices are dropped, and data sent
        //    later still arrives.
        drop((a, b, c, d1, d2));
        assert_eq!(ring.available(), 4);
        theirs.write_all(b"later").unwrap();
        let e = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(&e[..], b"later");
        drop(e);
        drop(theirs);
        assert!(recv.next_buf().await.unwrap().is_none(), "end of stream");
    });
}

/// An on-demand pooled receive (a multishot receive that selects a buffer,
/// as `PooledRecv` makes) with data waiting receives inside its first poll, as a plain receive does: no
/// entry, slot, completion or enter. Drained, it waits with no buffer
/// taken from the ring, counted in `in_flight`, until data wakes it.
#[test]
fn a_pooled_receive_with_data_waiting_finishes_inside_its_first_poll() {
    let _dog = support::watchdog("epoll_direct_recv", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(4, 64).unwrap();
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
        theirs.write_all(b"ping").unwrap();
        let (before, in_flight) = (percore::stats().driver, percore::stats().in_flight);
        // 1. The data is there: the first poll returns it.
        let Poll::Ready(Some(Ok(Some(buf)))) = poll_fn(|cx| Poll::Ready(recv.poll_next(cx))).await
        else {
            panic!("a pooled receive with data waiting did not finish in its first poll");
        };
        assert_eq!(&buf[..], b"ping");
        let after = percore::stats().driver;
        assert_eq!(after.enters, before.enters, "no enter of its own");
        drop(buf);
        // 2. Drained: it waits, holding no buffer and no slot.
        assert!(
            poll_fn(|cx| Poll::Ready(recv.poll_next(cx)))
                .await
                .is_pending()
        );
        assert_eq!(percore::stats().in_flight, in_flight + 1);
        assert_eq!(ring.available(), 4);
        // 3. Data wakes it.
        theirs.write_all(b"pong").unwrap();
        let buf = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(&buf[..], b"pong");
        drop(buf);
        drop(recv);
        assert_eq!(percore::stats().in_flight, in_flight);
    });
}

/// Data that fills a buffer exactly cannot be told from more data waiting:
/// the receive after it tries again and then waits. Nothing is lost or
/// reordered, with whole and with incrementally consumed buffers.
#[test]
fn a_pooled_receive_of_exactly_a_buffer_gets_every_byte() {
    let _dog = support::watchdog("epoll_direct_exact", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        for incremental in [false, true] {
            let ring = BufRing::builder(2, 64)
                .incremental(incremental)
                .build()
                .unwrap();
            let (mine, mut theirs) = UnixStream::pair().unwrap();
            let mut recv =
                MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
            // 1. Exactly one buffer's worth.
            theirs.write_all(&[1u8; 64]).unwrap();
            let a = recv.next_buf().await.unwrap().unwrap();
            assert_eq!(&a[..], &[1u8; 64][..], "incremental {incremental}");
            drop(a);
            // 2. Nothing more: the next receive waits (with the buffer back).
            let mut next = Box::pin(recv.next_buf());
            assert!(poll_once(&mut next).await.is_pending());
            drop(next);
            assert_eq!(ring.available(), 2);
            // 3. Two buffers' worth at once: both, in order.
            let data: Vec<u8> = (0..128u8).collect();
            theirs.write_all(&data).unwrap();
            let mut got = Vec::new();
            while got.len() < 128 {
                got.extend_from_slice(&recv.next_buf().await.unwrap().unwrap());
            }
            assert_eq!(got, data, "incremental {incremental}");
            drop(theirs);
            assert!(recv.next_buf().await.unwrap().is_none(), "end of stream");
        }
    });
}

/// A direct receive whose data goes on from the head buffer into the next
/// hands out the two pieces in order, one per poll; an op dropped with the
/// second still unclaimed gives that buffer back to the ring.
#[test]
fn a_direct_receive_that_spans_two_buffers_hands_out_both_or_gives_them_back() {
    let _dog = support::watchdog("epoll_direct_span", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(4, 64).unwrap();
        assert!(ring.is_incremental());
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
        // 1. 40 bytes into buffer 0; then 40 more: 24 end buffer 0, 16 go
        //    into buffer 1, from one receive.
        theirs.write_all(&[b'c'; 40]).unwrap();
        let c = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((c.bid(), c.offset(), c.len()), (0, 0, 40));
        theirs.write_all(&[b'd'; 40]).unwrap();
        let d1 = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((d1.bid(), d1.offset(), d1.len()), (0, 40, 24));
        assert_eq!(ring.available(), 3, "buffer 0 is used up");
        // 2. The second piece stays in the op until it is asked for, ahead
        //    of what comes after it.
        theirs.write_all(&[b'e'; 8]).unwrap();
        let d2 = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((d2.bid(), d2.offset(), &d2[..]), (1, 0, &[b'd'; 16][..]));
        let e = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((e.bid(), e.offset(), &e[..]), (1, 16, &[b'e'; 8][..]));
        drop((c, d1, d2, e));
        assert_eq!(ring.available(), 4);
        // 3. 32 bytes leave 8 in buffer 1; 72 more end it and fill buffer 2
        //    whole, so both are used up. The op is dropped before the
        //    second piece is asked for: buffer 2 comes back all the same.
        theirs.write_all(&[b'f'; 32]).unwrap();
        let f = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((f.bid(), f.offset(), f.len()), (1, 24, 32));
        theirs.write_all(&[b'g'; 72]).unwrap();
        let g1 = recv.next_buf().await.unwrap().unwrap();
        assert_eq!((g1.bid(), g1.offset(), g1.len()), (1, 56, 8));
        assert_eq!(ring.available(), 2, "buffers 1 and 2 are used up");
        drop(recv);
        drop((f, g1));
        assert_eq!(ring.available(), 4, "the unclaimed piece's buffer is back");
    });
}

/// Dropping a pooled receive that waits for data takes its waker back from
/// the driver at once (no cancel, no completion to wait for), takes no
/// buffer, and later data wakes nobody.
#[test]
fn dropping_a_waiting_pooled_receive_takes_its_waker_back() {
    let _dog = support::watchdog("epoll_direct_drop", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(2, 64).unwrap();
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let in_flight = percore::stats().in_flight;
        let (count, waker) = support::CountingWaker::new();
        let mut recv =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
        let mut next = Box::pin(recv.next());
        // 1. Waits: the driver keeps a clone of the waker.
        assert!(support::poll_with(&mut next, &waker).is_pending());
        drop(next);
        assert_eq!(std::sync::Arc::strong_count(&count), 3);
        assert_eq!(percore::stats().in_flight, in_flight + 1);
        // 2. Dropped: the clone is gone, nothing waits.
        drop(recv);
        assert_eq!(std::sync::Arc::strong_count(&count), 2);
        assert_eq!(percore::stats().in_flight, in_flight);
        // 3. Data arrives and the loop turns: no wake-up, no buffer taken.
        theirs.write_all(b"late").unwrap();
        for _ in 0..5 {
            Op::new(Nop).await.unwrap();
            percore::yield_now().await;
        }
        assert_eq!(count.count(), 0);
        assert_eq!(ring.available(), 2);
    });
}

/// A direct receive that drained the socket returns its data and keeps no
/// waker (the poll was `Ready`), where it used to clone one per request. An edge before the next poll marks the wait
/// fired without waking anyone, and that poll receives at once; a poll that
/// finds nothing leaves its waker, which the next edge wakes.
#[test]
fn a_drained_pooled_receive_keeps_no_waker_and_still_sees_what_comes_next() {
    let _dog = support::watchdog("epoll_direct_rearm", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::new(4, 64).unwrap();
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let (count, waker) = support::CountingWaker::new();
        let mut recv =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
        let poll = |recv: &mut MultishotOp<RecvMulti>| {
            let mut next = Box::pin(recv.next_buf());
            match support::poll_with(&mut next, &waker) {
                Poll::Ready(res) => Some(res.unwrap().unwrap()),
                Poll::Pending => None,
            }
        };
        let turn = || async {
            for _ in 0..5 {
                Op::new(Nop).await.unwrap();
                percore::yield_now().await;
            }
        };
        // 1. Nothing yet: the receive waits with the waker.
        assert!(poll(&mut recv).is_none());
        assert_eq!(std::sync::Arc::strong_count(&count), 3, "the waker waits");
        // 2. Data wakes it (the driver lets go of the waker), and the poll
        //    receives it, drains the socket and keeps no waker: it is Ready.
        theirs.write_all(b"one").unwrap();
        turn().await;
        assert_eq!(count.count(), 1);
        assert_eq!(&poll(&mut recv).expect("woken for it")[..], b"one");
        assert_eq!(std::sync::Arc::strong_count(&count), 2, "no waker kept");
        // 3. More data, and the loop sees its edge: nobody to wake.
        theirs.write_all(b"two").unwrap();
        turn().await;
        assert_eq!(count.count(), 1);
        // 4. The next poll receives it at once.
        assert_eq!(&poll(&mut recv).expect("the edge came")[..], b"two");
        // 5. Nothing more: this poll leaves its waker, and data wakes it.
        assert!(poll(&mut recv).is_none());
        assert_eq!(std::sync::Arc::strong_count(&count), 3, "the waker waits");
        theirs.write_all(b"three").unwrap();
        turn().await;
        assert_eq!(count.count(), 2);
        assert_eq!(&poll(&mut recv).expect("woken for it")[..], b"three");
    });
}

/// A direct receive finds its ring among the core's others by where it
/// found it last, and again after another ring was dropped (the others
/// move) or made: the data always lands in its own ring's buffers.
#[test]
fn a_pooled_receive_finds_its_ring_when_other_rings_come_and_go() {
    let _dog = support::watchdog("epoll_direct_groups", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        // Whole buffers: a lent one is not `available`.
        let whole = |n| BufRing::builder(n, 64).incremental(false).build().unwrap();
        let first = whole(2);
        let ours = whole(4);
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ours)).on_demand();
        async fn expect(
            recv: &mut MultishotOp<RecvMulti>,
            theirs: &mut UnixStream,
            msg: &[u8],
        ) -> percore::buf::ProvidedBuf {
            theirs.write_all(msg).unwrap();
            let buf = recv.next_buf().await.unwrap().unwrap();
            assert_eq!(&buf[..], msg);
            buf
        }
        // 1. Behind another ring.
        let buf = expect(&mut recv, &mut theirs, b"behind").await;
        assert_eq!((ours.available(), first.available()), (3, 2));
        drop(buf);
        // 2. That ring gone: ours moved.
        drop(first);
        let buf = expect(&mut recv, &mut theirs, b"moved").await;
        assert_eq!(ours.available(), 3);
        drop(buf);
        // 3. Another ring made after ours, which receives too.
        let last = whole(8);
        let (mine2, mut theirs2) = UnixStream::pair().unwrap();
        let mut recv2 =
            MultishotOp::new(RecvMulti::new(SharedFd::new(mine2.into()), &last)).on_demand();
        let buf = expect(&mut recv, &mut theirs, b"still").await;
        theirs2.write_all(b"last").unwrap();
        let buf2 = recv2.next_buf().await.unwrap().unwrap();
        assert_eq!(&buf2[..], b"last");
        assert_eq!((ours.available(), last.available()), (3, 7));
        drop((buf, buf2));
    });
}

/// A direct receive from an empty ring: with data waiting it ends with
/// `ENOBUFS` (as the kernel's, so `PooledRecv` falls back to a buffer of
/// its own), without data it waits with no error; once a buffer comes
/// back, receiving goes on where it was.
#[test]
fn a_pooled_receive_from_an_empty_ring_is_enobufs_only_with_data_waiting() {
    let _dog = support::watchdog("epoll_direct_enobufs", Duration::from_secs(60));
    let rt = epoll_runtime();
    rt.block_on(async {
        let ring = BufRing::builder(1, 64).incremental(false).build().unwrap();
        let pair = || {
            let (mine, theirs) = UnixStream::pair().unwrap();
            let recv =
                MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring)).on_demand();
            (recv, theirs)
        };
        let (mut a, mut a_peer) = pair();
        let (mut b, mut b_peer) = pair();
        // 1. One connection takes the one buffer.
        a_peer.write_all(b"held").unwrap();
        let held = a.next_buf().await.unwrap().unwrap();
        assert_eq!(ring.available(), 0);
        // 2. Another, never read from (so worth a try), has no data: it
        //    waits, no ENOBUFS.
        let mut next = Box::pin(b.next_buf());
        assert!(poll_once(&mut next).await.is_pending());
        drop(next);
        // 3. Data, no buffer: ENOBUFS, and the data stays in the socket.
        b_peer.write_all(b"more").unwrap();
        let err = b.next_buf().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS));
        // 4. The buffer back: the data comes.
        drop(held);
        assert_eq!(&b.next_buf().await.unwrap().unwrap()[..], b"more");
    });
}
