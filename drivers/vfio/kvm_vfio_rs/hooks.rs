// SPDX-License-Identifier: GPL-2.0

//! The calls this driver makes into KVM, VFIO and iommufd: the driver's C seam.
//!
//! Why they are here and not in the `kernel` crate: all three may be modules (`CONFIG_KVM=m`,
//! `CONFIG_VFIO=m`, `CONFIG_IOMMUFD=m`), and the `kernel` crate is part of vmlinux, which cannot
//! link against a module. So the wrappers live in the one module that uses them, confined to
//! this file: it declares the C functions (KVM's through `glue.c`, which also owns the
//! `struct kvm_device_ops`; VFIO's and iommufd's as they export them) with the types bindgen
//! generates for their C structs, and gives the rest of the driver safe types for them. No other
//! file of the driver declares or calls a C function, or names a C type; the functions `glue.c`
//! calls back are in the crate root and receive the VM as a [`RawKvm`].

use core::ptr::NonNull;
use kernel::{
    bindings::{
        device,
        file,
        iommufd_ctx,
        kvm, //
    },
    device::Device,
    ffi::c_int,
    fs::File,
    iommu::domain::{
        self,
        Cap, //
    },
    notifier::NotifierBlock,
    prelude::*,
};

// The prototypes of the C functions, as their headers declare them. A `struct notifier_block *`
// is written `*mut NotifierBlock`: the kernel crate's transparent wrapper of bindgen's
// `notifier_block`, which is what `Subscriber::as_block` hands out.
//
// rustc calls bindgen's `struct file` and `struct device` not FFI-safe, because with some
// configurations they contain empty structs (`dev_archdata`, `ref_tracker_dir`). Only pointers to
// them cross this boundary, never values, so their layout does not matter here; the `bindings`
// crate allows the same lint for the same reason. `allow`, not `expect`: whether the lint fires
// depends on the configuration.
#[allow(
    improper_ctypes,
    reason = "only pointers to bindgen's structs cross the boundary"
)]
extern "C" {
    // glue.c
    fn kvm_vfio_rs_register() -> c_int;
    fn kvm_vfio_rs_unregister();
    fn kvm_vfio_rs_set_noncoherent(kvm: *mut kvm, on: bool);

    // vfio.ko (include/linux/vfio.h)
    fn vfio_file_is_valid(file: *mut file) -> bool;
    fn vfio_file_enforced_coherent(file: *mut file) -> bool;
    fn vfio_file_set_kvm(file: *mut file, kvm: *mut kvm);
    fn vfio_file_device(file: *mut file) -> *mut device;

    // iommufd.ko (include/linux/iommufd.h, include/linux/iommufd_coherency.h)
    fn iommufd_ctx_from_file(file: *mut file) -> *mut iommufd_ctx;
    fn iommufd_ctx_put(ictx: *mut iommufd_ctx);
    fn iommufd_ctx_coherency_register(ictx: *mut iommufd_ctx, nb: *mut NotifierBlock) -> c_int;
    fn iommufd_ctx_coherency_unregister(ictx: *mut iommufd_ctx, nb: *mut NotifierBlock);
    fn iommufd_ctx_noncoherent_dma(ictx: *mut iommufd_ctx) -> bool;
    fn iommufd_coherency_register(nb: *mut NotifierBlock) -> c_int;
    fn iommufd_coherency_unregister(nb: *mut NotifierBlock);
    fn iommufd_dev_noncoherent_dma(dev: *mut device) -> bool;
}

/// The C `struct kvm`, as `glue.c` passes it to the crate root's entry points.
pub(crate) type RawKvm = kvm;

/// Registers the device type with KVM (`KVM_DEV_TYPE_VFIO`).
pub(crate) fn register_device_type() -> Result {
    // SAFETY: The function takes no argument. The ops table it registers is a static of this
    // module, and the module unregisters it (`unregister_device_type`) before it goes.
    kernel::error::to_result(unsafe { kvm_vfio_rs_register() })
}

/// Undoes [`register_device_type`].
pub(crate) fn unregister_device_type() {
    // SAFETY: The function takes no argument. KVM waits for lookups of the type in flight, and
    // no device of ours exists any more: each holds a reference on this module.
    unsafe { kvm_vfio_rs_unregister() }
}

