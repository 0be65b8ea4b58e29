//! Resources registered with the ring: provided-buffer rings, the fixed
//! buffer and file tables, and the ring's own fd.

use std::io;
use std::os::fd::RawFd;

use io_uring::IoUring;

use super::{Backend, Driver};

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

    /// The error for a registration only the ring can hold.
    fn needs_ring(what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what} need io_uring; this core runs the epoll driver"),
        )
    }

    /// Registers a provided-buffer ring (`IORING_REGISTER_PBUF_RING`).
    ///
    /// # Safety
    ///
    /// `addr` points to `entries` ring entries, page aligned, that stay
    /// allocated until the group is unregistered.
    pub(crate) unsafe fn register_buf_ring(
        &self,
        addr: u64,
        entries: u16,
        bgid: u16,
    ) -> io::Result<()> {
        let ring = self
            .uring()
            .ok_or_else(|| Self::needs_ring("provided buffer rings"))?;
        // SAFETY: the caller's contract.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr, entries, bgid, 0)
        }
    }

    /// Unregisters a provided-buffer ring.
    pub(crate) fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        let ring = self
            .uring()
            .ok_or_else(|| Self::needs_ring("provided buffer rings"))?;
        ring.submitter().unregister_buf_ring(bgid)
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
