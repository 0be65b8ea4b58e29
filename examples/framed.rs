//! Length-delimited messages over TCP on percore: tokio-util's
//! `LengthDelimitedCodec` through `Framed`, on the `tokio::io` adapter
//! (`percore_net::compat::Compat`).
//!
//! ```text
//! cargo run --example framed -- [--addr 127.0.0.1:7001]
//! ```
//!
//! A server answers every frame with a frame of its own (the payload
//! reversed); an in-process client sends frames of several sizes (empty,
//! small, 200 KiB), checks each answer, then tries a frame over the codec's
//! limit and shows the error the encoder gives. The framing (4-byte length,
//! 256 KiB limit) is in `examples/common/framing.rs`, which the fuzz target
//! `fuzz/fuzz_targets/framed_decode.rs` also uses.

#[path = "common/flags.rs"]
mod flags;

#[path = "common/framing.rs"]
mod framing;

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use percore_net::compat::Compat;
use percore_net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

fn main() {
    let mut addr: SocketAddr = "127.0.0.1:7001".parse().expect("valid default address");
    let mut flags = flags::Flags::new(std::env::args().skip(1), USAGE);
    while let Some(flag) = flags.next_flag() {
        let res = match flag.as_str() {
            "--addr" => flags.parse(&flag).map(|a| addr = a),
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(msg) = res {
            flags::usage_error("framed", &msg, USAGE);
        }
    }
    if let Err(e) = percore::run(run(addr)) {
        eprintln!("framed: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "usage: framed [--addr HOST:PORT]";

async fn run(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    println!("framed server listening on {addr}");

    // The server: one reply frame per request frame, until the client closes.
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await?;
        let mut frames = Framed::new(Compat::new(conn), framing::codec());
        let mut answered = 0;
        while let Some(frame) = frames.next().await {
            let mut frame: BytesMut = frame?;
            frame.reverse();
            frames.send(frame.freeze()).await?;
            answered += 1;
        }
        io::Result::Ok(answered)
    });

    // The client.
    let conn = TcpStream::connect(addr).await?;
    let mut frames = Framed::new(Compat::new(conn), framing::codec());
    let messages: Vec<Bytes> = vec![
        Bytes::from_static(b"hello, frames"),
        Bytes::new(),
        Bytes::from(vec![b'x'; 200 * 1024]),
        Bytes::from_static(b"last"),
    ];
    for msg in &messages {
        frames.send(msg.clone()).await?;
        let reply = frames
            .next()
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "server closed"))??;
        let mut expected = msg.to_vec();
        expected.reverse();
        if reply[..] != expected[..] {
            return Err(io::Error::other("reply is not the reversed message"));
        }
        println!("client: sent {} bytes, got them back reversed", msg.len());
    }

    // Over the limit: the encoder refuses before anything is sent.
    let too_big = Bytes::from(vec![0u8; framing::MAX_FRAME + 1]);
    match frames.send(too_big).await {
        Err(e) => println!(
            "client: a {}-byte frame is refused: {e}",
            framing::MAX_FRAME + 1
        ),
        Ok(()) => return Err(io::Error::other("an oversized frame was sent")),
    }

    // Closing the sink flushes and shuts down the write side; the server's
    // stream of frames ends, and so does its task.
    SinkExt::<Bytes>::close(&mut frames).await?;
    let answered = server.await.map_err(io::Error::from)??;
    println!("done: the server answered {answered} frames");
    Ok(())
}
