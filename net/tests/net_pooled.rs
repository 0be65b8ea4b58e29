//! Receiving through a provided-buffer ring: idle connections hold no
//! buffer, more connections than buffers still get all their data (ENOBUFS
//! handled), and buffers always find their way back to the ring.

use std::rc::Rc;
use std::time::Duration;

use percore::buf::{BufRing, RecvBuf};
use percore_net::{TcpListener, TcpStream};

#[path = "../../runtime/tests/support/mod.rs"]
mod support;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

/// A ring, or a printed reason why this kernel can't have one.
fn ring_or_skip(test: &str, entries: u16, len: usize) -> Option<BufRing> {
    match BufRing::new(entries, len) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("SKIP {test}: no provided-buffer rings on this kernel ({e})");
            None
        }
    }
}

/// `n` connected pairs: (client, server side).
async fn pairs(n: usize) -> Vec<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        out.push((c, s));
    }
    out
}

#[percore::test]
async fn idle_connections_hold_no_buffer() {
    let Some(ring) = ring_or_skip("idle_connections_hold_no_buffer", 4, 1024) else {
        return;
    };
    let conns = pairs(100).await;
    let ring2 = ring.clone();
    let mut tasks = Vec::new();
    for (i, (_, server)) in conns.iter().enumerate() {
        let mut rx = server.recv_pooled(&ring2);
        tasks.push(percore::spawn(async move {
            let buf = rx.next().await.unwrap().unwrap();
            (i, buf.to_vec())
        }));
    }
    // 100 receives are armed (waited for, bounded: the tasks run as the
    // loop gets to them), and the ring is still full.
    let armed = support::wait_until(Duration::from_secs(10), || {
        percore::stats().in_flight >= 100
    })
    .await;
    assert!(armed, "receives armed: {}", percore::stats().in_flight);
    assert_eq!(ring.available(), 4);
    // Data for one connection takes one buffer, only for as long as the
    // receiver holds it.
    conns[42].0.write_all(b"wake".to_vec()).await.0.unwrap();
    let (i, data) = tasks.remove(42).await.unwrap();
    assert_eq!((i, &data[..]), (42, &b"wake"[..]));
    assert_eq!(ring.available(), 4);
    drop(conns); // peers close: every other receiver sees end of stream
    for t in tasks {
        t.abort();
    }
}

#[percore::test]
async fn more_connections_than_buffers_get_all_their_data() {
    let Some(ring) = ring_or_skip("more_connections_than_buffers", 4, 512) else {
        return;
    };
    const CONNS: usize = 16;
    const LEN: usize = 16 * 1024;
    let conns = pairs(CONNS).await;
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (i, (client, server)) in conns.into_iter().enumerate() {
        let mut rx = server.recv_pooled(&ring);
        // Each receiver holds up to 3 buffers before it copies them out:
        // 16 receivers want far more than the ring's 4 buffers.
        servers.push(percore::spawn(async move {
            let mut got = Vec::new();
            let mut held: Vec<RecvBuf> = Vec::new();
            while let Some(buf) = rx.next().await.unwrap() {
                held.push(buf);
                if held.len() == 3 {
                    percore::time::sleep(Duration::from_millis(1)).await;
                    for b in held.drain(..) {
                        got.extend_from_slice(&b);
                    }
                }
            }
            for b in held.drain(..) {
                got.extend_from_slice(&b);
            }
            drop(server);
            (i, got, rx.fallbacks())
        }));
        clients.push(percore::spawn(async move {
            let data = pattern(LEN, i as u8);
            for chunk in data.chunks(700) {
                client.write_all(chunk.to_vec()).await.0.unwrap();
            }
            client.shutdown(std::net::Shutdown::Write).await.unwrap();
            client
        }));
    }
    let _clients = percore::join_all(clients).await;
    let mut fallbacks = 0;
    for s in servers {
        let (i, got, fb) = s.await.unwrap();
        assert_eq!(got.len(), LEN, "connection {i} got {} bytes", got.len());
        assert!(got == pattern(LEN, i as u8), "connection {i} data differs");
        fallbacks += fb;
    }
    // The ring really ran dry (ENOBUFS) and the streams coped.
    assert!(
        fallbacks > 0,
        "the ring never ran out; the test proves nothing"
    );
    // Every buffer is back.
    assert_eq!(ring.available(), 4);
}

