//! Waking tasks from other threads: no lost wake-up, even while the core is
//! parked in `io_uring_enter`.

mod support;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::watchdog;

/// A one-slot-per-message channel: the sender stores a value and wakes the
/// receiver's waker, if any.
#[derive(Default)]
struct Chan {
    inner: Mutex<ChanState>,
}

#[derive(Default)]
struct ChanState {
    queue: VecDeque<u64>,
    waker: Option<Waker>,
}

impl Chan {
    fn send(&self, v: u64) {
        let waker = {
            let mut st = self.inner.lock().unwrap();
            st.queue.push_back(v);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn recv(self: &Arc<Self>) -> Recv {
        Recv(self.clone())
    }
}

struct Recv(Arc<Chan>);

impl Future for Recv {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut st = self.0.inner.lock().unwrap();
        match st.queue.pop_front() {
            Some(v) => Poll::Ready(v),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

const ROUNDS: u64 = 100_000;

/// Ping-pong: the other thread sends the next value only after the task
/// acknowledged the previous one, so every single wake-up must arrive.
fn ping_pong(in_task: bool) {
    let chan = Arc::new(Chan::default());
    let (ack_tx, ack_rx) = mpsc::channel::<u64>();
    let c = chan.clone();
    let producer = std::thread::spawn(move || {
        for i in 1..=ROUNDS {
            c.send(i);
            assert_eq!(ack_rx.recv().unwrap(), i);
        }
    });
    let consume = async move {
        for i in 1..=ROUNDS {
            assert_eq!(chan.recv().await, i);
            ack_tx.send(i).unwrap();
        }
    };
    let remote_wakes = percore::run(async move {
        if in_task {
            percore::spawn(consume).await.unwrap();
        } else {
            consume.await;
        }
        percore::stats().executor.remote_wakes
    });
    producer.join().unwrap();
    if in_task {
        assert!(remote_wakes > 0, "wakes went through the remote queue");
    }
}

#[test]
fn hundred_thousand_wakes_of_a_task_from_another_thread() {
    let _dog = watchdog("wakes_of_a_task", Duration::from_secs(120));
    ping_pong(true);
}

#[test]
fn hundred_thousand_wakes_of_the_main_future_from_another_thread() {
    let _dog = watchdog("wakes_of_main", Duration::from_secs(120));
    ping_pong(false);
}

#[test]
fn burst_of_wakes_from_four_threads() {
    const PER_THREAD: u64 = 25_000;
    let _dog = watchdog("burst_of_wakes", Duration::from_secs(120));
    let chan = Arc::new(Chan::default());
    let producers: Vec<_> = (0..4u64)
        .map(|t| {
            let c = chan.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    c.send(t * PER_THREAD + i);
                    if i % 1000 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let sum = percore::run(async move {
        let mut seen = vec![false; 4 * PER_THREAD as usize];
        let mut sum = 0u64;
        for _ in 0..4 * PER_THREAD {
            let v = chan.recv().await;
            assert!(!std::mem::replace(&mut seen[v as usize], true), "{v} twice");
            sum += v;
        }
        sum
    });
    for p in producers {
        p.join().unwrap();
    }
    let n = 4 * PER_THREAD;
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn wake_while_parked_with_a_far_timer() {
    // The core parks with a 60 s timeout (a pending timer); a remote wake
    // must end the park long before that.
    let _dog = watchdog("wake_while_parked", Duration::from_secs(30));
    let chan = Arc::new(Chan::default());
    let c = chan.clone();
    let t = std::thread::spawn(move || {
        for i in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            c.send(i);
        }
    });
    percore::run(async move {
        let _far = percore::spawn(percore::time::sleep(Duration::from_secs(60)));
        for i in 0..50 {
            assert_eq!(chan.recv().await, i);
        }
    });
    t.join().unwrap();
}
