//! Copies a file with a pipeline of reads and writes in flight: 8 workers,
//! each reading a 256 KiB chunk and writing it to the same offset of the
//! destination, so up to 8 chunks are moving at any moment.
//!
//! `cargo run --release --example copy -- [--stats] SRC DST`
//!
//! `--stats`: print the runtime's counters (`percore::stats()`) at the end.

#[path = "common/flags.rs"]
mod flags;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use percore::fs::{File, OpenOptions};

const CHUNK: u64 = 256 * 1024;
const IN_FLIGHT: usize = 8;

async fn copy(src: &str, dst: &str) -> std::io::Result<u64> {
    let from = Rc::new(File::open(src).await?);
    let len = from.metadata().await?.len();
    let to = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .await?;
    // Size the destination first, so chunks can land in any order.
    to.set_len(len).await?;
    let to = Rc::new(to);
    let next = Rc::new(Cell::new(0u64));
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (from, to, next) = (from.clone(), to.clone(), next.clone());
            percore::spawn(async move {
                let mut buf = Vec::with_capacity(CHUNK as usize);
                loop {
                    let pos = next.get();
                    if pos >= len {
                        return Ok::<_, std::io::Error>(());
                    }
                    next.set(pos + CHUNK);
                    buf.clear();
                    let want = CHUNK.min(len - pos) as usize;
                    // Read exactly this chunk (the buffer's spare room is `want`).
                    let (res, slice) = from
                        .read_exact_at(percore::buf::IoBuf::slice(buf, 0..want), pos)
                        .await;
                    res?;
                    let (res, slice) = to.write_all_at(slice, pos).await;
                    res?;
                    buf = slice.into_inner();
                }
            })
        })
        .collect();
    for w in percore::join_all(workers).await {
        w??;
    }
    to.sync_all().await?;
    Ok(len)
}

const USAGE: &str = "usage: copy [--stats] SRC DST";

fn main() {
    flags::exit_if_help(USAGE);
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let stats = args.iter().any(|a| a == "--stats");
    args.retain(|a| a != "--stats");
    let [src, dst] = args.as_slice() else {
        flags::usage_error("copy", "give a source and a destination", USAGE);
    };
    let start = Instant::now();
    let (res, counters) = percore::run(async { (copy(src, dst).await, percore::stats()) });
    if stats {
        eprintln!("{counters}");
    }
    match res {
        Ok(len) => {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "copied {len} bytes in {secs:.3} s ({:.0} MiB/s)",
                len as f64 / secs / (1 << 20) as f64
            );
        }
        Err(err) => {
            eprintln!("copy: {err}");
            std::process::exit(1);
        }
    }
}
