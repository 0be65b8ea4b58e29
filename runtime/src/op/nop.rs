use io_uring::{opcode, squeue};

use super::{CqeResult, OpCode};

/// `IORING_OP_NOP`: a round trip through the ring that does nothing.
///
/// # Examples
///
/// ```
/// use percore::op::{Nop, Op};
///
/// percore::run(async { Op::new(Nop).await.unwrap() });
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Nop;

// SAFETY: a nop references no memory.
unsafe impl OpCode for Nop {
    type Output = std::io::Result<()>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|_| ())
    }
}
