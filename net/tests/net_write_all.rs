//! `write_all` on a byte stream: on the epoll driver a send with room is made
//! at once (`percore::op::try_send`), a short one goes on with the rest, and a
//! full socket hands the rest to a send op that waits for room. These run on
//! either driver (`PERCORE_DRIVER=epoll` picks the readiness backend).

use std::future::Future;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use percore_net::UnixStream;

/// Fills `fd`'s send queue (and the peer's receive queue) until a
/// non-blocking send says `EAGAIN`; returns how many bytes went in.
fn fill(fd: i32) -> usize {
    let chunk = [7u8; 4096];
    let mut total = 0;
    loop {
        // SAFETY: `chunk` is a live buffer of its length; the fd is open.
        let n = unsafe {
            libc::send(
                fd,
                chunk.as_ptr().cast(),
                chunk.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
            return total;
        }
        total += n as usize;
    }
}

/// A pair: percore's end, and a blocking std end to read with on a thread.
/// percore's end has waited for a read once, so the epoll driver knows it
/// (registered, and with room to send: `write_all` tries its sends at once).
async fn pair() -> (UnixStream, std::os::unix::net::UnixStream) {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = UnixStream::from_std(a);
    {
        let mut read = pin!(a.read(Vec::with_capacity(1)));
        assert!(poll_once(read.as_mut()).is_pending(), "nothing sent yet");
        std::io::Write::write_all(&mut b, b"x").unwrap();
        let (res, got) = bounded(read).await;
        assert_eq!((res.unwrap(), &got[..]), (1, &b"x"[..]));
    }
    (a, b)
}

/// A bound on each test's waits, so that a bug hangs no test: far above
/// what a pass takes, never part of an assertion.
const BOUND: Duration = Duration::from_secs(60);

/// Awaits `fut`, panicking past [`BOUND`].
async fn bounded<F: Future>(fut: F) -> F::Output {
    percore::time::timeout(BOUND, fut)
        .await
        .expect("bounded wait")
}

/// Polls `fut` once, with a waker that does nothing: what the future does
/// in its poll alone.
fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Reads `len` bytes from `peer` on a thread (giving up past [`BOUND`]).
fn read_on_thread(
    mut peer: std::os::unix::net::UnixStream,
    len: usize,
) -> std::thread::JoinHandle<Vec<u8>> {
    peer.set_read_timeout(Some(BOUND)).unwrap();
    std::thread::spawn(move || {
        let mut got = vec![0u8; len];
        peer.read_exact(&mut got).unwrap();
        got
    })
}

#[test]
fn a_write_larger_than_the_socket_queue_goes_out_whole() {
    percore::run(async {
        let (a, b) = pair().await;
        // Larger than a Unix socket's queue: several short sends, and
        // waits for room in between while the thread reads. On epoll the
        // first send is made at once (the socket is known, with room) and
        // comes out short.
        let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let reader = read_on_thread(b, 5 + data.len());
        bounded(a.write_all(b"hello".to_vec())).await.0.unwrap();
        let (res, back) = bounded(a.write_all(data.clone())).await;
        res.unwrap();
        assert_eq!(back, data, "the buffer comes back");
        // Closed: a reader still missing bytes sees the end, not a hang.
        drop(a);
        let got = reader.join().expect("the reader got every byte");
        assert_eq!(&got[..5], b"hello");
        assert!(got[5..] == data[..]);
    });
}

#[test]
fn a_write_to_a_full_socket_waits_for_room() {
    percore::run(async {
        let (a, b) = pair().await;
        a.write_all(b"hello".to_vec()).await.0.unwrap();
        let filled = fill(a.as_raw_fd());
        let mut write = pin!(a.write_all(b"after".to_vec()));
        assert!(
            poll_once(write.as_mut()).is_pending(),
            "a full socket has no room"
        );
        let reader = read_on_thread(b, 5 + filled + 5);
        let (res, back) = bounded(write).await;
        res.unwrap();
        assert_eq!(back, b"after");
        let got = reader.join().unwrap();
        assert_eq!(&got[..5], b"hello");
        assert!(got[5..5 + filled].iter().all(|&x| x == 7));
        assert_eq!(&got[5 + filled..], b"after");
    });
}

#[test]
fn a_dropped_waiting_write_sends_nothing_more_and_the_stream_goes_on() {
    percore::run(async {
        let (a, b) = pair().await;
        a.write_all(b"hello".to_vec()).await.0.unwrap();
        let filled = fill(a.as_raw_fd());
        {
            let mut write = pin!(a.write_all(b"dropped".to_vec()));
            assert!(matches!(poll_once(write.as_mut()), Poll::Pending));
        }
        // Let the cancel of the dropped send take effect (on io_uring it
        // is queued with the next enter).
        percore::yield_now().await;
        let reader = read_on_thread(b, 5 + filled + 3);
        bounded(a.write_all(b"end".to_vec())).await.0.unwrap();
        let got = reader.join().unwrap();
        assert_eq!(&got[..5], b"hello");
        assert!(got[5..5 + filled].iter().all(|&x| x == 7));
        // Nothing of the dropped write came before the next one.
        assert_eq!(&got[5 + filled..], b"end");
    });
}

#[test]
fn a_lone_senders_write_with_room_completes_in_its_first_poll() {
    percore::run(async {
        let (a, b) = pair().await;
        // Nothing else runs or waits in the ring: on io_uring too the send
        // is made at once (`percore::op::lone_sender`), with no op to wait for.
        let mut write = pin!(a.write_all(b"now".to_vec()));
        let Poll::Ready((res, back)) = poll_once(write.as_mut()) else {
            panic!("a send with room waits for nothing");
        };
        res.unwrap();
        assert_eq!(back, b"now");
        let got = read_on_thread(b, 3).join().unwrap();
        assert_eq!(got, b"now");
    });
}

#[test]
fn after_a_write_that_waited_for_room_the_next_one_comes_after_it() {
    percore::run(async {
        let (a, b) = pair().await;
        let filled = fill(a.as_raw_fd());
        let reader = read_on_thread(b, filled + 10);
        // The first waits for room in an op; the second is made once the
        // first is done, and its bytes follow.
        bounded(a.write_all(b"first".to_vec())).await.0.unwrap();
        bounded(a.write_all(b"again".to_vec())).await.0.unwrap();
        let got = reader.join().unwrap();
        assert!(got[..filled].iter().all(|&x| x == 7));
        assert_eq!(&got[filled..], b"firstagain");
    });
}

#[test]
fn a_write_built_while_another_waits_for_room_chooses_how_to_send_when_first_polled() {
    percore::run(async {
        let (a, b) = pair().await;
        let filled = fill(a.as_raw_fd());
        // The first write waits for room in a send op; the second is built
        // meanwhile and not polled.
        let mut first = pin!(a.write_all(b"first".to_vec()));
        assert!(poll_once(first.as_mut()).is_pending(), "the socket is full");
        let mut second = pin!(a.write_all(b"again".to_vec()));
        let reader = read_on_thread(b, filled + 10);
        bounded(first).await.0.unwrap();
        // Now there is room, no send op in flight and nothing else to run:
        // the second is sent at once, in its first poll, whatever the
        // stream was doing when it was built.
        let Poll::Ready((res, back)) = poll_once(second.as_mut()) else {
            panic!("a write first polled with room and no op in flight waits for nothing");
        };
        res.unwrap();
        assert_eq!(back, b"again");
        let got = reader.join().unwrap();
        assert!(got[..filled].iter().all(|&x| x == 7));
        assert_eq!(&got[filled..], b"firstagain");
    });
}

#[test]
fn a_lone_senders_write_to_a_closed_peer_fails_with_epipe_and_hands_the_buffer_back() {
    percore::run(async {
        let (a, b) = pair().await;
        drop(b);
        // Made at once (nothing else runs): the error comes from that
        // direct send, in the first poll, with the buffer.
        let mut write = pin!(a.write_all(b"late".to_vec()));
        let Poll::Ready((res, back)) = poll_once(write.as_mut()) else {
            panic!("a send to a closed peer waits for nothing");
        };
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPIPE));
        assert_eq!(back, b"late");
        // The stream keeps answering the same way.
        let (res, _) = bounded(a.write_all(b"again".to_vec())).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPIPE));
    });
}
