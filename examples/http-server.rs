//! An HTTP/1.1 server with hyper on every core of percore.
//!
//! ```text
//! cargo run --release --example http-server -- [--addr 127.0.0.1:8080] [--cores N]
//! curl http://127.0.0.1:8080/        # Hello, World!
//! curl http://127.0.0.1:8080/json    # {"message":"Hello, World!"}
//! ```
//!
//! - `--cores N`: N cores (`percore::Runtime::builder().cores(N)`), each with
//!   its own ring, executor and `SO_REUSEPORT` listener on the same address
//!   (`ReservedPort::listener`, which gives every core the same port even
//!   for port 0); the kernel spreads connections across them. Default 1.
//! - `GET /` answers a short text, `GET /json` a small JSON object, anything
//!   else 404 (the service is in `examples/common/http.rs`, shared with the
//!   tokio peer `bench/src/peers/tokio_http.rs` that `scripts/bench-http.sh`
//!   compares it with).
//!
//! Each connection is served by hyper's HTTP/1 state machine over
//! `percore_net::compat::Compat` (one read and one write buffer per
//! connection), with keep-alive and hyper's 30 s header read timeout on
//! `percore_net::hyper::Timer`.
//!
//! SIGINT (Ctrl-C) or SIGTERM starts a graceful shutdown (`percore::shutdown`):
//! every core stops accepting, each connection finishes the request it is
//! serving and closes (hyper's `graceful_shutdown`), and what is still open
//! after 5 s is cut. A second Ctrl-C cuts it at once.

#[path = "common/http.rs"]
mod http;

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use percore::{Either, select};
use percore_net::compat::Compat;
use percore_net::{ReservedPort, TcpListener};

fn main() {
    let args = http::Args::parse("http-server");
    if let Err(e) = run(args.addr, args.cores) {
        eprintln!("http-server: {e}");
        std::process::exit(1);
    }
}

fn run(addr: SocketAddr, cores: usize) -> io::Result<()> {
    // Port 0 must mean one port for every core: reserve it once, and every
    // core binds its listener to it.
    let port = ReservedPort::new(addr)?;
    let addr = port.local_addr();
    let runtime = percore::Runtime::builder()
        .cores(cores)
        .shutdown_on_signals(true)
        .build()?;
    println!(
        "http-server listening on http://{addr} ({cores} core{})",
        if cores == 1 { "" } else { "s" }
    );
    let served = runtime
        .run_on_every_core(move |_core| serve_core(port.clone()))
        .map_err(io::Error::other)?;
    let mut total = 0;
    for (core, res) in served.into_iter().enumerate() {
        total += res.map_err(|e| io::Error::new(e.kind(), format!("core {core}: {e}")))?;
    }
    println!("http-server: stopped after {total} connections");
    Ok(())
}

/// Accepts until the shutdown starts; returns how many connections it took.
/// `Runtime::run_on_every_core` then lets the open ones finish within the grace period.
async fn serve_core(port: ReservedPort) -> io::Result<u64> {
    let listener = port.listener()?;
    let accepted = Rc::new(Cell::new(0));
    accept_loop(&listener, &accepted).await;
    Ok(accepted.get())
}

async fn accept_loop(listener: &TcpListener, accepted: &Cell<u64>) {
    let mut incoming = listener.incoming();
    let mut errors = 0u64;
    loop {
        // The shutdown first, so that it wins over a waiting connection.
        let conn = match select(percore::shutdown::requested(), incoming.next()).await {
            Either::Left(()) => return,
            Either::Right(Ok(conn)) => conn,
            Either::Right(Err(e)) => {
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
            let mut served = pin!(
                hyper::server::conn::http1::Builder::new()
                    .timer(percore_net::hyper::Timer)
                    .serve_connection(Compat::new(conn), hyper::service::service_fn(http::handle))
            );
            // Errors are a client going away mid-request: nothing to do.
            if let Either::Left(()) = select(percore::shutdown::requested(), served.as_mut()).await
            {
                // Finish the request in progress, then close.
                served.as_mut().graceful_shutdown();
                let _ = served.await;
            }
        });
    }
}
