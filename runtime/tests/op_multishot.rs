//! `MultishotOp`: one submission, many completions, cancel and drop.
//!
//! Uses a multishot poll on an eventfd, built here through the public
//! `OpCode` trait, so the test needs no socket.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};
use percore::op::{CqeResult, MultishotOp, OpCode};
use support::{poll_once, settle};

/// `IORING_OP_POLL_ADD` with `IORING_POLL_ADD_MULTI`.
struct PollMulti {
    fd: RawFd,
    abandoned: std::rc::Rc<std::cell::Cell<usize>>,
}

// SAFETY: a poll references no user memory; the test keeps `fd` open for
// as long as the op may run.
unsafe impl OpCode for PollMulti {
    type Output = ();

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), libc::POLLIN as u32)
            .multi(true)
            .build()
    }

    fn complete(self, _cqe: CqeResult) {}

    fn abandon(&mut self, _cqe: CqeResult) {
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
        let events = cqe.result.unwrap();
        assert!(events & libc::POLLIN as u32 != 0);
        assert!(cqueue::more(cqe.flags), "multishot keeps going");
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
        last.result.unwrap_err().raw_os_error(),
        Some(libc::ECANCELED)
    );
    assert!(!cqueue::more(last.flags));
    assert!(!op.is_armed());
    assert_eq!(percore::stats().in_flight, 0);
    assert_eq!(abandoned.get(), 0);
}

#[percore::test]
async fn multishot_rearms_when_polled_after_its_end() {
    let efd = eventfd();
    let mut op = MultishotOp::new(PollMulti {
        fd: efd.as_raw_fd(),
        abandoned: Default::default(),
    });
    assert!(poll_once(&mut Box::pin(op.next())).await.is_pending());
    percore::yield_now().await;
    op.cancel();
    let last = op.next().await.unwrap();
    assert!(!cqueue::more(last.flags));
    assert!(!op.is_armed());
    // Polled again after its final completion: submitted anew.
    let submitted = percore::stats().driver.submitted;
    signal(&efd);
    let cqe = percore::time::timeout(Duration::from_secs(5), op.next())
        .await
        .unwrap()
        .unwrap();
    assert!(cqe.result.unwrap() & libc::POLLIN as u32 != 0);
    assert!(cqueue::more(cqe.flags));
    assert!(op.is_armed());
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
        abandoned: Default::default(),
    });
    op.cancel();
    assert!(op.next().await.is_none());
    percore::yield_now().await;
    assert_eq!(percore::stats().driver.submitted, before);
}
