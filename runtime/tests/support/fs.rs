//! Helpers of the fs_* tests: temporary paths, data patterns, dropping
//! capabilities.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A unique path under the temp dir, removed (file or tree) on drop.
pub struct TempPath(PathBuf);

impl TempPath {
    pub fn new(tag: &str) -> TempPath {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("percore-test-{tag}-{}-{n}", std::process::id());
        TempPath(std::env::temp_dir().join(name))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes of a recognisable pattern: byte `i` of block `b` of 4096 is `(b * 31 + i) as u8`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i / 4096) as u8)
                .wrapping_mul(31)
                .wrapping_add(i as u8)
                .wrapping_add(seed)
        })
        .collect()
}

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;
const CAP_IPC_LOCK: u32 = 14;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops capabilities from the calling thread's effective set (capabilities
/// are per thread on Linux, so other tests keep theirs). Returns false if the
/// thread did not have them in the first place.
fn drop_caps(caps: &[u32]) -> bool {
    let mut hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData records into `data`.
    let res = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(res, 0, "capget: {}", std::io::Error::last_os_error());
    let mut had = false;
    for &cap in caps {
        let bit = 1u32 << (cap % 32);
        had |= data[(cap / 32) as usize].effective & bit != 0;
        data[(cap / 32) as usize].effective &= !bit;
    }
    // SAFETY: capset reads the header and two CapData records.
    let res = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    assert_eq!(res, 0, "capset: {}", std::io::Error::last_os_error());
    had
}

/// Makes this thread subject to file permission checks even as root.
pub fn drop_dac_override() -> bool {
    drop_caps(&[CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER])
}

/// Makes this thread's new rings account registered memory against RLIMIT_MEMLOCK.
pub fn drop_ipc_lock() -> bool {
    drop_caps(&[CAP_IPC_LOCK])
}
