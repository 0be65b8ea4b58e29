//! Dropping socket ops while the kernel still owns them: buffers live until
//! the completion, accepted connections nobody takes are closed, sockets
//! close only after their last op, and no descriptor leaks.
//!
//! Every test counts `/proc/self/fd`, so they take `SERIAL` and run one at a
//! time.

use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use percore_net::{TcpListener, TcpStream};

// The runtime's test support: the tracked buffer and `open_fds`.
#[path = "../../runtime/tests/support/mod.rs"]
mod support;
use support::{EventLog, open_fds};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (bounded) until the kernel owns no more ops than `baseline`.
async fn settle(baseline: usize) {
    for _ in 0..500 {
        if percore::stats().in_flight <= baseline {
            // One more tick so queued closes reach the kernel.
            percore::time::sleep(Duration::from_millis(2)).await;
            return;
        }
        percore::time::sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "ops still in flight: {} (baseline {baseline})",
        percore::stats().in_flight
    );
}

/// Waits (bounded, for slow runs such as valgrind) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        percore::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn read_dropped_in_flight_keeps_its_buffer_until_the_completion() {
    let _g = serial();
    percore::run(async {
        let (client, server) = pair().await;
        let baseline = percore::stats().in_flight;
        for peer_sends in [false, true] {
            let log = EventLog::new();
            let buf = log.buf(4096);
            // 1. The read is submitted, then dropped by the timeout.
            let res = percore::time::timeout(Duration::from_millis(5), server.read(buf)).await;
            assert!(res.is_err());
            // 2. The kernel still owns the op: the buffer must be alive.
            assert_eq!(log.live(), 1, "buffer freed while the kernel owned it");
            assert_eq!(percore::stats().in_flight, baseline + 1);
            // 3. Optionally data arrives before the cancel is even submitted,
            //    so the kernel may write into the buffer.
            if peer_sends {
                socket2::SockRef::from(&client)
                    .send(b"racing data")
                    .unwrap();
            }
            // 4. The completion (data or ECANCELED) frees the op, then the buffer.
            settle(baseline).await;
            assert_eq!(log.live(), 0, "buffer never freed after its completion");
        }
        // The connection still works afterwards.
        drop(server);
        drop(client);
    });
}

#[test]
fn write_dropped_in_flight_keeps_its_buffer_until_the_completion() {
    let _g = serial();
    percore::run(async {
        let (client, server) = pair().await;
        let baseline = percore::stats().in_flight;
        // 16 MiB cannot fit in the socket buffers of a peer that doesn't read.
        let log = EventLog::new();
        let buf = log.buf_with(&vec![3u8; 16 << 20]);
        let res = percore::time::timeout(Duration::from_millis(20), client.write_all(buf)).await;
        assert!(res.is_err());
        assert_eq!(log.live(), 1, "buffer freed while the kernel owned it");
        assert!(percore::stats().in_flight > baseline);
        // The peer drains; the send completes or is cancelled; then the free.
        let drain = percore::spawn(async move {
            let mut total = 0;
            loop {
                let (res, _) = server.read(Vec::with_capacity(1 << 20)).await;
                match res.unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        settle(baseline + 1).await; // +1: the drain's own read
        assert_eq!(log.live(), 0, "buffer never freed after its completion");
        drop(client);
        let received = drain.await.unwrap();
        assert!(received <= 16 << 20);
    });
}

#[test]
fn write_dropped_before_its_first_poll_frees_its_buffer_and_sends_nothing() {
    let _g = serial();
    percore::run(async {
        let (client, server) = pair().await;
        let baseline = percore::stats().in_flight;
        let log = EventLog::new();
        // Built, never polled: nothing of it reaches the driver.
        drop(client.write_all(log.buf_with(b"dropped")));
        assert_eq!(log.live(), 0, "the buffer outlived its write");
        assert_eq!(percore::stats().in_flight, baseline);
        client.write_all(b"next".to_vec()).await.0.unwrap();
        drop(client);
        let (res, got) = server.read_exact(Vec::with_capacity(4)).await;
        res.unwrap();
        assert_eq!(got, b"next");
        let (res, _) = server.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 0, "only the next write's bytes came");
    });
}

#[test]
fn aborted_task_closes_its_socket_only_after_the_kernel_is_done() {
    let _g = serial();
    percore::run(async {
        let fds = open_fds();
        let baseline = percore::stats().in_flight;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer_std = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_std, _) = listener.accept().unwrap();
        let server = TcpStream::from_std(server_std);
        let task = percore::spawn(async move {
            let (res, _) = server.read(Vec::with_capacity(64)).await;
            res.map(|_| ())
        });
        until("the read is in flight", || {
            percore::stats().in_flight == baseline + 1
        })
        .await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        settle(baseline).await;
        // The socket is closed now: the peer reads end of stream.
        peer_std
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 8];
        assert_eq!(peer_std.read(&mut b).unwrap(), 0);
        drop((peer_std, listener));
        assert_eq!(open_fds(), fds);
    });
}

