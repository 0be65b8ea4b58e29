//! 10,000 concurrent connections on loopback, each doing one round trip and
//! all held open at the same time.
//!
//! Client and server side would need 20,000+ descriptors in one process, so
//! the server runs in a child process: this test binary started again with
//! `PERCORE_NET_MANY_SERVER=1`, running the ignored `server_process` helper.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use percore_net::{TcpListener, TcpStream};

const CONNS: usize = 10_000;
/// Connects in flight at once (the listen backlog is finite).
const WAVE: usize = 500;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft one.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit on this frame.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

#[test]
#[ignore = "helper: the server side of ten_thousand_concurrent_connections, run in a child process"]
fn server_process() {
    if std::env::var_os("PERCORE_NET_MANY_SERVER").is_none() {
        return;
    }
    raise_nofile();
    percore::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        let open = Rc::new(std::cell::Cell::new(0usize));
        let max = Rc::new(std::cell::Cell::new(0usize));
        // Stop when the parent closes our stdin (or after a hard deadline).
        let stop = percore::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        let (open2, max2) = (open.clone(), max.clone());
        let server = percore::spawn(async move {
            let mut incoming = listener.incoming();
            loop {
                let conn = match incoming.next().await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("accept: {e}");
                        percore::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                open2.set(open2.get() + 1);
                max2.set(max2.get().max(open2.get()));
                let open3 = open2.clone();
                percore::spawn(async move {
                    let mut buf = Vec::with_capacity(64);
                    loop {
                        buf.clear();
                        let (res, b) = conn.read(buf).await;
                        match res {
                            Ok(n) if n > 0 => {}
                            _ => break,
                        }
                        let (res, b) = conn.write_all(b).await;
                        if res.is_err() {
                            break;
                        }
                        buf = b;
                    }
                    open3.set(open3.get() - 1);
                });
            }
        });
        let _ = percore::time::timeout(Duration::from_secs(120), stop).await;
        drop(server);
        println!("MAX {}", max.get());
    });
}

#[test]
fn ten_thousand_concurrent_connections() {
    let limit = raise_nofile();
    if limit < CONNS as u64 + 100 {
        eprintln!(
            "SKIP ten_thousand_concurrent_connections: RLIMIT_NOFILE hard limit {limit} is \
             below {} (raise it with `ulimit -Hn`)",
            CONNS + 100
        );
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "server_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERCORE_NET_MANY_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port: u16 = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "server child exited early"
        );
        // libtest prints "test server_process ... " on the same line.
        if let Some(p) = line.split("PORT ").nth(1) {
            break p.trim().parse().unwrap();
        }
    };

    let start = Instant::now();
    let streams = percore::run(async move {
        let mut streams: Vec<TcpStream> = Vec::with_capacity(CONNS);
        for wave in 0..CONNS / WAVE {
            let tasks: Vec<_> = (0..WAVE)
                .map(|i| {
                    let id = (wave * WAVE + i) as u64;
                    percore::spawn(async move {
                        let s = TcpStream::connect(("127.0.0.1", port)).await?;
                        s.write_all(id.to_le_bytes().to_vec()).await.0?;
                        let (res, buf) = s.read_exact(Vec::with_capacity(8)).await;
                        res?;
                        assert_eq!(
                            buf,
                            id.to_le_bytes(),
                            "connection {id} got someone else's echo"
                        );
                        Ok::<_, std::io::Error>(s)
                    })
                })
                .collect();
            for t in percore::join_all(tasks).await {
                streams.push(t.unwrap().unwrap());
            }
        }
        streams.len()
    });
    let elapsed = start.elapsed();
    assert_eq!(streams, CONNS);

    // The runtime (and every client socket) is gone: stop the server and
    // read how many connections it held at once.
    drop(child.stdin.take());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "server child failed");
    let max: usize = rest
        .lines()
        .find_map(|l| l.split("MAX ").nth(1))
        .expect("server printed no MAX line")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(max, CONNS, "the server never held all connections at once");
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    eprintln!("{CONNS} connections, one round trip each, all open at once: {elapsed:?}");
}
