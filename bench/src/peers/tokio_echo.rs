//! Peer echo server on tokio (epoll), for the loopback comparisons in
//! `scripts/bench-echo.sh` (current-thread runtime, one core) and
//! `scripts/bench-cores.sh` (`--mt`).
//!
//! Which runtime, by flags (see `common.rs`):
//! - default: one current-thread runtime on the main thread;
//! - `--cores N`: N threads, each a current-thread runtime with its own
//!   SO_REUSEPORT listener on the same address (thread-per-core, like the
//!   io_uring peers);
//! - `--mt --cores N`: one multi-thread runtime with N worker threads that
//!   share one listener and steal work from each other (tokio's usual
//!   deployment, the "tokio multi-thread" of the thread-per-core comparison).
//!
//! `--pin` pins thread or worker i to the i-th allowed CPU.
//!
//! `--background N` (current-thread runtimes only): N tasks per thread that
//! loop "100 µs of work, then `tokio::task::yield_now`", the same work as
//! `echo-server --background N` (`examples/common/background.rs`). With
//! `--copy SRC` they copy the file SRC instead (`tokio::fs`, so the blocking
//! pool's threads do the reads and writes), as `echo-server --copy` does.
//!
//! One task per connection: read up to `--buf` bytes into a buffer the task
//! owns, write them back with `write_all`, repeat until EOF or an error.
//! TCP_NODELAY is set on every accepted socket, as on every peer.
//!
//! `cargo run --release -p percore-bench --bin peer-tokio-echo -- --addr 127.0.0.1:7000 --buf 4096 [--mt --cores 2]`

#[path = "../../../examples/common/background.rs"]
mod background;
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "peer-tokio-echo";

fn main() {
    let args = common::Args::parse_tokio(NAME);
    if args.mt && args.background > 0 {
        eprintln!("{NAME}: --background runs on the current-thread runtimes only, not with --mt");
        std::process::exit(2);
    }
    if args.mt {
        serve_multi_thread(&args);
        return;
    }
    let (buf_size, background, copy) = (args.buf, args.background, args.copy.clone());
    common::run_cores(NAME, &args, move |thread, std_listener| {
        let copy = copy.clone();
        std_listener
            .set_nonblocking(true)
            .expect("set listener non-blocking");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .expect("build tokio runtime");
        rt.block_on(async move {
            match &copy {
                Some(src) => start_copies(thread, background, src),
                None => start_background(thread, background),
            }
            serve(std_listener, buf_size).await
        });
    });
}

/// `--mt`: one multi-thread runtime with `--cores` workers (pinned to the
/// first `--cores` allowed CPUs with `--pin`) sharing one listener; the
/// accept loop runs as a task on a worker, like every connection.
fn serve_multi_thread(args: &common::Args) {
    let std_listener = common::listener(args.addr).unwrap_or_else(|e| {
        eprintln!("{NAME}: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    std_listener
        .set_nonblocking(true)
        .expect("set listener non-blocking");
    let (pin, next) = (args.pin, Arc::new(AtomicUsize::new(0)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.cores)
        .enable_io()
        .on_thread_start(move || {
            // Workers start first; the blocking pool (unused here) would
            // continue the count and wrap around.
            common::pin_core(NAME, pin, next.fetch_add(1, Ordering::Relaxed));
        })
        .build()
        .expect("build tokio multi-thread runtime");
    let buf_size = args.buf;
    rt.block_on(async move {
        tokio::spawn(serve(std_listener, buf_size))
            .await
            .expect("accept loop panicked")
    });
}

/// `--background N`: N tasks that work and yield for as long as the server
/// runs; thread 0 also prints the work done, once a second.
fn start_background(thread: usize, tasks: usize) {
    if tasks == 0 {
        return;
    }
    for _ in 0..tasks {
        tokio::spawn(async {
            loop {
                background::work_slice();
                tokio::task::yield_now().await;
            }
        });
    }
    if thread == 0 {
        tokio::spawn(async {
            loop {
                println!("{}", background::report_line());
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

/// `--background N --copy SRC`: N tasks that copy SRC chunk by chunk with
/// `tokio::fs` (the blocking pool) and `yield_now()` after each chunk, for as
/// long as the server runs; thread 0 also prints the bytes copied.
fn start_copies(thread: usize, tasks: usize, src: &std::path::Path) {
    for task in 0..tasks {
        let (src, dst) = (src.to_path_buf(), background::copy_dst(src, thread, task));
        tokio::spawn(async move {
            if let Err(e) = copy_loop(&src, &dst).await {
                eprintln!("{NAME}: copy {} to {}: {e}", src.display(), dst.display());
            }
        });
    }
    if thread == 0 && tasks > 0 {
        tokio::spawn(async {
            loop {
                println!("{}", background::copy_report_line());
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}

/// Copies `src` to `dst` chunk by chunk, from the start again at the end.
async fn copy_loop(src: &std::path::Path, dst: &std::path::Path) -> std::io::Result<()> {
    use std::io::SeekFrom;
    use tokio::io::AsyncSeekExt;

    let mut from = tokio::fs::File::open(src).await?;
    let mut to = tokio::fs::File::create(dst).await?;
    let mut buf = vec![0u8; background::COPY_CHUNK];
    let mut at_start = true;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            if at_start {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the source is empty",
                ));
            }
            from.seek(SeekFrom::Start(0)).await?;
            to.seek(SeekFrom::Start(0)).await?;
            at_start = true;
            continue;
        }
        to.write_all(&buf[..n]).await?;
        at_start = false;
        background::count_copied(n);
        tokio::task::yield_now().await;
    }
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
                eprintln!("{NAME}: accept: {e}");
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