#[test]
fn accept_completed_then_dropped_closes_the_connection() {
    let _g = serial();
    percore::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fds = open_fds();
        let baseline = percore::stats().in_flight;
        // 1. Submit an accept and leave it unpolled.
        let mut accept = Box::pin(listener.accept());
        std::future::poll_fn(|cx| {
            assert!(accept.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        // 2. A client connects; the kernel completes the accept.
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        // Client and accepted socket.
        until("the kernel accepted", || open_fds() == fds + 2).await;
        // 3. Nobody takes the connection: dropping the future closes it.
        drop(accept);
        settle(baseline).await;
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut b = [0u8; 8];
        assert_eq!(
            client.read(&mut b).unwrap(),
            0,
            "accepted socket was not closed"
        );
        drop(client);
        assert_eq!(open_fds(), fds);
    });
}

#[test]
fn incoming_dropped_closes_connections_nobody_took() {
    let _g = serial();
    percore::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fds = open_fds();
        let baseline = percore::stats().in_flight;
        let mut incoming = listener.incoming();
        // Arm it, then three clients connect while nobody calls `next`.
        assert!(
            percore::time::timeout(Duration::from_millis(5), incoming.next())
                .await
                .is_err()
        );
        let mut clients: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        if incoming.is_multishot() {
            // All three are accepted by the one multishot op.
            until("the kernel accepted all three", || open_fds() == fds + 6).await;
        }
        drop(incoming);
        settle(baseline).await;
        if percore::capabilities().unwrap().multishot_accept {
            for c in &mut clients {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut b = [0u8; 8];
                assert_eq!(c.read(&mut b).unwrap(), 0, "accepted socket was not closed");
            }
        }
        // Connections still queued in the kernel are accepted normally later.
        drop(clients);
        percore::time::sleep(Duration::from_millis(5)).await;
        let mut leftovers = Vec::new();
        while let Ok(Ok((c, _))) =
            percore::time::timeout(Duration::from_millis(20), listener.accept()).await
        {
            leftovers.push(c);
        }
        drop(leftovers);
        settle(baseline).await;
        assert_eq!(open_fds(), fds);
    });
}

#[test]
fn connections_and_timed_out_connects_leak_no_descriptor() {
    let _g = serial();
    percore::run(async {
        let fds = open_fds();
        let baseline = percore::stats().in_flight;
        {
            let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let addr = listener.local_addr().unwrap();
            let l = listener.clone();
            let server = percore::spawn(async move {
                for _ in 0..100 {
                    let (c, _) = l.accept().await.unwrap();
                    percore::spawn(async move {
                        let (res, buf) = c.read(Vec::with_capacity(16)).await;
                        if res.unwrap() > 0 {
                            c.write_all(buf).await.0.unwrap();
                        }
                    });
                }
            });
            for i in 0..100u32 {
                let s = TcpStream::connect(addr).await.unwrap();
                s.write_all(i.to_le_bytes().to_vec()).await.0.unwrap();
                let (res, buf) = s.read_exact(Vec::with_capacity(4)).await;
                res.unwrap();
                assert_eq!(buf, i.to_le_bytes());
            }
            server.await.unwrap();
            // Connects abandoned by a timeout close their sockets too.
            for _ in 0..20 {
                let err = TcpStream::connect_timeout(&addr, Duration::ZERO)
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            }
            // Refused connects as well.
            drop(listener);
            settle(baseline).await;
            for _ in 0..20 {
                assert!(TcpStream::connect(addr).await.is_err());
            }
        }
        settle(baseline).await;
        let mut now = open_fds();
        for _ in 0..100 {
            if now == fds {
                break;
            }
            // Connections aborted by timed-out connects may still be in
            // the listen queue teardown; give the closes a moment.
            percore::time::sleep(Duration::from_millis(2)).await;
            now = open_fds();
        }
        assert_eq!(now, fds, "descriptors leaked");
    });
}

#[test]
fn runtime_dropped_with_socket_ops_in_flight() {
    let _g = serial();
    let fds = open_fds();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_std, _) = listener.accept().unwrap();
    let log = EventLog::new();
    {
        let rt = percore::Runtime::new().unwrap();
        let buf = log.buf(1024);
        rt.block_on(async move {
            let server = TcpStream::from_std(server_std);
            percore::spawn(async move {
                let _ = server.read(buf).await;
            });
            until("the read is in flight", || percore::stats().in_flight == 1).await;
        });
        drop(rt); // cancels the read, waits for its completion, closes the socket
    }
    assert_eq!(log.live(), 0, "the read's buffer outlived its runtime");
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(peer.read(&mut b).unwrap(), 0);
    peer.write_all(b"x").ok();
    drop((peer, listener));
    assert_eq!(open_fds(), fds);
}
