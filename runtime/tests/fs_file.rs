//! Round trips through percore::fs: reads, writes, appends, EOF, vectored,
//! sync, metadata, set_len, whole-file helpers and directory operations.

mod support;

use std::io::ErrorKind;

use bytes::BytesMut;
use percore::buf::IoBuf;
use percore::fs::{self, File, OpenOptions};
use support::fs::{TempPath, pattern};

#[test]
fn write_then_read_round_trip() {
    let tmp = TempPath::new("roundtrip");
    let data = pattern(100_000, 3);
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp.path())
            .await
            .unwrap();
        let (res, back) = file.write_all_at(data.clone(), 0).await;
        res.unwrap();
        assert_eq!(back, data, "the buffer comes back unchanged");
        let (res, buf) = file.read_exact_at(Vec::with_capacity(data.len()), 0).await;
        res.unwrap();
        assert_eq!(buf, data);
        // A read in the middle.
        let (n, buf) = file.read_at(Vec::with_capacity(10), 5000).await;
        assert_eq!(n.unwrap(), 10);
        assert_eq!(buf, &data[5000..5010]);
        file.close().await.unwrap();
    });
    assert_eq!(
        std::fs::read(tmp.path()).unwrap(),
        data,
        "std sees the same bytes"
    );
}

#[test]
fn ring_only_reads_round_trip() {
    // The same, with the RWF_NOWAIT fast path off, so every read is a ring op.
    let tmp = TempPath::new("ringonly");
    let data = pattern(50_000, 9);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let before = percore::stats().driver.submitted;
        let file = OpenOptions::new()
            .read(true)
            .nowait_reads(false)
            .open(tmp.path())
            .await
            .unwrap();
        let (res, buf) = file.read_exact_at(Vec::with_capacity(data.len()), 0).await;
        res.unwrap();
        assert_eq!(buf, data);
        let submitted = percore::stats().driver.submitted - before;
        assert!(
            submitted >= 2,
            "open and read went through the ring ({submitted} SQEs)"
        );
    });
}

/// `n` reads of up to `len` bytes (the `i`-th at `pos(i)`), all issued in one
/// poll while another task is ready: their buffers, and the
/// `io_uring_enter`s they took. One poll rather than `n` spawned tasks, so
/// that how many reads share an enter does not hang on how many polls fit
/// in one pass of the executor (a pass ends after 200 µs, which a slow
/// build such as ASan's reaches sooner); the other task, because a file
/// submits at once only when tasks wait behind its reader.
async fn concurrent_reads(
    file: &File,
    n: u64,
    len: usize,
    pos: impl Fn(u64) -> u64,
) -> (Vec<Vec<u8>>, u64) {
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let other = percore::spawn({
        let done = done.clone();
        async move {
            while !done.get() {
                percore::yield_now().await;
            }
        }
    });
    percore::yield_now().await; // `other` is running, ready again after its yield
    let before = percore::stats().driver.enters;
    let reads = (0..n).map(|i| {
        let read = file.read_at(Vec::with_capacity(len), pos(i));
        async move {
            let (res, buf) = read.await;
            res.unwrap();
            buf
        }
    });
    let bufs = percore::join_all(reads).await;
    let enters = percore::stats().driver.enters - before;
    done.set(true);
    other.await.unwrap();
    (bufs, enters)
}

#[test]
fn submit_now_files_enter_the_kernel_per_read_under_concurrency() {
    // 16 reads issued together: batched, they share a few enters; with
    // submit_now each read goes in as soon as it is issued.
    let tmp = TempPath::new("submitnow");
    let data = pattern(16 * 4096, 3);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        for submit_now in [false, true] {
            let file = OpenOptions::new()
                .read(true)
                .nowait_reads(false)
                .submit_now(submit_now)
                .open(tmp.path())
                .await
                .unwrap();
            let (bufs, enters) = concurrent_reads(&file, 16, 4096, |i| i * 4096).await;
            for (i, buf) in bufs.iter().enumerate() {
                assert_eq!(buf[..], data[i * 4096..(i + 1) * 4096]);
            }
            if submit_now {
                assert!(enters >= 15, "one enter per read: {enters}");
            } else {
                assert!(enters < 8, "batched reads share enters: {enters}");
            }
        }
    });
}

