//! Provided-buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19).
//!
//! A [`BufRing`] is a pool of equal-sized receive buffers that the kernel
//! picks from when data arrives, so thousands of idle connections can wait
//! for data without holding one buffer each. A completion names the buffer it
//! filled; [`ProvidedBuf`] owns those bytes until it is dropped.
//!
//! Incremental consumption (`IOU_PBUF_RING_INC`, Linux 6.12): the kernel
//! fills one buffer piece by piece, each completion handing out the next
//! part (flagged `IORING_CQE_F_BUF_MORE` while it keeps the rest). A
//! [`ProvidedBuf`] is then a slice of a buffer, and the buffer goes back to the
//! ring once the kernel is done with it *and* every slice of it was dropped.
//! Where a completion's data starts is known only from the completions
//! before it for the same buffer, in the order the kernel posted them: the
//! driver reports each one to the ring's [`Pool`] as it reaps it (before
//! any task reads it), which keeps that order.
//!
//! Unlike the rest of `buf/`, this module talks to the driver: a ring must be
//! registered with (and unregistered from) the current core's driver, and
//! only here do we know when that is safe.
//!
//! Lifetime: the registration lives in one `Rc`, which each op that may pick
//! from the ring holds, so the ring is unregistered only when no op can use
//! it any more. The memory lives in another (`Pool`), held by the
//! registration, by every [`ProvidedBuf`] and by the driver while the group is
//! registered.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use super::IoBuf;
use crate::driver;

/// One entry of the ring shared with the kernel (`struct io_uring_buf`).
/// The `resv` field of entry 0 is the ring's tail.
#[repr(C)]
pub(crate) struct RawEntry {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) bid: u16,
    pub(crate) resv: u16,
}

const PAGE: usize = 4096;

thread_local! {
    /// The buffer group ids of this thread's rings. The kernel keeps one id
    /// space per io_uring and a ring belongs to one thread, so ids unique
    /// per thread never collide on any of the thread's io_urings.
    static BGIDS: RefCell<BgidSet> = const { RefCell::new(BgidSet::new()) };
}

/// Number of buffer group ids (the kernel's are `u16`).
const BGID_COUNT: usize = 1 << 16;

/// Hands out buffer group ids so that an id in use is never handed out
/// again until it is released; ids are tried in turn (not lowest-first) so
/// a released id rests before it is reused.
#[derive(Debug)]
struct BgidSet {
    /// One bit per id, allocated on first use (8 KiB).
    used: Vec<u64>,
    /// Where the next search starts.
    next: u16,
    /// Ids handed out and not released.
    live: usize,
}

impl BgidSet {
    const fn new() -> BgidSet {
        BgidSet {
            used: Vec::new(),
            next: 0,
            live: 0,
        }
    }

