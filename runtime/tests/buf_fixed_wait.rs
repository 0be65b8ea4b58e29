//! `FixedBufPool::get` waiters: a cancelled `get` (timeout, select, drop)
//! leaves nothing in the queue, and hands on a wake-up it did not use.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use percore::buf::{FixedBuf, FixedBufPool};
use support::{CountingWaker, poll_with};

type Get<'a> = Pin<Box<dyn Future<Output = FixedBuf> + 'a>>;

fn pool_of_one() -> Option<FixedBufPool> {
    match FixedBufPool::new(1, 4096) {
        Ok(pool) => Some(pool),
        Err(err) => {
            // Registered buffers need 5.19 and locked memory.
            eprintln!("skipped: {err}");
            None
        }
    }
}

/// Three `get`s wait; the middle one is dropped. Before the fix its waker
/// stayed queued: the second returned buffer woke that dead entry, and the
/// third `get` slept on with a buffer free.
#[percore::test]
async fn fixed_pool_get_cancelled_in_the_middle_does_not_swallow_a_wake_up() {
    let Some(pool) = pool_of_one() else { return };
    let held = pool.try_get().unwrap();
    let (counts, wakers): (Vec<_>, Vec<_>) = (0..3).map(|_| CountingWaker::new()).unzip();
    let mut gets: Vec<Option<Get<'_>>> = (0..3)
        .map(|_| Some(Box::pin(pool.get()) as Get<'_>))
        .collect();
    for (get, waker) in gets.iter_mut().zip(&wakers) {
        assert!(poll_with(get.as_mut().unwrap(), waker).is_pending());
    }
    gets[1] = None; // cancelled in the middle of the queue

    drop(held);
    assert_eq!(counts[0].count(), 1, "the first waiter is woken");
    let Poll::Ready(buf) = poll_with(gets[0].as_mut().unwrap(), &wakers[0]) else {
        panic!("woken with a buffer free, yet still pending");
    };
    drop(buf);
    assert_eq!(
        counts[2].count(),
        1,
        "the buffer went back while the third get waited, and nobody woke it"
    );
    assert!(poll_with(gets[2].as_mut().unwrap(), &wakers[2]).is_ready());
    assert_eq!(counts[1].count(), 0);
}

/// A `get` that was woken, then dropped before it took the buffer (its
/// timeout fired in the same tick), hands the wake-up to the next `get`.
#[percore::test]
async fn fixed_pool_get_woken_then_cancelled_hands_the_wake_up_on() {
    let Some(pool) = pool_of_one() else { return };
    let held = pool.try_get().unwrap();
    let (counts, wakers): (Vec<_>, Vec<_>) = (0..2).map(|_| CountingWaker::new()).unzip();
    let mut first: Get<'_> = Box::pin(pool.get());
    let mut second: Get<'_> = Box::pin(pool.get());
    assert!(poll_with(&mut first, &wakers[0]).is_pending());
    assert!(poll_with(&mut second, &wakers[1]).is_pending());
    drop(held);
    assert_eq!(counts[0].count(), 1);
    drop(first); // woken, never took the buffer
    assert_eq!(
        counts[1].count(),
        1,
        "the wake-up was lost with the dropped get"
    );
    assert!(poll_with(&mut second, &wakers[1]).is_ready());
}

/// The same through the public API: `get`s under a timeout that fires, and
/// one live `get` behind them, which must get the buffer.
#[percore::test]
async fn fixed_pool_gets_that_time_out_leave_the_live_one_served() {
    let Some(pool) = pool_of_one() else { return };
    let held = pool.try_get().unwrap();
    let timed: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            percore::spawn(async move {
                percore::time::timeout(Duration::from_millis(1), pool.get())
                    .await
                    .is_ok()
            })
        })
        .collect();
    let live = percore::spawn({
        let pool = pool.clone();
        async move { pool.get().await.capacity() }
    });
    for t in timed {
        assert!(!t.await.unwrap(), "no buffer was free");
    }
    drop(held);
    let got = percore::time::timeout(Duration::from_secs(10), live).await;
    assert_eq!(
        got.map(|r| r.unwrap()),
        Ok(4096),
        "the live get was never woken"
    );
}
