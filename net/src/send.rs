//! [`CoreBound`]: percore's `!Send` futures and values where `Send` is
//! demanded (axum handlers, tower layers, hyper-util's client and pool).
//!
//! # Why this module has `unsafe`
//!
//! The rest of percore-net has none. `Send` and `Sync` can only be promised
//! with `unsafe impl`, and keeping the inner value from being dropped twice
//! or moved while pinned needs `ManuallyDrop` and a pin projection. Each of
//! the five unsafe items below says what it relies on.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

thread_local! {
    /// This thread's tag, 0 until first asked. Const-initialized and without
    /// a destructor, so reading it costs a TLS load and works even while
    /// the thread's other locals are being destroyed.
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// The next thread tag. A `u64` counted up by one per thread that asks never
/// wraps in practice, so no two threads of a process share a tag, even one
/// that started after another ended (as `ThreadId` promises too).
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// The calling thread's tag: about 0.5 ns, where
/// `std::thread::current().id()` costs about 13 ns (it clones and drops the
/// thread's `Arc`), measured on the CI machine.
#[inline]
fn thread_tag() -> u64 {
    THREAD.with(|tag| match tag.get() {
        0 => {
            let new = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            tag.set(new);
            new
        }
        known => known,
    })
}

/// A value, typically a `!Send` future, that is `Send` and `Sync` because it
/// can only be used on the thread (the percore core) that made it.
///
/// axum handlers, tower layers and hyper-util's pooled client demand `Send`
/// futures, because a work-stealing runtime may move a task to another
/// thread between two polls. percore never does: a task runs on the core
/// that spawned it until it ends, so its futures may hold `Rc`s, percore
/// files and sockets, and other thread-bound state. `CoreBound::new(future)`
/// makes such a future acceptable there.
///
/// ```
/// use std::future::Future;
/// use percore_net::CoreBound;
///
/// // What axum, tower and hyper-util ask of a handler's future.
/// fn demands_send<F: Future + Send + 'static>(f: F) -> F {
///     f
/// }
///
/// percore::run(async {
///     // `percore::fs` futures hold `Rc`s, so they are `!Send`.
///     let read = CoreBound::new(async { percore::fs::read("Cargo.toml").await.unwrap().len() });
///     let len = percore::spawn(demands_send(read)).await.unwrap();
///     assert!(len > 0);
/// });
/// ```
///
/// # Why it is sound
///
/// `Send` on a type says its value may be used from another thread. A
/// `CoreBound` may be *moved* to another thread and back (moving only copies
/// its bytes; none of the inner value's code runs), but every *use* of the
/// inner value, polling, [`Deref`], [`DerefMut`], [`Clone`],
/// [`into_inner`](CoreBound::into_inner) and dropping it, first checks that
/// the calling thread is the one that called [`CoreBound::new`], and panics
/// otherwise. So all code of the inner value runs on one thread, as if it
/// had never moved; an `Rc` inside is never counted from two threads at once.
/// `Sync` follows the same way: a `&CoreBound<T>` on another thread cannot
/// reach the `T`.
///
/// # When it panics
///
/// - When polled, dereferenced, cloned or unwrapped on another thread than
///   the one that made it (`Debug` prints a placeholder there instead). On
///   percore this happens only if the value was sent to another thread (a
///   `std::thread::spawn`, `spawn_blocking`, a channel to another core, a
///   `tokio::spawn` inside `tokio_compat`); a framework that *demands*
///   `Send` but keeps the future in the task that polls it (axum, tower,
///   hyper on percore) never trips it.
/// - When dropped on another thread. The inner value is then **leaked, not
///   dropped**: dropping it there would run its destructor on the wrong
///   thread (an `Rc` count decremented from two threads). A leak is safe; a
///   file or socket inside stays open until the process ends. If the thread
///   is already panicking, the drop leaks without a second panic, which
///   would abort. (The `send_wrapper` crate behaves the same way; this
///   wrapper costs one thread-local load and comparison per check instead of
///   its `std::thread::current()` call, about 0.5 ns against 13 ns.)
///
/// A `T` without drop glue (`std::mem::needs_drop::<T>()` is false) is
/// dropped on any thread without a check: there is nothing to run.
pub struct CoreBound<T> {
    value: ManuallyDrop<T>,
    /// The tag of the thread that made it ([`thread_tag`]).
    thread: u64,
}

// SAFETY: the inner `T` is only ever used (polled, borrowed, cloned,
// formatted, moved out, dropped) after `check`/`is_local` confirmed the
// calling thread is the one that made the wrapper; on any other thread those
// paths panic or leak. Moving the wrapper's bytes between threads runs none
// of `T`'s code, so `T` behaves as if it never left its thread.
unsafe impl<T> Send for CoreBound<T> {}

// SAFETY: a shared `&CoreBound<T>` reaches `&T` only through `Deref` (and
// `Clone`/`Debug`, which go through it), and that checks the thread; so all
// access to `T` happens on its one thread and no two threads share a `&T`.
unsafe impl<T> Sync for CoreBound<T> {}

impl<T> CoreBound<T> {
    /// Wraps `value`, bound to the calling thread.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use percore_net::CoreBound;
    ///
    /// fn needs_send<S: Send>(s: S) -> S { s }
    ///
    /// let rc = needs_send(CoreBound::new(Rc::new(5)));
    /// assert_eq!(**rc, 5);
    /// ```
    pub fn new(value: T) -> CoreBound<T> {
        CoreBound {
            value: ManuallyDrop::new(value),
            thread: thread_tag(),
        }
    }

    /// Whether the calling thread is the one that made this wrapper: whether
    /// using it here works rather than panics.
    ///
    /// ```
    /// use percore_net::CoreBound;
    ///
    /// let here = CoreBound::new(std::rc::Rc::new(()));
    /// assert!(here.is_local());
    /// let elsewhere = std::thread::spawn(move || {
    ///     let local = here.is_local();
    ///     std::mem::forget(here); // dropping it here would panic
    ///     local
    /// });
    /// assert!(!elsewhere.join().unwrap());
    /// ```
    #[inline]
    pub fn is_local(&self) -> bool {
        // One load and one compare: `thread` is never 0 (`thread_tag` hands
        // out tags from 1), so a thread whose tag is still 0 (it never made
        // a wrapper) reads as another thread without being given a tag.
        THREAD.with(Cell::get) == self.thread
    }

    /// Takes the value out.
    ///
    /// # Panics
    ///
    /// On another thread than the one that made the wrapper (the wrapper is
    /// then dropped on this thread, so the value is leaked).
    ///
    /// ```
    /// use percore_net::CoreBound;
    ///
    /// let bound = CoreBound::new(String::from("mine"));
    /// assert_eq!(bound.into_inner(), "mine");
    /// ```
    #[track_caller]
    pub fn into_inner(self) -> T {
        self.check("unwrapped");
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped (ManuallyDrop), so the value is
        // taken exactly once; we are on the value's thread (checked above).
        unsafe { ManuallyDrop::take(&mut this.value) }
    }

    /// Panics unless on the wrapper's thread; `what` names the use.
    #[inline]
    #[track_caller]
    fn check(&self, what: &str) {
        if !self.is_local() {
            wrong_thread(what);
        }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn wrong_thread(what: &str) -> ! {
    let thread = std::thread::current();
    panic!(
        "percore_net::CoreBound {what} on thread {:?} ({:?}), not on the core thread that made it: \
         its !Send value was sent to another thread, where it cannot be used \
         (percore never moves a task, so look for a std::thread::spawn or a channel \
         that carried it)",
        thread.name().unwrap_or("unnamed"),
        thread.id(),
    );
}

impl<T> Deref for CoreBound<T> {
    type Target = T;

    /// # Panics
    ///
    /// On another thread than the one that made the wrapper.
    #[inline]
    #[track_caller]
    fn deref(&self) -> &T {
        self.check("dereferenced");
        &self.value
    }
}

impl<T> DerefMut for CoreBound<T> {
    /// # Panics
    ///
    /// On another thread than the one that made the wrapper.
    #[inline]
    #[track_caller]
    fn deref_mut(&mut self) -> &mut T {
        self.check("dereferenced");
        &mut self.value
    }
}

impl<F: Future> Future for CoreBound<F> {
    type Output = F::Output;

    /// Polls the inner future.
    ///
    /// # Panics
    ///
    /// On another thread than the one that made the wrapper.
    #[inline]
    #[track_caller]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.check("polled");
        // SAFETY: structural pinning of `value`: it is never moved out of a
        // pinned wrapper (`into_inner` takes `self` by value, which a
        // `Pin<&mut CoreBound<F>>` only allows when `F: Unpin`, since
        // `CoreBound<F>` is Unpin only then), and `Drop` drops it in place.
        let fut = unsafe { self.map_unchecked_mut(|this| &mut *this.value) };
        fut.poll(cx)
    }
}

impl<T: Clone> Clone for CoreBound<T> {
    /// A wrapper of a clone, bound to the same thread.
    ///
    /// # Panics
    ///
    /// On another thread than the one that made the wrapper.
    #[track_caller]
    fn clone(&self) -> CoreBound<T> {
        CoreBound::new(T::clone(self))
    }
}

impl<T: fmt::Debug> fmt::Debug for CoreBound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_local() {
            f.debug_tuple("CoreBound").field(&*self.value).finish()
        } else {
            // Formatting must not panic; the value is not ours to read here.
            f.write_str("CoreBound(<on another thread>)")
        }
    }
}

