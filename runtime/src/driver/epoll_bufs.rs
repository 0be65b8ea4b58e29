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
//! skips the entries and the emulated completion queue: [`Epoll::recv_ring`] receives
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

use super::{Epoll, IORING_CQE_F_MORE, Interest, Kind, Sqe, errno_of};
use crate::buf::{
    BufPool, CQE_BUFFER_SHIFT, CQE_F_BUF_MORE, CQE_F_BUFFER, PBUF_RING_INC, ProvidedBuf, RawEntry,
};
use crate::driver::op::DirectTarget;
use crate::driver::{DirectDone, DriverStats, StartedMulti};

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
/// ([`Epoll::recv_ring`]): the op keeps it, and so does the fd's record
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
    #[inline]
    pub(crate) fn still_waiting(&self, waker: &Waker) -> bool {
        if self.fired.get() {
            return false;
        }
        self.keep(waker);
        true
    }

    /// The edge came: the waker to wake.
    pub(super) fn fire(&self) -> Option<Waker> {
        self.fired.set(true);
        self.waker.take()
    }

    /// Starts a wait whose waker the next poll leaves (see
    /// [`DirectWait::still_waiting`]); a waker left before stays, and is
    /// woken in vain at most once.
    #[inline]
    fn rearm(&self) {
        self.fired.set(false);
    }

    /// Starts a wait with `waker`.
    fn arm(&self, waker: &Waker) {
        self.fired.set(false);
        self.keep(waker);
    }

    /// Leaves `waker` for the edge to wake (the one kept already, if it
    /// wakes the same task: no clone).
    #[inline]
    fn keep(&self, waker: &Waker) {
        let kept = match self.waker.take() {
            Some(w) if w.will_wake(waker) => w,
            _ => waker.clone(),
        };
        self.waker.set(Some(kept));
    }
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

    /// An on-demand receive (`MultishotOp::on_demand`) into the target's
    /// group from its fd, made the readiness way, inside its task's poll,
    /// as tokio's I/O is: if the socket may be readable, one non-blocking
    /// receive into the group's head buffer, whose data comes straight
    /// back as a buffer of the target's pool (no entry, completion queue,
    /// slot or wake-up), counted in `stats` as a receive op; else (or on
    /// `EAGAIN`) `wait` waits for the fd's next read edge with the task's
    /// waker, and the task polls again. A receive that drained the socket
    /// leaves `wait` waiting too, so the next poll sees in `wait` alone
    /// that nothing came. Nothing is taken from the ring until the task
    /// asks, so an idle connection holds no buffer. A multishot target
    /// (`span`) on a byte stream may go on into the next buffer: that
    /// second piece goes into `pending`, for the op's next poll. `hint` is
    /// where the group was found last: the group is looked up by that
    /// index (and searched for only if it moved).
    ///
    /// The fd's record is looked up once; the ring's group by index. The
    /// answer is built once, here, where the driver hands it on as it is.
    ///
    /// An fd with another direct reader, or ops waiting the usual way, is
    /// `None`: the receive then goes the usual way, as an entry, after them.
    ///
    /// # Safety
    ///
    /// As for [`Epoll::start_inline`]: the target's group is registered
    /// here with its pool, and its published buffers are the receive's to
    /// fill until its completion, which this call returns.
    #[inline]
    pub(crate) unsafe fn recv_ring(
        &mut self,
        target: &DirectTarget,
        hint: &mut usize,
        waker: &Waker,
        wait: &Rc<DirectWait>,
        pending: &mut Option<ProvidedBuf>,
        stats: &mut DriverStats,
    ) -> Option<StartedMulti> {
        let (fd, bgid, pool) = (target.fd, target.bgid, &target.pool);
        let Ok(i) = usize::try_from(fd) else {
            return None;
        };
        if self.fds.slots.get(i).is_none_or(Option::is_none) {
            self.kind(fd); // first seen: one fstat
        }
        let Some(Some(state)) = self.fds.slots.get_mut(i) else {
            return None;
        };
        if state.kind != Kind::Pollable {
            return None;
        }
        let ours = match &state.direct_reader {
            Some(w) if Rc::ptr_eq(w, wait) => true,
            Some(_) => return None,
            None if !state.readers.is_empty() => return None,
            None => false,
        };
        if !state.readable {
            if !ours {
                return self.park_direct(fd, waker, wait);
            }
            wait.arm(waker);
            return Some(StartedMulti::Direct { fd });
        }
        let span = target.span && state.stream == Some(true);
        if self.inline_budget == 0 {
            waker.wake_by_ref();
            return Some(StartedMulti::Yield);
        }
        self.inline_budget -= 1;
        self.started += 1;
        // What was queued before it starts first, as in `start_inline`
        // (which may change the fd's record: look it up again).
        let state = if self.queued.is_empty() {
            state
        } else {
            self.start_queued();
            match self.fds.slots.get_mut(i) {
                Some(Some(state)) => state,
                _ => return None,
            }
        };
        let group = match self.bufs.groups.get_mut(*hint) {
            Some(g) if g.bgid == bgid => Some(g),
            _ => match self.bufs.groups.iter().position(|g| g.bgid == bgid) {
                Some(at) => {
                    *hint = at;
                    self.bufs.groups.get_mut(at)
                }
                None => None,
            },
        };
        let pick = match group {
            Some(group) => group.recv(fd, 0, 0, span),
            None => Pick::End(-libc::ENOBUFS),
        };
        let (first, then) = match pick {
            Pick::Data {
                res,
                flags,
                short,
                before,
            } => {
                if short {
                    state.filled(fd, false);
                }
                match before {
                    Some(head) => (head, Some((res, flags))),
                    None => ((res, flags), None),
                }
            }
            // As the kernel: an empty ring is ENOBUFS only when data waits
            // (the peek says).
            Pick::Again => return self.recv_ring_wait(fd, ours, waker, wait),
            Pick::End(res) if res == -libc::ENOBUFS && !has_data(fd) => {
                return self.recv_ring_wait(fd, ours, waker, wait);
            }
            Pick::End(res) => ((res, 0), None),
        };
        // Drained: wait for the edge already, so that the next poll finds
        // the wait in place.
        let waiting = if first.0 > 0 && !state.readable {
            if ours {
                // The poll returns what it received, so it leaves no
                // waker: the next poll that finds nothing stores its own
                // (`still_waiting`), and an edge before it only marks the
                // wait fired.
                wait.rearm();
                Some(fd)
            } else {
                matches!(
                    self.park_direct(fd, waker, wait),
                    Some(StartedMulti::Direct { .. })
                )
                .then_some(fd)
            }
        } else {
            None
        };
        stats.submitted = self.started;
        stats.ops.on_submit(io_uring::opcode::Recv::CODE);
        // In the order posted: the pool counts offsets so.
        let first = account_direct(stats, pool, first);
        if let Some(then) = then {
            *pending = match account_direct(stats, pool, then) {
                DirectDone::Data(buf) => Some(buf),
                DirectDone::End(_) => unreachable!("a receive spans buffers only with data"),
            };
        }
        Some(StartedMulti::Done { first, waiting })
    }

    /// [`Epoll::recv_ring`] found nothing to read: `fd` waits for its edge.
    fn recv_ring_wait(
        &mut self,
        fd: RawFd,
        ours: bool,
        waker: &Waker,
        wait: &Rc<DirectWait>,
    ) -> Option<StartedMulti> {
        self.set_ready(fd, Interest::Read, false);
        if ours {
            wait.arm(waker);
            return Some(StartedMulti::Direct { fd });
        }
        self.park_direct(fd, waker, wait)
    }

    /// Leaves `wait` waiting with `waker` for `fd`'s next read edge
    /// (registering the fd with epoll if it is not yet, and `wait` with the
    /// fd's record, where it stays until its op is dropped); `None` if the fd
    /// cannot be waited on.
    fn park_direct(
        &mut self,
        fd: RawFd,
        waker: &Waker,
        wait: &Rc<DirectWait>,
    ) -> Option<StartedMulti> {
        let registered = self.fds.get(&fd).is_some_and(|s| s.registered);
        if !registered && self.register(fd).is_err() {
            return None;
        }
        let state = self.fds.get_mut(&fd)?;
        wait.arm(waker);
        if state.direct_reader.is_none() {
            state.direct_reader = Some(wait.clone());
            self.direct_readers += 1;
        }
        Some(StartedMulti::Direct { fd })
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
    /// try ([`FdState::filled`], as after a short plain receive).
    fn drained(&mut self, fd: RawFd) -> bool {
        self.fds
            .get_mut(&fd)
            .is_some_and(|state| state.filled(fd, false))
    }

    /// One non-blocking receive into the buffer at the head of the entry's
    /// group, committed as the kernel commits it ([`Group::recv`]).
    fn recv_one(&mut self, sqe: &Sqe, fd: RawFd, span: bool) -> Pick {
        match self
            .bufs
            .groups
            .iter_mut()
            .find(|g| g.bgid == sqe.buf_index)
        {
            Some(group) => group.recv(fd, sqe.len, sqe.op_flags as i32, span),
            None => Pick::End(-libc::ENOBUFS),
        }
    }
}

