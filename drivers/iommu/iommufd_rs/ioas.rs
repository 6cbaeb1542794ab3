// SPDX-License-Identifier: GPL-2.0

//! The I/O address space (IOAS) object.
//!
//! An IOAS is the set of IOVA → memory mappings that every I/O page table attached to it mirrors.
//! Its bookkeeping is an [`IovaSpace`], behind a mutex; the ioctls on it are in `ioctl/ioas.rs`.

use kernel::{
    iommu::domain::{
        Domain,
        ReservedRegion, //
    },
    new_mutex,
    prelude::*,
    sync::{
        lock::{
            mutex::MutexBackend,
            Guard, //
        },
        Arc,
        Mutex, //
    },
};

use crate::{
    coherency::Mode,
    io_pagetable::{
        IovaRange,
        IovaSpace,
        Pages,
        Prot,
        Segment, //
    },
};

/// An I/O address space.
#[pin_data]
pub(crate) struct Ioas {
    /// The IOVA bookkeeping, and the I/O page tables that mirror it.
    #[pin]
    iova: Mutex<IovaSpace>,
    /// The HWPTs the kernel made for devices attached to this IOAS, which later attaches try
    /// first, by id and key ([`crate::object::ObjRef::key`]). Not references: an HWPT unlists itself when it
    /// goes, and the id is used only with the key, so an id reused by another object is never
    /// taken for the HWPT.
    #[pin]
    auto_hwpts: Mutex<KVec<(u32, usize)>>,
    /// The coherency mode of its HWPTs (by default).
    mode: Mode,
}

impl Ioas {
    /// Creates an empty IOAS whose HWPTs have coherency mode `mode` by default.
    pub(crate) fn new(mode: Mode) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                iova <- new_mutex!(IovaSpace::new(), "Ioas::iova"),
                auto_hwpts <- new_mutex!(KVec::new(), "Ioas::auto_hwpts"),
                mode,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The coherency mode of the IOAS.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Locks the IOVA space, for the ioctls that work on it directly.
    pub(crate) fn lock_iova(&self) -> Guard<'_, IovaSpace, MutexBackend> {
        self.iova.lock()
    }

    /// Makes `domain` mirror the IOAS (see [`IovaSpace::add_domain`]).
    pub(crate) fn add_domain(&self, domain: Arc<Domain>) -> Result {
        self.iova.lock().add_domain(domain)
    }

    /// Stops `domain` mirroring the IOAS.
    pub(crate) fn remove_domain(&self, domain: &Arc<Domain>) {
        self.iova.lock().remove_domain(domain)
    }

    /// Reserves the IOVA ranges `regions` on behalf of `owner` (`EADDRINUSE` if one is mapped
    /// or allowed).
    pub(crate) fn reserve_regions(&self, owner: usize, regions: &[ReservedRegion]) -> Result {
        let mut ranges = KVec::with_capacity(regions.len(), GFP_KERNEL)?;
        for r in regions {
            // The kernel's reserved regions never wrap.
            ranges.push(IovaRange::from_length(r.start, r.length)?, GFP_KERNEL)?;
        }
        self.iova.lock().add_reserved(owner, &ranges)
    }

    /// Drops the ranges `owner` reserved.
    pub(crate) fn unreserve(&self, owner: usize) {
        self.iova.lock().remove_reserved(owner)
    }

    /// Lists the HWPT the kernel made for this IOAS, published as `id`, whose key is `key`.
    pub(crate) fn add_auto_hwpt(&self, id: u32, key: usize) -> Result {
        self.auto_hwpts.lock().push((id, key), GFP_KERNEL)?;
        Ok(())
    }

    /// Unlists the automatic HWPT whose key is `key` (it is going away).
    pub(crate) fn remove_auto_hwpt(&self, key: usize) {
        self.auto_hwpts.lock().retain(|(_, k)| *k != key);
    }

    /// The automatic HWPTs of the IOAS, by id and key.
    pub(crate) fn auto_hwpts(&self) -> Result<KVec<(u32, usize)>> {
        let list = self.auto_hwpts.lock();
        let mut out = KVec::with_capacity(list.len(), GFP_KERNEL)?;
        out.extend_from_slice(&list, GFP_KERNEL)?;
        Ok(out)
    }

    /// Maps `length` bytes of `pages` from byte `start_byte` on, at `iova` or, if `None`, at an
    /// IOVA the kernel chooses. Returns the IOVA.
    pub(crate) fn map_pages(
        &self,
        iova: Option<u64>,
        pages: Arc<Pages>,
        start_byte: usize,
        length: u64,
        prot: Prot,
    ) -> Result<u64> {
        let segment = Segment {
            pages,
            start_byte,
            length,
        };
        self.iova
            .lock()
            .map(iova, core::slice::from_ref(&segment), length, prot)
    }
}
