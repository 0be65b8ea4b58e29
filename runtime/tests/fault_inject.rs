//! Faults at the driver boundary: the runtime recovers, the task that hit a
//! fault sees a clear `io::Error`, and the other tasks carry on.
//!
//! Runs only with the test hooks compiled in:
//! `cargo test -p percore --features fault-injection --test fault_inject`.
//! Faults the kernel makes on demand are real here, not injected: a full SQ
//! (4-entry ring), CQ overflow (8-entry CQ, 64 completions at once) and
//! `ENOBUFS` (a provided-buffer ring of one buffer). `EMFILE` on accept is
//! `percore-net`'s `net_limits.rs` (it lowers RLIMIT_NOFILE for its process).
//! The ring's faults are io_uring's own, so these runtimes ask for it by name.

mod support;

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use percore::buf::BufRing;
use percore::fault;
use percore::fd::SharedFd;
use percore::op::{CURRENT_POSITION, MultishotOp, Nop, Op, Read, RecvMulti};
use percore::{Builder, DriverKind, Runtime};
use support::watchdog;

/// The io_uring runtimes of [`rings`], and one on the epoll driver: what
/// does not depend on an SQ fails the same way there.
fn drivers(entries: u32) -> Vec<(&'static str, Runtime)> {
    let mut all = Vec::from(rings(entries));
    all.push((
        "epoll",
        Builder::new().driver(DriverKind::Epoll).build().unwrap(),
    ));
    all
}

fn rings(entries: u32) -> [(&'static str, Runtime); 2] {
    [
        (
            "default",
            Builder::new()
                .driver(DriverKind::IoUring)
                .entries(entries)
                .minimal_features(false)
                .build()
                .unwrap(),
        ),
        (
            "minimal",
            Builder::new()
                .driver(DriverKind::IoUring)
                .entries(entries)
                .minimal_features(true)
                .build()
                .unwrap(),
        ),
    ]
}

/// A pipe read that completes when the test writes to `writer`.
fn pending_read() -> (Op<Read<Vec<u8>>>, std::io::PipeWriter) {
    let (reader, writer) = std::io::pipe().unwrap();
    let op = Op::new(Read::new(
        SharedFd::new(reader.into()),
        Vec::with_capacity(16),
        CURRENT_POSITION,
    ));
    (op, writer)
}

#[test]
fn transient_enter_errors_are_retried_and_tasks_continue() {
    let _dog = watchdog("transient_enter", Duration::from_secs(60));
    for errno in [libc::EINTR, libc::EAGAIN, libc::EBUSY] {
        for (name, rt) in drivers(64) {
            rt.block_on(async {
                // 1. A task waits in the kernel on a pipe read.
                let (read, mut writer) = pending_read();
                let reader = percore::spawn(read);
                // 2. Another task keeps running ops and timers.
                let worker = percore::spawn(async {
                    for _ in 0..50 {
                        Op::new(Nop).await.unwrap();
                        percore::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                percore::yield_now().await;
                // 3. The next 20 io_uring_enter calls fail; nothing is submitted by them.
                fault::fail_enter(20, errno);
                worker.await.unwrap();
                assert_eq!(
                    fault::pending_enter_faults(),
                    0,
                    "{name}: faults not all hit"
                );
                // 4. The pending read still completes with its data.
                writer.write_all(b"after").unwrap();
                let (res, buf) = reader.await.unwrap();
                assert_eq!(res.unwrap(), 5, "{name} errno {errno}");
                assert_eq!(buf, b"after");
            });
        }
    }
}

#[test]
fn full_sq_flush_that_gets_ebusy_retries_until_the_kernel_takes_it() {
    let _dog = watchdog("sq_full_ebusy", Duration::from_secs(60));
    for (name, rt) in rings(4) {
        rt.block_on(async {
            let before = percore::stats().driver.sq_full;
            // 200 nops through a 4-entry SQ: the SQ fills again and again,
            // and the first 10 flushes are refused.
            fault::fail_enter(10, libc::EBUSY);
            let results = percore::join_all((0..200).map(|_| Op::new(Nop))).await;
            assert!(results.iter().all(|r| r.is_ok()), "{name}");
            assert_eq!(fault::pending_enter_faults(), 0, "{name}");
            assert!(percore::stats().driver.sq_full > before + 10, "{name}");
        });
    }
}

#[test]
fn fatal_enter_error_panics_with_a_clear_message_and_the_thread_recovers() {
    let _dog = watchdog("fatal_enter", Duration::from_secs(60));
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(false)
        .build()
        .unwrap();
    // 1. A non-transient errno from io_uring_enter cannot be retried: the
    //    core's block_on panics, naming the syscall and the error.
    let panic = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            fault::fail_enter(1, libc::EFAULT);
            Op::new(Nop).await.unwrap();
        })
    }))
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("io_uring_enter failed"), "{msg}");
    assert!(msg.contains("Bad address"), "{msg}");
    // 2. The runtime still shuts down cleanly, and the same one runs again.
    assert_eq!(
        rt.block_on(async { Op::new(Nop).await.map(|_| 7) })
            .unwrap(),
        7
    );
    drop(rt);
    percore::run(async { Op::new(Nop).await.unwrap() });
}

