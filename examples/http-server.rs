//! An HTTP/1.1 server with hyper on every core of percore.
//!
//! ```text
//! cargo run --release --example http-server -- [--addr 127.0.0.1:8080] [--cores N]
//! curl http://127.0.0.1:8080/        # Hello, World!
//! curl http://127.0.0.1:8080/json    # {"message":"Hello, World!"}
//! ```
//!
//! - `--cores N`: N cores (`percore::Runtime::builder().cores(N)`), each with
//!   its own ring, executor and `SO_REUSEPORT` listener on the same address;
//!   the kernel spreads connections across them. Default 1.
//! - `GET /` answers a short text, `GET /json` a small JSON object, anything
//!   else 404 (the service is in `examples/common/http.rs`, shared with the
//!   tokio peer `benches/peers/tokio_http.rs` that `scripts/bench-http.sh`
//!   compares it with).
//!
//! Each connection is served by hyper's HTTP/1 state machine over
//! `percore_net::compat::Compat` (one read and one write buffer per
//! connection), with keep-alive and a 30 s header read timeout on
//! `percore_net::hyper::Timer`.
//!
//! SIGINT (Ctrl-C) or SIGTERM stops it: core 0 reads the signal from a
//! signalfd through its ring and closes a pipe every core waits on.

#[path = "common/http.rs"]
mod http;
#[path = "common/server.rs"]
mod server;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percore::Either;
use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Op, Read};
use percore_net::TcpListener;
use percore_net::compat::Compat;

/// What the cores share: core 0's listener (bound early to learn the port),
/// the signalfd core 0 waits on, and the stop pipe.
struct Shared {
    first: Mutex<Option<std::net::TcpListener>>,
    sigfd: Mutex<Option<OwnedFd>>,
    stop_rd: std::io::PipeReader,
    stop_wr: Mutex<Option<std::io::PipeWriter>>,
}

fn main() {
    let args = http::Args::parse("http-server");
    if let Err(e) = run(args.addr, args.cores) {
        eprintln!("http-server: {e}");
        std::process::exit(1);
    }
}

fn run(addr: SocketAddr, cores: usize) -> io::Result<()> {
    // Before any core starts, so every thread has the signals blocked.
    let sigfd = server::signal_fd(&[libc::SIGINT, libc::SIGTERM])?;
    let first = std::net::TcpListener::from(server::reuseport_listener(addr)?);
    let addr = first.local_addr()?;
    let (stop_rd, stop_wr) = std::io::pipe()?;
    let shared = Arc::new(Shared {
        first: Mutex::new(Some(first)),
        sigfd: Mutex::new(Some(sigfd)),
        stop_rd,
        stop_wr: Mutex::new(Some(stop_wr)),
    });
    println!(
        "http-server listening on http://{addr} ({cores} core{})",
        if cores == 1 { "" } else { "s" }
    );

    let served = percore::Runtime::builder()
        .cores(cores)
        .build()?
        .run(move |core| {
            let shared = shared.clone();
            async move { serve_core(core, addr, &shared).await }
        })
        .map_err(io::Error::other)?;
    let mut total = 0;
    for (core, res) in served.into_iter().enumerate() {
        total += res.map_err(|e| io::Error::new(e.kind(), format!("core {core}: {e}")))?;
    }
    println!("http-server: stopped after {total} connections");
    Ok(())
}

/// Serves until the stop pipe closes; returns how many connections it accepted.
async fn serve_core(core: usize, addr: SocketAddr, shared: &Shared) -> io::Result<u64> {
    let first = shared
        .first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let listener = match first {
        Some(l) => TcpListener::from_std(l),
        None => TcpListener::bind_reuseport(addr)?,
    };
    if core == 0 {
        let sigfd = shared
            .sigfd
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let stop_wr = shared
            .stop_wr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(sigfd), Some(stop_wr)) = (sigfd, stop_wr) {
            percore::spawn(async move {
                match server::recv_signal(sigfd).await {
                    Ok(signo) => eprintln!("http-server: got signal {signo}, stopping"),
                    Err(e) => eprintln!("http-server: waiting for signals: {e}; stopping"),
                }
                drop(stop_wr); // every core's read of the pipe ends
            });
        }
    }
    let stop = SharedFd::new(OwnedFd::from(shared.stop_rd.try_clone()?));
    let accepted = Rc::new(Cell::new(0));
    let stopped = Op::new(Read::new(stop, Vec::with_capacity(1), CURRENT_POSITION));
    match percore::select(accept_loop(listener, accepted.clone()), stopped).await {
        Either::Left(never) => match never {},
        Either::Right((res, _)) => res.map(|_| accepted.get()),
    }
}

async fn accept_loop(listener: TcpListener, accepted: Rc<Cell<u64>>) -> std::convert::Infallible {
    let mut incoming = listener.incoming();
    let mut errors = 0u64;
    loop {
        let conn = match incoming.next().await {
            Ok(conn) => conn,
            Err(e) => {
                errors += 1;
                if errors % 100 == 1 {
                    eprintln!("http-server: accept: {e}");
                }
                if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                    // Out of descriptors: back off, keep serving open connections.
                    percore::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        accepted.set(accepted.get() + 1);
        percore::spawn(async move {
            // Errors here are a client going away mid-request: nothing to do.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(percore_net::hyper::Timer)
                .serve_connection(Compat::new(conn), hyper::service::service_fn(http::handle))
                .await;
        });
    }
}