/// What `Driver::account` does for a slot's completion, for a direct
/// receive's, which needs no slot: its pool is the op's (the one
/// registered here under its group). Data comes out as its buffer.
#[inline(always)]
fn account_direct(
    stats: &mut DriverStats,
    pool: &Rc<BufPool>,
    (res, flags): (i32, u32),
) -> DirectDone {
    stats.completed += 1;
    stats.ops.on_complete(io_uring::opcode::Recv::CODE);
    if res > 0 && flags & CQE_F_BUFFER != 0 {
        return DirectDone::Data(pool.hand_out(res as u32, flags));
    }
    // `Group::recv` posts no buffer without data (it leaves the buffer in
    // the ring, as the kernel does at the end of stream): nothing for the
    // pool to count.
    debug_assert_eq!(flags & CQE_F_BUFFER, 0);
    DirectDone::End(res)
}

impl Group {
    /// One non-blocking receive from `fd` into the buffer at the head of
    /// the group, of at most `cap` bytes (0: no cap), with `op_flags`;
    /// committed as the kernel commits it.
    ///
    /// With `span` (a multishot receive on a byte stream, with no length
    /// cap), when the rest of the head buffer is no larger than the group's
    /// last receive, the receive also offers the next buffer (one `recvmsg`
    /// with two iovecs): data that exactly fills the rest of the head
    /// buffer then reads as short, so the socket is known to be drained
    /// without another receive that would only say `EAGAIN`. Data that goes
    /// past it completes the head buffer first (`before`), as the kernel
    /// would.
    #[inline(always)]
    fn recv(&mut self, fd: RawFd, cap: u32, op_flags: i32, span: bool) -> Pick {
        let group = self;
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
        let room = if cap != 0 { cap.min(len) } else { len };
        // The next buffer, if the receive may spill into it.
        let next = (span && cap == 0 && len <= group.last && tail.wrapping_sub(group.head) >= 2)
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
                        op_flags | libc::MSG_DONTWAIT,
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
                    libc::recvmsg(fd, &mut msg, op_flags | libc::MSG_DONTWAIT)
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
