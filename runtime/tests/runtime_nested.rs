//! A runtime started from inside a running one is refused with a clear
//! panic, instead of silently blocking the outer core.

use std::panic::{AssertUnwindSafe, catch_unwind};

use percore::Runtime;

const MESSAGE: &str = "called from inside a running runtime";

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
#[should_panic(
    expected = "percore::run (or Runtime::block_on) called from inside a running runtime"
)]
fn run_inside_run_panics() {
    percore::run(async {
        percore::run(async {});
    });
}

#[test]
fn block_on_of_another_runtime_inside_block_on_panics() {
    let outer = Runtime::new().unwrap();
    let inner = Runtime::new().unwrap();
    let res = catch_unwind(AssertUnwindSafe(|| {
        outer.block_on(async { inner.block_on(async { 1 }) })
    }));
    let text = panic_text(res.unwrap_err());
    assert!(text.contains(MESSAGE), "{text}");
    assert!(
        text.contains("spawn the future"),
        "the hint is missing: {text}"
    );
    // Both runtimes still work afterwards: the guard was reset by the unwind.
    assert_eq!(outer.block_on(async { 2 }), 2);
    assert_eq!(inner.block_on(async { 3 }), 3);
}

#[test]
fn run_inside_a_task_fails_that_task_only() {
    let out = percore::run(async {
        let nested = percore::spawn(async { percore::run(async { 1 }) });
        let err = nested.await.unwrap_err();
        let msg = err.panic_message().unwrap_or_default().to_string();
        // The core keeps running its other tasks.
        let other = percore::spawn(async { 5 }).await.unwrap();
        (msg, other)
    });
    assert!(out.0.contains(MESSAGE), "{}", out.0);
    assert_eq!(out.1, 5);
}

#[test]
fn runs_one_after_another_are_fine() {
    assert_eq!(percore::run(async { 1 }), 1);
    assert_eq!(percore::run(async { 2 }), 2);
}

#[test]
fn a_blocking_thread_may_run_its_own_runtime() {
    let out = percore::run(async {
        percore::spawn_blocking(|| {
            percore::run(async { percore::spawn(async { 7 }).await.unwrap() })
        })
        .await
        .unwrap()
    });
    assert_eq!(out, 7);
}

#[test]
fn multi_core_run_inside_a_runtime_panics_before_starting_cores() {
    let text = percore::run(async {
        let h = percore::spawn(async {
            let rt = Runtime::builder().cores(2).build().unwrap();
            rt.run_on_every_core(|_core| async {}).map(|_| ())
        });
        h.await
            .unwrap_err()
            .panic_message()
            .unwrap_or_default()
            .to_string()
    });
    assert!(text.contains(MESSAGE), "{text}");
}
