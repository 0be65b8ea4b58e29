//! Graceful shutdown of a sharded TCP server: every core stops accepting,
//! open connections keep being served within the grace period, and those
//! still open at its end are cut.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use percore::Runtime;
use percore::shutdown::Shutdown;

mod support;
use support::serve;

type Server = std::thread::JoinHandle<Result<Vec<usize>, percore::CoreError>>;

/// Starts [`serve`] on two cores in a thread of its own; returns the thread,
/// the runtime's shutdown handle and the server's address.
fn start(grace: Duration) -> (Server, Shutdown, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = Runtime::builder()
            .cores(2)
            .pin(false)
            .shutdown_grace(grace)
            .build()
            .unwrap();
        tx.send(rt.shutdown_handle()).unwrap();
        serve(rt, addr_tx)
    });
    let shutdown = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    (server, shutdown, addr)
}

fn echo_once(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Reads until end of file or reset; panics if the server keeps the
/// connection open past `limit`.
fn wait_closed(conn: &mut TcpStream, limit: Duration) {
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0; 64];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("connection not closed by the server: {e}"),
    }
}

#[test]
fn shutdown_with_connections_open_serves_them_then_cuts_the_idle_ones() {
    let (server, shutdown, addr) = start(Duration::from_millis(500));

    let mut conns: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        echo_once(c, format!("hello {i}").as_bytes());
    }

    shutdown.request();
    // The listeners close: new connections are refused (or, in a race with
    // the close, accepted by nobody and reset).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            Err(e) => panic!("connect after shutdown: {e}"),
            Ok(_) => assert!(
                Instant::now() < deadline,
                "still accepting after the shutdown"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // A connection that had a request in flight gets its answer, then the
    // server closes it at that request boundary.
    echo_once(&mut conns[0], b"one more");
    wait_closed(&mut conns[0], Duration::from_secs(30));
    // The idle ones are cut when the grace period ends.
    for c in &mut conns[1..] {
        wait_closed(c, Duration::from_secs(30));
    }

    let accepted = server.join().unwrap().unwrap();
    assert_eq!(accepted.iter().sum::<usize>(), 16, "{accepted:?}");
}

#[test]
fn connections_that_close_themselves_let_run_return_before_the_deadline() {
    let (server, shutdown, addr) = start(Duration::from_secs(3600));
    let mut conns: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut conns {
        echo_once(c, b"ping");
    }
    shutdown.request();
    // Clients finish on their own: the server must not wait for the hour.
    drop(conns);
    let accepted = server.join().unwrap().unwrap();
    assert_eq!(accepted.iter().sum::<usize>(), 8);
}
