//! Unix sockets: listener and stream round trips, incoming, pairs,
//! abstract names, datagrams with addresses, and errors.

use std::path::PathBuf;

use percore::IoErrorExt;
use percore_net::{SockAddr, UnixDatagram, UnixListener, UnixStream};

/// A fresh directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("percore-net-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn stream_round_trip_through_a_path() {
    let dir = TempDir::new("stream");
    let path = dir.path("echo.sock");
    percore::run(async move {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = percore::spawn(async move {
            let (conn, peer) = listener.accept().await.unwrap();
            assert!(peer.is_unnamed());
            let mut total = 0;
            loop {
                let (res, buf) = conn.read(Vec::with_capacity(8192)).await;
                let n = res.unwrap();
                if n == 0 {
                    return total;
                }
                total += n;
                conn.write_all(buf).await.0.unwrap();
            }
        });
        let client = UnixStream::connect(&path).await.unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let rd = std::rc::Rc::new(client);
        let writer = {
            let c = rd.clone();
            let data = data.clone();
            percore::spawn(async move { c.write_all(data).await.0.unwrap() })
        };
        let (res, back) = rd.read_exact(Vec::with_capacity(data.len())).await;
        res.unwrap();
        writer.await.unwrap();
        assert!(back == data);
        rd.shutdown(std::net::Shutdown::Write).await.unwrap();
        assert_eq!(server.await.unwrap(), data.len());
    });
}

#[percore::test]
async fn incoming_and_abstract_names() {
    let name = format!("percore-net-test-{}", std::process::id());
    let addr = SockAddr::unix(format!("\0{name}")).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_abstract_namespace(),
        Some(name.as_bytes())
    );
    let mut incoming = listener.incoming();
    let clients: Vec<_> = (0..5u8)
        .map(|i| {
            let addr = addr.clone();
            percore::spawn(async move {
                let c = UnixStream::connect_addr(addr).await.unwrap();
                c.write_all(vec![i]).await.0.unwrap();
                c
            })
        })
        .collect();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let conn = incoming.next().await.unwrap();
        let (res, buf) = conn.read_exact(Vec::with_capacity(1)).await;
        res.unwrap();
        seen.push(buf[0]);
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    for c in clients {
        c.await.unwrap();
    }
}

#[percore::test]
async fn pair_half_close_and_vectored_write() {
    let (a, b) = UnixStream::pair().unwrap();
    let (n, _) = a.write_vectored(vec![b"x".to_vec(), b"yz".to_vec()]).await;
    assert_eq!(n.unwrap(), 3);
    a.shutdown(std::net::Shutdown::Write).await.unwrap();
    let (res, buf) = b.read_exact(Vec::with_capacity(3)).await;
    res.unwrap();
    assert_eq!(buf, b"xyz");
    let (n, _) = b.read(Vec::with_capacity(3)).await;
    assert_eq!(n.unwrap(), 0);
    // The other direction is still open.
    b.write_all(b"back".to_vec()).await.0.unwrap();
    let (res, buf) = a.read_exact(Vec::with_capacity(4)).await;
    res.unwrap();
    assert_eq!(buf, b"back");
}

