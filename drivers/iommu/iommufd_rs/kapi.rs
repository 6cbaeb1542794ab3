// SPDX-License-Identifier: GPL-2.0

//! The Rust side of the in-kernel API VFIO links against.
//!
//! `kapi.c` carries the exact C prototypes and the symbol exports of `include/linux/iommufd.h`
//! and calls the functions here, which are the only place where pointers from C enter the
//! driver. `struct iommufd_ctx *` is a [`Ctx`] and `struct iommufd_device *` a [`Bound`]; both
//! are opaque to C. The C side guarantees what the `# Safety` sections ask: VFIO only passes
//! pointers it got from these functions and still holds.

use core::ptr::NonNull;
use kernel::{
    device::Device,
    fs::File,
    iommu::domain::Group,
    notifier::NotifierBlock,
    prelude::*,
    sync::aref::AlwaysRefCounted, //
};

use crate::{
    ctx::Ctx,
    device::Bound,
    signal::DeviceSignal, //
};

/// `iommufd_ctx_from_file`: if `file` is a `/dev/iommu` file, stores its context in `*out`
/// with a new reference and returns 0; `-EBADFD` otherwise.
///
/// # Safety
///
/// `file` is a valid file and `out` valid for writes.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_from_file(file: *const File, out: *mut *const Ctx) -> c_int {
    // SAFETY: The caller passes a valid file, which it holds for the duration of the call.
    let file = unsafe { &*file };
    let Some(ctx) = crate::ctx_of_file(file) else {
        return EBADFD.to_errno();
    };
    // The reference on the context is a reference on its file.
    file.inc_ref();
    // SAFETY: The caller passes a valid `out`.
    unsafe { *out = &*ctx };
    0
}

/// `iommufd_ctx_get`: takes another reference on `ctx`.
///
/// # Safety
///
/// The caller holds a reference on `ctx`.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_get(ctx: *const Ctx) {
    // SAFETY: The caller holds a reference, so the context is alive.
    unsafe { &*ctx }.file().inc_ref();
}

/// `iommufd_ctx_put`: drops a reference on `ctx`, which may free it.
///
/// # Safety
///
/// The caller holds a reference on `ctx`, which it gives up.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_put(ctx: *const Ctx) {
    // SAFETY: The caller holds a reference, so the context and its file are alive.
    let file = NonNull::from(unsafe { &*ctx }.file());
    // SAFETY: The caller's reference is a reference on the file, given up here; the context is
    // not touched afterwards.
    unsafe { File::dec_ref(file) };
}

/// `iommufd_ctx_has_group`: whether a device of `group` is bound to `ctx`.
///
/// # Safety
///
/// `ctx` is NULL or the caller holds a reference on it; `group` is NULL or a valid group.
/// (VFIO asks about a NULL context for a device file never bound; the answer is no.)
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_has_group(ctx: *const Ctx, group: *const Group) -> bool {
    if ctx.is_null() || group.is_null() {
        return false;
    }
    // SAFETY: Both are non-NULL, so `ctx` is referenced by the caller (the context lives as
    // long as its file) and `group` is a valid group, for the duration of the call.
    unsafe { (*ctx).groups.contains(&*group) }
}

