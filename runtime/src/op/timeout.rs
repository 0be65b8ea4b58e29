use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};

/// `IORING_OP_TIMEOUT`: a timer in the kernel. Completes with `Ok(())` when it
/// expires.
///
/// Everyday timers are [`crate::time::sleep`], which costs no SQE at all; this
/// op is for code that wants the kernel's timer.
///
/// # Examples
///
/// ```
/// use percore::op::{Op, TimeoutOp};
/// use std::time::Duration;
///
/// percore::run(async {
///     Op::new(TimeoutOp::new(Duration::from_millis(1))).await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct TimeoutOp {
    /// Boxed: the kernel reads it when the SQE is prepared, and the op may move.
    ts: Box<types::Timespec>,
}

impl TimeoutOp {
    /// Expires after `dur`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use percore::op::{Op, TimeoutOp};
    ///
    /// percore::run(async {
    ///     let start = Instant::now();
    ///     // A timer in the kernel: it "fails" with ETIME when it fires.
    ///     let res = Op::new(TimeoutOp::new(Duration::from_millis(2))).await;
    ///     assert!(res.is_ok() || res.unwrap_err().raw_os_error() == Some(libc::ETIME));
    ///     assert!(start.elapsed() >= Duration::from_millis(2));
    /// });
    /// ```
    pub fn new(dur: Duration) -> TimeoutOp {
        TimeoutOp {
            ts: Box::new(types::Timespec::from(dur)),
        }
    }
}

// SAFETY: the timespec is boxed and owned by the op until its CQE.
unsafe impl OpCode for TimeoutOp {
    type Output = std::io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.ts as *const types::Timespec).build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        match cqe.result {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
