//! A sharded echo server that stops on a graceful shutdown, shared by the
//! shutdown tests.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percore::{Either, Runtime, select};
use percore_net::TcpListener;

/// An echo server on both cores of `rt`; each core's output is how many
/// connections it accepted. Core 0 binds port 0 and sends the address to
/// core 1 and out on `addr_tx`; connections close after the echo in
/// progress once the shutdown starts.
pub fn serve(
    rt: Runtime,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
) -> Result<Vec<usize>, percore::CoreError> {
    let (port_tx, port_rx) = percore::channel::channel::<SocketAddr>(4);
    let port_rx = Arc::new(Mutex::new(Some(port_rx)));
    let addr_tx = Mutex::new(addr_tx);
    rt.run_on_every_core(move |core| {
        let port_tx = port_tx.clone();
        let port_rx = port_rx.clone();
        let addr_tx = addr_tx.lock().unwrap().clone();
        async move {
            let listener = if core == 0 {
                let l = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                for _ in 1..percore::cores() {
                    port_tx.send(addr).await.unwrap();
                }
                addr_tx.send(addr).unwrap();
                l
            } else {
                // Two cores: core 1 is the one receiver.
                let mut rx = port_rx.lock().unwrap().take().expect("one other core");
                let addr = rx.recv().await.unwrap();
                TcpListener::bind_reuseport(addr).unwrap()
            };
            let mut accepted = 0;
            loop {
                let conn = match select(percore::shutdown::requested(), listener.accept()).await {
                    Either::Left(()) => break,
                    Either::Right(Ok((conn, _))) => conn,
                    Either::Right(Err(e)) => panic!("accept: {e}"),
                };
                accepted += 1;
                percore::spawn(async move {
                    let mut buf = Vec::with_capacity(1024);
                    while !percore::shutdown::is_requested() {
                        buf.clear();
                        let (res, b) = conn.read(buf).await;
                        if res.map_or(true, |n| n == 0) {
                            return;
                        }
                        let (res, b) = conn.write_all(b).await;
                        if res.is_err() {
                            return;
                        }
                        buf = b;
                    }
                });
            }
            accepted
        }
    })
}

/// Reads until the server closes the connection (end of file or reset) and
/// returns what came; panics if it stays open for 30 s.
pub fn read_until_closed(conn: &mut TcpStream) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 64];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("connection not closed by the server: {e}"),
        }
    }
}
