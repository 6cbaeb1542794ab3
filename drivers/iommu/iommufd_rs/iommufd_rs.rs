// SPDX-License-Identifier: GPL-2.0

//! `/dev/iommu` in Rust: the iommufd user API for IOMMU-backed I/O address spaces.
//!
//! Each open of `/dev/iommu` is a [`ctx::Ctx`] holding a table of objects named by small integer
//! ids ([`object`]). Userspace drives it with the ioctls in `include/uapi/linux/iommufd.h`, all
//! routed through one table and dispatcher that enforces the extensible-struct rules
//! ([`ioctl`]); the handlers sit below it, by what they work on. The objects are I/O address
//! spaces ([`ioas`]), whose IOVA bookkeeping lives in [`io_pagetable`] over the memory of
//! [`pages`] and the range arithmetic of [`double_span`]; I/O page tables that mirror them
//! ([`hw_pagetable`]); and devices VFIO binds ([`group`]), whose VFIO-facing operations are in
//! [`device`] and whose C entry points are in [`kapi`].
//!
//! # Layering
//!
//! From the top: the crate root and [`ioctl`] (with its handlers), [`kapi`] and [`device`],
//! [`ctx`] (which names every object type in its `Object` enum), then the object types
//! ([`group`], [`hw_pagetable`], [`ioas`]) and below them what knows no object type:
//! [`io_pagetable`], [`pages`], [`double_span`], the generic [`object`] table, [`coherency`],
//! [`signal`] and [`uapi`]. A module uses only modules below it; nothing below [`ctx`] names the
//! context, and the ioctl handlers and [`device`] do not use each other.
//!
//! The module is named `iommufd`, like the C driver it replaces when `CONFIG_IOMMUFD_RS=y`.
//!
//! # Object lifetimes
//!
//! Objects are reference counted and always named by identity inside the kernel; ids are only
//! for userspace, and reused ([`object`]). An ioctl holds the objects it looked up
//! ([`object::ObjRef`]) until it returns; userspace cannot destroy an object in use (`EBUSY`),
//! and the kernel, when it takes an object away itself (a device at unbind), waits for those
//! ioctls to finish ([`object::ObjectTable::remove_wait`]).
//!
//! # Lock order
//!
//! Outermost first; a lock may be taken while holding only locks listed above it:
//!
//! 1. `Ctx::last_wbinvd` (held across a context's `IOMMU_EXECUTE_WBINVD` flush),
//! 2. `Ctx::groups` (the bound devices' groups of a context), or `Ctx::published` (what
//!    the context's devices last published about their coherency),
//! 3. `IGroup::state` (what a group is attached to; the IOMMU core's group mutex is taken
//!    under it when the group attaches, moves or detaches),
//! 4. `Ioas::iova` (the IOVA space and its domains; never for two IOASes at once, see
//!    `IOMMU_IOAS_COPY`),
//! 5. `Pages::pins` (the charge and the holders of some memory, shared by the areas over it;
//!    held while an area's pages are pinned, mapped, unmapped and unpinned, and while the I/O
//!    page table of another IOAS holding the same pages is read),
//! 6. the object table's XArray spinlock, then an object's `users` spinlock.
//!
//! `Ioas::auto_hwpts` and `DeviceSignal::devices` (the module's coherency signal) are leaves. Notifier chains are
//! called with no lock of this driver held. Lockdep checks this order in every test run.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Release, //
    },
};

mod coherency;
mod ctx;
mod device;
mod double_span;
mod group;
mod hw_pagetable;
mod io_pagetable;
mod ioas;
mod ioctl;
mod kapi;
mod object;
mod pages;
mod signal;
mod uapi;

/// The registration of `/dev/iommu` while the module is loaded, for [`ctx_of_file`].
static MISCDEV: Atomic<*const MiscDeviceRegistration<ctx::Ctx>> = Atomic::new(core::ptr::null());

/// The context of `file` if it is an open `/dev/iommu`.
pub(crate) fn ctx_of_file(file: &File) -> Option<Pin<&ctx::Ctx>> {
    let reg = MISCDEV.load(Acquire);
    // SAFETY: A non-NULL pointer is the registration inside the module state, set once it was
    // registered and cleared before it is dropped; callers run with the module loaded.
    let reg = unsafe { reg.as_ref() }?;
    reg.file_private(file)
}

module! {
    type: IommufdModule,
    name: "iommufd",
    authors: ["iommufd-rs developers"],
    description: "IOMMU userspace API (/dev/iommu), Rust implementation",
    license: "GPL",
}

/// The module state: the registration of `/dev/iommu` and the coherency signal by device.
#[pin_data(PinnedDrop)]
struct IommufdModule {
    /// Every bound device's coherency state, for other modules.
    #[pin]
    signal: signal::DeviceSignal,
    /// `/dev/iommu`; every open of it creates a [`ctx::Ctx`].
    #[pin]
    _miscdev: MiscDeviceRegistration<ctx::Ctx>,
}

impl kernel::InPlaceModule for IommufdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions {
            name: c"iommu",
            // Readable and writable by a group such as the VMM's, as with the C driver.
            mode: 0o660,
        };
        try_pin_init!(Self {
            signal <- signal::DeviceSignal::new(),
            _miscdev <- MiscDeviceRegistration::register(options),
        })
        .pin_chain(|this| {
            // SAFETY: `this` is pinned (the module state never moves); only a shared pin is made.
            unsafe { Pin::new_unchecked(&this.signal) }.publish();
            MISCDEV.store(&this._miscdev, Release);
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for IommufdModule {
    fn drop(self: Pin<&mut Self>) {
        MISCDEV.store(core::ptr::null(), Release);
        signal::DeviceSignal::unpublish();
    }
}
