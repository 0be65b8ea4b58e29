//! `select!`: wait on several futures at once, run the handler of the first
//! to finish, drop the others.

/// Waits on several futures at once and runs the handler of the first to
/// complete whose output matches its pattern; the other futures are
/// dropped (their I/O is cancelled safely). tokio's `select!`, with the same
/// syntax:
///
/// ```text
/// percore::select! {
///     [biased;]
///     <pattern> = <future> [, if <precondition>] => <handler>,
///     ...
///     [else => <handler>]
/// }
/// ```
///
/// 1. Every precondition is evaluated; a branch whose precondition is
///    false is disabled. Then every `<future>` expression is evaluated (a
///    disabled branch's too, but its future is never polled). Anything
///    that implements [`IntoFuture`](std::future::IntoFuture) works.
/// 2. The futures are pinned on the stack of the calling task and polled
///    in place, so they may borrow local state and be `!Send`.
/// 3. Each poll starts at a random branch (fair), or, after `biased;`, at
///    the first branch, in the order written.
/// 4. When a future completes, its branch is disabled. If the output
///    matches the pattern, the other futures are dropped and the handler
///    runs with the pattern's bindings. If not, selection goes on with the
///    remaining branches.
/// 5. When every branch is disabled, the `else` handler runs; without an
///    `else` branch, `select!` panics.
///
/// Handlers run in the caller's context, outside any loop of the macro:
/// `break`, `continue`, `return`, `?` and `.await` in a handler mean what
/// they mean around the `select!`. All handlers must have the same type.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore::time::sleep;
///
/// percore::run(async {
///     let (tx, mut rx) = percore::channel::channel::<u32>(4);
///     percore::spawn(async move {
///         for i in 0..3 {
///             tx.send(i).await.unwrap();
///         }
///     });
///     let mut got = Vec::new();
///     let deadline = sleep(Duration::from_secs(10));
///     let mut deadline = std::pin::pin!(deadline);
///     loop {
///         percore::select! {
///             // `None` (the channel closed) does not match: the branch is
///             // disabled, and with the deadline gone too, `else` runs.
///             Some(v) = rx.recv() => got.push(v), // borrows `got` and `rx`
///             () = &mut deadline, if got.len() < 3 => panic!("timed out"),
///             else => break,
///         }
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
///
/// Preconditions and `biased;`:
///
/// ```
/// percore::run(async {
///     let want_first = false;
///     let out = percore::select! {
///         biased;
///         a = async { 1 }, if want_first => a,
///         b = async { 2 } => b,
///         c = async { 3 } => c,
///     };
///     assert_eq!(out, 2); // first enabled branch, polled first
/// });
/// ```
#[macro_export]
macro_rules! select {
    (biased; $($rest:tt)*) => {
        $crate::__select_parse!(@(true) [] [] $($rest)*)
    };
    ($($rest:tt)*) => {
        $crate::__select_parse!(@(false) [] [] $($rest)*)
    };
}

/// Parses `select!`'s branches one at a time; not public API.
///
/// State: `@(biased) [branches] [else handler]`, where each branch is
/// `(fut out done (pattern) (future) (precondition) (handler))` and
/// `fut`, `out`, `done` are identifiers minted by the step that parsed the
/// branch, so each branch's locals are distinct (macro hygiene).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All parsed.
    (@($biased:tt) [$($branches:tt)*] [$($else:tt)*]) => {
        $crate::__select_expand!(@($biased) [$($branches)*] [$($else)*])
    };

    // `else => handler`
    (@($biased:tt) [$($branches:tt)*] [] else => $h:block $(,)? $($rest:tt)*) => {
        $crate::__select_parse!(@($biased) [$($branches)*] [$h] $($rest)*)
    };
    (@($biased:tt) [$($branches:tt)*] [] else => $h:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@($biased) [$($branches)*] [$h] $($($rest)*)?)
    };

    // `pattern = future, if precondition => handler`
    (@($biased:tt) [$($branches:tt)*] [$($else:tt)*]
        $p:pat = $f:expr, if $c:expr => $h:block $(,)? $($rest:tt)*) => {
        $crate::__select_parse!(@($biased)
            [$($branches)* (fut out done ($p) ($f) ($c) ($h))] [$($else)*] $($rest)*)
    };
    (@($biased:tt) [$($branches:tt)*] [$($else:tt)*]
        $p:pat = $f:expr, if $c:expr => $h:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@($biased)
            [$($branches)* (fut out done ($p) ($f) ($c) ($h))] [$($else)*] $($($rest)*)?)
    };

    // `pattern = future => handler`
    (@($biased:tt) [$($branches:tt)*] [$($else:tt)*]
        $p:pat = $f:expr => $h:block $(,)? $($rest:tt)*) => {
        $crate::__select_parse!(@($biased)
            [$($branches)* (fut out done ($p) ($f) (true) ($h))] [$($else)*] $($rest)*)
    };
    (@($biased:tt) [$($branches:tt)*] [$($else:tt)*]
        $p:pat = $f:expr => $h:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@($biased)
            [$($branches)* (fut out done ($p) ($f) (true) ($h))] [$($else)*] $($($rest)*)?)
    };
}

