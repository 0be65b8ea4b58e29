//! Start-up probe: what this kernel's io_uring offers, and a ring set up with
//! the fastest flags it accepts.

use std::fmt;
use std::io;

use io_uring::{IoUring, Probe, opcode};

use super::DriverConfig;

/// Which driver backend a runtime uses; chosen with
/// [`Builder::driver`](crate::Builder::driver), or by the `PERCORE_DRIVER`
/// environment variable (`io_uring`, `epoll` or `auto`) for builders that do
/// not choose.
///
/// # Examples
///
/// ```
/// use percore::DriverKind;
///
/// // Runs on epoll even where io_uring is available.
/// let rt = percore::Runtime::builder().driver(DriverKind::Epoll).build().unwrap();
/// assert_eq!(rt.capabilities().driver, DriverKind::Epoll);
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// io_uring where it can be set up, else epoll (the default).
    #[default]
    Auto,
    /// io_uring only: building fails with a clear error where it is blocked.
    IoUring,
    /// The readiness backend on epoll, non-blocking syscalls and the
    /// blocking pool for files; runs where io_uring is blocked (container
    /// seccomp profiles, `kernel.io_uring_disabled`).
    Epoll,
}

impl DriverKind {
    /// Parses `io_uring`, `epoll` or `auto` (as `PERCORE_DRIVER` takes them).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore::DriverKind;
    ///
    /// assert_eq!(DriverKind::parse("epoll"), Some(DriverKind::Epoll));
    /// assert_eq!(DriverKind::parse("kqueue"), None);
    /// ```
    pub fn parse(name: &str) -> Option<DriverKind> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(DriverKind::Auto),
            "io_uring" | "iouring" | "uring" => Some(DriverKind::IoUring),
            "epoll" => Some(DriverKind::Epoll),
            _ => None,
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverKind::Auto => "auto",
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        })
    }
}

/// What the kernel's io_uring offers, as found when the runtime started.
///
/// Read it with [`crate::capabilities`] inside a runtime, or with
/// [`Capabilities::probe`] anywhere.
///
/// # Examples
///
/// ```
/// let caps = percore::Capabilities::probe().unwrap();
/// println!("{caps}");
/// assert!(caps.kernel_release.len() > 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The driver this runtime runs: [`DriverKind::IoUring`] or
    /// [`DriverKind::Epoll`] (never `Auto`).
    pub driver: DriverKind,
    /// Why the epoll driver runs although io_uring was wanted: the error
    /// io_uring's set-up gave (`None` on io_uring, or when epoll was asked for).
    pub fallback_reason: Option<String>,
    /// `uname -r`.
    pub kernel_release: String,
    /// Supported opcodes (`IORING_REGISTER_PROBE`), indexed by opcode number.
    pub opcodes: Vec<bool>,
    /// The ring runs with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (6.1).
    pub defer_taskrun: bool,
    /// The ring runs with `IORING_SETUP_COOP_TASKRUN` (5.19).
    pub coop_taskrun: bool,
    /// The ring runs with a kernel SQ polling thread.
    pub sqpoll: bool,
    /// `IORING_FEAT_EXT_ARG` (5.11): a wait can carry a timeout.
    pub ext_arg: bool,
    /// `IORING_FEAT_MIN_TIMEOUT` (6.12): a wait can carry a min-wait, the
    /// kernel's batch wait that [`Builder::min_wait`](crate::Builder::min_wait)
    /// uses.
    pub min_timeout: bool,
    /// The min-wait this runtime's parks use: what
    /// [`Builder::min_wait`](crate::Builder::min_wait) asked for, or `None`
    /// when nothing was asked or the driver cannot apply it (no
    /// `IORING_FEAT_MIN_TIMEOUT`, or the epoll driver).
    pub min_wait: Option<std::time::Duration>,
    /// `IORING_FEAT_NODROP` (5.5): CQ overflow loses nothing.
    pub nodrop: bool,
    /// `IORING_FEAT_FAST_POLL` (5.7): socket ops wait internally, without a poll op.
    pub fast_poll: bool,
    /// `IORING_REGISTER_RING_FDS` (5.18) can be used.
    pub registered_ring_fd: bool,
    /// Multishot accept (5.19).
    pub multishot_accept: bool,
    /// Multishot recv with provided buffer rings (6.0).
    pub multishot_recv: bool,
    /// Provided buffer rings, `IORING_REGISTER_PBUF_RING` (5.19; emulated
    /// by the epoll driver).
    pub buf_ring: bool,
    /// Provided buffer rings can be consumed incrementally,
    /// `IOU_PBUF_RING_INC` (6.12): probed by registering a small ring with
    /// the flag. See [`BufRingBuilder::incremental`](crate::buf::BufRingBuilder::incremental).
    pub buf_ring_inc: bool,
    /// `IORING_OP_SEND_ZC` (6.0).
    pub send_zc: bool,
    /// `IORING_OP_MSG_RING` (5.18).
    pub msg_ring: bool,
    /// `IORING_RECVSEND_POLL_FIRST` (5.19): a receive can wait for data
    /// before its first attempt.
    pub recv_poll_first: bool,
    /// SQ entries of the ring.
    pub sq_entries: u32,
    /// CQ entries of the ring.
    pub cq_entries: u32,
    /// `RLIMIT_MEMLOCK` soft limit in bytes (`None` = unlimited).
    pub memlock_limit: Option<u64>,
    /// `/proc/sys/kernel/io_uring_disabled` (0 enabled, 1 restricted to a group, 2 disabled).
    pub io_uring_disabled: Option<u8>,
}

