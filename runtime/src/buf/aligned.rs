//! A heap buffer whose address and capacity are multiples of an alignment,
//! as `O_DIRECT` needs.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::{IoBuf, IoBufMut};

/// Default alignment for direct I/O: the page size, which satisfies every
/// block device's logical block size.
pub const DEFAULT_ALIGN: usize = 4096;

/// An owned buffer aligned for direct I/O (`O_DIRECT`).
///
/// Its start address is a multiple of `align` and its capacity a multiple of
/// `align`, so reading into an empty one, or writing a full one, meets the
/// kernel's direct I/O rules at any aligned file offset. Use
/// [`File::dio_alignment`](crate::fs::File::dio_alignment) to learn what
/// the file's device asks; [`DEFAULT_ALIGN`] (4096) is always enough in practice.
///
/// # Examples
///
/// ```
/// use percore::buf::AlignedBuf;
///
/// let mut buf = AlignedBuf::new(4096);
/// assert_eq!(buf.as_ptr() as usize % 4096, 0);
/// buf.extend_from_slice(b"hello");
/// assert_eq!(&buf[..], b"hello");
/// assert_eq!(buf.capacity(), 4096);
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: `AlignedBuf` uniquely owns its allocation, like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the initialized bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// An empty buffer with room for at least `capacity` bytes (rounded up to
    /// a multiple of [`DEFAULT_ALIGN`]), aligned to [`DEFAULT_ALIGN`].
    ///
    /// # Panics
    ///
    /// If the allocation fails or `capacity` overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::{AlignedBuf, DEFAULT_ALIGN};
    ///
    /// let buf = AlignedBuf::new(1000);
    /// assert_eq!(buf.capacity(), DEFAULT_ALIGN); // rounded up
    /// assert_eq!(buf.as_ptr() as usize % DEFAULT_ALIGN, 0);
    /// ```
    pub fn new(capacity: usize) -> AlignedBuf {
        AlignedBuf::with_alignment(capacity, DEFAULT_ALIGN)
    }

    /// An empty buffer with room for at least `capacity` bytes, rounded up to
    /// a multiple of `align`, starting at a multiple of `align`.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = percore::buf::AlignedBuf::with_alignment(100, 512);
    /// assert_eq!(buf.capacity(), 512);
    /// assert_eq!(buf.as_ptr() as usize % 512, 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two, or the allocation fails.
    pub fn with_alignment(capacity: usize, align: usize) -> AlignedBuf {
        assert!(
            align.is_power_of_two(),
            "alignment {align} is not a power of two"
        );
        let size = capacity.max(1).div_ceil(align) * align;
        let layout = Layout::from_size_align(size, align).expect("aligned buffer too large");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf {
            ptr,
            len: 0,
            layout,
        }
    }

    /// A buffer of `len` zero bytes (capacity rounded up to [`DEFAULT_ALIGN`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = percore::buf::AlignedBuf::zeroed(4096);
    /// assert_eq!(buf.len(), 4096);
    /// assert!(buf.iter().all(|&b| b == 0));
    /// ```
    pub fn zeroed(len: usize) -> AlignedBuf {
        let mut buf = AlignedBuf::new(len);
        buf.resize(len, 0);
        buf
    }

    /// The alignment of the address and the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = percore::buf::AlignedBuf::with_alignment(512, 512);
    /// assert_eq!(buf.alignment(), 512);
    /// ```
    pub fn alignment(&self) -> usize {
        self.layout.align()
    }

    /// Capacity in bytes (a multiple of the alignment).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(percore::buf::AlignedBuf::new(8192).capacity(), 8192);
    /// ```
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// Initialized bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = percore::buf::AlignedBuf::new(4096);
    /// buf.extend_from_slice(b"abc");
    /// assert_eq!(buf.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is initialized.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(percore::buf::AlignedBuf::new(4096).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the contents (keeps the allocation), so a read can fill it again.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = percore::buf::AlignedBuf::zeroed(4096);
    /// buf.clear();
    /// assert!(buf.is_empty() && buf.capacity() == 4096);
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens the initialized part to `len` bytes (no effect if longer).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = percore::buf::AlignedBuf::new(4096);
    /// buf.extend_from_slice(b"hello");
    /// buf.truncate(2);
    /// assert_eq!(&buf[..], b"he");
    /// ```
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends `data`.
    ///
    /// # Panics
    ///
    /// If it does not fit in the capacity (the buffer never reallocates: its
    /// alignment is the point).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = percore::buf::AlignedBuf::new(4096);
    /// buf.extend_from_slice(b"block");
    /// assert_eq!(&buf[..], b"block");
    /// ```
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        assert!(
            data.len() <= self.capacity() - self.len,
            "{} bytes do not fit in an AlignedBuf with {} of {} bytes free",
            data.len(),
            self.capacity() - self.len,
            self.capacity()
        );
        // SAFETY: the destination range is inside the allocation (checked
        // above) and cannot overlap `data`, which the caller borrows.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                data.len(),
            )
        };
        self.len += data.len();
    }

    /// Sets the initialized length to `len`, filling new bytes with `value`.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut buf = percore::buf::AlignedBuf::new(4096);
    /// buf.resize(4096, 0xff); // a whole direct-I/O block
    /// assert!(buf.iter().all(|&b| b == 0xff));
    /// ```
    pub fn resize(&mut self, len: usize, value: u8) {
        assert!(
            len <= self.capacity(),
            "resize to {len} past capacity {}",
            self.capacity()
        );
        if len > self.len {
            // SAFETY: `self.len..len` lies inside the allocation.
            unsafe {
                std::ptr::write_bytes(self.ptr.as_ptr().add(self.len), value, len - self.len)
            };
        }
        self.len = len;
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialized and owned by us.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and we hold the buffer mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_alignment` with exactly this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("align", &self.alignment())
            .finish()
    }
}

// SAFETY: the allocation is owned by the buffer and never moves or
// reallocates; `len <= capacity`.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: as for `IoBuf`; the whole capacity is writable.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = self.len.max(pos.min(self.capacity()));
    }
}
