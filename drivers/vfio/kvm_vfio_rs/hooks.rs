// SPDX-License-Identifier: GPL-2.0

//! The calls this driver makes into KVM, VFIO and iommufd.
//!
//! Why they are here and not in the `kernel` crate: all three may be modules (`CONFIG_KVM=m`,
//! `CONFIG_VFIO=m`, `CONFIG_IOMMUFD=m`), and the `kernel` crate is part of vmlinux, which cannot
//! link against a module. So the wrappers live in the one module that uses them, confined to
//! this file: it declares the C functions (KVM's through `glue.c`, which also owns the
//! `struct kvm_device_ops`; VFIO's and iommufd's as they export them) and gives the rest of the
//! driver safe types for them. No other file of the driver declares or calls a C function.

use core::ptr::NonNull;
use kernel::{
    device::Device,
    ffi::{
        c_int,
        c_void, //
    },
    fs::File,
    iommu::domain::{
        self,
        Cap, //
    },
    notifier::NotifierBlock,
    prelude::*,
};

extern "C" {
    // glue.c
    fn kvm_vfio_rs_register() -> c_int;
    fn kvm_vfio_rs_unregister();
    fn kvm_vfio_rs_set_noncoherent(kvm: *mut c_void, on: bool);

    // vfio.ko (include/linux/vfio.h)
    fn vfio_file_is_valid(file: *mut c_void) -> bool;
    fn vfio_file_enforced_coherent(file: *mut c_void) -> bool;
    fn vfio_file_set_kvm(file: *mut c_void, kvm: *mut c_void);
    fn vfio_file_device(file: *mut c_void) -> *mut c_void;

    // iommufd.ko (include/linux/iommufd.h, include/linux/iommufd_coherency.h)
    fn iommufd_ctx_from_file(file: *mut c_void) -> *mut c_void;
    fn iommufd_ctx_put(ictx: *mut c_void);
    fn iommufd_ctx_coherency_register(ictx: *mut c_void, nb: *mut NotifierBlock) -> c_int;
    fn iommufd_ctx_coherency_unregister(ictx: *mut c_void, nb: *mut NotifierBlock);
    fn iommufd_ctx_noncoherent_dma(ictx: *mut c_void) -> bool;
    fn iommufd_coherency_register(nb: *mut NotifierBlock) -> c_int;
    fn iommufd_coherency_unregister(nb: *mut NotifierBlock);
    fn iommufd_dev_noncoherent_dma(dev: *mut c_void) -> bool;
}

/// The `struct file *` of `file`, as the C functions above take it.
fn raw(file: &File) -> *mut c_void {
    file.as_ptr().cast()
}

/// Registers the device type with KVM (`KVM_DEV_TYPE_VFIO`).
pub(crate) fn register_device_type() -> Result {
    // SAFETY: No preconditions; the ops table lives in this module, which unregisters it
    // before it goes (`unregister_device_type`).
    kernel::error::to_result(unsafe { kvm_vfio_rs_register() })
}

/// Undoes [`register_device_type`].
pub(crate) fn unregister_device_type() {
    // SAFETY: No preconditions; KVM waits for lookups in flight, and no device of ours exists
    // (each holds a reference on this module).
    unsafe { kvm_vfio_rs_unregister() }
}

/// The VM a KVM-VFIO device belongs to.
///
/// # Invariants
///
/// `ptr` is the `struct kvm` of the device that owns this value; the VM outlives its devices.
pub(crate) struct Kvm {
    /// The `struct kvm`.
    ptr: NonNull<c_void>,
}

// SAFETY: The VM may be used from any thread; the functions called on it below take their own
// locks.
unsafe impl Send for Kvm {}

// SAFETY: As above.
unsafe impl Sync for Kvm {}

impl Kvm {
    /// Wraps the `struct kvm` KVM passed to the device's create callback.
    ///
    /// # Safety
    ///
    /// `ptr` is the VM of a device being created, and the value is dropped before the device is
    /// released.
    pub(crate) unsafe fn from_raw(ptr: NonNull<c_void>) -> Self {
        // INVARIANT: As the caller guarantees.
        Self { ptr }
    }

    /// Tells KVM that the VM gained (`on`) or lost non-coherent DMA: from then on a guest WBINVD
    /// really flushes caches (or no longer does) and guest memory types are honoured. Each call
    /// makes KVM rebuild the VM's page tables, so callers make calls only on edges, balanced.
    pub(crate) fn set_noncoherent(&self, on: bool) {
        // SAFETY: `ptr` is a live VM (type invariant); the call takes its own locks.
        unsafe { kvm_vfio_rs_set_noncoherent(self.ptr.as_ptr(), on) }
    }

