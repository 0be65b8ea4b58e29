//! Registered buffers and files: round trips, pool life time, exhaustion,
//! and the memlock error.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use percore::buf::{FixedBufPool, IoBuf};
use percore::fs::OpenOptions;
use support::fs::{TempPath, pattern};

#[test]
fn fixed_buffers_and_registered_file_round_trip() {
    let tmp = TempPath::new("fixed");
    percore::run(async {
        let pool = FixedBufPool::new(4, 4096).unwrap();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(tmp.path())
            .await
            .unwrap();
        for registered in [false, true] {
            if registered {
                file.register().unwrap();
            }
            let data = pattern(4096, registered as u8);
            let mut buf = pool.get().await;
            buf.extend_from_slice(&data);
            let (n, buf) = file.write_fixed_at(buf, 8192).await;
            assert_eq!(n.unwrap(), 4096);
            drop(buf);
            let (n, buf) = file.read_fixed_at(pool.get().await, 8192).await;
            assert_eq!(n.unwrap(), 4096);
            assert_eq!(&buf[..], &data[..], "registered file: {registered}");
        }
        // Short read at EOF into a fixed buffer.
        let (n, buf) = file.read_fixed_at(pool.get().await, 8192 + 4000).await;
        assert_eq!(n.unwrap(), 96);
        assert_eq!(buf.len(), 96);
    });
}

#[test]
fn many_small_fixed_reads_in_flight() {
    let tmp = TempPath::new("fixed-many");
    let data = pattern(256 * 4096, 4);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let pool = FixedBufPool::new(32, 4096).unwrap();
        let mut file = OpenOptions::new()
            .read(true)
            .open(tmp.path())
            .await
            .unwrap();
        file.register().unwrap();
        let file = std::rc::Rc::new(file);
        let handles: Vec<_> = (0..256usize)
            .map(|i| {
                let (file, pool) = (file.clone(), pool.clone());
                percore::spawn(async move {
                    // 256 tasks share 32 buffers: most wait for one.
                    let (res, buf) = file
                        .read_fixed_at(pool.get().await, (i * 4096) as u64)
                        .await;
                    assert_eq!(res.unwrap(), 4096);
                    buf.to_vec()
                })
            })
            .collect();
        for (i, got) in percore::join_all(handles).await.into_iter().enumerate() {
            assert_eq!(got.unwrap(), &data[i * 4096..(i + 1) * 4096], "block {i}");
        }
        assert_eq!(pool.available(), 32, "every buffer went back");
    });
}

#[test]
fn pool_stays_registered_while_a_buffer_is_in_flight() {
    let tmp = TempPath::new("fixed-life");
    let data = pattern(1 << 20, 8);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .direct(true)
            .open(tmp.path())
            .await
            .unwrap();
        let pool = FixedBufPool::new(1, 1 << 20).unwrap();
        let buf = pool.get().await;
        drop(pool); // only the buffer holds the pool now
        let (n, buf) = file.read_fixed_at(buf, 0).await;
        assert_eq!(n.unwrap(), 1 << 20);
        assert_eq!(&buf[..], &data[..]);
        drop(buf);
        // The table entry is free again: 64 new pools fit (the table size).
        let pools: Vec<_> = (0..percore::buf::BUF_TABLE_SLOTS)
            .map(|_| FixedBufPool::new(1, 4096).unwrap())
            .collect();
        let err = FixedBufPool::new(1, 4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy, "{err}");
        drop(pools);
        FixedBufPool::new(1, 4096).unwrap();
    });
}

#[percore::test]
async fn get_waits_for_a_returned_buffer() {
    let pool = FixedBufPool::new(1, 4096).unwrap();
    let held = pool.get().await;
    assert!(pool.try_get().is_none());
    let waiter = percore::spawn({
        let pool = pool.clone();
        async move { pool.get().await.capacity() }
    });
    percore::time::sleep(Duration::from_millis(5)).await;
    assert!(!waiter.is_finished(), "no buffer is free yet");
    drop(held);
    assert_eq!(waiter.await.unwrap(), 4096);
}

#[test]
fn a_pool_over_the_memlock_limit_says_so() {
    // Root has CAP_IPC_LOCK, which exempts registered buffers from
    // RLIMIT_MEMLOCK. Drop it from this thread only, before its ring exists.
    std::thread::spawn(|| {
        support::fs::drop_ipc_lock();
        // Registered buffers are locked memory only on the io_uring driver
        // (on epoll they are plain memory, and no limit applies).
        let rt = percore::Runtime::builder()
            .driver(percore::DriverKind::IoUring)
            .build()
            .unwrap();
        rt.block_on(async {
            let caps = percore::capabilities().unwrap();
            let Some(limit) = caps.memlock_limit else {
                eprintln!("RLIMIT_MEMLOCK is unlimited here: no limit to exceed; checking a large pool works");
                FixedBufPool::new(64, 1 << 20).unwrap();
                return;
            };
            // A small pool fits in the default 8 MiB limit.
            let small = FixedBufPool::new(64, 4096).unwrap();
            assert_eq!(small.count(), 64);
            let big = (limit as usize * 2).min(1 << 30);
            let err = FixedBufPool::new(big / (1 << 20), 1 << 20).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
            let msg = err.to_string();
            assert!(msg.contains("RLIMIT_MEMLOCK"), "{msg}");
            assert!(msg.contains("ulimit -l"), "{msg}");
            assert!(msg.contains(&format!("{} KiB", limit / 1024)), "{msg}");
            // The failed pool left its table entry free.
            drop(small);
            FixedBufPool::new(1, 4096).unwrap();
        });
    })
    .join()
    .unwrap();
}

#[test]
fn fixed_buffer_of_another_ring_falls_back_to_a_plain_read() {
    let tmp = TempPath::new("fixed-other");
    std::fs::write(tmp.path(), b"hello").unwrap();
    let rt_a = percore::Runtime::new().unwrap();
    let rt_b = percore::Runtime::new().unwrap();
    let buf = rt_a.block_on(async {
        let pool = FixedBufPool::new(1, 4096).unwrap();
        pool.get().await
    });
    let path = tmp.path().to_path_buf();
    let (n, buf) = rt_b.block_on(async move {
        let file = OpenOptions::new().read(true).open(&path).await.unwrap();
        file.read_fixed_at(buf, 0).await
    });
    assert_eq!(n.unwrap(), 5);
    assert_eq!(&buf[..], b"hello");
    assert_eq!(buf.bytes_init(), 5);
}
