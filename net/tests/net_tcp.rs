//! TCP: echo round trips, half-close, reset, refused, timeouts, slow and
//! silent peers, multishot accept, split halves, vectored and zero-copy
//! writes, IPv6, and the same echo on a runtime without optional features.

use std::io;
use std::net::{Ipv6Addr, Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use percore::{IoErrorExt, Runtime};
use percore_net::{TcpListener, TcpStream};

/// Serves one echo connection: reads into a 64 KiB buffer, writes it back,
/// until end of stream. Returns the bytes echoed.
async fn echo_conn(conn: TcpStream) -> io::Result<usize> {
    let mut total = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let (res, b) = conn.read(buf).await;
        let n = res?;
        if n == 0 {
            return Ok(total);
        }
        let (res, b) = conn.write_all(b).await;
        res?;
        buf = b;
        total += n;
    }
}

/// Pattern bytes that differ by position, so misordered echoes are caught.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends `data` over `stream` and reads it back concurrently (a writer task
/// and this task as reader), so large payloads cannot deadlock on socket
/// buffers.
async fn round_trip(stream: TcpStream, data: Vec<u8>) -> (TcpStream, Vec<u8>) {
    let len = data.len();
    let (rd, wr) = stream.into_split();
    let writer = percore::spawn(async move {
        let (res, _) = wr.write_all(data).await;
        res.unwrap();
        wr
    });
    let (res, back) = rd.read_exact(Vec::with_capacity(len)).await;
    res.unwrap();
    let wr = writer.await.unwrap();
    (rd.reunite(wr).unwrap(), back)
}

#[percore::test]
async fn echo_round_trips_1_byte_to_4_mib() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        echo_conn(conn).await.unwrap()
    });
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut expected_total = 0;
    for (i, size) in [1, 2, 100, 1460, 4096, 65_536, 1 << 20, 4 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pattern(size, i as u8);
        let (s, back) = round_trip(stream, data.clone()).await;
        stream = s;
        assert_eq!(back.len(), size);
        assert!(back == data, "echo of {size} bytes differs");
        expected_total += size;
    }
    stream.shutdown(Shutdown::Write).await.unwrap();
    assert_eq!(server.await.unwrap(), expected_total);
    // After the server saw EOF and dropped its side, we read EOF too.
    let (n, _) = stream.read(Vec::with_capacity(8)).await;
    assert_eq!(n.unwrap(), 0);
}

#[percore::test]
async fn ipv6_loopback_round_trip() {
    let listener = match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("SKIP ipv6_loopback_round_trip: no IPv6 loopback here ({e})");
            return;
        }
    };
    let addr = listener.local_addr().unwrap();
    assert!(addr.is_ipv6());
    let server = percore::spawn(async move {
        let (conn, peer) = listener.accept().await.unwrap();
        assert!(peer.is_ipv6());
        echo_conn(conn).await.unwrap()
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addr);
    let (stream, back) = round_trip(stream, pattern(10_000, 7)).await;
    assert_eq!(back, pattern(10_000, 7));
    drop(stream);
    assert_eq!(server.await.unwrap(), 10_000);
}

#[percore::test]
async fn half_close_lets_the_other_direction_finish() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        // 1. Read the request until the client's half-close.
        let mut req = Vec::new();
        loop {
            let (res, b) = conn.read(Vec::with_capacity(1024)).await;
            match res.unwrap() {
                0 => break,
                _ => req.extend_from_slice(&b),
            }
        }
        // 2. The write direction still works after the peer's EOF.
        let reply = format!("got {} bytes", req.len()).into_bytes();
        conn.write_all(reply).await.0.unwrap();
        conn.shutdown(Shutdown::Write).await.unwrap();
        req
    });
    let client = TcpStream::connect(addr).await.unwrap();
    client.write_all(pattern(5000, 1)).await.0.unwrap();
    client.shutdown(Shutdown::Write).await.unwrap();
    let mut reply = Vec::new();
    loop {
        let (res, b) = client.read(Vec::with_capacity(64)).await;
        match res.unwrap() {
            0 => break,
            _ => reply.extend_from_slice(&b),
        }
    }
    assert_eq!(reply, b"got 5000 bytes");
    assert_eq!(server.await.unwrap(), pattern(5000, 1));
    // Writing after our own shutdown(Write) fails with EPIPE.
    let (res, _) = client.write(b"late".to_vec()).await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EPIPE));
}

