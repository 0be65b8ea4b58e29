//! The ceiling: an echo server written straight on the `io-uring` crate, with
//! no runtime, no tasks and no wakers, for the loopback comparison in
//! `scripts/bench-echo.sh`.
//!
//! One ring set up with DEFER_TASKRUN + SINGLE_ISSUER. A multishot accept
//! feeds new sockets; each connection then runs a chain of exactly one op at a
//! time: recv into its own `--buf`-byte buffer, and when that completes with
//! `n` bytes, send those `n` bytes (again for the rest after a short send),
//! then recv again. The loop is one `submit_and_wait(1)` per iteration, which
//! submits every SQE queued while the previous batch of CQEs was handled and
//! reaps the next batch. recv and send can't be linked in one SQE chain
//! because the send length is only known when the recv completes.
//!
//! `--cores N` runs N such loops, each on its own thread with its own ring
//! and SO_REUSEPORT listener (`--pin` pins them); see `common.rs`.
//!
//! `cargo run --release -p percore-bench --bin peer-raw-uring-echo -- --addr 127.0.0.1:7000 --buf 4096`

#[path = "common.rs"]
mod common;

use std::io;
use std::os::fd::{IntoRawFd, RawFd};

use io_uring::squeue::Entry;
use io_uring::{IoUring, Submitter, cqueue, opcode, squeue, types};

/// user_data of the multishot accept; connection ops use `index << 1 | kind`.
const ACCEPT: u64 = u64::MAX;
const KIND_RECV: u64 = 0;
const KIND_SEND: u64 = 1;

/// SQ size; the CQ gets twice as many entries. With one op per connection in
/// flight, a burst of completions larger than the CQ goes to the kernel's
/// overflow list (IORING_FEAT_NODROP) and is reaped on the next enter.
const RING_ENTRIES: u32 = 4096;

struct Conn {
    fd: RawFd,
    /// Receive buffer; the kernel writes into it while a recv is in flight
    /// and reads `buf[sent..len]` while a send is in flight, so it lives
    /// (boxed, never reallocated) until the connection's last op completed.
    buf: Box<[u8]>,
    /// Bytes received by the last recv, to echo.
    len: usize,
    /// Bytes of `buf[..len]` already sent.
    sent: usize,
}

struct Server {
    listener: RawFd,
    buf_size: usize,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
}

fn main() {
    let args = common::Args::parse("peer-raw-uring-echo");
    let buf_size = args.buf;
    common::run_cores("peer-raw-uring-echo", &args, move |_, listener| {
        let mut ring: IoUring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(RING_ENTRIES)
            .expect("io_uring with DEFER_TASKRUN + SINGLE_ISSUER (Linux >= 6.1)");
        let mut server = Server {
            listener: listener.into_raw_fd(),
            buf_size,
            conns: Vec::new(),
            free: Vec::new(),
        };
        if let Err(e) = server.run(&mut ring) {
            eprintln!("peer-raw-uring-echo: {e}");
            std::process::exit(1);
        }
    });
}

impl Server {
    fn run(&mut self, ring: &mut IoUring) -> io::Result<()> {
        let (submitter, mut sq, mut cq) = ring.split();
        let accept = opcode::AcceptMulti::new(types::Fd(self.listener))
            .build()
            .user_data(ACCEPT);
        push(&submitter, &mut sq, accept)?;
        loop {
            sq.sync();
            match submitter.submit_and_wait(1) {
                Ok(_) => {}
                // A signal, or completions the kernel must flush first: reap
                // what is there and enter again.
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            cq.sync();
            for cqe in &mut cq {
                self.complete(&submitter, &mut sq, cqe)?;
            }
        }
    }

    fn complete(
        &mut self,
        submitter: &Submitter<'_>,
        sq: &mut squeue::SubmissionQueue<'_>,
        cqe: cqueue::Entry,
    ) -> io::Result<()> {
        let res = cqe.result();
        if cqe.user_data() == ACCEPT {
            if res >= 0 {
                self.open(submitter, sq, res)?;
            } else {
                eprintln!(
                    "peer-raw-uring-echo: accept: {}",
                    io::Error::from_raw_os_error(-res)
                );
            }
            if !cqueue::more(cqe.flags()) {
                let accept = opcode::AcceptMulti::new(types::Fd(self.listener))
                    .build()
                    .user_data(ACCEPT);
                push(submitter, sq, accept)?;
            }
            return Ok(());
        }
        let idx = (cqe.user_data() >> 1) as usize;
        let kind = cqe.user_data() & 1;
        if res <= 0 {
            // EOF, reset, or any other error ends the connection; its one op
            // has completed, so nothing in the kernel still uses its buffer.
            self.close(idx);
            return Ok(());
        }
        let conn = self.conns[idx]
            .as_mut()
            .unwrap_or_else(|| panic!("completion for free connection slot {idx}"));
        let entry = if kind == KIND_RECV {
            conn.len = res as usize;
            conn.sent = 0;
            send_entry(idx, conn)
        } else {
            conn.sent += res as usize;
            if conn.sent < conn.len {
                send_entry(idx, conn)
            } else {
                recv_entry(idx, conn)
            }
        };
        push(submitter, sq, entry)
    }

    fn open(
        &mut self,
        submitter: &Submitter<'_>,
        sq: &mut squeue::SubmissionQueue<'_>,
        fd: RawFd,
    ) -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: `fd` is the socket the accept just returned; the option
        // value points at a live c_int whose size is passed alongside.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let conn = Conn {
            fd,
            buf: vec![0u8; self.buf_size].into_boxed_slice(),
            len: 0,
            sent: 0,
        };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.conns[idx] = Some(conn);
                idx
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        let conn = self.conns[idx].as_mut().expect("slot just filled");
        let entry = recv_entry(idx, conn);
        push(submitter, sq, entry)
    }

    fn close(&mut self, idx: usize) {
        let conn = self.conns[idx]
            .take()
            .unwrap_or_else(|| panic!("close of free connection slot {idx}"));
        // SAFETY: `conn.fd` is an open socket this server owns and closes
        // exactly once, here; no op on it is in flight any more.
        unsafe { libc::close(conn.fd) };
        self.free.push(idx);
    }
}

fn recv_entry(idx: usize, conn: &mut Conn) -> Entry {
    opcode::Recv::new(
        types::Fd(conn.fd),
        conn.buf.as_mut_ptr(),
        conn.buf.len() as u32,
    )
    .build()
    .user_data((idx as u64) << 1 | KIND_RECV)
}

fn send_entry(idx: usize, conn: &mut Conn) -> Entry {
    let pending = &conn.buf[conn.sent..conn.len];
    opcode::Send::new(types::Fd(conn.fd), pending.as_ptr(), pending.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data((idx as u64) << 1 | KIND_SEND)
}

/// Queues `entry`, flushing the SQ to the kernel first if it is full.
fn push(
    submitter: &Submitter<'_>,
    sq: &mut squeue::SubmissionQueue<'_>,
    entry: Entry,
) -> io::Result<()> {
    loop {
        // SAFETY: every pointer in `entry` points into a connection's boxed
        // buffer, which stays allocated until that connection's single op in
        // flight has completed (see `Conn::buf` and `Server::close`); the
        // accept entry carries no pointers.
        if unsafe { sq.push(&entry) }.is_ok() {
            return Ok(());
        }
        sq.sync();
        submitter.submit()?;
        sq.sync();
    }
}
