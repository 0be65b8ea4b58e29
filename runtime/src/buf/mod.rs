//! Owned buffers the kernel may read from or write into while an op is in flight.
//!
//! Provides the [`IoBuf`] / [`IoBufMut`] contracts and their impls for
//! `Vec<u8>`, `Box<[u8]>`, `bytes::Bytes`, `bytes::BytesMut`, static slices,
//! and [`Slice`] for a sub-range of any of them; [`AlignedBuf`] for O_DIRECT;
//! and the two kinds of buffers the kernel must know in advance: provided
//! buffer rings ([`BufRing`]) and registered fixed buffers ([`FixedBufPool`]).
//!
//! May not: touch the executor or submit ops. Only `ring.rs` and `fixed.rs`
//! reach the driver, and only to register and unregister their memory with
//! the ring (`Driver::submitter`), since the memory's owner must decide when
//! the kernel may stop using it.

mod aligned;
mod fixed;
mod ring;
mod slice;

pub use self::aligned::{AlignedBuf, DEFAULT_ALIGN};
pub use self::fixed::{BUF_TABLE_SLOTS, FixedBuf, FixedBufPool};
pub use self::ring::{BufRing, BufRingBuilder, ProvidedBuf, RecvBuf};
pub(crate) use self::ring::{
    CQE_BUFFER_SHIFT, CQE_F_BUF_MORE, CQE_F_BUFFER, PBUF_RING_INC, Pool as BufPool, RawEntry,
};
pub use self::slice::Slice;

/// The result of an owned-buffer op: the op's result and the buffer, handed back
/// whether the op succeeded or failed.
///
/// # Examples
///
/// ```
/// use percore::buf::BufResult;
/// use percore::fs::File;
///
/// async fn first_bytes(file: &File) -> BufResult<usize, Vec<u8>> {
///     file.read_at(Vec::with_capacity(16), 0).await
/// }
///
/// percore::run(async {
///     let file = File::open("/proc/self/stat").await.unwrap();
///     let (res, buf) = first_bytes(&file).await;
///     assert_eq!(res.unwrap(), buf.len());
/// });
/// ```
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// The room a read may fill in `buf`: its spare capacity after the
/// initialized bytes.
///
/// Every percore read (files, sockets, the [`op`](crate::op) read types)
/// reads **after** a buffer's initialized bytes, up to its capacity, the way
/// `Vec::extend` appends: `Vec::with_capacity(n)` offers `n` bytes, and a
/// buffer that is already full (`vec![0u8; 1024]`, a `Box<[u8]>`, a `Vec`
/// not cleared since the last read) offers none. Such a read fails with an
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error rather than
/// returning `Ok(0)`, which would read as end of stream.
///
/// # Errors
///
/// `InvalidInput` ("buffer has no spare capacity; clear() it or reserve")
/// when `bytes_total() == bytes_init()`, also for a zero-capacity `Vec::new()`.
///
/// # Examples
///
/// ```
/// use percore::buf::read_room;
///
/// assert_eq!(read_room(&Vec::<u8>::with_capacity(64)).unwrap(), 64);
/// let full = vec![0u8; 1024];
/// let err = read_room(&full).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// assert!(read_room(&Vec::<u8>::new()).is_err());
/// ```
pub fn read_room<B: IoBuf + ?Sized>(buf: &B) -> std::io::Result<usize> {
    match buf.bytes_total() - buf.bytes_init() {
        0 => Err(no_room()),
        room => Ok(room),
    }
}

/// The error of a read into a buffer with no spare room (see [`read_room`]).
pub(crate) fn no_room() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "buffer has no spare capacity; clear() it or reserve \
         (percore reads after a buffer's initialized bytes, up to its capacity)",
    )
}

/// Marks the first `n` bytes of `buf`'s [spare room](IoBufMut::spare_room)
/// initialized, at most all of it (with `MSG_TRUNC` a datagram socket
/// returns the datagram's real length, which may exceed the room: only the
/// room was written). Returns how many it marked.
///
/// # Safety
///
/// Those bytes were written (by the kernel, as the completion of a read into
/// the spare room reports).
#[inline]
pub(crate) unsafe fn mark_read<B: IoBufMut + ?Sized>(buf: &mut B, n: usize) -> usize {
    let init = buf.bytes_init();
    // The room's length only: no need for `spare_room`'s pointer here.
    let wrote = n.min(buf.bytes_total() - init);
    // SAFETY: the caller's promise; `wrote` stays inside the spare room.
    unsafe { buf.set_init(init + wrote) };
    wrote
}

