//! An axum router on every core of percore, with `percore_net::serve`.
//!
//! ```text
//! cargo run --release --example axum-server -- [--addr 127.0.0.1:8080] [--cores N]
//! curl http://127.0.0.1:8080/              # Hello, World!
//! curl http://127.0.0.1:8080/json          # {"message":"Hello, World!"}
//! curl http://127.0.0.1:8080/hello/ada     # {"hello":"ada","visits":1}  (shared state, path parameter)
//! curl http://127.0.0.1:8080/source        # this file, read with percore::fs
//! curl http://127.0.0.1:8080/backend       # asks a TCP backend with percore_net
//! curl -i http://127.0.0.1:8080/slow       # 408 after 1 s: tower's timeout layer
//! RUST_LOG=info cargo run --release --example axum-server   # a line per request
//! ```
//!
//! The same flags and the same two first routes as `http-server` (hyper's
//! bare service), byte for byte, so the two compare directly; its tokio
//! peer `peer-tokio-axum` (`bench/src/peers/tokio_axum.rs`) serves the same
//! two handlers, stateless there as here, with `axum::serve`.
//!
//! - `--cores N`: N cores, each with its own `SO_REUSEPORT` listener and
//!   its own `percore_net::serve` (HTTP/1.1 and HTTP/2 on the same port).
//!   Default 1.
//! - Handlers that use percore's own I/O (`/source`, `/backend`, `/slow`)
//!   return `!Send` futures, which axum refuses: they are wrapped in
//!   `percore_net::CoreBound`, sound because percore never moves a task
//!   to another thread.
//! - tower's timeout layer (on `/slow`) needs tokio's timer:
//!   `percore_net::tokio_compat::TokioContextLayer` runs that route with a
//!   small tokio runtime's handle entered; the other routes pay nothing for
//!   it. (`serve(..).tokio_context(true)` would give every connection the
//!   context instead, at about 20 ns per poll.)
//! - tower-http's `TraceLayer` wraps every route: a span per request and
//!   an event per response, printed on stderr when `RUST_LOG` names a
//!   level (`RUST_LOG=info`); the tokio peer has the same layer, so the
//!   two still compare like for like.
//!
//! - `PERCORE_MIN_WAIT_US=N` in its environment: each park batches
//!   completions for up to N µs (`Builder::min_wait`, io_uring with Linux
//!   6.12's `IORING_FEAT_MIN_TIMEOUT`), for up to N µs more latency. An
//!   evenly loaded core may then wake less often than once per request;
//!   under bursty load it sleeps once more per burst instead. Measured on
//!   an idle 2-CPU VM at 10-20k req/s (BENCHMARKS.md), 50 µs cost 1.24-1.50x
//!   tokio's CPU per request against 0.96-1.03x without it, so it is off
//!   by default. `scripts/bench-http.sh` measures it as the server
//!   `axum-minwait`.
//!
//! SIGINT (Ctrl-C) or SIGTERM starts a graceful shutdown: every core stops
//! accepting, requests in flight finish (5 s at most), then it exits.

#[path = "common/axum_routes.rs"]
mod axum_routes;
#[path = "common/http.rs"]
mod http;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use percore_net::tokio_compat::TokioContextLayer;
use percore_net::{CoreBound, ReservedPort, TcpListener, TcpStream};

fn main() {
    let args = http::Args::parse("axum-server");
    axum_routes::init_tracing();
    if let Err(e) = run(args.addr, args.cores) {
        eprintln!("axum-server: {e}");
        std::process::exit(1);
    }
}

/// What every core's handlers share (axum state must be `Send + Sync`).
#[derive(Clone)]
struct Shared {
    visits: Arc<AtomicU64>,
}

/// One core's state: the shared part, plus this core's backend.
#[derive(Clone)]
struct CoreState {
    shared: Shared,
    backend: SocketAddr,
}