    fn is_used(&self, id: u16) -> bool {
        self.used[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// A free id, now taken; `None` when all 65536 are.
    fn alloc(&mut self) -> Option<u16> {
        if self.used.is_empty() {
            self.used = vec![0; BGID_COUNT / 64];
        }
        if self.live == BGID_COUNT {
            return None;
        }
        let mut id = self.next;
        while self.is_used(id) {
            id = id.wrapping_add(1);
        }
        self.used[id as usize / 64] |= 1 << (id % 64);
        self.live += 1;
        self.next = id.wrapping_add(1);
        Some(id)
    }

    /// Gives `id` back.
    fn release(&mut self, id: u16) {
        assert!(self.is_used(id), "buffer group id {id} released twice");
        self.used[id as usize / 64] &= !(1 << (id % 64));
        self.live -= 1;
    }
}

/// A ring of provided buffers registered with the current core's io_uring.
///
/// Create one per core and share it (it is a cheap `Rc` handle) between the
/// connections of that core; receive into it with
/// [`RecvMulti`](crate::op::RecvMulti) (or `TcpStream::recv_pooled` in
/// `percore-net`). When the kernel finds the ring empty, the receive ends with
/// `ENOBUFS` and can be re-armed once buffers come back.
///
/// Where the kernel consumes buffers incrementally
/// ([`Capabilities::buf_ring_inc`](crate::Capabilities::buf_ring_inc), Linux
/// 6.12, and the epoll driver), the ring is registered that way by default:
/// the kernel fills a buffer piece by piece, each receive handing out only
/// the part it used, so large buffers serve small messages without wasting
/// the rest. See [`BufRingBuilder::incremental`].
///
/// # Examples
///
/// ```
/// use percore::buf::BufRing;
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().buf_ring {
///         return;
///     }
///     let ring = BufRing::new(64, 4096).unwrap();
///     assert_eq!(ring.entries(), 64);
///     assert_eq!(ring.buf_len(), 4096);
///     assert_eq!(ring.available(), 64);
/// });
/// ```
#[derive(Clone)]
pub struct BufRing {
    inner: Rc<Inner>,
}

/// The registration: dropped when no op can pick from the group any more.
struct Inner {
    bgid: u16,
    pool: Rc<Pool>,
    /// The id of the driver the ring is registered with.
    ring: u64,
    /// Whether the kernel knows the ring (registration succeeded).
    registered: bool,
}

/// The memory of a ring and what each buffer is doing. Shared by the
/// registration, every [`ProvidedBuf`] and the driver, which updates it for
/// each completion in the order the kernel posted them (see
/// [`Pool::on_cqe`]).
pub(crate) struct Pool {
    entries: u16,
    /// The length the kernel is given for each buffer.
    buf_len: u32,
    /// log2 of the stride: buffer `bid` starts at `bid << stride_shift` in
    /// `bufs`. The stride is `buf_len` rounded up to a power of two, so a
    /// [`Pool::pos`] is taken apart with shifts and a mask, not a division,
    /// on every access and release; a length that is not a power of two
    /// costs the padding up to the next one.
    stride_shift: u32,
    /// `pos >> bid_shift` is the buffer id: `stride_shift` for an
    /// incremental ring, 0 for a whole-buffer one.
    bid_shift: u32,
    /// `pos & offset_mask` is the offset inside the buffer: the stride
    /// minus one for an incremental ring, 0 for a whole-buffer one.
    offset_mask: u32,
    /// `pos << pos_shift` is the offset into all the buffers: 0 for an
    /// incremental ring (its `pos` is that offset already), `stride_shift`
    /// for a whole-buffer one (its `pos` is the buffer id).
    pos_shift: u32,
    /// Registered with `IOU_PBUF_RING_INC`.
    incremental: bool,
    /// The entry array the kernel reads; page aligned.
    ring: NonNull<RawEntry>,
    ring_layout: Layout,
    /// `entries` buffers, one every stride (`stride_shift`).
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    /// Our copy of the tail we last published.
    tail: Cell<u16>,
    /// Buffers the kernel is done with and that are not back in the ring.
    held: Cell<usize>,
    state: Box<[BufState]>,
    /// The kernel may still read the entry array (unregistering failed):
    /// it is leaked, not freed.
    keep_ring: Cell<bool>,
}

/// One buffer's state. A buffer is in the ring (the kernel may pick it, and
/// in incremental mode may be filling it) until a completion says the
/// kernel is done with it (`out`); it goes back into the ring once no
/// completion's data in it is referenced any more (`refs == 0`).
#[derive(Default)]
struct BufState {
    /// Bytes the kernel handed out from this buffer since it was put in the
    /// ring: where the next completion's data starts (incremental mode).
    filled: Cell<u32>,
    /// Completions with data in this buffer not yet released: live
    /// [`ProvidedBuf`]s, and completions reaped that nobody took yet.
    refs: Cell<u32>,
    /// The kernel is done with the buffer.
    out: Cell<bool>,
}

/// `IOU_PBUF_RING_INC` (Linux 6.12): buffers are consumed incrementally.
pub(crate) const PBUF_RING_INC: u16 = 2;
/// `IORING_CQE_F_BUFFER`: the completion names a buffer (id in the upper 16 bits).
pub(crate) const CQE_F_BUFFER: u32 = 1;
/// `IORING_CQE_F_BUF_MORE`: the kernel keeps filling the buffer named.
pub(crate) const CQE_F_BUF_MORE: u32 = 1 << 4;
/// `IORING_CQE_BUFFER_SHIFT`.
pub(crate) const CQE_BUFFER_SHIFT: u32 = 16;

/// Options for a [`BufRing`]; made by [`BufRing::builder`].
///
/// # Examples
///
/// ```
/// use percore::buf::BufRing;
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().buf_ring {
///         return;
///     }
///     // One whole buffer per receive, as before Linux 6.12.
///     let ring = BufRing::builder(16, 2048).incremental(false).build().unwrap();
///     assert!(!ring.is_incremental());
/// });
/// ```
#[derive(Clone, Debug)]
pub struct BufRingBuilder {
    entries: u16,
    buf_len: usize,
    incremental: bool,
}

impl BufRingBuilder {
    /// Whether the kernel may fill each buffer piece by piece
    /// (`IOU_PBUF_RING_INC`): each receive then hands out only the part of
    /// the buffer it used, and the next receive continues after it, so a
    /// 64 KiB buffer holds many small messages. Used only where
    /// [`Capabilities::buf_ring_inc`](crate::Capabilities::buf_ring_inc)
    /// says the kernel can. The default is on, unless the environment
    /// variable `PERCORE_BUF_RING_INC` is `0` (for A/B runs).
    ///
    /// Turn it off for datagram sockets: a datagram larger than what is
    /// left of the current buffer is cut short, as by a too small buffer.
    /// Rings of more than 4 GiB in all keep whole buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let caps = percore::capabilities().unwrap();
    ///     if !caps.buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::builder(8, 65536).incremental(true).build().unwrap();
    ///     assert_eq!(ring.is_incremental(), caps.buf_ring_inc);
    /// });
    /// ```
    pub fn incremental(mut self, on: bool) -> BufRingBuilder {
        self.incremental = on;
        self
    }

    /// Allocates the buffers and registers the ring with the current core's
    /// ring; see [`BufRing::new`] for the errors.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::builder(8, 1024).build().unwrap();
    ///     assert_eq!(ring.entries(), 8);
    /// });
    /// ```
    pub fn build(self) -> io::Result<BufRing> {
        BufRing::with_options(self)
    }
}

impl BufRing {
    /// Allocates `entries` buffers of `buf_len` bytes and registers them with
    /// the current core's ring (incrementally consumed where the kernel can,
    /// see [`BufRingBuilder::incremental`]).
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `entries` is not a power of two in `1..=32768` or
    /// `buf_len` is zero or above `u32::MAX`; `Unsupported` if the kernel has no provided-buffer rings (before 5.19, see
    /// [`Capabilities::buf_ring`](crate::Capabilities::buf_ring));
    /// `OutOfMemory` if the buffers cannot be allocated; an error of kind
    /// `Other` if all 65536 buffer group ids are taken by this thread's live
    /// rings; the error of the registration otherwise (`ENOMEM` under a low
    /// memlock limit).
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     assert!(percore::buf::BufRing::new(3, 1024).is_err()); // not a power of two
    ///     assert_eq!(ring.entries(), 8);
    /// });
    /// ```
    pub fn new(entries: u16, buf_len: usize) -> io::Result<BufRing> {
        BufRing::builder(entries, buf_len).build()
    }

    /// Options for a ring of `entries` buffers of `buf_len` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::builder(8, 1024).incremental(false).build().unwrap();
    ///     assert_eq!(ring.buf_len(), 1024);
    /// });
    /// ```
    pub fn builder(entries: u16, buf_len: usize) -> BufRingBuilder {
        let incremental = std::env::var_os("PERCORE_BUF_RING_INC").is_none_or(|v| v != "0");
        BufRingBuilder {
            entries,
            buf_len,
            incremental,
        }
    }

    fn with_options(opts: BufRingBuilder) -> io::Result<BufRing> {
        let BufRingBuilder {
            entries,
            buf_len,
            incremental,
        } = opts;
        if entries == 0 || !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer ring entries must be a power of two up to 32768, not {entries}"),
            ));
        }
        if buf_len == 0 || buf_len > u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer ring buffers must be 1..=u32::MAX bytes, not {buf_len}"),
            ));
        }
        // Buffers sit a power of two apart (`Pool::stride_shift`).
        let stride_shift = buf_len.next_power_of_two().trailing_zeros();
        let (driver_id, owner) = driver::try_with_driver(|d| (d.id(), d.capabilities()))
            .expect("BufRing::new outside a runtime: call it inside percore::run");
        if !owner.buf_ring {
            let why = if owner.driver == crate::DriverKind::Epoll {
                "provided-buffer rings are off on this epoll driver (minimal features); \
                 receive into owned buffers instead"
            } else {
                "provided-buffer rings need Linux 5.19 (IORING_REGISTER_PBUF_RING); \
                 receive into owned buffers instead"
            };
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        // A slice's place must fit 32 bits (`Pool::pos`): larger rings keep
        // whole buffers.
        let incremental = incremental
            && owner.buf_ring_inc
            && (entries as u64) << stride_shift <= u32::MAX as u64;
        let ring_layout = Layout::from_size_align(
            (entries as usize * std::mem::size_of::<RawEntry>()).max(PAGE),
            PAGE,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let bufs_layout = Layout::from_size_align((entries as usize) << stride_shift, 64)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let out_of_memory = |layout: Layout| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("cannot allocate {} bytes for a buffer ring", layout.size()),
            )
        };
        // SAFETY: the layout has a non-zero size (at least a page).
        let ring = NonNull::new(unsafe { alloc_zeroed(ring_layout) }.cast::<RawEntry>())
            .ok_or_else(|| out_of_memory(ring_layout))?;
        // SAFETY: the layout has a non-zero size (`entries`, `buf_len` >= 1).
        let Some(bufs) = NonNull::new(unsafe { alloc_zeroed(bufs_layout) }) else {
            // SAFETY: allocated just above with this layout; nothing saw it.
            unsafe { dealloc(ring.as_ptr().cast(), ring_layout) };
            return Err(out_of_memory(bufs_layout));
        };
        let (bid_shift, offset_mask, pos_shift) = if incremental {
            // Below 32: the whole ring fits 32 bits (checked above).
            (stride_shift, (1u32 << stride_shift) - 1, 0)
        } else {
            (0, 0, stride_shift)
        };
        let pool = Rc::new(Pool {
            entries,
            buf_len: buf_len as u32,
            stride_shift,
            bid_shift,
            offset_mask,
            pos_shift,
            incremental,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: Cell::new(0),
            held: Cell::new(0),
            state: (0..entries).map(|_| BufState::default()).collect(),
            keep_ring: Cell::new(false),
        });
        for bid in 0..entries {
            pool.push(bid);
        }
        pool.publish();

        // Ids the kernel reported taken on this io_uring: kept reserved while
        // we search, so the search moves on, and released afterwards.
        let mut taken = Vec::new();
        let res = loop {
            let Some(bgid) = BGIDS.with(|ids| ids.borrow_mut().alloc()) else {
                break Err(io::Error::other(
                    "all 65536 buffer group ids of this thread are in use: \
                     drop a BufRing before making another",
                ));
            };
            // SAFETY: the entry array is page aligned, holds `entries`
            // entries, and stays allocated until the ring is unregistered
            // (or is leaked when that is impossible, see `Drop`); so do the
            // buffers its entries point to (the driver keeps a clone of the
            // pool while the group is registered).
            let res = driver::with_driver(|d| unsafe { d.register_buf_ring(&pool, bgid) });
            match res {
                Ok(()) => break Ok(bgid),
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => taken.push(bgid),
                Err(err) => {
                    BGIDS.with(|ids| ids.borrow_mut().release(bgid));
                    break Err(err);
                }
            }
        };
        BGIDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            for bgid in taken {
                ids.release(bgid);
            }
        });
        // On error the pool drops unregistered: it frees both allocations.
        let bgid = res?;
        Ok(BufRing {
            inner: Rc::new(Inner {
                bgid,
                pool,
                ring: driver_id,
                registered: true,
            }),
        })
    }

    /// Whether the ring is registered with the current runtime's io_uring
    /// (the one an op submitted now goes to).
    pub(crate) fn is_current(&self) -> bool {
        driver::current_id() == Some(self.inner.ring)
    }

    /// The id of the driver the ring is registered with.
    pub(crate) fn driver_id(&self) -> u64 {
        self.inner.ring
    }

    /// The ring's memory and buffer states.
    pub(crate) fn pool(&self) -> &Rc<Pool> {
        &self.inner.pool
    }

    /// The buffer group id the kernel knows this ring by.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let other = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     assert_ne!(ring.bgid(), other.bgid()); // each ring is its own buffer group
    /// });
    /// ```
    pub fn bgid(&self) -> u16 {
        self.inner.bgid
    }

    /// Number of buffers in the ring.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     assert_eq!(ring.entries(), 8);
    /// });
    /// ```
    pub fn entries(&self) -> u16 {
        self.inner.pool.entries
    }

    /// Size of each buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     assert_eq!(ring.buf_len(), 1024);
    /// });
    /// ```
    pub fn buf_len(&self) -> usize {
        self.inner.pool.buf_len as usize
    }

    /// Whether the kernel consumes the buffers incrementally
    /// (`IOU_PBUF_RING_INC`, see [`BufRingBuilder::incremental`]).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let caps = percore::capabilities().unwrap();
    ///     if !caps.buf_ring {
    ///         return;
    ///     }
    ///     let ring = percore::buf::BufRing::builder(8, 1024).incremental(false).build().unwrap();
    ///     assert!(!ring.is_incremental());
    /// });
    /// ```
    pub fn is_incremental(&self) -> bool {
        self.inner.pool.incremental
    }

    /// Buffers in the ring: not yet picked, or being filled piece by piece
    /// (incremental mode). A buffer the kernel is done with comes back once
    /// every [`ProvidedBuf`] of it was dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::builder(8, 1024).incremental(false).build().unwrap();
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     std::io::Write::write_all(&mut &a, b"ring").unwrap();
    ///     let fd = percore::fd::SharedFd::new(b.into());
    ///     let mut recv = percore::op::MultishotOp::new(percore::op::RecvMulti::new(fd, &ring));
    ///     let buf = recv.next_buf().await.unwrap().unwrap();
    ///     assert_eq!(ring.available(), 7); // one is lent out
    ///     drop(buf);
    ///     assert_eq!(ring.available(), 8);
    /// });
    /// ```
    pub fn available(&self) -> usize {
        self.inner.pool.entries as usize - self.inner.pool.held.get()
    }

    /// Takes `len` bytes at `offset` of buffer `bid` that a completion
    /// handed out (the driver counted the reference when it reaped it).
    ///
    /// # Safety
    ///
    /// `bid`, `offset` and `len` come from one completion (with data) of an
    /// op that picked from this ring, as the driver reaped it
    /// ([`Pool::on_cqe`]), and are taken (or [released](BufRing::release))
    /// at most once.
    #[inline]
    pub(crate) unsafe fn take(&self, bid: u16, offset: u32, len: usize) -> ProvidedBuf {
        let pool = &self.inner.pool;
        assert!(
            bid < pool.entries
                // Whole buffers start at 0, slices inside their buffer:
                // what `Pool::pos` packs and `Pool::data_ptr` relies on.
                && offset <= pool.offset_mask
                && len <= pool.buf_len as usize
                && offset as usize + len <= pool.buf_len as usize
                && pool.state[bid as usize].refs.get() > 0,
            "buffer {bid} with {len} bytes at {offset} is not from this ring"
        );
        ProvidedBuf {
            pool: pool.clone(),
            pos: pool.pos(bid, offset),
            len: len as u32,
        }
    }

    /// Releases the data of a completion that nobody will read.
    ///
    /// # Safety
    ///
    /// As for [`BufRing::take`].
    pub(crate) unsafe fn release(&self, bid: u16) {
        self.inner.pool.release(bid);
    }
}

