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
//! public), the executor ([`spawn`], [`JoinHandle`], and tokio's names in
//! [`task`]: `JoinSet`, `AbortHandle`), [`select!`], [`time`], [`buf`],
//! [`blocking`](spawn_blocking), [`fs`], and [`io`] (`BufReader` with `lines()`
//! over files and sockets).
//!
//! Coming from tokio or asyncio: the porting guide (`docs/porting-from-tokio.md`)
//! maps each API to its percore equivalent.

#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![doc(test(attr(deny(warnings))))]

/// A `tracing` event at `percore`'s target; expands to nothing without the
/// `tracing` feature, so its arguments cost nothing either.
macro_rules! event {
    ($level:ident, $($rest:tt)*) => {
        #[cfg(feature = "tracing")]
        ::tracing::event!(target: "percore", ::tracing::Level::$level, $($rest)*);
    };
}
pub(crate) use event;

mod affinity;
mod blocking;
pub mod buf;
pub mod channel;
mod context;
mod cores;
mod driver;
mod executor;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod fd;
pub mod fs;
pub mod io;
mod latch;
mod loom_sync;
pub mod op;
mod runtime;
mod select;
pub mod shutdown;
pub mod signal;
pub mod sync;
pub mod task;
pub mod time;
mod wait_queue;

pub use crate::blocking::spawn_blocking;
pub use crate::cores::CoreError;
pub use crate::driver::{Capabilities, DriverKind, DriverStats, OpCounts, opcode_name};
pub use crate::executor::{
    Either, ExecutorStats, JoinError, JoinHandle, core_id, cores, join_all, race, select, spawn,
    spawn_on, yield_now,
};
pub use crate::fs::IoErrorExt;
pub use crate::runtime::{Builder, Runtime, Stats, capabilities, run, stats, try_stats};
#[cfg(feature = "macros")]
pub use percore_macros::{main, test};

/// Internals that the loom models (`tests/loom_*.rs`) drive directly; this
/// module exists only under `--cfg loom` and is not public API.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_internals {
    pub use crate::blocking::{Job, Pool as BlockingPool};
    pub use crate::latch::{Latch, LatchWait};
    pub use crate::wait_queue::{WaitQueue, Waiter};
}

/// Support for the code that `#[percore::main]` and `#[percore::test]`
/// generate; not public API.
#[doc(hidden)]
pub mod __private {
    use crate::CoreError;

    pub use crate::select::support as select;

    /// What `main` or a test may return when it runs on several cores.
    pub trait CoreOutput: Sized {
        /// One value from every core's value, in core order.
        fn merge(outputs: Vec<Self>) -> Self;
    }

    impl CoreOutput for () {
        fn merge(_: Vec<()>) {}
    }

    /// The lowest-numbered core's `Err`, else core 0's `Ok`.
    impl<T, E> CoreOutput for Result<T, E> {
        fn merge(outputs: Vec<Self>) -> Self {
            let mut first = None;
            for out in outputs {
                let v = out?;
                first.get_or_insert(v);
            }
            Ok(first.expect("a runtime has at least one core"))
        }
    }

    /// Turns `Runtime::run_on_every_core`'s result into the function's return value; a
    /// failed core becomes a panic that carries its message.
    pub fn merge_core_outputs<R: CoreOutput>(out: Result<Vec<R>, CoreError>) -> R {
        match out {
            Ok(outputs) => R::merge(outputs),
            Err(err) => panic!("percore: {err}"),
        }
    }
}