impl<T> Drop for CoreBound<T> {
    /// Drops the inner value on its thread; elsewhere leaks it and panics
    /// (unless already panicking).
    fn drop(&mut self) {
        if !mem::needs_drop::<T>() || self.is_local() {
            // SAFETY: `value` is dropped only here and never used after;
            // either on its own thread, or with no drop code to run at all.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        } else if !std::thread::panicking() {
            wrong_thread("dropped (its value is leaked)");
        }
    }
}

/// hyper's I/O traits, forwarded with the thread check, so that a percore
/// stream can serve where hyper wants `Send` I/O (HTTP upgrades, hyper-util's
/// pooled client): `CoreBound<Compat<TcpStream>>`.
#[cfg(feature = "hyper")]
mod hyper_io {
    use super::CoreBound;
    use ::hyper::rt::{Read, ReadBufCursor, Write};
    use std::io::{self, IoSlice};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    impl<T: Read + Unpin> Read for CoreBound<T> {
        #[inline]
        #[track_caller]
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut **self.get_mut()).poll_read(cx, buf)
        }
    }

    impl<T: Write + Unpin> Write for CoreBound<T> {
        #[inline]
        #[track_caller]
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut **self.get_mut()).poll_write(cx, buf)
        }

        #[inline]
        #[track_caller]
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut **self.get_mut()).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            // Asked by hyper on the connection's own thread; a foreign
            // thread gets the safe answer instead of a panic.
            self.is_local() && (**self).is_write_vectored()
        }

        #[inline]
        #[track_caller]
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut **self.get_mut()).poll_flush(cx)
        }

        #[inline]
        #[track_caller]
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut **self.get_mut()).poll_shutdown(cx)
        }
    }
}
