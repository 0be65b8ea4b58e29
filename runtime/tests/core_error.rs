//! `CoreError` names the core that failed, however it failed.

use std::os::fd::{AsRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};
use percore::Runtime;
use percore::op::{CqeResult, Op, OpCode};

/// Waits for a pipe to become readable; panics in `abandon`, which runs when
/// the op's CQE arrives after its future was dropped: here while the core's
/// runtime shuts down, after the core's future, outside `block_on`.
struct PanicOnAbandon {
    fd: OwnedFd,
}

// SAFETY: the SQE refers to `fd`, owned by the op, and to no memory.
unsafe impl OpCode for PanicOnAbandon {
    type Output = std::io::Result<u32>;
    fn create_entry(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd.as_raw_fd()), libc::POLLIN as u32).build()
    }
    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.into_result()
    }
    unsafe fn abandon(&mut self, _cqe: CqeResult) {
        panic!("abandoned at shutdown");
    }
}

/// Issue 12, item 13: a core thread that panicked outside its future (here
/// in its runtime's drop) was reported as core `usize::MAX`.
#[test]
fn a_core_thread_that_panics_after_its_future_is_named_in_the_error() {
    let err = Runtime::builder()
        .cores(2)
        .build()
        .unwrap()
        .run_on_every_core(|core| async move {
            if core == 1 {
                let (reader, writer) = std::io::pipe().unwrap();
                // A task left waiting in the kernel when the core finishes.
                drop(percore::spawn(async move {
                    let _writer = writer;
                    Op::new(PanicOnAbandon { fd: reader.into() }).await
                }));
                percore::yield_now().await;
            }
        })
        .unwrap_err();
    assert_eq!(err.core, 1, "{err}");
    assert!(err.message.contains("abandoned at shutdown"), "{err}");
}