#[test]
fn a_file_whose_reads_wait_submits_its_next_reads_at_once() {
    use percore::op::CURRENT_POSITION;
    use std::io::Write;
    // A pipe stands in for a cold disk: a read on it waits for data, as a
    // page-cache miss waits for the device, so the file learns to submit
    // at once; reads that complete at once turn it back. On the ring only:
    // the epoll driver reads a pipe inside the op's first poll.
    let (reader, mut writer) = std::io::pipe().unwrap();
    let rt = percore::Builder::new()
        .driver(percore::DriverKind::IoUring)
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        file.set_nowait_reads(false);
        let file = std::rc::Rc::new(file);
        let one_byte_each = async |file| {
            let (bufs, enters) = concurrent_reads(file, 16, 1, |_| CURRENT_POSITION).await;
            assert!(bufs.iter().all(|b| b.len() == 1));
            enters
        };
        writer.write_all(&[7; 16]).unwrap();
        let cached = one_byte_each(&file).await;
        assert!(
            cached < 8,
            "reads that complete at once are batched: {cached} enters"
        );

        let waiting = {
            let file = file.clone();
            percore::spawn(async move {
                file.read_at(Vec::with_capacity(1), CURRENT_POSITION)
                    .await
                    .0
                    .unwrap()
            })
        };
        for _ in 0..3 {
            percore::yield_now().await;
        }
        writer.write_all(&[8; 17]).unwrap();
        assert_eq!(waiting.await.unwrap(), 1);
        let after_wait = one_byte_each(&file).await;
        assert!(
            after_wait >= 15,
            "after a read that waited, one enter per read: {after_wait}"
        );
    });
}

#[test]
fn a_read_whose_start_is_cached_returns_the_whole_range() {
    // The RWF_NOWAIT attempt returns only the cached prefix; read_at must
    // fetch the rest, so a short count keeps meaning end of file.
    use std::os::fd::AsRawFd;
    let tmp = TempPath::new("prefix");
    let data = pattern(256 * 1024, 5);
    std::fs::write(tmp.path(), &data).unwrap();
    let std_file = std::fs::File::open(tmp.path()).unwrap();
    std_file.sync_all().unwrap();
    // SAFETY: plain syscalls on an open descriptor.
    unsafe {
        assert_eq!(
            libc::posix_fadvise(std_file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED),
            0
        );
        assert_eq!(
            libc::posix_fadvise(std_file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM),
            0
        );
    }
    // Cache the first page only.
    let mut page = [0u8; 4096];
    std::os::unix::fs::FileExt::read_exact_at(&std_file, &mut page, 0).unwrap();
    percore::run(async {
        let file = File::from_std(std_file);
        file.advise(0, 0, fs::Advice::Random).await.unwrap();
        let (n, buf) = file.read_at(Vec::with_capacity(data.len()), 0).await;
        assert_eq!(n.unwrap(), data.len());
        assert_eq!(buf, data);
    });
}

#[percore::test]
async fn a_short_pipe_read_returns_what_the_pipe_holds() {
    // At the current position a short read is the answer, not a cached
    // prefix: read_at must not wait for more (nor compute an offset).
    use std::io::Write;
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(b"abc").unwrap();
    let file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    let read = file.read_at(Vec::with_capacity(8), percore::op::CURRENT_POSITION);
    let (n, buf) = percore::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("a pipe read with data waiting returns at once");
    assert_eq!(n.unwrap(), 3);
    assert_eq!(buf, b"abc");
}

#[percore::test]
async fn advise_takes_every_advice_and_names_the_path_on_error() {
    let tmp = TempPath::new("advise");
    std::fs::write(tmp.path(), b"data").unwrap();
    let file = File::open(tmp.path()).await.unwrap();
    for advice in [
        fs::Advice::Normal,
        fs::Advice::Sequential,
        fs::Advice::Random,
        fs::Advice::WillNeed,
        fs::Advice::DontNeed,
        fs::Advice::NoReuse,
    ] {
        file.advise(0, 0, advice).await.unwrap();
    }
    let (reader, _writer) = std::io::pipe().unwrap();
    let pipe = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
    let err = pipe.advise(0, 0, fs::Advice::Random).await.unwrap_err();
    assert_eq!(fs::raw_os_error(&err), Some(libc::ESPIPE), "{err}");
    assert!(err.to_string().starts_with("advise"), "{err}");
}

#[test]
fn short_read_at_eof_then_zero() {
    let tmp = TempPath::new("eof");
    std::fs::write(tmp.path(), b"0123456789").unwrap();
    percore::run(async {
        let file = File::open(tmp.path()).await.unwrap();
        let (n, buf) = file.read_at(Vec::with_capacity(64), 6).await;
        assert_eq!(n.unwrap(), 4, "only the last 4 bytes exist");
        assert_eq!(buf, b"6789");
        let (n, buf) = file.read_at(Vec::with_capacity(64), 10).await;
        assert_eq!(n.unwrap(), 0, "at EOF a read returns 0");
        assert!(buf.is_empty());
        let (n, _) = file.read_at(Vec::with_capacity(64), 1_000_000).await;
        assert_eq!(n.unwrap(), 0, "past EOF too");
        // read_exact_at reports EOF with the bytes it got.
        let (res, buf) = file.read_exact_at(Vec::with_capacity(8), 5).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains(tmp.path().to_str().unwrap()),
            "{err}"
        );
        assert_eq!(buf, b"56789");
    });
}

