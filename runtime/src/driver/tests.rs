//! Driver tests that need its internals or an op written for the test.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use io_uring::{opcode, squeue, types};

use crate::op::{CqeResult, Op, OpCode};

/// Waits for a pipe to become readable; its `abandon` records whether the
/// driver was free to use (it is not while the ring is borrowed).
struct PollPipe {
    fd: OwnedFd,
    driver_free_in_abandon: Rc<Cell<Option<bool>>>,
}

// SAFETY: the SQE refers to `fd`, owned by the op, and to no memory.
unsafe impl OpCode for PollPipe {
    type Output = io::Result<u32>;
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), libc::POLLIN as u32).build()
    }
    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.into_result()
    }
    unsafe fn abandon(&mut self, _cqe: CqeResult) {
        // Any user code may run here, including code that needs the driver.
        let free = super::try_with_driver(|_| ()).is_some();
        self.driver_free_in_abandon.set(Some(free));
    }
}

fn poll_pipe() -> (Op<PollPipe>, io::PipeWriter, Rc<Cell<Option<bool>>>) {
    let (reader, writer) = io::pipe().unwrap();
    let seen = Rc::new(Cell::new(None));
    let op = Op::new(PollPipe {
        fd: reader.into(),
        driver_free_in_abandon: seen.clone(),
    });
    (op, writer, seen)
}

async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

async fn ticks(n: usize) {
    for _ in 0..n {
        crate::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Issue 12, bug 9: `OpCode::abandon` ran inside `dispatch_completions`,
/// with the driver borrowed, when the CQE of a dropped op arrived.
#[test]
fn abandon_of_an_op_dropped_in_flight_runs_outside_the_driver_borrow() {
    let rt = crate::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut op, mut writer, seen) = poll_pipe();
        assert!(poll_once(&mut op).await);
        crate::yield_now().await;
        drop(op);
        writer.write_all(b"x").unwrap();
        for _ in 0..1000 {
            if seen.get().is_some() {
                break;
            }
            ticks(1).await;
        }
        assert_eq!(
            seen.get(),
            Some(true),
            "abandon ran with the driver borrowed"
        );
    });
}

/// Issue 12, bug 9, the other path: the CQE arrived before the future was
/// dropped, and `drop_op` ran `abandon` with the driver borrowed.
#[test]
fn abandon_of_an_op_dropped_after_its_completion_runs_outside_the_driver_borrow() {
    let rt = crate::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut op, mut writer, seen) = poll_pipe();
        assert!(poll_once(&mut op).await);
        writer.write_all(b"x").unwrap();
        // Let the CQE arrive; the op's future is not polled again.
        ticks(20).await;
        drop(op);
        assert_eq!(
            seen.get(),
            Some(true),
            "abandon ran with the driver borrowed"
        );
    });
}

/// Writes one byte from a static buffer.
struct WriteByte(OwnedFd);

// SAFETY: the SQE refers to `self.0`, owned by the op, and to a static byte.
unsafe impl OpCode for WriteByte {
    type Output = io::Result<u32>;
    fn create_entry(&mut self) -> squeue::Entry {
        static BYTE: u8 = b'x';
        opcode::Write::new(types::Fd(self.0.as_raw_fd()), &BYTE, 1).build()
    }
    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.into_result()
    }
}

/// On epoll, an op that finishes inside its first poll leaves nothing
/// behind: no slot, and no wake-up for the loop to run (it used to queue
/// a no-op waker per such op).
#[test]
fn op_finished_inside_its_first_poll_leaves_no_slot_and_no_wake() {
    let rt = crate::Runtime::builder()
        .driver(super::DriverKind::Epoll)
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut reader, writer) = io::pipe().unwrap();
        let mut op = Op::new(WriteByte(writer.into()));
        let (slots, wakes) = super::with_driver(|d| (d.slots.len(), d.wakes.len()));
        let done = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut op).poll(cx))).await;
        let Poll::Ready(written) = done else {
            panic!("a pipe with room takes the byte inside the first poll");
        };
        assert_eq!(written.unwrap(), 1);
        super::with_driver(|d| {
            assert_eq!(d.slots.len(), slots, "a slot left behind");
            assert_eq!(d.wakes.len(), wakes, "a wake-up queued for a finished op");
        });
        let mut byte = [0u8];
        io::Read::read_exact(&mut reader, &mut byte).unwrap();
        assert_eq!(&byte, b"x");
    });
}