impl Pool {
    /// The entry array's address, its size, and the ring's flags for
    /// `IORING_REGISTER_PBUF_RING`.
    pub(crate) fn registration(&self) -> (u64, u16, u16) {
        let flags = if self.incremental { PBUF_RING_INC } else { 0 };
        (self.ring.as_ptr() as u64, self.entries, flags)
    }

    /// Accounts for one completion of an op that selects from this ring.
    /// The driver calls it for every such completion, in the order the
    /// kernel posted them, before anyone reads it: in incremental mode the
    /// order is the only record of where each completion's data starts.
    /// Returns that offset inside the buffer the completion names.
    ///
    /// # Panics
    ///
    /// If the completion names a buffer that is not in the ring: the kernel
    /// and percore disagree about who owns it, and reading on would hand
    /// out memory the kernel may write.
    #[inline]
    pub(crate) fn on_cqe(&self, res: i32, flags: u32) -> u32 {
        if flags & CQE_F_BUFFER == 0 {
            return 0;
        }
        let bid = (flags >> CQE_BUFFER_SHIFT) as u16;
        if res > 0 {
            return self.on_data(bid, res as u32, flags);
        }
        if self.state_of(bid).out.get() {
            self.bad_completion(bid, 0, 0);
        }
        // No data. An incrementally consumed buffer is never used up by
        // it (the kernel leaves it in the ring, even where its
        // completion lacks BUF_MORE: the 6.12 kernels before the "fix
        // missing BUF_MORE at EOF" patch); a whole buffer is.
        if !self.incremental {
            self.give_up(bid);
            self.recycle_if_free(bid);
        }
        0
    }

