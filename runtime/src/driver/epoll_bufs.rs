//! Provided-buffer rings on the epoll driver: the kernel's buffer selection,
//! emulated on the same ring memory.
//!
//! percore publishes buffers into a ring exactly as for io_uring (entries
//! and a tail in its own memory, see `buf/ring.rs`); this backend plays the
//! kernel's part. It keeps each group's head, and when a receive entry with
//! `IOSQE_BUFFER_SELECT` runs it takes the entry at the head, receives into
//! it with a non-blocking `recv`, and posts the completion as the kernel
//! would: `IORING_CQE_F_BUFFER` with the buffer id, `ENOBUFS` when the ring
//! is empty, and, for a ring registered with `IOU_PBUF_RING_INC`, the same
//! incremental consumption (the entry's address and length advance past what
//! was received, and `IORING_CQE_F_BUF_MORE` says the buffer stays current).
//! A waiting receive holds no buffer: it picks one only when its socket is
//! ready, so idle connections cost no buffer here either.
//!
//! A multishot receive (`IORING_RECV_MULTISHOT`) receives until the socket
//! is drained (a short read on a byte stream, or `EAGAIN`), posting one
//! completion flagged `MORE` per buffer it filled, and keeps waiting; end of
//! stream, an error or an empty ring end it. On a byte stream, a receive
//! that may fill the rest of the head buffer offers the next buffer too, so
//! that data filling the head buffer exactly still reads as short.
//!
//! An on-demand receive (`MultishotOp::on_demand`, as `PooledRecv` makes)
//! skips the emulated completion queue: [`Epoll::recv_direct`] receives
//! inside the task's poll, once per `next()`, and hands the completion
//! straight back; a drained socket leaves the op's [`DirectWait`] in the
//! fd's record, and the read edge fires it and wakes the task, as tokio's
//! readiness does. Nothing is received before the task asks.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use io_uring::{opcode, squeue};

use super::{
    Epoll, IORING_CQE_F_MORE, IOSQE_BUFFER_SELECT, Interest, Kind, Sqe, errno_of, is_byte_stream,
};
use crate::buf::{CQE_BUFFER_SHIFT, CQE_F_BUF_MORE, CQE_F_BUFFER, PBUF_RING_INC, RawEntry};

/// `IORING_RECV_MULTISHOT`, in a receive entry's `ioprio`.
const IORING_RECV_MULTISHOT: u16 = 1 << 1;

/// A registered group: the ring's memory and the head, which the kernel
/// would keep.
#[derive(Debug)]
struct Group {
    bgid: u16,
    ring: *mut RawEntry,
    mask: u16,
    head: u16,
    incremental: bool,
    /// Bytes the last receive from this group brought: a receive that may
    /// fill the rest of the head buffer offers the next one too.
    last: u32,
}

impl Group {
    /// The entry at ring position `pos`: its pointer, buffer address,
    /// length and buffer id.
    ///
    /// # Safety
    ///
    /// `pos` is between the head and the published tail, so percore does
    /// not write the entry until a completion hands its buffer back.
    unsafe fn entry(&self, pos: u16) -> (*mut RawEntry, u64, u32, u16) {
        // SAFETY: `pos & mask` is inside the entry array (alive while
        // registered); fields are read through raw pointers, as the kernel
        // does: `resv` of entry 0 (the tail) is not touched.
        unsafe {
            let entry = self.ring.add((pos & self.mask) as usize);
            (
                entry,
                std::ptr::addr_of!((*entry).addr).read(),
                std::ptr::addr_of!((*entry).len).read(),
                std::ptr::addr_of!((*entry).bid).read(),
            )
        }
    }

    /// The tail percore published.
    fn tail(&self) -> u16 {
        // SAFETY: `resv` of entry 0 is the ring's tail, a naturally aligned
        // u16 inside the registered entry array (alive while registered: the
        // registration's contract) that percore stores with release
        // ordering; only atomic accesses are made to it.
        unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.ring).resv)) }
            .load(Ordering::Acquire)
    }
}

/// Whether a byte (or the end of stream, or an error) waits on `fd`.
fn has_data(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv(2) with MSG_PEEK writes at most one byte into a local.
    let r = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    !matches!(errno_of(r), Some(libc::EAGAIN))
}

/// The groups registered with one epoll driver.
#[derive(Debug, Default)]
pub(super) struct BufGroups {
    groups: Vec<Group>,
}

