//! The op slots: what each holds from submission to its final completion
//! (`Lifecycle`), the per-slot counters' record (`SlotMeta`), and the one
//! place a CQE moves a slot on (`complete`).

use std::collections::VecDeque;
use std::task::Waker;
#[cfg(feature = "tracing")]
use std::time::Duration;

use io_uring::cqueue;
#[cfg(feature = "tracing")]
use io_uring::opcode;
use slab::Slab;

use super::op::{Abandoned, CqeResult};
#[cfg(feature = "tracing")]
use super::stats;

/// What one slot holds, from submission to the final completion.
pub(super) enum Lifecycle {
    /// In flight; `first` keeps the result of a CQE flagged `IORING_CQE_F_MORE`
    /// (send_zc) until the final notification arrives.
    Waiting {
        waker: Waker,
        first: Option<CqeResult>,
    },
    /// The final CQE arrived; the future takes it on its next poll.
    Completed(CqeResult),
    /// The future was dropped; the op lives here until its final CQE. The
    /// CQEs that arrive meanwhile wait here too: `OpCode::abandon` is user
    /// code, and runs only once the op leaves the driver as [`Finished`].
    Cancelled {
        op: Box<dyn Abandoned>,
        cqes: Vec<CqeResult>,
    },
    /// A multishot op: completions queue up until the future takes them.
    Multishot {
        cqes: CqeQueue,
        waker: Option<Waker>,
        finished: bool,
    },
}

/// A multishot op's completions not yet taken, oldest first. The oldest
/// is kept in the slot itself: most often just one waits (a connection's
/// receive), and posting it then writes the slot's own cache line, not a
/// buffer of its own as well. Empty whenever `first` is.
#[derive(Default)]
pub(super) struct CqeQueue {
    first: Option<CqeResult>,
    rest: VecDeque<CqeResult>,
}

impl CqeQueue {
    pub(super) fn push_back(&mut self, cqe: CqeResult) {
        if self.first.is_none() {
            self.first = Some(cqe);
        } else {
            self.rest.push_back(cqe);
        }
    }

    pub(super) fn pop_front(&mut self) -> Option<CqeResult> {
        let cqe = self.first.take()?;
        self.first = self.rest.pop_front();
        Some(cqe)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Takes every completion, oldest first.
    pub(super) fn take_all(&mut self) -> Vec<CqeResult> {
        let mut all = Vec::with_capacity(self.first.is_some() as usize + self.rest.len());
        all.extend(self.first.take());
        all.extend(self.rest.drain(..));
        all
    }
}

/// An abandoned op the kernel is done with, and the CQEs it got since its
/// future was dropped. Dropping it hands each CQE to `OpCode::abandon`
/// (closing an accepted fd, for instance) and then drops the op: the loop
/// does that after the driver borrow is released, never inside it.
pub(crate) struct Finished {
    pub(super) op: Box<dyn Abandoned>,
    pub(super) cqes: Vec<CqeResult>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        for cqe in self.cqes.drain(..) {
            self.op.on_cqe(cqe);
        }
    }
}

/// What the driver remembers about the op in a slot, for the counters.
#[derive(Clone, Copy)]
pub(super) struct SlotMeta {
    pub(super) opcode: u8,
    /// The provided-buffer group the op selects from, if any.
    pub(super) bgid: Option<u16>,
    /// When it was queued; only kept for the slow-op warning.
    #[cfg(feature = "tracing")]
    pub(super) queued: std::time::Instant,
}

