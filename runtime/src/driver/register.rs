//! Resources registered with the ring: provided-buffer rings, the fixed
//! buffer and file tables, and the ring's own fd.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{IoUring, squeue};

use super::{Backend, Driver};
use crate::buf::BufPool;

/// `IORING_REGISTER_RING_FDS`.
const REGISTER_RING_FDS: u32 = 20;

impl Driver {
    /// The ring, for registering resources: `None` on the epoll backend.
    fn uring(&self) -> Option<&IoUring> {
        match &self.ring {
            Backend::IoUring(ring) => Some(ring),
            Backend::Epoll(_) => None,
        }
    }

    /// Registers a provided-buffer ring (`IORING_REGISTER_PBUF_RING`) as
    /// group `bgid`, incrementally consumed if the pool says so; the driver
    /// keeps a clone of the pool until the group is unregistered, to account
    /// for each completion that names one of its buffers (see
    /// [`BufPool::on_cqe`]). On the epoll driver the group is emulated
    /// (`epoll_bufs.rs`).
    ///
    /// # Safety
    ///
    /// The pool's entry array stays allocated until the group is
    /// unregistered (or the ring is gone), and so does every buffer an entry
    /// published to the ring names.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        pool: &Rc<BufPool>,
        bgid: u16,
    ) -> io::Result<()> {
        let (addr, entries, flags) = pool.registration();
        match &mut self.ring {
            // SAFETY: the caller's contract.
            Backend::IoUring(ring) => unsafe {
                ring.submitter()
                    .register_buf_ring_with_flags(addr, entries, bgid, flags)?
            },
            // SAFETY: the caller's contract, as for the kernel.
            Backend::Epoll(e) => unsafe { e.register_buf_ring(addr, entries, bgid, flags)? },
        }
        self.buf_groups.groups.push((bgid, pool.clone()));
        Ok(())
    }

    /// Unregisters a provided-buffer ring.
    pub(crate) fn unregister_buf_ring(&mut self, bgid: u16) -> io::Result<()> {
        match &mut self.ring {
            Backend::IoUring(ring) => ring.submitter().unregister_buf_ring(bgid)?,
            Backend::Epoll(e) => e.unregister_buf_ring(bgid)?,
        }
        self.buf_groups.groups.retain(|(g, _)| *g != bgid);
        Ok(())
    }

    /// Makes a sparse table of `n` registered buffers. On the epoll driver
    /// there is nothing to register: fixed buffers are plain memory there.
    pub(crate) fn register_buffers_sparse(&self, n: u32) -> io::Result<()> {
        match self.uring() {
            Some(ring) => ring.submitter().register_buffers_sparse(n),
            None => Ok(()),
        }
    }

    /// Sets (or, with an empty iovec, clears) entries of the buffer table.
    ///
    /// # Safety
    ///
    /// The iovecs name memory that stays allocated until its entry is
    /// cleared or the ring is gone.
    pub(crate) unsafe fn register_buffers_update(
        &self,
        slot: u32,
        iovs: &[libc::iovec],
    ) -> io::Result<()> {
        match self.uring() {
            // SAFETY: the caller's contract.
            Some(ring) => unsafe { ring.submitter().register_buffers_update(slot, iovs, None) },
            None => Ok(()),
        }
    }

    /// Makes a sparse table of `n` registered files.
    pub(crate) fn register_files_sparse(&mut self, n: u32) -> io::Result<()> {
        match &mut self.ring {
            Backend::IoUring(ring) => match ring.submitter().register_files_sparse(n) {
                // Before 5.19: a table of -1 entries is sparse too.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    ring.submitter().register_files(&vec![-1; n as usize])
                }
                other => other,
            },
            Backend::Epoll(e) => e.register_files_sparse(n),
        }
    }

    /// Sets (or, with `-1`, clears) entries of the file table.
    pub(crate) fn register_files_update(&mut self, slot: u32, fds: &[RawFd]) -> io::Result<()> {
        match &mut self.ring {
            Backend::IoUring(ring) => ring.submitter().register_files_update(slot, fds).map(drop),
            Backend::Epoll(e) => e.register_files_update(slot, fds),
        }
    }
}

#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// Registers the ring fd with itself (IORING_REGISTER_RING_FDS, 5.18) so each
/// `io_uring_enter` skips the fd lookup; returns the registered index.
pub(super) fn register_ring_fd(fd: RawFd) -> io::Result<RawFd> {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: io_uring_register(2) reads and writes one `RsrcUpdate` that
    // lives on this stack frame for the call.
    let res = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1u32,
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(up.offset as RawFd)
}

/// The provided-buffer groups registered with a driver, by group id: the
/// driver tells each of its pools about every completion that names one of
/// its buffers, in the order the completions come.
#[derive(Default)]
pub(super) struct BufGroups {
    /// Few (one per ring the core made), so a scan beats a hash.
    groups: Vec<(u16, Rc<BufPool>)>,
}

impl BufGroups {
    /// Accounts for a completion of an op that selected from group `bgid`;
    /// returns where its data starts in the buffer it names (0 without one).
    pub(super) fn on_cqe(&self, bgid: u16, res: i32, flags: u32) -> u32 {
        match self.groups.iter().find(|(g, _)| *g == bgid) {
            Some((_, pool)) => pool.on_cqe(res, flags),
            None => 0,
        }
    }
}

/// `IOSQE_BUFFER_SELECT`.
const IOSQE_BUFFER_SELECT: u8 = 1 << 5;

/// The buffer group an entry selects from, if it selects one.
pub(super) fn selected_group(sqe: &squeue::Entry) -> Option<u16> {
    let raw = (sqe as *const squeue::Entry).cast::<u8>();
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte
    // `io_uring_sqe`: `flags` is its byte 1 and `buf_group` the u16 at byte
    // 40 (the ABI); both plain integers, read from a live reference.
    let (flags, group) = unsafe { (*raw.add(1), raw.add(40).cast::<u16>().read_unaligned()) };
    (flags & IOSQE_BUFFER_SELECT != 0).then_some(group)
}
