//! Hierarchical timer wheel: O(1) insert, O(1) cancel, and advance cost that
//! depends on the occupied slots crossed and the timers fired or cascaded,
//! never on the length of the time jump.
//!
//! This module is pure bookkeeping. It makes no syscalls, reads no clock and
//! knows nothing about the `io_uring` ring or the executor. Time is a `u64`
//! count of millisecond ticks from a start instant that the caller picks. The
//! runtime turns `Instant`s into ticks (rounding deadlines up, so a timer never
//! fires early), asks [`Wheel::next_expiration`] how long the ring may sleep,
//! and calls [`Wheel::advance`] after it wakes, which hands back the wakers of
//! the timers that are due.
//!
//! # Layout
//!
//! There are `LEVELS` (6) levels of `SLOTS` (64) slots. A slot on level `L`
//! covers `64^L` ticks, so a whole level covers `64^(L+1)` ticks:
//!
//! | level | slot width         | level span           |
//! |-------|--------------------|----------------------|
//! | 0     | 1 ms               | 64 ms                |
//! | 1     | 64 ms              | ~4 s                 |
//! | 2     | ~4 s               | ~4.4 min             |
//! | 3     | ~4.4 min           | ~4.7 h               |
//! | 4     | ~4.7 h             | ~12.4 days           |
//! | 5     | ~12.4 days         | 2^36 ms ~ 795 days   |
//!
//! A tick `t` read as a base-64 number has one digit per level: bits
//! `6L..6L+6` of `t` give its slot on level `L`. A timer goes on the level of
//! the most significant digit in which its deadline differs from the wheel's
//! current time (`elapsed`), in the slot named by that digit of the deadline.
//! So on every level below 5 an occupied slot's index is greater than the
//! index of the slot holding `elapsed`. The slot's start tick is the
//! deadline with every digit below `L` zeroed, which is the same as
//! `elapsed`'s digits above `L`, then the slot index, then zeros. So every
//! timer in a slot has its deadline at or after the slot's start. That start
//! is a lower bound worked out from `elapsed`, the level and the slot index
//! alone.
//!
//! Deadlines 2^36 or more ticks away are clamped to `elapsed + 2^36 - 1`, the
//! furthest point the wheel can represent. A clamped timer waits on level 5,
//! and when its slot is reached it is placed again from its real deadline.
//! Near the top of the range the clamped point can fall in the next 2^36 block.
//! Its level-5 digit then wraps round to the slot holding `elapsed`, or to one
//! below it. Level 5 is therefore read as a ring that starts just after
//! `elapsed`'s slot; the lower levels never wrap.
//!
//! # Storage
//!
//! Timers live in one `Vec<Entry>` with an intrusive free list. Each slot is
//! an index-based doubly linked list (`u32` prev/next), so cancelling is O(1)
//! and needs no search. Each level has a `u64` occupancy bitmap with one bit
//! per slot, so finding the next non-empty slot is a rotate plus a
//! `trailing_zeros`. An entry takes 40 bytes. A [`TimerKey`] is a slot index
//! plus a generation that is bumped whenever the entry is freed, so a key
//! kept after its timer fired or was removed can't reach a timer that later
//! reuses the same entry. A key also names its wheel by a process-unique id,
//! so a key from one runtime's wheel (a `Sleep` is `Send`, and may be dropped
//! while another runtime is current) never reaches the entry with the same
//! index and generation in another wheel.
//!
//! # Advancing
//!
//! `advance(now)` goes up the levels from level 0. On each level it empties
//! every occupied slot whose start is `<= now`. A timer in such a slot is
//! either due (`deadline <= now`) and fired, or placed again relative to
//! `now`. Placed again, it lands on a lower level, one this call has already
//! finished with, so no timer is visited twice in one call. The exception is a
//! clamped far-future timer that goes back onto level 5. It waits on a
//! carry list until `elapsed` has moved to `now`. Empty slots are skipped with
//! the bitmaps, so jumping hours or years ahead costs no more than a small
//! step. Wakers are collected first and handed to the `fire` callback only
//! once the wheel is consistent again, so a panicking callback (or waker)
//! cannot leave the structure half updated.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

/// Number of levels in the hierarchy.
const LEVELS: usize = 6;
/// log2 of the slots per level: each level consumes 6 bits of the tick.
const SLOT_BITS: u32 = 6;
/// Slots per level; 64 so that one `u64` is the level's occupancy bitmap.
const SLOTS: usize = 1 << SLOT_BITS;
/// Mask extracting one level's slot digit from a (shifted) tick.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Bits of the tick covered by the whole wheel (6 levels x 6 bits = 36).
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// Ticks the wheel can represent ahead of `elapsed` (2^36 ms, ~795 days);
/// further deadlines are clamped and re-placed later.
const MAX_SPAN: u64 = 1 << WHEEL_BITS;

/// "No entry" marker for the `u32` links and list heads.
const NIL: u32 = u32::MAX;
/// List ids `0..DUE` are wheel slots (`level * SLOTS + slot`).
const WHEEL_LISTS: usize = LEVELS * SLOTS;
/// List of timers whose deadline was already `<= elapsed` when inserted; they
/// fire on the next `advance`.
const DUE: u16 = WHEEL_LISTS as u16;
/// Scratch list used inside `advance` for timers that must go back onto a
/// level not yet finished (clamped far-future timers on level 5). Always
/// empty outside `advance`.
const CARRY: u16 = DUE + 1;
/// Total number of list heads.
const NUM_LISTS: usize = CARRY as usize + 1;
/// `Entry::list` value for an entry that is on no list (free or in transit).
const NO_LIST: u16 = u16::MAX;
/// Above this capacity the buffer of fired wakers is freed after an `advance`
/// instead of being kept, so one huge burst does not pin memory forever.
const RETAINED_FIRE_CAPACITY: usize = 4096;

