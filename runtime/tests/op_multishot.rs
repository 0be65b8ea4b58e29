//! `MultishotOp`: one submission, many completions, cancel and drop.
//!
//! Uses a multishot poll on an eventfd, built here through the public
//! `MultishotOpCode` trait, so most tests need no socket.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};
use percore::op::{CqeResult, MultishotOp, MultishotOpCode};
use support::{poll_once, settle};

/// `IORING_OP_POLL_ADD` with `IORING_POLL_ADD_MULTI`, or a plain one-shot
/// poll (an op that ends on its own after each completion) with `single`.
#[derive(Default)]
struct PollMulti {
    fd: RawFd,
    abandoned: std::rc::Rc<std::cell::Cell<usize>>,
    single: bool,
}

// SAFETY: a poll references no user memory; the test keeps `fd` open for
// as long as the op may run.
unsafe impl MultishotOpCode for PollMulti {
    type Item = CqeResult;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), libc::POLLIN as u32)
            .multi(!self.single)
            .build()
    }

    unsafe fn complete_next(&mut self, cqe: CqeResult) -> CqeResult {
        cqe
    }

    unsafe fn abandon(&mut self, _cqe: CqeResult) {
        self.abandoned.set(self.abandoned.get() + 1);
    }
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd(2) returns a new descriptor or -1 (checked).
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0);
    // SAFETY: `fd` is fresh and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn signal(fd: &OwnedFd) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a live u64.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    assert_eq!(n, 8);
}

fn drain(fd: &OwnedFd) {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    assert_eq!(n, 8);
}

fn require_multishot_poll() -> bool {
    let caps = percore::capabilities().unwrap();
    // IORING_POLL_ADD_MULTI: 5.13.
    let ok = caps.supports(opcode::PollAdd::CODE);
    if !ok {
        eprintln!("SKIPPED: kernel has no poll-add ({caps})");
    }
    ok
}

#[percore::test]
async fn multishot_poll_yields_each_event_then_ends_on_cancel() {
    assert!(
        require_multishot_poll(),
        "poll-add is in every io_uring kernel"
    );
    let efd = eventfd();
    let abandoned = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        abandoned: abandoned.clone(),
        ..Default::default()
    });
    assert!(!op.is_armed());
    assert!(poll_once(&mut Box::pin(op.next())).await.is_pending());
    assert!(op.is_armed());
    for _ in 0..3 {
        signal(&efd);
        let cqe = percore::time::timeout(Duration::from_secs(5), op.next())
            .await
            .expect("event delivered")
            .expect("op still armed");
        let events = cqe.result().as_ref().unwrap();
        assert!(events & libc::POLLIN as u32 != 0);
        assert!(cqueue::more(cqe.flags()), "multishot keeps going");
        drain(&efd);
    }
    assert_eq!(
        percore::stats().in_flight,
        1,
        "one slot for all completions"
    );
    op.cancel();
    let last = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .expect("final completion")
        .expect("final CQE is delivered");
    assert_eq!(
        last.result().as_ref().unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert!(!cqueue::more(last.flags()));
    assert!(!op.is_armed());
    assert_eq!(percore::stats().in_flight, 0);
    assert_eq!(abandoned.get(), 0);
}

#[percore::test]
async fn multishot_rearms_when_polled_after_its_end() {
    let efd = eventfd();
    // A one-shot poll: each arm ends with its own completion (no F_MORE),
    // as a multishot op that the kernel ends (ENOBUFS, CQ overflow) does.
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        single: true,
        ..Default::default()
    });
    signal(&efd);
    let first = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .unwrap()
        .unwrap();
    assert!(!cqueue::more(first.flags()));
    assert!(!op.is_armed());
    // Polled again after its final completion: submitted anew.
    let submitted = percore::stats().driver.submitted;
    let cqe = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .unwrap()
        .unwrap();
    assert!(cqe.result().as_ref().unwrap() & libc::POLLIN as u32 != 0);
    assert!(percore::stats().driver.submitted > submitted);
    drop(op);
    settle().await;
}

