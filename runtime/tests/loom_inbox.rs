//! Loom model of the flag that tells a core whether other threads handed it
//! work (`runtime/src/executor/inbox.rs`), together with the park flag
//! (`runtime/src/driver/park.rs`), both included here with loom's atomics.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p percore --test loom_inbox --release
//! ```
//!
//! Senders push onto a queue, announce, and unpark; the core runs the
//! loop's order: take the flag and drain, look before announcing the park,
//! look once more after it, park. Work left in the queue behind a clear
//! flag leaves the core parked after every sender has finished: loom
//! reports that as a deadlock. (Checked against broken variants: with a
//! plain store clearing the flag in `Inbox::take`, loom finds the stranded
//! work. Announcing with a plain release store fails the model too, so the
//! announce is a swap: one `xchg` per remote wake, which already pays one
//! for the park flag.)
//!
//! The queue is a counter of pushed items, published with release and
//! read with acquire, as the lock-free queue's tail is: a pop that has not
//! synchronized with a push may find the queue empty. (A locked deque
//! would order every push before the next pop and hide the bug.)

#![cfg(loom)]

// What the included files import as `super::atomic`.
use loom::sync::Arc;
use loom::sync::atomic::{self, AtomicUsize, Ordering};
use loom::thread;

// The real protocols, with `super::atomic` = loom's atomics.
#[path = "../src/executor/inbox.rs"]
mod inbox;
#[path = "../src/driver/park.rs"]
mod park;

use inbox::Inbox;
use park::ParkFlag;

// The wake-up signal both park models use.
#[path = "loom_support/signal.rs"]
mod signal;

use signal::Signal;

struct Core {
    flag: ParkFlag,
    inbox: Inbox,
    /// Items pushed so far.
    queue: AtomicUsize,
    signal: Signal,
}

/// A sender on another thread (`schedule_remote`, `spawn_on`): push,
/// announce, unpark.
fn send(core: &Core) {
    core.queue.fetch_add(1, Ordering::Release);
    core.inbox.announce();
    if core.flag.unpark() {
        core.signal.send();
    }
}

/// The core's loop (`Runtime::block_on` with `Executor::drain_remote` and
/// `has_ready`), until it has taken `expected` items.
fn run_core(core: &Core, expected: usize) {
    let mut taken = 0;
    loop {
        if core.inbox.take() {
            // Pops until empty: all that this look sees.
            taken = core.queue.load(Ordering::Acquire);
        }
        if taken == expected {
            return;
        }
        if core.inbox.has_work() {
            continue;
        }
        core.flag.prepare_park();
        if core.inbox.has_work() {
            core.flag.cancel_park();
            continue;
        }
        core.signal.wait();
        core.flag.cancel_park();
    }
}

/// A model builder bounded to 3 preemptions unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise.
fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder
}

/// `senders` threads send `each` items apiece; the core takes every one.
fn model(senders: usize, each: usize) {
    builder().check(move || {
        let core = Arc::new(Core {
            flag: ParkFlag::new(),
            inbox: Inbox::new(),
            queue: AtomicUsize::new(0),
            signal: Signal::new(),
        });
        let threads: Vec<_> = (0..senders)
            .map(|_| {
                let core = core.clone();
                thread::spawn(move || {
                    for _ in 0..each {
                        send(&core);
                    }
                })
            })
            .collect();
        run_core(&core, senders * each);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// One sender: its item is drained, or seen by a look before the park.
#[test]
fn one_sender_is_never_stranded() {
    model(1, 1);
}

/// A sender whose second push races the core's drain of the first.
#[test]
fn a_push_during_a_drain_is_never_stranded() {
    model(1, 2);
}

/// Two senders racing each other, the drain and the park.
#[test]
fn two_senders_are_never_stranded() {
    model(2, 1);
}
