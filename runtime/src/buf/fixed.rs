//! Registered ("fixed") buffers: one allocation registered with the ring
//! once, then lent out buffer by buffer to `READ_FIXED` / `WRITE_FIXED` ops,
//! which skip the per-op page pinning of ordinary reads and writes.
//!
//! Registration goes through the current core's ring (the one place `buf/`
//! reaches the driver): the ring keeps a sparse table of
//! [`BUF_TABLE_SLOTS`] entries, and each pool takes one entry for its whole
//! allocation, so several pools can live on one ring.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::rc::Rc;
use std::task::Poll;

use super::{IoBuf, IoBufMut};
use crate::driver;
use crate::wait_queue::WaitQueue;

pub use crate::driver::BUF_TABLE_SLOTS;

/// The alignment of every fixed buffer (and of their sizes), so they also
/// serve `O_DIRECT` files.
const FIXED_ALIGN: usize = 4096;

/// Turns a failed registration into an error that says what to do.
fn registration_error(err: io::Error, bytes: usize) -> io::Error {
    if err.raw_os_error() != Some(libc::ENOMEM) {
        return err;
    }
    let limit = memlock_limit_text();
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "registering a fixed buffer pool of {} KiB failed (ENOMEM): registered buffers \
             are locked memory and count against RLIMIT_MEMLOCK (soft limit {limit}); raise \
             it with `ulimit -l` (LimitMEMLOCK= under systemd, --ulimit memlock= in Docker) \
             or use a smaller pool",
            bytes / 1024
        ),
    )
}

fn memlock_limit_text() -> String {
    match driver::current_capabilities().and_then(|c| c.memlock_limit) {
        Some(n) => format!("{} KiB", n / 1024),
        None => "unlimited or unknown".to_string(),
    }
}

struct PoolState {
    free: Vec<u32>,
}

struct Pool {
    mem: NonNull<u8>,
    layout: Layout,
    buf_size: usize,
    count: usize,
    /// Entry in the ring's buffer table.
    slot: u16,
    /// The driver whose table holds it.
    ring: u64,
    state: RefCell<PoolState>,
    /// `get`s waiting for a buffer, woken one per returned buffer. A `get`
    /// that is dropped (a timeout, a select) takes its entry out, and hands
    /// on a wake-up it got but did not use; see [`WaitQueue`].
    waiters: WaitQueue,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Every buffer is back (each holds an `Rc` of the pool), so no op
        // uses the memory. Clear the table entry if this is still our ring.
        let (ring, slot) = (self.ring, self.slot);
        driver::try_with_driver(|d| {
            if d.id() != ring {
                return;
            }
            let empty = libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            };
            // SAFETY: an empty iovec registers nothing; it drops the kernel's
            // reference to our pages. No op in flight uses the entry: every
            // `FixedBuf` holds an `Rc` of this pool, and the slot of an op
            // dropped in flight keeps its buffer until the CQE, so all ops
            // that named the entry have completed.
            if unsafe { d.register_buffers_update(slot as u32, &[empty]) }.is_ok() {
                d.release_buf_slot(slot);
            }
        });
        // The memory can go now even if the entry was not cleared (the ring
        // is gone or not current): the kernel holds its own page references,
        // and no op can name this entry any more, since all buffers are back.
        // SAFETY: `mem` was allocated in `FixedBufPool::new` with `layout`
        // and is freed only here, once. Nothing touches it afterwards: no
        // `FixedBuf` is left (each holds an `Rc` of the pool); the kernel
        // reads or writes a registered region only for an op that names its
        // entry, and only `ReadFixed`/`WriteFixed` do, taking the index from
        // a `FixedBuf`; an entry left registered keeps its table slot marked
        // used, so no later pool reuses it.
        unsafe { alloc::dealloc(self.mem.as_ptr(), self.layout) };
    }
}

/// A pool of equal-sized buffers registered with the current core's ring
/// (`IORING_REGISTER_BUFFERS`), for [`File::read_fixed_at`] and
/// [`File::write_fixed_at`] and the [`ReadFixed`] / [`WriteFixed`] ops.
///
/// The kernel pins the pool's pages once, at registration, instead of on
/// every op. Buffers are 4096-aligned, so they also work with `O_DIRECT`.
/// The pool stays registered while any of its buffers is alive, even when
/// the `FixedBufPool` handle is dropped first: each buffer holds the pool.
///
/// [`File::read_fixed_at`]: crate::fs::File::read_fixed_at
/// [`File::write_fixed_at`]: crate::fs::File::write_fixed_at
/// [`ReadFixed`]: crate::op::ReadFixed
/// [`WriteFixed`]: crate::op::WriteFixed
///
/// # Examples
///
/// ```
/// use percore::buf::FixedBufPool;
///
/// percore::run(async {
///     let pool = FixedBufPool::new(4, 4096).unwrap();
///     let mut buf = pool.get().await;
///     buf.extend_from_slice(b"hello");
///     assert_eq!(&buf[..], b"hello");
///     assert_eq!(pool.available(), 3);
///     drop(buf);
///     assert_eq!(pool.available(), 4);
/// });
/// ```
///
/// # Errors
///
/// Registered buffers are locked memory. Without `CAP_IPC_LOCK` they count
/// against `RLIMIT_MEMLOCK` (8 MiB by default on many systems, shared with
/// other registered memory); a pool that does not fit fails with
/// `ErrorKind::OutOfMemory` and a message naming the limit and `ulimit -l`.
///
/// # Kernel
///
/// Linux 5.19 or newer (sparse buffer tables).
#[derive(Clone)]
pub struct FixedBufPool {
    pool: Rc<Pool>,
}