/// An op polled with [`crate::op::unwaited`] completes without ending the
/// park it completes in: the loop parks once, until what the task waits
/// for, instead of once for that completion (nothing to run) and again.
#[test]
fn a_completion_nobody_waits_for_ends_no_park() {
    crate::run(async {
        if crate::capabilities().is_some_and(|c| c.driver != crate::DriverKind::IoUring) {
            return; // epoll finishes a write inside its submission: no completion to wait for
        }
        // A thread answers on pipe B once the write nobody waits for has
        // reached pipe A: after that write's completion, in the kernel.
        let (mut a_reader, a_writer) = io::pipe().unwrap();
        let (mut b_wait, mut b_writer, _) = poll_pipe();
        let answer = std::thread::spawn(move || {
            use std::io::Read as _;
            let mut byte = [0u8; 1];
            a_reader.read_exact(&mut byte).unwrap();
            b_writer.write_all(&byte).unwrap();
        });
        let fd = crate::fd::SharedFd::new(a_writer.into());
        let mut write = std::pin::pin!(Op::new(crate::op::Write::new(
            fd,
            vec![7u8],
            crate::op::CURRENT_POSITION
        )));
        let mut idle = std::task::Context::from_waker(crate::op::unwaited());
        assert!(
            write.as_mut().poll(&mut idle).is_pending(),
            "queued, not yet submitted"
        );
        let before = crate::stats().driver;
        (&mut b_wait).await.unwrap();
        let after = crate::stats().driver;
        assert_eq!(after.parks - before.parks, 1, "one park, ended by pipe B");
        assert_eq!(write.await.0.unwrap(), 1);
        answer.join().unwrap();
    });
}

/// Runs `f` on a thread of its own and fails if it has not finished within
/// a minute: a park that never ends would otherwise hang the suite.
fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || tx.send(f()).unwrap());
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the runtime still parked after a minute");
    thread.join().unwrap();
    out
}

fn min_wait_runtime(min_wait: Duration) -> crate::Runtime {
    let rt = crate::Runtime::builder()
        .min_wait(min_wait)
        .build()
        .unwrap();
    let caps = rt.capabilities();
    let applies = caps.driver == crate::DriverKind::IoUring && caps.min_timeout;
    assert_eq!(caps.min_wait, applies.then_some(min_wait), "{caps}");
    rt
}

/// Parks while pipe polls complete, one per entry of `gaps`: a thread
/// writes to each pipe in turn, after sleeping its gap. (Not kernel timeout
/// ops: the completion of an `IORING_OP_TIMEOUT` ends any wait at once.)
async fn parks_for_pipes(gaps: &[Duration]) -> u64 {
    let (ops, writers): (Vec<_>, Vec<_>) = gaps
        .iter()
        .map(|&gap| {
            let (op, writer, _) = poll_pipe();
            (Some(Box::pin(op)), (gap, writer))
        })
        .unzip();
    let mut ops = ops;
    let before = crate::stats().driver;
    let writer = std::thread::spawn(move || {
        for (gap, mut w) in writers {
            std::thread::sleep(gap);
            w.write_all(b"x").unwrap();
        }
    });
    std::future::poll_fn(|cx| {
        for slot in ops.iter_mut() {
            if let Some(op) = slot
                && let Poll::Ready(res) = op.as_mut().poll(cx)
            {
                res.unwrap();
                *slot = None;
            }
        }
        if ops.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    writer.join().unwrap();
    crate::stats().driver.parks - before.parks
}

/// With a min-wait the park asks the kernel for a batch of completions; a
/// lone one must still end it (when the min-wait passes), not wait for
/// company or the idle bound.
#[test]
fn a_lone_completion_ends_a_min_wait_park() {
    let (parks, applied) = finishes(|| {
        let rt = min_wait_runtime(Duration::from_millis(100));
        let applied = rt.capabilities().min_wait.is_some();
        (
            rt.block_on(parks_for_pipes(&[Duration::from_millis(1)])),
            applied,
        )
    });
    // The epoll driver (min-wait ignored) may park more than once for it.
    assert!(parks >= 1);
    if applied {
        assert_eq!(parks, 1, "the park that the completion ended");
    }
}

/// Two completions that arrive within the min-wait are reaped by one park:
/// without it the first would end the park and the loop park again.
#[test]
fn completions_within_the_min_wait_share_one_park() {
    let (parks, applied) = finishes(|| {
        let rt = min_wait_runtime(Duration::from_secs(1));
        let applied = rt.capabilities().min_wait.is_some();
        let gaps = [Duration::from_millis(1), Duration::from_millis(20)];
        (rt.block_on(parks_for_pipes(&gaps)), applied)
    });
    if applied {
        assert_eq!(parks, 1, "both completions reaped by one park");
    } else {
        assert!(parks >= 1);
    }
}

/// A timer due before the min-wait ends the park: the min-wait, which the
/// kernel times first, is cut to it.
#[test]
fn a_timer_due_within_the_min_wait_is_not_delayed() {
    // Longer than `finishes` waits: a timer fired only at the min-wait fails.
    finishes(|| {
        let rt = min_wait_runtime(Duration::from_secs(120));
        rt.block_on(async {
            let before = crate::stats().driver;
            crate::time::sleep(Duration::from_millis(5)).await;
            assert!(crate::stats().driver.parks > before.parks);
        })
    });
}

/// Where the kernel has no `IORING_FEAT_MIN_TIMEOUT` (here pretended with
/// the minimal feature set) the option is ignored and said to be.
#[test]
fn min_wait_without_the_kernel_feature_is_ignored() {
    let parks = finishes(|| {
        let rt = crate::Runtime::builder()
            .minimal_features(true)
            .min_wait(Duration::from_millis(100))
            .build()
            .unwrap();
        let caps = rt.capabilities();
        assert!(!caps.min_timeout, "{caps}");
        assert_eq!(caps.min_wait, None);
        rt.block_on(parks_for_pipes(&[Duration::from_millis(1)]))
    });
    assert!(parks >= 1);
}
