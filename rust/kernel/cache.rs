// SPDX-License-Identifier: GPL-2.0

//! CPU cache maintenance that spans every CPU.
//!
//! C header: [`arch/x86/include/asm/smp.h`](srctree/arch/x86/include/asm/smp.h)

/// Writes back every dirty line of every online CPU's caches to memory and invalidates the
/// caches (x86 `WBINVD`, run on each CPU through an IPI), and waits until all are done.
///
/// This stalls every CPU for as long as its caches take to drain, which can be milliseconds
/// on a large machine: callers must limit who can trigger it.
#[cfg(CONFIG_X86)]
pub fn wbinvd_on_all_cpus() {
    // SAFETY: The function has no preconditions; it may sleep waiting for the other CPUs,
    // which safe Rust code in process context may do.
    unsafe { crate::bindings::wbinvd_on_all_cpus() }
}
