//! CPU affinity of the calling thread: the one implementation, used by
//! `Runtime::run_on_every_core`'s pinning and, through `#[path]`, by the benchmark
//! programs (bench/), so that "CPU i" means the same everywhere: the i-th
//! CPU of the process's affinity mask (`taskset -c 2,3` and "CPU 0" land on
//! CPU 2).
//!
//! Self-contained (std and libc only) so that a program outside the crate
//! can include the file.

use std::io;

/// CPUs this process may run on, from its affinity mask, in ascending
/// order; every CPU `available_parallelism` counts if the mask is
/// unreadable.
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
#[allow(dead_code)] // the benches' way in; the runtime reuses one mask read
pub fn nth_cpu(i: usize) -> usize {
    let cpus = allowed_cpus();
    cpus[i % cpus.len().max(1)]
}

/// Pins the calling thread to CPU `cpu` (an absolute CPU number).
///
/// # Errors
///
/// `InvalidInput` for a CPU at or beyond `CPU_SETSIZE`; sched_setaffinity(2)
/// errors (`EINVAL` for a CPU that is offline or outside the cgroup).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    set_current_thread_cpus(&[cpu])
}

/// Lets the calling thread run on exactly `cpus` (absolute CPU numbers).
///
/// # Errors
///
/// As [`pin_current_thread`].
pub fn set_current_thread_cpus(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond CPU_SETSIZE"),
            ));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is ours.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: sched_setaffinity only reads the set we own; pid 0 = this thread.
    let res = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if res != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