/// A buffer the kernel may read from while an op is in flight.
///
/// # Safety
///
/// - `stable_ptr` must point to `bytes_init()` initialized bytes and stay valid
///   and unchanged while the runtime owns the buffer, even if the buffer value
///   itself is moved (the memory must be behind its own heap allocation or be
///   `'static`).
/// - `bytes_init() <= bytes_total()`.
///
/// # Examples
///
/// ```
/// use percore::buf::IoBuf;
///
/// let v = b"abc".to_vec();
/// assert_eq!((v.bytes_init(), &v[..]), (3, &b"abc"[..]));
/// let b = bytes::Bytes::from_static(b"static bytes");
/// assert_eq!(b.bytes_init(), 12);
/// ```
pub unsafe trait IoBuf: Unpin + 'static {
    /// Pointer to the start of the buffer.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialized bytes (what a write sends).
    fn bytes_init(&self) -> usize;
    /// Total capacity.
    fn bytes_total(&self) -> usize;

    /// A view of `range` inside this buffer, to write part of it or read into part of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::IoBuf;
    ///
    /// let s = b"hello world".to_vec().slice(6..);
    /// assert_eq!(&s[..], b"world");
    /// ```
    fn slice(self, range: impl std::ops::RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        Slice::new(self, range)
    }
}

/// A buffer the kernel may write into while an op is in flight.
///
/// # Safety
///
/// - `stable_mut_ptr` must point to `bytes_total()` writable bytes, valid and
///   stable under the same rules as [`IoBuf::stable_ptr`].
/// - `set_init(n)` may only be called after `n` bytes from the start were
///   initialized (the kernel reports how many it wrote).
/// - `spare_room`, if overridden, must return what the provided method does.
///
/// # Examples
///
/// ```
/// use percore::buf::{IoBuf, IoBufMut};
///
/// let mut v: Vec<u8> = Vec::with_capacity(8);
/// assert_eq!((v.bytes_init(), v.bytes_total()), (0, 8));
/// // SAFETY: writes 3 bytes into the spare capacity, then marks them initialized.
/// unsafe {
///     v.stable_mut_ptr().copy_from(b"xyz".as_ptr(), 3);
///     v.set_init(3);
/// }
/// assert_eq!(v, b"xyz");
/// ```
pub unsafe trait IoBufMut: IoBuf {
    /// Pointer to the start of the buffer, for the kernel to write into.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `pos` bytes as initialized (never shrinks).
    ///
    /// # Safety
    ///
    /// The first `pos` bytes must have been initialized.
    unsafe fn set_init(&mut self, pos: usize);

    /// The part a read fills: a pointer to the first byte after the
    /// initialized ones, and how many writable bytes follow it up to
    /// `bytes_total()` (zero for a full buffer; see [`read_room`]). Every
    /// percore read asks the kernel to write here.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::{IoBuf, IoBufMut};
    ///
    /// let mut v: Vec<u8> = Vec::with_capacity(8);
    /// v.extend_from_slice(b"ab");
    /// let (ptr, room) = v.spare_room();
    /// assert_eq!(room, v.bytes_total() - 2);
    /// // SAFETY: `ptr` points at `room` writable bytes right after the two
    /// // initialized ones; the byte written is then marked initialized.
    /// unsafe {
    ///     ptr.write(b'c');
    ///     v.set_init(3);
    /// }
    /// assert_eq!(v, b"abc");
    /// ```
    #[inline]
    fn spare_room(&mut self) -> (*mut u8, usize) {
        let init = self.bytes_init();
        // SAFETY: `init <= bytes_total()` (the `IoBuf` contract), so the
        // pointer stays inside the buffer or one past its end.
        let ptr = unsafe { self.stable_mut_ptr().add(init) };
        (ptr, self.bytes_total() - init)
    }
}