#[percore::test]
async fn reset_by_peer_is_econnreset_and_spares_other_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let a = TcpStream::connect(addr).await.unwrap();
    let (a_srv, _) = listener.accept().await.unwrap();
    let b = TcpStream::connect(addr).await.unwrap();
    let (b_srv, _) = listener.accept().await.unwrap();

    // A reader waits on `a` while its peer resets the connection.
    let reader = percore::spawn(async move {
        let (res, _) = a.read(Vec::with_capacity(64)).await;
        (res, a)
    });
    percore::time::sleep(Duration::from_millis(20)).await;
    a_srv.set_linger(Some(Duration::ZERO)).unwrap();
    drop(a_srv); // close with linger 0 sends RST
    let (res, a) = reader.await.unwrap();
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECONNRESET));
    // Further writes fail too, as an error, without SIGPIPE.
    let (res, _) = a.write(b"x".to_vec()).await;
    let errno = res.unwrap_err().raw_os_error();
    assert!(
        matches!(errno, Some(libc::EPIPE | libc::ECONNRESET)),
        "{errno:?}"
    );

    // The other connection is untouched.
    b.write_all(b"still here".to_vec()).await.0.unwrap();
    let (res, buf) = b_srv.read_exact(Vec::with_capacity(10)).await;
    res.unwrap();
    b_srv.write_all(buf).await.0.unwrap();
    let (res, back) = b.read_exact(Vec::with_capacity(10)).await;
    res.unwrap();
    assert_eq!(back, b"still here");
}

#[percore::test]
async fn connect_to_a_closed_port_is_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert_eq!(err.os_error(), Some(libc::ECONNREFUSED), "{err}");
    // The message names the address (std's raw_os_error() is then None).
    assert!(
        err.to_string()
            .starts_with(&format!("connect 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[percore::test]
async fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    // A second listener without SO_REUSEPORT on a listening port.
    let err = TcpListener::bind(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert_eq!(err.os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(
        err.to_string().starts_with(&format!("bind {addr}: ")),
        "{err}"
    );
}

#[percore::test]
async fn connect_timeout_gives_up_and_succeeds_when_time_allows() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A zero budget runs out before the handshake completes.
    let err = TcpStream::connect_timeout(&addr, Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(s.peer_addr().unwrap(), addr);
}

#[percore::test]
async fn byte_at_a_time_and_silent_peers_do_not_disturb_others() {
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let l = listener.clone();
    let server = percore::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (conn, _) = l.accept().await.unwrap();
            tasks.push(percore::spawn(async move { echo_conn(conn).await }));
        }
        tasks
    });
    // 1. A silent peer: connects, sends nothing.
    let silent = TcpStream::connect(addr).await.unwrap();
    // 2. A slow peer: one byte every 2 ms.
    let slow = TcpStream::connect(addr).await.unwrap();
    let slow_task = percore::spawn(async move {
        let msg = pattern(50, 3);
        for &byte in &msg {
            slow.write_all(vec![byte]).await.0.unwrap();
            percore::time::sleep(Duration::from_millis(2)).await;
        }
        let (res, back) = slow.read_exact(Vec::with_capacity(msg.len())).await;
        res.unwrap();
        assert_eq!(back, msg);
    });
    // 3. A fast peer does many round trips meanwhile, promptly.
    let fast = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let mut fast = fast;
    for i in 0..200u32 {
        let (s, back) = round_trip(fast, i.to_le_bytes().to_vec()).await;
        fast = s;
        assert_eq!(back, i.to_le_bytes());
    }
    let fast_time = start.elapsed();
    slow_task.await.unwrap();
    // The silent connection still has nothing to read.
    let waited = percore::time::timeout(
        Duration::from_millis(30),
        silent.read(Vec::with_capacity(16)),
    )
    .await;
    assert!(waited.is_err(), "a silent peer produced data");
    drop((fast, silent));
    for t in server.await.unwrap() {
        t.await.unwrap().unwrap();
    }
    assert!(
        fast_time < Duration::from_secs(10),
        "fast peer took {fast_time:?}"
    );
}

#[percore::test]
async fn incoming_accepts_many_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = listener.incoming();
    let caps = percore::capabilities().unwrap();
    assert_eq!(incoming.is_multishot(), caps.multishot_accept);
    let clients: Vec<_> = (0..20u8)
        .map(|i| {
            percore::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                s.write_all(vec![i]).await.0.unwrap();
                s
            })
        })
        .collect();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let conn = incoming.next().await.unwrap();
        let (res, buf) = conn.read_exact(Vec::with_capacity(1)).await;
        res.unwrap();
        seen.push(buf[0]);
    }
    seen.sort();
    assert_eq!(seen, (0..20).collect::<Vec<u8>>());
    for c in clients {
        c.await.unwrap();
    }
}

