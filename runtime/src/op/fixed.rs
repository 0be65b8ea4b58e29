//! Ops on registered resources: `IORING_OP_READ_FIXED` / `WRITE_FIXED` with
//! buffers from a [`FixedBufPool`](crate::buf::FixedBufPool), and
//! [`FixedFd`], a descriptor registered in the ring's file table so ops skip
//! the per-op file lookup.
//!
//! Registering a file touches the ring's file table through the driver's
//! submitter; that is the only thing here beyond building SQEs.

use std::fmt;
use std::io;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{CqeResult, OpCode};
use crate::buf::{BufResult, FixedBuf, IoBuf};
use crate::driver;
use crate::fd::SharedFd;

pub use crate::driver::FILE_TABLE_SLOTS;

struct FixedInner {
    slot: u32,
    /// The driver whose table holds it.
    ring: u64,
    /// Keeps the descriptor itself open too, for ops that take a plain fd.
    _fd: SharedFd,
}

impl Drop for FixedInner {
    fn drop(&mut self) {
        let (ring, slot) = (self.ring, self.slot);
        driver::try_with_driver(|d| {
            if d.id() == ring && d.register_files_update(slot, &[-1]).is_ok() {
                d.release_file_slot(slot);
            }
        });
    }
}

/// A descriptor registered in the current core's ring file table
/// (`IORING_REGISTER_FILES`): ops name it by its slot, so the kernel skips
/// looking the file up (and reference-counting it) on every op.
///
/// Ops in flight hold a clone, so the slot is cleared only after the last of
/// them completes, like [`SharedFd`]. A slot means something only on its own
/// ring: an op that names a `FixedFd` panics when it is submitted on another
/// runtime.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::FixedFd;
///
/// percore::run(async {
///     let file = std::fs::File::open("/dev/zero").unwrap();
///     let fixed = FixedFd::register(&SharedFd::new(file.into())).unwrap();
///     assert!(fixed.slot() < percore::op::FILE_TABLE_SLOTS);
/// });
/// ```
#[derive(Clone)]
pub struct FixedFd {
    inner: Rc<FixedInner>,
}

impl FixedFd {
    /// Registers `fd` with the current core's ring.
    ///
    /// # Errors
    ///
    /// `ResourceBusy` if the ring's file table is full or was registered by
    /// other code, or the kernel's error.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::FixedFd;
    ///
    /// percore::run(async {
    ///     let file = std::fs::File::open("/dev/zero").unwrap();
    ///     let fd = SharedFd::new(file.into());
    ///     // Registered files skip the fd lookup on every op (the table is 5.19+).
    ///     if let Ok(fixed) = FixedFd::register(&fd) {
    ///         assert!(fixed.slot() < percore::op::FILE_TABLE_SLOTS);
    ///     }
    /// });
    /// ```
    pub fn register(fd: &SharedFd) -> io::Result<FixedFd> {
        let (ring, slot) = driver::try_with_driver(|d| d.take_file_slot().map(|s| (d.id(), s)))
            .expect("FixedFd::register used outside a runtime: call it inside percore::run")?;
        let res = driver::with_driver(|d| {
            let res = d.register_files_update(slot, &[fd.raw_fd()]);
            if res.is_err() {
                d.release_file_slot(slot);
            }
            res
        });
        res?;
        Ok(FixedFd {
            inner: Rc::new(FixedInner {
                slot,
                ring,
                _fd: fd.clone(),
            }),
        })
    }

    /// The slot in the ring's file table.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::fd::SharedFd;
    /// use percore::op::FixedFd;
    ///
    /// percore::run(async {
    ///     let (a, b) = (std::fs::File::open("/dev/zero").unwrap(), std::fs::File::open("/dev/zero").unwrap());
    ///     let (a, b) = (SharedFd::new(a.into()), SharedFd::new(b.into()));
    ///     if let (Ok(a), Ok(b)) = (FixedFd::register(&a), FixedFd::register(&b)) {
    ///         assert_ne!(a.slot(), b.slot());
    ///     }
    /// });
    /// ```
    pub fn slot(&self) -> u32 {
        self.inner.slot
    }
}

