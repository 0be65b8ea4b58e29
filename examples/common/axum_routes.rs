//! The `GET /` and `GET /json` handlers of `examples/axum-server.rs`, shared
//! with its tokio peer (`benches/peers/tokio_axum.rs`) so both answer byte
//! for byte the same (and the same as `http-server`). Included with
//! `#[path = "common/axum_routes.rs"] mod axum_routes;` next to `http`.

use axum::Json;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::http::TEXT;

/// `GET /`: [`TEXT`] as `text/plain`.
pub async fn text() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], TEXT)
}

/// `GET /json`: `{"message":"Hello, World!"}`.
pub async fn json() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "message": TEXT }))
}