    /// [`Pool::on_cqe`] of a completion with `res` bytes in buffer `bid`,
    /// made by the epoll driver's direct receive inside the caller's poll,
    /// handed out at once: its data, as a [`ProvidedBuf`].
    ///
    /// # Panics
    ///
    /// As [`Pool::on_cqe`].
    #[inline(always)]
    pub(crate) fn hand_out(self: &Rc<Pool>, res: u32, flags: u32) -> ProvidedBuf {
        debug_assert!(flags & CQE_F_BUFFER != 0 && res > 0);
        let bid = (flags >> CQE_BUFFER_SHIFT) as u16;
        let offset = self.on_data(bid, res, flags);
        // `on_data` checked what `BufRing::take` asserts: `bid` is a
        // buffer of the ring, the data lies inside it, and the
        // completion holds one of its references, which the
        // `ProvidedBuf` now owns.
        ProvidedBuf {
            pool: self.clone(),
            pos: self.pos(bid, offset),
            len: res,
        }
    }

    /// Buffer `bid`'s state, which a completion named.
    #[inline]
    fn state_of(&self, bid: u16) -> &BufState {
        match self.state.get(bid as usize) {
            Some(st) => st,
            None => self.bad_completion(bid, 0, 0),
        }
    }

    /// A completion names a buffer not of the ring, or (`res` 0) one the
    /// kernel had given back, or (`res` > 0) `res` bytes at `offset` that
    /// overflow it: the kernel and percore disagree about who owns it.
    /// Out of line, so that the checks on every completion cost a compare
    /// each and no spills.
    #[cold]
    #[inline(never)]
    fn bad_completion(&self, bid: u16, res: u32, offset: u32) -> ! {
        if bid >= self.entries {
            panic!(
                "percore: a completion names buffer {bid} of a ring of {}",
                self.entries
            );
        }
        if res == 0 {
            panic!(
                "percore: a completion names buffer {bid}, which the kernel had already given back"
            );
        }
        panic!(
            "percore: {res} bytes at {offset} overflow buffer {bid} of {} bytes",
            self.buf_len
        )
    }

