//! A bounded multi-producer, single-consumer async channel that crosses cores.
//!
//! Built on crossbeam's lock-free `ArrayQueue`; a task waiting on another core
//! is woken through that core's ring (the executor's cross-thread path writes
//! its eventfd), so a parked core wakes without polling.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::task::Poll;

use crate::loom_sync::{ArrayQueue, AtomicBool, AtomicUsize, AtomicWaker, Ordering};
use crate::wait_queue::{WaitQueue, Waiter};

struct Chan<T> {
    queue: ArrayQueue<T>,
    receiver: AtomicWaker,
    /// Senders waiting for room, woken one per received message. A send that
    /// ends (sent, closed, or dropped) takes its entry out; see
    /// [`WaitQueue`].
    senders_waiting: WaitQueue,
    senders: AtomicUsize,
    receiver_gone: AtomicBool,
}

impl<T> Chan<T> {
    fn wake_receiver(&self) {
        self.receiver.wake();
    }

    /// Called after taking a message: the room it made goes to the sender
    /// that waited longest. Skips the lock when no sender waits.
    fn wake_sender(&self) {
        self.senders_waiting.wake_one();
    }
}

/// Creates a bounded channel holding up to `capacity` messages.
///
/// `Sender` is `Clone + Send + Sync` and `Receiver` is `Send`: move them into
/// [`spawn_on`](crate::spawn_on) closures or the closure of
/// [`Runtime::run_on_every_core`](crate::Runtime::run_on_every_core) to
/// connect cores. A full channel makes `send` wait; it never blocks the
/// core's thread.
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// ```
/// percore::run(async {
///     let (tx, mut rx) = percore::channel::channel(4);
///     percore::spawn(async move {
///         for i in 0..10 {
///             tx.send(i).await.unwrap();
///         }
///     });
///     let mut got = Vec::new();
///     while let Some(v) = rx.recv().await {
///         got.push(v);
///     }
///     assert_eq!(got, (0..10).collect::<Vec<_>>());
/// });
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "channel capacity must be non-zero");
    let chan = Arc::new(Chan {
        queue: ArrayQueue::new(capacity),
        receiver: AtomicWaker::new(),
        senders_waiting: WaitQueue::new(),
        senders: AtomicUsize::new(1),
        receiver_gone: AtomicBool::new(false),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of a [`channel`].
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = percore::channel::channel::<&str>(2);
/// let tx2 = tx.clone(); // many producers, possibly on other cores
/// tx.try_send("a").unwrap();
/// tx2.try_send("b").unwrap();
/// drop((tx, tx2));
/// percore::run(async move {
///     assert_eq!(rx.recv().await, Some("a"));
///     assert_eq!(rx.recv().await, Some("b"));
///     assert_eq!(rx.recv().await, None); // every sender is gone
/// });
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The error of a send whose receiver is gone; it hands the message back.
///
/// # Examples
///
/// ```
/// use percore::channel::{SendError, channel};
///
/// let (tx, rx) = channel::<u32>(1);
/// drop(rx);
/// percore::run(async move {
///     assert_eq!(tx.send(7).await, Err(SendError(7))); // the message comes back
/// });
/// ```
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel receiver is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Sender::try_send`] did not send.
///
/// # Examples
///
/// ```
/// use percore::channel::{TrySendError, channel};
///
/// let (tx, rx) = channel::<u32>(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// drop(rx);
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> Sender<T> {
    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the message.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = percore::channel::channel(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert_eq!(tx.try_send(2), Err(percore::channel::TrySendError::Full(2)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.chan.receiver_gone.load(Ordering::Acquire) {
            return Err(TrySendError::Closed(value));
        }
        match self.chan.queue.push(value) {
            Ok(()) => {
                self.chan.wake_receiver();
                Ok(())
            }
            Err(v) => Err(TrySendError::Full(v)),
        }
    }

    /// Sends, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the receiver is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (tx, mut rx) = percore::channel::channel(1);
    ///     tx.send("hi").await.unwrap();
    ///     assert_eq!(rx.recv().await, Some("hi"));
    /// });
    /// ```
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        // Dropped with the future: a send that ends or is cancelled leaves
        // no entry behind to swallow the next wake-up.
        let mut waiter = self.chan.senders_waiting.waiter();
        // A send that ends leaves the queue (and hands on a wake-up it did
        // not use); a full channel gives the value back to wait with.
        let attempt = |v: T, waiter: &mut Waiter<'_>| match self.try_send(v) {
            Ok(()) => {
                waiter.done(|| !self.chan.queue.is_full());
                Ok(Ok(()))
            }
            Err(TrySendError::Closed(v)) => {
                // Every waiting send was woken by the close.
                waiter.done(|| false);
                Ok(Err(SendError(v)))
            }
            Err(TrySendError::Full(v)) => Err(v),
        };
        std::future::poll_fn(|cx| {
            let v = value.take().expect("value present until sent");
            let v = match attempt(v, &mut waiter) {
                Ok(done) => return Poll::Ready(done),
                Err(v) => v,
            };
            waiter.register(cx.waker());
            // Re-try after registering: a receive in between may have made
            // room and found no waiter to wake.
            match attempt(v, &mut waiter) {
                Ok(done) => Poll::Ready(done),
                Err(v) => {
                    value = Some(v);
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.wake_receiver();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.chan.queue.len())
            .finish()
    }
}

/// The receiving half of a [`channel`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = percore::channel::channel::<u64>(16);
/// let sums = percore::Runtime::builder()
///     .cores(2)
///     .build()
///     .unwrap()
///     .run_on_every_core({
///         let (tx, rx) = (std::sync::Mutex::new(Some(tx)), std::sync::Mutex::new(Some(rx)));
///         move |core| {
///             let tx = if core == 1 { tx.lock().unwrap().take() } else { None };
///             let rx = if core == 0 { rx.lock().unwrap().take() } else { None };
///             async move {
///                 if let Some(tx) = tx {
///                     for i in 1..=10 {
///                         tx.send(i).await.unwrap();
///                     }
///                 }
///                 let mut sum = 0;
///                 if let Some(mut rx) = rx {
///                     while let Some(v) = rx.recv().await {
///                         sum += v;
///                     }
///                 }
///                 sum
///             }
///         }
///     })
///     .unwrap();
/// assert_eq!(sums, [55, 0]);
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives without waiting: `None` if the channel is empty right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = percore::channel::channel(2);
    /// tx.try_send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Some(5));
    /// assert_eq!(rx.try_recv(), None);
    /// ```
    pub fn try_recv(&self) -> Option<T> {
        let v = self.chan.queue.pop();
        if v.is_some() {
            self.chan.wake_sender();
        }
        v
    }

    /// Receives the next message, waiting for one; `None` once every sender
    /// is gone and the channel is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let (tx, mut rx) = percore::channel::channel::<u8>(1);
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, None);
    /// });
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            if let Some(v) = self.try_recv() {
                return Poll::Ready(Some(v));
            }
            self.chan.receiver.register(cx.waker());
            // Re-check after registering: a send in between found no waker.
            if let Some(v) = self.try_recv() {
                return Poll::Ready(Some(v));
            }
            if self.chan.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(self.try_recv());
            }
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.receiver_gone.store(true, Ordering::Release);
        // Every waiting send retries and finds the channel closed. A send
        // that registers after this sees `receiver_gone` in its retry (the
        // queue's lock orders the two).
        self.chan.senders_waiting.wake_all();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.chan.queue.len())
            .finish()
    }
}

