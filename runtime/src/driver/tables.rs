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

/// Which entries of each table are taken.
#[derive(Default)]
pub(super) struct Tables {
    bufs: SlotTable,
    files: SlotTable,
}

/// The free entries of one sparse table, lowest on top; `None` until the
/// table is registered.
#[derive(Default)]
struct SlotTable {
    free: Option<Vec<u32>>,
}

impl SlotTable {
    fn is_registered(&self) -> bool {
        self.free.is_some()
    }

    /// The table of `len` entries was registered: all are free.
    fn registered(&mut self, len: u32) {
        self.free = Some((0..len).rev().collect());
    }

    /// Takes the lowest free entry.
    fn take(&mut self) -> Option<u32> {
        self.free.as_mut()?.pop()
    }

    /// Gives back an entry whose registration was cleared.
    fn release(&mut self, slot: u32) {
        if let Some(free) = self.free.as_mut() {
            free.push(slot);
        }
    }
}

impl Driver {
    /// Takes a free entry of this ring's buffer table, registering the
    /// sparse table on first use.
    pub(crate) fn take_buf_slot(&mut self) -> io::Result<u16> {
        if !self.tables.bufs.is_registered() {
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
            self.tables.bufs.registered(BUF_TABLE_SLOTS);
        }
        let slot = self.tables.bufs.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "this core already has {BUF_TABLE_SLOTS} fixed buffer pools registered; \
                     drop one or use fewer, larger pools"
                ),
            )
        })?;
        Ok(slot as u16)
    }

    /// Gives back a buffer-table entry whose registration was cleared.
    pub(crate) fn release_buf_slot(&mut self, slot: u16) {
        self.tables.bufs.release(u32::from(slot));
    }

    /// Takes a free entry of this ring's file table, registering the sparse
    /// table on first use.
    pub(crate) fn take_file_slot(&mut self) -> io::Result<u32> {
        if !self.tables.files.is_registered() {
            self.register_files_sparse(FILE_TABLE_SLOTS)
                .map_err(|err| match err.raw_os_error() {
                    Some(libc::EBUSY) => io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        "cannot register a file: this core's ring already has a file table \
                         registered by other code (one file table per ring)",
                    ),
                    _ => err,
                })?;
            self.tables.files.registered(FILE_TABLE_SLOTS);
        }
        self.tables.files.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("all {FILE_TABLE_SLOTS} registered-file slots of this core are in use"),
            )
        })
    }

    /// Gives back a file-table entry whose registration was cleared.
    pub(crate) fn release_file_slot(&mut self, slot: u32) {
        self.tables.files.release(slot);
    }
}
