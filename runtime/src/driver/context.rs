//! The functions ops and resources reach the current core's driver
//! through (it sits in the core's context, `crate::context`).

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;

use io_uring::{opcode, types};

use super::op::Abandoned;
use super::{Capabilities, Driver};
use crate::context;

/// The current core's tick count (enters that ended a tick), for telling an
/// op that completed at once from one that waited.
pub(crate) fn current_tick() -> u64 {
    with_driver(|d| d.stats.ticks)
}

/// Runs `f` with the current core's driver.
///
/// # Panics
///
/// Outside a percore runtime, or in a forked child that inherited it.
pub(crate) fn with_driver<R>(f: impl FnOnce(&mut Driver) -> R) -> R {
    match try_with_driver(f) {
        Some(r) => r,
        None => {
            if let Some(err) = current_fork_error() {
                panic!("{err}");
            }
            panic!(
                "percore I/O used outside a runtime: call it inside percore::run or Runtime::block_on"
            )
        }
    }
}

/// The fork error, if the current driver was inherited by a forked child.
fn current_fork_error() -> Option<io::Error> {
    context::with(|core| {
        let d = core.driver.try_borrow().ok()?;
        d.inherited().then(|| d.fork_error())
    })
    .flatten()
}

/// Runs `f` with the current core's driver, or returns `None` outside a
/// runtime (or if the driver is busy, which only happens during its own drop,
/// or if a forked child inherited it: then ops are leaked and fds closed
/// with close(2), and nothing touches the parent's ring).
pub(crate) fn try_with_driver<R>(f: impl FnOnce(&mut Driver) -> R) -> Option<R> {
    context::with(|core| {
        let mut d = core.driver.try_borrow_mut().ok()?;
        if d.inherited() {
            return None;
        }
        Some(f(&mut d))
    })
    .flatten()
}

/// Hands an op whose future was dropped to the driver of ring `ring`, which
/// must be the current one. Otherwise (the runtime is gone, or the future is
/// dropped while another runtime is current) the op is leaked rather than
/// freed under the kernel: only its own ring knows when the kernel is done.
pub(crate) fn abandon(idx: usize, ring: u64, data: Box<dyn Abandoned>) {
    let mut data = Some(data);
    let done =
        try_with_driver(|d| (d.id == ring).then(|| d.drop_op(idx, data.take().expect("op data"))));
    match done {
        // Kernel already finished: its `abandon` runs and the op drops
        // here, outside the driver borrow.
        Some(Some(Some(finished))) => drop(finished),
        Some(Some(None)) => {}
        _ => std::mem::forget(data),
    }
}

/// Runs `f` on the current driver, which must be ring `ring`, the one an op
/// was submitted to: its slot index means nothing on any other ring.
///
/// # Panics
///
/// If another runtime (or none) is current: the op's future was moved to a
/// runtime other than the one it started on.
pub(crate) fn with_ring<R>(ring: u64, f: impl FnOnce(&mut Driver) -> R) -> R {
    with_driver(|d| {
        assert!(
            d.id == ring,
            "percore: an I/O future was polled on a different runtime than the one it was submitted on"
        );
        f(d)
    })
}

/// Closes `fd`: through the ring when a runtime is current (no syscall of
/// its own), else with close(2). Taking an `OwnedFd` is what makes this
/// safe: only the owner of a descriptor can give it up.
pub(crate) fn close_fd(fd: OwnedFd) {
    let raw = fd.into_raw_fd();
    let queued = try_with_driver(|d| d.submit_detached(opcode::Close::new(types::Fd(raw)).build()))
        .is_some();
    if !queued {
        // SAFETY: `raw` came from the `OwnedFd` this function consumed, so
        // nothing else owns or uses it.
        unsafe { libc::close(raw) };
    }
}

/// The current core's driver id (see [`Driver::id`]), if inside a runtime.
pub(crate) fn current_id() -> Option<u64> {
    try_with_driver(|d| d.id)
}

/// The current core's ring capabilities, if inside a runtime.
pub(crate) fn current_capabilities() -> Option<Rc<Capabilities>> {
    try_with_driver(|d| d.capabilities())
}
