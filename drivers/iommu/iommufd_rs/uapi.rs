// SPDX-License-Identifier: GPL-2.0

//! The iommufd ioctl argument structs, as the driver reads and writes them.
//!
//! Each is a transparent wrapper over the bindgen-generated struct from
//! `include/uapi/linux/iommufd.h`, so the layout is exactly the one userspace compiles against.
//! The wrappers exist to carry [`FromBytes`] and [`AsBytes`], whose safety is argued once, in
//! [`uapi_struct!`].

use core::mem::size_of;
use kernel::{
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uapi, //
};

/// Declares a wrapper over an iommufd uAPI struct made only of integer fields.
///
/// `$size` must be the sum of the sizes of the struct's fields; it is checked at compile time, so
/// the struct provably has no padding.
macro_rules! uapi_struct {
    ($(#[$meta:meta])* $name:ident => $raw:ident, $size:expr) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(pin_init::Zeroable)]
        pub(crate) struct $name(pub(crate) uapi::$raw);

        const _: () = assert!(size_of::<$name>() == $size);

        // SAFETY: `$raw` is a `#[repr(C)]` struct of integer fields only, without padding (the
        // size check above). Every bit pattern is therefore a valid value, and it has no interior
        // mutability.
        unsafe impl FromBytes for $name {}

        // SAFETY: `$raw` is a `#[repr(C)]` struct of integer fields only, without padding (the
        // size check above), so all of its bytes are always initialised.
        unsafe impl AsBytes for $name {}
    };
}

uapi_struct!(
    /// `struct iommu_destroy`: two `u32`s.
    Destroy => iommu_destroy, 8
);

uapi_struct!(
    /// `struct iommu_ioas_alloc`: three `u32`s.
    IoasAlloc => iommu_ioas_alloc, 12
);

uapi_struct!(
    /// `struct iommu_ioas_iova_ranges`: four `u32`s and two `u64`s.
    IoasIovaRanges => iommu_ioas_iova_ranges, 32
);

uapi_struct!(
    /// `struct iommu_iova_range`: two `u64`s.
    IovaRange => iommu_iova_range, 16
);

uapi_struct!(
    /// `struct iommu_ioas_map`: four `u32`s and three `u64`s.
    IoasMap => iommu_ioas_map, 40
);

uapi_struct!(
    /// `struct iommu_ioas_unmap`: two `u32`s and two `u64`s.
    IoasUnmap => iommu_ioas_unmap, 24
);

uapi_struct!(
    /// `struct iommu_ioas_allow_iovas`: four `u32`s and a `u64`.
    IoasAllowIovas => iommu_ioas_allow_iovas, 24
);

uapi_struct!(
    /// `struct iommu_ioas_copy`: four `u32`s and three `u64`s.
    IoasCopy => iommu_ioas_copy, 40
);

uapi_struct!(
    /// `struct iommu_option`: two `u32`s, two `u16`s, a `u32` and a `u64`.
    IommuOption => iommu_option, 24
);

uapi_struct!(
    /// `struct iommu_ioas_map_file`: three `u32`s, an `i32` and three `u64`s.
    IoasMapFile => iommu_ioas_map_file, 40
);

uapi_struct!(
    /// `struct iommu_hwpt_alloc`: ten `u32`s and a `u64`.
    HwptAlloc => iommu_hwpt_alloc, 48
);

uapi_struct!(
    /// `struct iommu_hw_info`: five `u32`s (one a union of two), four `u8`s and two `u64`s.
    HwInfo => iommu_hw_info, 40
);

uapi_struct!(
    /// `struct iommu_execute_wbinvd`: two `u32`s (our extension).
    ExecuteWbinvd => iommu_execute_wbinvd, 8
);

uapi_struct!(
    /// `struct iommu_test_device_no_snoop`: four `u32`s (our test-only extension).
    TestDeviceNoSnoop => iommu_test_device_no_snoop, 16
);

uapi_struct!(
    /// `struct iommu_test_coherency_events`: four `u32`s (our test-only extension).
    TestCoherencyEvents => iommu_test_coherency_events, 16
);
