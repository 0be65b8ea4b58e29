//! Socket reads into a buffer with no spare room fail with `InvalidInput`
//! (never `Ok(0)`, which reads as end of stream) and consume nothing; and
//! percore::io::BufReader reads lines from sockets. Loopback only.

use std::io::ErrorKind;
use std::time::Duration;

use percore::io::BufReader;
use percore_net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};

fn assert_no_room<T: std::fmt::Debug>(res: std::io::Result<T>) {
    let err = res.expect_err("a read with no spare room must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains("buffer has no spare capacity"),
        "{err}"
    );
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    // Small request/reply writes: no Nagle wait for the delayed ACK.
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

#[test]
fn stream_reads_into_full_buffers_fail_and_lose_nothing() {
    percore::run(async {
        let (client, server) = tcp_pair().await;
        client.write_all(b"data".to_vec()).await.0.unwrap();
        let (res, buf) = server.read(vec![0u8; 1024]).await;
        assert_no_room(res);
        assert_eq!(buf.len(), 1024);
        let (res, _) = server.read(Vec::new()).await;
        assert_no_room(res);
        // The halves too.
        let (rd, _wr) = server.into_split();
        let (res, _) = rd.read(vec![1u8; 2]).await;
        assert_no_room(res);
        let (res, buf) = rd.read_exact(Vec::with_capacity(4)).await;
        res.unwrap();
        assert_eq!(buf, b"data", "the bytes were still there");

        let (a, b) = UnixStream::pair().unwrap();
        a.write_all(b"unix".to_vec()).await.0.unwrap();
        let (res, _) = b.read(vec![0u8; 8]).await;
        assert_no_room(res);
        let (res, buf) = b.read(Vec::with_capacity(8)).await;
        assert_eq!((res.unwrap(), &buf[..]), (4, &b"unix"[..]));
    });
}

#[test]
fn datagram_reads_into_full_buffers_fail_and_leave_the_datagram() {
    percore::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"one".to_vec(), b.local_addr().unwrap())
            .await
            .0
            .unwrap();
        let (res, _) = b.recv_from(vec![0u8; 16]).await;
        assert_no_room(res);
        b.connect(a.local_addr().unwrap()).unwrap();
        let (res, _) = b.recv(Vec::new()).await;
        assert_no_room(res);
        let (res, buf) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!((res.unwrap(), &buf[..]), (3, &b"one"[..]));

        let (x, y) = UnixDatagram::pair().unwrap();
        x.send(b"dg".to_vec()).await.0.unwrap();
        let (res, _) = y.recv(vec![0u8; 4]).await;
        assert_no_room(res);
        let (res, _) = y.recv_from(Vec::new()).await;
        assert_no_room(res);
        let (res, buf) = y.recv(Vec::with_capacity(4)).await;
        assert_eq!((res.unwrap(), &buf[..]), (2, &b"dg"[..]));
    });
}

#[test]
fn line_protocol_over_tcp_with_a_borrowed_stream() {
    percore::run(async {
        let (client, server) = tcp_pair().await;
        let serve = percore::spawn(async move {
            // Reads lines through a BufReader over &server while it answers
            // on the same stream.
            let mut reader = BufReader::new(&server);
            let mut line = String::new();
            let mut served = 0;
            loop {
                line.clear();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    return served;
                }
                let reply = format!("{}\n", line.trim_end().to_uppercase());
                server.write_all(reply.into_bytes()).await.0.unwrap();
                served += 1;
            }
        });
        let (rd, wr) = client.into_split();
        let mut replies = BufReader::new(rd).lines();
        for i in 0..50 {
            // Two requests per write, and one split across writes.
            wr.write_all(format!("req {i}\r\nmore {i}\npar").into_bytes())
                .await
                .0
                .unwrap();
            wr.write_all(format!("t {i}\n").into_bytes())
                .await
                .0
                .unwrap();
            for want in [format!("REQ {i}"), format!("MORE {i}"), format!("PART {i}")] {
                let got = percore::time::timeout(Duration::from_secs(10), replies.next_line())
                    .await
                    .expect("reply within 10 s")
                    .unwrap();
                assert_eq!(got.as_deref(), Some(want.as_str()));
            }
        }
        wr.shutdown().await.unwrap();
        assert_eq!(serve.await.unwrap(), 150);
        assert_eq!(replies.next_line().await.unwrap(), None);
    });
}

#[test]
fn lines_from_a_unix_stream() {
    percore::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        a.write_all(b"alpha\nbeta\ngamma".to_vec()).await.0.unwrap();
        drop(a);
        let mut lines = BufReader::with_capacity(3, b).lines();
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            got.push(line);
        }
        assert_eq!(got, ["alpha", "beta", "gamma"]);
    });
}
