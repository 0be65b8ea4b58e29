//! Cross-core wake-ups reach a parked core at once, whatever the waking
//! core does next.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use percore::Runtime;
use percore::channel::channel;

/// Issue 12, bug 10: a MSG_RING wake-up was queued on the waking core's SQ
/// and waited for that core's next `io_uring_enter`; a core that woke
/// another and then blocked its thread (or computed) stalled the other for
/// as long. The receiving core must run the woken task while the sender
/// still blocks: the sender's thread blocks until the receiver says so
/// (through a std channel, which no ring carries), and gives up after 10 s.
#[test]
fn a_core_that_wakes_another_and_then_blocks_does_not_stall_it() {
    for minimal in [false, true] {
        let (tx, rx) = channel::<Instant>(4);
        let rx = Arc::new(Mutex::new(Some(rx)));
        let tx = Arc::new(Mutex::new(Some(tx)));
        let (ran_tx, ran_rx) = std::sync::mpsc::channel::<()>();
        let ran_tx = Mutex::new(Some(ran_tx));
        let ran_rx = Mutex::new(Some(ran_rx));
        let out = Runtime::builder()
            .cores(2)
            .minimal_features(minimal)
            .spin_before_park(Duration::ZERO)
            .build()
            .unwrap()
            .run_on_every_core(move |core| {
                let rx = if core == 1 {
                    rx.lock().unwrap().take()
                } else {
                    None
                };
                let tx = if core == 0 {
                    tx.lock().unwrap().take()
                } else {
                    None
                };
                let ran_tx = if core == 1 {
                    ran_tx.lock().unwrap().take()
                } else {
                    None
                };
                let ran_rx = if core == 0 {
                    ran_rx.lock().unwrap().take()
                } else {
                    None
                };
                async move {
                    if core == 0 {
                        let tx = tx.expect("core 0 sends");
                        // Let core 1 park in io_uring_enter.
                        percore::time::sleep(Duration::from_millis(50)).await;
                        tx.send(Instant::now()).await.unwrap();
                        // Block this core's thread right after the wake-up,
                        // until core 1 ran the woken task.
                        let ran = ran_rx
                            .expect("core 0 waits")
                            .recv_timeout(Duration::from_secs(10));
                        Some(ran.is_ok())
                    } else {
                        let mut rx = rx.expect("core 1 receives");
                        rx.recv().await.unwrap();
                        ran_tx.expect("core 1 says it ran").send(()).unwrap();
                        None
                    }
                }
            })
            .unwrap();
        assert_eq!(
            out[0],
            Some(true),
            "minimal={minimal}: core 1 did not run the woken task within 10 s \
             while core 0's thread blocked after the send"
        );
    }
}