impl Capabilities {
    /// Whether the kernel supports `opcode` (an `io_uring::opcode::X::CODE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let caps = percore::Capabilities::probe().unwrap();
    /// assert!(caps.supports(io_uring::opcode::Nop::CODE));
    /// ```
    pub fn supports(&self, opcode: u8) -> bool {
        self.opcodes.get(opcode as usize).copied().unwrap_or(false)
    }

    /// Sets up a throw-away ring with default options and reports what it found.
    ///
    /// # Errors
    ///
    /// The same clear error as [`crate::Builder::build`] when io_uring is unavailable.
    ///
    /// # Examples
    ///
    /// ```
    /// match percore::Capabilities::probe() {
    ///     Ok(caps) => println!("{caps}"),
    ///     Err(err) => eprintln!("no io_uring here: {err}"),
    /// }
    /// ```
    pub fn probe() -> io::Result<Capabilities> {
        let (_ring, caps) = setup(&DriverConfig {
            entries: 8,
            sqpoll_idle: None,
            defer_taskrun: true,
            coop_taskrun: true,
            register_ring_fd: false,
            minimal: false,
            slow_op: None,
            driver: DriverKind::IoUring,
            min_wait: None,
        })?;
        Ok(caps)
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memlock = match self.memlock_limit {
            Some(n) => format!("{} KiB", n / 1024),
            None => "unlimited".into(),
        };
        if self.driver == DriverKind::Epoll {
            write!(f, "driver epoll")?;
            if let Some(why) = &self.fallback_reason {
                write!(f, " (io_uring unavailable: {why})")?;
            }
            return write!(
                f,
                ", kernel {}, multishot accept {}, buf ring {} (emulated)",
                self.kernel_release, self.multishot_accept, self.buf_ring
            );
        }
        write!(
            f,
            "driver io_uring, kernel {}, ring {}/{} entries, defer_taskrun {}, coop_taskrun {}, sqpoll {}, \
             ext_arg {}, min_timeout {} (min-wait {}), multishot accept {}, multishot recv {}, \
             buf ring {} (incremental {}), send_zc {}, msg_ring {}, memlock {}",
            self.kernel_release,
            self.sq_entries,
            self.cq_entries,
            self.defer_taskrun,
            self.coop_taskrun,
            self.sqpoll,
            self.ext_arg,
            self.min_timeout,
            match self.min_wait {
                Some(d) => format!("{} us", d.as_micros()),
                None => "off".into(),
            },
            self.multishot_accept,
            self.multishot_recv,
            self.buf_ring,
            self.buf_ring_inc,
            self.send_zc,
            self.msg_ring,
            memlock
        )
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// (major, minor) of the running kernel, or (0, 0) if unknown.
fn kernel_version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn memlock_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a struct on this frame.
    let res = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if res != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_cur)
}

fn io_uring_disabled() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `IORING_MAX_CQ_ENTRIES`: the largest CQ the kernel accepts.
const MAX_CQ_ENTRIES: u32 = 65536;

