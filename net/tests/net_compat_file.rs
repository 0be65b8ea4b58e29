//! `Compat<percore::fs::File>` behind the tokio and futures I/O traits:
//! reads and writes at the file's position, seeks that account for the
//! read-ahead and the buffered writes, and a file copied to a loopback
//! socket with `tokio::io::copy`.

use std::io::SeekFrom;
use std::path::PathBuf;

use percore::fs::{File, OpenOptions};
use percore_net::compat::Compat;
use percore_net::{TcpListener, TcpStream};

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        Tmp(std::env::temp_dir().join(format!(
            "percore-test-compat-file-{tag}-{}",
            std::process::id()
        )))
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn open_rw(tmp: &Tmp) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp.0)
        .await
        .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[test]
fn tokio_write_rewind_read_to_end() {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let tmp = Tmp::new("tokio-rt");
    let want = data(200_000); // more than one write and read buffer
    percore::run(async {
        let mut file = Compat::new(open_rw(&tmp).await);
        file.write_all(&want).await.unwrap();
        // No flush: the seek itself must wait for the buffered write.
        assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
        let mut got = Vec::new();
        file.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, want);
        assert_eq!(file.stream_position().await.unwrap(), 200_000);
        assert_eq!(file.seek(SeekFrom::End(-10)).await.unwrap(), 199_990);
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, &want[199_990..]);
    });
}

#[test]
fn positions_account_for_the_read_ahead() {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let tmp = Tmp::new("readahead");
    std::fs::write(&tmp.0, b"0123456789").unwrap();
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tmp.0)
            .await
            .unwrap();
        let mut file = Compat::new(file);
        let mut two = [0u8; 2];
        file.read_exact(&mut two).await.unwrap(); // the whole file is read ahead
        assert_eq!(&two, b"01");
        assert_eq!(file.stream_position().await.unwrap(), 2);
        // A relative seek counts from what the caller read, not the read-ahead.
        assert_eq!(file.seek(SeekFrom::Current(3)).await.unwrap(), 5);
        assert_eq!(file.read_u8().await.unwrap(), b'5');
        // A write after a read goes where the read stopped (at 6).
        file.write_all(b"ab").await.unwrap();
        file.flush().await.unwrap();
        assert_eq!(file.stream_position().await.unwrap(), 8);
        // And a read after a write sees it, after the buffered bytes land.
        file.write_all(b"Z").await.unwrap();
        file.seek(SeekFrom::Start(0)).await.unwrap();
        let mut all = String::new();
        file.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "012345abZ9");
    });
    assert_eq!(std::fs::read(&tmp.0).unwrap(), b"012345abZ9");
}

#[test]
fn tokio_lines_over_a_file() {
    use tokio::io::AsyncBufReadExt;
    let tmp = Tmp::new("lines");
    std::fs::write(&tmp.0, "a\nbb\r\nccc").unwrap();
    percore::run(async {
        let file = File::open(&tmp.0).await.unwrap();
        let mut lines = Compat::with_capacity(file, 2, 2).lines();
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            got.push(line);
        }
        assert_eq!(got, ["a", "bb", "ccc"]);
    });
}

#[test]
fn futures_io_write_seek_read() {
    use futures_util::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let tmp = Tmp::new("futures");
    let want = data(70_000);
    percore::run(async {
        let mut file = Compat::new(open_rw(&tmp).await);
        file.write_all(&want).await.unwrap();
        file.close().await.unwrap(); // a file's close is a flush
        assert_eq!(file.seek(SeekFrom::Start(1000)).await.unwrap(), 1000);
        let mut got = Vec::new();
        file.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, &want[1000..]);
    });
    assert_eq!(std::fs::read(&tmp.0).unwrap(), want);
}

#[test]
fn tokio_copy_from_a_file_to_a_loopback_socket() {
    let tmp = Tmp::new("copy-to-socket");
    let want = data(300_000);
    std::fs::write(&tmp.0, &want).unwrap();
    percore::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let path = tmp.0.clone();
        let send = percore::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut file = Compat::new(File::open(&path).await.unwrap());
            let mut sock = Compat::new(server);
            let n = tokio::io::copy(&mut file, &mut sock).await.unwrap();
            sock.shutdown().await.unwrap();
            n
        });
        let (res, got) =
            percore::time::timeout(std::time::Duration::from_secs(10), read_to_end(client))
                .await
                .expect("copied within 10 s");
        res.unwrap();
        assert_eq!(send.await.unwrap(), want.len() as u64);
        assert_eq!(got, want);
    });
}

async fn read_to_end(sock: TcpStream) -> (std::io::Result<()>, Vec<u8>) {
    let mut all = Vec::new();
    loop {
        let (res, buf) = sock.read(Vec::with_capacity(64 * 1024)).await;
        match res {
            Ok(0) => return (Ok(()), all),
            Ok(_) => all.extend_from_slice(&buf),
            Err(e) => return (Err(e), all),
        }
    }
}
