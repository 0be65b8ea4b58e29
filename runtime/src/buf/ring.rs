//! Provided-buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19).
//!
//! A [`BufRing`] is a pool of equal-sized receive buffers that the kernel
//! picks from when data arrives, so thousands of idle connections can wait
//! for data without holding one buffer each. A completion names the buffer it
//! filled; [`RingBuf`] owns that buffer until it is dropped, which hands it
//! back to the kernel.
//!
//! Unlike the rest of `buf/`, this module talks to the driver: a ring must be
//! registered with (and unregistered from) the current core's io_uring, and
//! only here do we know when that is safe.
//!
//! Lifetime: the registration and the memory live in one `Rc`. Each op that
//! may pick from the ring and each [`RingBuf`] hold a clone, so the ring is
//! unregistered and freed only when no op can use it any more.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use super::IoBuf;
use crate::driver::{self, Capabilities};

/// One entry of the ring shared with the kernel (`struct io_uring_buf`).
/// The `resv` field of entry 0 is the ring's tail.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
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

struct Inner {
    bgid: u16,
    entries: u16,
    buf_len: u32,
    /// The entry array the kernel reads; page aligned.
    ring: NonNull<RawEntry>,
    ring_layout: Layout,
    /// `entries * buf_len` bytes of buffers.
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    /// Our copy of the tail we last published.
    tail: Cell<u16>,
    /// Buffers handed out by completions and not yet given back.
    held: Cell<usize>,
    /// Identifies the driver the ring is registered with (the pointer of its
    /// capabilities, kept alive by this clone).
    owner: Rc<Capabilities>,
    /// Whether the kernel knows the ring (registration succeeded).
    registered: bool,
}

impl BufRing {
    /// Allocates `entries` buffers of `buf_len` bytes and registers them with
    /// the current core's ring.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `entries` is not a power of two in `1..=32768` or
    /// `buf_len` is zero or above `u32::MAX`; `Unsupported` if the kernel has
    /// no provided-buffer rings (before 5.19, see
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
        let owner = driver::current_capabilities()
            .expect("BufRing::new outside a runtime: call it inside percore::run");
        if !owner.buf_ring {
            let why = if owner.driver == crate::DriverKind::Epoll {
                "provided-buffer rings need io_uring, and this core runs the epoll driver; \
                 receive into owned buffers instead"
            } else {
                "provided-buffer rings need Linux 5.19 (IORING_REGISTER_PBUF_RING); \
                 receive into owned buffers instead"
            };
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let ring_layout = Layout::from_size_align(
            (entries as usize * std::mem::size_of::<RawEntry>()).max(PAGE),
            PAGE,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let bufs_layout = Layout::from_size_align(entries as usize * buf_len, 64)
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
        let mut inner = Inner {
            bgid: 0,
            entries,
            buf_len: buf_len as u32,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: Cell::new(0),
            held: Cell::new(0),
            owner,
            registered: false,
        };
        for bid in 0..entries {
            inner.push(bid);
        }
        inner.publish();

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
            // (or is leaked when that is impossible, see `Drop`).
            let res = driver::with_driver(|d| unsafe {
                d.register_buf_ring(ring.as_ptr() as u64, entries, bgid)
            });
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
        // On error `inner` drops unregistered: it frees both allocations.
        inner.bgid = res?;
        inner.registered = true;
        Ok(BufRing {
            inner: Rc::new(inner),
        })
    }

    /// Whether the ring is registered with the current runtime's io_uring
    /// (the one an op submitted now goes to).
    pub(crate) fn is_current(&self) -> bool {
        driver::try_with_driver(|d| Rc::ptr_eq(&d.capabilities(), &self.inner.owner))
            .unwrap_or(false)
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
        self.inner.entries
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
        self.inner.buf_len as usize
    }

    /// Buffers not held by a [`RingBuf`]: in the ring, or picked by the kernel
    /// for data whose completion was not taken yet.
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
    ///     assert_eq!(ring.available(), 7); // one is lent out
    ///     drop(buf);
    ///     assert_eq!(ring.available(), 8);
    /// });
    /// ```
    pub fn available(&self) -> usize {
        self.inner.entries as usize - self.inner.held.get()
    }

    /// Takes the buffer `bid` that the kernel filled with `len` bytes.
    ///
    /// # Safety
    ///
    /// - `bid` must come from the completion (`IORING_CQE_F_BUFFER`) of an op
    ///   that picked it from this ring, and be taken at most once per such
    ///   completion: the kernel no longer owns it, and no other `RingBuf`
    ///   does.
    /// - `len` must be the number of bytes that completion reports.
    pub(crate) unsafe fn take(&self, bid: u16, len: usize) -> RingBuf {
        assert!(
            bid < self.inner.entries && len <= self.inner.buf_len as usize,
            "buffer {bid} with {len} bytes is not from this ring"
        );
        self.inner.held.set(self.inner.held.get() + 1);
        RingBuf {
            ring: self.inner.clone(),
            bid,
            len: len as u32,
        }
    }

    /// Gives buffer `bid` back to the kernel without looking at it (the
    /// completion that picked it has no reader any more).
    ///
    /// # Safety
    ///
    /// As for [`BufRing::take`]: `bid` came from a completion of this ring
    /// and no [`RingBuf`] owns it.
    pub(crate) unsafe fn give_back(&self, bid: u16) {
        assert!(
            bid < self.inner.entries,
            "buffer {bid} is not from this ring"
        );
        self.inner.push(bid);
        self.inner.publish();
    }
}

impl Inner {
    /// Writes buffer `bid` into the slot at our tail (not yet visible).
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let idx = (tail & (self.entries - 1)) as usize;
        // SAFETY: `idx < entries`, inside the entry array. The kernel reads
        // only slots between its head and the published tail, and this slot
        // is at or after the tail, so nobody else touches it now. Fields are
        // written through raw pointers: `resv` of slot 0 is the shared tail.
        unsafe {
            let entry = self.ring.as_ptr().add(idx);
            std::ptr::addr_of_mut!((*entry).addr).write(self.buf_ptr(bid) as u64);
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

    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        // SAFETY: `bid < entries`, so the offset stays inside the buffers.
        unsafe { self.bufs.as_ptr().add(bid as usize * self.buf_len as usize) }
    }

