//! percore::io::BufReader over files: lines, read_until, read_line, and
//! reads through the buffer.

mod support;

use std::io::ErrorKind;

use percore::fs::File;
use percore::io::{BufReader, OwnedRead};
use support::fs::TempPath;

#[test]
fn lines_of_a_file_across_buffer_boundaries() {
    let tmp = TempPath::new("bufreader-lines");
    // Lines of many lengths, \n and \r\n, an empty line, no final newline;
    // a 7-byte buffer splits most lines across reads.
    let mut text = String::new();
    let mut want = Vec::new();
    for i in 0..200 {
        let line = "x".repeat(i % 23);
        text.push_str(&line);
        text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        want.push(line);
    }
    text.push_str("last");
    want.push("last".to_string());
    std::fs::write(tmp.path(), &text).unwrap();
    percore::run(async {
        for cap in [1, 7, 8192] {
            let file = File::open(tmp.path()).await.unwrap();
            let mut lines = BufReader::with_capacity(cap, file).lines();
            let mut got = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                got.push(line);
            }
            assert_eq!(got, want, "capacity {cap}");
            assert_eq!(lines.next_line().await.unwrap(), None, "stays at the end");
        }
    });
}

#[test]
fn read_line_keeps_the_newline_and_appends() {
    let tmp = TempPath::new("bufreader-read-line");
    std::fs::write(tmp.path(), "ab\ncd\n").unwrap();
    percore::run(async {
        let mut reader = BufReader::new(File::open(tmp.path()).await.unwrap());
        let mut s = String::from(">");
        assert_eq!(reader.read_line(&mut s).await.unwrap(), 3);
        assert_eq!(reader.read_line(&mut s).await.unwrap(), 3);
        assert_eq!(reader.read_line(&mut s).await.unwrap(), 0);
        assert_eq!(s, ">ab\ncd\n");
    });
}

#[test]
fn invalid_utf8_is_invalid_data() {
    let tmp = TempPath::new("bufreader-utf8");
    std::fs::write(tmp.path(), b"ok\n\xff\xfe\nafter\n").unwrap();
    percore::run(async {
        let mut reader = BufReader::new(File::open(tmp.path()).await.unwrap());
        let mut s = String::new();
        reader.read_line(&mut s).await.unwrap();
        let err = reader.read_line(&mut s).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        assert_eq!(s, "ok\n", "nothing appended for the bad line");
        let mut lines = reader.lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("after"));
    });
}

#[test]
fn reads_take_buffered_bytes_first_and_resume_at_the_cursor() {
    let tmp = TempPath::new("bufreader-read");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(tmp.path(), &data).unwrap();
    percore::run(async {
        let mut reader = BufReader::with_capacity(1000, File::open(tmp.path()).await.unwrap());
        let mut head = Vec::new();
        reader.read_until(data[10], &mut head).await.unwrap();
        assert_eq!(head, &data[..11]);
        // A small read is served from the buffer...
        let (n, buf) = reader.read(Vec::with_capacity(5)).await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(buf, &data[11..16]);
        // ...and the rest, with large reads, comes out in order.
        let mut got = head;
        got.extend_from_slice(&buf);
        loop {
            let (n, buf) = reader.read(Vec::with_capacity(4096)).await;
            if n.unwrap() == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, data);
        // A full buffer is the usual error, not end of file.
        let (res, _) = reader.read(vec![0u8; 4]).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn a_borrowed_file_reads_on_at_its_cursor() {
    let tmp = TempPath::new("bufreader-borrowed");
    std::fs::write(tmp.path(), "one\ntwo\n").unwrap();
    percore::run(async {
        let mut file = File::open(tmp.path()).await.unwrap();
        {
            let mut reader = BufReader::with_capacity(4, &mut file);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "one\n");
        }
        // The reader read exactly 4 bytes, so the file's cursor is there.
        assert_eq!(file.stream_position().await.unwrap(), 4);
    });
}
