//! The `GET /` and `GET /json` handlers of `examples/axum-server.rs`, shared
//! with its tokio peer (`bench/src/peers/tokio_axum.rs`) so both answer byte
//! for byte the same (and the same as `http-server`), and the request
//! tracing layer both put around their routers. Included with
//! `#[path = "common/axum_routes.rs"] mod axum_routes;` next to `http`.

use axum::Json;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::http::TEXT;

/// `GET /`: [`TEXT`] as `text/plain`.
pub async fn text() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], TEXT)
}

/// `GET /json`: `{"message":"Hello, World!"}`.
pub async fn json() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "message": TEXT }))
}

/// tower-http's request tracing: a span per request and an event per
/// response (status, latency), both at INFO. Printed only when a subscriber
/// is installed ([`init_tracing`]); without one, each request pays a
/// callsite check that finds it disabled.
pub fn trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>> {
    TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
        .on_response(DefaultOnResponse::new().level(Level::INFO))
}

/// With `RUST_LOG` set to a level (`error`, `warn`, `info`, `debug` or
/// `trace`), prints tracing events up to it on stderr; without it, installs
/// nothing, so tracing costs next to nothing.
///
/// # Panics
///
/// If `RUST_LOG` is not one of those levels.
pub fn init_tracing() {
    let Ok(level) = std::env::var("RUST_LOG") else {
        return;
    };
    let level: Level = level
        .parse()
        .unwrap_or_else(|_| panic!("RUST_LOG={level}: error, warn, info, debug or trace"));
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
}
