//! Task queues: CPU in proportion to shares, an idle queue's share going to
//! the busy ones, latency-sensitive tasks running within their goal beside
//! spinning background tasks, no queue starving.
//!
//! Shares are checked on the CPU time the executor accounts to each queue
//! (the time its polls took), which is what the scheduler balances: a
//! noisy machine that takes the thread away in the middle of a poll makes
//! that poll longer, and the scheduler charges and compensates it. Latency
//! bounds are generous multiples of the goal, and every busy loop also
//! stops after a few seconds, so a broken scheduler fails instead of
//! hanging. The tests run one at a time (`serial`), so that they do not
//! take the CPU from each other.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use percore::JoinHandle;
use percore::task::{Latency, TaskQueue, need_yield, yield_if_needed};
use percore::time::sleep;

mod support;

/// Held by each test while it runs.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long this thread has waited for a CPU while it could run
/// (`/proc/thread-self/schedstat`): time the machine took, not the
/// executor.
fn run_delay() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

/// Burns `d` of CPU without yielding.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// No busy loop runs longer than this after it was spawned, whatever the
/// scheduler does.
const CAP: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Yield {
    /// `yield_if_needed` after every chunk.
    IfNeeded,
    /// `yield_now` after every chunk.
    Always,
}

/// `n` tasks in `q`, each spinning `chunk` at a time until `stop`; each
/// returns the chunks it did.
fn spinners(
    q: TaskQueue,
    n: usize,
    chunk: Duration,
    how: Yield,
    stop: &Rc<Cell<bool>>,
) -> Vec<JoinHandle<u64>> {
    let until = Instant::now() + CAP;
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            q.spawn(async move {
                let mut chunks = 0;
                while !stop.get() && Instant::now() < until {
                    spin(chunk);
                    chunks += 1;
                    match how {
                        Yield::IfNeeded => yield_if_needed().await,
                        Yield::Always => percore::yield_now().await,
                    }
                }
                chunks
            })
        })
        .collect()
}

