//! Parking in `io_uring_enter`: what a park leaves behind in the kernel.
//!
//! These check the io_uring driver itself, so they ask for it by name
//! (the rest of the suite runs on whichever driver `PERCORE_DRIVER` picks).

use std::time::Duration;

use percore::op::{Nop, Op};
use percore::{Builder, DriverKind};

/// Park timeouts (`IORING_OP_TIMEOUT`) queued and not yet completed.
fn park_timeouts_pending() -> u64 {
    let ops = percore::stats().driver.ops;
    let code = io_uring::opcode::Timeout::CODE;
    ops.submitted(code) - ops.completed(code)
}

/// Issue 12, bug 11: without `IORING_FEAT_EXT_ARG` every park with a
/// deadline pushed an `IORING_OP_TIMEOUT` that nothing removed when the park
/// ended for another reason; with a far timer they piled up in the kernel,
/// one per park.
#[test]
fn park_timeouts_without_ext_arg_do_not_pile_up() {
    let rt = Builder::new()
        .driver(DriverKind::IoUring)
        .minimal_features(true)
        .build()
        .unwrap();
    assert!(!rt.capabilities().ext_arg);
    rt.block_on(async {
        // A far timer gives every park a deadline.
        let _far = percore::spawn(percore::time::sleep(Duration::from_secs(600)));
        percore::yield_now().await;
        let parks = percore::stats().driver.parks;
        // Each nop ends one park long before its deadline.
        for _ in 0..50 {
            Op::new(Nop).await.unwrap();
        }
        let stats = percore::stats();
        assert!(stats.driver.parks >= parks + 50, "{stats}");
        // At most the latest park's timeout, and one on its way out.
        assert!(park_timeouts_pending() <= 2, "{stats}");
    });
}