#[percore::test]
async fn split_halves_from_two_tasks_then_reunite() {
    let (a, b) = UnixStream::pair().unwrap();
    let (rd, wr) = a.into_split();
    assert!(rd.peer_addr().unwrap().is_unnamed());
    assert!(wr.local_addr().unwrap().is_unnamed());
    // 1. The reader task waits before anything is written.
    let reader = percore::spawn(async move {
        let (res, buf) = rd.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        (rd, buf)
    });
    // 2. The writer half sends, then shuts its direction down.
    let writer = percore::spawn(async move {
        wr.write_all(&b"to b!"[..]).await.0.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    b.write_all(&b"to a!"[..]).await.0.unwrap();
    let (res, buf) = b.read_exact(Vec::with_capacity(5)).await;
    res.unwrap();
    assert_eq!(buf, b"to b!");
    assert_eq!(b.read(Vec::with_capacity(1)).await.0.unwrap(), 0);
    let (rd, got) = reader.await.unwrap();
    assert_eq!(got, b"to a!");
    // 3. The halves reunite into the stream, which still reads.
    let a = rd.reunite(writer.await.unwrap()).unwrap();
    b.write_all(&b"again"[..]).await.0.unwrap();
    let (res, buf) = a.read_exact(Vec::with_capacity(5)).await;
    res.unwrap();
    assert_eq!(buf, b"again");
}

#[percore::test]
async fn halves_of_different_streams_do_not_reunite() {
    let (a, _a_peer) = UnixStream::pair().unwrap();
    let (b, _b_peer) = UnixStream::pair().unwrap();
    let (a_rd, a_wr) = a.into_split();
    let (b_rd, b_wr) = b.into_split();
    let err = a_rd.reunite(b_wr).unwrap_err();
    let (a_rd, b_wr) = (err.0, err.1);
    assert!(a_rd.reunite(a_wr).is_ok());
    assert!(b_rd.reunite(b_wr).is_ok());
}

#[test]
fn connect_errors() {
    let dir = TempDir::new("errors");
    percore::run(async move {
        let missing = dir.path("missing.sock");
        let err = UnixStream::connect(&missing).await.unwrap_err();
        assert_eq!(err.os_error(), Some(libc::ENOENT));
        let named = format!("connect {}: ", missing.display());
        assert!(err.to_string().starts_with(&named), "{err}");
        // A socket file nobody listens on any more.
        let stale = dir.path("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        // The listener's close goes through the ring: let the loop submit it
        // before connecting (without IORING_OP_SOCKET, e.g. under
        // PERCORE_MINIMAL=1, the connect would otherwise share its
        // submission and reach the listener before the close releases it).
        percore::yield_now().await;
        let err = UnixStream::connect(&stale).await.unwrap_err();
        assert_eq!(err.os_error(), Some(libc::ECONNREFUSED));
        // Binding an existing path fails, naming it.
        let err = UnixListener::bind(&stale).unwrap_err();
        assert_eq!(err.os_error(), Some(libc::EADDRINUSE));
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        let named = format!("bind {}: ", stale.display());
        assert!(err.to_string().starts_with(&named), "{err}");
    });
}

#[test]
fn datagrams_with_addresses() {
    let dir = TempDir::new("dgram");
    let server_path = dir.path("server.sock");
    let client_path = dir.path("client.sock");
    percore::run(async move {
        let server = UnixDatagram::bind(&server_path).unwrap();
        let client = UnixDatagram::bind(&client_path).unwrap();
        let (n, _) = client.send_to(b"hello".to_vec(), &server_path).await;
        assert_eq!(n.unwrap(), 5);
        let (res, buf) = server.recv_from(Vec::with_capacity(64)).await;
        let (n, from) = res.unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.as_pathname(), Some(client_path.as_path()));
        // Reply to the sender's address.
        let (n, _) = server
            .send_to(b"hi back".to_vec(), from.as_pathname().unwrap())
            .await;
        assert_eq!(n.unwrap(), 7);
        let (n, buf) = client.recv(Vec::with_capacity(64)).await;
        assert_eq!(&buf[..n.unwrap()], b"hi back");
        // An unbound sender shows up unnamed.
        let anon = UnixDatagram::unbound().unwrap();
        anon.send_to(b"anon".to_vec(), &server_path)
            .await
            .0
            .unwrap();
        let (res, _) = server.recv_from(Vec::with_capacity(64)).await;
        assert!(res.unwrap().1.is_unnamed());
        // Connected datagrams.
        anon.connect(&server_path).unwrap();
        anon.send(b"c".to_vec()).await.0.unwrap();
        let (n, buf) = server.recv(Vec::with_capacity(8)).await;
        assert_eq!(&buf[..n.unwrap()], b"c");
        // Nobody at the path.
        let (res, _) = anon.send_to(b"x".to_vec(), dir.path("nobody.sock")).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENOENT));
    });
}

#[percore::test]
async fn datagram_pair() {
    let (a, b) = UnixDatagram::pair().unwrap();
    for i in 0..5u8 {
        a.send(vec![i; 3]).await.0.unwrap();
    }
    for i in 0..5u8 {
        let (n, buf) = b.recv(Vec::with_capacity(8)).await;
        assert_eq!(n.unwrap(), 3);
        assert_eq!(buf, vec![i; 3]);
    }
}
