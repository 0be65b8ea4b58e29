//! Where a seccomp profile blocks io_uring (Docker 25+, containerd 2.0+, GKE
//! Autopilot), percore runs on its epoll driver without a change to the
//! program; asking for io_uring explicitly there fails with a clear error.
//!
//! Each case runs `echo-server` (built by `cargo test` with the examples) in
//! a child process under a seccomp filter that makes `io_uring_setup`,
//! `io_uring_enter` and `io_uring_register` fail with `EPERM`, as Docker's
//! default profile does, installed with `prctl(PR_SET_SECCOMP)` between fork
//! and exec. Loopback only; every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `io_uring_setup`, `io_uring_enter`, `io_uring_register`: the same
/// numbers on every architecture (they came after the syscall tables were
/// unified).
const IO_URING_SYSCALLS: [u32; 3] = [425, 426, 427];

/// The example binary, next to this test's `deps/` directory.
fn echo_server() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("echo-server");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

/// Makes the io_uring syscalls fail with `EPERM` in this (child) process
/// and everything it execs. Async-signal-safe: only prctl(2) on a filter
/// built before the fork.
fn block_io_uring(filter: &libc::sock_fprog) -> std::io::Result<()> {
    // SAFETY: prctl(2) with integer arguments, and then with a pointer to
    // a filter program that lives in the parent's frame (copied into the
    // child's address space by fork) for the whole call.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            filter as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_eq(k: u32, jt: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    }
}

/// The BPF program: the three io_uring syscalls return `EPERM`, every
/// other syscall is allowed.
fn io_uring_filter() -> Vec<libc::sock_filter> {
    let n = IO_URING_SYSCALLS.len() as u8;
    let mut prog = vec![stmt(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        0, // offsetof(struct seccomp_data, nr)
    )];
    for (i, nr) in IO_URING_SYSCALLS.iter().enumerate() {
        // Jump over the remaining compares and the ALLOW to the ERRNO.
        prog.push(jump_eq(*nr, n - i as u8));
    }
    prog.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    ));
    prog
}

/// Starts echo-server under the filter, with `env` set.
fn spawn_blocked(env: &[(&str, &str)]) -> Child {
    let prog = io_uring_filter();
    let mut cmd = Command::new(echo_server());
    cmd.args(["--addr", "127.0.0.1:0", "--cores", "1"])
        .env_remove("PERCORE_DRIVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: the closure allocates nothing: it points a `sock_fprog` on
    // its stack at the program built (and moved in) before the fork, and
    // calls prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            block_io_uring(&fprog)
        });
    }
    cmd.spawn().unwrap()
}

/// Waits for the child to exit (killing it after 10 s) and returns its
/// status and everything it wrote to stderr.
fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    let limit = Duration::from_secs(10);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("echo-server did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

/// Connects, retrying for a while: the banner is printed before every
/// core has bound its listener.
fn connect(addr: &str) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(conn) => return conn,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot connect to echo-server at {addr}: {e}"),
        }
    }
}

#[test]
fn echo_server_runs_on_epoll_where_seccomp_blocks_io_uring() {
    let mut child = spawn_blocked(&[]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("epoll driver"),
        "echo-server did not report the epoll driver: {line:?}"
    );
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    // It serves: a few round trips on two connections.
    let mut conns: Vec<TcpStream> = (0..2).map(|_| connect(&addr)).collect();
    for round in 0..50u32 {
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let msg = format!("round {round} conn {i}");
            conn.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0; msg.len()];
            conn.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
    }
    drop(conns);

    // SIGTERM: a clean, prompt exit.
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (status, err) = finish(child);
    assert!(status.success(), "exit {status:?}, stderr: {err}");
    assert!(
        err.contains("io_uring unavailable") && err.contains("seccomp"),
        "the fallback's reason was not reported: {err:?}"
    );
}

#[test]
fn asking_for_io_uring_where_it_is_blocked_is_a_clear_error() {
    let child = spawn_blocked(&[("PERCORE_DRIVER", "io_uring")]);
    let (status, err) = finish(child);
    assert!(
        !status.success(),
        "echo-server started on io_uring under the filter"
    );
    assert!(
        err.contains("io_uring unavailable") && err.contains("seccomp"),
        "unclear error: {err:?}"
    );
}

#[test]
fn an_unknown_percore_driver_is_a_clear_error() {
    let child = Command::new(echo_server())
        .args(["--addr", "127.0.0.1:0", "--cores", "1"])
        .env("PERCORE_DRIVER", "kqueue")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, err) = finish(child);
    assert!(!status.success());
    assert!(
        err.contains("PERCORE_DRIVER") && err.contains("kqueue") && err.contains("epoll"),
        "unclear error: {err:?}"
    );
}