#[percore::test]
async fn dropped_stream_gives_unread_buffers_back() {
    let Some(ring) = ring_or_skip("dropped_stream_gives_unread_buffers_back", 4, 256) else {
        return;
    };
    let conns = pairs(2).await;
    let baseline = percore::stats().in_flight;
    // 1. Arm a receive: nothing to read yet, so the wait times out (which
    //    loses nothing, the receive stays armed inside `rx`).
    let mut rx = conns[0].1.recv_pooled(&ring);
    assert!(
        percore::time::timeout(Duration::from_millis(5), rx.next())
            .await
            .is_err()
    );
    // 2. Six chunks arrive one by one: four take the ring's four buffers,
    //    the fifth finds it empty and ends the receive with ENOBUFS.
    for i in 0..6u8 {
        conns[0].0.write_all(vec![i; 100]).await.0.unwrap();
        percore::time::sleep(Duration::from_millis(3)).await;
    }
    // 3. Drop the stream without reading: its completions hold the buffers.
    drop(rx);
    for _ in 0..200 {
        if percore::stats().in_flight <= baseline {
            break;
        }
        percore::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(percore::stats().in_flight, baseline);
    // 4. A new receiver on another connection gets ring buffers again: had
    //    the four buffers been lost, it would only see ENOBUFS fallbacks.
    let mut rx = conns[1].1.recv_pooled(&ring);
    for i in 0..4u8 {
        conns[1].0.write_all(vec![i; 10]).await.0.unwrap();
        let buf = rx.next().await.unwrap().unwrap();
        assert!(buf.is_ring(), "chunk {i} did not come through the ring");
        assert_eq!(&buf[..], &[i; 10]);
        percore::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(rx.fallbacks(), 0);
    assert_eq!(ring.available(), 4);
}

#[percore::test]
async fn pooled_buffers_echo_without_copies_over_unix_sockets() {
    let Some(ring) = ring_or_skip("pooled_echo", 16, 4096) else {
        return;
    };
    let (a, b) = percore_net::UnixStream::pair().unwrap();
    let echo = percore::spawn(async move {
        let mut rx = b.recv_pooled(&ring);
        while let Some(buf) = rx.next().await.unwrap() {
            // A ring buffer is an IoBuf: write it back as it is.
            b.write_all(buf).await.0.unwrap();
        }
        b.shutdown(std::net::Shutdown::Write).await.unwrap();
        ring.available()
    });
    let data = pattern(100_000, 4);
    let writer = {
        let a = Rc::new(a);
        let w = a.clone();
        let d = data.clone();
        (
            a,
            percore::spawn(async move {
                w.write_all(d).await.0.unwrap();
                w.shutdown(std::net::Shutdown::Write).await.unwrap();
            }),
        )
    };
    let (a, w) = writer;
    let (res, back) = a.read_exact(Vec::with_capacity(data.len())).await;
    res.unwrap();
    w.await.unwrap();
    assert!(back == data);
    assert_eq!(echo.await.unwrap(), 16);
}

/// A pooled receive that waits sees what the peer does next: data that
/// fills a whole buffer exactly (and then more), then the end of stream
/// when the peer closes. With no data, the receive holds no buffer.
#[percore::test]
async fn a_waiting_pooled_receive_sees_exact_buffers_and_the_close() {
    let _dog = support::watchdog("pooled_exact_close", Duration::from_secs(60));
    let Some(ring) = ring_or_skip("a_waiting_pooled_receive_sees_the_close", 4, 256) else {
        return;
    };
    let mut conns = pairs(1).await;
    let (client, server) = conns.pop().unwrap();
    let mut rx = server.recv_pooled(&ring);
    for round in 0..3u8 {
        // 1. Waiting, with every buffer in the ring.
        assert!(
            percore::time::timeout(Duration::from_millis(5), rx.next())
                .await
                .is_err()
        );
        assert_eq!(ring.available(), 4);
        // 2. Exactly one buffer's worth, then a little more: every byte, in
        //    order, all through the ring.
        let data = pattern(256 + 10, round);
        client.write_all(data.clone()).await.0.unwrap();
        let mut got = Vec::new();
        while got.len() < data.len() {
            let buf = rx.next().await.unwrap().unwrap();
            assert!(buf.is_ring());
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, data, "round {round}");
    }
    // 3. The peer closes while the receive waits: end of stream.
    let waiting = percore::spawn(async move {
        let end = rx.next().await;
        (end.map(|b| b.map(|b| b.to_vec())), rx)
    });
    percore::time::sleep(Duration::from_millis(5)).await;
    drop(client);
    let (end, rx) = waiting.await.unwrap();
    assert!(end.unwrap().is_none(), "end of stream");
    assert_eq!(rx.fallbacks(), 0);
    drop(rx);
    assert_eq!(ring.available(), 4);
}
