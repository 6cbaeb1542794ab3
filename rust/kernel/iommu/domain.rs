// SPDX-License-Identifier: GPL-2.0

//! IOMMU domains and groups: I/O page tables that a group of devices can be attached to.
//!
//! A driver that hands a device to userspace (VFIO, iommufd) first takes the DMA ownership of
//! its IOMMU group away from the kernel ([`DmaOwner`]), which leaves the group blocked: no DMA
//! gets through. It then builds paging domains ([`Domain`]), fills them with mappings and
//! attaches the group to one of them ([`Attachment`]).
//!
//! # Examples
//!
//! ```no_run
//! use kernel::device::Device;
//! use kernel::iommu::domain::{prot, DmaOwner, Domain, Group};
//! use kernel::sync::Arc;
//!
//! /// Takes `dev` away from the kernel and lets it reach only what its domain maps.
//! fn isolate(dev: &Device, cookie: *const core::ffi::c_void) -> Result {
//!     let owner = DmaOwner::claim(dev, cookie)?;
//!     let group = Group::of_device(dev).ok_or(ENODEV)?;
//!     let domain = Arc::new(Domain::new_paging(dev)?, GFP_KERNEL)?;
//!     let attachment = group.attach(&owner, domain.clone())?;
//!     assert_eq!(domain.iova_to_phys(0x1000), 0);
//!     assert!(domain.pgsize_bitmap() & kernel::page::PAGE_SIZE != 0);
//!     let _ = prot::READ | prot::WRITE | prot::CACHE;
//!     // The group is blocked again once detached; the ownership goes back last.
//!     drop(attachment);
//!     drop(owner);
//!     Ok(())
//! }
//! ```
//!
//! C header: [`include/linux/iommu.h`](srctree/include/linux/iommu.h)

use crate::{
    bindings,
    device::Device,
    error::{
        from_err_ptr,
        to_result, //
    },
    io::PhysAddr,
    prelude::*,
    sync::{
        aref::{
            ARef,
            AlwaysRefCounted, //
        },
        Arc, //
    },
    types::Opaque,
};
use core::ptr::NonNull;

pub use super::pgtable::prot;

/// A capability an IOMMU may have for a given device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    /// Mappings made with [`prot::CACHE`] give DMA that snoops CPU caches.
    CacheCoherency = bindings::iommu_cap_IOMMU_CAP_CACHE_COHERENCY,
    /// The IOMMU can make every DMA of the device snoop CPU caches, whatever the device asks
    /// for (it can block PCIe No-Snoop): see [`Domain::enforce_cache_coherency`].
    EnforceCacheCoherency = bindings::iommu_cap_IOMMU_CAP_ENFORCE_CACHE_COHERENCY,
    /// The IOMMU can track which IOVAs the device wrote to.
    DirtyTracking = bindings::iommu_cap_IOMMU_CAP_DIRTY_TRACKING,
    /// The IOMMU lets the device use PCIe ATS.
    PciAtsSupported = bindings::iommu_cap_IOMMU_CAP_PCI_ATS_SUPPORTED,
}

/// Whether the IOMMU driver of `dev` can make nested domains (a stage-1 page table owned by a
/// guest, over a parent paging domain), i.e. its `iommu_ops` has `domain_alloc_nested`.
///
/// `dev` must be probed by an IOMMU driver and stay so for the call, as a device whose DMA
/// ownership the caller holds is; `false` otherwise.
pub fn device_offers_nesting(dev: &Device) -> bool {
    // SAFETY: `dev` is a valid device; its `iommu` pointer is set while an IOMMU driver probes
    // it, which the caller guarantees, so reading it races with nothing.
    let iommu = unsafe { (*dev.as_raw()).iommu };
    if iommu.is_null() {
        return false;
    }
    // SAFETY: `iommu` is the device's valid `struct dev_iommu` (checked non-NULL above), whose
    // `iommu_dev` is set before the device is bound and not changed while it is.
    let iommu_dev = unsafe { (*iommu).iommu_dev };
    if iommu_dev.is_null() {
        return false;
    }
    // SAFETY: `iommu_dev` is the registered IOMMU instance of the device; its `ops` point to the
    // driver's static `iommu_ops`.
    let ops = unsafe { (*iommu_dev).ops };
    // SAFETY: `ops` is NULL or the driver's static, immutable `iommu_ops`.
    !ops.is_null() && unsafe { (*ops).domain_alloc_nested }.is_some()
}