#[percore::test]
async fn split_halves_work_from_two_tasks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        echo_conn(conn).await.unwrap()
    });
    let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
    assert_eq!(rd.peer_addr().unwrap(), addr);
    assert_eq!(wr.peer_addr().unwrap(), addr);
    // The reader task is waiting before the writer starts.
    let reader = percore::spawn(async move {
        let mut got = Vec::new();
        loop {
            let (res, b) = rd.read(Vec::with_capacity(4096)).await;
            match res.unwrap() {
                0 => return got,
                _ => got.extend_from_slice(&b),
            }
        }
    });
    let writer = percore::spawn(async move {
        for i in 0..100u8 {
            wr.write_all(pattern(1000, i)).await.0.unwrap();
        }
        wr.shutdown().await.unwrap();
    });
    writer.await.unwrap();
    let got = reader.await.unwrap();
    let want: Vec<u8> = (0..100u8).flat_map(|i| pattern(1000, i)).collect();
    assert!(got == want, "split echo differs ({} bytes back)", got.len());
    assert_eq!(server.await.unwrap(), 100_000);
}

#[percore::test]
async fn vectored_and_zero_copy_writes_arrive_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let big = pattern(1 << 20, 9);
    let sink = percore::spawn(async move {
        let (res, buf) = server
            .read_exact(Vec::with_capacity(6 + (1 << 20) + (256 << 10)))
            .await;
        res.unwrap();
        buf
    });
    let (n, _) = client
        .write_vectored(vec![b"ab".to_vec(), b"cdef".to_vec()])
        .await;
    assert_eq!(n.unwrap(), 6);
    // write_zc may send less than all: loop like write_all does.
    let mut sent = 0;
    let mut buf = big.clone();
    while sent < buf.len() {
        let (res, b) = client
            .write_zc(percore::buf::IoBuf::slice(buf, sent..))
            .await;
        buf = b.into_inner();
        sent += res.unwrap();
    }
    // Automatic zero-copy from a threshold.
    client.set_zerocopy_threshold(Some(64 * 1024));
    client.write_all(pattern(256 << 10, 5)).await.0.unwrap();
    let got = sink.await.unwrap();
    assert_eq!(&got[..6], b"abcdef");
    assert!(got[6..6 + (1 << 20)] == big[..]);
    assert!(got[6 + (1 << 20)..] == pattern(256 << 10, 5)[..]);
}

