//! The ring's registered tables as percore fills them: one sparse buffer
//! table and one sparse file table per driver, registered on first use.
//! They live in the driver, so they go with its ring; a pool or a
//! registered file remembers the driver's id to tell its own ring.

use std::io;

use super::Driver;

/// Entries of the sparse buffer table percore registers on each ring: one
/// per live [`FixedBufPool`](crate::buf::FixedBufPool).
pub const BUF_TABLE_SLOTS: u32 = 64;

/// Entries of the sparse file table percore registers on each ring.
pub const FILE_TABLE_SLOTS: u32 = 4096;

/// Which entries of each table are taken; `None` until registered.
#[derive(Default)]
pub(super) struct Tables {
    /// One flag per buffer-table entry.
    bufs: Option<Vec<bool>>,
    /// Free file-table entries, lowest on top.
    files: Option<Vec<u32>>,
}

impl Driver {
    /// Takes a free entry of this ring's buffer table, registering the
    /// sparse table on first use.
    pub(crate) fn take_buf_slot(&mut self) -> io::Result<u16> {
        if self.tables.bufs.is_none() {
            self.register_buffers_sparse(BUF_TABLE_SLOTS)
                .map_err(|err| match err.raw_os_error() {
                    Some(libc::EBUSY) => io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        "cannot create a fixed buffer pool: this core's ring already has \
                         buffers registered by other code (one buffer table per ring)",
                    ),
                    Some(libc::EINVAL) => io::Error::new(
                        io::ErrorKind::Unsupported,
                        "fixed buffer pools need sparse buffer tables (Linux 5.19 or newer)",
                    ),
                    _ => err,
                })?;
            self.tables.bufs = Some(vec![false; BUF_TABLE_SLOTS as usize]);
        }
        let used = self.tables.bufs.as_mut().expect("registered above");
        let slot = used.iter().position(|u| !u).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "this core already has {BUF_TABLE_SLOTS} fixed buffer pools registered; \
                     drop one or use fewer, larger pools"
                ),
            )
        })?;
        used[slot] = true;
        Ok(slot as u16)
    }

    /// Gives back a buffer-table entry whose registration was cleared.
    pub(crate) fn release_buf_slot(&mut self, slot: u16) {
        if let Some(used) = self.tables.bufs.as_mut() {
            used[slot as usize] = false;
        }
    }

    /// Takes a free entry of this ring's file table, registering the sparse
    /// table on first use.
    pub(crate) fn take_file_slot(&mut self) -> io::Result<u32> {
        if self.tables.files.is_none() {
            self.register_files_sparse(FILE_TABLE_SLOTS)
                .map_err(|err| match err.raw_os_error() {
                    Some(libc::EBUSY) => io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        "cannot register a file: this core's ring already has a file table \
                         registered by other code (one file table per ring)",
                    ),
                    _ => err,
                })?;
            self.tables.files = Some((0..FILE_TABLE_SLOTS).rev().collect());
        }
        let free = self.tables.files.as_mut().expect("registered above");
        free.pop().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("all {FILE_TABLE_SLOTS} registered-file slots of this core are in use"),
            )
        })
    }

    /// Gives back a file-table entry whose registration was cleared.
    pub(crate) fn release_file_slot(&mut self, slot: u32) {
        if let Some(free) = self.tables.files.as_mut() {
            free.push(slot);
        }
    }
}
