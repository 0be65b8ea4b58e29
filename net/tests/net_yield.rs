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

/// The same echo with task queues: the echo in a latency-sensitive queue,
/// the spinning tasks in a background queue with equal shares, calling
/// `yield_if_needed` instead of yielding after every turn.
#[test]
fn an_echo_round_trip_in_a_latency_queue_waits_a_few_turns_of_16_background_tasks() {
    use percore::task::{Latency, TaskQueue, yield_if_needed};

    let (turns_per_round_trip, turns) = percore::run(async {
        let echo = TaskQueue::new("echo", 100, Latency::Matters(Duration::from_millis(1)));
        let background = TaskQueue::new("background", 100, Latency::NotImportant);
        let turns = Rc::new(Cell::new(0usize));
        let stop = Rc::new(Cell::new(false));
        let until = Instant::now() + Duration::from_secs(10);
        for _ in 0..YIELDERS {
            let (turns, stop) = (turns.clone(), stop.clone());
            background.spawn(async move {
                while !stop.get() && Instant::now() < until {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_micros(100) {
                        std::hint::spin_loop();
                    }
                    turns.set(turns.get() + 1);
                    yield_if_needed().await;
                }
            });
        }

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        echo.spawn(async move {
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
        let client = echo.spawn({
            let turns = turns.clone();
            async move {
                let conn = TcpStream::connect(addr).await.unwrap();
                let before = turns.get();
                for i in 0..ROUND_TRIPS {
                    let msg = format!("ping {i:02}").into_bytes();
                    conn.write_all(msg.clone()).await.0.unwrap();
                    let (res, echoed) = conn.read_exact(Vec::with_capacity(msg.len())).await;
                    res.unwrap();
                    assert_eq!(echoed, msg);
                }
                (turns.get() - before) / ROUND_TRIPS
            }
        });
        let per_round_trip = client.await.unwrap();
        stop.set(true);
        (per_round_trip, turns.get())
    });
    // A round trip needs two or three reaps (server receive, client
    // receive); a pass lasts at most 200 µs (less with the echo queue's
    // 1 ms goal once completions wait), about two 100 µs turns of
    // background work, plus one a task may overrun.
    assert!(
        turns_per_round_trip <= YIELDERS + 4,
        "{turns_per_round_trip} turns of background work per echo round trip"
    );
    assert!(turns > 0, "the background never ran");
}
