//! Peer of `examples/axum-server.rs`: the same axum handlers for `GET /`
//! and `GET /json` (`examples/common/axum_routes.rs`) served by
//! `axum::serve` on tokio's multi-thread runtime with `--cores N` workers,
//! behind the same tower-http trace layer, for an axum-on-percore against
//! axum-on-tokio run of `scripts/bench-http.sh`:
//!
//! ```text
//! MODE=rate scripts/bench-http.sh            # fixed offered rates: CPU and syscalls per request
//! SERVERS="axum axum-tokio" scripts/bench-http.sh   # saturation with wrk
//! ```
//!
//! Runs until killed.

#[path = "../../../examples/common/axum_routes.rs"]
mod axum_routes;
#[path = "../../../examples/common/http.rs"]
mod http;

use axum::routing::get;

fn main() {
    let args = http::Args::parse("peer-tokio-axum");
    axum_routes::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.cores)
        .enable_all()
        .build()
        .expect("build tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .expect("bind listener");
        println!(
            "peer-tokio-axum listening on http://{} ({} workers)",
            listener.local_addr().expect("local address"),
            args.cores
        );
        let app = axum::Router::new()
            .route("/", get(axum_routes::text))
            .route("/json", get(axum_routes::json))
            .layer(axum_routes::trace_layer());
        axum::serve(listener, app).await.expect("serve");
    });
}
