//! Accept under EMFILE: the listener reports the error (single and
//! multishot accept), keeps the connection queued, and accepts it once
//! descriptors are free again.
//!
//! This binary holds a single test on purpose: it lowers RLIMIT_NOFILE for
//! the whole process, which would break tests running beside it.

use std::fs::File;
use std::time::Duration;

use percore_net::{TcpListener, TcpStream};

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a struct on this frame.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit from a struct on this frame.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// Opens files until the descriptor table is full; returns them.
fn exhaust_fds() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return files;
            }
        }
        assert!(files.len() < 10_000, "RLIMIT_NOFILE was not lowered");
    }
}

#[test]
fn accept_reports_emfile_and_recovers() {
    let saved = nofile();
    percore::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Client sockets must exist before the table is full.
        let clients: Vec<socket2::Socket> = (0..2)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect();
        let mut incoming = listener.incoming();

        // 1. Leave a few descriptors of headroom, then use them all up.
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        set_nofile(libc::rlimit {
            rlim_cur: open + 16,
            rlim_max: saved.rlim_max,
        });
        let fillers = exhaust_fds();

        // 2. Connections queue in the kernel, but accepting needs a descriptor.
        for c in &clients {
            c.connect(&addr.into()).unwrap();
        }
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        let err = incoming.next().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
        // Asking again (after a back-off) still reports it, no busy loop needed.
        percore::time::sleep(Duration::from_millis(10)).await;
        let err = incoming.next().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");

        // 3. Free the descriptors and restore the limit: both queued
        //    connections are accepted and work.
        drop(fillers);
        set_nofile(saved);
        let (a, peer) = listener.accept().await.unwrap();
        let b = incoming.next().await.unwrap();
        let mut locals: Vec<_> = clients
            .iter()
            .map(|c| c.local_addr().unwrap().as_socket().unwrap())
            .collect();
        locals.sort();
        let mut peers = vec![peer, b.peer_addr().unwrap()];
        peers.sort();
        assert_eq!(peers, locals);
        drop((a, b));
        // And new connections work end to end.
        let s = TcpStream::connect(addr).await.unwrap();
        let c = incoming.next().await.unwrap();
        s.write_all(b"after".to_vec()).await.0.unwrap();
        let (res, buf) = c.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(buf, b"after");
    });
    set_nofile(saved);
}