    /// Accounts for `res` (> 0) bytes a completion with `flags` put into
    /// buffer `bid`; returns where they start in it.
    #[inline(always)]
    fn on_data(&self, bid: u16, res: u32, flags: u32) -> u32 {
        let st = self.state_of(bid);
        if st.out.get() {
            self.bad_completion(bid, 0, 0);
        }
        let offset = if self.incremental { st.filled.get() } else { 0 };
        if offset as u64 + res as u64 > self.buf_len as u64 {
            self.bad_completion(bid, res, offset);
        }
        st.filled.set(offset + res);
        st.refs.set(st.refs.get() + 1);
        // Incremental: the kernel keeps a buffer until a completion
        // without BUF_MORE; a whole buffer per completion otherwise.
        if !self.incremental || flags & CQE_F_BUF_MORE == 0 {
            self.give_up(bid);
        }
        offset
    }

    /// The kernel is done with buffer `bid`.
    fn give_up(&self, bid: u16) {
        self.state[bid as usize].out.set(true);
        self.held.set(self.held.get() + 1);
    }

    /// Drops one reference to data in buffer `bid`.
    /// Inline: every dropped [`ProvidedBuf`] comes here, and most often
    /// the buffer stays out (the kernel goes on filling it, or another
    /// slice of it is alive).
    #[inline]
    fn release(&self, bid: u16) {
        let st = &self.state[bid as usize];
        let refs = st.refs.get();
        assert!(refs > 0, "buffer {bid} released more often than handed out");
        st.refs.set(refs - 1);
        if refs == 1 && st.out.get() {
            self.recycle(bid, st);
        }
    }

