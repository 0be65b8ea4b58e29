//! `--background N`: N tasks per core that each loop "about 100 µs of CPU
//! work, then yield", the pattern every cooperative runtime asks CPU-heavy
//! code to follow. echo-server and the tokio peer (`bench/src/peers/`) share
//! this file, so both do the same work and report it the same way.
//!
//! While N > 0, the server prints `BACKGROUND turns=T` once a second, T being
//! the turns of work done so far on all cores; `scripts/bench-yield.sh`
//! turns two such lines into the background work done per second.
//!
//! `--copy SRC` makes the N tasks bulk file copies instead (the second case
//! of `scripts/bench-classes.sh`): each copies SRC to [`copy_dst`] in
//! [`COPY_CHUNK`] reads and writes, one of each in flight, over and over,
//! yielding after each chunk; the server prints `BACKGROUND copied=B`, the
//! bytes copied so far.

use std::path::{Path, PathBuf};
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

/// One read and one write of a background copy.
pub const COPY_CHUNK: usize = 256 << 10;

static COPIED: AtomicU64 = AtomicU64::new(0);

/// Counts `n` bytes copied by a background copy.
pub fn count_copied(n: usize) {
    COPIED.fetch_add(n as u64, Ordering::Relaxed);
}

/// Where background copy `task` of `core` writes: next to its source, so
/// the script's clean-up of the source's directory takes it too.
pub fn copy_dst(src: &Path, core: usize, task: usize) -> PathBuf {
    let mut name = src.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".copy-{}-{core}-{task}", std::process::id()));
    src.with_file_name(name)
}

/// The once-a-second line of `--copy`.
pub fn copy_report_line() -> String {
    format!("BACKGROUND copied={}", COPIED.load(Ordering::Relaxed))
}