async fn stop_all(stop: &Rc<Cell<bool>>, tasks: Vec<JoinHandle<u64>>) -> Vec<u64> {
    stop.set(true);
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn two_to_one(how: Yield) {
    let _serial = serial();
    let samples = percore::run(async move {
        let a = TaskQueue::new("a", 200, Latency::NotImportant);
        let b = TaskQueue::new("b", 100, Latency::NotImportant);
        let stop = Rc::new(Cell::new(false));
        let mut tasks = spinners(a, 2, Duration::from_micros(20), how, &stop);
        tasks.extend(spinners(b, 2, Duration::from_micros(20), how, &stop));
        // The CPU each queue had so far, every 20 ms.
        let mut samples = Vec::new();
        for _ in 0..25 {
            sleep(Duration::from_millis(20)).await;
            samples.push((a.stats().cpu, b.stats().cpu));
        }
        let chunks = stop_all(&stop, tasks).await;
        assert!(
            chunks.iter().all(|&c| c > 0),
            "a task never ran: {chunks:?}"
        );
        samples
    });
    // The scheduler balances what it charged, so the totals meet 2:1 again
    // soon after any poll that ran long (the OS took the thread away in
    // it); the median over the samples after a warm-up is what the shares
    // gave.
    let mut ratios: Vec<f64> = samples[5..].iter().map(|&(a, b)| ratio(a, b)).collect();
    ratios.sort_by(f64::total_cmp);
    let r = ratios[ratios.len() / 2];
    assert!(
        (1.8..=2.2).contains(&r),
        "shares 2:1 gave CPU {r:.3} : 1 (ratios {ratios:.2?}; CPU {:?})",
        samples.last()
    );
}

#[test]
fn shares_two_to_one_give_two_to_one_cpu_to_tasks_that_yield_if_needed() {
    two_to_one(Yield::IfNeeded);
}

#[test]
fn shares_two_to_one_give_two_to_one_cpu_to_tasks_that_always_yield() {
    two_to_one(Yield::Always);
}

#[test]
fn an_idle_queue_share_goes_to_the_busy_one_and_idling_earns_no_credit() {
    let _serial = serial();
    percore::run(async {
        // `b` has three times `a`'s shares but nothing to do at first.
        let a = TaskQueue::new("a", 100, Latency::NotImportant);
        let b = TaskQueue::new("b", 300, Latency::NotImportant);
        let stop = Rc::new(Cell::new(false));
        let busy_a = spinners(a, 1, Duration::from_micros(20), Yield::IfNeeded, &stop);

        // 1. `b` sleeps: `a` gets the core, not a quarter of it. (Of the
        //    time the thread had a CPU: a noisy machine's own waits for one
        //    do not count.)
        let (started, waited) = (Instant::now(), run_delay());
        let sleeper = b.spawn(sleep(Duration::from_millis(150)));
        sleeper.await.unwrap();
        let phase1 = started.elapsed().saturating_sub(run_delay() - waited);
        let a1 = a.stats().cpu;
        assert!(
            ratio(a1, phase1) >= 0.6,
            "alone, `a` got {a1:?} of CPU in {phase1:?}"
        );

        // 2. `b` gets busy: it takes about its three quarters, and does not
        //    collect the 150 ms it idled away (that would leave `a` nothing
        //    for the next 450 ms).
        let b0 = b.stats().cpu;
        let busy_b = spinners(b, 1, Duration::from_micros(20), Yield::IfNeeded, &stop);
        // `a`'s part of the CPU since `b` woke, every 10 ms; the median of
        // the samples after the first 50 ms (a poll that the OS stretched
        // skews a few samples, not most).
        let mut shares = Vec::new();
        for i in 0..15 {
            sleep(Duration::from_millis(10)).await;
            let (da, db) = (a.stats().cpu - a1, b.stats().cpu - b0);
            if i >= 4 {
                shares.push(ratio(da, da + db));
            }
        }
        shares.sort_by(f64::total_cmp);
        let a_share = shares[shares.len() / 2];
        assert!(
            (0.15..=0.40).contains(&a_share),
            "after `b` woke, `a` got {a_share:.2} of the CPU (shares give 0.25): {shares:.2?}"
        );
        stop_all(&stop, busy_a).await;
        stop_all(&stop, busy_b).await;
    });
}

#[test]
fn a_latency_sensitive_task_woken_by_a_timer_runs_within_its_goal_beside_16_spinning_tasks() {
    let _serial = serial();
    const GOAL: Duration = Duration::from_millis(1);
    const SLEEPS: usize = 40;
    const CHUNK: Duration = Duration::from_micros(100);
    let (wakes, ends, stats) = percore::run(async {
        let background = TaskQueue::new("background", 100, Latency::NotImportant);
        let requests = TaskQueue::new("requests", 100, Latency::Matters(GOAL));
        let stop = Rc::new(Cell::new(false));
        // When each background chunk ended.
        let ends = Rc::new(RefCell::new(Vec::new()));
        let until = Instant::now() + CAP;
        let bg: Vec<_> = (0..16)
            .map(|_| {
                let (stop, ends) = (stop.clone(), ends.clone());
                background.spawn(async move {
                    while !stop.get() && Instant::now() < until {
                        spin(CHUNK);
                        ends.borrow_mut().push(Instant::now());
                        yield_if_needed().await;
                    }
                    0
                })
            })
            .collect();
        let wakes = requests
            .spawn(async {
                let mut wakes = Vec::new();
                for _ in 0..SLEEPS {
                    let deadline = Instant::now() + Duration::from_millis(2);
                    percore::time::sleep_until(deadline).await;
                    wakes.push((deadline, Instant::now()));
                }
                wakes
            })
            .await
            .unwrap();
        stop_all(&stop, bg).await;
        let ends = ends.borrow().clone();
        (wakes, ends, requests.stats())
    });
    // Lateness in chunks of background work that ended between a deadline
    // and the task running, not in wall time: the OS taking the thread away
    // on a busy machine stretches both alike. The timer wheel fires on 1 ms
    // ticks (up to 10 chunks), a pass lasts half the goal (5) and may end
    // one chunk late. Without queues, the 16 tasks would each take a turn
    // (16 and more).
    let mut late: Vec<usize> = wakes
        .iter()
        .map(|&(deadline, woke)| ends.iter().filter(|&&t| t > deadline && t <= woke).count())
        .collect();
    late.sort();
    let (median, p90) = (late[SLEEPS / 2], late[SLEEPS * 9 / 10]);
    assert!(
        median <= 18 && p90 <= 30,
        "chunks past the deadline: {late:?}"
    );
    assert!(
        stats.delay_p50 <= GOAL,
        "the latency-sensitive queue waited {:?} (p50) for its turns: {stats:?}",
        stats.delay_p50
    );
    // The background work went on meanwhile (80 ms and more of wall time).
    assert!(
        ends.len() >= 100,
        "only {} background chunks ran",
        ends.len()
    );
}

#[test]
fn no_queue_starves_whatever_its_shares_or_the_latency_goals_around_it() {
    let _serial = serial();
    let (chunks, cpu) = percore::run(async {
        let tiny = TaskQueue::new("tiny", 1, Latency::NotImportant);
        let big = TaskQueue::new("big", 1000, Latency::NotImportant);
        let eager = TaskQueue::new("eager", 100, Latency::Matters(Duration::from_micros(100)));
        let default = TaskQueue::default_queue();
        let stop = Rc::new(Cell::new(false));
        let chunk = Duration::from_micros(20);
        let mut tasks = Vec::new();
        for q in [tiny, big, eager, default] {
            tasks.extend(spinners(q, 1, chunk, Yield::IfNeeded, &stop));
        }
        sleep(Duration::from_millis(300)).await;
        let chunks = stop_all(&stop, tasks).await;
        let cpu: Vec<Duration> = [tiny, big, eager, default]
            .iter()
            .map(|q| q.stats().cpu)
            .collect();
        (chunks, cpu)
    });
    assert!(chunks.iter().all(|&c| c > 0), "a queue starved: {chunks:?}");
    let total: Duration = cpu.iter().sum();
    // `big` has 1000 of 1201 shares; the latency goal of `eager` takes
    // some of it (a short turn whenever it waited 100 µs), not most.
    assert!(
        ratio(cpu[1], total) >= 0.4,
        "big queue got {:?} of {total:?}: {cpu:?}",
        cpu[1]
    );
}

#[test]
fn tasks_inherit_their_spawner_queue_and_come_back_to_it_after_remote_wakes() {
    let _serial = serial();
    percore::run(async {
        let q = TaskQueue::new("q", 100, Latency::NotImportant);
        assert_eq!(TaskQueue::current(), TaskQueue::default_queue());
        let (outer, inner, after_remote) = q
            .spawn(async {
                let outer = TaskQueue::current();
                let inner = percore::spawn(async { TaskQueue::current() })
                    .await
                    .unwrap();
                // Woken from the blocking pool's thread: the remote path.
                percore::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
                    .await
                    .unwrap();
                (outer, inner, TaskQueue::current())
            })
            .await
            .unwrap();
        assert_eq!(outer, q);
        assert_eq!(inner, q);
        assert_eq!(after_remote, q);
        let s = q.stats();
        assert_eq!((s.spawned, s.finished), (2, 2), "{s:?}");
        assert!(s.polls >= 3, "{s:?}");
        // The main future is no task: what it spawns goes to the default queue.
        let before = TaskQueue::default_queue().stats().spawned;
        percore::spawn(async {}).await.unwrap();
        assert_eq!(TaskQueue::default_queue().stats().spawned, before + 1);
    });
}

#[test]
fn the_default_queue_alone_counts_polls_and_tasks_but_reads_no_clock_for_them() {
    percore::run(async {
        let q = TaskQueue::default_queue();
        let before = q.stats();
        for _ in 0..10 {
            percore::spawn(async { percore::yield_now().await })
                .await
                .unwrap();
        }
        let after = q.stats();
        assert_eq!(after.spawned - before.spawned, 10);
        assert_eq!(after.finished - before.finished, 10);
        assert!(after.polls - before.polls >= 20, "{after:?}");
        assert_eq!(after.cpu, Duration::ZERO);
        assert_eq!(after.turns, 0);
    });
}

/// While the default queue is alone a pass counts polls only in the
/// executor's counters; the queue's own count follows from them, and
/// carries over when a second queue starts charging each queue its polls.
#[test]
fn the_default_queue_polls_are_the_executor_s_alone_and_carry_over_to_classes() {
    percore::run(async {
        for _ in 0..5 {
            percore::spawn(async { percore::yield_now().await })
                .await
                .unwrap();
        }
        let alone = percore::stats();
        assert!(alone.executor.polled >= 10, "{alone:?}");
        assert_eq!(alone.queues[0].polls, alone.executor.polled);
        assert_eq!(
            TaskQueue::default_queue().stats().polls,
            alone.executor.polled
        );

        // Polls no counter read saw before the second queue appears.
        for _ in 0..3 {
            percore::spawn(async {}).await.unwrap();
        }
        let bulk = TaskQueue::new("bulk", 100, Latency::NotImportant);
        bulk.spawn(async {}).await.unwrap();
        percore::spawn(async {}).await.unwrap();
        let classes = percore::stats();
        assert!(
            classes.queues[0].polls > alone.executor.polled,
            "the polls before the second queue are kept: {classes:?}"
        );
        assert_eq!(
            classes.queues[0].polls + classes.queues[1].polls,
            classes.executor.polled,
            "{classes:?}"
        );
    });
}

#[test]
fn need_yield_turns_true_within_a_pass_even_with_the_default_queue_alone() {
    let _serial = serial();
    let polls = percore::run(async {
        percore::spawn(async {
            let start = Instant::now();
            let mut checks = 0u64;
            while !percore::task::need_yield() {
                checks += 1;
                assert!(start.elapsed() < CAP, "need_yield never turned true");
            }
            checks
        })
        .await
        .unwrap()
    });
    assert!(polls > 0);
}

/// A future that waits until it is opened, keeping its waker where the
/// opener (on this thread or another) finds it.
#[derive(Clone, Default)]
struct Gate(Arc<(AtomicBool, Mutex<Option<Waker>>)>);

impl Gate {
    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.0.0.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *self.0.1.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn is_waiting(&self) -> bool {
        self.0.1.lock().unwrap().is_some()
    }

    fn open(&self) {
        self.0.0.store(true, Ordering::Release);
        if let Some(w) = self.0.1.lock().unwrap().take() {
            w.wake();
        }
    }
}

/// Runs `waiter` in a latency-sensitive queue (a 1 s goal, so that no
/// deadline of its own comes due) and, once `is_waiting` says it waits, a
/// task of a background queue that calls `wake` in the middle of its turn.
/// The background task first does 2 ms of work, so that the waiter's queue
/// is under its share. Returns what `need_yield` said in the background
/// task: at the start of some fresh turn (the first of up to 50 that says
/// no: a turn the OS stretched past its time may say yes), and right after
/// `wake`, 60 µs into that turn.
///
/// Without the checks these tests are about, `need_yield` says yes only
/// once the pass's 200 µs are over: a machine that stalls the thread that
/// long in between makes them pass without the checks too, never fail
/// with them.
fn need_yield_around<T: 'static>(
    waiter: impl Future<Output = T> + 'static,
    is_waiting: impl Fn() -> bool + 'static,
    wake: impl FnOnce() + 'static,
) -> (bool, bool) {
    let _serial = serial();
    percore::run(async {
        let requests = TaskQueue::new("requests", 100, Latency::Matters(Duration::from_secs(1)));
        let background = TaskQueue::new("background", 100, Latency::NotImportant);
        let waiter = requests.spawn(waiter);
        let seen = background
            .spawn(async move {
                let until = Instant::now() + CAP;
                while !is_waiting() {
                    assert!(Instant::now() < until, "the waiter never waited");
                    percore::yield_now().await;
                }
                // Ahead of the waiter in CPU (its first poll may have been
                // slow): it is under its share, the case where its wake
                // must end this queue's turn at once.
                for _ in 0..20 {
                    spin(Duration::from_micros(100));
                    percore::yield_now().await;
                }
                let mut before = true;
                for _ in 0..50 {
                    percore::yield_now().await;
                    if !need_yield() {
                        before = false;
                        break;
                    }
                }
                // Past the quarter of the pass (200 µs) after which a turn
                // yields to waiting work.
                spin(Duration::from_micros(60));
                wake();
                (before, need_yield())
            })
            .await
            .unwrap();
        waiter.await.unwrap();
        seen
    })
}