impl fmt::Debug for FixedFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FixedFd").field(&self.inner.slot).finish()
    }
}

/// The file an op works on: a plain descriptor or a registered one.
///
/// # Examples
///
/// ```
/// use percore::fd::SharedFd;
/// use percore::op::Target;
///
/// let file = std::fs::File::open("/dev/null").unwrap();
/// let target = Target::from(SharedFd::new(file.into()));
/// assert!(matches!(target, Target::Fd(_)));
/// ```
#[derive(Clone, Debug)]
pub enum Target {
    /// An ordinary descriptor.
    Fd(SharedFd),
    /// A slot of the ring's file table.
    Fixed(FixedFd),
}

impl Target {
    /// # Panics
    ///
    /// If a [`FixedFd`] is used on another runtime than the one it was
    /// registered with: its slot would name whatever file that ring's table
    /// holds there.
    fn sqe_target(&self) -> Sqe {
        match self {
            Target::Fd(fd) => Sqe::Fd(types::Fd(fd.raw_fd())),
            Target::Fixed(f) => {
                let current = driver::current_id() == Some(f.inner.ring);
                assert!(
                    current,
                    "percore: a FixedFd was used on a different runtime than the one it was registered with"
                );
                Sqe::Fixed(types::Fixed(f.slot()))
            }
        }
    }
}

enum Sqe {
    Fd(types::Fd),
    Fixed(types::Fixed),
}

/// The entry `$build` makes with `$fd` bound to the target, whichever kind
/// it is: the opcode builders take either, as different types.
macro_rules! with_target {
    ($sqe:expr, |$fd:ident| $build:expr) => {
        match $sqe {
            Sqe::Fd($fd) => $build,
            Sqe::Fixed($fd) => $build,
        }
    };
}

impl From<SharedFd> for Target {
    fn from(fd: SharedFd) -> Target {
        Target::Fd(fd)
    }
}

impl From<FixedFd> for Target {
    fn from(fd: FixedFd) -> Target {
        Target::Fixed(fd)
    }
}

/// `IORING_OP_READ_FIXED`: reads at `offset` into the spare room of a
/// registered buffer. A full buffer is an `InvalidInput` error, never
/// `Ok(0)` (see [`read_room`](crate::buf::read_room)).
///
/// # Examples
///
/// ```
/// use percore::buf::FixedBufPool;
/// use percore::fd::SharedFd;
/// use percore::op::{Op, ReadFixed};
///
/// percore::run(async {
///     let pool = FixedBufPool::new(1, 4096).unwrap();
///     let fd = SharedFd::new(std::fs::File::open("/dev/zero").unwrap().into());
///     let (n, buf) = Op::new(ReadFixed::new(fd, pool.get().await, 0)).await;
///     assert_eq!(n.unwrap(), 4096);
///     assert!(buf.iter().all(|&b| b == 0));
/// });
/// ```
pub struct ReadFixed {
    target: Target,
    buf: FixedBuf,
    offset: u64,
    /// The buffer had no spare room: the SQE is a no-op and the result an error.
    no_room: bool,
}

impl ReadFixed {
    /// Reads from `target` at `offset` into `buf`'s spare room.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::FixedBufPool;
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, ReadFixed};
    ///
    /// percore::run(async {
    ///     let Ok(pool) = FixedBufPool::new(1, 4096) else {
    ///         return; // registered buffers need 5.19 and locked memory
    ///     };
    ///     let zero = SharedFd::new(std::fs::File::open("/dev/zero").unwrap().into());
    ///     let (res, buf) = Op::new(ReadFixed::new(zero, pool.get().await, 0)).await;
    ///     assert_eq!(res.unwrap(), 4096);
    ///     assert!(buf.iter().all(|&b| b == 0));
    /// });
    /// ```
    pub fn new(target: impl Into<Target>, buf: FixedBuf, offset: u64) -> ReadFixed {
        ReadFixed {
            target: target.into(),
            buf,
            offset,
            no_room: false,
        }
    }
}