/// Channels that connect every core of a
/// [`Runtime::run_on_every_core`](crate::Runtime::run_on_every_core) to every
/// other: each core gets one bounded inbox and a sender to each core's inbox.
///
/// Make the mesh before `run_on_every_core`, share it with the closure, and call
/// [`Mesh::join`] once on each core.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// let mesh = Arc::new(percore::channel::Mesh::<String>::new(2, 16));
/// let got = percore::Runtime::builder()
///     .cores(2)
///     .build()
///     .unwrap()
///     .run_on_every_core(move |core| {
///         let mesh = mesh.clone();
///         async move {
///             let mut port = mesh.join();
///             port.broadcast(format!("hello from {core}")).await.unwrap();
///             port.recv().await.unwrap()
///         }
///     })
///     .unwrap();
/// assert_eq!(got, [(1, "hello from 1".to_string()), (0, "hello from 0".to_string())]);
/// ```
pub struct Mesh<T> {
    senders: Vec<Sender<(usize, T)>>,
    inboxes: std::sync::Mutex<Vec<Option<Inbox<T>>>>,
}

impl<T> Mesh<T> {
    /// A mesh of `cores` inboxes holding up to `capacity` messages each.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u64>::new(4, 1024);
    /// # drop(mesh);
    /// ```
    pub fn new(cores: usize, capacity: usize) -> Mesh<T> {
        let (senders, inboxes) = (0..cores)
            .map(|_| {
                let (tx, rx) = channel(capacity);
                (tx, Some(rx))
            })
            .unzip();
        Mesh {
            senders,
            inboxes: std::sync::Mutex::new(inboxes),
        }
    }

    /// Takes the calling core's port (core [`core_id`](crate::core_id)).
    ///
    /// # Panics
    ///
    /// If this core's port was taken already, or the mesh has fewer cores
    /// than the runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
    /// percore::run(async {
    ///     let mut port = mesh.join();
    ///     port.send_to(0, 7).await.unwrap();
    ///     assert_eq!(port.recv().await, Some((0, 7)));
    /// });
    /// ```
    pub fn join(&self) -> MeshPort<T> {
        let me = crate::core_id();
        let inbox = self
            .inboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(me)
            .unwrap_or_else(|| panic!("Mesh::join on core {me}: the mesh has fewer cores"))
            .take()
            .unwrap_or_else(|| panic!("Mesh::join: core {me} joined already"));
        MeshPort {
            sender: MeshSender {
                me,
                senders: self.senders.clone(),
            },
            inbox,
        }
    }
}

