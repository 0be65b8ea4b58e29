//! Shared by the peer echo servers in `bench/src/peers/`: command-line parsing,
//! the listening sockets and the one-thread-per-core layout, so every peer
//! parses the same flags and listens with the same options (SO_REUSEADDR,
//! backlog 4096).
//!
//! Each peer includes this file with `#[path = "common.rs"] mod common;`.
//!
//! Cores: `--cores N` (default 1) runs N threads, each with its own runtime
//! and its own SO_REUSEPORT listener on the same address, so the kernel
//! spreads connections across them (the layout of percore's
//! `echo-server --cores N`). `--pin` pins thread i to the i-th CPU of the
//! process's affinity mask, as percore's `--pin` does. With the defaults (one
//! core, no pinning) a peer runs exactly as it always has: one runtime on the
//! main thread, one listener without SO_REUSEPORT. The tokio peer also takes
//! `--mt`: one multi-thread runtime with N workers sharing one listener.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

#[path = "../../../runtime/src/affinity.rs"]
pub mod affinity;

/// Backlog of every peer's listener. The memory benchmark opens 10,000
/// connections in a burst; with the usual 1024 the SYN queue overflows and
/// connects stall for a one-second retransmit, which measures nothing useful.
pub const BACKLOG: i32 = 4096;

/// Command line shared by all peers:
/// `--addr HOST:PORT --buf N --cores N --pin` (and `--mt` for tokio).
pub struct Args {
    /// Address to listen on (default `127.0.0.1:7000`).
    pub addr: SocketAddr,
    /// Size of each connection's read buffer in bytes (default 4096).
    pub buf: usize,
    /// Threads serving connections (default 1).
    pub cores: usize,
    /// Pin thread i to the i-th allowed CPU (default off).
    pub pin: bool,
    /// tokio only: one multi-thread runtime with `cores` workers instead of
    /// `cores` current-thread runtimes.
    pub mt: bool,
    /// tokio and glommio only: tasks per thread that loop "100 µs of work,
    /// then yield" beside the echoes (`examples/common/background.rs`).
    pub background: usize,
    /// tokio and glommio only, with `--background N`: the N tasks copy this
    /// file instead of spinning (`examples/common/background.rs`).
    pub copy: Option<std::path::PathBuf>,
}

impl Args {
    /// Parses `std::env::args()`; prints usage and exits with status 2 on a
    /// bad or unknown argument (the tokio-only ones included), 0 on `--help`.
    #[allow(dead_code)] // the tokio and glommio peers call their own
    pub fn parse(name: &str) -> Args {
        Self::parse_or_exit(name, false, false)
    }

    /// As [`Args::parse`], and also accepts `--mt` and `--background N`.
    #[allow(dead_code)] // only the tokio peer takes them
    pub fn parse_tokio(name: &str) -> Args {
        Self::parse_or_exit(name, true, true)
    }

    /// As [`Args::parse`], and also accepts `--background N`.
    #[allow(dead_code)] // only the glommio peer takes it
    pub fn parse_with_background(name: &str) -> Args {
        Self::parse_or_exit(name, false, true)
    }

    fn parse_or_exit(name: &str, tokio: bool, background: bool) -> Args {
        match Self::try_parse(std::env::args().skip(1), tokio, background) {
            Ok(args) => args,
            Err(msg) => {
                let usage = format!(
                    "usage: {name} [--addr HOST:PORT] [--buf BYTES] [--cores N] [--pin]{}{}",
                    if tokio { " [--mt]" } else { "" },
                    if background {
                        " [--background N [--copy SRC]]"
                    } else {
                        ""
                    },
                );
                // Asked for: stdout and success, as every example does.
                if msg == "help" {
                    println!("{usage}");
                    std::process::exit(0);
                }
                eprintln!("{name}: {msg}\n{usage}");
                std::process::exit(2);
            }
        }
    }

    fn try_parse(
        mut argv: impl Iterator<Item = String>,
        tokio: bool,
        background: bool,
    ) -> Result<Args, String> {
        let mut args = Args {
            addr: "127.0.0.1:7000".parse().expect("valid default address"),
            buf: 4096,
            cores: 1,
            pin: false,
            mt: false,
            background: 0,
            copy: None,
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
                "--cores" => {
                    let v = value()?;
                    args.cores = v.parse().map_err(|e| format!("--cores {v}: {e}"))?;
                    if args.cores == 0 {
                        return Err("--cores must be at least 1".into());
                    }
                }
                "--pin" => args.pin = true,
                "--mt" if tokio => args.mt = true,
                "--background" if background => {
                    let v = value()?;
                    args.background = v.parse().map_err(|e| format!("--background {v}: {e}"))?;
                }
                "--copy" if background => args.copy = Some(value()?.into()),
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
    bind(addr, false)
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// `n` listeners on `addr`: one plain [`listener`] when `n` is 1, else `n`
/// SO_REUSEPORT listeners on one port (port 0 is resolved by the first).
pub fn listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    if n == 1 {
        return Ok(vec![listener(addr)?]);
    }
    let first = bind(addr, true)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind(addr, true)?);
    }
    Ok(all)
}

/// Runs `serve(core, listener)` on `args.cores` threads, each with its own
/// listener from [`listeners`], pinned when `args.pin` is set, and returns
/// when every thread has returned. One core runs on the calling thread.
///
/// Exits the process with status 1 if binding fails or a thread panics.
pub fn run_cores<F>(name: &str, args: &Args, serve: F)
where
    F: Fn(usize, TcpListener) + Send + Sync + 'static,
{
    let listeners = listeners(args.addr, args.cores).unwrap_or_else(|e| {
        eprintln!("{name}: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    if args.cores == 1 {
        pin_core(name, args.pin, 0);
        let listener = listeners.into_iter().next().expect("one listener");
        serve(0, listener);
        return;
    }
    let serve = std::sync::Arc::new(serve);
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(core, listener)| {
            let (serve, pin, name) = (serve.clone(), args.pin, name.to_string());
            std::thread::Builder::new()
                .name(format!("{name}-{core}"))
                .spawn(move || {
                    pin_core(&name, pin, core);
                    serve(core, listener)
                })
                .expect("spawn server thread")
        })
        .collect();
    let mut failed = false;
    for t in threads {
        failed |= t.join().is_err();
    }
    if failed {
        eprintln!("{name}: a core panicked");
        std::process::exit(1);
    }
}

/// Pins the calling thread to the `core`-th allowed CPU when `on`; a failure
/// is reported and the thread runs unpinned.
pub fn pin_core(name: &str, on: bool, core: usize) {
    if on && let Err(e) = affinity::pin_current_thread(affinity::nth_cpu(core)) {
        eprintln!("{name}: core {core}: cannot pin: {e}");
    }
}