/// Handle to one pending timer.
///
/// It is `Copy`, so the runtime can keep one in each `Sleep` future. Stale keys
/// are detected by the generation: once the timer fires or is removed its
/// entry's generation changes, so [`Wheel::remove`] and
/// [`Wheel::update_waker`] on an old key are harmless no-ops even after the
/// entry is reused. (A key could only alias again after 2^32 reuses of one
/// entry while the key is held.) Keys of another wheel are told apart by the
/// wheel id, which is never reused in the process: every method treats them
/// like stale keys, and [`Wheel::owns`] says which case it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// Index into `Wheel::entries`.
    index: u32,
    /// Must equal the entry's generation for the key to be live.
    generation: u32,
    /// `Wheel::id` of the wheel that issued the key.
    wheel: NonZeroU64,
}

/// Source of wheel ids; starts at 1 so an id is a `NonZeroU64` (which keeps
/// `Option<TimerKey>` the size of a key). 2^64 wheels are never made.
static NEXT_WHEEL_ID: AtomicU64 = AtomicU64::new(1);

/// One timer slot in the entry arena (40 bytes on 64-bit targets).
struct Entry {
    /// `Some` while the timer is pending; `None` marks a free entry.
    waker: Option<Waker>,
    /// Absolute deadline in ticks (not clamped).
    deadline: u64,
    /// Previous entry in the same list, or `NIL`. Unused while free.
    prev: u32,
    /// Next entry in the same list (or next free entry), or `NIL`.
    next: u32,
    /// Bumped every time the entry is freed; see [`TimerKey`].
    generation: u32,
    /// Which list the entry is on (slot id, `DUE`, `CARRY`), or `NO_LIST`.
    /// Needed so that O(1) removal can fix the list head and the bitmap.
    list: u16,
}

/// Hierarchical timer wheel; see the module docs for the design.
pub(crate) struct Wheel {
    /// Unique among all wheels of the process; every key carries it.
    id: NonZeroU64,
    /// Current time: the largest `now` passed to `advance` (or 0).
    elapsed: u64,
    /// Arena of timers; indexes are stable for a timer's lifetime.
    entries: Vec<Entry>,
    /// Head of the free list threaded through `Entry::next`.
    free_head: u32,
    /// Number of pending timers.
    len: usize,
    /// Heads of all lists: the 384 wheel slots, then `DUE`, then `CARRY`.
    heads: [u32; NUM_LISTS],
    /// Per level, bit `s` set iff slot `s` of that level is non-empty.
    occupied: [u64; LEVELS],
    /// Reused buffer for wakers collected during `advance`.
    fired: Vec<Waker>,
}

impl Wheel {
    /// Empty wheel whose current time is tick 0.
    pub(crate) fn new() -> Wheel {
        let id = NEXT_WHEEL_ID.fetch_add(1, Ordering::Relaxed);
        Wheel {
            id: NonZeroU64::new(id).expect("timer wheel ids never wrap"),
            elapsed: 0,
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            heads: [NIL; NUM_LISTS],
            occupied: [0; LEVELS],
            fired: Vec::new(),
        }
    }

