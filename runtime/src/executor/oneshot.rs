//! A one-shot slot that another thread fills and a local task awaits.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub(crate) struct Slot<T> {
    value: Option<T>,
    /// The sender is gone without sending (its thread shut down).
    closed: bool,
    waker: Option<Waker>,
}

/// The filling side; may live on any thread.
pub(crate) struct Sender<T>(Arc<Mutex<Slot<T>>>);

/// The awaiting side: yields the value, or `None` if the sender was dropped.
pub(crate) struct Receiver<T>(Arc<Mutex<Slot<T>>>);

pub(crate) fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        closed: false,
        waker: None,
    }));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Stores the value and wakes the receiver's task (through the
    /// executor's cross-thread path when it lives on another core).
    pub(crate) fn send(self, value: T) {
        self.finish(Some(value));
    }

    fn finish(&self, value: Option<T>) {
        let waker = {
            let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if slot.closed || slot.value.is_some() {
                return;
            }
            match value {
                Some(v) => slot.value = Some(v),
                None => slot.closed = true,
            }
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // After `send` this finds the value stored and does nothing.
        self.finish(None);
    }
}

impl<T> Receiver<T> {
    /// Whether the value has arrived (or never will).
    pub(crate) fn is_ready(&self) -> bool {
        self.0.is_done()
    }

    /// Gives up on a value that has not arrived: the receiver then yields
    /// `None` (and wakes its task), and a later `send` is dropped. A value
    /// already there is kept.
    pub(crate) fn cancel(&self) {
        self.0.cancel();
    }

    /// A handle that can [`cancel`](Receiver::cancel) from elsewhere on
    /// this thread, whatever `T` is.
    pub(crate) fn canceller(&self) -> Arc<dyn Cancel>
    where
        T: 'static,
    {
        self.0.clone()
    }
}

/// The type-erased side of a slot that an `AbortHandle` keeps.
pub(crate) trait Cancel {
    /// See [`Receiver::cancel`].
    fn cancel(&self);
    /// Whether the value has arrived, or never will.
    fn is_done(&self) -> bool;
}

impl<T> Cancel for Mutex<Slot<T>> {
    fn cancel(&self) {
        let waker = {
            let mut slot = self.lock().unwrap_or_else(|e| e.into_inner());
            if slot.closed || slot.value.is_some() {
                return;
            }
            slot.closed = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn is_done(&self) -> bool {
        let slot = self.lock().unwrap_or_else(|e| e.into_inner());
        slot.value.is_some() || slot.closed
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.value.take() {
            slot.closed = true;
            return Poll::Ready(Some(v));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
