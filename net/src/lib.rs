//! TCP, UDP and Unix sockets for the percore runtime.
//!
//! Every I/O call is an io_uring op on the current core's ring. Buffers are
//! owned: a call takes the buffer and hands it back with the result,
//! `(io::Result<T>, buf)`, because the kernel fills or drains it after the
//! call returned.
//!
//! ```
//! use percore_net::{TcpListener, TcpStream};
//!
//! percore::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = percore::spawn(async move {
//!         let (conn, _peer) = listener.accept().await.unwrap();
//!         let (n, buf) = conn.read(Vec::with_capacity(64)).await;
//!         let (res, _) = conn.write_all(buf).await; // echo it back
//!         res.unwrap();
//!         n.unwrap()
//!     });
//!     let client = TcpStream::connect(addr).await.unwrap();
//!     client.write_all(&b"hello"[..]).await.0.unwrap();
//!     let (res, echoed) = client.read_exact(Vec::with_capacity(5)).await;
//!     res.unwrap();
//!     assert_eq!(echoed, b"hello");
//!     assert_eq!(server.await.unwrap(), 5);
//! });
//! ```
//!
//! Receiving for many connections can share one pool of buffers per core
//! ([`percore::buf::BufRing`], see [`TcpStream::recv_pooled`]), so idle
//! connections hold no receive buffer. Large writes can skip the copy into
//! the kernel ([`TcpStream::write_zc`]).
//!
//! Libraries written against the poll-based I/O traits (hyper, rustls,
//! tokio-util codecs) run on these streams through the `compat` module, and
//! hyper gets an executor and a timer in the `hyper` module; both are behind
//! cargo features, off by default (`tokio-io`, `futures-io`, `hyper`).
//!
//! The ecosystem bridge, also behind features: `serve` (`serve(listener,
//! service)` runs axum routers and tower services, HTTP/1 and HTTP/2, with
//! graceful shutdown), `client` and `client-tls` (the `client` module:
//! hyper-util's pooled client on percore, https through rustls), and
//! `tokio-compat` (the `tokio_compat` module: tokio-dependent crates inside
//! percore tasks). [`CoreBound`], always there, makes percore's `!Send`
//! futures acceptable where such frameworks demand `Send`.
//!
//! Socket options go through [`socket2`]: every socket is [`AsFd`](std::os::fd::AsFd),
//! so `socket2::SockRef::from(&stream)` reaches all of them.

#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]
// Denied, not forbidden: the `send` module alone opts out, with its reason.
#![deny(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
#[cfg(any(feature = "tokio-io", feature = "futures-io", feature = "hyper"))]
pub mod compat;
#[cfg(feature = "hyper")]
pub mod hyper;
mod incoming;
mod pooled;
mod reserved;
mod send;
#[cfg(feature = "serve")]
mod serve;
pub mod split;
mod stream;
mod sys;
pub mod tcp;
#[cfg(feature = "tokio-compat")]
pub mod tokio_compat;
mod udp;
pub mod unix;

pub use crate::incoming::Incoming;
pub use crate::pooled::PooledRecv;
pub use crate::reserved::ReservedPort;
pub use crate::send::CoreBound;
#[cfg(feature = "serve")]
pub use crate::serve::{Serve, serve};
pub use crate::tcp::{TcpListener, TcpStream};
pub use crate::udp::UdpSocket;
pub use crate::unix::{UnixDatagram, UnixListener, UnixStream};
pub use percore::buf::{BufRing, ProvidedBuf, RecvBuf};
pub use socket2::SockAddr;
pub use std::net::Shutdown;

/// The README's examples, compiled and run as doctests so they stay true
/// (here rather than in `percore`, since they use both crates).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The porting guide's examples (docs/porting-from-tokio.md), compiled and
/// run as doctests; here because they use both crates. They use `serve`,
/// the tokio compat context and `Compat`'s tokio traits, so they run where
/// those features are on (`cargo test --workspace` turns them on).
#[cfg(all(
    doctest,
    feature = "serve",
    feature = "tokio-compat",
    feature = "tokio-io"
))]
#[doc = include_str!("../../docs/porting-from-tokio.md")]
struct PortingGuideDoctests;