    /// Hands the VM to the VFIO file `file` (or takes it back, `None`), as vfio-pci drivers that
    /// need their VM expect.
    pub(crate) fn lend_to(&self, file: &File, lend: bool) {
        let kvm = if lend {
            self.ptr.as_ptr()
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: `file` is a valid VFIO file (callers check [`vfio_file_is_valid`]) and `kvm`
        // a live VM or NULL; VFIO takes its own reference on the VM.
        unsafe { vfio_file_set_kvm(raw(file), kvm) }
    }
}

/// Whether `file` is a VFIO group or device file.
pub(crate) fn vfio_file_valid(file: &File) -> bool {
    // SAFETY: `file` is a valid file; any file may be asked.
    unsafe { vfio_file_is_valid(raw(file)) }
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
    // SAFETY: `file` is a valid file; any file may be asked.
    let dev = unsafe { vfio_file_device(raw(file)) };
    if dev.is_null() {
        // SAFETY: As above.
        VfioFile::Group(unsafe { vfio_file_enforced_coherent(raw(file)) })
    } else {
        // SAFETY: `dev` is the device of the VFIO file `file`, which the caller holds open, so
        // it stays valid for this call.
        let device = unsafe { Device::from_raw(dev.cast()) };
        // iommufd binds only devices whose IOMMU offers coherent DMA.
        if domain::device_capable(device, Cap::CacheCoherency) {
            VfioFile::Device(DeviceKey(dev as usize))
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
        // SAFETY: The pointer is only compared by iommufd, never dereferenced.
        unsafe { iommufd_dev_noncoherent_dma(self.0 as *mut c_void) }
    }
}

/// Subscribes `nb` to the state of every device bound to iommufd.
///
/// # Safety
///
/// `nb` is a valid notifier block that stays in place until [`unwatch_devices`], which is
/// called before this module can be unloaded.
pub(crate) unsafe fn watch_devices(nb: *mut NotifierBlock) -> Result {
    // SAFETY: As the caller guarantees.
    kernel::error::to_result(unsafe { iommufd_coherency_register(nb) })
}

/// Undoes [`watch_devices`]; no callback runs once it returns.
///
/// # Safety
///
/// `nb` was registered with [`watch_devices`].
pub(crate) unsafe fn unwatch_devices(nb: *mut NotifierBlock) {
    // SAFETY: As the caller guarantees.
    unsafe { iommufd_coherency_unregister(nb) }
}

/// A reference on an iommufd context (an open `/dev/iommu`).
///
/// # Invariants
///
/// `ptr` is a `struct iommufd_ctx` on which this value owns a reference.
pub(crate) struct IommufdCtx {
    /// The `struct iommufd_ctx`.
    ptr: NonNull<c_void>,
}

// SAFETY: The context may be used and released from any thread.
unsafe impl Send for IommufdCtx {}

// SAFETY: Its query takes no lock of the caller's and is safe from any thread.
unsafe impl Sync for IommufdCtx {}

impl IommufdCtx {
    /// The context of `file` if it is an open `/dev/iommu`, with a new reference.
    pub(crate) fn of_file(file: &File) -> Option<Self> {
        // SAFETY: `file` is a valid file; any file may be asked.
        let ptr = unsafe { iommufd_ctx_from_file(raw(file)) };
        if kernel::error::from_err_ptr(ptr).is_err() {
            return None;
        }
        // INVARIANT: On success the function returned a context with a reference for us.
        NonNull::new(ptr).map(|ptr| Self { ptr })
    }

    /// Whether a device bound to the context has non-coherent DMA present now.
    pub(crate) fn noncoherent_dma(&self) -> bool {
        // SAFETY: We hold a reference on the context (type invariant).
        unsafe { iommufd_ctx_noncoherent_dma(self.ptr.as_ptr()) }
    }

    /// Subscribes `nb` to the context's state.
    ///
    /// # Safety
    ///
    /// `nb` is a valid notifier block that stays in place until [`IommufdCtx::unwatch`], which
    /// is called before `self` is dropped.
    pub(crate) unsafe fn watch(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: We hold a reference on the context; the rest as the caller guarantees.
        kernel::error::to_result(unsafe { iommufd_ctx_coherency_register(self.ptr.as_ptr(), nb) })
    }

    /// Undoes [`IommufdCtx::watch`]; no callback runs once it returns.
    ///
    /// # Safety
    ///
    /// `nb` was registered with [`IommufdCtx::watch`] on this context.
    pub(crate) unsafe fn unwatch(&self, nb: *mut NotifierBlock) {
        // SAFETY: We hold a reference on the context; the rest as the caller guarantees.
        unsafe { iommufd_ctx_coherency_unregister(self.ptr.as_ptr(), nb) }
    }
}

impl Drop for IommufdCtx {
    fn drop(&mut self) {
        // SAFETY: We own a reference on the context (type invariant) and give it back.
        unsafe { iommufd_ctx_put(self.ptr.as_ptr()) }
    }
}
