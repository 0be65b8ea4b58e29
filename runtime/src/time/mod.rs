//! Timers: `sleep`, `sleep_until`, `timeout`, `interval`.
//!
//! Provides: per-core timers on a hierarchical wheel (`wheel.rs`) with O(1)
//! insert and cancel, 1 ms resolution. No SQE per timer: the loop asks for the
//! nearest deadline and passes it as the timeout of the `io_uring_enter` it
//! parks in, then fires what is due.
//!
//! A timer remembers its wheel: every key carries the wheel's process-unique
//! id. `Sleep` is `Send`, so it may be polled or dropped while another runtime
//! is current; it then never reaches that runtime's timers (see [`Sleep`]).
//!
//! Far deadlines are clamped like tokio's: a duration that overflows
//! `Instant` becomes about 30 years from now, and a deadline further than
//! `u64` milliseconds from the runtime's start waits at the wheel's last tick.
//!
//! May not: touch the ring directly.

#![forbid(unsafe_code)]

mod wheel;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use self::wheel::{TimerKey, Wheel};

/// How far ahead a deadline that does not fit in an `Instant` is put: about
/// 30 years, as tokio does. Nothing in the loop waits that long.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A deadline standing for "never" in practice: [`FAR_FUTURE`] from now.
fn far_future() -> Instant {
    Instant::now() + FAR_FUTURE
}

/// `from + duration`, or [`far_future`] where that overflows `Instant`.
fn deadline_after(from: Instant, duration: Duration) -> Instant {
    from.checked_add(duration).unwrap_or_else(far_future)
}

/// One core's timers.
pub(crate) struct Timers {
    wheel: RefCell<Wheel>,
    start: Instant,
    /// No timer is due before this: a tick at or before every pending
    /// timer's (`u64::MAX`: none pending), and the instant it starts
    /// (`None`: beyond `Instant`'s range, never reached). Kept so that the
    /// loop's every turn compares two instants instead of turning its clock
    /// reading into a tick. Removing the timer it names works it out again;
    /// other removals (and moves to later) leave it as it is, early: the
    /// loop then wakes once for nothing and works it out again.
    next: Cell<(u64, Option<Instant>)>,
    /// [`CLOCK_FREE_AHEAD`] after the loop's last clock reading (or a
    /// sleep's, if one read the clock since): a deadline at or past it is
    /// taken as not reached by a sleep's first poll, which then reads no
    /// clock (see [`Timers::surely_ahead`]). `None` after a turn that read
    /// no clock (no timer pending): the next sleep reads it.
    ahead: Cell<Option<Instant>>,
}