#[test]
fn append_writes_go_to_the_end() {
    let tmp = TempPath::new("append");
    std::fs::write(tmp.path(), b"head").unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .append(true)
            .open(tmp.path())
            .await
            .unwrap();
        // The offset is ignored for O_APPEND files.
        file.write_all_at(b"-one".to_vec(), 0).await.0.unwrap();
        file.write_all_at(&b"-two"[..], 1).await.0.unwrap();
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(tmp.path()).unwrap(), b"head-one-two");
}

#[test]
fn vectored_round_trip_and_other_buffer_types() {
    let tmp = TempPath::new("vectored");
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(tmp.path())
            .await
            .unwrap();
        let bufs = vec![b"abc".to_vec(), b"defg".to_vec(), b"h".to_vec()];
        let (n, _) = file.write_vectored_at(bufs, 2).await;
        assert_eq!(n.unwrap(), 8);
        let (n, bufs) = file
            .read_vectored_at(
                vec![
                    Vec::with_capacity(2),
                    Vec::with_capacity(5),
                    Vec::with_capacity(10),
                ],
                0,
            )
            .await;
        assert_eq!(n.unwrap(), 10);
        assert_eq!(bufs[0], b"\0\0", "the hole before offset 2 reads as zeros");
        assert_eq!(bufs[1], b"abcde");
        assert_eq!(bufs[2], b"fgh");

        // BytesMut in and out, and a Slice into the middle of a buffer.
        let (n, b) = file.read_at(BytesMut::with_capacity(4), 2).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(&b[..], b"abcd");
        let mut frozen = BytesMut::new();
        frozen.extend_from_slice(b"XY");
        file.write_all_at(frozen.freeze(), 0).await.0.unwrap();
        // A slice reads into its own spare room: bytes 3..6 of this buffer.
        let mut v = Vec::with_capacity(6);
        v.extend_from_slice(&[0u8; 3]);
        let (n, s) = file.read_at(v.slice(3..6), 0).await;
        assert_eq!(n.unwrap(), 3);
        assert_eq!(&s.into_inner()[..], b"\0\0\0XYa");
    });
}

#[test]
fn sync_metadata_set_len_allocate() {
    let tmp = TempPath::new("meta");
    percore::run(async {
        let file = File::create(tmp.path()).await.unwrap();
        file.write_all_at(vec![1u8; 5000], 0).await.0.unwrap();
        file.sync_data().await.unwrap();
        file.sync_all().await.unwrap();
        let meta = file.metadata().await.unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.len(), 5000);
        assert_eq!(
            meta.ino(),
            std::fs::metadata(tmp.path()).unwrap().ino_compat()
        );

        file.set_len(100).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 100);
        file.set_len(10_000).await.unwrap();
        assert_eq!(fs::metadata(tmp.path()).await.unwrap().len(), 10_000);

        file.allocate(0, 65536).await.unwrap();
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 65536);
        assert!(meta.blocks() * 512 >= 65536, "space is allocated");
    });
    let bytes = std::fs::read(tmp.path()).unwrap();
    assert_eq!(&bytes[..100], &[1u8; 100][..]);
    assert!(
        bytes[100..].iter().all(|&b| b == 0),
        "extension reads as zeros"
    );
}

trait InoCompat {
    fn ino_compat(&self) -> u64;
}

impl InoCompat for std::fs::Metadata {
    fn ino_compat(&self) -> u64 {
        std::os::unix::fs::MetadataExt::ino(self)
    }
}