/// Whether `dev` can issue PCIe No-Snoop DMA, whose writes bypass CPU caches.
///
/// A PCIe function can unless the "Enable No Snoop" bit of its Device Control register is
/// hard-wired to zero; finding out writes the bit, so the caller must own the device (no
/// driver or user may be using it). A conventional PCI function cannot. A device that is not
/// PCI is assumed to be able to.
pub fn device_can_no_snoop(dev: &Device) -> bool {
    // SAFETY: `dev` is a valid device.
    if !unsafe { bindings::dev_is_pci(dev.as_raw()) } {
        return true;
    }
    // SAFETY: A PCI device's `struct device` is embedded in its `struct pci_dev`.
    let pdev = unsafe { crate::container_of!(dev.as_raw(), bindings::pci_dev, dev) };
    // SAFETY: `pdev` is a valid PCI device for the duration of the call.
    if unsafe { bindings::pci_find_capability(pdev, bindings::PCI_CAP_ID_EXP as i32) } == 0 {
        return false;
    }
    let reg = bindings::PCI_EXP_DEVCTL as i32;
    let bit = bindings::PCI_EXP_DEVCTL_NOSNOOP_EN as u16;
    let mut ctl: u16 = 0;
    // SAFETY: `pdev` is a valid PCI device for the duration of the call; `ctl` is valid for
    // writes.
    if unsafe { bindings::pcie_capability_read_word(pdev, reg, &mut ctl) } != 0 {
        // Cannot tell: assume the worst.
        return true;
    }
    if ctl & bit != 0 {
        return true;
    }
    let mut probed: u16 = 0;
    // SAFETY: `pdev` is valid for the call; the caller owns the device, so nobody else uses the
    // register meanwhile, and it is restored right after.
    unsafe {
        bindings::pcie_capability_write_word(pdev, reg, ctl | bit);
        bindings::pcie_capability_read_word(pdev, reg, &mut probed);
        bindings::pcie_capability_write_word(pdev, reg, ctl);
    }
    probed & bit != 0
}

/// What an IOMMU driver reports about its hardware for a device (the `hw_info` op): a blob in
/// a driver-specific format, freed on drop.
///
/// # Invariants
///
/// `data` points to `len` bytes allocated with `kmalloc` by the driver, owned by this object.
pub struct HwInfo {
    /// The report.
    data: NonNull<u8>,
    /// Its length.
    len: usize,
    /// Its format (`enum iommu_hw_info_type`).
    kind: u32,
}

impl HwInfo {
    /// The report, for `dev`, in format `kind` (`IOMMU_HW_INFO_TYPE_DEFAULT`: the driver's
    /// usual one). `None` if the IOMMU driver has no report; `EOPNOTSUPP` and the like if it
    /// cannot give one in that format; `ENODEV` if no IOMMU translates for `dev`.
    pub fn get(dev: &Device, kind: u32) -> Result<Option<Self>> {
        // SAFETY: `dev` is valid; `iommu` is set once an IOMMU driver probed it and stays while
        // the device has a group, which the caller's use of the device implies.
        let iommu = unsafe { (*dev.as_raw()).iommu };
        if iommu.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: A probed device's `dev_iommu` points to its IOMMU instance, whose `ops` are
        // the driver's static table.
        let hw_info = unsafe { (*(*(*iommu).iommu_dev).ops).hw_info };
        let Some(hw_info) = hw_info else {
            return Ok(None);
        };
        let mut len: u32 = 0;
        let mut kind = kind;
        // SAFETY: The op takes a probed device and two valid output pointers; it returns a
        // kmalloc'ed buffer or an error pointer.
        let data = from_err_ptr(unsafe { hw_info(dev.as_raw(), &mut len, &mut kind) })?;
        let data = NonNull::new(data.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: The driver allocated `len` bytes and handed them over.
        Ok(Some(Self {
            data,
            len: len as usize,
            kind,
        }))
    }

    /// The format of the report (`enum iommu_hw_info_type`).
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// The report.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: By the type invariant `data` holds `len` initialised bytes we own.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl Drop for HwInfo {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the kmalloc'ed buffer.
        unsafe { bindings::kfree(self.data.as_ptr().cast()) };
    }
}

// SAFETY: The buffer is plain memory owned by the object.
unsafe impl Send for HwInfo {}

// SAFETY: Shared references only read it.
unsafe impl Sync for HwInfo {}

/// Whether the IOMMU behind `dev` has capability `cap` for it. `false` if no IOMMU translates
/// for the device.
pub fn device_capable(dev: &Device, cap: Cap) -> bool {
    // SAFETY: `dev` is a valid device; the function copes with devices without an IOMMU.
    unsafe { bindings::device_iommu_capable(dev.as_raw(), cap as u32) }
}

