// SPDX-License-Identifier: GPL-2.0

//! CPU cache maintenance that spans several CPUs.
//!
//! C header: [`arch/x86/include/asm/smp.h`](srctree/arch/x86/include/asm/smp.h)

#[cfg(CONFIG_X86)]
use crate::{
    alloc::flags::GFP_KERNEL,
    cpumask::{
        Cpumask,
        CpumaskVar, //
    },
    error::Result,
};

/// Writes back every dirty line of the caches of the CPUs in `cpus` to memory and invalidates
/// those caches (x86 `WBINVD`, run on each through an IPI), and waits until all are done.
/// Offline CPUs in `cpus` are skipped.
///
/// This stalls each of those CPUs for as long as its caches take to drain, which can be
/// milliseconds on a large machine, and a cache shared with other CPUs is drained for them
/// too: callers must limit who can trigger it, and how often.
#[cfg(CONFIG_X86)]
pub fn wbinvd_on_cpus(cpus: &Cpumask) {
    // SAFETY: `cpus` is a valid cpumask for the duration of the call, which only reads it
    // (the C prototype lacks the `const`); the function may sleep waiting for the other CPUs,
    // which safe Rust code in process context may do.
    unsafe { crate::bindings::wbinvd_on_cpus_mask(cpus.as_raw()) }
}

/// [`wbinvd_on_cpus`] on the CPUs the current task may run on, as its affinity says at the
/// time of the call: the flush a task needs for data it may have left in caches itself.
#[cfg(CONFIG_X86)]
pub fn wbinvd_on_current_cpus() -> Result {
    let cpus = CpumaskVar::new_zero(GFP_KERNEL)?;
    // SAFETY: `cpus` is a valid cpumask (its bits are interior-mutable), which the helper
    // overwrites and does not keep.
    unsafe { crate::bindings::current_cpus_allowed(cpus.as_raw()) };
    wbinvd_on_cpus(&cpus);
    Ok(())
}
