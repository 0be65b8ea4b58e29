//! CPU pinning for the benchmark programs (the peer echo servers and
//! `cross-core-bench`): CPU `i` means the i-th CPU of the process's affinity
//! mask, the same rule as percore's `Builder::pin`, so `taskset -c 2,3`
//! followed by "pin to CPU 0" lands on CPU 2.
//!
//! Included with `#[path = ".../affinity.rs"] mod affinity;`.

#![allow(dead_code)] // each program uses the part it needs

use std::io;

/// CPUs this process may run on, from its affinity mask, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes
    // into the set we own; pid 0 is the calling thread.
    let res =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if res != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// The CPU that index `i` names: the i-th allowed CPU, wrapping around when
/// fewer are allowed.
pub fn nth_cpu(i: usize) -> usize {
    let cpus = allowed_cpus();
    cpus[i % cpus.len().max(1)]
}

/// Pins the calling thread to CPU `cpu` (an absolute CPU number).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is ours.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sched_setaffinity only reads the set we own; pid 0 = this thread.
    let res = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if res != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
