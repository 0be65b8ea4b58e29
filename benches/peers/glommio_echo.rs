//! Peer echo server on glommio (io_uring, one executor thread), for the
//! loopback comparison in `scripts/bench-echo.sh`.
//!
//! One task per connection: read up to `--buf` bytes into a buffer the task
//! owns, write them back with `write_all`, repeat until EOF or an error.
//! The executor is `Placement::Unbound`, so it inherits the CPU set the
//! script gives the process with `taskset`. TCP_NODELAY is set on every
//! accepted socket, as on every peer.
//!
//! `--cores N`: N executors, each on its own thread with its own SO_REUSEPORT
//! listener on the same address (see `common.rs`). With `--pin`, thread i is
//! pinned to the i-th allowed CPU first, and its executor thread, being
//! `Unbound`, inherits that single CPU.
//!
//! `cargo run --release --example peer-glommio-echo -- --addr 127.0.0.1:7000 --buf 4096`

#[path = "common.rs"]
mod common;

use std::os::fd::{FromRawFd, IntoRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};

fn main() {
    let args = common::Args::parse("peer-glommio-echo");
    let buf_size = args.buf;
    common::run_cores("peer-glommio-echo", &args, move |core, std_listener| {
        LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("peer-glommio-echo-{core}"))
            .spawn(move || serve(std_listener, buf_size))
            .expect("start glommio executor")
            .join()
            .expect("glommio executor panicked");
    });
}

async fn serve(std_listener: std::net::TcpListener, buf_size: usize) {
    // SAFETY: `into_raw_fd` hands over sole ownership of an open, bound and
    // listening TCP socket; glommio's listener becomes its only owner.
    let listener = unsafe { TcpListener::from_raw_fd(std_listener.into_raw_fd()) };
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                glommio::spawn_local(echo(stream, buf_size)).detach();
            }
            // EMFILE and friends: report and keep serving the open connections.
            Err(e) => eprintln!("peer-glommio-echo: accept: {e}"),
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
