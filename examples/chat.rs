//! A line-based chat server: every line a client sends goes to all the
//! other clients.
//!
//! ```text
//! cargo run --release --example chat -- [--addr 127.0.0.1:7100] [--stats]
//! nc 127.0.0.1 7100      # in two or more terminals; `/nick NAME` renames
//! ```
//!
//! SIGINT (Ctrl-C) or SIGTERM stops it (`Builder::shutdown_on_signals`).
//! With `--stats` it then prints the runtime's counters (`percore::stats()`).
//!
//! Each connection runs two tasks on the same core: a reader that owns the
//! read half and publishes lines, and a writer that owns the write half and
//! drains the connection's mailbox. Tasks talk through a small local channel
//! (an `Rc<RefCell<VecDeque>>` plus a waker, below): everything stays on one
//! core, so nothing needs a lock. A client that stops reading is dropped
//! once its mailbox holds `MAX_BACKLOG` lines, so it cannot make the server
//! hoard memory.

#[path = "common/flags.rs"]
mod flags;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};

use percore_net::TcpListener;
use percore_net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Lines a client's mailbox may hold before the client counts as stuck.
const MAX_BACKLOG: usize = 1024;
/// Longest line accepted; longer ones end the connection.
const MAX_LINE: usize = 4096;

// ---- a tiny single-core channel -------------------------------------------

struct Chan<T> {
    queue: VecDeque<T>,
    waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

/// Sending side; clone it for more producers.
struct Sender<T>(Rc<RefCell<Chan<T>>>);

/// Receiving side: `recv` returns `None` once every sender is gone and the
/// queue is empty.
struct Receiver<T>(Rc<RefCell<Chan<T>>>);

fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::new(),
        waker: None,
        senders: 1,
        receiver_alive: true,
    }));
    (Sender(chan.clone()), Receiver(chan))
}

impl<T> Sender<T> {
    /// Queues `value`; gives it back if the receiver is gone. Returns the
    /// queue length after the push.
    fn send(&self, value: T) -> Result<usize, T> {
        let mut chan = self.0.borrow_mut();
        if !chan.receiver_alive {
            return Err(value);
        }
        chan.queue.push_back(value);
        if let Some(w) = chan.waker.take() {
            w.wake();
        }
        Ok(chan.queue.len())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.borrow_mut().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut chan = self.0.borrow_mut();
        chan.senders -= 1;
        if chan.senders == 0
            && let Some(w) = chan.waker.take()
        {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut chan = self.0.borrow_mut();
            if let Some(v) = chan.queue.pop_front() {
                return Poll::Ready(Some(v));
            }
            if chan.senders == 0 {
                return Poll::Ready(None);
            }
            match &chan.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => chan.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut chan = self.0.borrow_mut();
        chan.receiver_alive = false;
        chan.queue.clear();
    }
}

// ---- the chat room ----------------------------------------------------------

/// A member's name and mailbox.
type Member = (String, Sender<Rc<str>>);

/// Everyone connected, by id.
#[derive(Default)]
struct Room {
    members: RefCell<HashMap<u64, Member>>,
}

impl Room {
    /// Sends `line` to everyone except `from`; drops members whose mailbox
    /// overflowed (their writer then ends and closes the connection).
    fn broadcast(&self, from: Option<u64>, line: &str) {
        let line: Rc<str> = Rc::from(line);
        let mut stuck = Vec::new();
        for (id, (_, tx)) in self.members.borrow().iter() {
            if Some(*id) == from {
                continue;
            }
            match tx.send(line.clone()) {
                Ok(len) if len <= MAX_BACKLOG => {}
                _ => stuck.push(*id),
            }
        }
        for id in stuck {
            let removed = self.members.borrow_mut().remove(&id);
            if let Some((name, _)) = removed {
                eprintln!("chat: dropping {name}: not reading");
            }
        }
    }

