//! A channel for one value between tasks on one core:
//! `tokio::sync::oneshot` without atomics.
//!
//! # Examples
//!
//! ```
//! use percore::sync::oneshot;
//!
//! percore::run(async {
//!     let (tx, rx) = oneshot::channel();
//!     percore::task::spawn_local(async move {
//!         tx.send(42).unwrap();
//!     });
//!     assert_eq!(rx.await, Ok(42));
//! });
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The errors of the channel.
pub mod error {
    use std::fmt;

    /// The error of awaiting a [`Receiver`](super::Receiver): the sender was
    /// dropped without sending.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (tx, rx) = percore::sync::oneshot::channel::<u32>();
    ///     drop(tx);
    ///     assert!(rx.await.is_err());
    /// });
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}

    /// The error of [`Receiver::try_recv`](super::Receiver::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::sync::oneshot::{self, error::TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel::<u32>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TryRecvError {
        /// No value yet; the sender is alive.
        Empty,
        /// The sender was dropped without sending, or the value was taken.
        Closed,
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("channel empty"),
                TryRecvError::Closed => f.write_str("channel closed"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use self::error::{RecvError, TryRecvError};

struct Inner<T> {
    value: RefCell<Option<T>>,
    /// The sender sent or was dropped.
    tx_done: Cell<bool>,
    /// The receiver was dropped or closed.
    rx_closed: Cell<bool>,
    rx_waker: RefCell<Option<Waker>>,
    tx_waker: RefCell<Option<Waker>>,
}

/// The sending half; [`send`](Sender::send) consumes it.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = percore::sync::oneshot::channel();
/// tx.send("hi").unwrap();
/// assert_eq!(rx.try_recv(), Ok("hi"));
/// ```
pub struct Sender<T> {
    inner: Rc<Inner<T>>,
}

/// The receiving half: a future of the value.
///
/// # Cancellation
///
/// Dropping it closes the channel: a later `send` returns its value.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, rx) = percore::sync::oneshot::channel();
///     tx.send(1).unwrap();
///     assert_eq!(rx.await, Ok(1));
/// });
/// ```
pub struct Receiver<T> {
    inner: Rc<Inner<T>>,
}

/// A new channel for one value.
///
/// # Examples
///
/// ```
/// let (tx, rx) = percore::sync::oneshot::channel::<String>();
/// drop(rx);
/// assert!(tx.send("lost".into()).is_err());
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(Inner {
        value: RefCell::new(None),
        tx_done: Cell::new(false),
        rx_closed: Cell::new(false),
        rx_waker: RefCell::new(None),
        tx_waker: RefCell::new(None),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Sends the value, waking the receiver.
    ///
    /// # Errors
    ///
    /// The value back, if the receiver was dropped or closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::sync::oneshot::channel();
    /// assert!(tx.send(1).is_ok());
    /// # drop(rx);
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        if self.inner.rx_closed.get() {
            return Err(value);
        }
        *self.inner.value.borrow_mut() = Some(value);
        // `Drop` marks the send done and wakes the receiver.
        Ok(())
    }

    /// Whether the receiver was dropped or closed.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::sync::oneshot::channel::<u8>();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.rx_closed.get()
    }

    /// Waits until the receiver is dropped or closed (to stop work nobody
    /// will read).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (mut tx, rx) = percore::sync::oneshot::channel::<u8>();
    ///     drop(rx);
    ///     tx.closed().await;
    /// });
    /// ```
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| {
            if self.inner.rx_closed.get() {
                return Poll::Ready(());
            }
            set_waker(&self.inner.tx_waker, cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.inner.tx_done.set(true);
        // Taken out first: the waker runs with no borrow held.
        let waker = self.inner.rx_waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The value if it was sent, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if not sent yet, [`TryRecvError::Closed`] if
    /// the sender was dropped or the value was taken already.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = percore::sync::oneshot::channel();
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(7));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(value) = self.inner.value.borrow_mut().take() {
            return Ok(value);
        }
        if self.inner.tx_done.get() {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Closes the channel: a later `send` fails. A value sent before can
    /// still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = percore::sync::oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn close(&mut self) {
        self.inner.rx_closed.set(true);
        // Taken out first: the waker runs with no borrow held.
        let waker = self.inner.tx_waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &self.inner;
        if let Some(value) = inner.value.borrow_mut().take() {
            return Poll::Ready(Ok(value));
        }
        if inner.tx_done.get() {
            return Poll::Ready(Err(RecvError(())));
        }
        set_waker(&inner.rx_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Stores `waker` in `slot`, keeping the old one if it wakes the same task.
fn set_waker(slot: &RefCell<Option<Waker>>, waker: &Waker) {
    let mut slot = slot.borrow_mut();
    match &mut *slot {
        Some(w) => w.clone_from(waker),
        None => *slot = Some(waker.clone()),
    }
}