/// The VM a KVM-VFIO device belongs to.
///
/// # Invariants
///
/// `ptr` is the `struct kvm` of the device that owns this value; the VM outlives its devices.
pub(crate) struct Kvm {
    /// The `struct kvm`.
    ptr: NonNull<kvm>,
}

// SAFETY: The value is only a pointer to a VM, which is not tied to the thread that created the
// device: KVM releases the device, and so this value, from whichever thread closes its file.
unsafe impl Send for Kvm {}

// SAFETY: The only calls made through a shared `Kvm` (`set_noncoherent`, `lend_to`) take the
// VM's own locks or atomics, so they may run on several threads at once.
unsafe impl Sync for Kvm {}

impl Kvm {
    /// Wraps the `struct kvm` KVM passed to the device's create callback.
    ///
    /// # Safety
    ///
    /// `ptr` is the VM of a device being created, and the value is dropped before the device is
    /// released.
    pub(crate) unsafe fn from_raw(ptr: NonNull<RawKvm>) -> Self {
        // INVARIANT: The caller guarantees that `ptr` is the device's VM and that this value
        // does not outlive the device, which the VM outlives.
        Self { ptr }
    }

    /// Tells KVM that the VM gained (`on`) or lost non-coherent DMA: from then on a guest WBINVD
    /// really flushes caches (or no longer does) and guest memory types are honoured. Each call
    /// makes KVM rebuild the VM's page tables, so callers make calls only on edges, balanced.
    pub(crate) fn set_noncoherent(&self, on: bool) {
        // SAFETY: `ptr` is a live VM (type invariant); KVM's register and unregister calls
        // update an atomic count and zap the VM's mappings under its own locks.
        unsafe { kvm_vfio_rs_set_noncoherent(self.ptr.as_ptr(), on) }
    }

