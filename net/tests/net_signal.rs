//! SIGTERM and SIGINT start a graceful shutdown of `Runtime::run_on_every_core` built with
//! `shutdown_on_signals(true)`. The server runs in a child process (this
//! same binary, `harness = false`, so that no thread of a test harness
//! leaves the signals unblocked), and the parent signals it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const CHILD: &str = "PERCORE_SIGNAL_TEST_CHILD";

fn main() {
    match std::env::var(CHILD) {
        Ok(grace) => child(&grace),
        Err(_) => {
            first_signal_stops_accepting_and_lets_connections_finish();
            second_signal_cuts_the_grace_period();
            println!("net_signal: 2 tests passed");
        }
    }
}

/// The server: two cores, signals handled by the runtime.
fn child(grace_ms: &str) {
    let rt = percore::Runtime::builder()
        .cores(2)
        .pin(false)
        .shutdown_on_signals(true)
        .shutdown_grace(Duration::from_millis(grace_ms.parse().unwrap()))
        .build()
        .unwrap();
    // The thread that prints the address must not take the signals either.
    // SAFETY: a zeroed sigset_t initialized by sigemptyset; pthread_sigmask
    // only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let announcer = std::thread::spawn(move || {
        let addr: SocketAddr = addr_rx.recv().unwrap();
        println!("ADDR {addr}");
        std::io::stdout().flush().unwrap();
    });
    let accepted = support::serve(rt, addr_tx).unwrap();
    announcer.join().unwrap();
    println!("STOPPED {}", accepted.iter().sum::<usize>());
}

/// Starts the child and reads the address it serves on.
fn spawn_server(grace: Duration) -> (Child, BufReader<std::process::ChildStdout>, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, grace.as_millis().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("ADDR ")
        .unwrap_or_else(|| panic!("child said {line:?}"))
        .trim()
        .parse()
        .unwrap();
    (child, out, addr)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits for the child to exit (killing it after `limit`) and returns its
/// remaining output.
fn wait_exit(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
    limit: Duration,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "server exited with {status}");
            let mut rest = String::new();
            out.read_to_string(&mut rest).unwrap();
            return rest;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server still running {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn echo_once(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

fn first_signal_stops_accepting_and_lets_connections_finish() {
    let (child, out, addr) = spawn_server(Duration::from_secs(3600));
    let mut conns: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut conns {
        echo_once(c, b"before");
    }
    signal(&child, libc::SIGTERM);
    // No new connections once the listeners closed.
    // (Probes that connect before the signal reaches the accept loops may
    // be accepted too; the server closes them at once.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut probes = 0;
    while TcpStream::connect(addr).is_ok() {
        probes += 1;
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each open connection is closed at its next request boundary: a request
    // that reaches a handler waiting in `read` is answered first; a handler
    // that saw the shutdown right after its last answer closes at once.
    for c in &mut conns {
        let _ = c.write_all(b"after");
        let got = support::read_until_closed(c);
        assert!(got.is_empty() || got == b"after", "got {got:?}");
    }
    // Every connection done: the server exits long before its hour of grace.
    let rest = wait_exit(child, out, Duration::from_secs(60));
    let accepted: usize = rest
        .trim()
        .strip_prefix("STOPPED ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (6..=6 + probes).contains(&accepted),
        "{accepted} accepted, {probes} probes"
    );
}

fn second_signal_cuts_the_grace_period() {
    let (child, out, addr) = spawn_server(Duration::from_secs(3600));
    let mut idle = TcpStream::connect(addr).unwrap();
    echo_once(&mut idle, b"hi");
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    // The idle connection would hold the server for an hour; a second
    // signal ends the wait.
    signal(&child, libc::SIGINT);
    let rest = wait_exit(child, out, Duration::from_secs(60));
    assert_eq!(rest.trim(), "STOPPED 1");
}
