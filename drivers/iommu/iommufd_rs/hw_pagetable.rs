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
    coherency::{
        DevCaps,
        Mode, //
    },
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
    /// Its coherency mode.
    mode: Mode,
    /// Whether the IOMMU forces DMA through it to snoop CPU caches.
    enforcing: bool,
}

impl HwptPaging {
    /// A new HWPT in coherency mode `mode` for the device `dev`, whose coherency abilities are
    /// `caps`, filled with every mapping of `ioas`. `EINVAL` if no HWPT in that mode can take
    /// the device.
    pub(crate) fn new(
        ioas: ObjRef<Ioas>,
        dev: &Device,
        caps: DevCaps,
        auto: bool,
        mode: Mode,
    ) -> Result<Arc<Self>> {
        let enforcing = mode.enforce(caps.iommu_can_enforce, caps.no_snoop)?;
        let domain = Domain::new_paging(dev)?;
        // Only possible on an empty domain, so before it is filled.
        if enforcing {
            domain.enforce_cache_coherency()?;
        }
        let domain = Arc::new(domain, GFP_KERNEL_ACCOUNT)?;
        let hwpt = Arc::new(
            Self {
                ioas,
                domain: domain.clone(),
                auto,
                mode,
                enforcing,
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

    /// The I/O page table.
    pub(crate) fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// Whether the kernel made it.
    pub(crate) fn is_auto(&self) -> bool {
        self.auto
    }

    /// Its coherency mode.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether it makes the IOMMU force snooping.
    pub(crate) fn is_enforcing(&self) -> bool {
        self.enforcing
    }
}

impl Drop for HwptPaging {
    fn drop(&mut self) {
        if self.auto {
            // The key the IOAS lists it by (`ObjRef::key`): its own address.
            self.ioas
                .remove_auto_hwpt(core::ptr::from_ref(self) as usize);
        }
        self.ioas.remove_domain(&self.domain);
    }
}
