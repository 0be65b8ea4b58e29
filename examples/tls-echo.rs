//! A TLS echo server and client with rustls on percore, through the
//! `tokio::io` adapter (`percore_net::compat::Compat`) and tokio-rustls.
//!
//! ```text
//! cargo run --example tls-echo -- [--addr 127.0.0.1:7443] [--messages 8]
//! ```
//!
//! At start it makes a self-signed certificate for `localhost` with rcgen
//! (no files), starts a TLS echo server on `--addr` (port 0 picks a free
//! one), then connects an in-process client that trusts exactly that
//! certificate, sends `--messages` messages of growing size, checks every
//! echo, shuts the connection down and prints what happened. Crypto is
//! rustls's `ring` provider.
//!
//! Cost over plain TCP: rustls encrypts into and decrypts from its own
//! buffers, and `Compat` adds one copy each way between those and the
//! ring's owned buffers.

#[path = "common/flags.rs"]
mod flags;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use percore_net::compat::Compat;
use percore_net::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Args {
    addr: SocketAddr,
    messages: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7443".parse().expect("valid default address"),
        messages: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                args.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--messages" => {
                let v = value()?;
                args.messages = v.parse().map_err(|e| format!("--messages {v}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

const USAGE: &str = "usage: tls-echo [--addr HOST:PORT] [--messages N]";

fn main() {
    flags::exit_if_help(USAGE);
    let args = parse_args().unwrap_or_else(|msg| flags::usage_error("tls-echo", &msg, USAGE));
    if let Err(e) = percore::run(run(args)) {
        eprintln!("tls-echo: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> io::Result<()> {
    // 1. A fresh self-signed certificate for "localhost".
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(io::Error::other)?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    println!(
        "generated a self-signed certificate for localhost ({} bytes DER)",
        cert.len()
    );

    // 2. Server and client configurations, both on rustls's ring provider.
    let provider = Arc::new(default_provider());
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(io::Error::other)?;
    let mut roots = RootCertStore::empty();
    roots.add(cert).map_err(io::Error::other)?;
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();

    // 3. The server: accept, handshake, echo until the client closes.
    let listener = TcpListener::bind(args.addr)?;
    let addr = listener.local_addr()?;
    println!("TLS echo server listening on {addr}");
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let server = percore::spawn(async move {
        let (conn, peer) = listener.accept().await?;
        let mut tls = acceptor.accept(Compat::new(conn)).await?;
        println!("server: handshake with {peer} done");
        let mut buf = vec![0u8; 16 * 1024];
        let mut echoed = 0u64;
        loop {
            let n = tls.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tls.write_all(&buf[..n]).await?;
            tls.flush().await?;
            echoed += n as u64;
        }
        tls.shutdown().await?;
        io::Result::Ok(echoed)
    });

    // 4. The client: trust only our certificate, send, check every echo.
    let connector = TlsConnector::from(Arc::new(client_config));
    let stream = Compat::new(TcpStream::connect(addr).await?);
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut tls = connector.connect(name, stream).await?;
    let (_, session) = tls.get_ref();
    println!(
        "client: connected, {:?}, {:?}",
        session.protocol_version().expect("handshake done"),
        session
            .negotiated_cipher_suite()
            .expect("handshake done")
            .suite()
    );
    let mut sent = 0;
    for i in 0..args.messages {
        let len = 16usize << (i % 12); // 16 B .. 32 KiB
        let msg: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        tls.write_all(&msg).await?;
        tls.flush().await?;
        let mut back = vec![0u8; len];
        tls.read_exact(&mut back).await?;
        if back != msg {
            return Err(io::Error::other(format!("message {i}: echo differs")));
        }
        sent += len;
        println!("client: message {i}: {len} bytes echoed intact");
    }
    // close_notify, then our side of TCP; the server sees end of stream.
    tls.shutdown().await?;
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await?;
    let echoed = server.await.map_err(io::Error::from)??;
    println!(
        "done: {} messages, {sent} bytes each way, server echoed {echoed} bytes",
        args.messages
    );
    Ok(())
}
