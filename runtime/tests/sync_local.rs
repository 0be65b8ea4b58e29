//! `percore::sync`: each primitive's behaviour, the semaphore's first-in
//! first-out order, and cancel-safety (a dropped `acquire`, `lock`,
//! `notified`, `send` or `recv` loses no permit, wake-up or message).
//!
//! The cancel tests poll futures by hand with counting wakers, so every
//! step of the ordering is explicit; the rest run on a percore runtime.

use std::cell::RefCell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use percore::sync::{Mutex, Notify, RwLock, Semaphore, TryAcquireError, mpsc, oneshot};
use percore::task::spawn_local;

/// A waker that counts its wake-ups.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

fn woken(c: &Count) -> usize {
    c.0.load(Ordering::SeqCst)
}

fn poll<F: Future>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Lets every other ready task run a few turns.
async fn settle() {
    for _ in 0..8 {
        percore::yield_now().await;
    }
}

// ---- Mutex -------------------------------------------------------------

#[test]
fn mutex_holders_do_not_overlap_across_awaits() {
    percore::run(async {
        let m = Rc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let m = m.clone();
            tasks.push(spawn_local(async move {
                let mut g = m.lock().await;
                g.push((i, "in"));
                percore::yield_now().await;
                g.push((i, "out"));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = m.lock().await;
        for pair in log.chunks(2) {
            assert_eq!(pair[0].0, pair[1].0, "another holder got in: {log:?}");
        }
        // First in, first out.
        let order: Vec<_> = log.iter().step_by(2).map(|e| e.0).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    });
}

#[test]
fn mutex_try_lock_fails_while_held_and_get_mut_needs_no_lock() {
    let mut m = Mutex::new(1);
    {
        let g = m.try_lock().unwrap();
        assert!(m.try_lock().is_err());
        drop(g);
    }
    *m.try_lock().unwrap() += 1;
    *m.get_mut() += 1;
    assert_eq!(m.into_inner(), 3);
}

#[test]
fn a_dropped_lock_future_passes_the_lock_on() {
    let m = Mutex::new(0);
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let guard = m.try_lock().unwrap();
    let mut a = Box::pin(m.lock());
    let mut b = pin!(m.lock());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    // 1. Unlock: the lock is passed to `a`, the first in line.
    drop(guard);
    assert_eq!((woken(&ca), woken(&cb)), (1, 0));
    // 2. `a` is dropped (a timeout) before it runs: the wake-up goes to `b`.
    drop(a);
    assert_eq!(woken(&cb), 1, "the wake-up was lost with `a`");
    // 3. `b` gets the lock.
    let Poll::Ready(mut g) = poll(b.as_mut(), &wb) else {
        panic!("`b` should hold the lock");
    };
    *g += 1;
    drop(g);
    assert_eq!(*m.try_lock().unwrap(), 1);
}

// ---- RwLock ------------------------------------------------------------

#[test]
fn rwlock_readers_share_and_a_writer_excludes() {
    let lock = RwLock::new(1);
    let r1 = lock.try_read().unwrap();
    let r2 = lock.try_read().unwrap();
    assert_eq!(*r1 + *r2, 2);
    assert!(lock.try_write().is_err());
    drop((r1, r2));
    let mut w = lock.try_write().unwrap();
    *w = 5;
    assert!(lock.try_read().is_err());
    drop(w);
    assert_eq!(*lock.try_read().unwrap(), 5);
}

#[test]
fn rwlock_a_waiting_writer_stops_later_readers() {
    let lock = RwLock::new(0);
    let (cw, ww) = counter();
    let (cr, wr) = counter();
    let r = lock.try_read().unwrap();
    let mut writer = pin!(lock.write());
    assert!(poll(writer.as_mut(), &ww).is_pending());
    // A reader arriving now queues behind the writer.
    let mut reader = pin!(lock.read());
    assert!(poll(reader.as_mut(), &wr).is_pending());
    assert!(lock.try_read().is_err());
    drop(r);
    assert_eq!((woken(&cw), woken(&cr)), (1, 0));
    let Poll::Ready(mut w) = poll(writer.as_mut(), &ww) else {
        panic!("the writer should have the lock");
    };
    *w = 7;
    drop(w);
    assert_eq!(woken(&cr), 1);
    let Poll::Ready(g) = poll(reader.as_mut(), &wr) else {
        panic!("the reader should go after the writer");
    };
    assert_eq!(*g, 7);
}

#[test]
fn a_queued_reader_polled_out_of_turn_does_not_pass_a_waiting_writer() {
    let lock = RwLock::new(0);
    let (_cw, ww) = counter();
    let (cr, wr) = counter();
    let r = lock.try_read().unwrap();
    let mut writer = pin!(lock.write());
    assert!(poll(writer.as_mut(), &ww).is_pending());
    let mut reader = pin!(lock.read());
    assert!(poll(reader.as_mut(), &wr).is_pending());
    // Polled again without a wake-up (as a `select!` branch is): read
    // permits are free, but the writer is ahead.
    assert_eq!(woken(&cr), 0);
    assert!(
        poll(reader.as_mut(), &wr).is_pending(),
        "the reader passed the writer"
    );
    drop(r);
    assert!(poll(writer.as_mut(), &ww).is_ready());
}

#[test]
fn rwlock_on_a_runtime() {
    percore::run(async {
        let lock = Rc::new(RwLock::new(Vec::new()));
        let l = lock.clone();
        let w = spawn_local(async move {
            for i in 0..3 {
                l.write().await.push(i);
                percore::yield_now().await;
            }
        });
        let mut seen = 0;
        while seen < 3 {
            seen = lock.read().await.len();
            percore::yield_now().await;
        }
        w.await.unwrap();
        assert_eq!(*lock.read().await, [0, 1, 2]);
    });
}

// ---- Semaphore ---------------------------------------------------------

#[test]
fn semaphore_permits_come_back_on_drop_and_forget_keeps_them() {
    let sem = Semaphore::new(3);
    let one = sem.try_acquire().unwrap();
    let two = sem.try_acquire_many(2).unwrap();
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::NoPermits));
    drop(two);
    assert_eq!(sem.available_permits(), 2);
    one.forget();
    drop(sem.try_acquire_many(2).unwrap());
    assert_eq!(sem.available_permits(), 2);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_close_fails_waiting_and_later_acquires() {
    let sem = Semaphore::new(0);
    let (c, w) = counter();
    let mut a = pin!(sem.acquire());
    assert!(poll(a.as_mut(), &w).is_pending());
    sem.close();
    assert_eq!(woken(&c), 1);
    assert!(matches!(poll(a.as_mut(), &w), Poll::Ready(Err(_))));
    assert_eq!(sem.try_acquire().err(), Some(TryAcquireError::Closed));
}

#[test]
fn semaphore_bounds_concurrency_on_a_runtime() {
    percore::run(async {
        let sem = Rc::new(Semaphore::new(2));
        let inside = Rc::new(RefCell::new((0usize, 0usize))); // (now, most)
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (sem, inside) = (sem.clone(), inside.clone());
            tasks.push(spawn_local(async move {
                let _p = sem.acquire().await.unwrap();
                {
                    let mut i = inside.borrow_mut();
                    i.0 += 1;
                    i.1 = i.1.max(i.0);
                }
                settle().await;
                inside.borrow_mut().0 -= 1;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*inside.borrow(), (0, 2));
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn semaphore_is_first_in_first_out() {
    percore::run(async {
        let sem = Rc::new(Semaphore::new(0));
        let order = Rc::new(RefCell::new(Vec::new()));
        // `big` asks first for 2; the singles behind it must not overtake
        // it although single permits come free first.
        let mut tasks = Vec::new();
        for (name, n) in [("big", 2), ("s1", 1), ("s2", 1), ("s3", 1)] {
            let (sem, order) = (sem.clone(), order.clone());
            tasks.push(spawn_local(async move {
                sem.acquire_many(n).await.unwrap().forget();
                order.borrow_mut().push(name);
            }));
            settle().await; // queued in this order
        }
        sem.add_permits(1);
        settle().await;
        assert!(
            order.borrow().is_empty(),
            "a single overtook `big`: {:?}",
            order.borrow()
        );
        // A newcomer does not barge past the queue either.
        assert!(sem.try_acquire().is_err());
        sem.add_permits(1);
        settle().await;
        assert_eq!(*order.borrow(), ["big"]);
        for _ in 0..3 {
            sem.add_permits(1);
            settle().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.borrow(), ["big", "s1", "s2", "s3"]);
    });
}

#[test]
fn a_dropped_woken_acquire_hands_its_permit_on() {
    let sem = Semaphore::new(0);
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let mut a = Box::pin(sem.acquire());
    let mut b = pin!(sem.acquire());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    sem.add_permits(1);
    assert_eq!((woken(&ca), woken(&cb)), (1, 0));
    drop(a); // woken, never took the permit
    assert_eq!(woken(&cb), 1, "the wake-up was lost");
    assert_eq!(sem.available_permits(), 1, "the permit was lost");
    let Poll::Ready(Ok(p)) = poll(b.as_mut(), &wb) else {
        panic!("`b` should have the permit");
    };
    drop(p);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn a_dropped_front_waiter_unblocks_the_ones_behind_it() {
    let sem = Semaphore::new(1);
    let (_ca, wa) = counter();
    let (cb, wb) = counter();
    let mut big = Box::pin(sem.acquire_many(2));
    let mut small = pin!(sem.acquire());
    assert!(poll(big.as_mut(), &wa).is_pending());
    // `small` could have the free permit but queues behind `big`.
    assert!(poll(small.as_mut(), &wb).is_pending());
    drop(big); // gives up, never woken
    assert_eq!(woken(&cb), 1, "`small` sleeps with a permit free");
    assert!(matches!(poll(small.as_mut(), &wb), Poll::Ready(Ok(_))));
}

#[test]
fn an_acquire_dropped_before_it_is_woken_takes_nothing() {
    let sem = Semaphore::new(0);
    let (_c, w) = counter();
    let mut a = Box::pin(sem.acquire_many(3));
    assert!(poll(a.as_mut(), &w).is_pending());
    drop(a);
    sem.add_permits(3);
    assert_eq!(sem.available_permits(), 3);
    assert!(
        sem.try_acquire_many(3).is_ok(),
        "the dropped waiter still blocks the queue"
    );
}

// ---- Notify ------------------------------------------------------------

#[test]
fn notify_one_stores_one_permit() {
    let notify = Notify::new();
    let (_c, w) = counter();
    notify.notify_one();
    notify.notify_one();
    let mut first = pin!(notify.notified());
    assert!(poll(first.as_mut(), &w).is_ready());
    let mut second = pin!(notify.notified());
    assert!(
        poll(second.as_mut(), &w).is_pending(),
        "two calls stored two permits"
    );
}

#[test]
fn notify_one_wakes_waiters_first_in_first_out() {
    let notify = Notify::new();
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let mut a = pin!(notify.notified());
    let mut b = pin!(notify.notified());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    notify.notify_one();
    notify.notify_one();
    assert_eq!((woken(&ca), woken(&cb)), (1, 1));
    assert!(poll(a.as_mut(), &wa).is_ready());
    assert!(poll(b.as_mut(), &wb).is_ready());
    // Both were used by waiters: nothing stored.
    let mut c = pin!(notify.notified());
    assert!(poll(c.as_mut(), &wa).is_pending());
}

/// Steps: `a` then `b` wait; `notify_one` wakes `a`; `b` is polled for
/// another reason (a `select!` branch) before `a` runs and must not take
/// `a`'s notification; `a` takes it.
#[test]
fn a_queued_notified_polled_out_of_turn_does_not_take_the_front_waiters_notification() {
    let notify = Notify::new();
    let (ca, wa) = counter();
    let (_cb, wb) = counter();
    let mut a = pin!(notify.notified());
    let mut b = pin!(notify.notified());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    notify.notify_one();
    assert_eq!(woken(&ca), 1);
    assert!(poll(b.as_mut(), &wb).is_pending(), "`b` overtook `a`");
    assert!(poll(a.as_mut(), &wa).is_ready());
    assert!(poll(b.as_mut(), &wb).is_pending());
}

/// Steps: `a` and `b` wait; `notify_one` wakes `a`; `notify_waiters` wakes
/// `b`; `b` completes first, then `a`. One notification was sent and used
/// by `a`: nothing may be left stored.
#[test]
fn notify_waiters_after_notify_one_stores_nothing_extra() {
    let notify = Notify::new();
    let (_ca, wa) = counter();
    let (_cb, wb) = counter();
    let mut a = pin!(notify.notified());
    let mut b = pin!(notify.notified());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    notify.notify_one();
    notify.notify_waiters();
    assert!(poll(b.as_mut(), &wb).is_ready());
    assert!(poll(a.as_mut(), &wa).is_ready());
    let mut later = pin!(notify.notified());
    assert!(
        poll(later.as_mut(), &wa).is_pending(),
        "a notification was stored twice"
    );
}

#[test]
fn notify_waiters_wakes_futures_created_before_it_only() {
    let notify = Notify::new();
    let (ca, wa) = counter();
    let (_cb, wb) = counter();
    let mut polled = pin!(notify.notified());
    assert!(poll(polled.as_mut(), &wa).is_pending());
    let mut unpolled = pin!(notify.notified());
    notify.notify_waiters();
    assert_eq!(woken(&ca), 1);
    assert!(poll(polled.as_mut(), &wa).is_ready());
    assert!(poll(unpolled.as_mut(), &wb).is_ready());
    let mut later = pin!(notify.notified());
    assert!(
        poll(later.as_mut(), &wb).is_pending(),
        "notify_waiters stored a permit"
    );
}

#[test]
fn a_dropped_notified_passes_its_notification_on() {
    let notify = Notify::new();
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    let mut a = Box::pin(notify.notified());
    let mut b = pin!(notify.notified());
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    notify.notify_one();
    assert_eq!((woken(&ca), woken(&cb)), (1, 0));
    drop(a);
    assert_eq!(woken(&cb), 1, "the notification was lost with `a`");
    assert!(poll(b.as_mut(), &wb).is_ready());
}

#[test]
fn a_dropped_notified_with_nobody_behind_stores_the_notification() {
    let notify = Notify::new();
    let (_c, w) = counter();
    let mut a = Box::pin(notify.notified());
    assert!(poll(a.as_mut(), &w).is_pending());
    notify.notify_one();
    drop(a);
    let mut b = pin!(notify.notified());
    assert!(poll(b.as_mut(), &w).is_ready(), "the notification was lost");
}

#[test]
fn notify_round_trip_between_two_tasks() {
    percore::run(async {
        let ping = Rc::new(Notify::new());
        let pong = Rc::new(Notify::new());
        let (p, q) = (ping.clone(), pong.clone());
        let other = spawn_local(async move {
            for _ in 0..100 {
                p.notified().await;
                q.notify_one();
            }
        });
        for _ in 0..100 {
            ping.notify_one();
            pong.notified().await;
        }
        other.await.unwrap();
    });
}

// ---- oneshot -----------------------------------------------------------

#[test]
fn oneshot_delivers_the_value_across_tasks() {
    percore::run(async {
        let (tx, rx) = oneshot::channel();
        spawn_local(async move {
            percore::yield_now().await;
            tx.send(String::from("done")).unwrap();
        });
        assert_eq!(rx.await.unwrap(), "done");
    });
}

#[test]
fn oneshot_a_dropped_sender_is_an_error_and_wakes_the_receiver() {
    let (tx, rx) = oneshot::channel::<u32>();
    let (c, w) = counter();
    let mut rx = pin!(rx);
    assert!(poll(rx.as_mut(), &w).is_pending());
    drop(tx);
    assert_eq!(woken(&c), 1);
    assert!(matches!(poll(rx.as_mut(), &w), Poll::Ready(Err(_))));
}

#[test]
fn oneshot_send_to_a_dropped_receiver_returns_the_value() {
    percore::run(async {
        let (mut tx, rx) = oneshot::channel::<u32>();
        assert!(!tx.is_closed());
        drop(rx);
        tx.closed().await;
        assert_eq!(tx.send(9), Err(9));
    });
}

// ---- mpsc --------------------------------------------------------------

#[test]
fn mpsc_bounded_send_waits_for_room() {
    percore::run(async {
        let (tx, mut rx) = mpsc::channel(2);
        let producer = spawn_local(async move {
            for i in 0..10 {
                tx.send(i).await.unwrap();
                assert!(tx.max_capacity() - tx.capacity() <= 2);
            }
        });
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            assert!(rx.len() <= 2);
            got.push(i);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn mpsc_try_send_reports_full_and_closed() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(mpsc::error::TrySendError::Full(2)));
    assert_eq!(rx.try_recv(), Ok(1));
    rx.close();
    assert_eq!(tx.try_send(3), Err(mpsc::error::TrySendError::Closed(3)));
}

#[test]
fn mpsc_closes_when_every_sender_is_dropped() {
    percore::run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let tx2 = tx.clone();
        tx.send(1).await.unwrap();
        drop(tx);
        let waiter = spawn_local(async move {
            let first = rx.recv().await;
            let second = rx.recv().await; // waits until `tx2` goes
            (first, second, rx.try_recv())
        });
        settle().await;
        drop(tx2);
        let (first, second, after) = waiter.await.unwrap();
        assert_eq!((first, second), (Some(1), None));
        assert_eq!(after, Err(mpsc::error::TryRecvError::Disconnected));
    });
}

#[test]
fn mpsc_a_dropped_receiver_fails_waiting_senders() {
    let (tx, rx) = mpsc::channel(1);
    let (c, w) = counter();
    tx.try_send(1).unwrap();
    let mut send = pin!(tx.send(2));
    assert!(poll(send.as_mut(), &w).is_pending());
    drop(rx);
    assert_eq!(woken(&c), 1);
    let Poll::Ready(Err(e)) = poll(send.as_mut(), &w) else {
        panic!("the send should fail");
    };
    assert_eq!(e.0, 2);
}

#[test]
fn mpsc_a_dropped_woken_send_hands_the_room_on() {
    let (tx, mut rx) = mpsc::channel(1);
    let (ca, wa) = counter();
    let (cb, wb) = counter();
    tx.try_send(0).unwrap();
    let mut a = Box::pin(tx.send(1));
    let mut b = pin!(tx.send(2));
    assert!(poll(a.as_mut(), &wa).is_pending());
    assert!(poll(b.as_mut(), &wb).is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // room for one
    assert_eq!((woken(&ca), woken(&cb)), (1, 0));
    drop(a);
    assert_eq!(woken(&cb), 1, "the room was lost with `a`");
    assert!(matches!(poll(b.as_mut(), &wb), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn mpsc_a_dropped_recv_loses_no_message() {
    let (tx, mut rx) = mpsc::channel(4);
    let (_c, w) = counter();
    {
        let mut recv = pin!(rx.recv());
        assert!(poll(recv.as_mut(), &w).is_pending());
    } // dropped while waiting
    tx.try_send(5).unwrap();
    let mut recv = pin!(rx.recv());
    assert_eq!(poll(recv.as_mut(), &w), Poll::Ready(Some(5)));
}

#[test]
fn mpsc_unbounded_never_waits_and_closes_with_its_senders() {
    percore::run(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 1000);
        drop(tx);
        let mut n = 0;
        while let Some(i) = rx.recv().await {
            assert_eq!(i, n);
            n += 1;
        }
        assert_eq!(n, 1000);
    });
}