/// The epoll driver's enter fails the same way: the core panics naming
/// its syscall and the error, and the runtime shuts down and runs again.
/// A timer makes it wait (a nop would finish inside its first poll).
#[test]
fn fatal_epoll_wait_error_panics_with_a_clear_message_and_the_thread_recovers() {
    let _dog = watchdog("fatal_epoll", Duration::from_secs(60));
    let rt = Builder::new().driver(DriverKind::Epoll).build().unwrap();
    let panic = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let (read, _writer) = pending_read();
            let _waiting = percore::spawn(read);
            fault::fail_enter(1, libc::EFAULT);
            percore::time::sleep(Duration::from_millis(1)).await;
        })
    }))
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("epoll_wait failed"), "{msg}");
    assert!(msg.contains("Bad address"), "{msg}");
    assert_eq!(
        rt.block_on(async {
            percore::time::sleep(Duration::from_millis(1)).await;
            7
        }),
        7
    );
    drop(rt);
    // No fd of the abandoned read is left registered or open in a way
    // that breaks the next runtime.
    Builder::new()
        .driver(DriverKind::Epoll)
        .build()
        .unwrap()
        .block_on(async { Op::new(Nop).await.unwrap() });
}

#[test]
fn cq_overflow_loses_no_completion() {
    let _dog = watchdog("cq_overflow", Duration::from_secs(60));
    // 2 SQ entries, 8 CQ entries: 64 reads completing at once overflow the
    // CQ; with IORING_FEAT_NODROP the kernel keeps the rest for us.
    for (name, rt) in rings(2) {
        rt.block_on(async {
            assert_eq!(percore::capabilities().unwrap().cq_entries, 8);
            assert!(percore::capabilities().unwrap().nodrop);
            let (ops, mut writers): (Vec<_>, Vec<_>) = (0..64).map(|_| pending_read()).unzip();
            let readers: Vec<_> = ops.into_iter().map(percore::spawn).collect();
            // Let every read reach the kernel and wait there.
            support::wait_until(Duration::from_secs(5), || percore::stats().in_flight >= 64).await;
            // Complete all 64 without giving the loop a turn in between.
            for (i, w) in writers.iter_mut().enumerate() {
                w.write_all(&[i as u8; 3]).unwrap();
            }
            for (i, r) in readers.into_iter().enumerate() {
                let (res, buf) = r.await.unwrap();
                assert_eq!(res.unwrap(), 3, "{name} read {i}");
                assert_eq!(buf, [i as u8; 3], "{name} read {i}");
            }
            assert!(
                percore::stats().driver.cq_overflow > 0,
                "{name}: the CQ never overflowed: {:?}",
                percore::stats()
            );
        });
    }
}

#[test]
fn ring_setup_enomem_once_gets_a_smaller_ring() {
    fault::fail_setup(1, libc::ENOMEM);
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .entries(256)
        .build()
        .unwrap();
    assert_eq!(rt.capabilities().sq_entries, 128);
    rt.block_on(async { Op::new(Nop).await.unwrap() });
}

#[test]
fn ring_setup_enomem_always_names_memlock() {
    fault::fail_setup(u32::MAX, libc::ENOMEM);
    let err = Builder::new()
        .driver(DriverKind::IoUring)
        .build()
        .err()
        .expect("setup must fail");
    fault::clear();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    let msg = err.to_string();
    assert!(
        msg.contains("RLIMIT_MEMLOCK") && msg.contains("ulimit -l"),
        "{msg}"
    );
}

#[test]
fn ring_setup_einval_falls_back_to_the_next_flag_set() {
    // The first attempt (DEFER_TASKRUN) is refused as if the kernel did not
    // know the flag: the ring comes up with the next set, COOP_TASKRUN.
    fault::fail_setup(1, libc::EINVAL);
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(false)
        .build()
        .unwrap();
    let caps = rt.capabilities();
    assert!(!caps.defer_taskrun && caps.coop_taskrun, "{caps}");
    rt.block_on(async { Op::new(Nop).await.unwrap() });
}

