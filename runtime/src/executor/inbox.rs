//! The flag that tells a core's loop whether other threads handed it work
//! (tasks they woke, closures sent by `spawn_on`), apart from the executor
//! so that loom can check it (`runtime/tests/loom_inbox.rs` includes this
//! file with loom's atomics as `super::atomic`; the executor gives it
//! std's).
//!
//! Why a flag: the loop looks for such work several times per turn (before
//! a pass, before and after parking), and a look into the two lock-free
//! queues reads their head and tail, four cache lines. The flag is one.
//!
//! A sender: pushes its work onto the queue, then [`Inbox::announce`], then
//! unparks the core (the park flag's `unpark`). The core:
//! [`Inbox::has_work`] to look, and [`Inbox::take`] before it drains the
//! queues, which it then pops until empty.
//!
//! What must hold: work is never left in a queue while the flag reads
//! clear, so neither a look before parking nor a drain misses it for
//! good. Both writes to the flag are swaps, so they form one chain in which
//! each reads the one before (as the park flag's do, `driver/park.rs`). If
//! the core's clearing swap comes after a sender's announce in that chain,
//! it reads that `true` or a later link and acquires the sender's push, so
//! the drain that follows finds the work; if it comes before, the flag
//! reads set again from the announce on. A plain store to clear it could
//! land after an announce without acquiring it, and the drain could then
//! miss the work it announced (loom finds that variant's lost work).

use super::atomic::{AtomicBool, Ordering};

/// Whether work from other threads may wait in the core's queues.
#[derive(Debug)]
pub(crate) struct Inbox {
    pending: AtomicBool,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            pending: AtomicBool::new(false),
        }
    }

    /// A sender, after pushing its work and before unparking the core.
    pub(crate) fn announce(&self) {
        // A swap, not a store, so the flag's writes form one chain (see
        // the module's note).
        self.pending.swap(true, Ordering::AcqRel);
    }

    /// Whether work was announced and not yet taken. One load; a `false`
    /// may be stale, which the park protocol covers (the sender's unpark
    /// comes after its announce).
    #[inline]
    pub(crate) fn has_work(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Clears the flag if it was set, acquiring every announce before the
    /// clear; true when the caller must now drain the queues until empty.
    #[inline]
    pub(crate) fn take(&self) -> bool {
        self.has_work() && self.pending.swap(false, Ordering::AcqRel)
    }
}
