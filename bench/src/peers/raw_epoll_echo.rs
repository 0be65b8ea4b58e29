//! The readiness floor: an echo server written straight on epoll, with no
//! runtime, no tasks and no wakers, for the loopback comparison in
//! `scripts/bench-echo.sh` (`raw-epoll`), as `raw_uring_echo.rs` is for
//! io_uring. What any readiness runtime (tokio, percore's epoll driver)
//! adds to a request's CPU is its cost over this loop's.
//!
//! One epoll instance; every socket registered once, edge-triggered, for
//! reading and writing (as tokio's mio does). On a connection's read edge
//! it receives into the connection's own `--buf`-byte buffer and sends
//! what came back at once, until a receive comes back short (the socket is
//! drained: wait for the next edge, no `EAGAIN` receive, as tokio) or the
//! send finds the socket full (the rest goes on the write edge). The
//! listener accepts until `EAGAIN`. One `epoll_wait` with no timeout per
//! loop. So a request costs a `recv`, a `send` and a share of one
//! `epoll_wait`: the syscalls tokio and percore's epoll driver make.
//!
//! `--cores N` runs N such loops, each on its own thread with its own epoll
//! and SO_REUSEPORT listener (`--pin` pins them); see `common.rs`.
//!
//! `cargo run --release -p percore-bench --bin peer-raw-epoll-echo -- --addr 127.0.0.1:7000 --buf 4096`

#[path = "common.rs"]
mod common;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// The listener's event key; a connection's is its key in the slab.
const LISTENER: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 1024;

struct Conn {
    fd: OwnedFd,
    buf: Box<[u8]>,
    /// `buf[sent..len]` waits for room in the socket (a short send).
    sent: usize,
    len: usize,
}

struct Server {
    epfd: OwnedFd,
    listener: RawFd,
    buf_size: usize,
    conns: slab::Slab<Conn>,
}

fn main() {
    let args = common::Args::parse("peer-raw-epoll-echo");
    let buf_size = args.buf;
    common::run_cores("peer-raw-epoll-echo", &args, move |_, listener| {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        // SAFETY: epoll_create1 takes no pointers; a valid fd is owned here.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epfd >= 0, "epoll_create1: {}", io::Error::last_os_error());
        let mut server = Server {
            // SAFETY: `epfd` was just created and is owned by nothing else.
            epfd: unsafe { OwnedFd::from_raw_fd(epfd) },
            listener: listener.into_raw_fd(),
            buf_size,
            conns: slab::Slab::new(),
        };
        if let Err(e) = server.run() {
            eprintln!("peer-raw-epoll-echo: {e}");
            std::process::exit(1);
        }
    });
}

/// Registers `fd` with `epfd` for `events`, edge-triggered, under `key`.
fn register(epfd: &OwnedFd, fd: RawFd, key: u64, events: i32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (events | libc::EPOLLET) as u32,
        u64: key,
    };
    // SAFETY: epoll_ctl reads one event from this frame; both fds are open.
    let r = unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    check(r as isize)
        .map(drop)
        .map_err(io::Error::from_raw_os_error)
}

/// `r`, or the errno it stands for.
fn check(r: isize) -> Result<usize, i32> {
    if r < 0 {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(r as usize)
    }
}

impl Server {
    fn run(&mut self) -> io::Result<()> {
        register(&self.epfd, self.listener, LISTENER, libc::EPOLLIN)?;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        loop {
            // SAFETY: `events` has room for EVENTS entries, which the kernel
            // fills; the count it returns says how many.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    EVENTS as i32,
                    -1,
                )
            };
            let n = match check(n as isize) {
                Ok(n) => n,
                Err(libc::EINTR) => continue,
                Err(e) => return Err(io::Error::from_raw_os_error(e)),
            };
            for ev in &events[..n] {
                match ev.u64 {
                    LISTENER => self.accept_all()?,
                    key => self.serve(key as usize, ev.events),
                }
            }
        }
    }

    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            // SAFETY: no address is asked for (null pointers).
            let fd = unsafe {
                libc::accept4(
                    self.listener,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            match check(fd as isize) {
                Ok(_) => {}
                Err(libc::EAGAIN) => return Ok(()),
                Err(libc::EINTR | libc::ECONNABORTED) => continue,
                Err(e) => {
                    eprintln!(
                        "peer-raw-epoll-echo: accept: {}",
                        io::Error::from_raw_os_error(e)
                    );
                    return Ok(());
                }
            }
            // SAFETY: `fd` is the socket accept4 just returned, owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
            let slot = self.conns.vacant_entry();
            register(
                &self.epfd,
                fd.as_raw_fd(),
                slot.key() as u64,
                libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP,
            )?;
            slot.insert(Conn {
                fd,
                buf: vec![0u8; self.buf_size].into_boxed_slice(),
                sent: 0,
                len: 0,
            });
        }
    }

    /// A connection's edge: finish a pending send, then (on a read edge)
    /// echo until a short receive; the connection closes at end of stream
    /// or on an error.
    fn serve(&mut self, idx: usize, events: u32) {
        let Some(conn) = self.conns.get_mut(idx) else {
            return;
        };
        let readable = events
            & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
            != 0;
        let done = if readable {
            conn.echo()
        } else {
            conn.flush().map(drop)
        };
        if done.is_err() {
            // Dropping the fd closes it, which takes it out of epoll.
            self.conns.remove(idx);
        }
    }
}

impl Conn {
    /// Receives and sends back until a receive comes back short or the
    /// socket is full. `Err` when the connection is done (end of stream or
    /// an error).
    fn echo(&mut self) -> Result<(), ()> {
        loop {
            if !self.flush()? {
                return Ok(()); // full: the rest goes on the write edge
            }
            // SAFETY: the buffer is this connection's, `buf.len()` bytes long.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            match check(r) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    (self.sent, self.len) = (0, n);
                    if n < self.buf.len() {
                        // Drained: send, then wait for the next read edge.
                        return self.flush().map(drop);
                    }
                }
                Err(libc::EAGAIN) => return Ok(()),
                Err(libc::EINTR) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// Sends what is pending, up to a full socket: `Ok(true)` when all of
    /// it went.
    fn flush(&mut self) -> Result<bool, ()> {
        while self.sent < self.len {
            let rest = &self.buf[self.sent..self.len];
            // SAFETY: `rest` is a live slice of this connection's buffer.
            let r = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            match check(r) {
                Ok(n) => self.sent += n,
                Err(libc::EAGAIN) => return Ok(false),
                Err(libc::EINTR) => {}
                Err(_) => return Err(()),
            }
        }
        Ok(true)
    }
}
