//! Thread-per-core: `Runtime::run_on_every_core` on several cores, `spawn_on`, a failing core.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use percore::Runtime;

fn two_cores() -> Runtime {
    Runtime::builder().cores(2).build().expect("runtime")
}

#[test]
fn every_core_runs_its_future_in_order() {
    let out = two_cores()
        .run_on_every_core(|core| async move {
            percore::time::sleep(Duration::from_millis(1)).await;
            (core, percore::core_id(), percore::cores())
        })
        .unwrap();
    assert_eq!(out, [(0, 0, 2), (1, 1, 2)]);
}

#[test]
fn spawn_on_round_trips_between_cores() {
    let out = two_cores()
        .run_on_every_core(|core| async move {
            let other = 1 - core;
            let mut sum = 0;
            for i in 0..1000 {
                sum += percore::spawn_on(other, move || async move {
                    // Runs on `other`, with !Send state allowed there.
                    let here = std::rc::Rc::new(percore::core_id());
                    *here * 1_000_000 + i
                })
                .await
                .unwrap();
            }
            sum
        })
        .unwrap();
    let expect = |other: usize| (0..1000).map(|i| other * 1_000_000 + i).sum::<usize>();
    assert_eq!(out, [expect(1), expect(0)]);
}

#[test]
fn a_panic_on_the_target_core_reaches_the_caller() {
    let out = two_cores()
        .run_on_every_core(|core| async move {
            if core == 0 {
                let err = percore::spawn_on(1, || async { panic!("remote boom") })
                    .await
                    .unwrap_err();
                err.panic_message().map(str::to_owned)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(out[0].as_deref(), Some("remote boom"));
}

#[test]
fn a_panicking_core_stops_the_others_and_is_named() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let d = dropped.clone();
    let err = two_cores()
        .run_on_every_core(move |core| {
            let d = d.clone();
            async move {
                if core == 1 {
                    percore::time::sleep(Duration::from_millis(5)).await;
                    panic!("core one gives up");
                }
                // Core 0 would wait forever; it must be stopped and its future dropped.
                let _g = Guard(d);
                percore::time::sleep(Duration::from_secs(3600)).await;
            }
        })
        .unwrap_err();
    assert_eq!(err.core, 1);
    assert!(err.message.contains("core one gives up"), "{err}");
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

/// Core 1 sits parked in io_uring_enter between requests: every spawn_on
/// must wake it (a lost wake-up hangs this test; the watchdog fails it).
fn idle_core_wakes_for_every_request(builder: percore::Builder) {
    let watchdog = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        eprintln!("watchdog: cross-core wake-up lost");
        std::process::exit(1);
    });
    let out = builder
        .cores(2)
        .build()
        .expect("runtime")
        .run_on_every_core(|core| async move {
            if core != 0 {
                return 0;
            }
            let mut n = 0;
            for _ in 0..20_000 {
                n += percore::spawn_on(1, || async { 1 }).await.unwrap();
            }
            n
        })
        .unwrap();
    assert_eq!(out[0], 20_000);
    drop(watchdog);
}

#[test]
fn idle_cores_wake_for_remote_work_without_loss() {
    // Through IORING_OP_MSG_RING where the kernel has it.
    idle_core_wakes_for_every_request(Runtime::builder());
}

#[test]
fn idle_cores_wake_through_the_eventfd_without_msg_ring() {
    // The fallback for kernels without MSG_RING.
    idle_core_wakes_for_every_request(Runtime::builder().minimal_features(true));
}

#[test]
fn ping_pong_between_idle_cores_loses_no_wake_up() {
    // Each message wakes the other core, which is parked waiting for it.
    const ROUNDS: u64 = 20_000;
    let (to_one, from_zero) = percore::channel::channel::<u64>(1);
    let (to_zero, from_one) = percore::channel::channel::<u64>(1);
    let ends = std::sync::Mutex::new(vec![Some((to_one, from_one)), Some((to_zero, from_zero))]);
    let out = two_cores()
        .run_on_every_core(move |core| {
            let (tx, mut rx) = ends.lock().unwrap()[core].take().expect("one end per core");
            async move {
                let mut last = 0;
                if core == 0 {
                    tx.send(0).await.unwrap();
                }
                while let Some(v) = rx.recv().await {
                    last = v;
                    if v + 1 >= ROUNDS {
                        let _ = tx.send(v + 1).await;
                        break;
                    }
                    tx.send(v + 1).await.unwrap();
                }
                last
            }
        })
        .unwrap();
    // The counter went all the way up, one core receiving the last value
    // and the other the one before it.
    let mut last = out.clone();
    last.sort();
    assert_eq!(last, [ROUNDS - 1, ROUNDS], "{out:?}");
}

#[test]
fn a_million_messages_cross_cores_in_order() {
    const N: u64 = 1_000_000;
    let (tx, rx) = percore::channel::channel::<u64>(1024);
    let tx = std::sync::Mutex::new(Some(tx));
    let rx = std::sync::Mutex::new(Some(rx));
    let out = two_cores()
        .run_on_every_core(move |core| {
            // Core 0 produces, core 1 consumes.
            let tx = if core == 0 {
                tx.lock().unwrap().take()
            } else {
                None
            };
            let rx = if core == 1 {
                rx.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if core == 0 {
                    let tx = tx.expect("sender for core 0");
                    for i in 0..N {
                        tx.send(i).await.unwrap();
                    }
                    N
                } else {
                    let mut rx = rx.expect("receiver for core 1");
                    let mut next = 0;
                    while let Some(v) = rx.recv().await {
                        assert_eq!(v, next, "message out of order or lost");
                        next += 1;
                    }
                    next
                }
            }
        })
        .unwrap();
    assert_eq!(out, [N, N]);
}

#[test]
fn a_mesh_connects_every_core_to_every_other() {
    const PER_PEER: u64 = 10_000;
    let mesh = Arc::new(percore::channel::Mesh::<u64>::new(2, 64));
    let out = two_cores()
        .run_on_every_core(move |core| {
            let mesh = mesh.clone();
            async move {
                let mut port = mesh.join();
                let other = 1 - core;
                // Send to the other core while receiving from it, so a full
                // inbox on either side cannot deadlock the pair.
                let tx = port.sender();
                let sender = percore::spawn(async move {
                    for i in 0..PER_PEER {
                        tx.send_to(other, i).await.unwrap();
                    }
                });
                let mut next = 0;
                while next < PER_PEER {
                    let (from, v) = port.recv().await.unwrap();
                    assert_eq!((from, v), (other, next), "lost or out of order");
                    next += 1;
                }
                sender.await.unwrap();
                // And a broadcast reaches the other core once.
                port.broadcast(u64::MAX).await.unwrap();
                let (from, v) = port.recv().await.unwrap();
                assert_eq!((from, v), (other, u64::MAX));
                next
            }
        })
        .unwrap();
    assert_eq!(out, [PER_PEER, PER_PEER]);
}

#[test]
fn many_senders_waiting_on_a_full_channel_lose_nothing() {
    const SENDERS: u64 = 8;
    const EACH: u64 = 20_000;
    let (tx, rx) = percore::channel::channel::<u64>(2);
    let tx = std::sync::Mutex::new(Some(tx));
    let rx = std::sync::Mutex::new(Some(rx));
    let out = two_cores()
        .run_on_every_core(move |core| {
            let tx = if core == 1 {
                tx.lock().unwrap().take()
            } else {
                None
            };
            let rx = if core == 0 {
                rx.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if let Some(tx) = tx {
                    // Eight tasks share the two slots: most of them wait.
                    let tasks: Vec<_> = (0..SENDERS)
                        .map(|s| {
                            let tx = tx.clone();
                            percore::spawn(async move {
                                for i in 0..EACH {
                                    tx.send(s * EACH + i).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    percore::join_all(tasks).await;
                    0
                } else {
                    let mut rx = rx.expect("core 0 receives");
                    let mut sum = 0;
                    while let Some(v) = rx.recv().await {
                        sum += v;
                    }
                    sum
                }
            }
        })
        .unwrap();
    let n = SENDERS * EACH;
    assert_eq!(out[0], n * (n - 1) / 2, "a message was lost or doubled");
}

#[percore::test]
async fn a_send_that_finished_leaves_no_entry_to_swallow_a_wake_up() {
    use std::future::Future;
    use std::task::Poll;
    // Sender A is polled twice while the channel is full (two entries in
    // the waiting list), then woken and done; sender B waits behind it.
    // The next receive must wake B, not A's leftover entry.
    let (tx, mut rx) = percore::channel::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let mut a = Box::pin(tx.send(1));
    for _ in 0..2 {
        std::future::poll_fn(|cx| {
            assert!(a.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
    }
    let b = {
        let tx = tx.clone();
        percore::spawn(async move { tx.send(2).await.unwrap() })
    };
    percore::yield_now().await; // B registers
    assert_eq!(rx.recv().await, Some(0));
    a.await.unwrap();
    assert_eq!(rx.recv().await, Some(1));
    let last = percore::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
    assert_eq!(last, Ok(Some(2)), "the waiting sender was never woken");
    b.await.unwrap();
}

/// Three sends wait on a full channel; the middle one is dropped (its
/// `select` or timeout went the other way), and the first is woken but
/// dropped before it sends. Each received message must still reach a live
/// sender: the third is woken for the second message's room.
#[percore::test]
async fn a_send_cancelled_in_the_middle_does_not_swallow_a_wake_up() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    type Send<'a> =
        Pin<Box<dyn Future<Output = Result<(), percore::channel::SendError<u32>>> + 'a>>;

    let (tx, rx) = percore::channel::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let counts: Vec<_> = (0..3)
        .map(|_| Arc::new(Count(AtomicUsize::new(0))))
        .collect();
    let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
    let woken = |i: usize| counts[i].0.load(Ordering::SeqCst);
    let mut sends: Vec<Option<Send<'_>>> = (1..=3)
        .map(|v| Some(Box::pin(tx.send(v)) as Send<'_>))
        .collect();
    for (s, w) in sends.iter_mut().zip(&wakers) {
        let poll = s
            .as_mut()
            .unwrap()
            .as_mut()
            .poll(&mut Context::from_waker(w));
        assert!(poll.is_pending(), "the channel is full");
    }
    sends[1] = None; // cancelled in the middle of the queue

    assert_eq!(rx.try_recv(), Some(0));
    assert_eq!(
        (woken(0), woken(1), woken(2)),
        (1, 0, 0),
        "the first sender is woken"
    );
    sends[0] = None; // woken, but dropped before it sent
    assert_eq!(woken(2), 1, "the dropped sender handed its wake-up on");
    let mut last = sends[2].take().unwrap();
    let poll = last.as_mut().poll(&mut Context::from_waker(&wakers[2]));
    assert_eq!(poll, Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Some(3));
}
