//! The flag protocol between a core going to park and the threads that
//! wake it, apart from the ring so that loom can check it
//! (`runtime/tests/loom_unparker.rs` includes this file with loom's atomics
//! as `super::atomic`; the driver gives it std's).
//!
//! The core: [`ParkFlag::prepare_park`], then one last look for work (its
//! remote queue, the main future's flag); parks only if it finds none, and
//! calls [`ParkFlag::cancel_park`] when it wakes or finds work. A waker:
//! publishes its work, then [`ParkFlag::unpark`], and sends the wake-up
//! signal (MSG_RING or the eventfd) only if that returns true.
//!
//! What must hold: no wake-up is lost. A waker's `unpark` either sees the
//! flag set (and signals), or its work is seen by the core's last look.
//! Every write to the flag is a read-modify-write (on x86 a swap is the same
//! `xchg` a SeqCst store compiles to), so the writes form one chain in which
//! each reads the one before. If the waker's swap comes after the core's
//! `prepare_park` in that chain, it reads `true` (or a later value: the core
//! already awake, or another waker that signals) and signals. If it comes
//! before, the core's swap reads the waker's release write or a later link of
//! its release sequence, so it acquires everything the waker published before
//! its swap, and the last look finds the work. (With a plain store in
//! `prepare_park` this would be the store-buffering pattern, which needs a
//! SeqCst fence on each side; loom, which orders plain stores of different
//! threads only partially, cannot check that version.)

use super::atomic::{AtomicBool, Ordering};

/// Whether the owning core is parked (or about to park) with no wake-up on
/// its way.
#[derive(Debug)]
pub(crate) struct ParkFlag {
    parked: AtomicBool,
}

impl ParkFlag {
    pub(crate) fn new() -> ParkFlag {
        ParkFlag {
            parked: AtomicBool::new(false),
        }
    }

    /// The core announces its park. It must then look for work once more,
    /// and [`ParkFlag::cancel_park`] if it finds some.
    pub(crate) fn prepare_park(&self) {
        // Acquire: the work of every waker whose swap came earlier.
        self.parked.swap(true, Ordering::AcqRel);
    }

    /// The core is awake (woken, or it found work before parking).
    pub(crate) fn cancel_park(&self) {
        // A swap, not a store, to keep the flag's writes one chain.
        self.parked.swap(false, Ordering::AcqRel);
    }

    /// A waker, after publishing its work: true if the core is parked (or
    /// about to) and this caller must send the wake-up. Only the first of
    /// several wakers gets true; the others know one is on its way.
    pub(crate) fn unpark(&self) -> bool {
        // Release: the work published before, to a core whose swap comes later.
        self.parked.swap(false, Ordering::AcqRel)
    }
}