#[test]
fn need_yield_turns_true_once_a_latency_sensitive_task_is_woken() {
    let gate = Gate::default();
    let (g1, g2, g3) = (gate.clone(), gate.clone(), gate);
    let (before, after) = need_yield_around(
        async move { g1.wait().await },
        move || g2.is_waiting(),
        move || g3.open(),
    );
    assert!(!before, "need_yield said yes in every fresh turn");
    assert!(
        after,
        "a latency-sensitive task was woken, need_yield said no"
    );
}

#[test]
fn need_yield_turns_true_once_another_thread_wakes_a_task_here() {
    let gate = Gate::default();
    let (g1, g2, g3) = (gate.clone(), gate.clone(), gate);
    // The thread exists before the turn and spins (starting one, or waking
    // one that sleeps, can take longer than a pass); it opens the gate when
    // told, and says when it has.
    let go = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicBool::new(false));
    let (told, done) = (go.clone(), opened.clone());
    let opener = std::thread::spawn(move || {
        let until = Instant::now() + CAP;
        while !told.load(Ordering::Acquire) {
            if Instant::now() >= until {
                return;
            }
            std::hint::spin_loop();
        }
        g3.open();
        done.store(true, Ordering::Release);
    });
    let (before, after) = need_yield_around(
        async move { g1.wait().await },
        move || g2.is_waiting(),
        move || {
            go.store(true, Ordering::Release);
            while !opened.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        },
    );
    opener.join().unwrap();
    assert!(!before, "need_yield said yes in every fresh turn");
    assert!(
        after,
        "a task was woken from another thread, need_yield said no"
    );
}

