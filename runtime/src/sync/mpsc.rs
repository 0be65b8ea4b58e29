//! Multi-producer, single-consumer channels between tasks on one core:
//! `tokio::sync::mpsc` without atomics.
//!
//! [`channel`] is bounded: [`Sender::send`] waits for room. The channel
//! closes for the receiver when every sender is dropped (after the queued
//! messages), and for senders when the receiver is dropped or
//! [closed](Receiver::close). [`unbounded_channel`] never waits to send.
//!
//! # Examples
//!
//! ```
//! use percore::sync::mpsc;
//!
//! percore::run(async {
//!     let (tx, mut rx) = mpsc::channel(8);
//!     for i in 0..3 {
//!         let tx = tx.clone();
//!         percore::task::spawn_local(async move {
//!             tx.send(i).await.unwrap();
//!         });
//!     }
//!     drop(tx);
//!     let mut got = Vec::new();
//!     while let Some(i) = rx.recv().await {
//!         got.push(i);
//!     }
//!     got.sort();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::wait_queue::LocalWaitQueue;

/// The errors of the channels.
pub mod error {
    use std::fmt;

    /// The error of a send: the receiver is gone; the message comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (tx, rx) = percore::sync::mpsc::channel(1);
    ///     drop(rx);
    ///     assert_eq!(tx.send(5).await.unwrap_err().0, 5);
    /// });
    /// ```
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SendError").finish_non_exhaustive()
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    /// The error of [`Sender::try_send`](super::Sender::try_send); the
    /// message comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::sync::mpsc::{self, error::TrySendError};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub enum TrySendError<T> {
        /// The channel is full.
        Full(T),
        /// The receiver is gone.
        Closed(T),
    }

    impl<T> fmt::Debug for TrySendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TrySendError::Full(_) => f.write_str("Full(..)"),
                TrySendError::Closed(_) => f.write_str("Closed(..)"),
            }
        }
    }

    impl<T> fmt::Display for TrySendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TrySendError::Full(_) => f.write_str("no available capacity"),
                TrySendError::Closed(_) => f.write_str("channel closed"),
            }
        }
    }

    impl<T> std::error::Error for TrySendError<T> {}

    /// The error of [`Receiver::try_recv`](super::Receiver::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::sync::mpsc::{self, error::TryRecvError};
    ///
    /// let (tx, mut rx) = mpsc::channel::<u8>(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    pub enum TryRecvError {
        /// Nothing queued; senders are alive.
        Empty,
        /// Nothing queued and every sender is gone.
        Disconnected,
    }

    impl fmt::Display for TryRecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TryRecvError::Empty => f.write_str("receiving on an empty channel"),
                TryRecvError::Disconnected => f.write_str("receiving on a closed channel"),
            }
        }
    }

    impl std::error::Error for TryRecvError {}
}

use self::error::{SendError, TryRecvError, TrySendError};

struct Chan<T> {
    queue: RefCell<VecDeque<T>>,
    /// Most messages queued; `usize::MAX` for unbounded.
    cap: usize,
    senders: Cell<usize>,
    rx_closed: Cell<bool>,
    rx_waker: RefCell<Option<Waker>>,
    /// Senders waiting for room.
    send_q: LocalWaitQueue,
}

impl<T> Chan<T> {
    fn new(cap: usize) -> Rc<Chan<T>> {
        Rc::new(Chan {
            queue: RefCell::new(VecDeque::with_capacity(cap.min(1024))),
            cap,
            senders: Cell::new(1),
            rx_closed: Cell::new(false),
            rx_waker: RefCell::new(None),
            send_q: LocalWaitQueue::new(),
        })
    }

    fn has_room(&self) -> bool {
        self.queue.borrow().len() < self.cap
    }

