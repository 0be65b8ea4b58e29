//! A forked child shares its parent's io_uring (the rings are shared
//! memory): a runtime it inherited must refuse to run there, clearly, and
//! dropping it there must leave the parent's ring alone.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::future::Future as _;

use percore::op::{Nop, Op};
use percore::{Builder, Runtime};

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Waits (bounded) for child `pid` and returns its exit code; kills it and
/// fails if it does not end within 10 s.
fn wait_child(pid: libc::pid_t) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local int.
        let res = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(res >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if res == pid {
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            return libc::WEXITSTATUS(status);
        }
        if Instant::now() > deadline {
            // SAFETY: `pid` is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child hung (it must fail at once)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Ends the child without running the parent's exit handlers or the test
/// harness.
fn exit_child(code: i32) -> ! {
    // SAFETY: _exit(2) ends this (child) process at once.
    unsafe { libc::_exit(code) }
}

/// In the child: `block_on` of the inherited runtime must panic naming the
/// fork, and dropping the runtime must not panic (nor touch the ring).
fn child_uses_inherited_runtime(rt: Runtime) -> i32 {
    let res = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { Op::new(Nop).await.unwrap() })
    }));
    let Err(payload) = res else {
        return 10;
    };
    if !panic_text(payload).contains("forked child") {
        return 11;
    }
    if catch_unwind(AssertUnwindSafe(move || drop(rt))).is_err() {
        return 12;
    }
    0
}

/// In the child, forked inside a task: the next op must panic naming the fork.
fn child_forked_inside_a_task() -> i32 {
    let res = catch_unwind(|| {
        let mut op = Op::new(Nop);
        let waker = std::task::Waker::noop();
        let _ = std::pin::Pin::new(&mut op).poll(&mut std::task::Context::from_waker(waker));
        std::mem::forget(op);
    });
    let Err(payload) = res else {
        return 20;
    };
    if !panic_text(payload).contains("forked child") {
        return 21;
    }
    0
}

/// Issue 12, bug 12: a forked child that touched an inherited runtime
/// shared its rings with the parent. Both ways in (the child calls
/// `block_on`, or forks inside a task and submits an op) must fail at once
/// with a message naming the fork, and the parent's runtime runs on.
#[test]
fn a_runtime_inherited_by_a_forked_child_refuses_to_run_there() {
    let rt = Builder::new().build().unwrap();
    rt.block_on(async { Op::new(Nop).await.unwrap() });

    // 1. Forked outside the runtime; the child calls block_on, then drops it.
    // SAFETY: the child only runs the checks below and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        exit_child(child_uses_inherited_runtime(rt));
    }
    assert_eq!(wait_child(pid), 0, "child of case 1 failed (see exit code)");

    // 2. Forked inside a task: the child goes on in the task, submits an
    //    op (it must panic), then yields to the loop (whose next enter must
    //    refuse, so block_on panics), then drops the runtime.
    static IN_CHILD: AtomicBool = AtomicBool::new(false);
    let res = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            Op::new(Nop).await.unwrap();
            // SAFETY: as above.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                IN_CHILD.store(true, Ordering::SeqCst);
                let code = child_forked_inside_a_task();
                if code != 0 {
                    exit_child(code);
                }
                percore::yield_now().await;
                exit_child(30);
            }
            wait_child(pid)
        })
    }));
    if IN_CHILD.load(Ordering::SeqCst) {
        let code = match res {
            Err(payload) => match panic_text(payload).contains("forked child") {
                true => 0,
                false => 31,
            },
            Ok(_) => 32,
        };
        if code == 0 && catch_unwind(AssertUnwindSafe(move || drop(rt))).is_err() {
            exit_child(33);
        }
        exit_child(code);
    }
    let code = res.expect("the parent's block_on");
    assert_eq!(code, 0, "child of case 2 failed (see exit code)");

    // 3. The parent's runtime is untouched.
    for _ in 0..3 {
        rt.block_on(async { Op::new(Nop).await.unwrap() });
    }
    drop(rt);
}
