//! tokio-dependent crates inside percore tasks: `tokio::time`, tower's
//! `timeout` layer, crates that spawn on or do I/O through tokio.
//!
//! Such crates look for a tokio runtime in a thread-local and panic without
//! one ("there is no reactor running, must be called from the context of a
//! Tokio 1.x runtime"). [`TokioContext`] provides it: while it polls (and
//! drops) its future, the handle of one small tokio runtime is entered, as
//! the `async-compat` crate does.
//!
//! Wrap the code that *creates* tokio objects, not only what awaits them:
//! `TokioContext::new(tokio::time::sleep(d))` still panics, because
//! `sleep` looks for the runtime before the wrapper exists; write
//! `TokioContext::new(async move { tokio::time::sleep(d).await })`. For a
//! server, `Serve::tokio_context` (feature `serve`) wraps
//! every connection (handlers and tower layers alike).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use percore_net::tokio_compat::TokioContext;
//!
//! percore::run(async {
//!     let start = Instant::now();
//!     // An async block: the sleep must be *made* inside the context too.
//!     TokioContext::new(async { tokio::time::sleep(Duration::from_millis(5)).await }).await;
//!     assert!(start.elapsed() >= Duration::from_millis(5));
//! });
//! ```
//!
//! # What runs where
//!
//! The tokio runtime is started on first use, once per process, with one
//! worker thread named `percore-tokio` (its timer wheel and epoll reactor
//! run there); it is shared by every core and never shut down.
//!
//! - **On percore's core** (the thread polling the `TokioContext`): the
//!   wrapped future itself, every poll of it, and whatever it awaits
//!   directly, including percore I/O on the core's ring. A `tokio::time::Sleep`
//!   is created and polled here too; only its deadline lives in tokio's
//!   timer wheel.
//! - **On tokio's thread**: tokio's timers firing (the wake-up then crosses
//!   to the core, like any cross-core wake), tokio's reactor for tokio's
//!   own sockets (a `tokio::net::TcpStream`, a reqwest connection: readiness
//!   on epoll there, the read or write itself on the core when polled), and
//!   anything `tokio::spawn`ed from inside the context, which runs on
//!   tokio's worker, not on the core.
//!
//! # Cost
//!
//! Entering the handle on each poll costs a reference-count increment and
//! decrement and two thread-local writes: about 20 ns per poll, measured
//! on the CI machine (a bare poll of a pending future: 0.25 ns plain, 20-25
//! ns in a `TokioContext`). An HTTP/1 request takes a handful of polls of
//! its connection, so a server with `Serve::tokio_context` on pays around
//! 0.1 µs per request even when no handler touches tokio. The runtime's
//! thread is started on the first `TokioContext` poll; while nothing uses
//! tokio it sleeps.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// The shared tokio runtime's handle, starting the runtime on first use.
///
/// # Panics
///
/// If the runtime's thread cannot be started.
///
/// ```
/// let handle = percore_net::tokio_compat::handle();
/// // tokio::spawn runs on tokio's worker thread, not on a percore core.
/// let task = handle.spawn(async { std::thread::current().name().map(String::from) });
/// let name = percore::run(async { task.await.unwrap() });
/// assert_eq!(name.as_deref(), Some("percore-tokio"));
/// ```
pub fn handle() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("percore-tokio")
                .enable_all()
                .build()
                .expect("percore-net: cannot start the tokio compatibility runtime")
        })
        .handle()
}

pin_project_lite::pin_project! {
    /// A future polled (and dropped) with the shared tokio runtime's handle
    /// entered, so that tokio-dependent code inside it works on percore.
    /// See the [module docs](self) for what then runs where.
    ///
    /// ```
    /// use std::time::Duration;
    /// use percore_net::tokio_compat::TokioContext;
    ///
    /// percore::run(async {
    ///     // Without the context this would panic: no tokio reactor.
    ///     let out = TokioContext::new(async {
    ///         tokio::time::timeout(Duration::from_secs(5), async { 7 }).await
    ///     })
    ///     .await;
    ///     assert_eq!(out, Ok(7));
    /// });
    /// ```
    pub struct TokioContext<F> {
        #[pin]
        inner: Option<F>,
    }

    impl<F> PinnedDrop for TokioContext<F> {
        fn drop(this: Pin<&mut Self>) {
            // A tokio timer or socket dropped here deregisters from the
            // runtime: enter it for that too.
            let _entered = handle().enter();
            this.project().inner.set(None);
        }
    }
}

impl<F> TokioContext<F> {
    /// Wraps `future`; the tokio runtime starts on its first poll if it has
    /// not yet.
    ///
    /// ```
    /// use percore_net::tokio_compat::TokioContext;
    ///
    /// percore::run(async {
    ///     assert!(tokio::runtime::Handle::try_current().is_err());
    ///     let inside = TokioContext::new(async { tokio::runtime::Handle::try_current().is_ok() });
    ///     assert!(inside.await);
    /// });
    /// ```
    pub fn new(future: F) -> TokioContext<F> {
        TokioContext {
            inner: Some(future),
        }
    }
}

/// A tower layer that runs a service inside the tokio context: its `call`
/// (where tower's `Timeout` makes its tokio sleep) and its response future.
/// Put it on the routes that need tokio only, so the others pay nothing
/// (`Serve::tokio_context` instead wraps every connection of a server).
///
/// ```
/// use std::time::Duration;
/// use axum::error_handling::HandleErrorLayer;
/// use axum::http::StatusCode;
/// use axum::routing::get;
/// use percore_net::tokio_compat::TokioContextLayer;
///
/// let slow_route = get(|| async { "slow" }).layer(
///     tower::ServiceBuilder::new()
///         .layer(TokioContextLayer) // outermost: Timeout::call needs tokio
///         .layer(HandleErrorLayer::new(|_: axum::BoxError| async {
///             StatusCode::REQUEST_TIMEOUT
///         }))
///         .timeout(Duration::from_secs(1)),
/// );
/// let _app: axum::Router = axum::Router::new().route("/slow", slow_route);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioContextLayer;

impl<S> tower_layer::Layer<S> for TokioContextLayer {
    type Service = TokioContextService<S>;

    fn layer(&self, inner: S) -> TokioContextService<S> {
        TokioContextService { inner }
    }
}

/// The service of [`TokioContextLayer`]: `inner` with the tokio handle
/// entered in `poll_ready` and `call`, and its future in a [`TokioContext`].
///
/// ```
/// use tower::Layer;
/// use percore_net::tokio_compat::TokioContextLayer;
///
/// let svc = tower::service_fn(|()| async { Ok::<_, ()>(tokio::runtime::Handle::try_current().is_ok()) });
/// let mut svc = TokioContextLayer.layer(svc);
/// let in_context = percore::run(async move {
///     tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap()
/// });
/// assert!(in_context);
/// ```
#[derive(Clone, Debug)]
pub struct TokioContextService<S> {
    inner: S,
}

impl<S, R> tower_service::Service<R> for TokioContextService<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TokioContext<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let _entered = handle().enter();
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> TokioContext<S::Future> {
        let _entered = handle().enter();
        TokioContext::new(self.inner.call(req))
    }
}

impl<F: Future> Future for TokioContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = handle().enter();
        self.project()
            .inner
            .as_pin_mut()
            .expect("TokioContext polled after its future was dropped")
            .poll(cx)
    }
}
