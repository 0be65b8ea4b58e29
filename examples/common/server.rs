//! Process plumbing shared by the server examples (echo-server,
//! http-server, tls-echo): the listening socket every core binds, and
//! Ctrl-C/SIGTERM read through the ring. Included with
//! `#[path = "common/server.rs"] mod server;`.

#![allow(dead_code)] // each example uses a part

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, Op, Read};

/// A listening socket with SO_REUSEADDR and SO_REUSEPORT, so every core can
/// bind the same address.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock)
}

/// Blocks `signals` for this thread (and threads it starts later) and
/// returns a signalfd that reports them.
pub fn signal_fd(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset initializes it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t on this frame for all calls below;
    // pthread_sigmask and signalfd only read it; signal() only changes the
    // disposition of signals this thread has just blocked.
    let fd = unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // A shell starts background jobs with SIGINT ignored, and an ignored
        // signal never reaches a signalfd: restore the default disposition,
        // harmless now that the signals are blocked.
        for &s in signals {
            libc::signal(s, libc::SIG_DFL);
        }
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits (on the current core's ring) for a signal from `signal_fd` and
/// returns its number.
///
/// # Errors
///
/// The read's error.
pub async fn recv_signal(sigfd: OwnedFd) -> io::Result<u32> {
    let fd = SharedFd::new(sigfd);
    let info = Vec::with_capacity(std::mem::size_of::<libc::signalfd_siginfo>());
    let (res, buf) = Op::new(Read::new(fd, info, CURRENT_POSITION)).await;
    res.map(|_| u32::from_ne_bytes(buf[..4].try_into().expect("siginfo has a signo")))
}
