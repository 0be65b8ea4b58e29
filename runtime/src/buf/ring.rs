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
use std::cell::Cell;
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
    /// Next buffer group id to try on this thread (ids are per ring; a ring
    /// belongs to one thread).
    static NEXT_BGID: Cell<u16> = const { Cell::new(0) };
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
    /// [`Capabilities::buf_ring`](crate::Capabilities::buf_ring)); the error
    /// of the registration otherwise (`ENOMEM` under a low memlock limit).
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
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "provided-buffer rings need Linux 5.19 (IORING_REGISTER_PBUF_RING); \
                 receive into owned buffers instead",
            ));
        }
        let ring_layout = Layout::from_size_align(
            (entries as usize * std::mem::size_of::<RawEntry>()).max(PAGE),
            PAGE,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let bufs_layout = Layout::from_size_align(entries as usize * buf_len, 64)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: both layouts have a non-zero size.
        let (ring, bufs) = unsafe { (alloc_zeroed(ring_layout), alloc_zeroed(bufs_layout)) };
        let (Some(ring), Some(bufs)) = (NonNull::new(ring.cast::<RawEntry>()), NonNull::new(bufs))
        else {
            std::alloc::handle_alloc_error(ring_layout);
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

        let mut last_err = None;
        for _ in 0..64 {
            let bgid = NEXT_BGID.with(|n| {
                let id = n.get();
                n.set(id.wrapping_add(1));
                id
            });
            // SAFETY: the entry array is page aligned, holds `entries`
            // entries, and stays allocated until the ring is unregistered
            // (or is leaked when that is impossible, see `Drop`).
            let res = driver::with_driver(|d| unsafe {
                d.submitter()
                    .register_buf_ring_with_flags(ring.as_ptr() as u64, entries, bgid, 0)
            });
            match res {
                Ok(()) => {
                    inner.bgid = bgid;
                    inner.registered = true;
                    return Ok(BufRing {
                        inner: Rc::new(inner),
                    });
                }
                // Another ring on this io_uring uses the id: take the next.
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) => last_err = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EEXIST)))
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
        // SAFETY: allocated in `new` with these layouts; no op can pick a
        // buffer any more (every such op holds a clone of this ring) and no
        // `RingBuf` is alive (each holds a clone too).
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
        // Unregister from the io_uring we registered with. If that ring is not
        // current (the ring is used from a different runtime, or the driver is
        // busy tearing down), the kernel may still read the entry array until
        // the ring is destroyed, so that small array is leaked. The buffers
        // are only touched by ops, and no op is left: they are freed.
        if !self.registered {
            self.free(false);
            return;
        }
        let bgid = self.bgid;
        let owner = &self.owner;
        let unregistered = driver::try_with_driver(|d| {
            Rc::ptr_eq(&d.capabilities(), owner) && d.submitter().unregister_buf_ring(bgid).is_ok()
        })
        .unwrap_or(false);
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
