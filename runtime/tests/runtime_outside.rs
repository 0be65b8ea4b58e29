//! Calls that need a runtime say so when there is none, and say something
//! else when there is one that cannot serve them.

use std::panic::{AssertUnwindSafe, catch_unwind};

fn panic_text(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn stats_outside_a_runtime_panics_with_a_hint() {
    let text = panic_text(|| {
        percore::stats();
    });
    assert!(text.contains("outside a runtime"), "{text}");
    assert!(text.contains("percore::run"), "no hint: {text}");
}

#[test]
fn try_stats_is_none_outside_and_some_inside() {
    assert!(percore::try_stats().is_none());
    let spawned = percore::run(async {
        percore::spawn(async {}).await.unwrap();
        percore::try_stats().unwrap().executor.spawned
    });
    assert_eq!(spawned, 1);
}

#[test]
fn spawn_on_outside_a_runtime_says_no_runtime_runs() {
    let text = panic_text(|| {
        drop(percore::spawn_on(1, || async {}));
    });
    assert!(text.contains("outside a runtime"), "{text}");
    assert!(
        !text.contains("core(s)"),
        "it should not talk of a runtime's cores: {text}"
    );
}

#[test]
fn spawn_on_a_missing_core_says_how_many_there_are() {
    let text = percore::run(async {
        let h = percore::spawn(async {
            drop(percore::spawn_on(1, || async {}));
        });
        h.await.unwrap_err().panic_message().unwrap().to_string()
    });
    assert!(text.contains("this runtime has 1 core(s)"), "{text}");
}
