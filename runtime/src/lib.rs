//! percore: a thread-per-core async runtime for Linux on io_uring.
//!
//! Each core runs one thread with its own executor and its own io_uring. File
//! and socket operations are submitted to that ring and complete as futures
//! that own their buffers: `(result, buffer) = op.await`.
//!
//! ```
//! use std::time::Duration;
//!
//! async fn fetch_data(id: u32) -> String {
//!     percore::time::sleep(Duration::from_millis(2)).await;
//!     format!("data {id}")
//! }
//!
//! percore::run(async {
//!     let handles: Vec<_> = (0..3).map(|id| percore::spawn(fetch_data(id))).collect();
//!     for (id, result) in percore::join_all(handles).await.into_iter().enumerate() {
//!         assert_eq!(result.unwrap(), format!("data {id}"));
//!     }
//! });
//! ```
//!
//! Layers: [`op`] (one type per io_uring operation), the driver (the ring, not
//! public), the executor ([`spawn`], [`JoinHandle`]), [`time`], [`buf`],
//! [`blocking`](spawn_blocking).

#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]

mod blocking;
pub mod buf;
pub mod channel;
mod cores;
mod driver;
mod executor;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod fd;
pub mod fs;
mod latch;
pub mod op;
mod runtime;
pub mod shutdown;
pub mod time;

pub use crate::blocking::spawn_blocking;
pub use crate::cores::CoreError;
pub use crate::driver::{Capabilities, DriverStats};
pub use crate::executor::{
    Either, ExecutorStats, JoinError, JoinHandle, core_id, cores, join_all, race, select, spawn,
    spawn_on, yield_now,
};
pub use crate::runtime::{Builder, Runtime, Stats, capabilities, run, stats};

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
