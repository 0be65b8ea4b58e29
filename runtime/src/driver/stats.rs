//! The driver's counters: plain integers bumped on the hot path, read by
//! [`crate::stats`]. Per-kind counts are arrays indexed by opcode, so
//! counting an op costs one bounds-checked increment and no hashing.

use std::fmt;

/// How many opcodes the per-kind counters track: every `IORING_OP_*` the
/// kernel defines today, with room to spare. Opcodes beyond it are counted
/// in the last entry.
const OPCODES: usize = 64;

/// Names of the `IORING_OP_*` opcodes, lower case, indexed by opcode.
const NAMES: [&str; 63] = [
    "nop",
    "readv",
    "writev",
    "fsync",
    "read_fixed",
    "write_fixed",
    "poll_add",
    "poll_remove",
    "sync_file_range",
    "sendmsg",
    "recvmsg",
    "timeout",
    "timeout_remove",
    "accept",
    "async_cancel",
    "link_timeout",
    "connect",
    "fallocate",
    "openat",
    "close",
    "files_update",
    "statx",
    "read",
    "write",
    "fadvise",
    "madvise",
    "send",
    "recv",
    "openat2",
    "epoll_ctl",
    "splice",
    "provide_buffers",
    "remove_buffers",
    "tee",
    "shutdown",
    "renameat",
    "unlinkat",
    "mkdirat",
    "symlinkat",
    "linkat",
    "msg_ring",
    "fsetxattr",
    "setxattr",
    "fgetxattr",
    "getxattr",
    "socket",
    "uring_cmd",
    "send_zc",
    "sendmsg_zc",
    "read_multishot",
    "waitid",
    "futex_wait",
    "futex_wake",
    "futex_waitv",
    "fixed_fd_install",
    "ftruncate",
    "bind",
    "listen",
    "recv_zc",
    "epoll_wait",
    "readv_fixed",
    "writev_fixed",
    "pipe",
];

/// The lower-case name of an io_uring opcode (`"read"` for
/// `IORING_OP_READ`), or `"unknown"`.
///
/// # Examples
///
/// ```
/// use io_uring::opcode;
///
/// assert_eq!(percore::opcode_name(opcode::Read::CODE), "read");
/// assert_eq!(percore::opcode_name(opcode::SendZc::CODE), "send_zc");
/// assert_eq!(percore::opcode_name(250), "unknown");
/// ```
pub fn opcode_name(opcode: u8) -> &'static str {
    NAMES.get(opcode as usize).copied().unwrap_or("unknown")
}

/// Ops submitted and completed, by opcode.
///
/// "Submitted" counts SQEs the driver queued (the op's own, and the cancels,
/// closes and timeouts the runtime queues for itself); "completed" counts
/// CQEs, so a multishot op completes many times and a zero-copy send twice.
/// A cross-core wake-up (`msg_ring`) is submitted on the waking core, which
/// sees no completion for it, and completes on the woken one.
///
/// # Examples
///
/// ```
/// use io_uring::opcode;
/// use percore::op::{Nop, Op};
///
/// percore::run(async {
///     let before = percore::stats().driver.ops;
///     for _ in 0..3 {
///         Op::new(Nop).await.unwrap();
///     }
///     let after = percore::stats().driver.ops;
///     assert_eq!(after.submitted(opcode::Nop::CODE) - before.submitted(opcode::Nop::CODE), 3);
///     assert_eq!(after.completed(opcode::Nop::CODE) - before.completed(opcode::Nop::CODE), 3);
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpCounts {
    submitted: [u64; OPCODES],
    completed: [u64; OPCODES],
}

impl Default for OpCounts {
    fn default() -> OpCounts {
        OpCounts {
            submitted: [0; OPCODES],
            completed: [0; OPCODES],
        }
    }
}

fn index(opcode: u8) -> usize {
    (opcode as usize).min(OPCODES - 1)
}

impl OpCounts {
    /// SQEs queued with this opcode.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     percore::op::Op::new(percore::op::Nop).await.unwrap();
    ///     assert!(percore::stats().driver.ops.submitted(io_uring::opcode::Nop::CODE) >= 1);
    /// });
    /// ```
    pub fn submitted(&self, opcode: u8) -> u64 {
        self.submitted[index(opcode)]
    }

    /// CQEs reaped for entries with this opcode.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     percore::op::Op::new(percore::op::Nop).await.unwrap();
    ///     assert!(percore::stats().driver.ops.completed(io_uring::opcode::Nop::CODE) >= 1);
    /// });
    /// ```
    pub fn completed(&self, opcode: u8) -> u64 {
        self.completed[index(opcode)]
    }

