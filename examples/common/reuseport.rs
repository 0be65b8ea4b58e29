//! Shared by the sharded example servers (echo-server, http-server).

use std::io;
use std::net::SocketAddr;

/// A socket bound to `addr` with SO_REUSEADDR and SO_REUSEPORT, not
/// listening: it fixes the port (when `addr` has port 0) for every core's
/// `TcpListener::bind_reuseport`, and takes no connections itself, since
/// the kernel spreads connections over listening sockets only. Keep it
/// until the cores have bound.
pub fn reserve_port(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}
