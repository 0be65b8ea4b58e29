//! A panic stays in its task; a panic in the main future leaves `run`.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use percore::JoinError;

#[percore::test]
async fn panicking_task_becomes_join_error_with_message() {
    let h = percore::spawn(async { panic!("boom {}", 42) });
    let err = h.await.unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert_eq!(err.panic_message(), Some("boom 42"));
    assert_eq!(err.to_string(), "task panicked: boom 42");

    let h = percore::spawn(async { panic!("static str") });
    assert_eq!(h.await.unwrap_err().panic_message(), Some("static str"));

    // A non-string payload keeps no message.
    let h = percore::spawn(async { std::panic::panic_any(17u32) });
    let err = h.await.unwrap_err();
    assert!(matches!(err, JoinError::Panic(None)));
    assert_eq!(err.to_string(), "task panicked");
}

#[percore::test]
async fn other_tasks_keep_running_after_a_panic() {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let counter = percore::spawn(async move {
        for _ in 0..10 {
            percore::time::sleep(Duration::from_millis(1)).await;
            t.set(t.get() + 1);
        }
    });
    let bad = percore::spawn(async {
        percore::time::sleep(Duration::from_millis(2)).await;
        panic!("mid-flight");
    });
    assert!(bad.await.unwrap_err().is_panic());
    counter.await.unwrap();
    assert_eq!(ticks.get(), 10);
    // The core still spawns and runs new tasks.
    assert_eq!(percore::spawn(async { 3 }).await.unwrap(), 3);
}

#[percore::test]
async fn join_error_converts_to_io_error() {
    let err = percore::spawn(async { panic!("disk on fire") })
        .await
        .unwrap_err();
    let io_err: io::Error = err.into();
    assert_eq!(io_err.kind(), io::ErrorKind::Other);
    assert!(io_err.to_string().contains("disk on fire"));
}

#[test]
fn panic_in_main_future_propagates_out_of_run() {
    let res = std::panic::catch_unwind(|| {
        percore::run(async {
            percore::time::sleep(Duration::from_millis(1)).await;
            panic!("main went wrong");
        })
    });
    let payload = res.unwrap_err();
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .unwrap_or_else(|| payload.downcast_ref::<String>().unwrap());
    assert_eq!(msg, "main went wrong");
    // The thread is clean afterwards: a new runtime works.
    assert_eq!(percore::run(async { 1 }), 1);
}

#[test]
fn panic_in_main_with_tasks_and_io_in_flight() {
    let res = std::panic::catch_unwind(|| {
        percore::run(async {
            for _ in 0..10 {
                drop(percore::spawn(percore::time::sleep(Duration::from_secs(
                    60,
                ))));
            }
            let (r, _w) = std::io::pipe().unwrap();
            let fd = percore::fd::SharedFd::new(r.into());
            let read =
                percore::op::Read::new(fd, Vec::with_capacity(64), percore::op::CURRENT_POSITION);
            drop(percore::spawn(percore::op::Op::new(read)));
            percore::yield_now().await;
            percore::yield_now().await;
            panic!("main with work pending");
        })
    });
    assert!(res.is_err());
    assert_eq!(percore::run(async { 2 }), 2);
}