    /// `(opcode, submitted, completed)` for every opcode seen, by opcode.
    ///
    /// # Examples
    ///
    /// ```
    /// percore::run(async {
    ///     percore::op::Op::new(percore::op::Nop).await.unwrap();
    ///     let ops = percore::stats().driver.ops;
    ///     assert!(ops.iter().any(|(op, s, c)| percore::opcode_name(op) == "nop" && s >= 1 && c >= 1));
    /// });
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (u8, u64, u64)> + '_ {
        (0..OPCODES)
            .filter(|&i| self.submitted[i] != 0 || self.completed[i] != 0)
            .map(|i| (i as u8, self.submitted[i], self.completed[i]))
    }

    #[inline]
    pub(crate) fn on_submit(&mut self, opcode: u8) {
        self.submitted[index(opcode)] += 1;
    }

    #[inline]
    pub(crate) fn on_complete(&mut self, opcode: u8) {
        self.completed[index(opcode)] += 1;
    }
}

impl fmt::Debug for OpCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(op, s, c)| (opcode_name(op), (s, c))))
            .finish()
    }
}

/// Per-driver counters, readable through [`crate::stats`].
///
/// `submitted / enters` is the number of SQEs each `io_uring_enter` carried;
/// `enters / ticks` how many entries each loop iteration needed (1 when
/// nothing overflowed).
///
/// # Examples
///
/// ```
/// percore::run(async {
///     percore::time::sleep(std::time::Duration::from_millis(1)).await;
///     let d = percore::stats().driver;
///     assert!(d.ticks >= 1 && d.enters >= 1 && d.parks >= 1);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Loop iterations that reached the ring (one `submit_and_reap` or park each).
    pub ticks: u64,
    /// Ticks that waited in the kernel for a completion, a wake-up or a timer.
    pub parks: u64,
    /// `io_uring_enter` calls made.
    pub enters: u64,
    /// SQEs the kernel took (ops, cancels, closes).
    pub submitted: u64,
    /// CQEs reaped.
    pub completed: u64,
    /// Times the SQ was full and had to be flushed in the middle of a tick.
    pub sq_full: u64,
    /// Times the kernel reported completion-queue overflow (nothing is lost).
    pub cq_overflow: u64,
    /// Ops submitted and completed, by opcode.
    pub ops: OpCounts,
}

#[cfg(test)]
mod tests {
    use io_uring::opcode;

    use super::*;

    #[test]
    fn names_match_the_opcode_constants() {
        let known = [
            (opcode::Nop::CODE, "nop"),
            (opcode::Readv::CODE, "readv"),
            (opcode::ReadFixed::CODE, "read_fixed"),
            (opcode::PollAdd::CODE, "poll_add"),
            (opcode::SendMsg::CODE, "sendmsg"),
            (opcode::Timeout::CODE, "timeout"),
            (opcode::Accept::CODE, "accept"),
            (opcode::AsyncCancel::CODE, "async_cancel"),
            (opcode::LinkTimeout::CODE, "link_timeout"),
            (opcode::OpenAt::CODE, "openat"),
            (opcode::Close::CODE, "close"),
            (opcode::Statx::CODE, "statx"),
            (opcode::Read::CODE, "read"),
            (opcode::Write::CODE, "write"),
            (opcode::Send::CODE, "send"),
            (opcode::Recv::CODE, "recv"),
            (opcode::Shutdown::CODE, "shutdown"),
            (opcode::MsgRingData::CODE, "msg_ring"),
            (opcode::Socket::CODE, "socket"),
            (opcode::SendZc::CODE, "send_zc"),
            (opcode::SendMsgZc::CODE, "sendmsg_zc"),
            (opcode::ReadMulti::CODE, "read_multishot"),
            (opcode::FutexWaitV::CODE, "futex_waitv"),
            (opcode::FixedFdInstall::CODE, "fixed_fd_install"),
            (opcode::Ftruncate::CODE, "ftruncate"),
            (opcode::Bind::CODE, "bind"),
            (opcode::Listen::CODE, "listen"),
            (opcode::RecvZc::CODE, "recv_zc"),
            (opcode::EpollWait::CODE, "epoll_wait"),
            (opcode::ReadvFixed::CODE, "readv_fixed"),
            (opcode::WritevFixed::CODE, "writev_fixed"),
            (opcode::Pipe::CODE, "pipe"),
        ];
        for (code, name) in known {
            assert_eq!(opcode_name(code), name, "opcode {code}");
        }
    }

    #[test]
    fn counts_by_kind_and_clamps_unknown_opcodes() {
        let mut c = OpCounts::default();
        c.on_submit(opcode::Nop::CODE);
        c.on_submit(opcode::Nop::CODE);
        c.on_complete(opcode::Nop::CODE);
        c.on_submit(200);
        assert_eq!(c.submitted(opcode::Nop::CODE), 2);
        assert_eq!(c.completed(opcode::Nop::CODE), 1);
        assert_eq!(c.submitted(200), 1);
        assert_eq!(c.submitted((OPCODES - 1) as u8), 1);
        let seen: Vec<_> = c.iter().collect();
        assert_eq!(
            seen,
            [(opcode::Nop::CODE, 2, 1), ((OPCODES - 1) as u8, 1, 0)]
        );
    }
}