    /// Current time of the wheel: the last `now` passed to `advance`, or 0.
    /// Deadlines at or before this are "already due".
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Registers a timer that wakes `waker` once time reaches `deadline`.
    ///
    /// A deadline `<= elapsed()` is allowed (the runtime may compute a
    /// deadline that has already passed): it fires on the next `advance`,
    /// whatever `now` that call gets. O(1).
    ///
    /// # Panics
    ///
    /// Panics if more than `u32::MAX - 1` timers would exist at once.
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let index = self.alloc(deadline, waker);
        let list = list_for(deadline, self.elapsed);
        self.push(list, index);
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
            wheel: self.id,
        }
    }

    /// Whether `key` was issued by this wheel (live or stale). A key of
    /// another wheel means nothing here: [`Wheel::update_waker`],
    /// [`Wheel::remove`] and [`Wheel::is_pending`] treat it as stale, so the
    /// caller asks this first to tell "fired" from "registered elsewhere".
    pub(crate) fn owns(&self, key: TimerKey) -> bool {
        key.wheel == self.id
    }

    /// Replaces the stored waker (a future may be polled by a different task
    /// context than the one that created it). The clone is skipped when
    /// `will_wake` says it's the same waker. Returns `false` if the key is
    /// stale (the timer already fired or was removed), so the caller knows
    /// not to wait any more, and also for a key of another wheel (see
    /// [`Wheel::owns`]).
    pub(crate) fn update_waker(&mut self, key: TimerKey, waker: &Waker) -> bool {
        let Some(index) = self.live_index(key) else {
            return false;
        };
        let stored = self.entries[index].waker.as_mut();
        if let Some(stored) = stored.filter(|stored| !stored.will_wake(waker)) {
            stored.clone_from(waker);
        }
        true
    }

    /// Moves a pending timer to `deadline` in O(1), keeping its key and
    /// waker, so a `Sleep` moved earlier still wakes the task that last
    /// polled it, with no new poll. Same rules for `deadline` as
    /// [`Wheel::insert`]. Returns `false` (and does nothing) for a stale key
    /// or a key of another wheel.
    pub(crate) fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some(index) = self.live_index(key) else {
            return false;
        };
        let index = index as u32;
        self.unlink(index);
        self.entries[index as usize].deadline = deadline;
        self.push(list_for(deadline, self.elapsed), index);
        true
    }

    /// Cancels a timer (e.g. a dropped `Sleep`) in O(1). A stale key, or a
    /// key of another wheel, is a no-op. Returns `true` if the timer was
    /// pending.
    #[allow(
        dead_code,
        reason = "part of the wheel's interface; the tests use it, the runtime needs the deadline"
    )]
    pub(crate) fn remove(&mut self, key: TimerKey) -> bool {
        self.remove_deadline(key).is_some()
    }

    /// [`Wheel::remove`], returning the removed timer's deadline.
    pub(crate) fn remove_deadline(&mut self, key: TimerKey) -> Option<u64> {
        let index = self.live_index(key)?;
        let deadline = self.entries[index].deadline;
        self.unlink(index as u32);
        let waker = self.release(index as u32);
        // Drop the waker (which runs foreign code) only after the wheel is
        // consistent again.
        drop(waker);
        Some(deadline)
    }

    /// Whether the timer is still pending (not fired, not removed; `false`
    /// for a key of another wheel). `Sleep` learns the same from
    /// [`Wheel::update_waker`], in the same lookup.
    #[allow(
        dead_code,
        reason = "part of the wheel's interface; the tests use it, the runtime need not"
    )]
    pub(crate) fn is_pending(&self, key: TimerKey) -> bool {
        self.live_index(key).is_some()
    }

    /// The earliest tick at which some timer may be due, or `None` if the
    /// wheel is empty. The runtime uses it to bound how long the ring sleeps.
    ///
    /// The value is never later than the true earliest deadline. It can be
    /// earlier: it is the start of the first occupied slot, and on a level
    /// above 0 that is a cascade point where the timers get placed again
    /// more precisely. After a wake-up at that tick, `advance` followed by
    /// another call gives a tighter answer. Returns `Some(elapsed())` iff some
    /// timer is already due. Cost O(`LEVELS`), independent of the number of
    /// timers.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.heads[DUE as usize] != NIL {
            return Some(self.elapsed);
        }
        // Every occupied slot of level L starts before every occupied slot
        // of level L+1. Level-L slots start after `elapsed`'s level-L slot
        // and before the end of `elapsed`'s level-(L+1) slot. Level-(L+1)
        // slots start at that end or later. So the first non-empty level
        // holds the earliest slot.
        (0..LEVELS).find_map(|level| self.next_slot(level).map(|(_, start)| start))
    }

    /// Moves time forward to `now` (a `now` below `elapsed()` counts as
    /// `elapsed()`). Every timer with `deadline <= now` is removed, and its
    /// waker is passed to `fire`. Timers in higher-level slots that `now`
    /// reaches, but that aren't due yet, are cascaded to lower levels.
    ///
    /// Cost: O(`LEVELS` + occupied slots reached + timers fired or cascaded),
    /// however big the jump. Timers fire roughly in deadline order: the due
    /// list first, then slots in time order. Timers within one higher-level
    /// slot are not sorted. Every timer due at `now` fires in this call, so a
    /// timer never fires on a later `advance` than one with a later deadline.
    ///
    /// `fire` is called only after the wheel's state is fully updated. If it
    /// panics, the wakers not yet handed out are dropped unwoken (their timers
    /// are already removed), and the wheel stays valid.
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(Waker)) {
        let now = now.max(self.elapsed);
        let mut fired = std::mem::take(&mut self.fired);

        // Timers inserted with a deadline already <= elapsed.
        while let Some(index) = self.pop(DUE) {
            if let Some(waker) = self.release(index) {
                fired.push(waker);
            }
        }

        // Empty every occupied slot whose start is <= now, level by level
        // from the bottom. Slot starts come from the old `elapsed`, which stays
        // fixed until the loop ends, so each level's view is stable. A timer
        // that isn't due yet is placed again relative to `now`. That lands
        // it on a lower level: the slot's span holds both `now` and the
        // deadline, so the two agree on every digit from this level up.
        // Lower levels are already done for this call, and their remaining
        // slots start after `now`, so the new placement is valid straight
        // away. A timer can't be visited twice. Anything that would land on
        // the current level or higher (only clamped far-future timers on
        // level 5) waits on `CARRY` until `elapsed` is moved.
        for level in 0..LEVELS {
            while let Some((slot, start)) = self.next_slot(level) {
                if start > now {
                    // `next_slot` returns the level's earliest slot.
                    break;
                }
                let list = (level * SLOTS + slot) as u16;
                while let Some(index) = self.pop(list) {
                    let deadline = self.entries[index as usize].deadline;
                    if deadline <= now {
                        if let Some(waker) = self.release(index) {
                            fired.push(waker);
                        }
                        continue;
                    }
                    let target = list_for(deadline, now);
                    if (target as usize) < level * SLOTS {
                        self.push(target, index);
                    } else {
                        self.push(CARRY, index);
                    }
                }
            }
        }

        // Every slot left starts after `now`. Moving `elapsed` up to `now`
        // keeps their starts the same (see `list_for`).
        self.elapsed = now;
        while let Some(index) = self.pop(CARRY) {
            let list = list_for(self.entries[index as usize].deadline, now);
            self.push(list, index);
        }

        for waker in fired.drain(..) {
            fire(waker);
        }
        if fired.capacity() <= RETAINED_FIRE_CAPACITY {
            self.fired = fired;
        }
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    #[allow(
        dead_code,
        reason = "part of the wheel's interface; the tests use it, the runtime need not"
    )]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    // ----- internals -----------------------------------------------------

    /// Entry index for `key` if the key is live (this wheel's, right
    /// generation, entry in use).
    fn live_index(&self, key: TimerKey) -> Option<usize> {
        if key.wheel != self.id {
            return None;
        }
        let index = key.index as usize;
        let entry = self.entries.get(index)?;
        (entry.generation == key.generation && entry.waker.is_some()).then_some(index)
    }

    /// Takes an entry from the free list (or grows the arena) and fills it.
    /// The entry is on no list afterwards.
    fn alloc(&mut self, deadline: u64, waker: Waker) -> u32 {
        self.len += 1;
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            self.free_head = entry.next;
            entry.waker = Some(waker);
            entry.deadline = deadline;
            entry.prev = NIL;
            entry.next = NIL;
            entry.list = NO_LIST;
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("timer wheel: too many timers");
            self.entries.push(Entry {
                waker: Some(waker),
                deadline,
                prev: NIL,
                next: NIL,
                generation: 0,
                list: NO_LIST,
            });
            index
        }
    }

    /// Frees an entry that is on no list. Bumps its generation (so all keys
    /// to it become stale) and returns its waker.
    fn release(&mut self, index: u32) -> Option<Waker> {
        let entry = &mut self.entries[index as usize];
        debug_assert_eq!(entry.list, NO_LIST);
        let waker = entry.waker.take();
        entry.generation = entry.generation.wrapping_add(1);
        entry.prev = NIL;
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
        waker
    }

    /// The earliest occupied slot of `level` and its start tick, relative to
    /// `elapsed`.
    ///
    /// Slots are searched in time order from the one just after `elapsed`'s
    /// own slot, wrapping round. The bitmap is rotated so that slot `cur + 1`
    /// becomes bit 0, so `trailing_zeros` is the distance to the next
    /// occupied slot. That slot starts `dist + 1` slot widths after the start
    /// of `elapsed`'s own slot. On levels 0..=4 occupied slots are always
    /// above `cur`, so the search never wraps. On level 5 a wrapped slot
    /// (index `<= cur`) is correctly placed in the next 2^36 block.
    fn next_slot(&self, level: usize) -> Option<(usize, u64)> {
        let bits = self.occupied[level];
        if bits == 0 {
            return None;
        }
        let shift = SLOT_BITS * level as u32;
        let cur = (self.elapsed >> shift) & SLOT_MASK;
        let first = (cur + 1) & SLOT_MASK;
        let dist = u64::from(bits.rotate_right(first as u32).trailing_zeros());
        let slot = ((first + dist) & SLOT_MASK) as usize;
        let cur_slot_start = (self.elapsed >> shift) << shift;
        // Never overflows for a valid wheel (start <= some deadline);
        // saturate rather than wrap just in case.
        let start = cur_slot_start.saturating_add((dist + 1) << shift);
        Some((slot, start))
    }

    /// Pushes a free-standing entry onto the front of `list`, marking the
    /// slot occupied.
    fn push(&mut self, list: u16, index: u32) {
        let head = self.heads[list as usize];
        let entry = &mut self.entries[index as usize];
        debug_assert_eq!(entry.list, NO_LIST);
        entry.prev = NIL;
        entry.next = head;
        entry.list = list;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[list as usize] = index;
        if (list as usize) < WHEEL_LISTS {
            self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
        }
    }

    /// Unlinks an entry from whatever list it is on in O(1), clearing the
    /// slot's occupancy bit if the list becomes empty.
    fn unlink(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        let (prev, next, list) = (entry.prev, entry.next, entry.list);
        debug_assert_ne!(list, NO_LIST);
        entry.prev = NIL;
        entry.next = NIL;
        entry.list = NO_LIST;
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            self.heads[list as usize] = next;
            if next == NIL && (list as usize) < WHEEL_LISTS {
                self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
            }
        }
    }

    /// Unlinks and returns the first entry of `list`.
    fn pop(&mut self, list: u16) -> Option<u32> {
        let head = self.heads[list as usize];
        if head == NIL {
            return None;
        }
        self.unlink(head);
        Some(head)
    }
}

