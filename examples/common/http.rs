//! The HTTP service of `examples/http-server.rs`, shared with its tokio peer
//! (`benches/peers/tokio_http.rs`) so both answer byte for byte the same,
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
    /// bad or unknown argument.
    pub fn parse(name: &str) -> Args {
        match Args::try_parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(msg) => {
                if msg != "help" {
                    eprintln!("{name}: {msg}");
                }
                eprintln!("usage: {name} [--addr HOST:PORT] [--cores N]");
                std::process::exit(2);
            }
        }
    }

    fn try_parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            addr: "127.0.0.1:8080".parse().expect("valid default address"),
            cores: 1,
        };
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--addr" => {
                    let v = value()?;
                    args.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
                }
                "--cores" => {
                    let v = value()?;
                    args.cores = v.parse().map_err(|e| format!("--cores {v}: {e}"))?;
                    if args.cores == 0 {
                        return Err("--cores must be at least 1".into());
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(args)
    }
}
