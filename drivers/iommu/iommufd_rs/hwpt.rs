// SPDX-License-Identifier: GPL-2.0

//! Hardware page tables (HWPTs): IOMMU paging domains that mirror one IOAS.
//!
//! An HWPT is what a device's group is attached to. It holds a use of its IOAS, so the IOAS
//! cannot be destroyed under it, and is one of the IOAS's domains: every mapping of the IOAS is
//! in it, with the pages pinned. The kernel makes one when a device attaches to an IOAS and no
//! existing automatic HWPT of that IOAS suits the device; such an HWPT goes away with its last
//! device.

use kernel::{
    device::Device,
    iommu::domain::Domain,
    prelude::*,
    sync::Arc, //
};

use crate::{
    ioas::Ioas,
    object::ObjRef, //
};

/// A paging HWPT.
pub(crate) struct HwptPaging {
    /// The IOAS it mirrors.
    ioas: ObjRef<Ioas>,
    /// The I/O page table.
    domain: Arc<Domain>,
    /// Whether the kernel made it for an attach to the IOAS (and destroys it after the last
    /// detach).
    auto: bool,
}

impl HwptPaging {
    /// A new HWPT for `dev`, filled with every mapping of `ioas`.
    pub(crate) fn new(ioas: ObjRef<Ioas>, dev: &Device, auto: bool) -> Result<Arc<Self>> {
        let domain = Arc::new(Domain::new_paging(dev)?, GFP_KERNEL_ACCOUNT)?;
        let hwpt = Arc::new(
            Self {
                ioas,
                domain: domain.clone(),
                auto,
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        // On error dropping `hwpt` removes nothing: the domain is not in the IOAS.
        hwpt.ioas.add_domain(domain)?;
        Ok(hwpt)
    }

    /// The IOAS it mirrors.
    pub(crate) fn ioas(&self) -> &Ioas {
        &self.ioas
    }

    /// The use of the IOAS it holds.
    pub(crate) fn ioas_ref(&self) -> &ObjRef<Ioas> {
        &self.ioas
    }

    /// The I/O page table.
    pub(crate) fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// Whether the kernel made it.
    pub(crate) fn is_auto(&self) -> bool {
        self.auto
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        self.ioas.remove_domain(&self.domain);
    }
}
