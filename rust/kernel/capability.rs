// SPDX-License-Identifier: GPL-2.0

//! Capabilities of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h)

use crate::{
    bindings,
    ffi::c_int, //
};

/// A POSIX capability (one of the kernel's `CAP_*` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability(u32);

impl Capability {
    /// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
    pub const IPC_LOCK: Self = Self(bindings::CAP_IPC_LOCK);
    /// `CAP_SYS_ADMIN`: the catch-all administrative capability.
    pub const SYS_ADMIN: Self = Self(bindings::CAP_SYS_ADMIN);
    /// `CAP_SYS_RESOURCE`: override resource limits.
    pub const SYS_RESOURCE: Self = Self(bindings::CAP_SYS_RESOURCE);
}

/// Returns whether the current task has `cap` in the initial user namespace.
///
/// As with C's `capable()`, a successful check marks the task as having used the capability (it
/// may be audited), so ask only when the answer decides something.
///
/// # Examples
///
/// ```
/// use kernel::capability::{capable, Capability};
///
/// // Any task may ask; the answer depends on its credentials.
/// let _may_override_limits = capable(Capability::SYS_RESOURCE);
/// ```
pub fn capable(cap: Capability) -> bool {
    // The `CAP_*` numbers are below 64, so this cannot truncate.
    let cap = cap.0 as c_int;
    // SAFETY: `capable()` may be called from any task context, with any capability number (an
    // unknown one is simply refused).
    unsafe { bindings::capable(cap) }
}