/// The list a timer with `deadline` belongs on when the wheel's time is
/// `elapsed`.
///
/// The level is the most significant 6-bit digit in which the (clamped)
/// deadline differs from `elapsed`. The slot is that digit of the
/// deadline. For levels below 5 the deadline agrees with `elapsed` on all
/// higher digits and its level digit is the larger one. So the slot index
/// is greater than `elapsed`'s, and the slot start (the deadline with all
/// lower digits zeroed) is `> elapsed` and `<= deadline`. As `elapsed`
/// moves up to (but not past) that start, it still agrees on the higher
/// digits and stays below on the level digit. So the timer would get the
/// same slot again, and its start does not change. The level-5 wrap case
/// is explained in the module docs and in `next_slot`.
fn list_for(deadline: u64, elapsed: u64) -> u16 {
    if deadline <= elapsed {
        return DUE;
    }
    // Clamp to the furthest representable tick. Saturating: near
    // u64::MAX the deadline itself is the bound, and then it is in the
    // same 2^36 block as `elapsed`.
    let limit = elapsed.saturating_add(MAX_SPAN - 1);
    let clamped = if deadline < limit { deadline } else { limit };
    let diff = clamped ^ elapsed; // non-zero since clamped > elapsed
    let level = if diff >= MAX_SPAN {
        // Clamped point lies in the next 2^36 block: wraps on level 5.
        LEVELS - 1
    } else {
        // Index of the highest differing bit (0..=35), divided by 6.
        ((u64::BITS - 1 - diff.leading_zeros()) / SLOT_BITS) as usize
    };
    let slot = ((clamped >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
    (level * SLOTS + slot) as u16
}

impl fmt::Debug for Wheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .field("next_expiration", &self.next_expiration())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    // ----- helpers ---------------------------------------------------------

    /// Waker that counts how often it was woken.
    struct CountWake(AtomicUsize);

    impl Wake for CountWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    impl CountWake {
        fn count(&self) -> usize {
            self.0.load(SeqCst)
        }
    }

    fn counter() -> (Arc<CountWake>, Waker) {
        let c = Arc::new(CountWake(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Waker that appends its id to a shared log when woken.
    struct IdWake {
        id: usize,
        log: Arc<Mutex<Vec<usize>>>,
    }

    impl Wake for IdWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.log.lock().unwrap().push(self.id);
        }
    }

    fn id_waker(id: usize, log: &Arc<Mutex<Vec<usize>>>) -> Waker {
        Waker::from(Arc::new(IdWake {
            id,
            log: log.clone(),
        }))
    }

    fn take_log(log: &Arc<Mutex<Vec<usize>>>) -> Vec<usize> {
        let mut v = std::mem::take(&mut *log.lock().unwrap());
        v.sort_unstable();
        v
    }

    /// Small deterministic PCG-style LCG.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Mix the high bits down; the low bits of an LCG are weak.
            let x = self.0;
            (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// A span with a random order of magnitude: exercises every level.
        fn span(&mut self, max_bits: u64) -> u64 {
            let bits = self.below(max_bits + 1);
            self.next() & ((1u64 << bits) - 1)
        }
    }

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    fn fire_wake(w: Waker) {
        w.wake();
    }

    impl Wheel {
        /// O(n) structural check of every invariant the O(1) paths rely on.
        fn check_invariants(&self) {
            let mut seen = 0usize;
            for list in 0..NUM_LISTS {
                let mut prev = NIL;
                let mut cur = self.heads[list];
                while cur != NIL {
                    let e = &self.entries[cur as usize];
                    assert_eq!(e.list as usize, list);
                    assert_eq!(e.prev, prev);
                    assert!(e.waker.is_some());
                    if list < WHEEL_LISTS {
                        let level = list / SLOTS;
                        let slot = list % SLOTS;
                        // The slot must be the one `next_slot` would compute
                        // a start for, and that start must be a valid lower
                        // bound, strictly in the future.
                        let shift = SLOT_BITS * level as u32;
                        let cur_slot = ((self.elapsed >> shift) & SLOT_MASK) as usize;
                        if level < LEVELS - 1 {
                            assert!(slot > cur_slot, "slot behind elapsed on level {level}");
                        }
                        let dist = (slot + SLOTS - cur_slot - 1) % SLOTS;
                        let start =
                            ((self.elapsed >> shift) << shift) + ((dist as u64 + 1) << shift);
                        assert!(start > self.elapsed);
                        assert!(start <= e.deadline, "slot start after deadline");
                        // Non-clamped timers must lie inside their slot.
                        if e.deadline - self.elapsed < MAX_SPAN {
                            let end = start.checked_add(1u64 << shift);
                            assert!(end.is_none_or(|end| e.deadline < end));
                        }
                    } else if list == DUE as usize {
                        assert!(e.deadline <= self.elapsed);
                    } else {
                        panic!("entry left on the CARRY list");
                    }
                    seen += 1;
                    prev = cur;
                    cur = e.next;
                }
                if list < WHEEL_LISTS {
                    let bit = self.occupied[list / SLOTS] >> (list % SLOTS) & 1;
                    assert_eq!(bit == 1, self.heads[list] != NIL, "bitmap mismatch");
                }
            }
            assert_eq!(seen, self.len);
            let mut free = 0usize;
            let mut cur = self.free_head;
            while cur != NIL {
                let e = &self.entries[cur as usize];
                assert!(e.waker.is_none());
                assert_eq!(e.list, NO_LIST);
                free += 1;
                cur = e.next;
            }
            assert_eq!(free + self.len, self.entries.len());
        }
    }

    // ----- basic behaviour -------------------------------------------------

    #[test]
    fn entry_is_small() {
        assert!(size_of::<Entry>() <= 48, "{}", size_of::<Entry>());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(size_of::<Entry>(), 40);
        assert_eq!(size_of::<TimerKey>(), 16);
        assert_eq!(size_of::<Option<TimerKey>>(), 16);
    }

    #[test]
    fn empty_wheel() {
        let mut w = Wheel::new();
        assert_eq!(w.elapsed(), 0);
        assert!(w.is_empty());
        assert_eq!(w.next_expiration(), None);
        w.advance(1 << 50, |_| panic!("nothing to fire"));
        assert_eq!(w.elapsed(), 1 << 50);
        // Time never goes backwards.
        w.advance(5, |_| panic!());
        assert_eq!(w.elapsed(), 1 << 50);
        w.check_invariants();
    }

    #[test]
    fn fires_exactly_the_due_ones() {
        let mut w = Wheel::new();
        let deadlines = [3u64, 3, 5, 10, 64, 100, 1000];
        let counters: Vec<_> = deadlines
            .iter()
            .map(|&d| {
                let (c, waker) = counter();
                (d, c, w.insert(d, waker))
            })
            .collect();
        assert_eq!(w.len(), deadlines.len());
        for now in 0..=1001u64 {
            w.advance(now, fire_wake);
            for (d, c, key) in &counters {
                let expect = usize::from(*d <= now);
                assert_eq!(c.count(), expect, "deadline {d} at now {now}");
                assert_eq!(w.is_pending(*key), expect == 0);
            }
            assert_eq!(
                w.len(),
                deadlines.iter().filter(|&&d| d > now).count(),
                "len at {now}"
            );
        }
        assert!(w.is_empty());
        w.check_invariants();
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let mut w = Wheel::new();
        w.advance(1000, |_| panic!());
        let (c1, k1) = counter();
        let (c2, k2) = counter();
        let key1 = w.insert(1000, k1);
        let key2 = w.insert(3, k2);
        assert_eq!(w.next_expiration(), Some(1000));
        w.check_invariants();
        // Even a `now` in the past counts as "the next advance".
        w.advance(10, fire_wake);
        assert_eq!((c1.count(), c2.count()), (1, 1));
        assert!(!w.is_pending(key1) && !w.is_pending(key2));
        assert_eq!(w.elapsed(), 1000);
        assert_eq!(w.next_expiration(), None);
    }

    const LEVEL_DEADLINES: [u64; 9] = [1, 63, 64, 65, 4095, 4096, 262_143, 10_000_000, 1 << 40];
    /// Wheel start times: aligned, unaligned, and just below a 2^36 block
    /// boundary (exercises the level-5 wrap).
    const BASES: [u64; 4] = [0, 12_345, (1 << 36) - 3, (1 << 42) + 77];

    #[test]
    fn every_level_fires_at_exact_tick_stepping() {
        for base in BASES {
            for d in LEVEL_DEADLINES {
                let mut w = Wheel::new();
                w.advance(base, |_| panic!());
                let deadline = base + d;
                let (c, waker) = counter();
                let key = w.insert(deadline, waker);
                // Jump close, then walk 1 ms at a time across the deadline.
                let approach = deadline.saturating_sub(130).max(base);
                w.advance(approach, fire_wake);
                assert_eq!(c.count(), 0);
                for now in approach..=deadline + 3 {
                    let ne = w.next_expiration();
                    if now <= deadline {
                        assert!(ne.unwrap() <= deadline, "next_expiration late");
                    }
                    w.advance(now, fire_wake);
                    assert_eq!(
                        c.count(),
                        usize::from(now >= deadline),
                        "base {base} d {d} now {now}"
                    );
                    assert_eq!(w.is_pending(key), now < deadline);
                }
                w.check_invariants();
            }
        }
    }

    #[test]
    fn every_level_fires_at_exact_tick_jumping() {
        for base in BASES {
            // One timer per wheel, single big jumps.
            for d in LEVEL_DEADLINES {
                let deadline = base + d;
                let mut w = Wheel::new();
                w.advance(base, |_| panic!());
                let (c, waker) = counter();
                w.insert(deadline, waker);
                w.advance(deadline - 1, fire_wake);
                assert_eq!(c.count(), 0, "early: base {base} d {d}");
                w.check_invariants();
                w.advance(deadline, fire_wake);
                assert_eq!(c.count(), 1, "late: base {base} d {d}");

                let mut w = Wheel::new();
                w.advance(base, |_| panic!());
                let (c, waker) = counter();
                w.insert(deadline, waker);
                w.advance(deadline + 999_999, fire_wake);
                assert_eq!(c.count(), 1);
                assert!(w.is_empty());
            }
            // All levels in one wheel, one jump past everything.
            let mut w = Wheel::new();
            w.advance(base, |_| panic!());
            let counters: Vec<_> = LEVEL_DEADLINES
                .iter()
                .map(|&d| {
                    let (c, waker) = counter();
                    w.insert(base + d, waker);
                    c
                })
                .collect();
            w.check_invariants();
            w.advance(base + (1 << 41), fire_wake);
            assert!(counters.iter().all(|c| c.count() == 1));
            assert!(w.is_empty());
            w.check_invariants();
        }
    }

    #[test]
    fn driver_loop_fires_every_timer_at_exactly_its_deadline() {
        // Simulates the runtime: sleep until next_expiration, advance there.
        // Since next_expiration is never late and advance never fires early,
        // every timer must fire with now == deadline.
        let mut rng = Lcg(7);
        let mut w = Wheel::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let n = 3000;
        let mut deadlines = Vec::new();
        for id in 0..n {
            let d = 1 + rng.span(44);
            deadlines.push(d);
            w.insert(d, id_waker(id, &log));
        }
        let mut rounds = 0;
        while let Some(t) = w.next_expiration() {
            assert!(t >= w.elapsed());
            w.advance(t, fire_wake);
            for id in take_log(&log) {
                assert_eq!(deadlines[id], t, "timer {id} fired at {t}");
                deadlines[id] = u64::MAX; // mark fired
            }
            rounds += 1;
            assert!(rounds <= n * (LEVELS + 2), "too many wake-ups");
        }
        assert!(
            deadlines.iter().all(|&d| d == u64::MAX),
            "some timer never fired"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn huge_jumps_and_extreme_deadlines() {
        let mut w = Wheel::new();
        let (c_far, k_far) = counter();
        let (c_max, k_max) = counter();
        let (c_mid, k_mid) = counter();
        w.insert(1 << 50, k_far);
        w.insert(u64::MAX, k_max);
        w.insert((1 << 36) + 5, k_mid); // just beyond the wheel span
        w.check_invariants();
        assert!(w.next_expiration().unwrap() <= (1 << 36) + 5);
        w.advance((1 << 36) + 4, fire_wake);
        assert_eq!(c_mid.count(), 0);
        w.check_invariants();
        w.advance((1 << 36) + 5, fire_wake);
        assert_eq!(c_mid.count(), 1);
        // Driver-style: repeatedly hop to next_expiration; the far timer must
        // be reached in a bounded number of hops and fire exactly on time.
        let mut hops = 0;
        while c_far.count() == 0 {
            let t = w.next_expiration().unwrap();
            assert!(t <= 1 << 50);
            w.advance(t, fire_wake);
            assert!(c_far.count() == 0 || w.elapsed() == 1 << 50);
            hops += 1;
            assert!(hops < 100_000);
        }
        w.check_invariants();
        // Jump (almost) to the end of time in one step.
        w.advance(u64::MAX - 1, fire_wake);
        assert_eq!(c_max.count(), 0);
        w.check_invariants();
        assert_eq!(w.next_expiration(), Some(u64::MAX));
        w.advance(u64::MAX, fire_wake);
        assert_eq!(c_max.count(), 1);
        assert!(w.is_empty());
        // Past-due insert at the end of time still works.
        let (c, k) = counter();
        w.insert(u64::MAX, k);
        assert_eq!(w.next_expiration(), Some(u64::MAX));
        w.advance(u64::MAX, fire_wake);
        assert_eq!(c.count(), 1);
    }

    // ----- remove / stale keys / update_waker --------------------------------

    #[test]
    fn remove_before_fire_never_fires() {
        let mut w = Wheel::new();
        let (c1, k1) = counter();
        let (c2, k2) = counter();
        let key1 = w.insert(100, k1);
        let key2 = w.insert(100, k2);
        assert!(w.remove(key1));
        assert!(!w.is_pending(key1));
        assert!(!w.remove(key1), "second remove must be a no-op");
        assert_eq!(w.len(), 1);
        w.check_invariants();
        w.advance(1000, fire_wake);
        assert_eq!((c1.count(), c2.count()), (0, 1));
        assert!(!w.is_pending(key2));
        assert!(w.is_empty());
        // Removing the only timer clears the slot: nothing left to wake for.
        let (_, k) = counter();
        let key = w.insert(5000, k);
        assert!(w.remove(key));
        assert_eq!(w.next_expiration(), None);
        w.check_invariants();
    }

    #[test]
    fn key_of_another_wheel_never_touches_this_wheels_timer() {
        // Two fresh wheels hand out the same index and generation; the key
        // of one must not reach the other's timer (issue 12, item 4).
        let mut mine = Wheel::new();
        let mut other = Wheel::new();
        let (c_mine, k_mine) = counter();
        let (c_other, k_other) = counter();
        let own = mine.insert(10, k_mine);
        let foreign = other.insert(50, k_other);
        assert_eq!(
            (own.index, own.generation),
            (foreign.index, foreign.generation)
        );
        assert_ne!(own, foreign);
        assert!(mine.owns(own) && !mine.owns(foreign));
        assert!(other.owns(foreign) && !other.owns(own));

        assert!(!mine.is_pending(foreign));
        let (c_thief, k_thief) = counter();
        assert!(!mine.update_waker(foreign, &k_thief));
        assert!(!mine.remove(foreign));
        assert!(mine.is_pending(own));
        assert_eq!(mine.len(), 1);
        mine.advance(10, fire_wake);
        assert_eq!((c_mine.count(), c_thief.count()), (1, 0));

        // The foreign timer is untouched in its own wheel.
        assert!(other.is_pending(foreign));
        other.advance(50, fire_wake);
        assert_eq!(c_other.count(), 1);
        mine.check_invariants();
        other.check_invariants();
    }

    #[test]
    fn stale_key_after_fire_does_not_touch_reused_slot() {
        let mut w = Wheel::new();
        let (c_old, k_old) = counter();
        let old = w.insert(10, k_old);
        w.advance(10, fire_wake);
        assert_eq!(c_old.count(), 1);

        let (c_new, k_new) = counter();
        let new = w.insert(20, k_new);
        assert_eq!(new.index, old.index, "entry should be reused");
        assert_ne!(new, old);

        assert!(!w.is_pending(old));
        assert!(!w.remove(old));
        let (c_other, k_other) = counter();
        assert!(!w.update_waker(old, &k_other));
        assert!(w.is_pending(new));
        assert_eq!(w.len(), 1);

        w.advance(20, fire_wake);
        assert_eq!((c_new.count(), c_other.count()), (1, 0));
        // And the same for a key stale because of remove.
        let (_, k) = counter();
        let a = w.insert(30, k);
        assert!(w.remove(a));
        let (c_b, k_b) = counter();
        let b = w.insert(30, k_b);
        assert_eq!(a.index, b.index);
        assert!(!w.remove(a));
        assert!(w.is_pending(b));
        w.advance(30, fire_wake);
        assert_eq!(c_b.count(), 1);
        w.check_invariants();
    }

    #[test]
    fn remove_middle_head_and_tail_of_a_slot_list() {
        let mut w = Wheel::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        // All five share one level-1 slot.
        let keys: Vec<_> = (0..5)
            .map(|i| w.insert(100 + i as u64, id_waker(i, &log)))
            .collect();
        assert!(w.remove(keys[2])); // middle
        assert!(w.remove(keys[4])); // head (pushed last)
        assert!(w.remove(keys[0])); // tail
        w.check_invariants();
        w.advance(200, fire_wake);
        assert_eq!(take_log(&log), vec![1, 3]);
    }

    #[test]
    fn update_waker_replaces_waker() {
        let mut w = Wheel::new();
        let (c_old, k_old) = counter();
        let (c_new, k_new) = counter();
        let key = w.insert(50, k_old);
        assert!(w.update_waker(key, &k_new));
        // Same waker again: accepted (no-op internally).
        assert!(w.update_waker(key, &k_new));
        w.advance(50, fire_wake);
        assert_eq!(c_old.count(), 0, "old waker must not be woken");
        assert_eq!(c_new.count(), 1);
        // The old waker was dropped by the replacement: only our Arc remains.
        assert_eq!(Arc::strong_count(&c_old), 1);
        assert!(!w.update_waker(key, &k_new), "fired key is stale");
    }

    #[test]
    fn reschedule_moves_a_pending_timer_and_keeps_key_and_waker() {
        let mut w = Wheel::new();
        let (c, k) = counter();
        // Level 2 to level 0, then into the past (the due list), each time
        // from a different list.
        let key = w.insert(10_000, k);
        let (c_other, k_other) = counter();
        let other = w.insert(10_000, k_other);
        assert!(w.reschedule(key, 30));
        w.check_invariants();
        assert_eq!(w.len(), 2);
        assert_eq!(w.next_expiration(), Some(30));
        w.advance(29, fire_wake);
        assert_eq!(c.count(), 0, "fired before its new deadline");
        assert!(w.reschedule(key, 5_000));
        assert!(w.reschedule(key, 20));
        w.check_invariants();
        w.advance(29, fire_wake);
        assert_eq!(
            c.count(),
            1,
            "a deadline in the past fires on the next advance"
        );
        assert!(!w.is_pending(key));
        assert!(!w.reschedule(key, 100), "a fired key is stale");
        assert!(!Wheel::new().reschedule(other, 100), "another wheel's key");
        w.check_invariants();
        w.advance(10_000, fire_wake);
        assert_eq!((c.count(), c_other.count()), (1, 1));
        assert!(w.is_empty());
    }

    #[test]
    fn panicking_fire_leaves_wheel_consistent() {
        let mut w = Wheel::new();
        let (c_a, k_a) = counter();
        let (c_b, k_b) = counter();
        let (c_late, k_late) = counter();
        w.insert(5, k_a);
        w.insert(5, k_b);
        let late = w.insert(70, k_late);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.advance(6, |_| panic!("callback panic"));
        }));
        assert!(r.is_err());
        // Both due timers were removed (their wakers dropped, unwoken).
        assert_eq!(c_a.count() + c_b.count(), 0);
        assert_eq!(w.len(), 1);
        assert_eq!(w.elapsed(), 6);
        w.check_invariants();
        assert!(w.is_pending(late));
        assert!(w.next_expiration().unwrap() <= 70);
        w.advance(70, fire_wake);
        assert_eq!(c_late.count(), 1);
    }

    // ----- randomized model checks -------------------------------------------

    #[test]
    fn randomized_against_model() {
        let mut rng = Lcg(0x5eed);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut w = Wheel::new();
        // Model: live timers as (key, id, deadline).
        let mut live: Vec<(TimerKey, usize, u64)> = Vec::new();
        let mut next_id = 0usize;
        for op in 0..12_000u32 {
            match rng.below(10) {
                // Insert (mostly), sometimes in the past.
                0..=5 => {
                    let d = if rng.below(20) == 0 {
                        w.elapsed().saturating_sub(rng.span(10))
                    } else {
                        w.elapsed() + rng.span(40)
                    };
                    let key = w.insert(d, id_waker(next_id, &log));
                    live.push((key, next_id, d));
                    next_id += 1;
                }
                // Remove a random live timer.
                6 | 7 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    let (key, _, _) = live.swap_remove(i);
                    assert!(w.remove(key));
                    assert!(!w.remove(key));
                }
                // Advance: by a random magnitude, or to next_expiration.
                _ => {
                    let before = w.elapsed();
                    let now = if rng.below(2) == 0 {
                        w.next_expiration().unwrap_or(before)
                    } else {
                        before + rng.span(30)
                    };
                    w.advance(now, fire_wake);
                    let fired = take_log(&log);
                    let mut expected: Vec<usize> = live
                        .iter()
                        .filter(|&&(_, _, d)| d <= now)
                        .map(|&(_, id, _)| id)
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(fired, expected, "op {op}: wrong set fired at {now}");
                    live.retain(|&(key, _, d)| {
                        assert_eq!(w.is_pending(key), d > now);
                        d > now
                    });
                }
            }
            assert_eq!(w.len(), live.len());
            let ne = w.next_expiration();
            match live.iter().map(|&(_, _, d)| d).min() {
                None => assert_eq!(ne, None),
                Some(min) => {
                    let ne = ne.expect("timers pending but no expiration");
                    assert!(ne <= min.max(w.elapsed()), "op {op}: {ne} later than {min}");
                    assert!(ne >= w.elapsed());
                    assert_eq!(ne == w.elapsed(), min <= w.elapsed(), "op {op}");
                }
            }
            if op % 1000 == 0 {
                w.check_invariants();
            }
        }
        w.check_invariants();
        // Drain everything.
        w.advance(u64::MAX, fire_wake);
        assert_eq!(take_log(&log).len(), live.len());
        assert!(w.is_empty());
        w.check_invariants();
    }

    #[test]
    fn next_expiration_bound_with_thousands_of_timers() {
        let mut rng = Lcg(42);
        let mut w = Wheel::new();
        w.advance(rng.span(40), |_| panic!());
        let base = w.elapsed();
        let mut deadlines = Vec::new();
        for _ in 0..5000 {
            let d = base + 1 + rng.span(38);
            deadlines.push(d);
            w.insert(d, noop());
        }
        // Walk through time by random jumps; after each, compare with the
        // brute-force minimum of what's still pending.
        let mut now = base;
        while !w.is_empty() {
            now += 1 + rng.span(34);
            w.advance(now, drop);
            deadlines.retain(|&d| d > now);
            assert_eq!(w.len(), deadlines.len());
            match deadlines.iter().min() {
                None => assert_eq!(w.next_expiration(), None),
                Some(&min) => {
                    let ne = w.next_expiration().unwrap();
                    assert!(ne > w.elapsed() && ne <= min);
                }
            }
        }
        w.insert(now, noop());
        assert_eq!(w.next_expiration(), Some(now));
    }

    // ----- scale ---------------------------------------------------------------

    #[test]
    fn million_timers_insert_then_remove() {
        const N: usize = 1_000_000;
        let mut rng = Lcg(1);
        let mut w = Wheel::new();
        w.advance(777, |_| panic!());
        let waker = noop();
        let keys: Vec<TimerKey> = (0..N)
            .map(|_| w.insert(777 + rng.span(42), waker.clone()))
            .collect();
        assert_eq!(w.len(), N);
        // Remove every other timer first (unlinking from the middle of the
        // slot lists), then the rest.
        let order = (0..N).step_by(2).chain((1..N).step_by(2));
        for (n, i) in order.enumerate() {
            assert!(w.remove(keys[i]));
            if n % 100_000 == 0 {
                assert_eq!(w.len(), N - n - 1);
            }
        }
        assert_eq!(w.len(), 0);
        assert!(w.is_empty());
        assert_eq!(w.next_expiration(), None);
        assert!(!w.remove(keys[0]));
        assert!(w.occupied.iter().all(|&b| b == 0));
        // The free list is reused rather than growing the arena.
        w.insert(1 << 20, waker);
        assert_eq!(w.entries.len(), N);
    }

    /// Firing window of the current `advance` in the million-fire test:
    /// `(previous now, now]`. Statics because only that test uses them.
    static WINDOW_PREV: AtomicU64 = AtomicU64::new(0);
    static WINDOW_NOW: AtomicU64 = AtomicU64::new(0);

    /// Waker shared by all timers with one deadline. It checks that it fires
    /// inside the current window and counts fires. Sharing one allocation per
    /// deadline keeps a million-timer test fast in debug builds.
    struct CheckedWake {
        deadline: u64,
        fired: AtomicU32,
    }

    impl Wake for CheckedWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            assert!(self.deadline <= WINDOW_NOW.load(SeqCst), "fired early");
            assert!(self.deadline > WINDOW_PREV.load(SeqCst), "fired late");
            self.fired.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn million_timers_all_fire_once_never_early() {
        const N: usize = 1_000_000;
        const GROUPS: usize = 1 << 16;
        let mut rng = Lcg(99);
        // 65536 distinct random deadlines up to ~70 minutes (levels 0..=3),
        // about 15 timers each, inserted in random order.
        let groups: Vec<Arc<CheckedWake>> = (0..GROUPS)
            .map(|_| {
                Arc::new(CheckedWake {
                    deadline: 1 + rng.below(1 << 22),
                    fired: AtomicU32::new(0),
                })
            })
            .collect();
        let wakers: Vec<Waker> = groups.iter().map(|g| Waker::from(g.clone())).collect();
        let mut w = Wheel::new();
        let mut keys = Vec::with_capacity(N);
        let mut expected = vec![0u32; GROUPS];
        for _ in 0..N {
            let g = rng.below(GROUPS as u64) as usize;
            expected[g] += 1;
            keys.push(w.insert(groups[g].deadline, wakers[g].clone()));
        }
        let max_deadline = groups.iter().map(|g| g.deadline).max().unwrap();
        assert_eq!(w.len(), N);
        let mut now = 0;
        let mut total_fired = 0;
        while now < max_deadline {
            WINDOW_PREV.store(now, SeqCst);
            now += 1 + rng.below(2000);
            WINDOW_NOW.store(now, SeqCst);
            w.advance(now, |waker| {
                total_fired += 1;
                waker.wake();
            });
            // Each fire removed exactly one timer.
            assert_eq!(w.len(), N - total_fired);
            assert!(w.next_expiration().is_none_or(|t| t > now));
        }
        assert!(w.is_empty());
        assert_eq!(total_fired, N);
        // Every deadline fired exactly as many times as it was registered,
        // and every key is spent.
        for (g, &n) in groups.iter().zip(&expected) {
            assert_eq!(g.fired.load(SeqCst), n);
        }
        assert!(keys.iter().all(|&k| !w.is_pending(k)));
    }
}