#[percore::test]
async fn multishot_dropped_while_armed_is_cancelled_and_abandons_late_cqes() {
    let efd = eventfd();
    let abandoned = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        abandoned: abandoned.clone(),
        ..Default::default()
    });
    assert!(poll_once(&mut Box::pin(op.next())).await.is_pending());
    percore::yield_now().await;
    // A completion arrives but nobody takes it before the drop.
    signal(&efd);
    percore::yield_now().await;
    percore::yield_now().await;
    assert_eq!(percore::stats().in_flight, 1);
    drop(op);
    settle().await;
    // The queued event and the final ECANCELED both went to `abandon`.
    assert!(abandoned.get() >= 1, "abandon saw {} CQEs", abandoned.get());
    assert_eq!(percore::stats().in_flight, 0);
}

#[percore::test]
async fn multishot_cancel_before_submit_ends_at_once() {
    let efd = eventfd();
    let before = percore::stats().driver.submitted;
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        ..Default::default()
    });
    op.cancel();
    assert!(op.next().await.is_none());
    percore::yield_now().await;
    assert_eq!(percore::stats().driver.submitted, before);
}

#[percore::test]
async fn multishot_cancel_between_arms_is_sticky() {
    let efd = eventfd();
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        single: true,
        ..Default::default()
    });
    signal(&efd);
    let cqe = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .unwrap()
        .unwrap();
    assert!(!cqueue::more(cqe.flags()));
    assert!(!op.is_armed(), "between arms");
    // Cancelled while no arm is in flight: the next poll must not arm it
    // again (the eventfd is still readable, so a new arm would complete).
    op.cancel();
    let submitted = percore::stats().driver.submitted;
    let next = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .expect("a cancelled op answers at once");
    assert!(next.is_none(), "cancelled op was armed again");
    assert!(!op.is_armed());
    percore::yield_now().await;
    assert_eq!(percore::stats().driver.submitted, submitted);
    assert_eq!(percore::stats().in_flight, 0);
}

#[percore::test]
async fn multishot_cancel_while_armed_is_sticky_after_the_last_completion() {
    let efd = eventfd();
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        ..Default::default()
    });
    assert!(poll_once(&mut Box::pin(op.next())).await.is_pending());
    percore::yield_now().await;
    op.cancel();
    let last = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .unwrap()
        .expect("final CQE is delivered");
    assert!(!cqueue::more(last.flags()));
    signal(&efd);
    let submitted = percore::stats().driver.submitted;
    let next = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .expect("a cancelled op answers at once");
    assert!(next.is_none(), "cancelled op was armed again");
    percore::yield_now().await;
    assert_eq!(percore::stats().driver.submitted, submitted);
}

/// Item 7 of issue 12: a multishot accept run as a single-result `Op` kept
/// only the last of its completions and lost the other sockets. It can only
/// be run as a `MultishotOp` now (see the `compile_fail` examples of
/// `MultishotOpCode`); this checks that every connection comes out of it.
#[percore::test]
async fn multishot_accept_yields_every_connection() {
    use percore::fd::SharedFd;
    use percore::op::AcceptMulti;

    if !percore::capabilities().unwrap().multishot_accept {
        eprintln!("SKIPPED: no multishot accept");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clients: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let mut accepts = MultishotOp::new(AcceptMulti::new(SharedFd::new(listener.into())));
    let mut peers = Vec::new();
    for _ in 0..clients.len() {
        let socket = percore::time::timeout(Duration::from_secs(5), accepts.next())
            .await
            .expect("connection accepted")
            .expect("op still running")
            .unwrap();
        let peer = socket2::SockRef::from(&socket).peer_addr().unwrap();
        peers.push(peer.as_socket().unwrap());
    }
    let mut want: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    peers.sort();
    want.sort();
    assert_eq!(peers, want, "every connection, once");
    drop(accepts);
    settle().await;
}
