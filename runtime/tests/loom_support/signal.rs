//! The wake-up signal of the loom models of the park protocol
//! (`loom_unparker.rs`, `loom_inbox.rs`): what the eventfd or the MSG_RING
//! completions are to a parked core, as a counting semaphore on loom's
//! mutex and condvar.

use loom::sync::{Condvar, Mutex};

/// The wake-up signal: an eventfd, or MSG_RING completions in the ring.
pub struct Signal {
    count: Mutex<usize>,
    cond: Condvar,
}

impl Signal {
    pub fn new() -> Signal {
        Signal {
            count: Mutex::new(0),
            cond: Condvar::new(),
        }
    }

    pub fn send(&self) {
        *self.count.lock().unwrap() += 1;
        self.cond.notify_one();
    }

    /// The park: blocks until a signal arrives, then takes all of them (an
    /// eventfd read resets the counter).
    pub fn wait(&self) {
        let mut count = self.count.lock().unwrap();
        while *count == 0 {
            count = self.cond.wait(count).unwrap();
        }
        *count = 0;
    }
}
