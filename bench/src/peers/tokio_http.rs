//! Peer of `examples/http-server.rs`: the same hyper service
//! (`examples/common/http.rs`) on tokio's multi-thread runtime (epoll) with
//! `--cores N` worker threads, for `scripts/bench-http.sh`.
//!
//! One listener shared by the workers (tokio's usual setup), hyper's HTTP/1
//! connection per accepted socket, TCP_NODELAY, and the same 30 s header
//! read timeout (hyper's default) on hyper-util's tokio timer. Runs until
//! killed.
//!
//! `cargo run --release -p percore-bench --bin peer-tokio-http -- --addr 127.0.0.1:8081 --cores 1`

#[path = "../../../examples/common/http.rs"]
mod http;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

fn main() {
    let args = http::Args::parse("peer-tokio-http");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.cores)
        .enable_all()
        .build()
        .expect("build tokio runtime");
    rt.block_on(async {
        let listener = TcpListener::bind(args.addr).await.expect("bind listener");
        println!(
            "peer-tokio-http listening on http://{} ({} workers)",
            listener.local_addr().expect("local address"),
            args.cores
        );
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                // EMFILE and friends: report and keep serving the open connections.
                Err(e) => {
                    eprintln!("peer-tokio-http: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .serve_connection(
                        TokioIo::new(stream),
                        hyper::service::service_fn(http::handle),
                    )
                    .await;
            });
        }
    });
}