    /// Puts buffer `bid` back into the ring if the kernel is done with it
    /// and no data in it is referenced.
    fn recycle_if_free(&self, bid: u16) {
        let st = &self.state[bid as usize];
        if st.out.get() && st.refs.get() == 0 {
            self.recycle(bid, st);
        }
    }

    /// Puts buffer `bid` (whose state is `st`), used up by the kernel and
    /// no longer referenced, back into the ring.
    fn recycle(&self, bid: u16, st: &BufState) {
        st.out.set(false);
        st.filled.set(0);
        self.held.set(self.held.get() - 1);
        self.push(bid);
        self.publish();
    }

    /// Writes buffer `bid`, whole, into the slot at our tail (not yet visible).
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let idx = (tail & (self.entries - 1)) as usize;
        // SAFETY: `idx < entries`, inside the entry array. The kernel reads
        // (and, in incremental mode, writes) only slots between its head and
        // the published tail, and this slot is at or after the tail, so
        // nobody else touches it now. Fields are written through raw
        // pointers: `resv` of slot 0 is the shared tail.
        unsafe {
            let entry = self.ring.as_ptr().add(idx);
            std::ptr::addr_of_mut!((*entry).addr).write(self.buf_ptr(bid, 0) as u64);
            std::ptr::addr_of_mut!((*entry).len).write(self.buf_len);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// Makes the pushed slots visible to the kernel.
    fn publish(&self) {
        // SAFETY: `resv` of slot 0 is the ring's tail (`struct io_uring_buf_ring`),
        // a naturally aligned u16 that the kernel reads concurrently; only
        // atomic accesses are made to it.
        let tail =
            unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.ring.as_ptr()).resv)) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// A slice's place, in 32 bits: the buffer id of a whole-buffer ring
    /// (its data starts at 0), or the offset into all the buffers of an
    /// incremental one, which is at most 4 GiB in all (`with_options`).
    /// `offset` is below `buf_len`, so below the stride (a completion's
    /// data starts inside its buffer): it never carries into the id's bits.
    fn pos(&self, bid: u16, offset: u32) -> u32 {
        debug_assert!(offset <= self.offset_mask);
        ((bid as u32) << self.bid_shift) | offset
    }

    /// The buffer id and offset of a [`Pool::pos`].
    #[inline]
    fn locate(&self, pos: u32) -> (u16, u32) {
        ((pos >> self.bid_shift) as u16, pos & self.offset_mask)
    }

    /// Where the bytes at `pos` are: one shift, no branch, on every access
    /// of a [`ProvidedBuf`].
    #[inline]
    fn data_ptr(&self, pos: u32) -> *mut u8 {
        let at = (pos as usize) << self.pos_shift;
        debug_assert!(at < (self.entries as usize) << self.stride_shift);
        // SAFETY: a `pos` made by `Pool::pos` from a buffer id below
        // `entries` and an offset inside that buffer names a byte inside
        // the buffers: `at` is `(bid << stride_shift) + offset` in both
        // modes.
        unsafe { self.bufs.as_ptr().add(at) }
    }

    fn buf_ptr(&self, bid: u16, offset: u32) -> *mut u8 {
        debug_assert!(bid < self.entries && offset <= self.buf_len);
        // SAFETY: `bid < entries` and `offset <= buf_len <= stride`, so the
        // offset stays inside the buffers (or one past the last).
        unsafe {
            self.bufs
                .as_ptr()
                .add(((bid as usize) << self.stride_shift) + offset as usize)
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: allocated in `BufRing::with_options` with these layouts,
        // freed once, here. The last clone is gone: no `ProvidedBuf` is alive,
        // the registration is gone (every op that selects from this group
        // holds a clone of it, the `OpCode` contract) and so is the driver's
        // clone (dropped when it unregistered the group, or with the driver).
        // The entry array is kept if the kernel may still read it.
        unsafe {
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
            if !self.keep_ring.get() {
                dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No op can pick a buffer of this ring any more: every op that
        // selects from it holds a clone of this `Rc` (the `OpCode` contract).
        if !self.registered {
            return;
        }
        // Unregister from the io_uring we registered with. If that ring is not
        // current (the ring is used from a different runtime, or the driver is
        // busy tearing down) or the kernel refuses, the kernel keeps the
        // group and may read its entry array until the io_uring is destroyed:
        // that small array is leaked, and the id stays reserved so no new
        // ring of this thread is told to use it.
        let bgid = self.bgid;
        let ring = self.ring;
        let unregistered =
            driver::try_with_driver(|d| d.id() == ring && d.unregister_buf_ring(bgid).is_ok())
                .unwrap_or(false);
        if unregistered {
            // `try_with` and `try_borrow_mut`: the thread may be tearing down
            // its locals, or be inside `BufRing::new`; either way the id then
            // simply stays reserved.
            let _ = BGIDS.try_with(|ids| {
                if let Ok(mut ids) = ids.try_borrow_mut() {
                    ids.release(bgid);
                }
            });
        } else {
            self.pool.keep_ring.set(true);
        }
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("bgid", &self.inner.bgid)
            .field("entries", &self.inner.pool.entries)
            .field("buf_len", &self.inner.pool.buf_len)
            .field("incremental", &self.inner.pool.incremental)
            .field("available", &self.available())
            .finish()
    }
}

/// Received bytes in a buffer of a [`BufRing`] (io_uring's "provided
/// buffer"): the whole buffer's start, or (incremental mode) the part of it
/// one receive filled. Dropping it
/// releases that part; the buffer goes back to the kernel once the kernel
/// is done with it and every `ProvidedBuf` of it was dropped.
///
/// It derefs to the received bytes, and is an [`IoBuf`], so it can be written
/// out as it is (an echo server sends back the very buffer it received into).
///
/// # Examples
///
/// ```
/// use percore::buf::BufRing;
/// use percore::fd::SharedFd;
/// use percore::op::{MultishotOp, RecvMulti};
/// use std::io::Write;
///
/// percore::run(async {
///     if !percore::capabilities().unwrap().buf_ring {
///         return;
///     }
///     let ring = BufRing::builder(4, 1024).incremental(false).build().unwrap();
///     let (mine, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
///     theirs.write_all(b"hello").unwrap();
///     let mut recv = MultishotOp::new(RecvMulti::new(SharedFd::new(mine.into()), &ring));
///     let buf = recv.next_buf().await.unwrap().unwrap();
///     assert_eq!(&buf[..], b"hello");
///     assert_eq!(ring.available(), 3);
///     drop(buf);
///     assert_eq!(ring.available(), 4);
/// });
/// ```
pub struct ProvidedBuf {
    pool: Rc<Pool>,
    /// Where the bytes are, packed into 32 bits so that a `ProvidedBuf` (and a
    /// [`RecvBuf`]) stays as small as before incremental rings: every task
    /// that holds one across an await carries it (see [`Pool::pos`]).
    pos: u32,
    len: u32,
}

// Held across awaits by every task that echoes or parses what it received:
// each byte here is a byte per idle connection (+144 B per connection in
// echo-server when these were 24 and 32).
const _: () = assert!(std::mem::size_of::<ProvidedBuf>() == 16);
const _: () = assert!(std::mem::size_of::<RecvBuf>() == 24);

impl ProvidedBuf {
    /// The buffer id inside its ring.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     std::io::Write::write_all(&mut &a, b"ring").unwrap();
    ///     let fd = percore::fd::SharedFd::new(b.into());
    ///     let mut recv = percore::op::MultishotOp::new(percore::op::RecvMulti::new(fd, &ring));
    ///     let buf = recv.next_buf().await.unwrap().unwrap();
    ///     assert!(buf.bid() < ring.entries());
    /// });
    /// ```
    pub fn bid(&self) -> u16 {
        self.pool.locate(self.pos).0
    }

    /// Where the bytes start inside their buffer: 0, except for the second
    /// and later receives into an incrementally consumed buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     std::io::Write::write_all(&mut &a, b"ring").unwrap();
    ///     let fd = percore::fd::SharedFd::new(b.into());
    ///     let mut recv = percore::op::MultishotOp::new(percore::op::RecvMulti::new(fd, &ring));
    ///     let buf = recv.next_buf().await.unwrap().unwrap();
    ///     assert_eq!(buf.offset(), 0); // the first receive into a fresh buffer
    /// });
    /// ```
    pub fn offset(&self) -> usize {
        self.pool.locate(self.pos).1 as usize
    }

    /// Number of received bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     std::io::Write::write_all(&mut &a, b"ring").unwrap();
    ///     let fd = percore::fd::SharedFd::new(b.into());
    ///     let mut recv = percore::op::MultishotOp::new(percore::op::RecvMulti::new(fd, &ring));
    ///     let buf = recv.next_buf().await.unwrap().unwrap();
    ///     assert_eq!(buf.len(), 4);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no bytes were received.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     if !percore::capabilities().unwrap().buf_ring {
    ///         return; // provided-buffer rings need Linux 5.19
    ///     }
    ///     let ring = percore::buf::BufRing::new(8, 1024).unwrap();
    ///     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     std::io::Write::write_all(&mut &a, b"ring").unwrap();
    ///     let fd = percore::fd::SharedFd::new(b.into());
    ///     let mut recv = percore::op::MultishotOp::new(percore::op::RecvMulti::new(fd, &ring));
    ///     let buf = recv.next_buf().await.unwrap().unwrap();
    ///     assert!(!buf.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Deref for ProvidedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the kernel wrote these `len` bytes at `offset` of buffer
        // `bid` and handed them over with a completion; it does not write
        // there again until the buffer is back in the ring, which waits for
        // this guard's drop (it holds one of the buffer's `refs`). In
        // incremental mode the kernel goes on filling the same buffer, but
        // only after `offset + len` (each completion's data starts where the
        // previous one ended), so no other guard's range overlaps this one.
        unsafe { std::slice::from_raw_parts(self.pool.data_ptr(self.pos), self.len()) }
    }
}

impl DerefMut for ProvidedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`: this guard's range is its own (disjoint from
        // every other guard's and from what the kernel may still fill), and
        // the guard is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.pool.data_ptr(self.pos), self.len()) }
    }
}

// SAFETY: the bytes live in the ring's allocation, which this guard keeps
// alive (an `Rc`) and which never moves; the kernel does not write them
// until the guard drops (see `deref`); all `len` of them are initialized.
unsafe impl IoBuf for ProvidedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.pool.data_ptr(self.pos)
    }
    fn bytes_init(&self) -> usize {
        self.len as usize
    }
    fn bytes_total(&self) -> usize {
        self.len as usize
    }
}

impl Drop for ProvidedBuf {
    fn drop(&mut self) {
        self.pool.release(self.pool.locate(self.pos).0);
    }
}

impl fmt::Debug for ProvidedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidedBuf")
            .field("bid", &self.bid())
            .field("offset", &self.offset())
            .field("len", &self.len)
            .finish()
    }
}

/// Received bytes: a [`ProvidedBuf`] when they came through a buffer ring, or an
/// owned `Vec<u8>` when the receive fell back to a plain buffer (the ring was
/// empty, or the kernel has no buffer rings).
///
/// It derefs to the bytes and is an [`IoBuf`], so it can be written out as
/// it is.
///
/// # Examples
///
/// ```
/// use percore::buf::{IoBuf, RecvBuf};
///
/// let buf = RecvBuf::from(b"abc".to_vec());
/// assert_eq!(&buf[..], b"abc");
/// assert_eq!(buf.bytes_init(), 3);
/// ```
#[derive(Debug)]
pub enum RecvBuf {
    /// A buffer of a [`BufRing`]; dropping it gives it back.
    Ring(ProvidedBuf),
    /// A plain owned buffer.
    Owned(Vec<u8>),
}

impl RecvBuf {
    /// Whether the bytes sit in a ring buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::RecvBuf;
    ///
    /// assert!(!RecvBuf::from(b"plain".to_vec()).is_ring());
    /// ```
    pub fn is_ring(&self) -> bool {
        matches!(self, RecvBuf::Ring(_))
    }

    /// Copies the bytes into a `Vec` (gives a ring buffer back at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::RecvBuf;
    ///
    /// // A ring buffer is copied out (and goes back to its ring); a plain one moves.
    /// assert_eq!(RecvBuf::from(b"abc".to_vec()).into_vec(), b"abc");
    /// ```
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            RecvBuf::Ring(b) => b.to_vec(),
            RecvBuf::Owned(v) => v,
        }
    }
}

