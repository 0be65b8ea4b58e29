//! Abandoned opens close what the kernel opened: no descriptor leaks. Alone
//! in its test binary, so no other test opens files meanwhile.

mod support;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use percore::fs::File;
use support::fs::TempPath;
use support::open_fds;

#[test]
fn dropped_opens_do_not_leak_descriptors() {
    let tmp = TempPath::new("leak");
    std::fs::write(tmp.path(), b"x").unwrap();
    percore::run(async {
        // Warm up lazily-opened descriptors (the blocking pool, caches).
        let warm = File::open(tmp.path()).await.unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&warm);
        drop(warm);
        support::assert_closed_soon(fd, tmp.path()).await;
        let before = open_fds();
        for _ in 0..200 {
            let mut fut = pin!(File::open(tmp.path()));
            let mut once = Some(fut.as_mut());
            let pending =
                poll_fn(|cx| Poll::Ready(once.take().unwrap().poll(cx).is_pending())).await;
            assert!(pending, "the open is in flight");
        }
        // Let every open complete and its orphaned descriptor close.
        support::wait_until(Duration::from_secs(10), || {
            percore::stats().in_flight == 0 && open_fds() <= before
        })
        .await;
        assert_eq!(percore::stats().in_flight, 0);
        assert_eq!(open_fds(), before, "abandoned opens leaked descriptors");

        // And 200 completed opens whose files are dropped.
        for _ in 0..200 {
            let f = File::open(tmp.path()).await.unwrap();
            let (n, _) = f.read_at(Vec::with_capacity(4), 0).await;
            assert_eq!(n.unwrap(), 1);
        }
        support::wait_until(Duration::from_secs(10), || open_fds() <= before).await;
        assert_eq!(open_fds(), before, "dropped files leaked descriptors");
    });
}
