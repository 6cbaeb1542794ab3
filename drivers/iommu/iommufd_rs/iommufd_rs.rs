// SPDX-License-Identifier: GPL-2.0

//! `/dev/iommu` in Rust: the iommufd user API for IOMMU-backed I/O address spaces.
//!
//! Each open of `/dev/iommu` is a [`ctx::Ctx`] holding a table of objects named by small integer
//! ids ([`object`]). Userspace drives it with the ioctls in `include/uapi/linux/iommufd.h`, all
//! routed through one dispatcher that enforces the extensible-struct rules ([`ioctl`]). The first
//! object type is the I/O address space ([`ioas`]), whose IOVA bookkeeping lives in
//! [`io_pagetable`].
//!
//! The module is named `iommufd`, like the C driver it replaces when `CONFIG_IOMMUFD_RS=y`.

use kernel::{
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

mod ctx;
mod io_pagetable;
mod ioas;
mod ioctl;
mod object;
mod uapi;

module! {
    type: IommufdModule,
    name: "iommufd",
    authors: ["iommufd-rs developers"],
    description: "IOMMU userspace API (/dev/iommu), Rust implementation",
    license: "GPL",
}

/// The module state: the registration of `/dev/iommu`.
#[pin_data]
struct IommufdModule {
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
            _miscdev <- MiscDeviceRegistration::register(options),
        })
    }
}
