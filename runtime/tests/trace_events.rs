//! With the `tracing` feature, the runtime reports task spawn/finish, ticks
//! and slow ops as `tracing` events.
//!
//! `cargo test -p percore --features tracing --test trace_events`

#![cfg(feature = "tracing")]

use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use percore::op::{Op, SendOp};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: its level, target and fields as `name=value` text.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that keeps every event (no spans) in memory.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn events(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn spawn_finish_and_ticks_are_events() {
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), || {
        percore::run(async {
            percore::spawn(async { 7 }).await.unwrap();
            let _ = percore::spawn(async { panic!("traced") }).await;
        })
    });
    let events = rec.events();
    let spawned: Vec<_> = events
        .iter()
        .filter(|e| e.field("message") == Some("task spawned"))
        .collect();
    assert_eq!(spawned.len(), 2, "{events:#?}");
    assert!(
        spawned
            .iter()
            .all(|e| e.target == "percore" && e.level == Level::DEBUG)
    );
    assert_eq!(spawned[0].field("task"), Some("1"));
    assert_eq!(spawned[1].field("task"), Some("2"));

    let outcomes: Vec<_> = events
        .iter()
        .filter(|e| e.field("message") == Some("task finished"))
        .map(|e| (e.field("task").unwrap(), e.field("outcome").unwrap()))
        .collect();
    assert_eq!(outcomes, [("1", "returned"), ("2", "panicked")]);

    let ticks = events
        .iter()
        .filter(|e| e.field("message") == Some("tick"))
        .inspect(|e| {
            assert_eq!(e.level, Level::TRACE);
            assert_eq!(e.target, "percore::driver");
            assert!(e.field("submitted").is_some() && e.field("completed").is_some());
        })
        .count();
    assert!(ticks >= 1, "{events:#?}");
}

#[test]
fn slow_ops_are_warned_about() {
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), || {
        let rt = percore::Runtime::builder()
            .slow_op_warning(Some(Duration::ZERO))
            .build()
            .unwrap();
        rt.block_on(async {
            // An op that waits in flight on either driver (the epoll driver
            // finishes a ready op inside its first poll, with no flight to
            // time, and a receive waits for a peer by nature): a send to a
            // full socket, polled once, then given room.
            let (mine, mut theirs) = UnixStream::pair().unwrap();
            mine.set_nonblocking(true).unwrap();
            let mut queued = 0;
            loop {
                match (&mine).write(&[0; 4096]) {
                    Ok(n) => queued += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("filling the socket: {e}"),
                }
            }
            let fd = percore::fd::SharedFd::new(mine.into());
            let mut send = Box::pin(Op::new(SendOp::new(fd, vec![1; 4096])));
            let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "the socket had room");
            theirs.read_exact(&mut vec![0; queued]).unwrap();
            let (res, _) = send.await;
            assert!(res.unwrap() > 0);
        });
    });
    let events = rec.events();
    let slow = events
        .iter()
        .find(|e| e.level == Level::WARN && e.field("op") == Some("send"))
        .unwrap_or_else(|| panic!("no slow-op warning: {events:#?}"));
    assert_eq!(slow.target, "percore::driver");
    assert!(slow.field("took_us").is_some());
}

#[test]
fn slow_op_warning_can_be_turned_off() {
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), || {
        let rt = percore::Runtime::builder()
            .slow_op_warning(None)
            .build()
            .unwrap();
        rt.block_on(async {
            percore::op::Op::new(percore::op::Nop).await.unwrap();
        });
    });
    assert!(rec.events().iter().all(|e| e.level != Level::WARN));
}