/// How far past the loop's last clock reading a deadline must lie for a
/// sleep's first poll to take it as not reached without reading the clock.
/// Long timeouts (hyper's 30 s header-read timer, made for every request)
/// skip the read; a short sleep still reads the clock, so one made due at
/// once (`sleep(Duration::ZERO)`, an interval's first tick) completes in
/// its first poll.
const CLOCK_FREE_AHEAD: Duration = Duration::from_secs(1);

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            wheel: RefCell::new(Wheel::new()),
            start: Instant::now(),
            next: Cell::new((u64::MAX, None)),
            ahead: Cell::new(Some(deadline_after(Instant::now(), CLOCK_FREE_AHEAD))),
        }
    }

    /// Whether `deadline` is surely not reached yet, known without a clock
    /// read: it lies [`CLOCK_FREE_AHEAD`] or more past the loop's last
    /// reading. Wrong only if the running turn (or the park before it) has
    /// lasted that long since the reading, and then only late, never early:
    /// the sleep registers a deadline that has passed, the next turn fires
    /// it, and its task is woken then instead of finding it ready at once.
    fn surely_ahead(&self, deadline: Instant) -> bool {
        self.ahead.get().is_some_and(|ahead| deadline >= ahead)
    }

    /// Notes a clock reading taken this turn: deadlines [`CLOCK_FREE_AHEAD`]
    /// past it are surely not reached.
    fn saw(&self, now: Instant) {
        self.ahead.set(Some(deadline_after(now, CLOCK_FREE_AHEAD)));
    }

    /// Whether the loop must read the clock this turn: a timer is pending
    /// (to fire it, and to bound the park). With none, a turn that ran its
    /// tasks without reading the clock reads none for the timers either
    /// ([`Timers::unread_turn`]).
    #[inline]
    pub(crate) fn wants_clock(&self) -> bool {
        self.next.get().1.is_some()
    }

    /// A turn with no timer pending read no clock: nothing is known to be
    /// ahead of it, so the next sleep reads the clock (and notes it, so the
    /// sleeps after it in the turn do not).
    #[inline]
    pub(crate) fn unread_turn(&self) {
        self.ahead.set(None);
    }

    /// Sets [`Timers::next`] from the wheel's next expiration.
    fn set_next(&self, tick: Option<u64>) {
        let at = tick.and_then(|t| self.start.checked_add(Duration::from_millis(t)));
        self.next.set((tick.unwrap_or(u64::MAX), at));
    }

    /// A timer was put at `tick`: the loop must not park past it.
    fn note_due(&self, tick: u64) {
        if tick < self.next.get().0 {
            self.set_next(Some(tick));
        }
    }

    /// Puts a timer for `waker` at `tick` in `wheel` (this one's, borrowed
    /// by the caller), keeping the loop's bound in step.
    fn insert(&self, wheel: &mut Wheel, tick: u64, waker: Waker) -> TimerKey {
        let key = wheel.insert(tick, waker);
        self.note_due(tick);
        key
    }

    /// Moves the pending timer of `key` to `tick`, keeping its waker and the
    /// loop's bound in step; false for a stale key or one of another wheel
    /// (left alone).
    fn reschedule(&self, key: TimerKey, tick: u64) -> bool {
        let moved = self.wheel.borrow_mut().reschedule(key, tick);
        if moved {
            self.note_due(tick);
        }
        moved
    }

    /// Cancels the timer of `key` (a no-op for a stale key or one of another
    /// wheel). If it was the one the loop would wake for, the loop's bound is
    /// worked out again, so a short timeout cancelled at once (an op that
    /// beat it) costs no wake-up.
    fn remove(&self, key: TimerKey) {
        let mut wheel = self.wheel.borrow_mut();
        if wheel
            .remove_deadline(key)
            .is_some_and(|tick| tick <= self.next.get().0)
        {
            self.set_next(wheel.next_expiration());
        }
    }

    /// Wheel tick of `t`, rounded up so a timer never fires early. A deadline
    /// more than `u64::MAX` ms away saturates (the wheel clamps it anyway)
    /// instead of wrapping round to an early tick.
    fn tick_ceil(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.start);
        // In u64: `as_millis` works in u128, which costs more on this path
        // (every sleep's first poll). 2^64 ms is beyond any `Instant`'s
        // range from `start`, so the saturation is only a guard.
        let up = d.subsec_nanos().div_ceil(1_000_000);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(up))
    }

    /// Wheel tick of `t`, rounded down: what has fully elapsed.
    fn tick_floor(&self, t: Instant) -> u64 {
        let ms = t.saturating_duration_since(self.start).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// Fires every timer due at `now`, pushing their wakers to `wakes`.
    pub(crate) fn fire_due(&self, now: Instant, wakes: &mut Vec<Waker>) {
        self.saw(now);
        match self.next.get().1 {
            Some(at) if at <= now => {}
            _ => return,
        }
        let tick = self.tick_floor(now);
        let mut wheel = self.wheel.borrow_mut();
        if wheel.next_expiration().is_some_and(|t| t <= tick) {
            wheel.advance(tick, |w| wakes.push(w));
        }
        self.set_next(wheel.next_expiration());
    }

    /// How long the loop may park before the next timer is due (`None`: no
    /// bound; a tick beyond `Instant`'s range is never reached).
    pub(crate) fn park_timeout(&self, now: Instant) -> Option<Duration> {
        let at = self.next.get().1?;
        Some(at.saturating_duration_since(now))
    }

    /// Pending timers.
    pub(crate) fn len(&self) -> usize {
        self.wheel.borrow().len()
    }
}

fn with_timers<R>(f: impl FnOnce(&Timers) -> R) -> Option<R> {
    crate::context::with(|core| f(&core.timers))
}

/// Waits until `duration` has elapsed.
///
/// Costs no syscall and no SQE: the timer sits in the core's wheel. A
/// duration too long for [`Instant`] (such as [`Duration::MAX`]) waits until
/// about 30 years from now instead of panicking, as in tokio.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// percore::run(async {
///     let start = Instant::now();
///     percore::time::sleep(Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
///
/// # Panics
///
/// When polled outside a percore runtime.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(Instant::now(), duration))
}

/// Waits until `deadline`.
///
/// Any deadline works, however far: one beyond what the wheel counts in
/// milliseconds just never comes.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// percore::run(async {
///     let deadline = Instant::now() + Duration::from_millis(2);
///     percore::time::sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
        done: false,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// # Cancellation
