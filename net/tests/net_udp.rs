//! UDP: send_to/recv_from round trips (IPv4, IPv6), connected send/recv,
//! truncation, many datagrams in flight, and errors.

use std::net::Ipv6Addr;
use std::time::Duration;

use percore_net::UdpSocket;

#[percore::test]
async fn send_to_and_recv_from_round_trip() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    let echo = percore::spawn(async move {
        for _ in 0..3 {
            let (res, buf) = server.recv_from(Vec::with_capacity(2048)).await;
            let (n, from) = res.unwrap();
            let (sent, _) = server.send_to(buf[..n].to_vec(), from).await;
            assert_eq!(sent.unwrap(), n);
        }
    });
    for msg in [&b"a"[..], &[7u8; 1000][..], &b"last"[..]] {
        let (n, _) = client.send_to(msg.to_vec(), server_addr).await;
        assert_eq!(n.unwrap(), msg.len());
        let (res, buf) = client.recv_from(Vec::with_capacity(2048)).await;
        let (n, from) = res.unwrap();
        assert_eq!(from, server_addr);
        assert_eq!(&buf[..n], msg);
    }
    echo.await.unwrap();
}

#[percore::test]
async fn ipv6_datagrams() {
    let a = match UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP ipv6_datagrams: no IPv6 loopback here ({e})");
            return;
        }
    };
    let b = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    a.send_to(b"v6".to_vec(), b.local_addr().unwrap())
        .await
        .0
        .unwrap();
    let (res, buf) = b.recv_from(Vec::with_capacity(16)).await;
    let (n, from) = res.unwrap();
    assert_eq!(&buf[..n], b"v6");
    assert_eq!(from, a.local_addr().unwrap());
}

#[percore::test]
async fn connected_send_and_recv() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    for i in 0..10u8 {
        a.send(vec![i; i as usize + 1]).await.0.unwrap();
        let (n, buf) = b.recv(Vec::with_capacity(64)).await;
        assert_eq!(n.unwrap(), i as usize + 1);
        assert!(buf.iter().all(|&x| x == i));
    }
    // A datagram from a third socket is filtered out by the connect.
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.send_to(b"intruder".to_vec(), b.local_addr().unwrap())
        .await
        .0
        .unwrap();
    a.send(b"friend".to_vec()).await.0.unwrap();
    let (n, buf) = b.recv(Vec::with_capacity(64)).await;
    assert_eq!(&buf[..n.unwrap()], b"friend");
}

#[percore::test]
async fn long_datagram_is_truncated_to_the_buffer() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.send_to(vec![1u8; 100], b.local_addr().unwrap())
        .await
        .0
        .unwrap();
    a.send_to(b"next".to_vec(), b.local_addr().unwrap())
        .await
        .0
        .unwrap();
    let (res, buf) = b.recv_from(Vec::with_capacity(10)).await;
    assert_eq!(res.unwrap().0, 10);
    assert_eq!(buf, vec![1u8; 10]);
    // The rest of the long datagram is dropped, not read next.
    let (res, buf) = b.recv_from(Vec::with_capacity(10)).await;
    assert_eq!(&buf[..res.unwrap().0], b"next");
}

#[percore::test]
async fn many_receivers_in_flight_get_one_datagram_each() {
    let server = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let addr = server.local_addr().unwrap();
    let receivers: Vec<_> = (0..50)
        .map(|_| {
            let s = server.clone();
            percore::spawn(async move {
                let (res, buf) = s.recv_from(Vec::with_capacity(8)).await;
                let (n, _) = res.unwrap();
                u32::from_le_bytes(buf[..n].try_into().unwrap())
            })
        })
        .collect();
    percore::time::sleep(Duration::from_millis(10)).await;
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u32 {
        client
            .send_to(i.to_le_bytes().to_vec(), addr)
            .await
            .0
            .unwrap();
    }
    let mut got: Vec<u32> = percore::join_all(receivers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[percore::test]
async fn send_without_peer_and_icmp_refusal_are_errors() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (res, _) = a.send(b"nowhere".to_vec()).await;
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EDESTADDRREQ));
    // Connected to a port nobody listens on: the ICMP error comes back
    // as ECONNREFUSED on a later receive.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    a.connect(port).unwrap();
    a.send(b"ping".to_vec()).await.0.unwrap();
    let res = percore::time::timeout(Duration::from_secs(5), a.recv(Vec::with_capacity(8))).await;
    let (res, _) = res.expect("no ICMP error arrived");
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECONNREFUSED));
}

#[percore::test]
async fn bind_errors_name_the_address() {
    use percore::IoErrorExt;
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = UdpSocket::bind(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert_eq!(err.os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(
        err.to_string().starts_with(&format!("bind {addr}: ")),
        "{err}"
    );
}