impl<T> fmt::Debug for Mesh<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("cores", &self.senders.len())
            .finish()
    }
}

/// A core's inbox in a [`Mesh`]: messages with the core that sent them.
type Inbox<T> = Receiver<(usize, T)>;

/// One core's end of a [`Mesh`]: its inbox, and a sender to every core.
///
/// # Examples
///
/// ```
/// let mesh = percore::channel::Mesh::<&str>::new(1, 4);
/// percore::run(async {
///     let mut port = mesh.join(); // this core's end
///     port.send_to(0, "to myself").await.unwrap();
///     assert_eq!(port.recv().await, Some((0, "to myself")));
/// });
/// ```
pub struct MeshPort<T> {
    sender: MeshSender<T>,
    inbox: Inbox<T>,
}

/// The sending side of a [`MeshPort`], to hand to this core's tasks: it
/// sends to any core, marked as coming from this one.
///
/// # Examples
///
/// ```
/// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
/// percore::run(async {
///     let mut port = mesh.join();
///     let tx = port.sender();
///     percore::spawn(async move { tx.send_to(0, 1).await.unwrap() });
///     assert_eq!(port.recv().await, Some((0, 1)));
/// });
/// ```
pub struct MeshSender<T> {
    me: usize,
    senders: Vec<Sender<(usize, T)>>,
}

impl<T> Clone for MeshSender<T> {
    fn clone(&self) -> MeshSender<T> {
        MeshSender {
            me: self.me,
            senders: self.senders.clone(),
        }
    }
}

impl<T> MeshSender<T> {
    /// Sends `value` to core `to`'s inbox (this core's own included),
    /// waiting while it is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if that core's port is gone.
    ///
    /// # Panics
    ///
    /// If `to` is not a core of the mesh.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<&str>::new(1, 4);
    /// percore::run(async {
    ///     let mut port = mesh.join();
    ///     port.send_to(0, "to myself").await.unwrap();
    ///     assert_eq!(port.recv().await, Some((0, "to myself")));
    /// });
    /// ```
    pub async fn send_to(&self, to: usize, value: T) -> Result<(), SendError<T>> {
        self.senders[to]
            .send((self.me, value))
            .await
            .map_err(|SendError((_, v))| SendError(v))
    }

    /// Sends a copy of `value` to every other core.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if a core's port is gone (the cores
    /// before it got their copy).
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
    /// percore::run(async {
    ///     let port = mesh.join();
    ///     // One core: there is no other core to send to.
    ///     port.broadcast(1).await.unwrap();
    /// });
    /// ```
    pub async fn broadcast(&self, value: T) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        for to in (0..self.senders.len()).filter(|&c| c != self.me) {
            self.send_to(to, value.clone()).await?;
        }
        Ok(())
    }

    /// How many cores the mesh connects.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<()>::new(1, 1);
    /// percore::run(async { assert_eq!(mesh.join().sender().cores(), 1) });
    /// ```
    pub fn cores(&self) -> usize {
        self.senders.len()
    }
}

impl<T> MeshPort<T> {
    /// A sender for this core's tasks.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
    /// percore::run(async {
    ///     let mut port = mesh.join();
    ///     let tx = port.sender();
    ///     percore::spawn(async move { tx.send_to(0, 3).await.unwrap() });
    ///     assert_eq!(port.recv().await, Some((0, 3)));
    /// });
    /// ```
    pub fn sender(&self) -> MeshSender<T> {
        self.sender.clone()
    }

    /// Sends `value` to core `to` (see [`MeshSender::send_to`]).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if that core's port is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<&str>::new(1, 4);
    /// percore::run(async {
    ///     let mut port = mesh.join();
    ///     port.send_to(0, "to myself").await.unwrap();
    ///     assert_eq!(port.recv().await, Some((0, "to myself")));
    /// });
    /// ```
    pub async fn send_to(&self, to: usize, value: T) -> Result<(), SendError<T>> {
        self.sender.send_to(to, value).await
    }

    /// Sends a copy of `value` to every other core (see
    /// [`MeshSender::broadcast`]).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if a core's port is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
    /// percore::run(async {
    ///     let port = mesh.join();
    ///     // One core: there is no other core to send to.
    ///     port.broadcast(1).await.unwrap();
    /// });
    /// ```
    pub async fn broadcast(&self, value: T) -> Result<(), SendError<T>>
    where
        T: Clone,
    {
        self.sender.broadcast(value).await
    }

    /// The next message for this core, with the core that sent it.
    ///
    /// # Examples
    ///
    /// ```
    /// let mesh = percore::channel::Mesh::<u8>::new(1, 4);
    /// percore::run(async {
    ///     let mut port = mesh.join();
    ///     port.sender().send_to(0, 9).await.unwrap();
    ///     assert_eq!(port.recv().await, Some((0, 9)));
    /// });
    /// ```
    pub async fn recv(&mut self) -> Option<(usize, T)> {
        self.inbox.recv().await
    }
}