///
/// Dropping it removes the timer from the wheel in O(1).
///
/// # Resetting
///
/// [`reset`](Sleep::reset) to a later deadline costs no wheel work while the
/// timer is registered: the entry stays at its old deadline, and when it
/// fires the next poll finds the new deadline not reached and registers
/// again there. So a timer pushed back over and over (an idle timeout reset
/// for every message on a connection) is neither removed nor inserted per
/// reset. The price is one spurious wake-up per entry that
/// fires early, at most one per deadline the entry was registered for. A
/// reset to an earlier deadline moves the entry at once, keeping the waker
/// of the last poll, so the task is woken in time without polling again.
///
/// # Moving between runtimes
///
/// A `Sleep` is `Send` and remembers the wheel its timer is in. Polled while
/// another runtime is current, it registers its deadline there. Dropped (or
/// reset) while another runtime, or none, is current, it leaves that
/// runtime's timers alone; its old entry stays in its own wheel until it is
/// due (then it wakes the waker of its last poll there, a spurious wake-up)
/// or that runtime is dropped.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// percore::run(async {
///     let mut sleep = percore::time::sleep(Duration::from_secs(60));
///     // Move the deadline: a sleep is a timer that can be reset.
///     sleep.reset(Instant::now() + Duration::from_millis(1));
///     sleep.await;
/// });
/// ```
#[must_use = "a sleep does nothing until awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The wheel entry, due at or before `deadline`'s tick: a later reset
    /// leaves it where it is.
    key: Option<TimerKey>,
    done: bool,
}

impl Sleep {
    /// When the sleep ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// percore::run(async {
    ///     let sleep = percore::time::sleep(Duration::from_secs(1));
    ///     assert!(sleep.deadline() > Instant::now());
    /// });
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached (as seen by the last poll).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let mut sleep = percore::time::sleep(Duration::from_millis(1));
    ///     assert!(!sleep.is_elapsed()); // not polled yet
    ///     (&mut sleep).await;
    ///     assert!(sleep.is_elapsed());
    /// });
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.done
    }

    /// Moves the deadline, re-arming a sleep that already finished.
    ///
    /// A later deadline leaves a registered timer where it is (it wakes the
    /// task once early, and the poll then waits again); an earlier one moves
    /// it at once (see [Resetting](Sleep#resetting)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// percore::run(async {
    ///     let mut s = percore::time::sleep(Duration::from_secs(60));
    ///     s.reset(Instant::now() + Duration::from_millis(1));
    ///     (&mut s).await;
    ///     assert!(s.is_elapsed());
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        let later = deadline >= self.deadline;
        self.deadline = deadline;
        self.done = false;
        if later {
            // The entry, if any, fires at or before the new deadline: the
            // poll after it fires registers again (see `poll`).
            return;
        }
        let Some(key) = self.key else { return };
        // Move this runtime's entry, keeping the waker of the last poll. A
        // key that is stale (fired), of another runtime's wheel, or used with
        // no runtime current is dropped instead: the next poll registers
        // anew, and another wheel's entry is left alone (`reschedule` never
        // touches it).
        let moved = with_timers(|t| t.reschedule(key, t.tick_ceil(deadline)));
        if moved != Some(true) {
            self.key = None;
        }
    }

    fn cancel_timer(&mut self) {
        if let Some(key) = self.key.take() {
            // A key of another runtime's wheel is a no-op here (see
            // `Wheel::remove`): it never removes this runtime's timer.
            with_timers(|t| t.remove(key));
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let key = self.key;
        let state = with_timers(|t| {
            let mut wheel = t.wheel.borrow_mut();
            let tick = match key {
                // Registered here: still pending (keep the latest waker), or
                // fired. An entry fires early only if `reset` moved the
                // deadline later; then it registers again. The wheel's time
                // is the tick of the clock reading it last fired for, so
                // `tick_ceil(deadline) <= elapsed` means that reading was at
                // or after the deadline, with no clock read here.
                Some(key) if wheel.owns(key) => {
                    if wheel.update_waker(key, cx.waker()) {
                        return Err(());
                    }
                    let tick = t.tick_ceil(deadline);
                    if tick <= wheel.elapsed() {
                        return Ok(None);
                    }
                    tick
                }
                // Never registered, or registered in another runtime's wheel
                // (the future was moved): register here. The old entry is
                // left to its own wheel.
                // A deadline well past the loop's last clock reading is not
                // reached: no clock read (see `Timers::surely_ahead`).
                _ => {
                    if !t.surely_ahead(deadline) {
                        let now = Instant::now();
                        t.saw(now);
                        if now >= deadline {
                            return Ok(None);
                        }
                    }
                    t.tick_ceil(deadline)
                }
            };
            Ok(Some(t.insert(&mut wheel, tick, cx.waker().clone())))
        })
        .expect("percore::time used outside a runtime: call it inside percore::run");
        match state {
            Ok(None) => {
                self.key = None;
                self.done = true;
                Poll::Ready(())
            }
            Ok(Some(key)) => {
                self.key = Some(key);
                Poll::Pending
            }
            Err(()) => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel_timer();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("done", &self.done)
            .finish()
    }
}

/// The error of a [`timeout`] that ran out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let err = percore::time::timeout(Duration::from_millis(1), std::future::pending::<()>())
///         .await
///         .unwrap_err();
///     let io: std::io::Error = err.into();
///     assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// Runs `future` with a time limit: its output, or [`Elapsed`] if `duration`
/// passes first (the future is then dropped, cancelling its I/O safely).
///
/// Dropping a [`JoinHandle`](crate::JoinHandle) only detaches its task, so
/// `timeout(d, handle)` stops waiting and leaves the task running (as in
/// tokio). For asyncio's `wait_for`, which cancels the task, time out its
/// [`abort_on_drop`](crate::JoinHandle::abort_on_drop) handle instead:
///
/// ```
/// use std::time::Duration;
/// use percore::time::{sleep, timeout};
///
/// percore::run(async {
///     let task = percore::spawn(sleep(Duration::from_secs(60)));
///     let abort = task.abort_handle();
///     assert!(timeout(Duration::from_millis(1), task.abort_on_drop()).await.is_err());
///     while !abort.is_finished() {
///         percore::yield_now().await; // the task is cancelled, not left running
///     }
/// });
/// ```
///
/// A duration too long for [`Instant`] (such as [`Duration::MAX`]) is
/// clamped to about 30 years, as in tokio.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::time::{sleep, timeout};
///
/// percore::run(async {
///     assert_eq!(timeout(Duration::from_secs(1), async { 7 }).await, Ok(7));
///     assert!(timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await.is_err());
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    timeout_at(deadline_after(Instant::now(), duration), future)
}

