//! Shared by the peer echo servers in `benches/peers/`: command-line parsing
//! and the listening socket, so every peer parses `--addr`/`--buf` the same
//! way and listens with the same options (SO_REUSEADDR, backlog 4096).
//!
//! Each peer includes this file with `#[path = "common.rs"] mod common;`.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of every peer's listener. The memory benchmark opens 10,000
/// connections in a burst; with the usual 1024 the SYN queue overflows and
/// connects stall for a one-second retransmit, which measures nothing useful.
pub const BACKLOG: i32 = 4096;

/// Command line shared by all peers: `--addr HOST:PORT --buf N`.
pub struct Args {
    /// Address to listen on (default `127.0.0.1:7000`).
    pub addr: SocketAddr,
    /// Size of each connection's read buffer in bytes (default 4096).
    pub buf: usize,
}

impl Args {
    /// Parses `std::env::args()`; prints usage and exits with status 2 on a
    /// bad or unknown argument.
    pub fn parse(name: &str) -> Args {
        match Self::try_parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(msg) => {
                eprintln!("{name}: {msg}");
                eprintln!("usage: {name} [--addr HOST:PORT] [--buf BYTES]");
                std::process::exit(2);
            }
        }
    }

    fn try_parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            addr: "127.0.0.1:7000".parse().expect("valid default address"),
            buf: 4096,
        };
        while let Some(flag) = argv.next() {
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (flag, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| argv.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--addr" => {
                    let v = value()?;
                    args.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
                }
                "--buf" => {
                    let v = value()?;
                    args.buf = v.parse().map_err(|e| format!("--buf {v}: {e}"))?;
                    if args.buf == 0 {
                        return Err("--buf must be at least 1".into());
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(args)
    }
}

/// Binds a blocking-mode TCP listener on `addr` with SO_REUSEADDR and
/// [`BACKLOG`]. Peers that need non-blocking mode (tokio) set it themselves.
pub fn listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
