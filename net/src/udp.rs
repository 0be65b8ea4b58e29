//! UDP sockets.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use percore::buf::{BufResult, IoBuf, IoBufMut};
use percore::fd::SharedFd;
use percore::op::{Op, Recv, RecvMsg, SendMsg, SendOp};
use socket2::{Domain, SockAddr, SockRef, Type};

use crate::sys;

/// A UDP socket.
///
/// # Examples
///
/// ```
/// use percore_net::UdpSocket;
///
/// percore::run(async {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let (n, _) = a.send_to(b"datagram".to_vec(), b.local_addr().unwrap()).await;
///     assert_eq!(n.unwrap(), 8);
///     let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
///     let (n, from) = res.unwrap();
///     assert_eq!(&buf[..n], b"datagram");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    fd: SharedFd,
}

impl UdpSocket {
    /// Binds to `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// `EADDRINUSE`, `EACCES`, or a resolution error.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        sys::each_addr(addr, |a| {
            let bind = || {
                let fd = sys::socket_sync(Domain::for_address(a), Type::DGRAM)?;
                SockRef::from(&fd).bind(&SockAddr::from(a))?;
                Ok(UdpSocket { fd })
            };
            bind().map_err(|e| sys::with_addr(e, "bind", a))
        })
    }

    /// Takes over a bound std socket.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let std = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let addr = std.local_addr().unwrap();
    ///     assert_eq!(percore_net::UdpSocket::from_std(std).local_addr().unwrap(), addr);
    /// });
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            fd: SharedFd::new(socket.into()),
        }
    }

    /// Sets the default peer: [`send`](UdpSocket::send) goes there and only
    /// its datagrams are received. Connecting a datagram socket sends nothing,
    /// so this is a plain connect(2).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     b.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send(b"hi".to_vec()).await.0.unwrap();
    ///     let (n, buf) = b.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!(n.unwrap(), 2);
    ///     assert_eq!(buf, b"hi");
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// connect(2) errors, or a resolution error.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        sys::each_addr(addr, |a| {
            SockRef::from(&self.fd)
                .connect(&SockAddr::from(a))
                .map_err(|e| sys::with_addr(e, "connect", a))
        })
    }

    /// Sends `buf`'s initialized bytes as one datagram to `addr`.
    ///
    /// # Errors
    ///
    /// `EMSGSIZE` when the datagram is too large, or a resolution error.
    ///
    /// # Cancellation
    ///
    /// Dropping the future cancels the send; the buffer is freed only after
    /// the kernel's completion.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let (res, _) = a.send_to(b"datagram".to_vec(), b.local_addr().unwrap()).await;
    ///     assert_eq!(res.unwrap(), 8);
    ///     let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
    ///     assert_eq!(res.unwrap(), (8, a.local_addr().unwrap()));
    ///     assert_eq!(buf, b"datagram");
    /// });
    /// ```
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: impl ToSocketAddrs) -> BufResult<usize, B> {
        let addr = match sys::resolve(addr) {
            Ok(addrs) => addrs[0],
            Err(e) => return (Err(e), buf),
        };
        let op = SendMsg::new(self.fd.clone(), vec![buf], Some(SockAddr::from(addr)));
        let (res, mut bufs) = Op::new(op).await;
        (res, bufs.pop().expect("sendmsg returns its buffer"))
    }

    /// Receives one datagram into `buf`'s spare capacity and returns its
    /// length and sender. A datagram longer than the spare room is cut.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `buf` has no spare capacity (a full `vec![0u8; n]`
    /// or `Vec::new()`; see [`percore::buf::read_room`]): the datagram stays
    /// queued. recvmsg(2) errors (`ECONNREFUSED` after an ICMP error on a connected
    /// socket, ...).
    ///
    /// # Cancellation
    ///
    /// As [`UdpSocket::send_to`]; a datagram received meanwhile is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.send_to(b"x".to_vec(), b.local_addr().unwrap()).await.0.unwrap();
    ///     let (res, _buf) = b.recv_from(Vec::with_capacity(8)).await;
    ///     let (n, from) = res.unwrap();
    ///     assert_eq!((n, from), (1, a.local_addr().unwrap()));
    /// });
    /// ```
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = Op::new(RecvMsg::new(self.fd.clone(), buf)).await;
        (res.and_then(|(n, a)| Ok((n, sys::inet(a)?))), buf)
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `EDESTADDRREQ` if not connected, `ECONNREFUSED` after an ICMP error.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     a.send(b"to the connected peer".to_vec()).await.0.unwrap();
    ///     let (res, _) = b.recv(Vec::with_capacity(64)).await;
    ///     assert_eq!(res.unwrap(), 21);
    /// });
    /// ```
    pub async fn send<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        Op::new(SendOp::new(self.fd.clone(), buf)).await
    }

    /// Receives one datagram from the connected peer into `buf`'s spare
    /// capacity (a longer datagram is cut).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `buf` has no spare capacity (the datagram stays
    /// queued); recv(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     b.connect(a.local_addr().unwrap()).unwrap();
    ///     a.send_to(b"ping".to_vec(), b.local_addr().unwrap()).await.0.unwrap();
    ///     let (res, buf) = b.recv(Vec::with_capacity(8)).await;
    ///     assert_eq!((res.unwrap(), &buf[..]), (4, &b"ping"[..]));
    /// });
    /// ```
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> BufResult<usize, B> {
        Op::new(Recv::new(self.fd.clone(), buf)).await
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    ///
    /// # Errors
    ///
    /// setsockopt(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     a.set_broadcast(true).unwrap();
    ///     # drop(b);
    /// });
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        SockRef::from(&self.fd).set_broadcast(on)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// getsockname(2) errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.local_addr().unwrap().ip().is_loopback());
    ///     # drop(b);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::inet(SockRef::from(&self.fd).local_addr()?)
    }

    /// The connected peer.
    ///
    /// # Errors
    ///
    /// `ENOTCONN` if not connected.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::UdpSocket;
    ///
    /// percore::run(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     assert!(a.peer_addr().is_err()); // not connected yet
    ///     a.connect(b.local_addr().unwrap()).unwrap();
    ///     assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::inet(SockRef::from(&self.fd).peer_addr()?)
    }
}

sys::socket_traits!(UdpSocket, fd; addr = local_addr);
