//! The HTTP service of `examples/http-server.rs`, shared with its tokio peer
//! (`bench/src/peers/tokio_http.rs`) so both answer byte for byte the same,
//! and their common command line. Included with
//! `#[path = "common/http.rs"] mod http;`.

#![allow(dead_code)] // each includer uses a part

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

#[path = "flags.rs"]
pub mod flags;
use flags::Flags;

/// The body of `GET /`.
pub const TEXT: &str = "Hello, World!";

/// Answers `GET /` with [`TEXT`], `GET /json` with a small JSON object, and
/// anything else with 404.
pub async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(respond(req.method(), req.uri().path()))
}

/// The response for one method and path (the service minus the body).
pub fn respond(method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/") => (
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(TEXT.as_bytes()),
        ),
        (&Method::GET, "/json") => {
            let json = serde_json::json!({ "message": TEXT });
            (
                StatusCode::OK,
                "application/json",
                Bytes::from(json.to_string()),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// `--addr HOST:PORT` (default 127.0.0.1:8080) and `--cores N` (default 1).
pub struct Args {
    pub addr: SocketAddr,
    pub cores: usize,
}

impl Args {
    /// Parses `std::env::args()`; prints usage and exits with status 2 on a
    /// bad or unknown argument, 0 on `--help`.
    pub fn parse(name: &str) -> Args {
        let usage = format!("usage: {name} [--addr HOST:PORT] [--cores N]");
        match Args::try_parse(std::env::args().skip(1), &usage) {
            Ok(args) => args,
            Err(msg) => flags::usage_error(name, &msg, &usage),
        }
    }

    fn try_parse(it: impl Iterator<Item = String>, usage: &str) -> Result<Args, String> {
        let mut args = Args {
            addr: "127.0.0.1:8080".parse().expect("valid default address"),
            cores: 1,
        };
        let mut flags = Flags::new(it, usage);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "--addr" => args.addr = flags.parse(&flag)?,
                "--cores" => args.cores = flags.positive(&flag)?,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(args)
    }
}