    fn name(&self, id: u64) -> Option<String> {
        self.members.borrow().get(&id).map(|(n, _)| n.clone())
    }
}

fn main() {
    let mut addr: SocketAddr = "127.0.0.1:7100".parse().expect("valid default address");
    let mut stats = false;
    let usage = "usage: chat [--addr HOST:PORT] [--stats]";
    let mut flags = flags::Flags::new(std::env::args().skip(1), usage);
    while let Some(flag) = flags.next_flag() {
        let res = match flag.as_str() {
            "--stats" => {
                stats = true;
                Ok(())
            }
            "--addr" => flags.parse(&flag).map(|a| addr = a),
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(msg) = res {
            flags::usage_error("chat", &msg, usage);
        }
    }
    let rt = percore::Runtime::builder()
        .cores(1)
        .shutdown_on_signals(true)
        // Connections of a chat never end on their own: drop them at once.
        .shutdown_grace(std::time::Duration::ZERO)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("chat: {e}");
            std::process::exit(1);
        });
    let done = rt.run_on_every_core(move |_core| async move {
        match percore::select(serve(addr), percore::shutdown::requested()).await {
            percore::Either::Left(never) => match never {},
            percore::Either::Right(()) => eprintln!("chat: stopping"),
        }
        percore::stats()
    });
    match done {
        Ok(counters) if stats => println!("{}", counters[0]),
        Ok(_) => {}
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::exit(1);
        }
    }
}

/// Accepts clients and runs each one's reader and writer tasks, forever.
async fn serve(addr: SocketAddr) -> std::convert::Infallible {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "chat listening on {}",
        listener.local_addr().expect("bound address")
    );
    let room = Rc::new(Room::default());
    let mut next_id = 0u64;
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("chat: accept: {e}");
                percore::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let name = format!("user{id}");
        let (rd, wr) = conn.into_split();
        let (tx, rx) = channel::<Rc<str>>();
        room.members.borrow_mut().insert(id, (name.clone(), tx));
        room.broadcast(Some(id), &format!("* {name} joined from {peer}\n"));
        percore::spawn(writer(wr, rx, name.clone()));
        percore::spawn(reader(rd, id, room.clone()));
    }
}

/// Sends the mailbox's lines until the mailbox closes (the member left or
/// was dropped) or the connection fails.
async fn writer(wr: OwnedWriteHalf, mut rx: Receiver<Rc<str>>, name: String) {
    let greeting = format!("* welcome, {name}; /nick NAME to rename\n");
    if wr.write_all(greeting.into_bytes()).await.0.is_err() {
        return;
    }
    while let Some(line) = rx.recv().await {
        // Batch whatever else is queued into the same write.
        let mut out = line.as_bytes().to_vec();
        while out.len() < 64 * 1024 {
            match rx.0.borrow_mut().queue.pop_front() {
                Some(more) => out.extend_from_slice(more.as_bytes()),
                None => break,
            }
        }
        if wr.write_all(out).await.0.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// Reads lines and publishes them; on end of stream or error, leaves the room.
async fn reader(rd: OwnedReadHalf, id: u64, room: Rc<Room>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    'conn: loop {
        buf.clear();
        let (res, b) = rd.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => break,
            Ok(_) => pending.extend_from_slice(&buf),
        }
        while let Some(end) = pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if room.name(id).is_none() {
                break 'conn; // dropped as a slow reader
            }
            if let Some(new) = text.strip_prefix("/nick ") {
                let new = new.trim().to_string();
                let old = room
                    .members
                    .borrow_mut()
                    .get_mut(&id)
                    .map(|m| std::mem::replace(&mut m.0, new.clone()));
                if let Some(old) = old {
                    room.broadcast(None, &format!("* {old} is now {new}\n"));
                }
            } else if !text.is_empty() {
                let name = room.name(id).unwrap_or_default();
                room.broadcast(Some(id), &format!("{name}: {text}\n"));
            }
        }
        if pending.len() > MAX_LINE {
            break;
        }
    }
    // Removing the member drops its sender, which closes its mailbox: the
    // writer ends and shuts the connection down.
    let removed = room.members.borrow_mut().remove(&id);
    if let Some((name, _)) = removed {
        room.broadcast(None, &format!("* {name} left\n"));
    }
}
