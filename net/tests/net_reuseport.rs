//! `ReservedPort`: several cores asking for port 0 share one port, and
//! every core's listener accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use percore_net::ReservedPort;

#[test]
fn two_cores_bind_port_zero_to_the_same_port_and_both_accept() {
    let port = ReservedPort::new("127.0.0.1:0").unwrap();
    let addr = port.local_addr();
    assert_ne!(addr.port(), 0);
    let accepted: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let stop = Arc::new(AtomicBool::new(false));

    // Connects until each core has accepted at least once (the kernel
    // hashes connections over the listeners), within a bound.
    let client = {
        let (accepted, stop) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut conns = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while conns.len() < 400 && Instant::now() < deadline {
                if accepted.iter().all(|n| n.load(Ordering::Acquire) > 0) {
                    break;
                }
                if let Ok(c) = std::net::TcpStream::connect(addr) {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            // Give the last accepts a moment, then stop the cores.
            std::thread::sleep(Duration::from_millis(50));
            stop.store(true, Ordering::Release);
            conns.len()
        })
    };

    let (acc, st) = (accepted.clone(), stop.clone());
    let bound = percore::Runtime::builder()
        .cores(2)
        .build()
        .unwrap()
        .run_on_every_core(move |core| {
            let listener = port.listener();
            let (accepted, stop) = (acc.clone(), st.clone());
            async move {
                let listener = listener.unwrap();
                let local = listener.local_addr().unwrap();
                let mut conns = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    percore::select! {
                        Ok((conn, _)) = listener.accept() => {
                            conns.push(conn);
                            accepted[core].fetch_add(1, Ordering::AcqRel);
                        }
                        () = percore::time::sleep(Duration::from_millis(5)) => {}
                        else => {}
                    }
                }
                local
            }
        })
        .unwrap();
    let connects = client.join().unwrap();

    assert_eq!(bound, [addr, addr], "both cores are on the reserved port");
    let counts = [
        accepted[0].load(Ordering::Acquire),
        accepted[1].load(Ordering::Acquire),
    ];
    assert!(
        counts.iter().all(|&n| n > 0),
        "both cores accept: {counts:?} of {connects} connections"
    );
}

#[test]
fn a_fixed_port_is_reserved_as_given() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = taken.local_addr().unwrap();
    drop(taken);
    let port = ReservedPort::new(free).unwrap();
    assert_eq!(port.local_addr(), free);
    percore::run(async move {
        let a = port.listener().unwrap();
        let b = port.clone().listener().unwrap();
        assert_eq!(a.local_addr().unwrap(), free);
        assert_eq!(b.local_addr().unwrap(), free);
    });
}

#[test]
fn a_port_held_without_reuseport_cannot_be_reserved() {
    use percore::IoErrorExt;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = ReservedPort::new(addr).unwrap_err();
    assert_eq!(err.os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
