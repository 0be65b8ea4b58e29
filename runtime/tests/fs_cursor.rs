//! The file cursor: `read`/`write` advance the position, `seek` moves it,
//! and the positional `read_at`/`write_at` neither use nor move it.

mod support;

use std::io::{ErrorKind, Seek as _, SeekFrom, Write as _};

use percore::IoErrorExt;
use percore::fs::{File, OpenOptions};
use support::fs::{TempPath, pattern};

async fn open_rw(tmp: &TempPath) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp.path())
        .await
        .unwrap()
}

#[test]
fn reads_advance_the_position() {
    let tmp = TempPath::new("cursor-read");
    let data = pattern(10_000, 1);
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let mut file = File::open(tmp.path()).await.unwrap();
        let mut got = Vec::new();
        loop {
            // Odd sizes, so reads do not line up with pages.
            let (n, buf) = file.read(Vec::with_capacity(777)).await;
            if n.unwrap() == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, data);
        assert_eq!(file.stream_position().await.unwrap(), 10_000);
    });
}

#[test]
fn positional_calls_leave_the_cursor_alone() {
    let tmp = TempPath::new("cursor-positional");
    percore::run(async {
        let mut file = open_rw(&tmp).await;
        file.write_all(b"0123456789".to_vec()).await.0.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 10);
        // Positional I/O elsewhere does not move it.
        let (n, buf) = file.read_at(Vec::with_capacity(3), 2).await;
        assert_eq!((n.unwrap(), &buf[..]), (3, &b"234"[..]));
        file.write_all_at(b"ab".to_vec(), 0).await.0.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 10);
        // The cursor continues where it was.
        file.write(b"XY".to_vec()).await.0.unwrap();
        file.rewind().await.unwrap();
        let (res, buf) = file.read_exact(Vec::with_capacity(12)).await;
        res.unwrap();
        assert_eq!(buf, b"ab23456789XY");
        assert_eq!(file.stream_position().await.unwrap(), 12);
    });
}

#[test]
fn seek_from_start_current_and_end() {
    let tmp = TempPath::new("cursor-seek");
    std::fs::write(tmp.path(), b"0123456789").unwrap();
    percore::run(async {
        let mut file = File::open(tmp.path()).await.unwrap();
        assert_eq!(file.seek(SeekFrom::Start(3)).await.unwrap(), 3);
        assert_eq!(file.seek(SeekFrom::Current(2)).await.unwrap(), 5);
        let (_, buf) = file.read(Vec::with_capacity(2)).await;
        assert_eq!(buf, b"56");
        assert_eq!(file.seek(SeekFrom::Current(-7)).await.unwrap(), 0);
        assert_eq!(file.seek(SeekFrom::End(-1)).await.unwrap(), 9);
        let (_, buf) = file.read(Vec::with_capacity(8)).await;
        assert_eq!(buf, b"9");
        // Before the start: an error that names the path; the position stays.
        let err = file.seek(SeekFrom::Current(-100)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("seek"), "{err}");
        assert_eq!(file.stream_position().await.unwrap(), 10);
        // Past the end is allowed, and reads end of file there.
        assert_eq!(file.seek(SeekFrom::End(5)).await.unwrap(), 15);
        assert_eq!(file.read(Vec::with_capacity(4)).await.0.unwrap(), 0);
    });
}

#[test]
fn write_past_the_end_leaves_a_hole() {
    let tmp = TempPath::new("cursor-hole");
    percore::run(async {
        let mut file = open_rw(&tmp).await;
        file.seek(SeekFrom::Start(4)).await.unwrap();
        file.write_all(b"end".to_vec()).await.0.unwrap();
    });
    assert_eq!(std::fs::read(tmp.path()).unwrap(), b"\0\0\0\0end");
}

#[test]
fn read_exact_past_the_end_reports_eof_and_keeps_the_bytes() {
    let tmp = TempPath::new("cursor-eof");
    std::fs::write(tmp.path(), b"short").unwrap();
    percore::run(async {
        let mut file = File::open(tmp.path()).await.unwrap();
        let (res, buf) = file.read_exact(Vec::with_capacity(10)).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::UnexpectedEof);
        assert_eq!(buf, b"short");
        assert_eq!(file.stream_position().await.unwrap(), 5);
    });
}

#[test]
fn append_mode_writes_go_to_the_end_and_move_the_position_there() {
    let tmp = TempPath::new("cursor-append");
    std::fs::write(tmp.path(), b"head").unwrap();
    percore::run(async {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(tmp.path())
            .await
            .unwrap();
        file.rewind().await.unwrap();
        file.write_all(b"+tail".to_vec()).await.0.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 9);
    });
    assert_eq!(std::fs::read(tmp.path()).unwrap(), b"head+tail");
}

#[test]
fn from_std_continues_at_the_std_position() {
    let tmp = TempPath::new("cursor-std");
    std::fs::write(tmp.path(), b"abcdef").unwrap();
    let mut std_file = std::fs::File::open(tmp.path()).unwrap();
    std_file.seek(SeekFrom::Start(4)).unwrap();
    percore::run(async {
        let mut file = File::from_std(std_file);
        let (_, buf) = file.read(Vec::with_capacity(8)).await;
        assert_eq!(buf, b"ef");
    });
}

#[test]
fn pipes_read_in_order_and_cannot_seek() {
    percore::run(async {
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"one two").unwrap();
        drop(writer);
        let mut file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        let (res, buf) = file.read_exact(Vec::with_capacity(4)).await;
        res.unwrap();
        assert_eq!(buf, b"one ");
        let (_, buf) = file.read(Vec::with_capacity(8)).await;
        assert_eq!(buf, b"two");
        let err = file.seek(SeekFrom::Start(0)).await.unwrap_err();
        assert_eq!(err.os_error(), Some(libc::ESPIPE), "{err}");
    });
}
