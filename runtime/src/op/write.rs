use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::buf::{BufResult, IoBuf};
use crate::fd::SharedFd;

/// `IORING_OP_WRITE`: writes an owned buffer's initialized bytes at `offset`
/// ([`CURRENT_POSITION`](super::CURRENT_POSITION) for pipes, sockets and append).
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, Write, CURRENT_POSITION};
/// use std::io::Read;
///
/// percore::run(async {
///     let (mut reader, writer) = std::io::pipe().unwrap();
///     let fd = SharedFd::new(writer.into());
///     let (n, _buf) = Op::new(Write::new(fd, b"hey".to_vec(), CURRENT_POSITION)).await;
///     assert_eq!(n.unwrap(), 3);
///     let mut got = [0u8; 3];
///     reader.read_exact(&mut got).unwrap();
///     assert_eq!(&got, b"hey");
/// });
/// ```
pub struct Write<B> {
    fd: SharedFd,
    buf: B,
    offset: u64,
}

impl<B: IoBuf> Write<B> {
    /// Writes `buf` to `fd` at `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-op-{}-write", std::process::id()));
    /// percore::run(async {
    ///     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     let (res, _) = Op::new(Write::new(fd, b"hello".to_vec(), 0)).await;
    ///     assert_eq!(res.unwrap(), 5);
    ///     assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new(fd: SharedFd, buf: B, offset: u64) -> Write<B> {
        Write { fd, buf, offset }
    }
}

// SAFETY: the buffer and fd handle are owned by the op until its CQE.
unsafe impl<B: IoBuf> OpCode for Write<B> {
    type Output = BufResult<usize, B>;

    fn create_entry(&mut self) -> squeue::Entry {
        let len = super::sqe_len(self.buf.bytes_init());
        opcode::Write::new(types::Fd(self.fd.raw_fd()), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.buf)
    }
}

/// `IORING_OP_WRITEV`: writes several owned buffers in one op.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::{Op, Writev, CURRENT_POSITION};
/// use std::io::Read;
///
/// percore::run(async {
///     let (mut reader, writer) = std::io::pipe().unwrap();
///     let fd = SharedFd::new(writer.into());
///     let bufs = vec![b"ab".to_vec(), b"cd".to_vec()];
///     let (n, _bufs) = Op::new(Writev::new(fd, bufs, CURRENT_POSITION)).await;
///     assert_eq!(n.unwrap(), 4);
///     let mut got = [0u8; 4];
///     reader.read_exact(&mut got).unwrap();
///     assert_eq!(&got, b"abcd");
/// });
/// ```
pub struct Writev<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// Heap-allocated so the kernel's view survives moves of the op.
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

impl<B: IoBuf> Writev<B> {
    /// Writes `bufs` to `fd` at `offset`, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, Writev};
    ///
    /// let path = std::env::temp_dir().join(format!("percore-op-{}-writev", std::process::id()));
    /// percore::run(async {
    ///     let file = std::fs::File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     let (res, _) = Op::new(Writev::new(fd, vec![b"ab".to_vec(), b"cd".to_vec()], 0)).await;
    ///     assert_eq!(res.unwrap(), 4);
    ///     assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
    /// });
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn new(fd: SharedFd, bufs: Vec<B>, offset: u64) -> Writev<B> {
        Writev {
            fd,
            bufs,
            iovecs: Vec::new(),
            offset,
        }
    }
}

// SAFETY: the buffers and the iovec array are owned by the op until its CQE.
unsafe impl<B: IoBuf> OpCode for Writev<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn create_entry(&mut self) -> squeue::Entry {
        self.iovecs = self.bufs.iter().map(super::iovec_out).collect();
        opcode::Writev::new(
            types::Fd(self.fd.raw_fd()),
            self.iovecs.as_ptr(),
            self.iovecs.len() as u32,
        )
        .offset(self.offset)
        .build()
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.bufs)
    }
}