#[test]
fn unavailable_io_uring_is_one_clear_error() {
    for errno in [libc::EPERM, libc::ENOSYS] {
        fault::fail_setup(u32::MAX, errno);
        let err = Runtime::builder()
            .driver(DriverKind::IoUring)
            .build()
            .err()
            .expect("setup must fail");
        fault::clear();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        let msg = err.to_string();
        assert!(msg.starts_with("io_uring unavailable"), "{msg}");
        assert!(
            msg.contains("seccomp") && msg.contains("io_uring_setup"),
            "{msg}"
        );
        // Once io_uring is back, so is the runtime.
        let rt = Runtime::builder()
            .driver(DriverKind::IoUring)
            .build()
            .unwrap();
        rt.block_on(async { Op::new(Nop).await.unwrap() });
    }
}

#[test]
fn auto_falls_back_to_epoll_and_says_why() {
    for errno in [libc::EPERM, libc::ENOSYS, libc::ENOMEM] {
        fault::fail_setup(u32::MAX, errno);
        let rt = Runtime::builder().driver(DriverKind::Auto).build();
        fault::clear();
        let rt = rt.unwrap_or_else(|e| panic!("errno {errno}: no fallback: {e}"));
        let caps = rt.capabilities();
        assert_eq!(caps.driver, DriverKind::Epoll, "errno {errno}");
        let why = caps.fallback_reason.clone().expect("a reason");
        assert!(why.starts_with("io_uring unavailable"), "{why}");
        assert!(caps.to_string().contains("driver epoll"), "{caps}");
        // The same program runs: an op, a timer, a task.
        let n = rt.block_on(async {
            Op::new(Nop).await.unwrap();
            percore::time::sleep(Duration::from_millis(2)).await;
            percore::spawn(async { 7 }).await.unwrap()
        });
        assert_eq!(n, 7);
    }
}

#[test]
fn empty_buffer_ring_is_enobufs_for_that_receive_only() {
    let _dog = watchdog("enobufs", Duration::from_secs(60));
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(false)
        .build()
        .unwrap();
    rt.block_on(async {
        if !percore::capabilities().unwrap().buf_ring {
            eprintln!("skipped: no provided-buffer rings on this kernel");
            return;
        }
        // 1. One buffer, held by the test after the first receive (whole
        // buffers: incrementally, the second message would go into the rest
        // of it; `buf_ring_inc.rs` has that case).
        let ring = BufRing::builder(1, 64).incremental(false).build().unwrap();
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
        let other = percore::spawn(async {
            let (read, mut writer) = pending_read();
            let read = percore::spawn(read);
            for _ in 0..20 {
                Op::new(Nop).await.unwrap();
            }
            writer.write_all(b"ok").unwrap();
            read.await.unwrap().1
        });
        theirs.write_all(b"first").unwrap();
        let held = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(&held[..], b"first");
        // 2. More data, no buffer: this receive alone sees ENOBUFS.
        theirs.write_all(b"second").unwrap();
        let err = match recv.next_buf().await {
            Err(e) => e,
            Ok(buf) => panic!("expected ENOBUFS, got {:?}", buf.map(|b| b.len())),
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS), "{err}");
        // 3. Meanwhile the other task ran to the end.
        assert_eq!(other.await.unwrap(), b"ok");
        // 4. Give the buffer back: the receive re-arms and gets the data.
        drop(held);
        let buf = recv.next_buf().await.unwrap().unwrap();
        assert_eq!(&buf[..], b"second");
    });
}

/// The memory a [`SentinelBuf`] hands to the kernel: a static, so that a
/// kernel write after the buffer was dropped lands where the test can see
/// it, instead of in a freed heap block (where it would corrupt the heap).
struct SentinelMem(std::cell::UnsafeCell<[u8; 16]>);

// SAFETY: only the test below touches it, through volatile reads and
// writes on the one thread of its runtime (and the kernel, for the read).
unsafe impl Sync for SentinelMem {}

static SENTINEL: SentinelMem = SentinelMem(std::cell::UnsafeCell::new([0; 16]));

fn sentinel_bytes() -> [u8; 16] {
    // SAFETY: a volatile read of a static that lives for the whole process.
    unsafe { std::ptr::read_volatile(SENTINEL.0.get()) }
}

fn sentinel_reset() {
    // SAFETY: as above; no op points at it between two test rounds.
    unsafe { std::ptr::write_volatile(SENTINEL.0.get(), [0; 16]) }
}

