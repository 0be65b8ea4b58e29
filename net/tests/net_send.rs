//! `CoreBound`: a `!Send` future or value made `Send`, usable on the thread
//! that made it and panicking (never touching the value) on any other.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use percore_net::{CoreBound, UnixStream};

fn assert_send_sync<T: Send + Sync>(t: T) -> T {
    t
}

/// The panic message of a joined thread.
fn panic_message(res: std::thread::Result<()>) -> String {
    let payload = res.expect_err("the thread should have panicked");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// `!Send` (an `Rc`), and says whether it was dropped.
struct Tracked {
    _local: Rc<()>,
    dropped: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn tracked() -> (Tracked, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let t = Tracked {
        _local: Rc::new(()),
        dropped: dropped.clone(),
    };
    (t, dropped)
}

#[test]
fn a_percore_io_future_runs_on_its_own_core() {
    let got = percore::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let shared = Rc::new(b);
        let reader = shared.clone();
        // A future holding an `Rc` and a percore socket: `!Send` until
        // wrapped, then accepted where `Send` is required.
        let fut = assert_send_sync(CoreBound::new(async move {
            let (res, buf) = reader.read_exact(Vec::with_capacity(5)).await;
            res.unwrap();
            buf
        }));
        let task = percore::spawn(fut);
        a.write_all(&b"hello"[..]).await.0.unwrap();
        let buf = task.await.unwrap();
        drop(shared);
        buf
    });
    assert_eq!(got, b"hello");
}

#[test]
fn deref_clone_and_into_inner_work_on_the_same_thread() {
    let mut bound = CoreBound::new(Rc::new(String::from("x")));
    assert!(bound.is_local());
    Rc::make_mut(&mut bound).push('y');
    let copy = bound.clone();
    assert_eq!(copy.as_str(), "xy");
    assert_eq!(Rc::strong_count(&bound), 2);
    drop(copy);
    assert_eq!(*bound.into_inner(), "xy");
    assert_eq!(
        format!("{:?}", CoreBound::new(7)),
        "CoreBound(7)",
        "Debug shows the value on its thread"
    );
}

#[test]
fn dropped_on_its_own_thread_drops_the_value() {
    let (t, dropped) = tracked();
    drop(CoreBound::new(t));
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn polled_on_another_thread_panics() {
    let (t, dropped) = tracked();
    let fut = CoreBound::new(async move {
        let _t = t;
        1
    });
    let child = std::thread::spawn(move || {
        let mut fut = pin!(fut);
        let _ = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    });
    let msg = panic_message(child.join());
    assert!(
        msg.contains("CoreBound polled on thread") && msg.contains("not on the core thread"),
        "{msg}"
    );
    // The future, dropped there while unwinding, was leaked, not dropped.
    assert!(!dropped.load(Ordering::SeqCst));
}

#[test]
fn dereferenced_on_another_thread_panics() {
    let bound = CoreBound::new(Rc::new(5));
    let child = std::thread::spawn(move || {
        let bound = bound;
        assert!(!bound.is_local());
        assert_eq!(format!("{bound:?}"), "CoreBound(<on another thread>)");
        let _n = **bound;
    });
    let msg = panic_message(child.join());
    assert!(msg.contains("CoreBound dereferenced on thread"), "{msg}");
}

#[test]
fn dropped_on_another_thread_panics_and_leaks_the_value() {
    let (t, dropped) = tracked();
    let bound = CoreBound::new(t);
    let child = std::thread::spawn(move || drop(bound));
    let msg = panic_message(child.join());
    assert!(msg.contains("dropped (its value is leaked)"), "{msg}");
    assert!(
        !dropped.load(Ordering::SeqCst),
        "its destructor must not run there"
    );
}

#[test]
fn dropped_on_another_thread_while_panicking_does_not_panic_twice() {
    let (t, dropped) = tracked();
    let bound = CoreBound::new(t);
    // A second panic during unwinding would abort the whole test binary.
    let child = std::thread::spawn(move || {
        let _bound = bound;
        panic!("first panic");
    });
    assert_eq!(panic_message(child.join()), "first panic");
    assert!(!dropped.load(Ordering::SeqCst));
}

#[test]
fn a_value_without_drop_glue_drops_anywhere() {
    let bound = CoreBound::new(&42u8);
    std::thread::spawn(move || drop(bound)).join().unwrap();
}

#[test]
fn polling_works_again_after_a_round_trip_through_another_thread() {
    let fut = CoreBound::new(async { Rc::new(3) });
    // Moving it away and back without using it is fine.
    let fut = std::thread::spawn(move || fut).join().unwrap();
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(rc) => assert_eq!(*rc, 3),
        Poll::Pending => panic!("an async block without awaits is ready at once"),
    }
}
