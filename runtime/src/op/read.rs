use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::buf::{BufResult, IoBufMut, no_room};
use crate::fd::SharedFd;

/// `IORING_OP_READ`: reads into an owned buffer at `offset`
/// ([`CURRENT_POSITION`](super::CURRENT_POSITION) for pipes and sockets).
///
/// Reads into the buffer's spare room after its initialized bytes, and
/// returns the number of bytes read with the buffer. A buffer with no spare
/// room is an `InvalidInput` error, never `Ok(0)` (see
/// [`read_room`](crate::buf::read_room)); the SQE is then a no-op.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, Read, CURRENT_POSITION};
/// use std::io::Write;
///
/// percore::run(async {
///     let (reader, mut writer) = std::io::pipe().unwrap();
///     writer.write_all(b"hi").unwrap();
///     let fd = SharedFd::new(reader.into());
///     let (n, buf) = Op::new(Read::new(fd, Vec::with_capacity(16), CURRENT_POSITION)).await;
///     assert_eq!(n.unwrap(), 2);
///     assert_eq!(buf, b"hi");
/// });
/// ```
pub struct Read<B> {
    fd: SharedFd,
    buf: B,
    offset: u64,
    /// The buffer had no spare room: the SQE is a no-op and the result an error.
    no_room: bool,
}

impl<B: IoBufMut> Read<B> {
    /// Reads from `fd` at `offset` into `buf`'s spare capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Read};
    ///
    /// percore::run(async {
    ///     let file = std::fs::File::open("/proc/self/stat").unwrap();
    ///     let (res, buf) = Op::new(Read::new(SharedFd::new(file.into()), Vec::with_capacity(32), 0)).await;
    ///     assert_eq!(res.unwrap(), buf.len());
    /// });
    /// ```
    pub fn new(fd: SharedFd, buf: B, offset: u64) -> Read<B> {
        Read {
            fd,
            buf,
            offset,
            no_room: false,
        }
    }
}

// SAFETY: the buffer and the fd handle are owned by the op until its CQE;
// `IoBufMut` guarantees the pointer is stable when the op moves.
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    type Output = BufResult<usize, B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let (ptr, spare) = self.buf.spare_room();
        if spare == 0 {
            self.no_room = true;
            return opcode::Nop::new().build();
        }
        opcode::Read::new(types::Fd(self.fd.raw_fd()), ptr, super::sqe_len(spare))
            .offset(self.offset)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this op's own completion (the `complete`
        // contract, kept by the driver).
        unsafe { super::bytes_in(cqe, self.buf, self.no_room) }
    }
}

/// `IORING_OP_READV`: reads into several owned buffers at `offset`, filling
/// each buffer's spare room in turn. Buffers with no spare room in total
/// (or no buffers) are an `InvalidInput` error, never `Ok(0)`.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, Readv, CURRENT_POSITION};
/// use std::io::Write;
///
/// percore::run(async {
///     let (reader, mut writer) = std::io::pipe().unwrap();
///     writer.write_all(b"abcdef").unwrap();
///     let fd = SharedFd::new(reader.into());
///     let bufs = vec![Vec::with_capacity(2), Vec::with_capacity(8)];
///     let (n, bufs) = Op::new(Readv::new(fd, bufs, CURRENT_POSITION)).await;
///     assert_eq!(n.unwrap(), 6);
///     assert_eq!(bufs[0], b"ab");
///     assert_eq!(bufs[1], b"cdef");
/// });
/// ```
pub struct Readv<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// Heap-allocated so the kernel's view survives moves of the op.
    iovecs: Vec<libc::iovec>,
    offset: u64,
    /// No buffer had spare room: the SQE is a no-op and the result an error.
    no_room: bool,
}

impl<B: IoBufMut> Readv<B> {
    /// Reads from `fd` at `offset` into the spare room of `bufs`, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Readv};
    ///
    /// percore::run(async {
    ///     let file = std::fs::File::open("/proc/self/stat").unwrap();
    ///     let bufs = vec![Vec::with_capacity(4), Vec::with_capacity(4)];
    ///     let (res, bufs) = Op::new(Readv::new(SharedFd::new(file.into()), bufs, 0)).await;
    ///     assert_eq!(res.unwrap(), bufs[0].len() + bufs[1].len());
    /// });
    /// ```
    pub fn new(fd: SharedFd, bufs: Vec<B>, offset: u64) -> Readv<B> {
        Readv {
            fd,
            bufs,
            iovecs: Vec::new(),
            offset,
            no_room: false,
        }
    }
}

// SAFETY: the buffers and the iovec array are owned by the op until its CQE;
// the iovecs point into the buffers' stable allocations.
unsafe impl<B: IoBufMut> OpCode for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn create_entry(&mut self) -> squeue::Entry {
        self.iovecs = self.bufs.iter_mut().map(super::iovec_in).collect();
        if self.iovecs.iter().all(|iov| iov.iov_len == 0) {
            self.no_room = true;
            return opcode::Nop::new().build();
        }
        opcode::Readv::new(
            types::Fd(self.fd.raw_fd()),
            self.iovecs.as_ptr(),
            self.iovecs.len() as u32,
        )
        .offset(self.offset)
        .build()
    }

    unsafe fn complete(mut self, cqe: CqeResult) -> Self::Output {
        let res = cqe.result.map(|n| n as usize);
        if self.no_room {
            return (res.and(Err(no_room())), self.bufs);
        }
        if let Ok(n) = res {
            let mut left = n;
            for b in &mut self.bufs {
                // SAFETY: `cqe` is this op's own completion (the `complete`
                // contract): the kernel filled the iovecs, each a buffer's
                // spare room, in order; `mark_read` takes this one's part.
                let wrote = unsafe { super::mark_read(b, left) };
                left -= wrote;
            }
        }
        (res, self.bufs)
    }
}
