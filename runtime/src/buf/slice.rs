use std::ops::{Bound, Deref, DerefMut, RangeBounds};

use super::{IoBuf, IoBufMut};

/// A sub-range of an owned buffer, itself an owned buffer.
///
/// Used to write the unsent rest of a buffer, or read into its free tail,
/// without copying. [`Slice::into_inner`] returns the whole buffer.
///
/// # Examples
///
/// ```
/// use percore::buf::IoBuf;
///
/// let s = vec![1u8, 2, 3, 4].slice(1..3);
/// assert_eq!(&s[..], &[2, 3]);
/// assert_eq!(s.into_inner(), vec![1, 2, 3, 4]);
/// ```
#[derive(Debug)]
pub struct Slice<B> {
    buf: B,
    begin: usize,
    end: usize,
}

impl<B: IoBuf> Slice<B> {
    /// A view of `range` inside `buf`. An unbounded end means the buffer's
    /// capacity, so a read can fill the spare room.
    ///
    /// # Panics
    ///
    /// If the range is reversed or ends past the buffer's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::Slice;
    ///
    /// let s = Slice::new(b"hello".to_vec(), 1..4);
    /// assert_eq!(&s[..], b"ell");
    /// ```
    pub fn new(buf: B, range: impl RangeBounds<usize>) -> Slice<B> {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => buf.bytes_total(),
        };
        assert!(
            begin <= end && end <= buf.bytes_total(),
            "slice {begin}..{end} out of a buffer of capacity {}",
            buf.bytes_total()
        );
        Slice { buf, begin, end }
    }

    /// Start offset in the underlying buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::IoBuf;
    ///
    /// assert_eq!(b"hello".to_vec().slice(2..).begin(), 2);
    /// ```
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// End offset in the underlying buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::IoBuf;
    ///
    /// let buf: Vec<u8> = Vec::with_capacity(16);
    /// assert_eq!(buf.slice(4..).end(), 16); // unbounded: up to the capacity
    /// ```
    pub fn end(&self) -> usize {
        self.end
    }

    /// The underlying buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::IoBuf;
    ///
    /// let s = b"hello".to_vec().slice(..2);
    /// assert_eq!(s.get_ref().len(), 5);
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.buf
    }

    /// Gives back the whole underlying buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::IoBuf;
    ///
    /// let buf = b"hello".to_vec().slice(1..2).into_inner();
    /// assert_eq!(buf, b"hello");
    /// ```
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: IoBuf> Deref for Slice<B> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let init = self.buf.bytes_init().clamp(self.begin, self.end);
        // SAFETY: bytes begin..init are initialized and inside the allocation.
        unsafe {
            std::slice::from_raw_parts(self.buf.stable_ptr().add(self.begin), init - self.begin)
        }
    }
}

impl<B: IoBufMut> DerefMut for Slice<B> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let init = self.buf.bytes_init().clamp(self.begin, self.end);
        // SAFETY: as in `deref`, and we hold the buffer mutably.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buf.stable_mut_ptr().add(self.begin),
                init - self.begin,
            )
        }
    }
}

// SAFETY: a sub-range of a stable buffer is stable; init is clamped to the range.
unsafe impl<B: IoBuf> IoBuf for Slice<B> {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: `begin <= bytes_total`, so the offset stays inside the allocation.
        unsafe { self.buf.stable_ptr().add(self.begin) }
    }
    fn bytes_init(&self) -> usize {
        self.buf.bytes_init().clamp(self.begin, self.end) - self.begin
    }
    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: writes land inside `begin..end` of the underlying buffer.
unsafe impl<B: IoBufMut> IoBufMut for Slice<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: as in `stable_ptr`.
        unsafe { self.buf.stable_mut_ptr().add(self.begin) }
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // Bytes before `begin` must already be initialized, or the underlying
        // buffer would claim bytes nobody wrote.
        assert!(
            self.buf.bytes_init() >= self.begin,
            "read into a slice that starts past the buffer's initialized bytes"
        );
        // SAFETY: the caller initialized `pos` bytes from `begin`, and every
        // byte before `begin` is initialized (checked above).
        unsafe { self.buf.set_init(self.begin + pos) };
    }
}