#[test]
fn need_yield_turns_true_once_a_completion_waits_on_io_uring() {
    let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = percore::fd::SharedFd::new(mine.into());
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let io_uring = Rc::new(Cell::new(false));
    let driver = io_uring.clone();
    let (before, after) = need_yield_around(
        async move {
            driver.set(percore::capabilities().unwrap().driver == percore::DriverKind::IoUring);
            let recv = percore::op::Op::new(percore::op::Recv::new(fd, Vec::with_capacity(8)));
            s.set(true);
            let (n, buf) = recv.await;
            assert_eq!((n.unwrap(), &buf[..]), (1, &b"x"[..]));
        },
        // Its receive reaches the kernel when its turn ends.
        move || started.get(),
        move || theirs.write_all(b"x").unwrap(),
    );
    assert!(!before, "need_yield said yes in every fresh turn");
    // The epoll driver learns of a socket turned ready only from a
    // syscall, which need_yield does not make; on io_uring the kernel
    // posts the completion (or its deferred work) to shared memory.
    if io_uring.get() {
        assert!(after, "a completion waited in the ring, need_yield said no");
    }
}

#[test]
#[should_panic(expected = "another core")]
fn a_queue_cannot_be_used_on_another_runtime() {
    let q = percore::run(async { TaskQueue::new("here", 100, Latency::NotImportant) });
    percore::run(async move {
        q.spawn(async {});
    });
}