#[percore::test]
async fn options_and_addresses() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), addr);
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    client.set_nodelay(false).unwrap();
    assert!(!client.nodelay().unwrap());
    // socket2 reaches any option through AsFd.
    let sock = socket2::SockRef::from(&client);
    sock.set_keepalive(true).unwrap();
    assert!(sock.keepalive().unwrap());
    // Port 0 can't be connected to: an invalid-address style error.
    assert!(TcpStream::connect("127.0.0.1:0").await.is_err());
    // Names resolve.
    let s = TcpStream::connect(("localhost", addr.port())).await;
    // localhost may resolve to ::1 first; some address must work.
    assert!(s.is_ok(), "{s:?}");
}

#[test]
fn echo_works_without_optional_kernel_features() {
    let rt = Runtime::builder().minimal_features(true).build().unwrap();
    rt.block_on(async {
        let caps = percore::capabilities().unwrap();
        assert!(!caps.multishot_accept && !caps.buf_ring && !caps.send_zc);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = listener.incoming();
        assert!(!incoming.is_multishot());
        let server = percore::spawn(async move {
            let conn = incoming.next().await.unwrap();
            echo_conn(conn).await.unwrap()
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        // write_zc falls back to a plain send.
        let (n, _) = stream.write_zc(b"zc?".to_vec()).await;
        assert_eq!(n.unwrap(), 3);
        let (res, back) = stream.read_exact(Vec::with_capacity(3)).await;
        res.unwrap();
        assert_eq!(back, b"zc?");
        let (stream, back) = round_trip(stream, pattern(100_000, 2)).await;
        assert_eq!(back, pattern(100_000, 2));
        // No buffer rings: BufRing says so instead of failing later.
        let err = percore::buf::BufRing::new(8, 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        drop(stream);
        assert_eq!(server.await.unwrap(), 100_003);
    });
}

#[percore::test]
async fn debug_shows_the_descriptor_and_the_addresses() {
    use std::os::fd::{AsFd, AsRawFd};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).await.unwrap();
    let fd = client.as_raw_fd();
    assert_eq!(client.as_fd().as_raw_fd(), fd);
    assert_eq!(
        format!("{listener:?}"),
        format!(
            "TcpListener {{ fd: {}, addr: Some({addr}) }}",
            listener.as_raw_fd()
        )
    );
    let local = client.local_addr().unwrap();
    assert_eq!(
        format!("{client:?}"),
        format!("TcpStream {{ fd: {fd}, local: Some({local}), peer: Some({addr}) }}")
    );
}

/// `write_all` of an empty buffer completes at once and sends nothing; of
/// a slice, it sends just the slice's bytes; to a peer that is gone, it
/// fails (`EPIPE` or `ECONNRESET`) and still hands the buffer back.
#[percore::test]
async fn write_all_of_nothing_of_a_slice_and_to_a_gone_peer() {
    use percore::buf::IoBuf;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    // 1. Nothing to send: Ok, and the buffer comes back.
    let (res, buf) = client.write_all(Vec::<u8>::with_capacity(8)).await;
    res.unwrap();
    assert_eq!(buf.capacity(), 8);
    // 2. A slice: only its bytes go out.
    let (res, slice) = client.write_all(b"xxhelloxx".to_vec().slice(2..7)).await;
    res.unwrap();
    assert_eq!(slice.into_inner(), b"xxhelloxx");
    let (res, got) = server.read_exact(Vec::with_capacity(5)).await;
    res.unwrap();
    assert_eq!(got, b"hello");
    // 3. The peer is gone: writes fail once the reset arrives, each with
    //    its buffer.
    drop(server);
    for _ in 0..1000 {
        let (res, buf) = client.write_all(vec![1u8; 4096]).await;
        assert_eq!(buf.len(), 4096, "the buffer comes back either way");
        if let Err(e) = res {
            assert!(
                matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
                "{e}"
            );
            return;
        }
        percore::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("1000 writes to a gone peer all succeeded");
}