/// `IoBuf` for a byte container whose bytes are `as_ptr()`, `len()` of
/// them initialized, out of `$total()` (`capacity` if it can grow in place,
/// else `len`). Each use states, as its `SAFETY`, why that memory stays put
/// while the runtime owns the value.
macro_rules! io_buf_by_len {
    ($ty:ty, $total:ident) => {
        // SAFETY: as the macro's use states: the memory behind `as_ptr`
        // does not move or go away while the runtime owns the value, and
        // `len() <= $total()`.
        unsafe impl IoBuf for $ty {
            #[inline]
            fn stable_ptr(&self) -> *const u8 {
                self.as_ptr()
            }
            #[inline]
            fn bytes_init(&self) -> usize {
                self.len()
            }
            #[inline]
            fn bytes_total(&self) -> usize {
                self.$total()
            }
        }
    };
}

/// `IoBufMut` for a growable container whose spare capacity is writable
/// and whose `set_len` marks bytes initialized.
macro_rules! io_buf_mut_by_set_len {
    ($ty:ty) => {
        // SAFETY: as the macro's use states; `as_mut_ptr` is the `as_ptr` of
        // `IoBuf`, and the spare capacity up to `capacity()` is writable.
        unsafe impl IoBufMut for $ty {
            #[inline]
            fn stable_mut_ptr(&mut self) -> *mut u8 {
                self.as_mut_ptr()
            }
            #[inline]
            unsafe fn set_init(&mut self, pos: usize) {
                if self.len() < pos {
                    // SAFETY: the caller guarantees `pos` bytes are
                    // initialized, and the kernel wrote at most `capacity`.
                    unsafe { self.set_len(pos) };
                }
            }
        }
    };
}

// SAFETY: a Vec's heap allocation does not move when the Vec moves, and the
// runtime owns the Vec (so no one reallocates it) while the op is in flight.
io_buf_by_len!(Vec<u8>, capacity);
io_buf_mut_by_set_len!(Vec<u8>);

// SAFETY: a boxed slice's allocation is stable and fully initialized.
io_buf_by_len!(Box<[u8]>, len);

// SAFETY: as above; every byte is already initialized, so `set_init` is a no-op.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: `Bytes` points to immutable, reference-counted heap (or static)
// memory that stays put while the runtime holds one reference.
io_buf_by_len!(bytes::Bytes, len);

// SAFETY: `BytesMut` owns a heap region that only moves on reallocation,
// which cannot happen while the runtime owns it; its spare capacity is
// writable.
io_buf_by_len!(bytes::BytesMut, capacity);
io_buf_mut_by_set_len!(bytes::BytesMut);

// SAFETY: static memory never moves or goes away.
io_buf_by_len!(&'static [u8], len);
io_buf_by_len!(&'static str, len);

// SAFETY: a String is a Vec<u8> underneath; only its initialized part is sent.
io_buf_by_len!(String, capacity);

#[cfg(test)]
mod tests {
    use super::{IoBuf, IoBufMut};

    #[test]
    fn spare_room_starts_after_the_initialized_bytes_and_runs_to_the_capacity() {
        let mut v: Vec<u8> = Vec::with_capacity(16);
        v.extend_from_slice(b"abc");
        let (start, cap) = (v.as_ptr(), v.capacity());
        let (ptr, room) = v.spare_room();
        assert_eq!(ptr.cast_const(), start.wrapping_add(3));
        assert_eq!(room, cap - 3);

        let mut full: Box<[u8]> = vec![7u8; 5].into_boxed_slice();
        let end = full.as_ptr().wrapping_add(5);
        assert_eq!(full.spare_room(), (end.cast_mut(), 0));

        // A slice's room is measured from its own start and ends at its end.
        let mut s = v.slice(1..10);
        let begin = s.stable_ptr();
        let (ptr, room) = s.spare_room();
        assert_eq!(ptr.cast_const(), begin.wrapping_add(2));
        assert_eq!(room, 9 - 2);
        assert_eq!(room, s.bytes_total() - s.bytes_init());
    }

    #[test]
    fn mark_read_marks_at_most_the_room() {
        let mut v: Vec<u8> = Vec::with_capacity(4);
        v.push(1);
        let room = v.capacity() - 1;
        let (ptr, _) = v.spare_room();
        // SAFETY: fills the whole spare room before marking any of it.
        let marked = unsafe {
            ptr.write_bytes(9, room);
            super::mark_read(&mut v, room + 100)
        };
        assert_eq!(marked, room, "a count past the room (MSG_TRUNC) is capped");
        assert_eq!(v.len(), v.capacity());
        assert!(v[1..].iter().all(|&b| b == 9));
    }
}