impl From<ProvidedBuf> for RecvBuf {
    fn from(b: ProvidedBuf) -> RecvBuf {
        RecvBuf::Ring(b)
    }
}

impl From<Vec<u8>> for RecvBuf {
    fn from(v: Vec<u8>) -> RecvBuf {
        RecvBuf::Owned(v)
    }
}

impl Deref for RecvBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RecvBuf::Ring(b) => b,
            RecvBuf::Owned(v) => v,
        }
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            RecvBuf::Ring(b) => b,
            RecvBuf::Owned(v) => v,
        }
    }
}

// SAFETY: both variants are `IoBuf`s; this forwards to the one it holds, and
// the variant never changes while the runtime owns the value.
unsafe impl IoBuf for RecvBuf {
    fn stable_ptr(&self) -> *const u8 {
        match self {
            RecvBuf::Ring(b) => b.stable_ptr(),
            RecvBuf::Owned(v) => v.stable_ptr(),
        }
    }
    fn bytes_init(&self) -> usize {
        match self {
            RecvBuf::Ring(b) => b.bytes_init(),
            RecvBuf::Owned(v) => v.bytes_init(),
        }
    }
    fn bytes_total(&self) -> usize {
        match self {
            RecvBuf::Ring(b) => b.bytes_total(),
            RecvBuf::Owned(v) => v.bytes_total(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BGID_COUNT, BgidSet};

    #[test]
    fn bgid_set_never_hands_out_a_live_id_and_errors_when_full() {
        let mut ids = BgidSet::new();
        let mut seen = vec![false; BGID_COUNT];
        for _ in 0..BGID_COUNT {
            let id = ids.alloc().expect("a free id");
            assert!(!seen[id as usize], "id {id} handed out twice");
            seen[id as usize] = true;
        }
        assert_eq!(ids.alloc(), None, "all ids are taken");
        ids.release(7);
        assert_eq!(ids.alloc(), Some(7), "the only free id");
        assert_eq!(ids.alloc(), None);
    }

    #[test]
    fn bgid_set_wraps_past_live_ids() {
        let mut ids = BgidSet::new();
        let live: Vec<u16> = (0..100).map(|_| ids.alloc().unwrap()).collect();
        // Round the whole id space, one short-lived id at a time.
        for _ in 0..BGID_COUNT {
            let id = ids.alloc().unwrap();
            assert!(!live.contains(&id), "live id {id} handed out again");
            ids.release(id);
        }
    }
}
