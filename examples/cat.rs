//! `cat` on percore: streams each file to stdout through the ring, 256 KiB
//! at a time, with owned buffers reused from read to write.
//!
//! `cargo run --release --example cat -- [--stats] FILE...`
//!
//! `--stats`: print the runtime's counters (`percore::stats()`) to stderr
//! at the end.

#[path = "common/flags.rs"]
mod flags;

use std::os::fd::AsFd;

use percore::fs::File;
use percore::op::CURRENT_POSITION;

const CHUNK: usize = 256 * 1024;

async fn cat(paths: &[String]) -> std::io::Result<()> {
    // stdout may be a pipe or a terminal: write at its current position.
    let stdout = File::from_std(std::io::stdout().as_fd().try_clone_to_owned()?.into());
    let mut buf = Vec::with_capacity(CHUNK);
    for path in paths {
        let file = File::open(path).await?;
        let mut pos = 0;
        loop {
            buf.clear();
            let (res, b) = file.read_at(buf, pos).await;
            let n = res?;
            if n == 0 {
                buf = b;
                break;
            }
            pos += n as u64;
            let (res, b) = stdout.write_all_at(b, CURRENT_POSITION).await;
            res?;
            buf = b;
        }
        file.close().await?;
    }
    Ok(())
}

const USAGE: &str = "usage: cat [--stats] FILE...";

fn main() {
    flags::exit_if_help(USAGE);
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let stats = paths.iter().any(|a| a == "--stats");
    paths.retain(|a| a != "--stats");
    if paths.is_empty() {
        flags::usage_error("cat", "no file given", USAGE);
    }
    let (res, counters) = percore::run(async { (cat(&paths).await, percore::stats()) });
    if stats {
        eprintln!("{counters}");
    }
    if let Err(err) = res {
        eprintln!("cat: {err}");
        std::process::exit(1);
    }
}