    /// Frees the buffers, and the entry array unless the kernel may still
    /// read it (`keep_ring`), in which case it is leaked.
    fn free(&self, keep_ring: bool) {
        // SAFETY: allocated in `new` with these layouts, and called once,
        // from `Drop`; no op can pick a buffer any more (every op that
        // selects from this group holds a clone of this ring, the `OpCode`
        // contract) and no `RingBuf` is alive (each holds a clone too).
        unsafe {
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
            if !keep_ring {
                dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No op can pick a buffer of this ring any more: every op that
        // selects from it holds a clone of this `Rc` (the `OpCode` contract),
        // and so does every `RingBuf`.
        if !self.registered {
            self.free(false);
            return;
        }
        // Unregister from the io_uring we registered with. If that ring is not
        // current (the ring is used from a different runtime, or the driver is
        // busy tearing down) or the kernel refuses, the kernel keeps the
        // group and may read its entry array until the io_uring is destroyed:
        // that small array is leaked, and the id stays reserved so no new
        // ring of this thread is told to use it. The buffers are freed: the
        // kernel touches them only for an op that selects from this group,
        // and none is left (see above).
        let bgid = self.bgid;
        let owner = &self.owner;
        let unregistered = driver::try_with_driver(|d| {
            Rc::ptr_eq(&d.capabilities(), owner) && d.unregister_buf_ring(bgid).is_ok()
        })
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
        }
        self.free(!unregistered);
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("bgid", &self.inner.bgid)
            .field("entries", &self.inner.entries)
            .field("buf_len", &self.inner.buf_len)
            .field("available", &self.available())
            .finish()
    }
}

/// One buffer of a [`BufRing`] holding received bytes. Dropping it gives the
/// buffer back to the kernel.
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
///     let ring = BufRing::new(4, 1024).unwrap();
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
pub struct RingBuf {
    ring: Rc<Inner>,
    bid: u16,
    len: u32,
}

impl RingBuf {
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
        self.bid
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

impl Deref for RingBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: this guard owns buffer `bid` (the kernel handed it over and
        // gets it back only on drop); the kernel wrote its first `len` bytes.
        unsafe { std::slice::from_raw_parts(self.ring.buf_ptr(self.bid), self.len as usize) }
    }
}

impl DerefMut for RingBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and this guard is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ring.buf_ptr(self.bid), self.len as usize) }
    }
}

// SAFETY: the buffer lives in the ring's allocation, which this guard keeps
// alive (an `Rc`) and which never moves; the kernel does not touch it until
// the guard drops; its first `len` bytes are initialized.
unsafe impl IoBuf for RingBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ring.buf_ptr(self.bid)
    }
    fn bytes_init(&self) -> usize {
        self.len as usize
    }
    fn bytes_total(&self) -> usize {
        self.len as usize
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.held.set(self.ring.held.get() - 1);
        self.ring.push(self.bid);
        self.ring.publish();
    }
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

/// Received bytes: a [`RingBuf`] when they came through a buffer ring, or an
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
    Ring(RingBuf),
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

impl From<RingBuf> for RecvBuf {
    fn from(b: RingBuf) -> RecvBuf {
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