#[test]
fn a_file_io_limit_makes_a_queue_ops_wait_for_a_slot_and_leaves_others_alone() {
    let _serial = serial();
    percore::run(async {
        let copy = TaskQueue::new("copy", 100, Latency::NotImportant);
        let reads = TaskQueue::new("reads", 100, Latency::NotImportant);
        copy.set_file_io_limit(Some(2));
        // A regular file: its writes are in flight until they complete,
        // on either driver (a device like /dev/null can finish inline).
        let tmp = support::fs::TempPath::new("io-limit");
        let null = Rc::new(percore::fs::File::create(tmp.path()).await.unwrap());
        // Eight writes from each queue, all started in the same pass.
        let writers: Vec<_> = [copy, reads]
            .iter()
            .flat_map(|q| {
                (0..8).map(|_| {
                    let null = null.clone();
                    q.spawn(async move { null.write_at(vec![7u8; 512], 0).await.0.unwrap() })
                })
            })
            .collect();
        for w in writers {
            assert_eq!(w.await.unwrap(), 512);
        }
        let (c, r) = (copy.stats(), reads.stats());
        assert_eq!((c.file_ops, r.file_ops), (8, 8), "{c:?} {r:?}");
        // Two of `copy`'s writes went in, six waited for them.
        assert!(c.file_op_waits >= 6, "{c:?}");
        assert_eq!(r.file_op_waits, 0, "{r:?}");
        // Lifting the limit: no more waits.
        copy.set_file_io_limit(None);
        let before = copy.stats().file_op_waits;
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let null = null.clone();
                copy.spawn(async move { null.write_at(vec![7u8; 512], 0).await.0.unwrap() })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(copy.stats().file_op_waits, before);
    });
}
