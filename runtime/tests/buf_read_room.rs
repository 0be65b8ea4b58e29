//! A read into a buffer with no spare room is an `InvalidInput` error on
//! every read path, never `Ok(0)` (which reads as end of file or stream).

mod support;

use std::io::ErrorKind;
use std::io::Write as _;

use percore::buf::{FixedBufPool, IoBuf};
use percore::fd::SharedFd;
use percore::fs::File;
use percore::op::{Op, Read, Readv, Recv, RecvMsg};
use support::fs::TempPath;

fn assert_no_room<T: std::fmt::Debug>(res: std::io::Result<T>) {
    let err = res.expect_err("a read with no spare room must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .contains("buffer has no spare capacity; clear() it or reserve"),
        "{err}"
    );
}

fn file_with(tag: &str, data: &[u8]) -> TempPath {
    let tmp = TempPath::new(tag);
    std::fs::write(tmp.path(), data).unwrap();
    tmp
}

#[test]
fn file_reads_into_a_full_buffer_fail() {
    let tmp = file_with("room-file", b"some data");
    percore::run(async {
        let mut file = File::open(tmp.path()).await.unwrap();
        // The trap of the issue: a zeroed buffer has len == capacity.
        let (res, buf) = file.read_at(vec![0u8; 1024], 0).await;
        assert_no_room(res);
        assert_eq!(buf, vec![0u8; 1024], "the buffer comes back untouched");
        // The same for a zero-capacity Vec::new(), and through the cursor.
        let (res, _) = file.read_at(Vec::new(), 0).await;
        assert_no_room(res);
        let (res, _) = file.read(vec![1u8; 4]).await;
        assert_no_room(res);
        assert_eq!(file.stream_position().await.unwrap(), 0);
        // Vectored: no buffer with room at all, or no buffers.
        let (res, _) = file
            .read_vectored_at(vec![vec![0u8; 2], Vec::new()], 0)
            .await;
        assert_no_room(res);
        let (res, _) = file.read_vectored_at(Vec::<Vec<u8>>::new(), 0).await;
        assert_no_room(res);
        // One buffer with room is enough.
        let (res, bufs) = file
            .read_vectored_at(vec![vec![0u8; 2], Vec::with_capacity(4)], 0)
            .await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(bufs[1], b"some");
        // After clear() the same allocation reads again.
        let mut buf = vec![0u8; 1024];
        buf.clear();
        let (res, buf) = file.read_at(buf, 0).await;
        assert_eq!(res.unwrap(), 9);
        assert_eq!(buf, b"some data");
        // read_exact of a full buffer has nothing to do.
        let (res, _) = file.read_exact_at(vec![0u8; 3], 0).await;
        res.unwrap();
    });
}

#[test]
fn error_names_the_path() {
    let tmp = file_with("room-path", b"x");
    percore::run(async {
        let file = File::open(tmp.path()).await.unwrap();
        let (res, _) = file.read_at(vec![0u8; 8], 0).await;
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    });
}

#[test]
fn fixed_buffer_read_when_full_fails() {
    percore::run(async {
        let Ok(pool) = FixedBufPool::new(1, 4096) else {
            eprintln!("SKIP: no registered buffers here (memlock?)");
            return;
        };
        let file = File::open("/dev/zero").await.unwrap();
        let (n, buf) = file.read_fixed_at(pool.get().await, 0).await;
        assert_eq!(n.unwrap(), buf.bytes_total());
        let (res, _) = file.read_fixed_at(buf, 0).await;
        assert_no_room(res);
    });
}

#[test]
fn ops_with_no_room_fail_without_reading() {
    percore::run(async {
        // Read and Readv on a pipe: the data must stay in the pipe.
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"pipe").unwrap();
        let fd = SharedFd::new(reader.into());
        let (res, _) = Op::new(Read::new(fd.clone(), vec![0u8; 3], u64::MAX)).await;
        assert_no_room(res);
        let (res, _) = Op::new(Readv::new(fd.clone(), vec![Vec::<u8>::new()], u64::MAX)).await;
        assert_no_room(res);
        let (n, buf) = Op::new(Read::new(fd, Vec::with_capacity(8), u64::MAX)).await;
        assert_eq!((n.unwrap(), &buf[..]), (4, &b"pipe"[..]));

        // Recv on a stream socket.
        let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        theirs.write_all(b"sock").unwrap();
        let fd = SharedFd::new(mine.into());
        let (res, _) = Op::new(Recv::new(fd.clone(), Vec::new())).await;
        assert_no_room(res);
        let (n, buf) = Op::new(Recv::new(fd, Vec::with_capacity(8))).await;
        assert_eq!((n.unwrap(), &buf[..]), (4, &b"sock"[..]));
    });
}

#[test]
fn datagram_stays_queued_after_a_full_buffer() {
    percore::run(async {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"dgram", addr).unwrap();
        let fd = SharedFd::new(sock.into());
        let (res, _) = Op::new(RecvMsg::new(fd.clone(), vec![0u8; 16])).await;
        assert_no_room(res);
        let (res, _) = Op::new(Recv::new(fd.clone(), Vec::new())).await;
        assert_no_room(res);
        // MSG_PEEK | MSG_TRUNC with no room is the size probe: allowed.
        let (res, _) =
            Op::new(RecvMsg::new(fd.clone(), Vec::new()).flags(libc::MSG_PEEK | libc::MSG_TRUNC))
                .await;
        assert_eq!(res.unwrap().0, 5);
        let (res, buf) = Op::new(RecvMsg::new(fd, Vec::with_capacity(16))).await;
        assert_eq!(res.unwrap().0, 5);
        assert_eq!(buf, b"dgram");
    });
}

#[test]
fn msg_trunc_reports_the_datagram_length_but_fills_only_the_room() {
    percore::run(async {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"0123456789", addr).unwrap();
        peer.send_to(b"abcdefghij", addr).unwrap();
        let fd = SharedFd::new(sock.into());
        let (res, buf) =
            Op::new(RecvMsg::new(fd.clone(), Vec::with_capacity(4)).flags(libc::MSG_TRUNC)).await;
        assert_eq!(res.unwrap().0, 10, "MSG_TRUNC returns the real length");
        assert_eq!(buf, b"0123", "only the room was written");
        let (res, buf) = Op::new(Recv::new(fd, Vec::with_capacity(3)).flags(libc::MSG_TRUNC)).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(buf, b"abc");
    });
}
