//! Loom model of the blocking pool's hand-off (`RUSTFLAGS="--cfg loom"`, see
//! `.ci/run`): a job submitted right after another gets a thread of its own
//! even when the first one blocks, in every interleaving of submits and
//! workers (loom reports the deadlock if the second job is left queued).

#![cfg(loom)]

use loom::sync::{Arc, Condvar, Mutex};
use percore::loom_internals::BlockingPool;

/// A flag a thread can wait for.
#[derive(Default)]
struct Flag {
    set: Mutex<bool>,
    cond: Condvar,
}

impl Flag {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut set = self.set.lock().unwrap();
        while !*set {
            set = self.cond.wait(set).unwrap();
        }
    }
}

#[test]
fn loom_blocking_job_that_waits_for_the_next_one_gets_its_own_thread() {
    loom::model(|| {
        let pool = std::sync::Arc::new(BlockingPool::new());
        // A first job, so a thread may be idle (or about to be) when the
        // next two arrive: the case the idle count got wrong.
        let warm = Arc::new(Flag::default());
        pool.submit(Box::new({
            let warm = warm.clone();
            move || warm.set()
        }));
        warm.wait();
        let b_ran = Arc::new(Flag::default());
        let a_done = Arc::new(Flag::default());
        pool.submit(Box::new({
            let (b_ran, a_done) = (b_ran.clone(), a_done.clone());
            move || {
                b_ran.wait();
                a_done.set();
            }
        }));
        pool.submit(Box::new({
            let b_ran = b_ran.clone();
            move || b_ran.set()
        }));
        a_done.wait();
        pool.close();
    });
}