    /// Hands the VM to the VFIO file `file` (`lend`) or takes it back, as vfio-pci drivers that
    /// need their VM expect.
    pub(crate) fn lend_to(&self, file: &File, lend: bool) {
        let kvm = if lend {
            self.ptr.as_ptr()
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: `file` is a valid VFIO file (callers check [`vfio_file_valid`]) and `kvm` a
        // live VM (type invariant) or NULL; VFIO takes its own reference on the VM.
        unsafe { vfio_file_set_kvm(file.as_ptr(), kvm) }
    }
}

/// Whether `file` is a VFIO group or device file.
pub(crate) fn vfio_file_valid(file: &File) -> bool {
    // SAFETY: `file` is a live file, which the reference keeps open; VFIO only compares its
    // `f_op` with its own.
    unsafe { vfio_file_is_valid(file.as_ptr()) }
}

/// What a VFIO file is.
pub(crate) enum VfioFile {
    /// A device cdev file, opened on the device with this key (see [`DeviceKey`]).
    Device(DeviceKey),
    /// A device cdev file of a device no IOMMU translates for (VFIO's no-IOMMU mode): it can
    /// never be bound to iommufd, and nothing makes its DMA snoop.
    Untranslated,
    /// A group file whose IOMMU makes DMA of all its devices snoop (`true`) or not.
    Group(bool),
}

/// Classifies the VFIO file `file`.
pub(crate) fn vfio_file_kind(file: &File) -> VfioFile {
    // SAFETY: `file` is a live file, which the reference keeps open; VFIO answers NULL for any
    // file that is not one of its device files.
    let dev = unsafe { vfio_file_device(file.as_ptr()) };
    if dev.is_null() {
        // SAFETY: `file` is live, as for the call above; VFIO only looks up the group or device
        // behind it and answers `true` for any other file.
        VfioFile::Group(unsafe { vfio_file_enforced_coherent(file.as_ptr()) })
    } else {
        // SAFETY: `dev` is the device of the VFIO device file `file`, which holds the device
        // while it is open, and the caller holds `file` open for the duration of this call.
        let device = unsafe { Device::from_raw(dev) };
        // iommufd binds only devices whose IOMMU offers coherent DMA.
        if domain::device_capable(device, Cap::CacheCoherency) {
            VfioFile::Device(DeviceKey(dev.expose_provenance()))
        } else {
            VfioFile::Untranslated
        }
    }
}

/// A `struct device` named by address, to ask iommufd about; never dereferenced.
#[derive(Clone, Copy)]
pub(crate) struct DeviceKey(usize);

impl DeviceKey {
    /// Whether iommufd reports non-coherent DMA present for the device (bound to any iommufd
    /// context and attached to a page table that does not force snooping, and able to issue
    /// No-Snoop). A device that is not bound has none.
    pub(crate) fn noncoherent_dma(self) -> bool {
        let dev = core::ptr::with_exposed_provenance_mut::<device>(self.0);
        // SAFETY: iommufd only compares the pointer with those of the devices bound to it and
        // never dereferences it, so it may name a device that is gone.
        unsafe { iommufd_dev_noncoherent_dma(dev) }
    }
}

/// Subscribes `nb` to the state of every device bound to iommufd.
///
/// # Safety
///
/// `nb` is a valid notifier block that stays in place until [`unwatch_devices`], which is
/// called before this module can be unloaded.
pub(crate) unsafe fn watch_devices(nb: *mut NotifierBlock) -> Result {
    // SAFETY: The caller guarantees that `nb` is valid and stays in place until it is
    // unregistered, before this module (which holds the callback) can go.
    kernel::error::to_result(unsafe { iommufd_coherency_register(nb) })
}

/// Undoes [`watch_devices`]; no callback runs once it returns.
///
/// # Safety
///
/// `nb` was registered with [`watch_devices`].
pub(crate) unsafe fn unwatch_devices(nb: *mut NotifierBlock) {
    // SAFETY: The caller guarantees that `nb` is on the all-devices chain, from which it is
    // removed here.
    unsafe { iommufd_coherency_unregister(nb) }
}

/// A reference on an iommufd context (an open `/dev/iommu`).
///
/// # Invariants
///
/// `ptr` is a `struct iommufd_ctx` on which this value owns a reference.
pub(crate) struct IommufdCtx {
    /// The `struct iommufd_ctx`.
    ptr: NonNull<iommufd_ctx>,
}

// SAFETY: The value owns a counted reference, which iommufd lets any thread give back
// (`iommufd_ctx_put` is not tied to the thread that took it).
unsafe impl Send for IommufdCtx {}

// SAFETY: The calls made through a shared `IommufdCtx` (the state query and (un)subscribing)
// take the context's own locks, so they may run on several threads at once.
unsafe impl Sync for IommufdCtx {}

impl IommufdCtx {
    /// The context of `file` if it is an open `/dev/iommu`, with a new reference.
    pub(crate) fn of_file(file: &File) -> Option<Self> {
        // SAFETY: `file` is a live file, which the reference keeps open; iommufd answers
        // an error pointer for a file that is not `/dev/iommu`.
        let ptr = unsafe { iommufd_ctx_from_file(file.as_ptr()) };
        if kernel::error::from_err_ptr(ptr).is_err() {
            return None;
        }
        // INVARIANT: On success the function returned a context with a reference for us.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Whether a device bound to the context has non-coherent DMA present now.
    pub(crate) fn noncoherent_dma(&self) -> bool {
        // SAFETY: We hold a reference on the context (type invariant), which keeps it alive.
        unsafe { iommufd_ctx_noncoherent_dma(self.ptr.as_ptr()) }
    }

    /// Subscribes `nb` to the context's state.
    ///
    /// # Safety
    ///
    /// `nb` is a valid notifier block that stays in place until [`IommufdCtx::unwatch`], which
    /// is called before `self` is dropped.
    pub(crate) unsafe fn watch(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: Our reference keeps the context alive (type invariant), and the caller
        // guarantees that `nb` stays valid and in place until it is unregistered from it.
        kernel::error::to_result(unsafe { iommufd_ctx_coherency_register(self.ptr.as_ptr(), nb) })
    }

    /// Undoes [`IommufdCtx::watch`]; no callback runs once it returns.
    ///
    /// # Safety
    ///
    /// `nb` was registered with [`IommufdCtx::watch`] on this context.
    pub(crate) unsafe fn unwatch(&self, nb: *mut NotifierBlock) {
        // SAFETY: Our reference keeps the context alive (type invariant), and the caller
        // guarantees that `nb` is on this context's chain.
        unsafe { iommufd_ctx_coherency_unregister(self.ptr.as_ptr(), nb) }
    }
}

impl Drop for IommufdCtx {
    fn drop(&mut self) {
        // SAFETY: We own a reference on the context (type invariant) and give it back; the
        // value is not used again.
        unsafe { iommufd_ctx_put(self.ptr.as_ptr()) }
    }
}
