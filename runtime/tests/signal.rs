//! percore::signal: deliveries reach every listener on every core, a
//! listener sees only what came after it was made, a cancelled wait loses
//! nothing, and signals that cannot be caught (or are blocked) are refused.
//!
//! Each test uses a signal of its own: handlers are process-wide and the
//! tests run in parallel.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use percore::signal::unix::{Signal, SignalKind, signal};

fn raise(signum: libc::c_int) {
    // SAFETY: kill(2) takes no pointers; every test listens for the signal
    // it sends before sending it, so the handler takes it.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signum) }, 0);
}

/// Awaits `fut`, failing if 10 s pass first. The deadline is checked before
/// `fut` is polled, so a wait that only the timer's wake-up ends fails too.
async fn within_10s<F: std::future::Future>(fut: F, what: &str) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut deadline = std::pin::pin!(percore::time::sleep(Duration::from_secs(10)));
    std::future::poll_fn(|cx| {
        if deadline.as_mut().poll(cx).is_ready() {
            panic!("{what}");
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Waits for the next delivery, counting in `waiting` once the wait is
/// armed (its first poll returned `Pending`); panics if none comes in 10 s.
async fn recv_counted(s: &mut Signal, waiting: &AtomicUsize) {
    let mut first = true;
    let wait = std::future::poll_fn(|cx| {
        let r = s.poll_recv(cx);
        if first && r.is_pending() {
            waiting.fetch_add(1, Ordering::SeqCst);
        }
        first = false;
        r
    });
    within_10s(wait, "no delivery reached the waiting listener").await;
}

/// Sends `signum` from another thread once `waiting` reaches `n`.
fn raise_when_waiting(
    signum: libc::c_int,
    waiting: Arc<AtomicUsize>,
    n: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let give_up = std::time::Instant::now() + Duration::from_secs(20);
        while waiting.load(Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < give_up,
                "the listeners never waited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        raise(signum);
    })
}

#[test]
fn a_listener_receives_each_delivery_it_waits_for() {
    percore::run(async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        for _ in 0..3 {
            let waiting = Arc::new(AtomicUsize::new(0));
            let sender = raise_when_waiting(libc::SIGUSR1, waiting.clone(), 1);
            recv_counted(&mut usr1, &waiting).await;
            sender.join().unwrap();
        }
    });
}

#[test]
fn a_listener_made_after_a_delivery_does_not_see_it() {
    percore::run(async {
        let mut first = signal(SignalKind::user_defined2()).unwrap();
        raise(libc::SIGUSR2);
        first.recv().await.unwrap();
        let mut later = signal(SignalKind::user_defined2()).unwrap();
        let waited = percore::time::timeout(Duration::from_millis(50), later.recv()).await;
        assert!(
            waited.is_err(),
            "a listener saw a signal sent before it existed"
        );
    });
}

#[test]
fn every_core_waiting_for_a_signal_is_woken_by_one_delivery() {
    let waiting = Arc::new(AtomicUsize::new(0));
    let sender = raise_when_waiting(libc::SIGWINCH, waiting.clone(), 2);
    let woken = percore::Runtime::builder()
        .cores(2)
        .build()
        .unwrap()
        .run_on_every_core(move |_core| {
            let waiting = waiting.clone();
            async move {
                let mut winch = signal(SignalKind::window_change()).unwrap();
                recv_counted(&mut winch, &waiting).await;
                true
            }
        })
        .unwrap();
    sender.join().unwrap();
    assert_eq!(woken, [true, true]);
}

#[test]
fn a_cancelled_wait_loses_no_delivery_for_the_next_listener() {
    let sigrt = libc::SIGRTMIN() + 1;
    percore::run(async move {
        for _ in 0..20 {
            // A listener whose wait is cancelled, then dropped: its poll of
            // the pool's eventfd may still be in flight when the next
            // listener takes the same eventfd.
            let mut gone = signal(SignalKind::from_raw(sigrt)).unwrap();
            let waited = percore::time::timeout(Duration::from_millis(1), gone.recv()).await;
            assert!(waited.is_err());
            drop(gone);
            let mut next = signal(SignalKind::from_raw(sigrt)).unwrap();
            let waiting = Arc::new(AtomicUsize::new(0));
            let sender = raise_when_waiting(sigrt, waiting.clone(), 1);
            recv_counted(&mut next, &waiting).await;
            sender.join().unwrap();
        }
    });
}

#[test]
fn several_listeners_on_one_core_each_see_the_delivery() {
    let sigrt = libc::SIGRTMIN() + 2;
    percore::run(async move {
        let waiting = Arc::new(AtomicUsize::new(0));
        let listeners: Vec<_> = (0..3)
            .map(|_| {
                let waiting = waiting.clone();
                let mut s = signal(SignalKind::from_raw(sigrt)).unwrap();
                percore::spawn(async move { recv_counted(&mut s, &waiting).await })
            })
            .collect();
        let sender = raise_when_waiting(sigrt, waiting, 3);
        for l in percore::join_all(listeners).await {
            l.unwrap();
        }
        sender.join().unwrap();
    });
}

#[test]
fn signals_that_cannot_be_caught_are_refused() {
    percore::run(async {
        for signum in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 65, -1] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidInput,
                "signal {signum}: {err}"
            );
        }
    });
}

#[test]
fn a_signal_blocked_in_this_thread_is_refused_with_the_reason() {
    let sigrt = libc::SIGRTMIN() + 3;
    std::thread::spawn(move || {
        // SAFETY: a zeroed sigset_t is valid storage that sigemptyset
        // initializes; the mask changes only this new thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sigrt);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        percore::run(async move {
            let err = signal(SignalKind::from_raw(sigrt)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("blocked"), "{err}");
        });
    })
    .join()
    .unwrap();
}

#[test]
fn ctrl_c_completes_on_sigint() {
    percore::run(async {
        let waiting = Arc::new(AtomicUsize::new(0));
        let w = waiting.clone();
        let ctrl_c = percore::spawn(async move {
            let mut fut = std::pin::pin!(percore::signal::ctrl_c());
            let mut first = true;
            std::future::poll_fn(|cx| {
                let r = fut.as_mut().poll(cx);
                if first && r.is_pending() {
                    w.fetch_add(1, Ordering::SeqCst);
                }
                first = false;
                r
            })
            .await
        });
        let sender = raise_when_waiting(libc::SIGINT, waiting, 1);
        within_10s(ctrl_c, "SIGINT did not complete ctrl_c")
            .await
            .unwrap()
            .unwrap();
        sender.join().unwrap();
    });
}

#[test]
fn poll_recv_is_pending_until_a_delivery() {
    let sigrt = libc::SIGRTMIN() + 4;
    percore::run(async move {
        let mut s = signal(SignalKind::from_raw(sigrt)).unwrap();
        let mut polled = 0;
        let wait = std::future::poll_fn(|cx| {
            polled += 1;
            match s.poll_recv(cx) {
                Poll::Pending if polled == 1 => {
                    raise(sigrt);
                    Poll::Pending
                }
                other => other,
            }
        });
        within_10s(wait, "the delivery did not wake the pending listener").await;
        assert!(polled >= 2);
    });
}