/// A direct receive's wait for its fd's next read edge
/// ([`Epoll::recv_direct`]): the op keeps it, and so does the fd's record
/// while the op waits. A poll of the op before the edge came sees so here,
/// without asking the driver.
#[derive(Default)]
pub(crate) struct DirectWait {
    waker: Cell<Option<Waker>>,
    /// The edge came (or the fd was forgotten) since the op began to wait.
    fired: Cell<bool>,
}

impl std::fmt::Debug for DirectWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectWait")
            .field("fired", &self.fired.get())
            .finish_non_exhaustive()
    }
}

impl DirectWait {
    /// Whether the op still waits, with no edge since: then `waker` is the
    /// one the edge wakes. Runs in the op's poll, outside the driver.
    pub(crate) fn still_waiting(&self, waker: &Waker) -> bool {
        if self.fired.get() {
            return false;
        }
        let kept = match self.waker.take() {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.waker.set(Some(kept));
        true
    }

    /// The edge came: the waker to wake.
    pub(super) fn fire(&self) -> Option<Waker> {
        self.fired.set(true);
        self.waker.take()
    }

    /// Starts a wait with `waker`.
    fn arm(&self, waker: &Waker) {
        self.fired.set(false);
        let kept = match self.waker.take() {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.waker.set(Some(kept));
    }
}

/// What [`Epoll::recv_direct`] did with a receive.
pub(crate) enum DirectRecv {
    /// It received (or ended): its completion's result and flags, as the
    /// kernel would post them for a receive that selected a buffer (data,
    /// end of stream, an error, `ENOBUFS`); `waiting`, the fd if the
    /// receive drained the socket and the wait now waits for the next
    /// edge. If the data went on from a head buffer it filled into the next
    /// (see [`Epoll::recv_one`]), that second completion waits in
    /// [`Epoll::take_direct_then`].
    Done {
        res: i32,
        flags: u32,
        waiting: Option<RawFd>,
    },
    /// Nothing to read: the wait waits for this fd's next read edge.
    Parked(RawFd),
    /// The tick's inline budget is spent: poll again after the next enter.
    Yield,
    /// Not a receive this path takes: start it as an entry.
    No,
}

/// What one receive into a selected buffer came to.
enum Pick {
    /// `res` bytes, posted with `flags`; `short` if less than the room.
    /// `before`: the completion of a buffer this receive filled up and
    /// went past, to post first (a receive that spanned two buffers).
    Data {
        res: i32,
        flags: u32,
        short: bool,
        before: Option<(i32, u32)>,
    },
    /// Nothing to read yet: wait for the socket.
    Again,
    /// A final result without a buffer: 0 at end of stream, or `-errno`
    /// (`-ENOBUFS` when the ring is empty).
    End(i32),
}

impl Epoll {
    /// `IORING_REGISTER_PBUF_RING`, emulated: remembers the ring.
    ///
    /// # Safety
    ///
    /// As for the kernel: `addr` points to `entries` ring entries that stay
    /// allocated until the group is unregistered, and each entry published
    /// (before the tail) names a buffer valid for its length, which nothing
    /// else touches until a completion hands it back.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        addr: u64,
        entries: u16,
        bgid: u16,
        flags: u16,
    ) -> io::Result<()> {
        if addr == 0 || !addr.is_multiple_of(4096) || !entries.is_power_of_two() || entries > 32768
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if flags & !PBUF_RING_INC != 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if self.bufs.groups.iter().any(|g| g.bgid == bgid) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.bufs.groups.push(Group {
            bgid,
            ring: addr as *mut RawEntry,
            mask: entries - 1,
            head: 0,
            incremental: flags & PBUF_RING_INC != 0,
            last: 0,
        });
        Ok(())
    }

    /// `IORING_UNREGISTER_PBUF_RING`, emulated: forgets the ring.
    pub(crate) fn unregister_buf_ring(&mut self, bgid: u16) -> io::Result<()> {
        let before = self.bufs.groups.len();
        self.bufs.groups.retain(|g| g.bgid != bgid);
        if self.bufs.groups.len() == before {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(())
    }

    /// Starts a receive entry with `IOSQE_BUFFER_SELECT`.
    pub(super) fn start_buffer_select(&mut self, sqe: Sqe, fd: RawFd, link: Option<Sqe>) {
        if sqe.opcode != io_uring::opcode::Recv::CODE {
            // The kernel selects buffers for more ops; percore asks only recv.
            return self.complete(sqe, link, -libc::EINVAL);
        }
        if !self.may_be_ready(fd, Interest::Read) {
            return self.wait(sqe, fd, Interest::Read, link, false);
        }
        match self.recv_selected(&sqe, fd) {
            None => self.wait(sqe, fd, Interest::Read, link, false),
            Some((res, flags)) => {
                self.post(sqe.user_data, res, flags);
                if let Some(l) = link {
                    self.post(l.user_data, -libc::ECANCELED, 0);
                }
            }
        }
    }

    /// Retries a waiting receive with `IOSQE_BUFFER_SELECT` after its socket
    /// turned readable; returns whether it still waits.
    pub(super) fn retry_buffer_select(&mut self, idx: usize, sqe: &Sqe, fd: RawFd) -> bool {
        match self.recv_selected(sqe, fd) {
            None => true,
            Some((res, flags)) => {
                let w = self.remove_waiter(idx);
                self.post(sqe.user_data, res, flags);
                if let Some((_, link_ud)) = w.link {
                    self.post(link_ud, -libc::ECANCELED, 0);
                }
                false
            }
        }
    }

    /// Receives as the entry asks: once, or (multishot) until the socket is
    /// drained, posting each completion flagged `MORE`. Returns the final
    /// completion's result and flags, or `None` if the op goes on waiting.
    fn recv_selected(&mut self, sqe: &Sqe, fd: RawFd) -> Option<(i32, u32)> {
        let multishot = sqe.ioprio & IORING_RECV_MULTISHOT != 0;
        // Only a byte stream's data may go on in the next buffer (a datagram
        // stays in one, as the kernel keeps it).
        let span = multishot && self.fds.get(&fd).is_some_and(|s| s.stream == Some(true));
        let mut again = false;
        loop {
            // Like the kernel, which goes on at once only while data is
            // queued, and otherwise waits: a used-up ring is ENOBUFS only
            // when there is data to put in it.
            if again && self.ring_empty(sqe) && !has_data(fd) {
                return None;
            }
            again = true;
            match self.recv_one(sqe, fd, span) {
                Pick::Data { res, flags, .. } if !multishot => return Some((res, flags)),
                Pick::Data {
                    res,
                    flags,
                    short,
                    before,
                } => {
                    if let Some((res, flags)) = before {
                        self.post(sqe.user_data, res, flags | IORING_CQE_F_MORE);
                    }
                    self.post(sqe.user_data, res, flags | IORING_CQE_F_MORE);
                    if short && self.drained(fd) {
                        return None;
                    }
                }
                Pick::Again => {
                    self.set_ready(fd, Interest::Read, false);
                    return None;
                }
                Pick::End(res) => return Some((res, 0)),
            }
        }
    }

    /// A receive with `IOSQE_BUFFER_SELECT` (one-shot or multishot alike)
    /// made the readiness way, inside its task's poll, as tokio's I/O is:
    /// if the socket may be readable, one non-blocking receive into the
    /// group's head buffer, whose completion comes straight back (no
    /// completion queue, slot or wake-up); else (or on `EAGAIN`) `wait`
    /// waits for the fd's next read edge with the task's waker, and the
    /// task polls again. A receive that drained the socket leaves `wait`
    /// waiting too, so the next poll sees in `wait` alone that nothing
    /// came. A multishot entry receives once per call here: nothing is
    /// taken from the ring until the task asks, so an idle connection holds
    /// no buffer.
    ///
    /// An fd with another direct reader, or ops waiting the usual way, is
    /// `No`: the entry then goes the usual way, after them.
    ///
    /// # Safety
    ///
    /// As for [`Epoll::start_inline`]: the group the entry names is
    /// registered here and published buffers are the receive's to fill
    /// until its completion, which this call returns.
    pub(crate) unsafe fn recv_direct(
        &mut self,
        entry: &squeue::Entry,
        waker: &Waker,
        wait: &Rc<DirectWait>,
    ) -> DirectRecv {
        let sqe = Sqe::from_entry(entry);
        if sqe.opcode != opcode::Recv::CODE || sqe.flags != IOSQE_BUFFER_SELECT {
            return DirectRecv::No;
        }
        let fd = sqe.fd;
        if self.fds.get(&fd).is_none() && fd >= 0 {
            self.kind(fd); // first seen: one fstat
        }
        let Some(state) = self.fds.get_mut(&fd) else {
            return DirectRecv::No;
        };
        if state.kind != Kind::Pollable {
            return DirectRecv::No;
        }
        let ours = match &state.direct_reader {
            Some(w) if Rc::ptr_eq(w, wait) => true,
            Some(_) => return DirectRecv::No,
            None if !state.readers.is_empty() => return DirectRecv::No,
            None => false,
        };
        if !state.readable {
            if !ours {
                return self.park_direct(fd, waker, wait);
            }
            wait.arm(waker);
            return DirectRecv::Parked(fd);
        }
        let span = sqe.len == 0 && state.stream == Some(true);
        if self.inline_budget == 0 {
            return DirectRecv::Yield;
        }
        self.inline_budget -= 1;
        // What was queued before it starts first, as in `start_inline`.
        if !self.queued.is_empty() {
            self.start_queued();
        }
        self.started += 1;
        let Some((first, then)) = self.recv_now(&sqe, fd, span) else {
            return self.park_direct(fd, waker, wait);
        };
        self.direct_then = then;
        // Drained: wait for the edge already, so that the next poll finds
        // the wait in place.
        let drained = first.0 > 0 && self.fds.get(&fd).is_some_and(|s| !s.readable);
        let waiting = (drained
            && matches!(self.park_direct(fd, waker, wait), DirectRecv::Parked(_)))
        .then_some(fd);
        DirectRecv::Done {
            res: first.0,
            flags: first.1,
            waiting,
        }
    }

    /// Leaves `wait` waiting with `waker` for `fd`'s next read edge
    /// (registering the fd with epoll if it is not yet, and `wait` with the
    /// fd's record, where it stays until its op is dropped); `No` if the fd
    /// cannot be waited on.
    fn park_direct(&mut self, fd: RawFd, waker: &Waker, wait: &Rc<DirectWait>) -> DirectRecv {
        let registered = self.fds.get(&fd).is_some_and(|s| s.registered);
        if !registered && self.register(fd).is_err() {
            return DirectRecv::No;
        }
        let Some(state) = self.fds.get_mut(&fd) else {
            return DirectRecv::No;
        };
        wait.arm(waker);
        if state.direct_reader.is_none() {
            state.direct_reader = Some(wait.clone());
            self.direct_readers += 1;
        }
        DirectRecv::Parked(fd)
    }

    /// The second completion of the last [`Epoll::recv_direct`], if its data
    /// went on into the next buffer.
    pub(crate) fn take_direct_then(&mut self) -> Option<(i32, u32)> {
        self.direct_then.take()
    }

    /// Takes `wait` off `fd` (its op was dropped or cancelled); another
    /// reader's wait stays. The waker it held is the caller's to drop,
    /// outside the driver.
    pub(crate) fn unpark_direct(&mut self, fd: RawFd, wait: &Rc<DirectWait>) -> Option<Waker> {
        let state = self.fds.get_mut(&fd)?;
        if !state
            .direct_reader
            .as_ref()
            .is_some_and(|w| Rc::ptr_eq(w, wait))
        {
            return None;
        }
        self.direct_readers -= 1;
        state.direct_reader.take();
        wait.fire()
    }

    /// One receive for [`Epoll::recv_direct`]: its result and flags (and
    /// those of the next buffer's part, if it went on there), or `None` if
    /// there is nothing to read (the fd then waits for its edge). As the
    /// kernel: an empty ring is `ENOBUFS` only when data waits.
    #[allow(clippy::type_complexity)]
    fn recv_now(
        &mut self,
        sqe: &Sqe,
        fd: RawFd,
        span: bool,
    ) -> Option<((i32, u32), Option<(i32, u32)>)> {
        match self.recv_one(sqe, fd, span) {
            Pick::Data {
                res,
                flags,
                short,
                before,
            } => {
                if short {
                    self.drained(fd);
                }
                Some(match before {
                    Some(head) => (head, Some((res, flags))),
                    None => ((res, flags), None),
                })
            }
            // An empty ring: the peek says whether data waits.
            Pick::Again => {
                self.set_ready(fd, Interest::Read, false);
                None
            }
            Pick::End(res) if res == -libc::ENOBUFS && !has_data(fd) => {
                self.set_ready(fd, Interest::Read, false);
                None
            }
            Pick::End(res) => Some(((res, 0), None)),
        }
    }

    /// Whether the entry's group has no buffer to pick.
    fn ring_empty(&self, sqe: &Sqe) -> bool {
        self.bufs
            .groups
            .iter()
            .find(|g| g.bgid == sqe.buf_index)
            .is_none_or(|g| g.tail() == g.head)
    }

    /// After a short read: whether `fd` is a byte stream, whose queue that
    /// read drained; if so it waits for epoll's next edge without another
    /// try (as `note_short` does for plain receives).
    fn drained(&mut self, fd: RawFd) -> bool {
        let Some(state) = self.fds.get_mut(&fd) else {
            return false;
        };
        if state.hung_up {
            return false;
        }
        let stream = *state.stream.get_or_insert_with(|| is_byte_stream(fd));
        if stream {
            state.readable = false;
        }
        stream
    }

    /// One non-blocking receive into the buffer at the head of the entry's
    /// group, committed as the kernel commits it.
    ///
    /// With `span` (a multishot receive on a byte stream, with no length
    /// cap), when the rest of the head buffer is no larger than the group's
    /// last receive, the receive also offers the next buffer (one `recvmsg`
    /// with two iovecs): data that exactly fills the rest of the head
    /// buffer then reads as short, so the socket is known to be drained
    /// without another receive that would only say `EAGAIN`. Data that goes
    /// past it completes the head buffer first (`before`), as the kernel
    /// would.
    fn recv_one(&mut self, sqe: &Sqe, fd: RawFd, span: bool) -> Pick {
        let Some(group) = self
            .bufs
            .groups
            .iter_mut()
            .find(|g| g.bgid == sqe.buf_index)
        else {
            return Pick::End(-libc::ENOBUFS);
        };
        let tail = group.tail();
        if tail == group.head {
            return Pick::End(-libc::ENOBUFS);
        }
        // SAFETY: `head & mask` is inside the entry array; the entry is
        // between the head and the published tail, so percore does not write
        // it until a completion hands the buffer back (it pushes only at its
        // tail). Fields are read and written through raw pointers, as the
        // kernel does: `resv` of entry 0 (the tail) is not touched.
        let (first, addr, len, bid) = unsafe { group.entry(group.head) };
        let room = if sqe.len != 0 { sqe.len.min(len) } else { len };
        // The next buffer, if the receive may spill into it.
        let next =
            (span && sqe.len == 0 && len <= group.last && tail.wrapping_sub(group.head) >= 2)
                // SAFETY: `head + 1` is before the tail (checked): as above.
                .then(|| unsafe { group.entry(group.head.wrapping_add(1)) });
        let res = loop {
            let r = match next {
                // SAFETY: the entry names a buffer of at least `len >= room`
                // bytes that is the selecting op's alone until its completion
                // (the registration's contract), like a buffer the kernel picked.
                None => unsafe {
                    libc::recv(
                        fd,
                        addr as *mut libc::c_void,
                        room as usize,
                        sqe.op_flags as i32 | libc::MSG_DONTWAIT,
                    )
                },
                // SAFETY: as above, for both buffers; the iovecs and the
                // header live on this frame for the call.
                Some((_, addr2, len2, _)) => unsafe {
                    let mut iov = [
                        libc::iovec {
                            iov_base: addr as *mut libc::c_void,
                            iov_len: room as usize,
                        },
                        libc::iovec {
                            iov_base: addr2 as *mut libc::c_void,
                            iov_len: len2 as usize,
                        },
                    ];
                    let mut msg: libc::msghdr = std::mem::zeroed();
                    msg.msg_iov = iov.as_mut_ptr();
                    msg.msg_iovlen = 2;
                    libc::recvmsg(fd, &mut msg, sqe.op_flags as i32 | libc::MSG_DONTWAIT)
                },
            };
            match errno_of(r) {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Pick::Again,
                Some(errno) => return Pick::End(-errno),
                None => break r as u32,
            }
        };
        if res == 0 {
            // End of stream: like the kernel, the buffer stays in the ring.
            return Pick::End(0);
        }
        group.last = res;
        let (before, res, entry, len, bid, room) = match next {
            Some((entry2, _, len2, bid2)) if res > room => {
                // The head buffer is full (`room == len` when spanning):
                // its completion goes first, without BUF_MORE.
                group.head = group.head.wrapping_add(1);
                let flags = CQE_F_BUFFER | (bid as u32) << CQE_BUFFER_SHIFT;
                (
                    Some((room as i32, flags)),
                    res - room,
                    entry2,
                    len2,
                    bid2,
                    len2,
                )
            }
            Some((_, _, len2, _)) => (None, res, first, len, bid, room + len2),
            None => (None, res, first, len, bid, room),
        };
        let mut flags = CQE_F_BUFFER | (bid as u32) << CQE_BUFFER_SHIFT;
        if group.incremental && res < len {
            // SAFETY: an entry between the head and the tail, as above.
            unsafe {
                let addr = std::ptr::addr_of!((*entry).addr).read();
                std::ptr::addr_of_mut!((*entry).addr).write(addr + res as u64);
                std::ptr::addr_of_mut!((*entry).len).write(len - res);
            }
            flags |= CQE_F_BUF_MORE;
        } else {
            group.head = group.head.wrapping_add(1);
        }
        Pick::Data {
            res: res as i32,
            flags,
            short: res < room,
            before,
        }
    }
}