/// The kind of a [`ReservedRegion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservedKind {
    /// Must be mapped 1:1 at all times.
    Direct,
    /// Advertised as 1:1, but commonly ignored for devices assigned to userspace.
    DirectRelaxable,
    /// Must never be mapped.
    Reserved,
    /// Where the hardware intercepts MSI writes (untranslated).
    Msi,
    /// A window in which software maps MSI doorbells.
    SwMsi,
}

/// An IOVA range the IOMMU driver says a device's I/O page table must keep for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedRegion {
    /// The first IOVA.
    pub start: u64,
    /// The length in bytes (at least one).
    pub length: u64,
    /// What the range is for.
    pub kind: ReservedKind,
}

/// The reserved regions of `dev` (empty without an IOMMU).
pub fn reserved_regions(dev: &Device) -> Result<KVec<ReservedRegion>> {
    let mut head = bindings::list_head {
        next: core::ptr::null_mut(),
        prev: core::ptr::null_mut(),
    };
    let headp: *mut bindings::list_head = &mut head;
    // SAFETY: `headp` is a list head we own; INIT_LIST_HEAD makes it an empty list.
    unsafe { bindings::INIT_LIST_HEAD(headp) };
    // SAFETY: `dev` is valid and `headp` an empty list, which the call fills with regions the
    // caller must give back with `iommu_put_resv_regions`.
    unsafe { bindings::iommu_get_resv_regions(dev.as_raw(), headp) };
    let mut out = KVec::new();
    let mut res = Ok(());
    let mut pos = head.next;
    while !core::ptr::eq(pos, headp) {
        // SAFETY: Every entry of the list is the `list` member of a `struct iommu_resv_region`.
        let region = unsafe {
            &*pos
                .cast::<u8>()
                .sub(core::mem::offset_of!(bindings::iommu_resv_region, list))
                .cast::<bindings::iommu_resv_region>()
        };
        let kind = match region.type_ {
            bindings::iommu_resv_type_IOMMU_RESV_DIRECT => ReservedKind::Direct,
            bindings::iommu_resv_type_IOMMU_RESV_DIRECT_RELAXABLE => ReservedKind::DirectRelaxable,
            bindings::iommu_resv_type_IOMMU_RESV_MSI => ReservedKind::Msi,
            bindings::iommu_resv_type_IOMMU_RESV_SW_MSI => ReservedKind::SwMsi,
            _ => ReservedKind::Reserved,
        };
        if region.length != 0 && res.is_ok() {
            res = out
                .push(
                    ReservedRegion {
                        start: region.start,
                        length: region.length as u64,
                        kind,
                    },
                    GFP_KERNEL,
                )
                .map_err(Error::from);
        }
        pos = region.list.next;
    }
    // SAFETY: The list came from `iommu_get_resv_regions` for the same device.
    unsafe { bindings::iommu_put_resv_regions(dev.as_raw(), headp) };
    res.map(|()| out)
}

/// An IOMMU paging domain: an I/O page table that translates device addresses (IOVAs) to
/// physical memory. Freed on drop, which the owner may only let happen once no group is
/// attached to it ([`Attachment`] holds a reference for that).
///
/// # Invariants
///
/// `ptr` is a paging domain allocated by `iommu_paging_domain_alloc_flags`, owned by this object.
pub struct Domain {
    /// The domain.
    ptr: NonNull<bindings::iommu_domain>,
}

// SAFETY: IOMMU domains may be used and freed from any thread.
unsafe impl Send for Domain {}

// SAFETY: Mapping and unmapping disjoint ranges concurrently is allowed by the IOMMU core; the
// other methods only read fields that do not change after allocation.
unsafe impl Sync for Domain {}