/// Ring memory for `entries` SQEs: 64-byte SQEs, two 16-byte CQEs each,
/// a 4-byte index, plus the ring headers; kernels before 5.12 charge it
/// against RLIMIT_MEMLOCK.
fn ring_bytes(entries: u32) -> u64 {
    entries as u64 * (64 + 2 * 16 + 4) + 4096
}

/// Sets up the ring with the best flags the kernel accepts, then probes it.
pub(crate) fn setup(config: &DriverConfig) -> io::Result<(IoUring, Capabilities)> {
    let release = kernel_release();
    let version = kernel_version(&release);
    let memlock = memlock_limit();
    let disabled = io_uring_disabled();

    let mut entries = config.entries.clamp(2, 32768).next_power_of_two();
    // Kernels before 5.12 account ring memory against RLIMIT_MEMLOCK: size the
    // ring to fit it instead of failing with ENOMEM.
    if version < (5, 12)
        && let Some(limit) = memlock
    {
        while entries > 8 && ring_bytes(entries) > limit / 2 {
            entries /= 2;
        }
    }

    let want_defer = config.defer_taskrun && config.sqpoll_idle.is_none() && !config.minimal;
    let want_coop = config.coop_taskrun && !config.minimal;
    let mut attempts: Vec<(bool, bool)> = Vec::new();
    if want_defer {
        attempts.push((true, false));
    }
    if want_coop {
        attempts.push((false, true));
    }
    attempts.push((false, false));

    let mut last_err = None;
    for (defer, coop) in attempts {
        let mut try_entries = entries;
        loop {
            let mut b = IoUring::builder();
            // The kernel caps the CQ at IORING_MAX_CQ_ENTRIES (65536) and
            // rejects a larger request with EINVAL.
            b.setup_cqsize((try_entries * 4).min(MAX_CQ_ENTRIES));
            if let Some(idle) = config.sqpoll_idle {
                b.setup_sqpoll(idle.as_millis().clamp(1, u32::MAX as u128) as u32);
            }
            if defer {
                // The TASKRUN flag lets a spinning core see completions
                // waiting for it without entering the kernel.
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            } else if coop {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            #[cfg(feature = "fault-injection")]
            let built = match crate::fault::take_setup() {
                Some(err) => Err(err),
                None => b.build(try_entries),
            };
            #[cfg(not(feature = "fault-injection"))]
            let built = b.build(try_entries);
            match built {
                Ok(ring) => {
                    let caps = capabilities(&ring, release, memlock, disabled, defer, coop, config);
                    return Ok((ring, caps));
                }
                // Ring memory did not fit: try a smaller ring.
                Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && try_entries > 8 => {
                    try_entries /= 2;
                }
                // This flag set is unknown to the kernel: try the next one.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                    last_err = Some(err);
                    break;
                }
                Err(err) => return Err(unavailable(err, memlock, disabled)),
            }
        }
    }
    Err(unavailable(
        last_err.unwrap_or_else(|| io::Error::from(io::ErrorKind::Unsupported)),
        memlock,
        disabled,
    ))
}

fn capabilities(
    ring: &IoUring,
    kernel_release: String,
    memlock_limit: Option<u64>,
    io_uring_disabled: Option<u8>,
    defer_taskrun: bool,
    coop_taskrun: bool,
    config: &DriverConfig,
) -> Capabilities {
    let mut probe = Probe::new();
    let mut opcodes = vec![false; 256];
    if ring.submitter().register_probe(&mut probe).is_ok() {
        for (code, slot) in opcodes.iter_mut().enumerate() {
            *slot = probe.is_supported(code as u8);
        }
    }
    let minimal = config.minimal;
    if minimal {
        // Pretend to be Linux 5.11: every opcode after UNLINKAT is newer.
        for slot in opcodes.iter_mut().skip(opcode::UnlinkAt::CODE as usize + 1) {
            *slot = false;
        }
    }
    let version = kernel_version(&kernel_release);
    let params = ring.params();
    let has = |code: u8| opcodes[code as usize];
    Capabilities {
        driver: DriverKind::IoUring,
        fallback_reason: None,
        defer_taskrun,
        coop_taskrun,
        sqpoll: params.is_setup_sqpoll(),
        ext_arg: params.is_feature_ext_arg() && !minimal,
        min_timeout: params.is_feature_min_timeout() && !minimal,
        min_wait: None,
        nodrop: params.is_feature_nodrop(),
        fast_poll: params.is_feature_fast_poll() && !minimal,
        registered_ring_fd: version >= (5, 18) && !minimal,
        multishot_accept: version >= (5, 19) && has(opcode::AcceptMulti::CODE) && !minimal,
        multishot_recv: version >= (6, 0) && has(opcode::RecvMulti::CODE) && !minimal,
        buf_ring: version >= (5, 19) && !minimal,
        buf_ring_inc: version >= (6, 12) && !minimal && probe_buf_ring_inc(ring),
        send_zc: has(opcode::SendZc::CODE) && !minimal,
        msg_ring: has(opcode::MsgRingData::CODE) && !minimal,
        recv_poll_first: version >= (5, 19) && !minimal,
        sq_entries: params.sq_entries(),
        cq_entries: params.cq_entries(),
        kernel_release,
        opcodes,
        memlock_limit,
        io_uring_disabled,
    }
}

