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
//! `--background N`: glommio's own answer to background work, for
//! `scripts/bench-classes.sh`. The accept loop and the connections run in a
//! task queue with `Latency::Matters(1 ms)`, and N tasks per executor loop
//! "100 µs of work, then `glommio::yield_if_needed`" in a second queue with
//! `Latency::NotImportant` and the same shares (the work of
//! `echo-server --background N --classes`, `examples/common/background.rs`).
//! With `--copy SRC` the background tasks copy the file SRC instead
//! (`copy_loop`).
//! Executor 0 prints `BACKGROUND turns=T` once a second.
//!
//! `cargo run --release -p percore-bench --bin peer-glommio-echo -- --addr 127.0.0.1:7000 --buf 4096 [--background 16]`

#[path = "../../../examples/common/background.rs"]
mod background;
#[path = "common.rs"]
mod common;

use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};

/// The echo queue's latency goal with `--background`, as echo-server's
/// `--classes` sets it.
const GOAL: Duration = Duration::from_millis(1);

fn main() {
    let args = common::Args::parse_with_background("peer-glommio-echo");
    let (buf_size, tasks, copy) = (args.buf, args.background, args.copy.clone());
    common::run_cores("peer-glommio-echo", &args, move |core, std_listener| {
        let copy = copy.clone();
        LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("peer-glommio-echo-{core}"))
            .spawn(move || async move {
                if tasks == 0 {
                    return serve(std_listener, buf_size).await;
                }
                let ex = glommio::executor();
                let echo =
                    ex.create_task_queue(Shares::Static(1000), Latency::Matters(GOAL), "echo");
                let bg =
                    ex.create_task_queue(Shares::Static(1000), Latency::NotImportant, "background");
                for task in 0..tasks {
                    let work = match &copy {
                        Some(src) => {
                            let (src, dst) = (src.clone(), background::copy_dst(src, core, task));
                            Box::pin(async move {
                                if let Err(e) = copy_loop(&src, &dst).await {
                                    eprintln!("peer-glommio-echo: copy {}: {e}", src.display());
                                }
                            })
                                as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
                        }
                        None => Box::pin(async {
                            loop {
                                background::work_slice();
                                glommio::yield_if_needed().await;
                            }
                        }),
                    };
                    glommio::spawn_local_into(work, bg)
                        .expect("spawn background task")
                        .detach();
                }
                let copying = copy.is_some();
                if core == 0 {
                    glommio::spawn_local_into(
                        async move {
                            loop {
                                if copying {
                                    println!("{}", background::copy_report_line());
                                } else {
                                    println!("{}", background::report_line());
                                }
                                glommio::timer::sleep(Duration::from_secs(1)).await;
                            }
                        },
                        echo,
                    )
                    .expect("spawn reporter")
                    .detach();
                }
                glommio::spawn_local_into(serve(std_listener, buf_size), echo)
                    .expect("spawn accept loop")
                    .await
            })
            .expect("start glommio executor")
            .join()
            .expect("glommio executor panicked");
    });
}

/// `--copy SRC`: copies `src` to `dst` chunk by chunk with glommio's
/// buffered files (io_uring), from the start again at the end, calling
/// `yield_if_needed()` after each chunk. glommio has no per-queue cap on
/// file ops in flight; each task has one read or one write in flight.
async fn copy_loop(src: &std::path::Path, dst: &std::path::Path) -> glommio::Result<(), ()> {
    let from = glommio::io::BufferedFile::open(src).await?;
    let to = glommio::io::BufferedFile::create(dst).await?;
    let mut pos = 0u64;
    loop {
        let chunk = from.read_at(pos, background::COPY_CHUNK).await?;
        if chunk.is_empty() {
            if pos == 0 {
                eprintln!("peer-glommio-echo: the copy's source is empty");
                return Ok(());
            }
            pos = 0;
            continue;
        }
        // glommio's write takes an owned Vec: one copy of the chunk in
        // memory that percore's and tokio's loops do not make.
        let mut data = chunk.to_vec();
        let n = data.len();
        let mut at = pos;
        while !data.is_empty() {
            let written = to.write_at(data.clone(), at).await?;
            data.drain(..written);
            at += written as u64;
        }
        pos += n as u64;
        background::count_copied(n);
        glommio::yield_if_needed().await;
    }
}

/// Accepts for ever; each connection's task joins the accept loop's task
/// queue (glommio's `spawn_local` spawns into the current one).
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
