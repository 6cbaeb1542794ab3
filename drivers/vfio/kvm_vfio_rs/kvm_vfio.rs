// SPDX-License-Identifier: GPL-2.0

//! The KVM-VFIO device (`KVM_DEV_TYPE_VFIO`) in Rust, with a live coherency signal.
//!
//! A VMM adds the files through which its guest's devices reach memory (VFIO group and device
//! files, and, as our extension, `/dev/iommu` files) to the VM's KVM-VFIO device. KVM must then
//! run a real cache flush for a guest WBINVD exactly while one of those devices can write memory
//! behind the CPU caches ("non-coherent DMA present"); otherwise the instruction can safely do
//! nothing.
//!
//! Upstream's device decides once, when a file is added, from what the device's IOMMU could do.
//! This one follows the state: every added file is held and watched (a device file through
//! iommufd's per-device signal, a `/dev/iommu` file through its context's signal; the answer of
//! a group file, or of the device file of a device no IOMMU translates for, is fixed when it is
//! added, as upstream), each file's contribution is kept up to date by the notifier callbacks,
//! and KVM is told only when the VM as a whole goes from "no file contributes" to "some file
//! does" and back, because each such edge makes KVM rebuild the VM's page tables. Userspace can
//! read the state and why (which files contribute), and can force real flushes off for the VM.
//! The attributes are described in `include/uapi/linux/kvm_vfio_coherency.h`.
//!
//! The parts, each using only those below it:
//!
//! - this file: the module, and the entry points `glue.c` calls for KVM;
//! - `device.rs`: a VM's device, its added files and their subscriptions, the attributes;
//! - `gate.rs`: the per-VM count of contributing files and the edges told to KVM;
//! - `hooks.rs`: the C functions of KVM, VFIO and iommufd, behind safe types.
//!
//! # Lock order
//!
//! Outermost first:
//!
//! 1. `kvm->lock`, held by KVM when it creates or releases the device (the entry points below).
//! 2. `KvmVfio::files`, a device's list of added files. Files are subscribed to and
//!    unsubscribed from their notifier chains under it, so a chain's rw-semaphore nests inside.
//!    Callbacks never take it.
//! 3. A notifier chain's rw-semaphore, read-held by iommufd while it runs the callbacks.
//! 4. `Gate::state`, the VM's counts; every file's `Contribution` flag is `LockedBy` it. A
//!    callback holds it while it reads its file's state from iommufd and while it calls KVM, so
//!    that the edges reach KVM in the order they were decided.
//! 5. iommufd's locks behind its state queries, and KVM's own locks behind
//!    `kvm_arch_{,un}register_noncoherent_dma()`.
//!
//! Removing a file unsubscribes it (which waits for a callback in flight) before it stops
//! counting, so a removed file cannot come back into the count.

use kernel::{
    ffi::c_void,
    prelude::*,
    uapi, //
};

mod device;
mod gate;
mod hooks;

use device::KvmVfio;
use hooks::{
    Kvm,
    RawKvm, //
};

module! {
    type: KvmVfioModule,
    name: "kvm_vfio_rs",
    authors: ["iommufd-rs developers"],
    description: "KVM-VFIO device with a live cache-coherency signal",
    license: "GPL",
    alias: ["kvm-device-type-4"],
}

/// `KVM_DEV_TYPE_VFIO`, the number the module alias above spells out.
const _: () = assert!(uapi::kvm_device_type_KVM_DEV_TYPE_VFIO == 4);

/// The module: the device type's registration with KVM.
struct KvmVfioModule;

impl kernel::Module for KvmVfioModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        hooks::register_device_type()?;
        Ok(Self)
    }
}

impl Drop for KvmVfioModule {
    fn drop(&mut self) {
        hooks::unregister_device_type();
    }
}

// The entry points of `glue.c`. The device's state is the `void *private` of its
// `struct kvm_device`: a `Pin<KBox<KvmVfio>>` turned into a raw pointer by `kvm_vfio_rs_create`
// and back by `kvm_vfio_rs_release`.

/// Creates the device of the VM `kvm` and stores its state in `*out`.
///
/// # Safety
///
/// `kvm` is the VM of the device being created (KVM holds its lock), and `out` is valid for
/// writes.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_create(kvm: *mut RawKvm, out: *mut *mut c_void) -> c_int {
    let Some(kvm) = core::ptr::NonNull::new(kvm) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `kvm` is the VM of the device being created. The value goes into the device's
    // gate, which goes when the device is released: its owners are the device state, dropped
    // in `kvm_vfio_rs_release`, and the files' contributions, all dropped before it there.
    let kvm = unsafe { Kvm::from_raw(kvm) };
    match KvmVfio::new(kvm) {
        Ok(dev) => {
            // SAFETY: The caller guarantees that `out` is valid for writes. The pointer goes
            // back to a pinned box only in `kvm_vfio_rs_release`, so the device never moves.
            unsafe { *out = KBox::into_raw(Pin::into_inner_unchecked(dev)).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Releases the device `state` (its file was closed; KVM holds the VM's lock).
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and is not used again.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_release(state: *mut c_void) {
    // SAFETY: The caller guarantees that `state` is the pointer `kvm_vfio_rs_create` made from
    // a pinned `KBox<KvmVfio>` and that nothing uses it any more, so the box may be rebuilt,
    // pinned again as it was, and dropped.
    let dev = unsafe { Pin::new_unchecked(KBox::from_raw(state.cast::<KvmVfio>())) };
    dev.remove_all();
    drop(dev);
}

/// The device of `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
unsafe fn device<'a>(state: *mut c_void) -> &'a KvmVfio {
    // SAFETY: The caller guarantees that `state` points to a live `KvmVfio`: KVM releases the
    // device only after the last ioctl on it returned, so it outlives the borrow.
    unsafe { &*state.cast::<KvmVfio>() }
}

/// `KVM_SET_DEVICE_ATTR` on the device `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_set_attr(
    state: *mut c_void,
    group: u32,
    attr: u64,
    addr: u64,
) -> c_int {
    // SAFETY: The caller guarantees that `state` is a device that was created and not yet
    // released.
    match unsafe { device(state) }.set_attr(group, attr, addr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `KVM_GET_DEVICE_ATTR` on the device `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_get_attr(
    state: *mut c_void,
    group: u32,
    attr: u64,
    addr: u64,
) -> c_int {
    // SAFETY: The caller guarantees that `state` is a device that was created and not yet
    // released.
    match unsafe { device(state) }.get_attr(group, attr, addr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `KVM_HAS_DEVICE_ATTR`.
#[no_mangle]
extern "C" fn kvm_vfio_rs_has_attr(group: u32, attr: u64) -> c_int {
    match device::has_attr(group, attr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