impl Domain {
    /// A new, empty paging domain suited to `dev`: DMA through it faults until something is
    /// mapped.
    pub fn new_paging(dev: &Device) -> Result<Self> {
        // SAFETY: `dev` is valid; the function returns a domain or an error pointer.
        let ptr =
            from_err_ptr(unsafe { bindings::iommu_paging_domain_alloc_flags(dev.as_raw(), 0) })?;
        // INVARIANT: A successful allocation, now ours.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// The domain as the C API sees it.
    fn as_raw(&self) -> *mut bindings::iommu_domain {
        self.ptr.as_ptr()
    }

    /// The page sizes the domain can map, as a bitmap of powers of two.
    pub fn pgsize_bitmap(&self) -> usize {
        // SAFETY: By the type invariant the domain is valid; the field is set at allocation.
        unsafe { (*self.as_raw()).pgsize_bitmap }
    }

    /// The first and last IOVA the domain can translate.
    pub fn aperture(&self) -> (u64, u64) {
        // SAFETY: By the type invariant the domain is valid; the geometry is set at allocation
        // and never changes.
        let geometry = unsafe { &(*self.as_raw()).geometry };
        (geometry.aperture_start, geometry.aperture_end)
    }

    /// Makes the domain force every DMA through it to snoop CPU caches, whatever the device
    /// asks for. Only possible on an empty domain, once. `EINVAL` if the IOMMU cannot do it for
    /// this domain.
    pub fn enforce_cache_coherency(&self) -> Result {
        // SAFETY: By the type invariant the domain is valid; `ops` is set at allocation and
        // points to the driver's static table.
        let enforce = unsafe { (*(*self.as_raw()).ops).enforce_cache_coherency };
        let Some(enforce) = enforce else {
            return Err(EINVAL);
        };
        // SAFETY: The op belongs to this domain's driver and takes a valid domain.
        if unsafe { enforce(self.as_raw()) } {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// Maps the `size` bytes of physical memory at `paddr` at IOVA `iova`, with the access
    /// rights and attributes of `prot` (from [`prot`]). All three must be aligned to the
    /// smallest page size of the domain. `EINVAL` for bad alignment, `EADDRINUSE`/`EEXIST` for
    /// a range already mapped, `ENOMEM`.
    ///
    /// # Safety
    ///
    /// Devices attached to the domain can read (and, with [`prot::WRITE`], write) the memory
    /// until it is unmapped: the caller guarantees that the memory stays allocated to it, and
    /// that it may give devices that access, until it calls [`Self::unmap`] on the range or drops
    /// the domain.
    pub unsafe fn map(&self, iova: u64, paddr: PhysAddr, size: usize, prot: u32) -> Result {
        let iova = usize::try_from(iova).map_err(|_| EINVAL)?;
        // SAFETY: The domain is valid; the caller vouches for the memory.
        to_result(unsafe {
            bindings::iommu_map(
                self.as_raw(),
                iova,
                paddr,
                size,
                prot as i32,
                bindings::GFP_KERNEL_ACCOUNT,
            )
        })
    }

    /// Unmaps `size` bytes from IOVA `iova`, which must cover whole earlier [`Self::map`]
    /// calls. Returns the number of bytes unmapped. Once it returns, no device reaches the
    /// memory through the unmapped part of the range any more (the IOTLB is flushed).
    ///
    /// Fewer bytes than `size` means the rest is still mapped (some IOMMU drivers refuse a
    /// range that does not match their page sizes and unmap nothing): the caller must then not
    /// give that memory back.
    #[must_use = "a short unmap leaves memory reachable by devices"]
    pub fn unmap(&self, iova: u64, size: usize) -> usize {
        let Ok(iova) = usize::try_from(iova) else {
            return 0;
        };
        // SAFETY: The domain is valid; unmapping only removes translations.
        unsafe { bindings::iommu_unmap(self.as_raw(), iova, size) }
    }

    /// The physical address `iova` translates to, 0 if none.
    pub fn iova_to_phys(&self, iova: u64) -> PhysAddr {
        // SAFETY: The domain is valid.
        unsafe { bindings::iommu_iova_to_phys(self.as_raw(), iova) }
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the domain; nothing is attached to it any more
        // (every `Attachment` holds a reference to its domain).
        unsafe { bindings::iommu_domain_free(self.as_raw()) };
    }
}

/// An IOMMU group: the devices an IOMMU cannot tell apart, which always share an I/O page table.
#[repr(transparent)]
pub struct Group(Opaque<bindings::iommu_group>);

// SAFETY: `iommu_group_ref_get` and `iommu_group_put` manage the group's reference count.
unsafe impl AlwaysRefCounted for Group {
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means the group is alive.
        unsafe { bindings::iommu_group_ref_get(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it holds.
        unsafe { bindings::iommu_group_put(obj.as_ptr().cast()) };
    }
}

// SAFETY: Groups are reference counted and locked internally.
unsafe impl Send for Group {}

// SAFETY: Every operation on a group takes the group's own mutex or works on its reference
// count, so it may be shared between threads.
unsafe impl Sync for Group {}

impl Group {
    /// The group of `dev`, if an IOMMU translates for it.
    pub fn of_device(dev: &Device) -> Option<ARef<Self>> {
        // SAFETY: `dev` is valid; the call returns a new reference or NULL.
        let ptr = NonNull::new(unsafe { bindings::iommu_group_get(dev.as_raw()) })?;
        // SAFETY: We own the reference just taken.
        Some(unsafe { ARef::from_raw(ptr.cast()) })
    }

    /// Whether the platform isolates the MSIs of the group's devices (interrupt remapping):
    /// if not, a plain DMA write from a device could raise interrupts it should not.
    pub fn has_isolated_msi(&self) -> bool {
        // SAFETY: The group is valid.
        unsafe { bindings::iommu_group_has_isolated_msi(self.0.get()) }
    }

    /// The group's number, as in `/sys/kernel/iommu_groups/<id>`.
    pub fn id(&self) -> i32 {
        // SAFETY: The group is valid.
        unsafe { bindings::iommu_group_id(self.0.get()) }
    }

    /// Attaches the group, whose DMA `_owner` proves the caller owns, to `domain`. `EINVAL`
    /// if the domain is not compatible with the group's devices (another domain may be);
    /// `EBUSY` if the group is attached already.
    pub fn attach(&self, _owner: &DmaOwner, domain: Arc<Domain>) -> Result<Attachment> {
        let handle = AttachHandle::new()?;
        // SAFETY: The group is valid and its DMA is owned by our caller (no kernel driver uses
        // it); the domain and the handle stay alive in the returned `Attachment` until it
        // detaches.
        to_result(unsafe {
            bindings::iommu_attach_group_handle(domain.as_raw(), self.0.get(), handle.as_raw())
        })?;
        Ok(Attachment {
            group: self.into(),
            domain,
            _handle: handle,
        })
    }
}

/// The record the IOMMU core keeps of a group's attachment, for as long as it lasts.
///
/// # Invariants
///
/// The handle is heap allocated, so its address stays valid wherever the owner moves it.
struct AttachHandle(KBox<Opaque<bindings::iommu_attach_handle>>);

impl AttachHandle {
    /// A fresh handle (the core asks for a new one at every attach and replace).
    fn new() -> Result<Self> {
        Ok(Self(KBox::new(Opaque::zeroed(), GFP_KERNEL)?))
    }

    /// The handle, for the core.
    fn as_raw(&self) -> *mut bindings::iommu_attach_handle {
        self.0.get()
    }
}

/// The DMA ownership of a device's group, taken from the kernel's DMA API; given back on drop.
///
/// While it is held the group is blocked from DMA unless attached to a domain. Every
/// [`Attachment`] made with it must be dropped before it is.
pub struct DmaOwner {
    /// The device.
    dev: ARef<Device>,
}

impl DmaOwner {
    /// Takes the DMA ownership of `dev`'s group. Devices of one group may be claimed by the
    /// same `owner` cookie (compared, never dereferenced) more than once. `EBUSY` if a kernel
    /// driver or another owner uses the group; `ENODEV` without an IOMMU.
    pub fn claim(dev: &Device, owner: *const c_void) -> Result<Self> {
        // SAFETY: `dev` is valid; `owner` is only compared with other owners.
        to_result(unsafe {
            bindings::iommu_device_claim_dma_owner(dev.as_raw(), owner.cast_mut())
        })?;
        Ok(Self { dev: dev.into() })
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }
}

impl Drop for DmaOwner {
    fn drop(&mut self) {
        // SAFETY: We claimed the ownership in `claim`.
        unsafe { bindings::iommu_device_release_dma_owner(self.dev.as_raw()) };
    }
}

/// A group attached to a domain; dropping it detaches the group, which is blocked again.
pub struct Attachment {
    /// The group.
    group: ARef<Group>,
    /// The domain the group is attached to.
    domain: Arc<Domain>,
    /// The core's record of the attachment, which it may read until the group detaches.
    _handle: AttachHandle,
}

impl Attachment {
    /// The domain the group is attached to.
    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// Moves the group to `domain` without blocking it in between: the devices' DMA goes
    /// through one domain or the other at every moment. On error the group stays on the
    /// current domain.
    pub fn replace(&mut self, domain: Arc<Domain>) -> Result {
        let handle = AttachHandle::new()?;
        // SAFETY: The group is valid and attached to `self.domain` through this attachment,
        // so its DMA is owned by our caller; `domain` and the new handle are kept in `self` on
        // success, for as long as the group stays attached to that domain.
        to_result(unsafe {
            bindings::iommu_replace_group_handle(
                self.group.0.get(),
                domain.as_raw(),
                handle.as_raw(),
            )
        })?;
        // The old domain and handle go only now that the core no longer uses them.
        self.domain = domain;
        self._handle = handle;
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: The group is attached to `self.domain` with `self._handle`; detaching
        // returns it to the blocking domain, after which the core forgets the handle.
        unsafe { bindings::iommu_detach_group_handle(self.domain.as_raw(), self.group.0.get()) };
    }
}
