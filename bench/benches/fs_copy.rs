//! `percore::fs::copy` and the ways it could have been built, against
//! `std::fs::copy`, on files of 4 KiB, 64 KiB, 1 MiB and 16 MiB in the temp directory
//! (warm page cache: every iteration copies the same source over the same
//! destination).
//!
//! - `std_fs_copy`: `std::fs::copy` on the calling thread (copy_file_range),
//!   outside any runtime: the baseline, which would block a core.
//! - `pool_copy_file_range`: open, fchmod and `copy_file_range` loop on the
//!   blocking pool (what `percore::fs::copy` does).
//! - `ring_splice`: open and statx through the ring, then file → pipe →
//!   file with `IORING_OP_SPLICE` (a 1 MiB pipe), all on the core.
//! - `ring_read_write`: read and write through the ring with one 1 MiB
//!   buffer.
//! - `percore_fs_copy`: the function as shipped.
//!
//! `cargo bench -p percore-bench --bench fs_copy`

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use io_uring::{opcode, squeue, types};
use percore::fd::SharedFd;
use percore::fs::{File, OpenOptions};
use percore::op::{CqeResult, Op, OpCode};

/// `IORING_OP_SPLICE` between two descriptors (one of them a pipe), as a
/// user-defined op: percore has no splice op of its own.
struct Splice {
    fd_in: SharedFd,
    off_in: i64,
    fd_out: SharedFd,
    off_out: i64,
    len: u32,
}

// SAFETY: the SQE references no user memory, only the two descriptors,
// which the op keeps open (SharedFd clones) until its completion.
unsafe impl OpCode for Splice {
    type Output = io::Result<u32>;

    fn create_entry(&mut self) -> squeue::Entry {
        opcode::Splice::new(
            types::Fd(self.fd_in.raw_fd()),
            self.off_in,
            types::Fd(self.fd_out.raw_fd()),
            self.off_out,
            self.len,
        )
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.into_result()
    }
}

const PIPE_SIZE: usize = 1 << 20;
const CHUNK: usize = 1 << 20;

/// Opens `from`, creates `to` with its permissions; through the ring.
async fn open_pair(from: &Path, to: &Path) -> io::Result<(File, File, u64)> {
    use std::os::unix::fs::PermissionsExt;
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    let mode = meta.permissions().mode();
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(to)
        .await?;
    percore::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).await?;
    Ok((src, dst, meta.len()))
}

async fn ring_splice(from: &Path, to: &Path) -> io::Result<u64> {
    let (src, dst, len) = open_pair(from, to).await?;
    let (rd, wr) = io::pipe()?;
    // SAFETY: F_SETPIPE_SZ on a pipe we own; no memory is passed.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) };
    let rd = SharedFd::new(OwnedFd::from(rd));
    let wr = SharedFd::new(OwnedFd::from(wr));
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(PIPE_SIZE as u64) as u32;
        let n = Op::new(Splice {
            fd_in: src.fd().clone(),
            off_in: done as i64,
            fd_out: wr.clone(),
            off_out: -1,
            len: want,
        })
        .await?;
        if n == 0 {
            break;
        }
        let mut left = n;
        while left > 0 {
            let m = Op::new(Splice {
                fd_in: rd.clone(),
                off_in: -1,
                fd_out: dst.fd().clone(),
                off_out: (done + (n - left) as u64) as i64,
                len: left,
            })
            .await?;
            left -= m;
        }
        done += n as u64;
    }
    Ok(done)
}

async fn ring_read_write(from: &Path, to: &Path) -> io::Result<u64> {
    let (src, dst, _) = open_pair(from, to).await?;
    let mut buf = Vec::with_capacity(CHUNK);
    let mut done = 0u64;
    loop {
        buf.clear();
        let (res, b) = src.read_at(buf, done).await;
        let n = res?;
        if n == 0 {
            return Ok(done);
        }
        let (res, b) = dst.write_all_at(b, done).await;
        res?;
        buf = b;
        done += n as u64;
    }
}

fn pool_copy_file_range(from: PathBuf, to: PathBuf) -> io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let src = std::fs::File::open(&from)?;
    let perm = src.metadata()?.permissions();
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(std::os::unix::fs::PermissionsExt::mode(&perm))
        .open(&to)?;
    dst.set_permissions(perm)?;
    let mut done = 0u64;
    loop {
        // SAFETY: both descriptors are open for the call; null offsets mean
        // "use and advance the file positions".
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                std::ptr::null_mut(),
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
                0,
            )
        };
        match n {
            0 => return Ok(done),
            n if n > 0 => done += n as u64,
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

fn fs_copy(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("percore-bench-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = percore::Runtime::new().expect("percore runtime");
    let mut g = c.benchmark_group("fs_copy");
    for (label, size) in [
        ("4KiB", 4usize << 10),
        ("64KiB", 64 << 10),
        ("1MiB", 1 << 20),
        ("16MiB", 16 << 20),
    ] {
        let src = dir.join(format!("src-{label}"));
        let dst = dir.join(format!("dst-{label}"));
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        g.throughput(Throughput::Bytes(size as u64));

        g.bench_function(format!("std_fs_copy/{label}"), |b| {
            b.iter(|| assert_eq!(std::fs::copy(&src, &dst).unwrap(), size as u64))
        });
        g.bench_function(format!("pool_copy_file_range/{label}"), |b| {
            b.iter(|| {
                let (s, d) = (src.clone(), dst.clone());
                let n = rt.block_on(async {
                    percore::spawn_blocking(move || pool_copy_file_range(s, d))
                        .await
                        .unwrap()
                        .unwrap()
                });
                assert_eq!(n, size as u64);
            })
        });
        g.bench_function(format!("ring_splice/{label}"), |b| {
            b.iter(|| {
                let n = rt.block_on(ring_splice(&src, &dst)).unwrap();
                assert_eq!(n, size as u64);
            })
        });
        g.bench_function(format!("ring_read_write/{label}"), |b| {
            b.iter(|| {
                let n = rt.block_on(ring_read_write(&src, &dst)).unwrap();
                assert_eq!(n, size as u64);
            })
        });
        g.bench_function(format!("percore_fs_copy/{label}"), |b| {
            b.iter(|| {
                let n = rt.block_on(percore::fs::copy(&src, &dst)).unwrap();
                assert_eq!(n, size as u64);
            })
        });
        // No destination: a filter (`cargo bench -p percore-bench --bench fs_copy -- 16MiB`)
        // skipped this size.
        if let Ok(copied) = std::fs::read(&dst) {
            assert!(copied == data, "{label}: the copy is not exact");
        }
    }
    g.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = fs_copy
}
criterion_main!(benches);
