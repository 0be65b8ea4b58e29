//! Error paths: the kind is the kernel's, the message names the path.

mod support;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;

use percore::buf::{AlignedBuf, IoBuf};
use percore::fs::{self, File, OpenOptions, PathError};
use support::fs::TempPath;

fn assert_names(err: &std::io::Error, path: &std::path::Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(path.to_str().unwrap()),
        "message should name {}: {msg}",
        path.display()
    );
    assert!(
        err.get_ref().unwrap().downcast_ref::<PathError>().is_some(),
        "a PathError inside: {err:?}"
    );
}

#[test]
fn enoent() {
    let tmp = TempPath::new("enoent");
    percore::run(async {
        let err = File::open(tmp.path()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(fs::raw_os_error(&err), Some(libc::ENOENT));
        assert_names(&err, tmp.path());
        assert!(err.to_string().starts_with("open "), "{err}");

        for err in [
            fs::metadata(tmp.path()).await.unwrap_err(),
            fs::remove_file(tmp.path()).await.unwrap_err(),
            fs::remove_dir(tmp.path()).await.unwrap_err(),
            fs::rename(tmp.path(), tmp.path().with_extension("x"))
                .await
                .unwrap_err(),
            fs::read(tmp.path()).await.unwrap_err(),
            fs::create_dir(tmp.path().join("sub")).await.unwrap_err(),
            fs::read_link(tmp.path()).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            assert_names(&err, tmp.path());
        }
    });
}

#[test]
fn eisdir_when_opening_a_directory_for_write() {
    let dir = TempPath::new("eisdir");
    std::fs::create_dir(dir.path()).unwrap();
    percore::run(async {
        let err = OpenOptions::new()
            .write(true)
            .open(dir.path())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        assert_eq!(fs::raw_os_error(&err), Some(libc::EISDIR));
        assert_names(&err, dir.path());
        let err = fs::remove_file(dir.path()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        // Reading a directory opened read-only fails at the read.
        let file = File::open(dir.path()).await.unwrap();
        let (res, _) = file.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EISDIR));
    });
}

#[test]
fn eacces_without_dac_override() {
    // Tests run as root, which bypasses permission bits. Capabilities are per
    // thread on Linux: drop CAP_DAC_OVERRIDE (and friends) from this test's
    // thread only, before its ring (and the ring's kernel workers) exist.
    let tmp = TempPath::new("eacces");
    std::fs::write(tmp.path(), b"secret").unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
    let is_root = unsafe_geteuid() == 0;
    std::thread::spawn({
        let path = tmp.path().to_path_buf();
        move || {
            support::fs::drop_dac_override();
            // Capabilities are per thread: only the ring opens with this
            // thread's (the epoll driver opens on a pool thread, which keeps
            // the process's, as tokio's spawn_blocking would).
            let rt = percore::Runtime::builder()
                .driver(percore::DriverKind::IoUring)
                .build()
                .unwrap();
            rt.block_on(async {
                let err = File::open(&path).await.unwrap_err();
                assert_eq!(
                    err.kind(),
                    ErrorKind::PermissionDenied,
                    "root: {is_root}: {err}"
                );
                assert_eq!(fs::raw_os_error(&err), Some(libc::EACCES));
                assert_names(&err, &path);
                let err = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::PermissionDenied);
            });
        }
    })
    .join()
    .unwrap();
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn o_direct_refused_by_the_filesystem() {
    // procfs has no direct I/O: open(O_DIRECT) fails with EINVAL there.
    percore::run(async {
        let err = OpenOptions::new()
            .read(true)
            .direct(true)
            .open("/proc/self/status")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("/proc/self/status"), "{msg}");
        assert!(msg.contains("O_DIRECT"), "{msg}");
        assert_eq!(fs::raw_os_error(&err), Some(libc::EINVAL), "{err:?}");
    });
}

#[test]
fn misaligned_o_direct_is_refused_before_submission() {
    let tmp = TempPath::new("dio-misaligned");
    std::fs::write(tmp.path(), vec![5u8; 65536]).unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .direct(true)
            .open(tmp.path())
            .await
            .unwrap();
        let align = file.dio_alignment().expect("opened with O_DIRECT");
        assert!(
            align.memory.is_power_of_two() && align.offset.is_power_of_two(),
            "{align:?}"
        );

        // Misaligned buffer address: a slice starting one byte into an aligned buffer.
        let mut buf = AlignedBuf::new(8192);
        buf.resize(1, 0);
        let submitted = percore::stats().driver.submitted;
        let (res, _) = file
            .read_at(buf.slice(1..1 + align.offset as usize), 0)
            .await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("misaligned O_DIRECT read"), "{msg}");
        assert!(msg.contains(tmp.path().to_str().unwrap()), "{msg}");
        assert_eq!(
            percore::stats().driver.submitted,
            submitted,
            "nothing reached the ring"
        );

        // Misaligned offset.
        let (res, _) = file.read_at(AlignedBuf::new(4096), 100).await;
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains("offset 100"), "{msg}");

        // Misaligned length on write.
        let mut buf = AlignedBuf::new(4096);
        buf.resize(100, 1);
        let (res, _) = file.write_at(buf, 0).await;
        let msg = res.unwrap_err().to_string();
        assert!(msg.contains("length 100"), "{msg}");

        // Aligned: fine.
        let (n, buf) = file.read_at(AlignedBuf::new(4096), 4096).await;
        assert_eq!(n.unwrap(), 4096);
        assert!(buf.iter().all(|&b| b == 5));
    });
}

#[percore::test]
async fn path_with_nul_byte() {
    let err = File::open("/tmp/a\0b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn os_error_and_kind_survive_the_path_in_the_message() {
    use percore::IoErrorExt;
    let tmp = TempPath::new("os-error");
    percore::run(async {
        let err = File::open(tmp.path()).await.unwrap_err();
        // std gives no errno for an error that carries a message ...
        assert_eq!(err.raw_os_error(), None);
        // ... so percore's accessors read the one inside.
        assert_eq!(err.os_error(), Some(libc::ENOENT));
        assert_eq!(fs::raw_os_error(&err), Some(libc::ENOENT));
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.path(), Some(tmp.path()));
        assert!(
            err.to_string().contains("No such file or directory"),
            "{err}"
        );
        assert!(err.to_string().contains("os error 2"), "{err}");
    });
}

#[test]
fn a_failed_write_names_its_path() {
    use percore::IoErrorExt;
    // /dev/full opens (and truncates) fine; every write fails with ENOSPC.
    let path = std::path::Path::new("/dev/full");
    percore::run(async {
        let err = fs::write(path, b"data".to_vec()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
        assert_eq!(err.os_error(), Some(libc::ENOSPC));
        assert_names(&err, path);
        assert!(err.to_string().starts_with("write /dev/full: "), "{err}");
    });
}

#[test]
fn write_all_at_names_its_path_once() {
    use percore::IoErrorExt;
    percore::run(async {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .unwrap();
        let (res, _) = file.write_all_at(b"x".to_vec(), 0).await;
        let err = res.unwrap_err();
        assert_eq!(err.os_error(), Some(libc::ENOSPC));
        // fs::write wraps again: the path is not repeated.
        let err = fs::write("/dev/full", b"y".to_vec()).await.unwrap_err();
        assert_eq!(err.to_string().matches("/dev/full").count(), 1, "{err}");
    });
}