impl FixedBufPool {
    /// Allocates `count` buffers of `size` bytes (rounded up to a multiple of
    /// 4096) and registers them with the current core's ring.
    ///
    /// # Errors
    ///
    /// See the type's docs: `OutOfMemory` over the memlock limit,
    /// `ResourceBusy` when the ring's buffer table is full or taken by other
    /// code, `Unsupported` on kernels older than 5.19.
    ///
    /// # Panics
    ///
    /// Outside a runtime, or if `count` is 0 or the sizes overflow.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     assert_eq!((pool.count(), pool.buf_size()), (2, 4096));
    /// });
    /// ```
    pub fn new(count: usize, size: usize) -> io::Result<FixedBufPool> {
        assert!(count > 0 && size > 0, "a fixed buffer pool needs buffers");
        let buf_size = size.div_ceil(FIXED_ALIGN) * FIXED_ALIGN;
        let total = buf_size
            .checked_mul(count)
            .expect("fixed buffer pool too large");
        if total > 1 << 30 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a fixed buffer pool may hold at most 1 GiB (the kernel's limit per registered \
                 region); use several pools",
            ));
        }
        let ring = driver::current_id()
            .expect("FixedBufPool::new used outside a runtime: call it inside percore::run");
        let layout = Layout::from_size_align(total, FIXED_ALIGN).expect("fixed pool layout");
        // SAFETY: `layout` has a non-zero size. Zeroed, so a buffer's spare
        // room never exposes stale heap contents.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let mem = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        let slot = match driver::with_driver(|d| d.take_buf_slot()) {
            Ok(slot) => slot,
            Err(err) => {
                // SAFETY: allocated just above with this layout.
                unsafe { alloc::dealloc(mem.as_ptr(), layout) };
                return Err(err);
            }
        };
        // Register before the pool exists: on failure there is nothing to
        // unwind but the allocation and the table slot.
        let iov = libc::iovec {
            iov_base: mem.as_ptr().cast(),
            iov_len: total,
        };
        // SAFETY: the iovec covers memory that the pool built below owns; the
        // pool clears the table entry before freeing it (or, if the ring is
        // gone, nothing can reach the entry any more). On failure the kernel
        // kept no reference and the memory is freed here.
        let res =
            driver::with_driver(|d| unsafe { d.register_buffers_update(slot as u32, &[iov]) });
        if let Err(err) = res {
            driver::with_driver(|d| d.release_buf_slot(slot));
            // SAFETY: allocated above with this layout; the kernel refused it.
            unsafe { alloc::dealloc(mem.as_ptr(), layout) };
            return Err(registration_error(err, total));
        }
        let pool = Pool {
            mem,
            layout,
            buf_size,
            count,
            slot,
            ring,
            state: RefCell::new(PoolState {
                free: (0..count as u32).rev().collect(),
            }),
            waiters: WaitQueue::new(),
        };
        Ok(FixedBufPool {
            pool: Rc::new(pool),
        })
    }

    /// Takes a free buffer (empty: length 0), or `None` if all are lent out.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let a = pool.try_get().unwrap();
    ///     let _b = pool.try_get().unwrap();
    ///     assert!(pool.try_get().is_none()); // all taken
    ///     drop(a); // back to the pool
    ///     assert!(pool.try_get().is_some());
    /// });
    /// ```
    pub fn try_get(&self) -> Option<FixedBuf> {
        let index = self.pool.state.borrow_mut().free.pop()?;
        Some(FixedBuf {
            pool: self.pool.clone(),
            index,
            len: 0,
        })
    }

    /// Takes a free buffer, waiting until one is returned if all are lent out.
    ///
    /// # Cancellation
    ///
    /// Dropping the future takes nothing from the pool and leaves no place
    /// in its queue: a buffer returned meanwhile goes to the next waiting
    /// `get`.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let buf = pool.get().await; // waits while every buffer is taken
    ///     assert_eq!(buf.capacity(), 4096);
    /// });
    /// ```
    pub async fn get(&self) -> FixedBuf {
        let mut waiter = self.pool.waiters.waiter();
        poll_fn(|cx| {
            if let Some(buf) = self.try_get() {
                waiter.done(|| self.available() > 0);
                return Poll::Ready(buf);
            }
            // The pool lives on this thread: no buffer can come back between
            // `try_get` and `register`, so there is nothing to re-check.
            waiter.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Buffers not lent out now.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let _held = pool.get().await;
    ///     assert_eq!(pool.available(), 1);
    /// });
    /// ```
    pub fn available(&self) -> usize {
        self.pool.state.borrow().free.len()
    }

    /// Number of buffers.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     assert_eq!(pool.count(), 2);
    /// });
    /// ```
    pub fn count(&self) -> usize {
        self.pool.count
    }

    /// Size of each buffer in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 1000) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     assert_eq!(pool.buf_size(), 4096); // rounded up to a page
    /// });
    /// ```
    pub fn buf_size(&self) -> usize {
        self.pool.buf_size
    }
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("count", &self.pool.count)
            .field("buf_size", &self.pool.buf_size)
            .field("available", &self.available())
            .field("slot", &self.pool.slot)
            .finish()
    }
}

/// One buffer lent out by a [`FixedBufPool`]; it goes back to the pool when
/// dropped. Works as an ordinary owned buffer too ([`IoBuf`], [`IoBufMut`]).
///
/// # Examples
///
/// ```
/// use percore::buf::{FixedBufPool, IoBuf};
///
/// percore::run(async {
///     let pool = FixedBufPool::new(1, 512).unwrap();
///     let mut buf = pool.try_get().unwrap();
///     assert_eq!(buf.bytes_total(), 4096);
///     buf.extend_from_slice(&[7; 10]);
///     assert_eq!(buf.len(), 10);
///     assert!(pool.try_get().is_none());
/// });
/// ```
pub struct FixedBuf {
    pool: Rc<Pool>,
    index: u32,
    len: usize,
}

impl FixedBuf {
    fn ptr(&self) -> *mut u8 {
        // SAFETY: `index < count`, so the offset stays inside the pool's allocation.
        unsafe {
            self.pool
                .mem
                .as_ptr()
                .add(self.index as usize * self.pool.buf_size)
        }
    }

    /// The entry of the ring's buffer table this buffer belongs to (the SQE's `buf_index`).
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let (a, b) = (pool.get().await, pool.get().await);
    ///     // One registered region per pool: its buffers share the entry.
    ///     assert_eq!(a.buf_index(), b.buf_index());
    /// });
    /// ```
    pub fn buf_index(&self) -> u16 {
        self.pool.slot
    }

    /// Initialized bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let mut buf = pool.get().await;
    ///     buf.extend_from_slice(b"abc");
    ///     assert_eq!(buf.len(), 3);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is initialized.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     assert!(pool.get().await.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     assert_eq!(pool.get().await.capacity(), pool.buf_size());
    /// });
    /// ```
    pub fn capacity(&self) -> usize {
        self.pool.buf_size
    }

    /// Forgets the contents, so a read can fill the buffer again.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let mut buf = pool.get().await;
    ///     buf.extend_from_slice(b"abc");
    ///     buf.clear();
    ///     assert!(buf.is_empty());
    /// });
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `data`.
    ///
    /// # Panics
    ///
    /// If it does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     let pool = match percore::buf::FixedBufPool::new(2, 4096) {
    ///         Ok(pool) => pool,
    ///         Err(_) => return, // registered buffers need 5.19 and locked memory
    ///     };
    ///     let mut buf = pool.get().await;
    ///     buf.extend_from_slice(b"registered");
    ///     assert_eq!(&buf[..], b"registered");
    /// });
    /// ```
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(
            data.len() <= self.capacity() - self.len,
            "{} bytes do not fit in a fixed buffer with {} bytes free",
            data.len(),
            self.capacity() - self.len
        );
        // SAFETY: the destination is inside this buffer (checked above) and
        // does not overlap `data`, which the caller borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr().add(self.len), data.len())
        };
        self.len += data.len();
    }

    /// Whether this buffer belongs to the ring that is current now.
    pub(crate) fn registered_here(&self) -> bool {
        driver::current_id() == Some(self.pool.ring)
    }
}

impl Deref for FixedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of this buffer are initialized (the
        // pool's memory is zeroed at allocation) and lent to us alone.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and we hold the buffer mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        self.pool.state.borrow_mut().free.push(self.index);
        self.pool.waiters.wake_one();
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("buf_index", &self.pool.slot)
            .field("index", &self.index)
            .field("len", &self.len)
            .finish()
    }
}

// SAFETY: the buffer's memory belongs to the pool, which it keeps alive; no
// other `FixedBuf` is lent the same range; `len <= capacity`.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.pool.buf_size
    }
}

// SAFETY: as for `IoBuf`; the whole buffer is writable.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = self.len.max(pos.min(self.pool.buf_size));
    }
}