/// Whether the kernel takes a provided-buffer ring with `IOU_PBUF_RING_INC`
/// (older kernels refuse the unknown flag with `EINVAL`): registers and
/// unregisters a one-entry ring under the last group id, before any ring of
/// the runtime's own exists.
fn probe_buf_ring_inc(ring: &IoUring) -> bool {
    const PAGE: usize = 4096;
    let layout = std::alloc::Layout::from_size_align(PAGE, PAGE).expect("a page layout");
    // SAFETY: the layout has a non-zero size.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    if mem.is_null() {
        return false;
    }
    let bgid = u16::MAX;
    // SAFETY: `mem` is a zeroed, page-aligned page (an empty ring of one
    // entry: tail 0), kept allocated until the group is unregistered below,
    // or leaked if that fails; no op selects from the group, so the kernel
    // never reads a buffer address from it.
    let registered = unsafe {
        ring.submitter().register_buf_ring_with_flags(
            mem as u64,
            1,
            bgid,
            crate::buf::PBUF_RING_INC,
        )
    }
    .is_ok();
    if registered && ring.submitter().unregister_buf_ring(bgid).is_err() {
        return true; // the page stays with the kernel: leaked
    }
    // SAFETY: allocated above with this layout; the kernel no longer knows it.
    unsafe { std::alloc::dealloc(mem, layout) };
    registered
}

/// What the epoll backend offers: the ops it performs, multishot accept
/// (an accept loop), provided-buffer rings with multishot receives and
/// incremental consumption (emulated on the same ring memory,
/// `epoll_bufs.rs`), and none of the ring-only features (zero-copy sends,
/// MSG_RING, SQPOLL).
pub(crate) fn epoll(config: &DriverConfig, fallback_reason: Option<String>) -> Capabilities {
    let entries = config.entries.clamp(2, 32768).next_power_of_two();
    let mut opcodes = super::epoll::supported_opcodes();
    if config.minimal {
        // The same cut as on the ring: what Linux 5.11 has.
        for slot in opcodes.iter_mut().skip(opcode::UnlinkAt::CODE as usize + 1) {
            *slot = false;
        }
    }
    Capabilities {
        driver: DriverKind::Epoll,
        fallback_reason,
        kernel_release: kernel_release(),
        opcodes,
        defer_taskrun: false,
        coop_taskrun: false,
        sqpoll: false,
        // Waits carry a timeout (epoll_pwait2).
        ext_arg: true,
        // epoll_pwait2 has no batch wait.
        min_timeout: false,
        min_wait: None,
        nodrop: true,
        fast_poll: true,
        registered_ring_fd: false,
        multishot_accept: !config.minimal,
        multishot_recv: !config.minimal,
        buf_ring: !config.minimal,
        buf_ring_inc: !config.minimal,
        send_zc: false,
        msg_ring: false,
        recv_poll_first: false,
        sq_entries: entries,
        cq_entries: entries * 4,
        memlock_limit: memlock_limit(),
        io_uring_disabled: io_uring_disabled(),
    }
}

