//! percore::fs::copy: contents, permissions and errors, as std::fs::copy.

mod support;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;

use percore::IoErrorExt;
use support::fs::{TempPath, pattern};

#[test]
fn copies_contents_and_permissions_over_a_longer_file() {
    let dir = TempPath::new("copy-dir");
    std::fs::create_dir(dir.path()).unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = pattern(3 << 20 | 123, 9);
    std::fs::write(&src, &data).unwrap();
    // 0o777: a mode the umask would cut if only passed to open(2).
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(&dst, vec![1u8; 5 << 20]).unwrap(); // longer: must be truncated
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    let n = percore::run(percore::fs::copy(&src, &dst)).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    let mode = std::fs::metadata(&dst).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o777, "{mode:o}");
}

#[test]
fn empty_file() {
    let dir = TempPath::new("copy-empty");
    std::fs::create_dir(dir.path()).unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::write(&src, b"").unwrap();
    assert_eq!(percore::run(percore::fs::copy(&src, &dst)).unwrap(), 0);
    assert_eq!(std::fs::read(&dst).unwrap(), b"");
}

#[test]
fn errors_name_the_path_at_fault() {
    let dir = TempPath::new("copy-errors");
    std::fs::create_dir(dir.path()).unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, b"x").unwrap();
    percore::run(async {
        let missing = dir.path().join("missing");
        let err = percore::fs::copy(&missing, dir.path().join("out"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.path(), Some(missing.as_path()));
        assert_eq!(err.os_error(), Some(libc::ENOENT));

        let bad_dst = dir.path().join("no-dir/out");
        let err = percore::fs::copy(&src, &bad_dst).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.path(), Some(bad_dst.as_path()));

        let err = percore::fs::copy(dir.path(), dir.path().join("out"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.path(), Some(dir.path()));
        assert!(!dir.path().join("out").exists(), "nothing created");
    });
}

#[test]
fn a_file_copied_onto_itself_is_refused_and_kept() {
    let dir = TempPath::new("copy-self");
    std::fs::create_dir(dir.path()).unwrap();
    let (src, link) = (dir.path().join("src"), dir.path().join("link"));
    std::fs::write(&src, b"precious").unwrap();
    std::fs::hard_link(&src, &link).unwrap();
    percore::run(async {
        for to in [&src, &link] {
            let err = percore::fs::copy(&src, to).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("same file"), "{err}");
        }
    });
    assert_eq!(std::fs::read(&src).unwrap(), b"precious");
}

#[test]
fn the_core_runs_other_tasks_while_the_pool_copies() {
    let dir = TempPath::new("copy-concurrent");
    std::fs::create_dir(dir.path()).unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, pattern(8 << 20, 1)).unwrap();
    percore::run(async {
        use std::cell::Cell;
        use std::rc::Rc;
        // A task that counts its turns of the loop until the copies are done.
        let copies_done = Rc::new(Cell::new(0));
        let turns = Rc::new(Cell::new(0u64));
        let ticker = percore::spawn({
            let (copies_done, turns) = (copies_done.clone(), turns.clone());
            async move {
                while copies_done.get() < 4 {
                    percore::task::yield_now().await;
                    turns.set(turns.get() + 1);
                }
            }
        });
        // Four 8 MiB copies, each milliseconds of work for a pool thread.
        let turns_at_start = turns.get();
        let copies: Vec<_> = (0..4)
            .map(|i| {
                let (src, dst) = (src.clone(), dir.path().join(format!("dst{i}")));
                let copies_done = copies_done.clone();
                percore::spawn(async move {
                    let n = percore::fs::copy(src, dst).await.unwrap();
                    copies_done.set(copies_done.get() + 1);
                    n
                })
            })
            .collect();
        for r in percore::join_all(copies).await {
            assert_eq!(r.unwrap(), 8 << 20);
        }
        // Had a copy run on the core, the ticker would have had no turn
        // while the copies ran (they would all be done within one poll each);
        // on the pool, it keeps turning. Counted in turns, not in time.
        let during = turns.get() - turns_at_start;
        ticker.await.unwrap();
        assert!(
            during >= 2,
            "the ticker got {during} turns while 4 copies ran"
        );
    });
}
