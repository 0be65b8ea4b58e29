//! Cross-core wake-ups reach a parked core at once, whatever the waking
//! core does next.

use std::sync::Mutex;
use std::time::Duration;

use percore::Runtime;
use percore::channel::channel;

/// What `slot` holds, taken by the one core it is for.
fn take<T>(slot: &Mutex<Option<T>>) -> T {
    slot.lock().unwrap().take().expect("taken once")
}

/// Issue 12, bug 10: a MSG_RING wake-up was queued on the waking core's SQ
/// and waited for that core's next `io_uring_enter`; a core that woke
/// another and then blocked its thread (or computed) stalled the other for
/// as long. The receiving core must run the woken task while the sender
/// still blocks: the sender's thread blocks until the receiver says so
/// (through a std channel, which no ring carries), and gives up after 10 s.
#[test]
fn a_core_that_wakes_another_and_then_blocks_does_not_stall_it() {
    for minimal in [false, true] {
        // Each core's ends: core 0 sends and waits; core 1 receives and
        // says so.
        let (tx, rx) = channel::<()>(4);
        let (ran_tx, ran_rx) = std::sync::mpsc::channel::<()>();
        let sender = Mutex::new(Some((tx, ran_rx)));
        let receiver = Mutex::new(Some((rx, ran_tx)));
        let out = Runtime::builder()
            .cores(2)
            .minimal_features(minimal)
            .spin_before_park(Duration::ZERO)
            .build()
            .unwrap()
            .run_on_every_core(move |core| {
                let sender = (core == 0).then(|| take(&sender));
                let receiver = (core == 1).then(|| take(&receiver));
                async move {
                    if let Some((tx, ran_rx)) = sender {
                        // Let core 1 park in io_uring_enter.
                        percore::time::sleep(Duration::from_millis(50)).await;
                        tx.send(()).await.unwrap();
                        // Block this core's thread right after the wake-up,
                        // until core 1 ran the woken task.
                        Some(ran_rx.recv_timeout(Duration::from_secs(10)).is_ok())
                    } else {
                        let (mut rx, ran_tx) = receiver.expect("core 1 receives");
                        rx.recv().await.unwrap();
                        // Core 0 may have given up waiting: its assertion fails.
                        let _ = ran_tx.send(());
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