    fn push(&self, value: T) {
        self.queue.borrow_mut().push_back(value);
        // Taken out first: the waker runs with no borrow held.
        let waker = self.rx_waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.rx_closed.get() {
            Err(TrySendError::Closed(value))
        } else if self.has_room() {
            self.push(value);
            Ok(())
        } else {
            Err(TrySendError::Full(value))
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let value = self.queue.borrow_mut().pop_front();
        match value {
            Some(value) => {
                if self.cap != usize::MAX {
                    self.send_q.wake_one();
                }
                Poll::Ready(Some(value))
            }
            None if self.senders.get() == 0 => Poll::Ready(None),
            None => {
                let mut slot = self.rx_waker.borrow_mut();
                match &mut *slot {
                    Some(w) => w.clone_from(cx.waker()),
                    None => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        let value = self.queue.borrow_mut().pop_front();
        match value {
            Some(value) => {
                if self.cap != usize::MAX {
                    self.send_q.wake_one();
                }
                Ok(value)
            }
            None if self.senders.get() == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn close(&self) {
        self.rx_closed.set(true);
        self.send_q.wake_all();
    }

    fn add_sender(&self) {
        self.senders.set(self.senders.get() + 1);
    }

    fn drop_sender(&self) {
        self.senders.set(self.senders.get() - 1);
        if self.senders.get() > 0 {
            return;
        }
        // Taken out first: the waker runs with no borrow held.
        let waker = self.rx_waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A bounded channel holding at most `buffer` messages.
///
/// # Panics
///
/// If `buffer` is 0 (as tokio's).
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, mut rx) = percore::sync::mpsc::channel(2);
///     tx.send("a").await.unwrap();
///     assert_eq!(rx.recv().await, Some("a"));
/// });
/// ```
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    assert!(buffer > 0, "mpsc bounded channel requires buffer > 0");
    let chan = Chan::new(buffer);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A channel without a bound: sending never waits.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
///     for i in 0..100 {
///         tx.send(i).unwrap();
///     }
///     drop(tx);
///     let mut n = 0;
///     while rx.recv().await.is_some() {
///         n += 1;
///     }
///     assert_eq!(n, 100);
/// });
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let chan = Chan::new(usize::MAX);
    (
        UnboundedSender { chan: chan.clone() },
        UnboundedReceiver { chan },
    )
}

/// The sending half of a bounded channel; clone it for more senders.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = percore::sync::mpsc::channel(4);
/// let tx2 = tx.clone();
/// tx.try_send(1).unwrap();
/// tx2.try_send(2).unwrap();
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct Sender<T> {
    chan: Rc<Chan<T>>,
}

/// The receiving half of a bounded channel.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, mut rx) = percore::sync::mpsc::channel(1);
///     drop(tx);
///     assert_eq!(rx.recv().await, None::<u8>);
/// });
/// ```
pub struct Receiver<T> {
    chan: Rc<Chan<T>>,
}

/// The sending half of an unbounded channel.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct UnboundedSender<T> {
    chan: Rc<Chan<T>>,
}

/// The receiving half of an unbounded channel.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
///     tx.send("x").unwrap();
///     assert_eq!(rx.recv().await, Some("x"));
/// });
/// ```
pub struct UnboundedReceiver<T> {
    chan: Rc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room if the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone (before or
    /// while waiting).
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the value unsent and gives up its place;
    /// room it had been woken for goes to the next waiting sender.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (tx, mut rx) = percore::sync::mpsc::channel(1);
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// });
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let chan = &*self.chan;
        let value = match chan.try_send(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(value)) => return Err(SendError(value)),
            Err(TrySendError::Full(value)) => value,
        };
        let mut value = Some(value);
        let mut waiter = chan.send_q.waiter();
        poll_fn(|cx| {
            let v = value.take().expect("polled after completion");
            match chan.try_send(v) {
                Ok(()) => {
                    waiter.done(|| chan.has_room());
                    Poll::Ready(Ok(()))
                }
                Err(TrySendError::Closed(v)) => {
                    waiter.done(|| false);
                    Poll::Ready(Err(SendError(v)))
                }
                Err(TrySendError::Full(v)) => {
                    value = Some(v);
                    waiter.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Sends `value` now if there is room.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = percore::sync::mpsc::channel(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(tx.try_send(2).is_err());
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }

    /// Whether the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::sync::mpsc::channel::<u8>(1);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.rx_closed.get()
    }

    /// Free room now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = percore::sync::mpsc::channel(3);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.capacity(), 2);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.cap - self.chan.queue.borrow().len()
    }

    /// The channel's bound.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = percore::sync::mpsc::channel::<u8>(3);
    /// assert_eq!(tx.max_capacity(), 3);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.chan.cap
    }
}

impl<T> UnboundedSender<T> {
    /// Sends `value` at once.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::sync::mpsc::unbounded_channel();
    /// assert!(tx.send(1).is_ok());
    /// drop(rx);
    /// assert!(tx.send(2).is_err());
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.chan.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v) | TrySendError::Full(v)) => Err(SendError(v)),
        }
    }

    /// Whether the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::sync::mpsc::unbounded_channel::<u8>();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.rx_closed.get()
    }
}

macro_rules! receiver_methods {
    ($rx:ident) => {
        impl<T> $rx<T> {
            /// Waits for the next message; `None` once every sender is
            /// gone and the queue is empty.
            ///
            /// # Cancellation
            ///
            /// Cancel-safe: a dropped `recv` took no message.
            ///
            /// # Examples
            ///
            /// ```
            /// percore::run(async {
            ///     let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
            ///     tx.send(1).unwrap();
            ///     drop(tx);
            ///     assert_eq!(rx.recv().await, Some(1));
            ///     assert_eq!(rx.recv().await, None);
            /// });
            /// ```
            pub async fn recv(&mut self) -> Option<T> {
                poll_fn(|cx| self.chan.poll_recv(cx)).await
            }

            /// [`recv`](Self::recv) as a poll function, for hand-written
            /// futures and streams.
            ///
            /// # Examples
            ///
            /// ```
            /// percore::run(async {
            ///     let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
            ///     tx.send(1).unwrap();
            ///     assert_eq!(std::future::poll_fn(|cx| rx.poll_recv(cx)).await, Some(1));
            /// });
            /// ```
            pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
                self.chan.poll_recv(cx)
            }

            /// The next message if one is queued.
            ///
            /// # Errors
            ///
            /// [`TryRecvError::Empty`] or, once every sender is gone,
            /// [`TryRecvError::Disconnected`].
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
            /// tx.send(1).unwrap();
            /// assert_eq!(rx.try_recv(), Ok(1));
            /// assert!(rx.try_recv().is_err());
            /// ```
            pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
                self.chan.try_recv()
            }

            /// Closes the channel for senders; queued messages can still be
            /// received.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, mut rx) = percore::sync::mpsc::unbounded_channel();
            /// tx.send(1).unwrap();
            /// rx.close();
            /// assert!(tx.send(2).is_err());
            /// assert_eq!(rx.try_recv(), Ok(1));
            /// ```
            pub fn close(&mut self) {
                self.chan.close();
            }

            /// Messages queued now.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = percore::sync::mpsc::unbounded_channel();
            /// tx.send(1).unwrap();
            /// assert_eq!(rx.len(), 1);
            /// ```
            pub fn len(&self) -> usize {
                self.chan.queue.borrow().len()
            }

            /// Whether nothing is queued.
            ///
            /// # Examples
            ///
            /// ```
            /// let (_tx, rx) = percore::sync::mpsc::unbounded_channel::<u8>();
            /// assert!(rx.is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.chan.queue.borrow().is_empty()
            }
        }

        impl<T> Drop for $rx<T> {
            fn drop(&mut self) {
                self.chan.close();
            }
        }

        impl<T> fmt::Debug for $rx<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($rx))
                    .field("len", &self.len())
                    .finish()
            }
        }
    };
}

receiver_methods!(Receiver);
receiver_methods!(UnboundedReceiver);

macro_rules! sender_impls {
    ($tx:ident) => {
        impl<T> Clone for $tx<T> {
            fn clone(&self) -> $tx<T> {
                self.chan.add_sender();
                $tx {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $tx<T> {
            fn drop(&mut self) {
                self.chan.drop_sender();
            }
        }

        impl<T> fmt::Debug for $tx<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($tx)).finish_non_exhaustive()
            }
        }
    };
}

sender_impls!(Sender);
sender_impls!(UnboundedSender);
