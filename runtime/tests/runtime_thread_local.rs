//! A runtime kept in a `thread_local!` is dropped while the thread's locals
//! are destroyed, possibly after percore's own. Its own binary: that drop
//! leaks the ring on purpose, which the fd-leak checks of other tests would
//! see.

#[test]
fn a_runtime_kept_in_a_thread_local_drops_with_the_thread() {
    // Its drop may run after the runtime's own thread-locals are gone; it
    // must neither panic nor free a buffer the kernel still owns.
    std::thread::spawn(|| {
        thread_local! {
            static RT: std::cell::RefCell<Option<percore::Runtime>> =
                const { std::cell::RefCell::new(None) };
        }
        RT.with(|rt| {
            let runtime = percore::Runtime::new().unwrap();
            runtime.block_on(async {
                // A read left in flight when the thread ends.
                let (rd, _wr) = std::io::pipe().unwrap();
                let fd = percore::fd::SharedFd::new(rd.into());
                percore::spawn(async move {
                    let buf = Vec::with_capacity(8);
                    let _ = percore::op::Op::new(percore::op::Read::new(
                        fd,
                        buf,
                        percore::op::CURRENT_POSITION,
                    ))
                    .await;
                });
                percore::yield_now().await;
            });
            *rt.borrow_mut() = Some(runtime);
        });
    })
    .join()
    .expect("the thread ended without a panic");
}

/// This binary leaks a runtime on purpose (see the module docs): tell
/// LeakSanitizer, when `scripts/asan.sh` runs it, not to report that. The
/// sanitizer runtime looks this symbol up; without a sanitizer it is unused.
#[unsafe(no_mangle)]
pub extern "C" fn __lsan_is_turned_off() -> std::os::raw::c_int {
    1
}
