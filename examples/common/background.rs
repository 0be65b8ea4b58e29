//! `--background N`: N tasks per core that each loop "about 100 µs of CPU
//! work, then yield", the pattern every cooperative runtime asks CPU-heavy
//! code to follow. echo-server and the tokio peer (`benches/peers/`) share
//! this file, so both do the same work and report it the same way.
//!
//! While N > 0, the server prints `BACKGROUND turns=T` once a second, T being
//! the turns of work done so far on all cores; `scripts/bench-yield.sh`
//! turns two such lines into the background work done per second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One turn of background work.
pub const SLICE: Duration = Duration::from_micros(100);

static TURNS: AtomicU64 = AtomicU64::new(0);

/// Burns one [`SLICE`] of CPU without yielding, and counts the turn.
pub fn work_slice() {
    let start = Instant::now();
    while start.elapsed() < SLICE {
        std::hint::spin_loop();
    }
    TURNS.fetch_add(1, Ordering::Relaxed);
}

/// The line the server prints once a second while background tasks run.
pub fn report_line() -> String {
    format!("BACKGROUND turns={}", TURNS.load(Ordering::Relaxed))
}