/// Like [`timeout`], with an absolute deadline.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// percore::run(async {
///     let at = Instant::now() + Duration::from_secs(1);
///     assert_eq!(percore::time::timeout_at(at, async { 1 }).await, Ok(1));
/// });
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let fast = percore::time::timeout(Duration::from_secs(5), async { "done" });
    ///     assert_eq!(fast.await.unwrap(), "done");
    /// });
    /// ```
    #[must_use = "a timeout does nothing until awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period`; the first tick completes at once.
///
/// If a tick is late, the next ones catch up (like tokio's default): ticks stay
/// on the `start + n * period` grid. A tick whose time does not fit in an
/// [`Instant`] (a period such as [`Duration::MAX`]) is put about 30 years
/// from now, as in tokio.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let mut every = percore::time::interval(Duration::from_millis(1));
///     for _ in 0..3 {
///         every.tick().await;
///     }
/// });
/// ```
///
/// # Panics
///
/// If `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "interval period must be non-zero");
    Interval {
        period,
        sleep: sleep_until(Instant::now()),
    }
}

/// The stream of ticks returned by [`interval`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore::run(async {
///     let mut every = percore::time::interval(Duration::from_millis(2));
///     let first = every.tick().await;
///     let second = every.tick().await;
///     assert!(second >= first + every.period());
/// });
/// ```
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let mut every = percore::time::interval(Duration::from_millis(1));
    ///     for _ in 0..3 {
    ///         every.tick().await;
    ///     }
    /// });
    /// ```
    pub async fn tick(&mut self) -> Instant {
        (&mut self.sleep).await;
        let at = self.sleep.deadline();
        self.sleep.reset(deadline_after(at, self.period));
        at
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// percore::run(async {
    ///     let every = percore::time::interval(Duration::from_millis(250));
    ///     assert_eq!(every.period(), Duration::from_millis(250));
    /// });
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// Pending timers on the current core, if inside a runtime.
pub(crate) fn current_len() -> Option<usize> {
    with_timers(|t| t.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_surely_ahead_from_a_second_past_the_last_reading() {
        let t = Timers::new();
        let now = t.start + Duration::from_millis(500);
        t.fire_due(now, &mut Vec::new());
        assert!(!t.surely_ahead(now));
        assert!(!t.surely_ahead(now + CLOCK_FREE_AHEAD - Duration::from_nanos(1)));
        assert!(t.surely_ahead(now + CLOCK_FREE_AHEAD));
        // The next turn's reading moves the bound.
        let later = now + Duration::from_secs(5);
        t.fire_due(later, &mut Vec::new());
        assert!(!t.surely_ahead(now + CLOCK_FREE_AHEAD));
        assert!(t.surely_ahead(later + CLOCK_FREE_AHEAD));
    }

    #[test]
    fn after_a_turn_without_a_reading_nothing_is_surely_ahead_until_a_sleep_reads() {
        let t = Timers::new();
        let now = t.start + Duration::from_millis(500);
        t.fire_due(now, &mut Vec::new());
        assert!(!t.wants_clock(), "no timer pending");
        t.unread_turn();
        assert!(!t.surely_ahead(now + FAR_FUTURE));
        // A sleep's reading counts as the turn's.
        let later = now + Duration::from_secs(5);
        t.saw(later);
        assert!(!t.surely_ahead(later + CLOCK_FREE_AHEAD - Duration::from_nanos(1)));
        assert!(t.surely_ahead(later + CLOCK_FREE_AHEAD));
    }

    #[test]
    fn tick_ceil_rounds_up_to_the_millisecond_and_tick_floor_down() {
        let t = Timers::new();
        let ms = Duration::from_millis;
        assert_eq!(t.tick_ceil(t.start), 0);
        assert_eq!(t.tick_ceil(t.start + Duration::from_nanos(1)), 1);
        assert_eq!(t.tick_ceil(t.start + ms(7)), 7);
        assert_eq!(t.tick_ceil(t.start + ms(7) + Duration::from_nanos(1)), 8);
        assert_eq!(
            t.tick_ceil(t.start + Duration::from_nanos(2_999_999_999)),
            3000
        );
        assert_eq!(
            t.tick_floor(t.start + Duration::from_nanos(2_999_999_999)),
            2999
        );
        // Before the start: tick 0.
        if let Some(before) = t.start.checked_sub(ms(5)) {
            assert_eq!(t.tick_ceil(before), 0);
        }
    }

    #[test]
    fn loop_parks_until_the_first_timer_and_wakes_early_at_most_once_for_a_moved_one() {
        let ms = Duration::from_millis;
        let t = Timers::new();
        let start = t.start;
        let mut wakes = Vec::new();
        assert_eq!(t.park_timeout(start), None);
        let insert = |tick| t.insert(&mut t.wheel.borrow_mut(), tick, Waker::noop().clone());
        let early = insert(5);
        let middle = insert(7);
        insert(50);
        assert_eq!(t.park_timeout(start), Some(ms(5)));
        // Removing the first timer moves the bound to the next one.
        t.remove(early);
        assert_eq!(t.park_timeout(start), Some(ms(7)));
        // A timer moved later leaves the bound: one early wake-up.
        let moved = t.reschedule(middle, 20);
        assert!(moved);
        assert_eq!(t.park_timeout(start), Some(ms(7)));
        t.fire_due(start + ms(6), &mut wakes);
        assert_eq!(t.park_timeout(start + ms(6)), Some(ms(1)));
        t.fire_due(start + ms(7), &mut wakes);
        assert!(wakes.is_empty());
        assert_eq!(t.park_timeout(start + ms(7)), Some(ms(13)));
        t.remove(middle);
        assert_eq!(t.park_timeout(start + ms(7)), Some(ms(43)));
        t.fire_due(start + ms(10), &mut wakes);
        assert!(wakes.is_empty());
        assert_eq!(t.park_timeout(start + ms(10)), Some(ms(40)));
        // A timer put before the bound lowers it; one after leaves it.
        insert(20);
        insert(60);
        assert_eq!(t.park_timeout(start + ms(5)), Some(ms(15)));
        t.fire_due(start + ms(50), &mut wakes);
        assert_eq!(wakes.len(), 2);
        assert_eq!(t.park_timeout(start + ms(50)), Some(ms(10)));
        t.fire_due(start + ms(60), &mut wakes);
        assert_eq!(wakes.len(), 3);
        assert_eq!(t.park_timeout(start + ms(60)), None, "nothing left");
    }
}
