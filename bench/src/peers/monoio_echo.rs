//! Peer echo server on monoio's io_uring driver, for the loopback comparison
//! in `scripts/bench-echo.sh`.
//!
//! One task per connection: read into an owned `Vec` of capacity `--buf`
//! (monoio reads into the spare capacity), write it back with `write_all`,
//! clear, repeat until EOF or an error. TCP_NODELAY is set on every accepted
//! socket, as on every peer.
//!
//! `--cores N`: N threads, each with its own monoio runtime and SO_REUSEPORT
//! listener on the same address (`--pin` pins them); see `common.rs`.
//!
//! `cargo run --release -p percore-bench --bin peer-monoio-echo -- --addr 127.0.0.1:7000 --buf 4096`

#[path = "common.rs"]
mod common;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

fn main() {
    let args = common::Args::parse("peer-monoio-echo");
    let buf_size = args.buf;
    common::run_cores("peer-monoio-echo", &args, move |_, std_listener| {
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .build()
            .expect("build monoio io_uring runtime");
        rt.block_on(serve(std_listener, buf_size));
    });
}

async fn serve(std_listener: std::net::TcpListener, buf_size: usize) {
    let listener = TcpListener::from_std(std_listener).expect("register listener");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                monoio::spawn(echo(stream, buf_size));
            }
            // EMFILE and friends: report and keep serving the open connections.
            Err(e) => eprintln!("peer-monoio-echo: accept: {e}"),
        }
    }
}

async fn echo(mut stream: TcpStream, buf_size: usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(buf_size);
    loop {
        let (res, b) = stream.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = stream.write_all(buf).await;
        buf = b;
        if res.is_err() {
            return;
        }
        buf.clear();
    }
}