/// Builds `select!`'s code from the parsed branches; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_expand {
    (@($biased:tt) [] [$($else:tt)*]) => {
        ::core::compile_error!("percore::select! needs at least one `pattern = future => handler` branch")
    };
    (@($biased:tt)
        [$(($fut:ident $out:ident $done:ident ($p:pat) ($f:expr) ($c:expr) ($h:expr)))+]
        [$($else:tt)*]) => {{
        // 1. Preconditions, then every future (a disabled one is not polled).
        $( let mut $done: bool = !$c; )+
        $( let mut $fut = ::core::pin::pin!(::core::future::IntoFuture::into_future($f)); )+
        $( let mut $out = ::core::option::Option::None; )+
        let __count = [$(stringify!($fut)),+].len();
        // 2. Poll the enabled futures from the start branch (random on each
        //    poll unless biased) until one's output matches its pattern, or
        //    all are disabled.
        let _: bool = ::core::future::poll_fn(|__cx| {
            let __start = $crate::__private::select::start($biased, __count);
            let mut __branches = [$(
                &mut |__cx: &mut ::core::task::Context<'_>| -> $crate::__private::select::Branch {
                    if $done {
                        return $crate::__private::select::Branch::Disabled;
                    }
                    match ::core::future::Future::poll($fut.as_mut(), __cx) {
                        ::core::task::Poll::Pending => $crate::__private::select::Branch::Pending,
                        ::core::task::Poll::Ready(__value) => {
                            $done = true;
                            // Does the output match? Bindings in a guard are
                            // by reference and the arm is never entered, so
                            // this moves nothing out of `__value`.
                            let mut __is_match = false;
                            #[allow(unused_variables, unused_mut, unreachable_code, clippy::diverging_sub_expression)]
                            match __value {
                                $p if {
                                    __is_match = true;
                                    false
                                } => ::core::unreachable!(),
                                _ => {}
                            }
                            if __is_match {
                                $out = ::core::option::Option::Some(__value);
                                $crate::__private::select::Branch::Matched
                            } else {
                                $crate::__private::select::Branch::Disabled
                            }
                        }
                    }
                } as &mut dyn FnMut(&mut ::core::task::Context<'_>) -> $crate::__private::select::Branch
            ),+];
            $crate::__private::select::poll_branches(&mut __branches, __start, __cx)
        })
        .await;
        // 3. The winner's handler, in the caller's context (else: none won).
        $(
            if let ::core::option::Option::Some(__value) = $out.take() {
                match __value {
                    $p => $h,
                    #[allow(unreachable_patterns)]
                    _ => ::core::unreachable!("percore::select!: the pattern matched a moment ago"),
                }
            } else
        )+
        {
            $crate::__select_else!($($else)*)
        }
    }};
}

/// The `else` handler, or the panic when there is none; not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_else {
    () => {
        ::core::panic!("percore::select!: all branches are disabled and there is no else branch")
    };
    ($h:expr) => {
        $h
    };
}

/// Runtime support for [`select!`](crate::select!); not public API.
#[doc(hidden)]
pub mod support {
    use std::cell::Cell;
    use std::task::{Context, Poll};

    /// What polling one branch gave.
    pub enum Branch {
        /// Its future is still running.
        Pending,
        /// Its future completed and the output matched: it wins.
        Matched,
        /// Disabled by its precondition, or completed without a match.
        Disabled,
    }

    /// Polls `branches` starting at `start` (wrapping around): `Ready(true)`
    /// when one matched, `Ready(false)` when all are disabled.
    pub fn poll_branches(
        branches: &mut [&mut dyn FnMut(&mut Context<'_>) -> Branch],
        start: usize,
        cx: &mut Context<'_>,
    ) -> Poll<bool> {
        let n = branches.len();
        let mut pending = false;
        for i in 0..n {
            match (branches[(start + i) % n])(cx) {
                Branch::Matched => return Poll::Ready(true),
                Branch::Pending => pending = true,
                Branch::Disabled => {}
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(false)
        }
    }

    thread_local! {
        static RNG: Cell<u64> = const { Cell::new(0) };
    }

    /// The branch to poll first: 0 when biased, else a random one of `n`
    /// (a thread-local xorshift, seeded from the thread's stack address and
    /// the clock on first use).
    pub fn start(biased: bool, n: usize) -> usize {
        if biased || n <= 1 {
            return 0;
        }
        RNG.with(|rng| {
            let mut x = rng.get();
            if x == 0 {
                let local = 0u8;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() as u64);
                x = (std::ptr::addr_of!(local) as u64) ^ (nanos << 32) | 1;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rng.set(x);
            (x % n as u64) as usize
        })
    }
}
