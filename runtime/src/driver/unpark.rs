//! The cross-thread wake-up of a parked core.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::park::ParkFlag;
use super::try_with_driver;

/// Wakes a core that may be parked in `io_uring_enter`, from any thread.
///
/// Another percore core posts the wake-up as a completion straight into the
/// parked core's ring with `IORING_OP_MSG_RING`, submitted at once (one
/// `io_uring_enter`, as the eventfd write is one syscall), and the parked
/// core has no read to re-arm. Other threads, and kernels without MSG_RING,
/// write the eventfd whose read the core keeps posted on its ring.
#[derive(Debug)]
pub(crate) struct Unparker {
    pub(super) eventfd: OwnedFd,
    /// A duplicate of the ring's fd, for MSG_RING (`None` without it). Being
    /// a descriptor of our own, it stays valid (and keeps the ring) for as
    /// long as any waker may still post to it.
    pub(super) ring: Option<OwnedFd>,
    /// Set by the owning core just before it parks; the first waker to clear
    /// it sends the wake-up, later ones know one is already on its way.
    pub(super) parked: ParkFlag,
}

impl Unparker {
    /// Wakes the core if it is parked (or about to park). Call it after
    /// publishing the work the core is to find (queued task, flag): the flag
    /// protocol (`park.rs`, checked by loom) then loses no wake-up.
    pub(crate) fn unpark(&self) {
        if self.parked.unpark() {
            if let Some(ring) = &self.ring
                && try_with_driver(|d| d.post_wake(ring.as_raw_fd())) == Some(true)
            {
                return;
            }
            super::syscall::signal_eventfd(self.eventfd.as_fd());
        }
    }

    /// Marks the core as about to park. The caller must re-check its remote
    /// queue after this and call [`Unparker::cancel_park`] if it finds work.
    pub(crate) fn prepare_park(&self) {
        self.parked.prepare_park();
    }

    /// Marks the core as awake.
    pub(crate) fn cancel_park(&self) {
        self.parked.cancel_park();
    }
}
