//! Peer echo server on tokio's current-thread runtime (epoll), for the
//! loopback comparison in `scripts/bench-echo.sh`.
//!
//! One task per connection: read up to `--buf` bytes into a buffer the task
//! owns, write them back with `write_all`, repeat until EOF or an error.
//! TCP_NODELAY is set on every accepted socket, as on every peer.
//!
//! `cargo run --release --example peer-tokio-echo -- --addr 127.0.0.1:7000 --buf 4096`

#[path = "common.rs"]
mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args = common::Args::parse("peer-tokio-echo");
    let std_listener = common::listener(args.addr).expect("bind listener");
    std_listener
        .set_nonblocking(true)
        .expect("set listener non-blocking");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("build tokio runtime");
    rt.block_on(serve(std_listener, args.buf));
}

async fn serve(std_listener: std::net::TcpListener, buf_size: usize) {
    let listener = TcpListener::from_std(std_listener).expect("register listener");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream, buf_size));
            }
            // EMFILE and friends: report and keep serving the open connections.
            Err(e) => {
                eprintln!("peer-tokio-echo: accept: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn echo(mut stream: TcpStream, buf_size: usize) {
    let mut buf = vec![0u8; buf_size];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