/// The min-wait, in microseconds, that parks pass to the kernel: the one
/// asked for (rounded up to a whole microsecond, capped at `u32::MAX`) where
/// the ring has `IORING_FEAT_MIN_TIMEOUT` (and with it `EXT_ARG`, which
/// carries it), else 0 (off). The epoll backend never has the feature.
pub(crate) fn min_wait_usec(asked: Option<std::time::Duration>, caps: &Capabilities) -> u32 {
    match asked {
        Some(d) if caps.min_timeout && caps.ext_arg && caps.driver == DriverKind::IoUring => {
            d.as_nanos().div_ceil(1000).min(u32::MAX as u128) as u32
        }
        _ => 0,
    }
}

/// Turns a failed io_uring_setup into one error that names the cause and the fix.
pub(crate) fn unavailable(err: io::Error, memlock: Option<u64>, disabled: Option<u8>) -> io::Error {
    let errno = err.raw_os_error();
    let why = match (errno, disabled) {
        (_, Some(2)) => "io_uring is disabled by the kernel.io_uring_disabled sysctl (2); \
             fix: `sysctl -w kernel.io_uring_disabled=0` as root"
            .to_string(),
        (Some(libc::EPERM), Some(1)) => "io_uring is restricted to the group in \
             kernel.io_uring_group (kernel.io_uring_disabled=1); fix: run as a member of that \
             group, or `sysctl -w kernel.io_uring_disabled=0`"
            .to_string(),
        (Some(libc::EPERM | libc::ENOSYS), _) => "io_uring_setup is blocked, most likely by a \
             container's seccomp profile (Docker's default blocks io_uring) or an old kernel; \
             fix: run with a seccomp profile that allows io_uring_setup, io_uring_enter and \
             io_uring_register (e.g. `--security-opt seccomp=unconfined`), on Linux 5.11 or newer"
            .to_string(),
        (Some(libc::ENOMEM), _) => format!(
            "not enough locked memory for the ring (RLIMIT_MEMLOCK is {}); fix: raise it with \
             `ulimit -l` or LimitMEMLOCK=, or ask for fewer ring entries with \
             Builder::entries",
            match memlock {
                Some(n) => format!("{} KiB", n / 1024),
                None => "unlimited".into(),
            }
        ),
        _ => "the kernel refused to set up an io_uring instance; percore needs Linux 5.11 \
             or newer with io_uring enabled"
            .to_string(),
    };
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("io_uring unavailable ({err}): {why}"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v595"), (6, 18));
        assert_eq!(kernel_version("5.4.0-generic"), (5, 4));
        assert_eq!(kernel_version(""), (0, 0));
    }

    #[test]
    fn min_wait_needs_the_kernel_feature() {
        let ring = Capabilities {
            driver: DriverKind::IoUring,
            ext_arg: true,
            min_timeout: true,
            ..Capabilities::default()
        };
        let us = |d| min_wait_usec(Some(d), &ring);
        assert_eq!(us(Duration::from_micros(50)), 50);
        assert_eq!(us(Duration::from_nanos(1)), 1, "rounds up, never to off");
        assert_eq!(us(Duration::from_secs(u64::MAX)), u32::MAX);
        assert_eq!(us(Duration::ZERO), 0);
        assert_eq!(min_wait_usec(None, &ring), 0);
        // A kernel before 6.12: asked for, ignored.
        let old = Capabilities {
            min_timeout: false,
            ..ring.clone()
        };
        assert_eq!(min_wait_usec(Some(Duration::from_micros(50)), &old), 0);
        let config = DriverConfig {
            entries: 8,
            sqpoll_idle: None,
            defer_taskrun: false,
            coop_taskrun: false,
            register_ring_fd: false,
            minimal: false,
            slow_op: None,
            driver: DriverKind::Epoll,
            min_wait: Some(Duration::from_micros(50)),
        };
        let epoll = epoll(&config, None);
        assert!(!epoll.min_timeout);
        assert_eq!(min_wait_usec(Some(Duration::from_micros(50)), &epoll), 0);
    }

    #[test]
    fn errors_name_cause_and_fix() {
        let e = unavailable(io::Error::from_raw_os_error(libc::EPERM), None, Some(2));
        assert!(e.to_string().contains("io_uring_disabled"), "{e}");
        let e = unavailable(io::Error::from_raw_os_error(libc::EPERM), None, Some(0));
        assert!(e.to_string().contains("seccomp"), "{e}");
        let e = unavailable(
            io::Error::from_raw_os_error(libc::ENOMEM),
            Some(65536),
            Some(0),
        );
        assert!(e.to_string().contains("64 KiB"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}