/// Hands one CQE to the op in slot `idx`: wakes its future, queues a
/// multishot result, or finishes an abandoned op.
pub(super) fn complete(
    slots: &mut Slab<Lifecycle>,
    wakes: &mut Vec<Waker>,
    garbage: &mut Vec<Finished>,
    idx: usize,
    res: i32,
    flags: u32,
    buf_offset: u32,
) {
    let more = cqueue::more(flags);
    let mut res = CqeResult::new(res, flags);
    res.buf_offset = buf_offset;
    let slot = slots
        .get_mut(idx)
        .unwrap_or_else(|| panic!("completion for unknown op slot {idx}"));
    match slot {
        Lifecycle::Waiting { waker, first } => {
            if more {
                *first = Some(res);
                return;
            }
            let res = first.take().unwrap_or(res);
            let waker = std::mem::replace(waker, Waker::noop().clone());
            *slot = Lifecycle::Completed(res);
            // An op nobody waits for leaves the loop nothing to run: see
            // `Driver::park`.
            if !super::op::is_unwaited(&waker) {
                wakes.push(waker);
            }
        }
        Lifecycle::Multishot {
            cqes,
            waker,
            finished,
        } => {
            cqes.push_back(res);
            *finished = !more;
            if let Some(w) = waker.take() {
                wakes.push(w);
            }
        }
        Lifecycle::Cancelled { cqes, .. } => {
            // Handed to `abandon` by the loop, outside the borrow.
            cqes.push(res);
            if !more {
                let Lifecycle::Cancelled { op, cqes } = slots.remove(idx) else {
                    unreachable!()
                };
                garbage.push(Finished { op, cqes });
            }
        }
        Lifecycle::Completed(_) => {
            panic!("unexpected lifecycle for op slot {idx}: completed twice")
        }
    }
}

/// Ops that wait for someone else by nature (a peer, a timer, another
/// thread): a long time in flight says nothing about the ring.
#[cfg(feature = "tracing")]
fn waits_by_nature(code: u8) -> bool {
    [
        opcode::Accept::CODE,
        opcode::Recv::CODE,
        opcode::RecvMsg::CODE,
        opcode::RecvMulti::CODE,
        opcode::PollAdd::CODE,
        opcode::Timeout::CODE,
        opcode::LinkTimeout::CODE,
        opcode::ReadMulti::CODE,
        opcode::FutexWait::CODE,
        opcode::FutexWaitV::CODE,
        opcode::WaitId::CODE,
        opcode::EpollWait::CODE,
    ]
    .contains(&code)
}

/// The slow-op warning: checked when the completion arrives, so an op
/// costs one `Instant::now()` at submit and one here, and only with the
/// `tracing` feature.
#[cfg(feature = "tracing")]
pub(super) fn warn_if_slow(limit: Option<Duration>, meta: &SlotMeta, result: i32) {
    let Some(limit) = limit else { return };
    if result == -libc::ECANCELED || waits_by_nature(meta.opcode) {
        return;
    }
    let took = meta.queued.elapsed();
    if took >= limit {
        tracing::warn!(
            target: "percore::driver",
            op = stats::opcode_name(meta.opcode),
            took_us = took.as_micros() as u64,
            result,
            "slow op: in flight longer than {limit:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(q: Option<CqeResult>) -> Option<u32> {
        q.map(|c| *c.result.as_ref().expect("a count"))
    }

    #[test]
    fn cqe_queue_hands_out_in_arrival_order() {
        let mut q = CqeQueue::default();
        assert!(q.is_empty());
        assert_eq!(res(q.pop_front()), None);
        for n in 1..=3 {
            q.push_back(CqeResult::new(n, 0));
        }
        assert_eq!(res(q.pop_front()), Some(1));
        q.push_back(CqeResult::new(4, 0));
        assert!(!q.is_empty());
        assert_eq!(res(q.pop_front()), Some(2));
        assert_eq!(res(q.pop_front()), Some(3));
        assert_eq!(res(q.pop_front()), Some(4));
        assert!(q.is_empty());
        assert_eq!(res(q.pop_front()), None);
        // One in place, then more behind it: all taken, oldest first.
        for n in 5..=7 {
            q.push_back(CqeResult::new(n, 0));
        }
        let all: Vec<_> = q.take_all().into_iter().map(|c| res(Some(c))).collect();
        assert_eq!(all, [Some(5), Some(6), Some(7)]);
        assert!(q.is_empty());
    }
}