// SAFETY: the buffer (which keeps its registered pool alive) and the fd
// handle are owned by the op until its CQE; the kernel also checks that the
// address range lies inside the registered region named by `buf_index`.
unsafe impl OpCode for ReadFixed {
    type Output = BufResult<usize, FixedBuf>;

    fn create_entry(&mut self) -> squeue::Entry {
        let (ptr, room) = crate::buf::IoBufMut::spare_room(&mut self.buf);
        if room == 0 {
            self.no_room = true;
            return opcode::Nop::new().build();
        }
        let len = super::sqe_len(room);
        let index = self.buf.buf_index();
        let sqe = self.target.sqe_target();
        with_target!(sqe, |fd| opcode::ReadFixed::new(fd, ptr, len, index)
            .offset(self.offset)
            .build())
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        // SAFETY: `cqe` is this op's own completion (the `complete`
        // contract, kept by the driver).
        unsafe { super::bytes_in(cqe, self.buf, self.no_room) }
    }
}

/// `IORING_OP_WRITE_FIXED`: writes a registered buffer's initialized bytes at `offset`.
///
/// # Examples
///
/// ```
/// use percore::buf::FixedBufPool;
/// use percore::fd::SharedFd;
/// use percore::op::{Op, WriteFixed};
///
/// percore::run(async {
///     let pool = FixedBufPool::new(1, 4096).unwrap();
///     let fd = SharedFd::new(std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap().into());
///     let mut buf = pool.get().await;
///     buf.extend_from_slice(b"hello");
///     let (n, _buf) = Op::new(WriteFixed::new(fd, buf, 0)).await;
///     assert_eq!(n.unwrap(), 5);
/// });
/// ```
pub struct WriteFixed {
    target: Target,
    buf: FixedBuf,
    offset: u64,
}

impl WriteFixed {
    /// Writes `buf`'s initialized bytes to `target` at `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::buf::FixedBufPool;
    /// use percore::fd::SharedFd;
    /// use percore::op::{Op, WriteFixed};
    ///
    /// percore::run(async {
    ///     let Ok(pool) = FixedBufPool::new(1, 4096) else {
    ///         return; // registered buffers need 5.19 and locked memory
    ///     };
    ///     let null = std::fs::File::options().write(true).open("/dev/null").unwrap();
    ///     let mut buf = pool.get().await;
    ///     buf.extend_from_slice(b"registered");
    ///     let (res, _buf) = Op::new(WriteFixed::new(SharedFd::new(null.into()), buf, 0)).await;
    ///     assert_eq!(res.unwrap(), 10);
    /// });
    /// ```
    pub fn new(target: impl Into<Target>, buf: FixedBuf, offset: u64) -> WriteFixed {
        WriteFixed {
            target: target.into(),
            buf,
            offset,
        }
    }
}

// SAFETY: as for `ReadFixed`; the kernel only reads the buffer.
unsafe impl OpCode for WriteFixed {
    type Output = BufResult<usize, FixedBuf>;

    fn create_entry(&mut self) -> squeue::Entry {
        let len = super::sqe_len(self.buf.bytes_init());
        let ptr = self.buf.stable_ptr();
        let index = self.buf.buf_index();
        let sqe = self.target.sqe_target();
        with_target!(sqe, |fd| opcode::WriteFixed::new(fd, ptr, len, index)
            .offset(self.offset)
            .build())
    }

    unsafe fn complete(self, cqe: CqeResult) -> Self::Output {
        (cqe.result.map(|n| n as usize), self.buf)
    }
}
