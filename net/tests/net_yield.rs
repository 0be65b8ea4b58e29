//! Echo round trips go on while tasks spin and yield on the same core: a
//! yielded task waits for the next reap of completions, so a received
//! message never waits behind a long run of yields.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use percore_net::{TcpListener, TcpStream};

const YIELDERS: usize = 16;
const ROUND_TRIPS: usize = 20;

#[test]
fn an_echo_round_trip_completes_while_16_tasks_spin_and_yield() {
    let turns_per_round_trip = percore::run(async {
        let turns = Rc::new(Cell::new(0usize));
        let stop = Rc::new(Cell::new(false));
        for _ in 0..YIELDERS {
            let (turns, stop) = (turns.clone(), stop.clone());
            percore::spawn(async move {
                while !stop.get() {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_micros(100) {
                        std::hint::spin_loop();
                    }
                    turns.set(turns.get() + 1);
                    percore::yield_now().await;
                }
            });
        }

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        percore::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let mut buf = Vec::with_capacity(64);
            loop {
                buf.clear();
                let (res, b) = conn.read(buf).await;
                if res.unwrap() == 0 {
                    return;
                }
                let (res, b) = conn.write_all(b).await;
                res.unwrap();
                buf = b;
            }
        });
        let conn = TcpStream::connect(addr).await.unwrap();
        let before = turns.get();
        for i in 0..ROUND_TRIPS {
            let msg = format!("ping {i:02}").into_bytes();
            conn.write_all(msg.clone()).await.0.unwrap();
            let (res, echoed) = conn.read_exact(Vec::with_capacity(msg.len())).await;
            res.unwrap();
            assert_eq!(echoed, msg);
        }
        stop.set(true);
        (turns.get() - before) / ROUND_TRIPS
    });
    // A round trip takes a few loop ticks (client write, server read and
    // write, client read); each tick runs the woken tasks and one pass of
    // about 200 µs of yielders. Before yielded tasks waited for the reap,
    // each tick ran 128 turns (12.8 ms) of them.
    assert!(
        turns_per_round_trip <= YIELDERS * 2,
        "{turns_per_round_trip} turns of the yielding tasks per echo round trip"
    );
}