/// `iommufd_device_bind`: binds `dev` to `ctx`, stores the object id in `*id` and the handle in
/// `*out`. Returns 0 or a negative errno.
///
/// # Safety
///
/// The caller holds a reference on `ctx` and on `dev`; `id` and `out` are valid for writes.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_bind(
    ctx: *const Ctx,
    dev: *const Device,
    id: *mut u32,
    out: *mut *mut Bound,
) -> c_int {
    // SAFETY: The caller holds references on the context's file and on the device, which
    // keep both alive for the duration of the call.
    let (ctx, dev) = unsafe { (&*ctx, &*dev) };
    match Bound::bind(ctx, dev) {
        Ok(bound) => {
            // SAFETY: `id` and `out` are valid for writes.
            unsafe {
                *id = bound.id();
                *out = KBox::into_raw(bound);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_device_unbind`.
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is not used again.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_unbind(bound: *mut Bound) {
    // SAFETY: The caller gives back the box `iommufd_rs_device_bind` made.
    Bound::unbind(unsafe { KBox::from_raw(bound) });
}

/// Runs `op` (attach or replace) on `bound` for the page table `*pt_id` and stores the HWPT it
/// ended up on in `*pt_id`; the errno otherwise.
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is still bound; `pt_id` is valid.
unsafe fn to_pt(bound: *const Bound, pt_id: *mut u32, op: fn(&Bound, u32) -> Result<u32>) -> c_int {
    // SAFETY: `bound` is a live `Bound` (still bound, so not yet given back to `unbind`), and
    // `pt_id` points to a `u32` the caller lends us for the call.
    let (bound, pt_id) = unsafe { (&*bound, &mut *pt_id) };
    match op(bound, *pt_id) {
        Ok(id) => {
            *pt_id = id;
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_device_attach` (no PASID): attaches to `*pt_id` and stores the HWPT id there.
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is still bound; `pt_id` is valid.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_attach(bound: *const Bound, pt_id: *mut u32) -> c_int {
    // SAFETY: This function's contract is `to_pt`'s: a bound device and a valid `pt_id`.
    unsafe { to_pt(bound, pt_id, Bound::attach) }
}

/// `iommufd_device_replace` (no PASID): moves to `*pt_id` and stores the HWPT id there.
///
/// # Safety
///
/// As for [`iommufd_rs_device_attach`].
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_replace(bound: *const Bound, pt_id: *mut u32) -> c_int {
    // SAFETY: This function's contract is `to_pt`'s: a bound device and a valid `pt_id`.
    unsafe { to_pt(bound, pt_id, Bound::replace) }
}

/// `iommufd_device_detach` (no PASID).
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is still bound.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_detach(bound: *const Bound) {
    // SAFETY: `bound` is still bound, so the `Bound` made at bind is alive.
    unsafe { &*bound }.detach();
}

/// `iommufd_device_to_ictx`: the context the device is bound to (no new reference).
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is still bound.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_to_ictx(bound: *const Bound) -> *const Ctx {
    // SAFETY: `bound` is still bound, so the `Bound` made at bind is alive.
    unsafe { &*bound }.ctx()
}

/// `iommufd_device_to_id`: the device's object id.
///
/// # Safety
///
/// `bound` came from [`iommufd_rs_device_bind`] and is still bound.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_device_to_id(bound: *const Bound) -> u32 {
    // SAFETY: `bound` is still bound, so the `Bound` made at bind is alive.
    unsafe { &*bound }.id()
}

/// `iommufd_ctx_coherency_register`: adds `nb` to the context's coherency subscribers.
///
/// # Safety
///
/// The caller holds a reference on `ctx`; `nb` is a valid notifier block that stays valid and
/// in place until [`iommufd_rs_ctx_coherency_unregister`], called before the reference is
/// dropped.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_coherency_register(
    ctx: *const Ctx,
    nb: *mut NotifierBlock,
) -> c_int {
    // SAFETY: The caller's reference keeps the context, and so its chain, alive; `nb` stays
    // valid and in place until it is unregistered, before that reference goes.
    match unsafe { (*ctx).coherency.register(nb) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_ctx_coherency_unregister`.
///
/// # Safety
///
/// The caller holds a reference on `ctx`; `nb` is a valid notifier block.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_coherency_unregister(ctx: *const Ctx, nb: *mut NotifierBlock) {
    // SAFETY: The caller's reference keeps the context alive; `nb` is a valid notifier block.
    let _ = unsafe { (*ctx).coherency.unregister(nb) };
}

/// `iommufd_ctx_noncoherent_dma`: whether a device bound to `ctx` does non-coherent DMA.
///
/// # Safety
///
/// The caller holds a reference on `ctx`.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_ctx_noncoherent_dma(ctx: *const Ctx) -> bool {
    // SAFETY: The caller's reference keeps the context alive for the call.
    unsafe { &*ctx }.noncoherent_dma()
}

/// `iommufd_coherency_register`: adds `nb` to the subscribers of every bound device's state.
///
/// # Safety
///
/// `nb` is a notifier block that stays valid and in place until
/// [`iommufd_rs_coherency_unregister`], called before the caller's module can go.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_coherency_register(nb: *mut NotifierBlock) -> c_int {
    let Some(signal) = DeviceSignal::get() else {
        return ENODEV.to_errno();
    };
    // SAFETY: `nb` stays valid and in place until it is unregistered, which the caller does
    // before its module, and so `nb`, can go.
    match unsafe { signal.register(nb) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `iommufd_coherency_unregister`.
///
/// # Safety
///
/// `nb` is a valid notifier block.
#[no_mangle]
unsafe extern "C" fn iommufd_rs_coherency_unregister(nb: *mut NotifierBlock) {
    if let Some(signal) = DeviceSignal::get() {
        // SAFETY: `nb` is a valid notifier block (the caller's contract).
        let _ = unsafe { signal.unregister(nb) };
    }
}

/// `iommufd_dev_noncoherent_dma`: whether `dev`, bound to any context, does non-coherent DMA
/// now. `dev` is only compared, never dereferenced.
#[no_mangle]
extern "C" fn iommufd_rs_dev_noncoherent_dma(dev: *const Device) -> bool {
    DeviceSignal::get().is_some_and(|s| s.noncoherent(dev as usize))
}

extern "C" {
    /// The `allow_unsafe_interrupts` module parameter, defined in `kapi.c`.
    fn iommufd_rs_allow_unsafe_interrupts() -> bool;
}

/// Whether devices whose MSIs the platform cannot isolate may be bound: the
/// `allow_unsafe_interrupts` module parameter, which an administrator may change at any time.
pub(crate) fn allow_unsafe_interrupts() -> bool {
    // SAFETY: The function only reads the parameter, with `READ_ONCE`; it has no precondition.
    unsafe { iommufd_rs_allow_unsafe_interrupts() }
}
