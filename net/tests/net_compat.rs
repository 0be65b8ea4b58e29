//! `percore_net::compat::Compat`: percore streams behind the tokio and
//! futures poll traits. Round trips, large transfers through the owned
//! halves, half-close, errors after the peer left, and reads interrupted by
//! a timeout or by dropping the adapter.

use std::time::Duration;

use percore::time::timeout;
use percore_net::compat::Compat;
use percore_net::{TcpListener, TcpStream, UnixStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Bounds each network wait, so a lost wake-up fails the test instead of
/// hanging it. Never the thing a test asserts on.
const LIMIT: Duration = Duration::from_secs(20);

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

/// Deterministic bytes that differ from chunk to chunk.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[percore::test]
async fn tokio_round_trip() {
    let (client, server) = tcp_pair().await;
    let (mut client, mut server) = (Compat::new(client), Compat::new(server));

    client.write_all(b"hello").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0u8; 5];
    timeout(LIMIT, server.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello");

    server.write_all(b"world\nsecond line\n").await.unwrap();
    server.flush().await.unwrap();
    let mut line = String::new();
    timeout(LIMIT, client.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "world\n");
    // The rest arrived in the same receive and waits in the buffer.
    assert_eq!(client.buffered(), b"second line\n");
    line.clear();
    client.read_line(&mut line).await.unwrap();
    assert_eq!(line, "second line\n");
}

#[percore::test]
async fn tokio_vectored_write_gathers_in_order() {
    let (client, server) = tcp_pair().await;
    let (mut client, mut server) = (Compat::new(client), Compat::new(server));
    let bufs = [
        std::io::IoSlice::new(b"head "),
        std::io::IoSlice::new(b""),
        std::io::IoSlice::new(b"body"),
    ];
    let n = client.write_vectored(&bufs).await.unwrap();
    assert_eq!(n, 9);
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(LIMIT, server.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"head body");
}

#[percore::test]
async fn large_transfer_echoed_through_owned_halves() {
    const LEN: usize = 8 << 20;
    let (client, server) = tcp_pair().await;

    // The server echoes with tokio::io::copy between its two halves.
    let echo = percore::spawn(async move {
        let (rd, wr) = server.into_split();
        let (mut rd, mut wr) = (Compat::new(rd), Compat::new(wr));
        let n = tokio::io::copy(&mut rd, &mut wr).await.unwrap();
        wr.shutdown().await.unwrap();
        n
    });

    // Small buffers, so the transfer takes many reads, sends and
    // partial fills.
    let (rd, wr) = client.into_split();
    let mut rd = Compat::with_capacity(rd, 7000, 5000);
    let mut wr = Compat::with_capacity(wr, 5000, 5000);
    let data = pattern(LEN);
    let expected = data.clone();
    let writer = percore::spawn(async move {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(LEN);
    timeout(LIMIT, rd.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(echo.await.unwrap(), LEN as u64);
    assert_eq!(got.len(), LEN);
    assert!(got == expected, "echoed bytes differ from the sent ones");
}

#[percore::test]
async fn shutdown_half_closes_and_the_read_side_keeps_working() {
    let (client, server) = tcp_pair().await;
    let (mut client, mut server) = (Compat::new(client), Compat::new(server));

    // 1. The client sends a request and shuts down its write side.
    client.write_all(b"request").await.unwrap();
    client.shutdown().await.unwrap();
    // 2. The server reads to end of stream: all of it, then EOF.
    let mut req = Vec::new();
    timeout(LIMIT, server.read_to_end(&mut req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req, b"request");
    // 3. The server answers on its still open write side.
    server.write_all(b"reply").await.unwrap();
    server.shutdown().await.unwrap();
    // 4. The client, half-closed, still reads the answer and the EOF.
    let mut reply = Vec::new();
    timeout(LIMIT, client.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply, b"reply");
}

#[percore::test]
async fn read_interrupted_by_timeout_keeps_its_op_and_loses_nothing() {
    let (client, server) = tcp_pair().await;
    let mut server = Compat::new(server);
    let mut buf = [0u8; 16];

    // 1. Nothing was sent: the read times out, its recv stays in flight.
    assert!(
        timeout(Duration::from_millis(10), server.read(&mut buf))
            .await
            .is_err()
    );
    // 2. Bytes arrive while nobody polls the adapter.
    client.write_all(&b"late"[..]).await.0.unwrap();
    // 3. The next read picks up the same recv's result: no byte lost.
    let n = timeout(LIMIT, server.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"late");
}

#[percore::test]
async fn dropping_the_adapter_mid_read_cancels_and_closes() {
    let (client, server) = tcp_pair().await;
    let mut server = Compat::new(server);
    let mut buf = [0u8; 16];

    // 1. A read is in flight when the adapter (and the stream) is dropped.
    assert!(
        timeout(Duration::from_millis(10), server.read(&mut buf))
            .await
            .is_err()
    );
    drop(server);
    // 2. The recv is cancelled, the socket closes, the peer reads EOF.
    let (n, _) = timeout(LIMIT, client.read(Vec::with_capacity(8)))
        .await
        .unwrap();
    assert_eq!(n.unwrap(), 0);
    // 3. The core still works.
    let (client, server) = tcp_pair().await;
    let mut server = Compat::new(server);
    client.write_all(&b"ok"[..]).await.0.unwrap();
    let mut two = [0u8; 2];
    timeout(LIMIT, server.read_exact(&mut two))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&two, b"ok");
}

#[percore::test]
async fn write_error_after_peer_reset_is_reported() {
    let (client, server) = tcp_pair().await;
    let mut client = Compat::new(client);
    // The peer resets the connection on close.
    server.set_linger(Some(Duration::ZERO)).unwrap();
    drop(server);
    // The close goes through the loop; writes that find room in the socket
    // (direct sends) complete without one.
    percore::yield_now().await;

    // A queued send's error comes back from the next call; bounded tries.
    let chunk = vec![7u8; 4096];
    let mut err = None;
    for _ in 0..100 {
        let res = match client.write(&chunk).await {
            Ok(_) => client.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("writing to a reset connection fails");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "unexpected error {err:?}"
    );
}

/// Shutting the write side of a connection the peer already reset is done,
/// not an error: an HTTP/2 client's clean close used to fail with
/// `NotConnected` whenever the server closed first.
#[percore::test]
async fn shutdown_after_the_peer_reset_is_ok() {
    let (client, server) = tcp_pair().await;
    let mut client = Compat::new(client);
    server.set_linger(Some(Duration::ZERO)).unwrap();
    drop(server);
    // Wait until the reset arrived: a read sees it (bounded).
    let mut byte = [0u8; 1];
    let read = timeout(Duration::from_secs(10), client.read(&mut byte))
        .await
        .expect("the reset arrives");
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "no data was sent: {read:?}"
    );
    timeout(Duration::from_secs(10), client.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[percore::test]
async fn futures_io_over_unix_stream() {
    // Spelled out: the tokio extension traits are in scope too.
    use futures_util::io::{
        AsyncBufReadExt as BufReadExt, AsyncReadExt as ReadExt, AsyncWriteExt as WriteExt,
    };

    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Compat::new(a), Compat::new(b));
    WriteExt::write_all(&mut a, b"one\ntwo\n").await.unwrap();
    WriteExt::close(&mut a).await.unwrap();

    let mut line = String::new();
    timeout(LIMIT, BufReadExt::read_line(&mut b, &mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "one\n");
    let mut rest = Vec::new();
    timeout(LIMIT, ReadExt::read_to_end(&mut b, &mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"two\n");
}

#[percore::test]
async fn zero_length_calls_do_no_io() {
    let (client, _server) = tcp_pair().await;
    let mut client = Compat::new(client);
    // Nothing to read, and an empty destination: no read is started.
    let mut empty = [0u8; 0];
    assert_eq!(client.read(&mut empty).await.unwrap(), 0);
    assert_eq!(client.write(b"").await.unwrap(), 0);
    client.flush().await.unwrap();
}

/// Ops started on this core so far, of every kind (counted when queued).
fn ops_started() -> u64 {
    percore::stats().driver.ops.iter().map(|(_, n, _)| n).sum()
}

/// A small write from a lone sender (nothing else ready on the core, no
/// entry waiting in the ring) leaves as one non-blocking `sendmsg` straight
/// from the caller's bytes: no op is started. With another task ready, on
/// io_uring, it goes through the ring instead, to share the tick's one
/// `io_uring_enter`; on epoll, whose send op would make the same syscall,
/// it still leaves at once. Either way the peer gets every byte.
#[percore::test]
async fn a_lone_small_write_starts_no_op_and_a_crowded_one_batches_on_io_uring() {
    let (client, server) = tcp_pair().await;
    let writer = percore::spawn(async move {
        let mut client = Compat::new(client);
        // A turn of the loop hands what the set-up queued (the listener's
        // close) to the kernel.
        percore::yield_now().await;
        assert!(percore::op::lone_sender());
        let before = ops_started();
        assert_eq!(client.write(b"lone").await.unwrap(), 4);
        client.flush().await.unwrap();
        let lone = ops_started() - before;

        // Ready, and behind this task in the run queue.
        let other = percore::spawn(async {});
        let before = ops_started();
        assert_eq!(client.write(b"crowd").await.unwrap(), 5);
        let crowded = ops_started() - before;
        client.flush().await.unwrap();
        other.await.unwrap();
        (lone, crowded, client)
    });
    let (lone, crowded, _client) = timeout(LIMIT, writer).await.unwrap().unwrap();
    assert_eq!(lone, 0, "ops started by a lone write");
    let on_uring = percore::capabilities().is_some_and(|c| c.driver != percore::DriverKind::Epoll);
    assert_eq!(
        crowded,
        u64::from(on_uring),
        "ops started by a crowded write"
    );

    let mut server = Compat::new(server);
    let mut got = [0u8; 9];
    timeout(LIMIT, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"lonecrowd");
}

/// Writes far larger than the socket's send buffer, back to back with no
/// flush between them, to a reader that takes its time: the first goes out
/// in part as a direct send, the rest waits on the ring, the next write
/// waits for that before it sends; every byte arrives once, in order.
#[percore::test]
async fn writes_that_fill_the_send_buffer_arrive_whole_and_in_order() {
    const CHUNK: usize = 100 << 10;
    const CHUNKS: usize = 6;
    let (a, b) = UnixStream::pair().unwrap();
    socket2::SockRef::from(&a)
        .set_send_buffer_size(8 << 10)
        .unwrap();
    let data = pattern(CHUNK * CHUNKS);
    let reader = percore::spawn(async move {
        let mut b = Compat::new(b);
        let mut got = Vec::with_capacity(CHUNK * CHUNKS);
        let mut buf = vec![0u8; 16 << 10];
        while got.len() < CHUNK * CHUNKS {
            percore::time::sleep(Duration::from_micros(300)).await;
            let n = timeout(LIMIT, b.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "end of stream after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let mut a = Compat::new(a);
    for chunk in data.chunks(CHUNK) {
        timeout(LIMIT, a.write_all(chunk)).await.unwrap().unwrap();
    }
    timeout(LIMIT, a.flush()).await.unwrap().unwrap();
    assert!(timeout(LIMIT, reader).await.unwrap().unwrap() == data);
}
