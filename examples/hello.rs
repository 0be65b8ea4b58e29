//! The asyncio classic: an async `fetch_data` that sleeps, run several times
//! concurrently with `spawn` and joined.
//!
//! `cargo run --release --example hello`

#[path = "common/flags.rs"]
mod flags;

use std::time::{Duration, Instant};

async fn fetch_data(id: u32) -> String {
    println!("fetching {id}...");
    percore::time::sleep(Duration::from_millis(100 * id as u64)).await;
    format!("data {id}")
}

fn main() {
    flags::no_arguments("hello", "usage: hello (no arguments)");
    percore::run(async {
        let start = Instant::now();
        let handles: Vec<_> = (1..=3).map(|id| percore::spawn(fetch_data(id))).collect();
        for result in percore::join_all(handles).await {
            println!("got {}", result.expect("fetch task failed"));
        }
        // The three sleeps overlapped: about 300 ms in all, not 600.
        println!("done in {:?}", start.elapsed());
    });
}