/// A read buffer that records its drop. Its bytes live in [`SENTINEL`].
struct SentinelBuf(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for SentinelBuf {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

// SAFETY: the pointer is a static's, valid and unmoving for the whole
// process; nothing is initialized (0 <= 16).
unsafe impl percore::buf::IoBuf for SentinelBuf {
    fn stable_ptr(&self) -> *const u8 {
        SENTINEL.0.get().cast()
    }
    fn bytes_init(&self) -> usize {
        0
    }
    fn bytes_total(&self) -> usize {
        16
    }
}

// SAFETY: as for `IoBuf`; the initialized length is not tracked (the test
// reads the static directly).
unsafe impl percore::buf::IoBufMut for SentinelBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        SENTINEL.0.get().cast()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

/// Issue 12, bug 1: a submission that fails between the op's SQE and its
/// linked timeout left the op's SQE in the SQ while its future was still
/// idle, so dropping the future freed the buffer and the runtime's next
/// `io_uring_enter` let the kernel read a pipe into freed memory.
#[test]
fn failed_submit_between_linked_timeout_entries_leaves_no_stale_sqe() {
    let _dog = watchdog("linked_timeout_submit_fails", Duration::from_secs(60));
    for (name, rt) in rings(4) {
        sentinel_reset();
        rt.block_on(async {
            let in_flight = percore::stats().in_flight;
            // 1. Three nops fill three of the four SQ entries.
            let mut nops: Vec<_> = (0..3).map(|_| Op::new(Nop)).collect();
            for nop in &mut nops {
                assert!(support::poll_once(nop).await.is_pending());
            }
            // 2. A timed read of a pipe needs two entries: the flush that
            //    makes room gets EBUSY, the next one EFAULT.
            let (reader, mut writer) = std::io::pipe().unwrap();
            let fd = SharedFd::new(reader.into());
            let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut read = Op::new(Read::new(
                fd.clone(),
                SentinelBuf(dropped.clone()),
                CURRENT_POSITION,
            ))
            .timeout(Duration::from_secs(30));
            fault::fail_enter_sequence(&[libc::EBUSY, libc::EFAULT]);
            let polled = catch_unwind(AssertUnwindSafe(|| {
                support::poll_with(&mut read, std::task::Waker::noop()).is_pending()
            }));
            let Err(panic) = polled else {
                panic!("{name}: a fatal errno while flushing the SQ must panic");
            };
            let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("io_uring_enter"), "{name}: {msg}");
            assert_eq!(fault::pending_enter_faults(), 0, "{name}");
            // 3. The submission failed as a whole: no slot was taken.
            assert_eq!(percore::stats().in_flight, in_flight + 3, "{name}");
            // 4. The future is dropped, and with it the buffer.
            drop(read);
            assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
            // 5. The loop goes on: the nops complete, data reaches the pipe.
            for nop in nops {
                nop.await.unwrap();
            }
            writer.write_all(b"after").unwrap();
            for _ in 0..10 {
                percore::time::sleep(Duration::from_millis(2)).await;
            }
            // 6. The kernel never wrote into the dropped buffer, and the
            //    data is still in the pipe for the next reader.
            assert_eq!(
                sentinel_bytes(),
                [0; 16],
                "{name}: the kernel wrote into a dropped buffer"
            );
            let (res, buf) = Op::new(Read::new(fd, Vec::with_capacity(16), CURRENT_POSITION))
                .timeout(Duration::from_secs(5))
                .await;
            assert_eq!(res.expect("the data is still in the pipe"), 5, "{name}");
            assert_eq!(buf, b"after", "{name}");
        });
    }
}

/// The class of bug 1 for a single op: a full SQ whose flushes fail with
/// `EBUSY` and then `EFAULT` while an op is submitted. Before, the slot was
/// taken before the flush panicked, and stayed (in flight forever, its
/// waker never woken); now the submission leaves nothing behind.
#[test]
fn failed_submit_of_a_single_op_takes_no_slot_and_queues_nothing() {
    let _dog = watchdog("single_submit_fails", Duration::from_secs(60));
    for (name, rt) in rings(4) {
        rt.block_on(async {
            let in_flight = percore::stats().in_flight;
            // 1. Four nops fill the SQ.
            let mut nops: Vec<_> = (0..4).map(|_| Op::new(Nop)).collect();
            for nop in &mut nops {
                assert!(support::poll_once(nop).await.is_pending());
            }
            // 2. A fifth op needs a flush, which fails for good.
            let (mut read, _writer) = pending_read();
            fault::fail_enter_sequence(&[libc::EBUSY, libc::EFAULT]);
            let polled = catch_unwind(AssertUnwindSafe(|| {
                support::poll_with(&mut read, std::task::Waker::noop()).is_pending()
            }));
            assert!(polled.is_err(), "{name}: the fatal errno must panic");
            assert_eq!(fault::pending_enter_faults(), 0, "{name}");
            // 3. No slot was taken for it; the nops are intact.
            assert_eq!(percore::stats().in_flight, in_flight + 4, "{name}");
            drop(read);
            for nop in nops {
                nop.await.unwrap();
            }
            support::settle().await;
            assert_eq!(percore::stats().in_flight, in_flight, "{name}");
        });
    }
}