#[test]
fn whole_file_helpers() {
    let tmp = TempPath::new("whole");
    let data = pattern(300_000, 1);
    percore::run(async {
        fs::write(tmp.path(), data.clone()).await.unwrap();
        let back = fs::read(tmp.path()).await.unwrap();
        assert_eq!(back, data);
        assert_eq!(back.capacity(), data.len(), "sized from statx: no regrowth");
        fs::write(tmp.path(), "text").await.unwrap();
        assert_eq!(fs::read_to_string(tmp.path()).await.unwrap(), "text");
        fs::write(tmp.path(), vec![0xff, 0xfe]).await.unwrap();
        let err = fs::read_to_string(tmp.path()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        // An empty file, and a file whose statx size is 0 but has content (procfs).
        fs::write(tmp.path(), Vec::new()).await.unwrap();
        assert!(fs::read(tmp.path()).await.unwrap().is_empty());
        let status = fs::read_to_string("/proc/self/status").await.unwrap();
        assert!(status.contains("Pid:"), "{status}");
    });
}

#[test]
fn directories_links_and_renames() {
    let root = TempPath::new("dirs");
    let r = root.path();
    percore::run(async {
        fs::create_dir_all(r.join("a/b/c")).await.unwrap();
        fs::create_dir_all(r.join("a/b/c")).await.unwrap();
        assert!(fs::metadata(r.join("a/b/c")).await.unwrap().is_dir());
        let err = fs::create_dir(r.join("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        fs::write(r.join("a/f"), "x").await.unwrap();
        fs::hard_link(r.join("a/f"), r.join("a/g")).await.unwrap();
        assert_eq!(fs::metadata(r.join("a/f")).await.unwrap().nlink(), 2);
        fs::symlink(r.join("a/f"), r.join("a/s")).await.unwrap();
        assert!(
            fs::symlink_metadata(r.join("a/s"))
                .await
                .unwrap()
                .is_symlink()
        );
        assert!(fs::metadata(r.join("a/s")).await.unwrap().is_file());
        assert_eq!(fs::read_link(r.join("a/s")).await.unwrap(), r.join("a/f"));

        fs::rename(r.join("a/g"), r.join("a/h")).await.unwrap();
        assert!(!fs::try_exists(r.join("a/g")).await.unwrap());
        assert_eq!(fs::read(r.join("a/h")).await.unwrap(), b"x");

        let mut names: Vec<_> = fs::read_dir(r.join("a"))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["b", "f", "h", "s"]);

        let err = fs::remove_dir(r.join("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
        for f in ["a/f", "a/h", "a/s"] {
            fs::remove_file(r.join(f)).await.unwrap();
        }
        fs::remove_dir(r.join("a/b/c")).await.unwrap();
        assert!(!fs::try_exists(r.join("a/b/c")).await.unwrap());
    });
}

#[test]
fn concurrent_reads_from_a_thousand_tasks() {
    let tmp = TempPath::new("thousand");
    const TASKS: usize = 1000;
    let data = pattern(TASKS * 4096, 7);
    std::fs::write(tmp.path(), &data).unwrap();
    let ok = percore::run(async {
        let file = std::rc::Rc::new(File::open(tmp.path()).await.unwrap());
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let file = file.clone();
                percore::spawn(async move {
                    // Half the tasks go through the ring even for cached data.
                    let pos = (i * 4096) as u64;
                    let (res, buf) = file.read_exact_at(Vec::with_capacity(4096), pos).await;
                    res.unwrap();
                    buf
                })
            })
            .collect();
        let mut ok = 0;
        for (i, buf) in percore::join_all(handles).await.into_iter().enumerate() {
            assert_eq!(buf.unwrap(), &data[i * 4096..(i + 1) * 4096], "block {i}");
            ok += 1;
        }
        ok
    });
    assert_eq!(ok, TASKS);
}

#[test]
fn concurrent_ring_reads_from_a_thousand_tasks() {
    let tmp = TempPath::new("thousand-ring");
    const TASKS: usize = 1000;
    let data = pattern(TASKS * 512, 5);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let file = std::rc::Rc::new(
            OpenOptions::new()
                .read(true)
                .nowait_reads(false)
                .open(tmp.path())
                .await
                .unwrap(),
        );
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let file = file.clone();
                percore::spawn(async move {
                    file.read_exact_at(Vec::with_capacity(512), (i * 512) as u64)
                        .await
                })
            })
            .collect();
        // All 1000 reads were queued before any completed.
        percore::yield_now().await;
        assert!(
            percore::stats().in_flight >= 1,
            "reads are in flight together"
        );
        for (i, h) in percore::join_all(handles).await.into_iter().enumerate() {
            let (res, buf) = h.unwrap();
            res.unwrap();
            assert_eq!(buf, &data[i * 512..(i + 1) * 512], "block {i}");
        }
    });
}

#[test]
fn open_options_are_validated_like_std() {
    let tmp = TempPath::new("opts");
    percore::run(async {
        let err = OpenOptions::new().open(tmp.path()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = OpenOptions::new()
            .read(true)
            .create(true)
            .open(tmp.path())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp.path())
            .await
            .unwrap();
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp.path())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        let meta = fs::metadata(tmp.path()).await.unwrap();
        assert_eq!(meta.permissions().mode_compat() & 0o777, 0o600);
    });
}

trait ModeCompat {
    fn mode_compat(&self) -> u32;
}

impl ModeCompat for std::fs::Permissions {
    fn mode_compat(&self) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(self)
    }
}
