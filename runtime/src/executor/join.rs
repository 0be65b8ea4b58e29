//! Small join and select helpers, like asyncio's `gather` and `wait(FIRST_COMPLETED)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Awaits every future and returns their outputs in order, like asyncio's `gather`.
///
/// All futures run concurrently on the current task; to run them as separate
/// tasks, pass the [`JoinHandle`](crate::JoinHandle)s of spawned tasks.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let handles: Vec<_> = (0..3u64)
///         .map(|i| percore::spawn(async move {
///             percore::time::sleep(Duration::from_millis(3 - i)).await;
///             i
///         }))
///         .collect();
///     let results = percore::join_all(handles).await;
///     let values: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
///     assert_eq!(values, [0, 1, 2]);
/// });
/// ```
pub async fn join_all<I>(futures: I) -> Vec<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    let mut futs: Vec<Pin<Box<I::Item>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<<I::Item as Future>::Output>> = futs.iter().map(|_| None).collect();
    // Each future gets a waker that records its index, so a wake-up re-polls
    // only the futures that asked for it: gathering n tasks costs O(n), not
    // O(n) per wake-up.
    let ready = Arc::new(ReadyList {
        woken: Mutex::new((0..futs.len()).collect()),
        parent: Mutex::new(None),
    });
    let wakers: Vec<Waker> = (0..futs.len())
        .map(|index| {
            Waker::from(Arc::new(IndexWaker {
                index,
                ready: ready.clone(),
            }))
        })
        .collect();
    let mut remaining = futs.len();
    std::future::poll_fn(|cx| {
        *ready.parent.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        loop {
            let woken = std::mem::take(&mut *ready.woken.lock().unwrap_or_else(|e| e.into_inner()));
            if woken.is_empty() {
                break;
            }
            for i in woken {
                if outputs[i].is_some() {
                    continue;
                }
                let mut child_cx = Context::from_waker(&wakers[i]);
                if let Poll::Ready(v) = futs[i].as_mut().poll(&mut child_cx) {
                    outputs[i] = Some(v);
                    remaining -= 1;
                }
            }
        }
        if remaining == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every output present"))
        .collect()
}

/// Indexes of the [`join_all`] futures woken since the last poll.
struct ReadyList {
    woken: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct IndexWaker {
    index: usize,
    ready: Arc<ReadyList>,
}

impl Wake for IndexWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready
            .woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.index);
        let parent = self
            .ready
            .parent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(w) = parent {
            w.wake();
        }
    }
}

/// The output of [`select`]: which of two futures finished first.
///
/// # Examples
///
/// ```
/// use percore::Either;
/// use std::time::Duration;
///
/// percore::run(async {
///     let quick = async { 1 };
///     let slow = percore::time::sleep(Duration::from_secs(60));
///     match percore::select(quick, slow).await {
///         Either::Left(n) => assert_eq!(n, 1),
///         Either::Right(()) => unreachable!("the sleep lost"),
///     }
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// Races two futures and returns the output of the first to finish; the other
/// is dropped (its in-flight I/O is cancelled safely). On a tie the first wins.
///
/// # Examples
///
/// ```
/// use percore::Either;
/// use std::time::Duration;
///
/// percore::run(async {
///     let fast = percore::time::sleep(Duration::from_millis(1));
///     let slow = percore::time::sleep(Duration::from_secs(10));
///     assert!(matches!(percore::select(fast, slow).await, Either::Left(())));
/// });
/// ```
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Races any number of futures of one type; returns the index and output of
/// the first to finish, and drops the rest.
///
/// # Panics
///
/// If `futures` is empty.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let sleeps = [30u64, 1, 20].map(|ms| async move {
///         percore::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     });
///     assert_eq!(percore::race(sleeps).await, (1, 1));
/// });
/// ```
pub async fn race<I>(futures: I) -> (usize, <I::Item as Future>::Output)
where
    I: IntoIterator,
    I::Item: Future,
{
    let mut futs: Vec<Pin<Box<I::Item>>> = futures.into_iter().map(Box::pin).collect();
    assert!(!futs.is_empty(), "race needs at least one future");
    std::future::poll_fn(|cx: &mut Context<'_>| {
        for (i, fut) in futs.iter_mut().enumerate() {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready((i, v));
            }
        }
        Poll::Pending
    })
    .await
}