fn run(addr: SocketAddr, cores: usize) -> io::Result<()> {
    // Port 0 must mean one port for every core.
    let port = ReservedPort::new(addr)?;
    let addr = port.local_addr();
    let runtime = percore::Runtime::builder()
        .cores(cores)
        .shutdown_on_signals(true)
        .shutdown_grace(Duration::from_secs(5))
        .build()?;
    println!(
        "axum-server listening on http://{addr} ({cores} core{})",
        if cores == 1 { "" } else { "s" }
    );
    let shared = Shared {
        visits: Arc::default(),
    };
    let served = runtime
        .run_on_every_core(move |_core| {
            let (shared, port) = (shared.clone(), port.clone());
            async move {
                let backend = start_backend()?;
                let app = router(CoreState { shared, backend });
                percore_net::serve(port.listener()?, app).await
            }
        })
        .map_err(io::Error::other)?;
    for (core, res) in served.into_iter().enumerate() {
        res.map_err(|e| io::Error::new(e.kind(), format!("core {core}: {e}")))?;
    }
    println!("axum-server: stopped");
    Ok(())
}

fn router(state: CoreState) -> Router {
    // The two benchmarked routes take no state, as in the tokio peer: a
    // handler that holds the state is cloned with it for every request
    // (three allocations for this state), which would be measured too.
    let stateless = Router::new()
        .route("/", get(axum_routes::text))
        .route("/json", get(axum_routes::json));
    Router::new()
        .route("/hello/{name}", get(hello))
        .route("/source", get(|| CoreBound::new(source())))
        .route(
            "/backend",
            get(|State(s): State<CoreState>| CoreBound::new(ask_backend(s.backend))),
        )
        .route(
            "/slow",
            get(|| {
                CoreBound::new(async {
                    percore::time::sleep(Duration::from_secs(2)).await;
                    "too late: the timeout layer answers first"
                })
            })
            .layer(
                tower::ServiceBuilder::new()
                    // Outermost: tower's Timeout makes its tokio sleep in `call`.
                    .layer(TokioContextLayer)
                    .layer(HandleErrorLayer::new(|_: axum::BoxError| async {
                        StatusCode::REQUEST_TIMEOUT
                    }))
                    .timeout(Duration::from_secs(1)),
            ),
        )
        .with_state(state)
        .merge(stateless)
        .layer(axum_routes::trace_layer())
        // Turns the stateless routes into services once, here, instead of
        // for every request (what `axum::serve` does for each connection).
        .with_state(())
}

/// Shared state and a path parameter: a visit count across every core.
async fn hello(State(s): State<CoreState>, Path(name): Path<String>) -> Json<serde_json::Value> {
    let visits = s.shared.visits.fetch_add(1, Ordering::Relaxed) + 1;
    Json(serde_json::json!({ "hello": name, "visits": visits }))
}

/// This example's source, read with percore::fs on the core's ring.
async fn source() -> Result<String, StatusCode> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/axum-server.rs");
    let bytes = percore::fs::read(path)
        .await
        .map_err(|_| StatusCode::NOT_FOUND)?;
    String::from_utf8(bytes).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

/// One request to the core's TCP backend with percore_net.
async fn ask_backend(backend: SocketAddr) -> Result<String, StatusCode> {
    let conn = TcpStream::connect(backend)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let (res, _) = conn.write_all(&b"ping\n"[..]).await;
    res.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let (res, buf) = conn.read(Vec::with_capacity(64)).await;
    res.map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("backend said: {}", String::from_utf8_lossy(&buf)))
}

/// A loopback TCP backend on this core, until the shutdown: answers each
/// connection with the core's thread name.
fn start_backend() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    percore::spawn(async move {
        loop {
            // Stops with the server, so the shutdown need not wait for it.
            let accepted = percore::select(percore::shutdown::requested(), listener.accept());
            let conn = match accepted.await {
                percore::Either::Left(()) => return,
                percore::Either::Right(Ok((conn, _))) => conn,
                percore::Either::Right(Err(_)) => continue,
            };
            percore::spawn(async move {
                let (res, _) = conn.read(Vec::with_capacity(64)).await;
                if res.is_ok() {
                    let name = std::thread::current().name().unwrap_or("core").to_string();
                    let _ = conn
                        .write_all(format!("pong from {name}\n").into_bytes())
                        .await;
                }
            });
        }
    });
    Ok(addr)
}
