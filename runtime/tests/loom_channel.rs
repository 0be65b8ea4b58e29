//! Loom model of the cross-core channel (`RUSTFLAGS="--cfg loom"`, see
//! `.ci/run`): sends, receives, a cancelled send and a closing receiver wake
//! whom they must, in every interleaving across threads.

#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use loom::future::block_on;
use loom::thread;
use percore::channel::{SendError, channel};

#[test]
fn loom_channel_send_and_recv_wake_each_other() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1);
        let sender = thread::spawn(move || {
            block_on(async {
                tx.send(1).await.unwrap();
                tx.send(2).await.unwrap();
            })
        });
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        assert_eq!(got, [1, 2]);
        sender.join().unwrap();
    });
}

#[test]
fn loom_channel_cancelled_send_does_not_strand_the_next() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(0).unwrap();
        let cancelled = thread::spawn({
            let tx = tx.clone();
            move || {
                // Polled once while full (most interleavings), then dropped.
                let mut send = pin!(tx.send(1));
                let _ = send.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            }
        });
        let live = thread::spawn({
            let tx = tx.clone();
            move || block_on(tx.send(2)).unwrap()
        });
        drop(tx);
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        assert!(got.starts_with(&[0]) && got.contains(&2), "{got:?}");
        cancelled.join().unwrap();
        live.join().unwrap();
    });
}

#[test]
fn loom_channel_dropped_receiver_wakes_a_waiting_sender() {
    loom::model(|| {
        let (tx, rx) = channel::<u32>(1);
        tx.try_send(0).unwrap();
        let sender = thread::spawn(move || block_on(tx.send(1)));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(SendError(1)));
    });
}

/// Two senders wait on a full channel: a sender whose retry takes the room
/// while it is still queued, and is then woken for the next room, must hand
/// that wake-up to the other (the race the wait-queue model found).
#[test]
fn loom_channel_two_waiting_senders_both_get_through() {
    loom::model(|| {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(0).unwrap();
        let senders: Vec<_> = (1..=2)
            .map(|v| {
                let tx = tx.clone();
                thread::spawn(move || block_on(tx.send(v)).unwrap())
            })
            .collect();
        drop(tx);
        let mut got = block_on(async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        for s in senders {
            s.join().unwrap();
        }
    });
}
