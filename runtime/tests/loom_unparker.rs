//! Loom model of the cross-thread unparker: the `parked` flag protocol of
//! `runtime/src/driver/park.rs`, included here with loom's atomics.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p percore --test loom_unparker --release
//! ```
//!
//! The core and the wakers run the real `ParkFlag`; the work queue is an
//! atomic counter (published with release, read with acquire, as the
//! executor's remote queue and the main future's flag are), and the wake-up
//! signal (MSG_RING or the eventfd) is a counting semaphore on loom's mutex
//! and condvar. A lost wake-up leaves the core blocked on the condvar after
//! every waker has finished: loom reports that as a deadlock. (Checked
//! against broken variants: without the release in `unpark`, or without the
//! acquire in `prepare_park`, loom finds the lost wake-up.)

#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{self, AtomicUsize, Ordering};
use loom::thread;

// The real protocol, with `super::atomic` = loom's atomics.
#[path = "../src/driver/park.rs"]
mod park;

use park::ParkFlag;

// The wake-up signal both park models use.
#[path = "loom_support/signal.rs"]
mod signal;

use signal::Signal;

struct Core {
    flag: ParkFlag,
    work: AtomicUsize,
    signal: Signal,
}

/// A waker on another thread: publish the work, then unpark.
fn wake(core: &Core) {
    core.work.fetch_add(1, Ordering::Release);
    if core.flag.unpark() {
        core.signal.send();
    }
}

/// The core's loop (`Runtime::block_on`): run what is there, announce the
/// park, look once more, park only if there is nothing. Returns once it has
/// seen `expected` pieces of work.
fn run_core(core: &Core, expected: usize) {
    let mut seen = 0;
    while seen < expected {
        core.flag.prepare_park();
        let now = core.work.load(Ordering::Acquire);
        if now > seen {
            core.flag.cancel_park();
            seen = now;
            continue;
        }
        core.signal.wait();
        core.flag.cancel_park();
        seen = core.work.load(Ordering::Acquire);
    }
}

/// A model builder bounded to 3 preemptions unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (each model here takes well under a second).
fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder
}

fn model(wakers: usize) {
    builder().check(move || {
        let core = Arc::new(Core {
            flag: ParkFlag::new(),
            work: AtomicUsize::new(0),
            signal: Signal::new(),
        });
        let threads: Vec<_> = (0..wakers)
            .map(|_| {
                let core = core.clone();
                thread::spawn(move || wake(&core))
            })
            .collect();
        run_core(&core, wakers);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// One waker: it signals, or the core's last look sees its work.
#[test]
fn one_waker_is_never_lost() {
    model(1);
}

/// Two wakers: only the first to clear the flag signals; the second's work
/// is still seen, after the core wakes or by its next last look.
#[test]
fn two_wakers_are_never_lost() {
    model(2);
}

/// Three wakers racing each other and the core's park.
#[test]
fn three_wakers_are_never_lost() {
    model(3);
}

/// The flag is clear again once the core is awake, so the next park needs
/// and gets a new wake-up.
#[test]
fn a_woken_core_parks_again_and_is_woken_again() {
    builder().check(|| {
        let core = Arc::new(Core {
            flag: ParkFlag::new(),
            work: AtomicUsize::new(0),
            signal: Signal::new(),
        });
        let waker = {
            let core = core.clone();
            thread::spawn(move || {
                wake(&core);
                wake(&core);
            })
        };
        run_core(&core, 2);
        waker.join().unwrap();
    });
}
