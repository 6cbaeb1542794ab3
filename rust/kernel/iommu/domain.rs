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

/// What probing a device found about its ability to issue PCIe No-Snoop DMA, whose writes
/// bypass CPU caches.
///
/// See [`device_no_snoop`] for the probe and [`NoSnoop::classify`] for the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSnoop {
    /// It cannot: a conventional PCI function behind a bridge, or a PCIe function whose "Enable
    /// No Snoop" bit is hard-wired to zero.
    Cannot,
    /// It can: its "Enable No Snoop" bit is set or settable, or nothing in PCI limits it.
    Can,
    /// Probing could not tell, for the reason given; whoever relies on the answer must assume
    /// the worst.
    Unknown(NoSnoopUnknown),
}

/// Why a No-Snoop probe could not tell (see [`NoSnoop::Unknown`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSnoopUnknown {
    /// The device could not be resumed from a low-power state, so its configuration space was
    /// neither read nor written.
    NotResumed,
    /// Its configuration space reads as all ones: it is in D3cold, gone, or broken.
    Inaccessible,
    /// A configuration read failed.
    ReadFailed,
    /// An SR-IOV virtual function whose physical function cannot be read.
    PfInaccessible,
    /// An SR-IOV virtual function whose physical function has "Enable No Snoop" clear: the
    /// bit is reserved in a VF and follows the PF's, which the PF's driver may set at any time,
    /// and whether the PF's bit is hard-wired to zero cannot be found out without writing the
    /// PF's register under its driver.
    PfClear,
}

impl NoSnoopUnknown {
    /// The reason, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotResumed => "it could not be resumed",
            Self::Inaccessible => "its configuration space reads as all ones",
            Self::ReadFailed => "a configuration read failed",
            Self::PfInaccessible => "it is a VF and its PF's configuration cannot be read",
            Self::PfClear => {
                "it is a VF and its PF's Enable No Snoop, which the PF's driver may set, is clear"
            }
        }
    }
}

/// What the No-Snoop probe read from a PCI function: the input of [`NoSnoop::classify`].
///
/// Device Control words are as read (`None`: the read failed); a Device Control register never
/// reads as all ones from a function that answers, because its top bit (Initiate
/// Function-Level Reset) always reads as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoSnoopFacts {
    /// Not a PCI device.
    NotPci,
    /// The device could not be resumed; nothing was read.
    NotResumed,
    /// The function's Vendor ID reads as all ones.
    Absent,
    /// A function without a PCIe capability. `on_root_bus`: it is integrated in the host bridge
    /// or root complex, not behind a bridge. `pci_x`: it has a PCI-X capability.
    NoPcie {
        /// It sits on a root bus.
        on_root_bus: bool,
        /// It has a PCI-X capability.
        pci_x: bool,
    },
    /// An SR-IOV virtual function, with its physical function's Device Control register.
    Vf {
        /// The PF's Device Control register.
        pf_devctl: Option<u16>,
    },
    /// A PCIe function: its Device Control register, and the same read back after setting
    /// Enable No Snoop (`None` also when the bit was already set, so nothing was written).
    Pcie {
        /// Device Control as found.
        devctl: Option<u16>,
        /// Device Control read back with Enable No Snoop written as set.
        probed: Option<u16>,
    },
}

/// The "Enable No Snoop" bit of the PCIe Device Control register.
const DEVCTL_NOSNOOP: u16 = bindings::PCI_EXP_DEVCTL_NOSNOOP_EN as u16;

impl NoSnoop {
    /// Whether a device with this outcome must be treated as able to issue No-Snoop: an
    /// unknown answer counts as able, which is the safe side for cache coherency (its user
    /// may flush caches; a device wrongly taken as unable could do non-coherent DMA unseen).
    pub fn counts_as_can(self) -> bool {
        self != Self::Cannot
    }

    /// The outcome for what the probe read (pure: no device access).
    ///
    /// - A device that is not PCI is assumed to be able.
    /// - A function without a PCIe capability cannot set the No Snoop attribute unless it is
    ///   PCI-X (whose attribute phase carries it) or integrated (on a root bus, where no
    ///   PCI(e) link or bridge stands between it and the root complex, which may give it a
    ///   non-snooping path to memory). Conventional PCI requests carry no attributes, and a
    ///   PCIe-to-PCI bridge forwards them with No Snoop clear.
    /// - An SR-IOV VF has no Enable No Snoop of its own (the bit is reserved); it can when its
    ///   PF's bit is set, and otherwise it is unknown (see [`NoSnoopUnknown::PfClear`]).
    /// - A PCIe function can unless its Enable No Snoop bit is clear and does not stay set
    ///   when written.
    /// - A read of all ones (a function in D3cold or gone) or a failed read is unknown.
    pub fn classify(facts: NoSnoopFacts) -> Self {
        let devctl = |word: Option<u16>| match word {
            None => Err(NoSnoopUnknown::ReadFailed),
            Some(u16::MAX) => Err(NoSnoopUnknown::Inaccessible),
            Some(word) => Ok(word & DEVCTL_NOSNOOP != 0),
        };
        match facts {
            NoSnoopFacts::NotPci => Self::Can,
            NoSnoopFacts::NotResumed => Self::Unknown(NoSnoopUnknown::NotResumed),
            NoSnoopFacts::Absent => Self::Unknown(NoSnoopUnknown::Inaccessible),
            NoSnoopFacts::NoPcie { on_root_bus, pci_x } => {
                if on_root_bus || pci_x {
                    Self::Can
                } else {
                    Self::Cannot
                }
            }
            NoSnoopFacts::Vf { pf_devctl } => match devctl(pf_devctl) {
                Ok(true) => Self::Can,
                Ok(false) => Self::Unknown(NoSnoopUnknown::PfClear),
                Err(_) => Self::Unknown(NoSnoopUnknown::PfInaccessible),
            },
            NoSnoopFacts::Pcie {
                devctl: found,
                probed,
            } => match devctl(found) {
                Ok(true) => Self::Can,
                Ok(false) => match devctl(probed) {
                    Ok(true) => Self::Can,
                    Ok(false) => Self::Cannot,
                    Err(why) => Self::Unknown(why),
                },
                Err(why) => Self::Unknown(why),
            },
        }
    }
}

/// A runtime-PM reference to a device: resumed while held (`pm_runtime_get_sync`), released
/// with `pm_runtime_put` on drop.
struct RuntimeActive {
    /// The device.
    dev: *mut bindings::device,
    /// Whether it was resumed (or is active, or has runtime PM disabled).
    resumed: bool,
}

impl RuntimeActive {
    /// Resumes `dev` and keeps it from suspending while the result is held.
    ///
    /// # Safety
    ///
    /// `dev` must be a valid device that outlives the result.
    unsafe fn get(dev: *mut bindings::device) -> Self {
        // SAFETY: The caller guarantees `dev` is valid; `RPM_GET_PUT` takes a usage reference,
        // which `drop` gives back whatever the result.
        let ret = unsafe { bindings::__pm_runtime_resume(dev, bindings::RPM_GET_PUT as i32) };
        // A positive return: already active; `-EACCES`: runtime PM is disabled, so the device
        // stays in whatever state it is in, which the all-ones check below catches.
        let resumed = ret >= 0 || ret == -(bindings::EACCES as i32);
        Self { dev, resumed }
    }
}

impl Drop for RuntimeActive {
    fn drop(&mut self) {
        // SAFETY: `dev` is valid (see `get`) and holds the usage reference `get` took.
        unsafe {
            bindings::__pm_runtime_idle(
                self.dev,
                (bindings::RPM_GET_PUT | bindings::RPM_ASYNC) as i32,
            )
        };
    }
}

/// Reads the PCIe Device Control register of `pdev`.
///
/// # Safety
///
/// `pdev` must be a valid PCI device.
unsafe fn read_devctl(pdev: *mut bindings::pci_dev) -> Option<u16> {
    let mut word: u16 = 0;
    // SAFETY: The caller guarantees `pdev` is valid; `word` is valid for writes.
    let ret = unsafe {
        bindings::pcie_capability_read_word(pdev, bindings::PCI_EXP_DEVCTL as i32, &mut word)
    };
    (ret == 0).then_some(word)
}

/// The physical function of `pdev` if it is an SR-IOV virtual function.
///
/// # Safety
///
/// `pdev` must be a valid PCI device.
#[cfg(CONFIG_PCI_IOV)]
unsafe fn physfn(pdev: *mut bindings::pci_dev) -> Option<*mut bindings::pci_dev> {
    // SAFETY: The caller guarantees `pdev` is valid; `is_virtfn` is set at enumeration and
    // never changes.
    if unsafe { (*pdev).is_virtfn() } == 0 {
        return None;
    }
    // SAFETY: A VF holds a reference to its PF, in `physfn`, for as long as it exists.
    Some(unsafe { (*pdev).__bindgen_anon_1.physfn })
}

/// Without SR-IOV support there are no virtual functions.
///
/// # Safety
///
/// `pdev` must be a valid PCI device.
#[cfg(not(CONFIG_PCI_IOV))]
unsafe fn physfn(_pdev: *mut bindings::pci_dev) -> Option<*mut bindings::pci_dev> {
    None
}

/// Probes whether `dev` can issue PCIe No-Snoop DMA (see [`NoSnoop::classify`] for the rules).
///
/// The device is resumed around the probe. A PCIe function whose "Enable No Snoop" bit is
/// clear has the bit set, read back and the register restored, so the caller must own the
/// device (no driver or user may be using it). An SR-IOV VF's physical function is only read,
/// never written: its driver owns it.
pub fn device_no_snoop(dev: &Device) -> NoSnoop {
    NoSnoop::classify(no_snoop_facts(dev))
}

/// Reads what [`NoSnoop::classify`] needs from `dev` (see [`device_no_snoop`]).
fn no_snoop_facts(dev: &Device) -> NoSnoopFacts {
    // SAFETY: `dev` is a valid device.
    if !unsafe { bindings::dev_is_pci(dev.as_raw()) } {
        return NoSnoopFacts::NotPci;
    }
    // SAFETY: `dev` is valid for the duration of the call, which the guard does not outlive.
    let active = unsafe { RuntimeActive::get(dev.as_raw()) };
    if !active.resumed {
        return NoSnoopFacts::NotResumed;
    }
    // SAFETY: A PCI device's `struct device` is embedded in its `struct pci_dev`.
    let pdev = unsafe { crate::container_of!(dev.as_raw(), bindings::pci_dev, dev) };
    // SAFETY: `pdev` is a valid PCI device for the duration of the call.
    if !unsafe { bindings::pci_device_is_present(pdev) } {
        return NoSnoopFacts::Absent;
    }
    // SAFETY: `pdev` is a valid PCI device.
    if let Some(pf) = unsafe { physfn(pdev) } {
        // SAFETY: `pf` is valid while the VF is, and so for the duration of the call. Only
        // read: resuming it is what any reader of its configuration space does.
        let pf_active = unsafe { RuntimeActive::get(&raw mut (*pf).dev) };
        let pf_devctl = if pf_active.resumed {
            // SAFETY: `pf` is a valid PCI device.
            unsafe { read_devctl(pf) }
        } else {
            None
        };
        return NoSnoopFacts::Vf { pf_devctl };
    }
    // SAFETY: `pdev` is valid; `pcie_cap` is set at enumeration and never changes.
    if unsafe { (*pdev).pcie_cap } == 0 {
        // SAFETY: `pdev` is valid, and so is its bus, which outlives it.
        let on_root_bus = unsafe { (*(*pdev).bus).parent.is_null() };
        // SAFETY: `pdev` is a valid PCI device.
        let pci_x =
            unsafe { bindings::pci_find_capability(pdev, bindings::PCI_CAP_ID_PCIX as i32) };
        return NoSnoopFacts::NoPcie {
            on_root_bus,
            pci_x: pci_x != 0,
        };
    }
    // SAFETY: `pdev` is a valid PCI device.
    let devctl = unsafe { read_devctl(pdev) };
    let probed = match devctl {
        Some(ctl) if ctl != u16::MAX && ctl & DEVCTL_NOSNOOP == 0 => {
            let reg = bindings::PCI_EXP_DEVCTL as i32;
            // SAFETY: `pdev` is valid and resumed; the caller owns the device, so nobody else
            // uses the register meanwhile, and it is restored right after.
            unsafe {
                bindings::pcie_capability_write_word(pdev, reg, ctl | DEVCTL_NOSNOOP);
                let probed = read_devctl(pdev);
                bindings::pcie_capability_write_word(pdev, reg, ctl);
                probed
            }
        }
        _ => None,
    };
    NoSnoopFacts::Pcie { devctl, probed }
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

#[macros::kunit_tests(rust_kernel_iommu_no_snoop)]
mod tests {
    use super::*;

    /// A Device Control word with Enable No Snoop set (and Max_Payload_Size 256 bytes).
    const SET: u16 = DEVCTL_NOSNOOP | 0x20;
    /// The same with Enable No Snoop clear.
    const CLEAR: u16 = 0x20;

    /// Shorthand for [`NoSnoop::classify`].
    fn of(facts: NoSnoopFacts) -> NoSnoop {
        NoSnoop::classify(facts)
    }

    /// PCIe functions: set or settable can, hard-wired zero cannot.
    #[test]
    fn pcie_function() {
        let pcie = |devctl, probed| of(NoSnoopFacts::Pcie { devctl, probed });
        assert_eq!(pcie(Some(SET), None), NoSnoop::Can);
        assert_eq!(pcie(Some(CLEAR), Some(SET)), NoSnoop::Can);
        assert_eq!(pcie(Some(CLEAR), Some(CLEAR)), NoSnoop::Cannot);
        assert_eq!(pcie(Some(0), Some(0)), NoSnoop::Cannot);
    }

    /// All ones (D3cold, a function gone) and failed reads are unknown, never a verdict.
    #[test]
    fn unreadable_is_unknown() {
        let pcie = |devctl, probed| of(NoSnoopFacts::Pcie { devctl, probed });
        let inaccessible = NoSnoop::Unknown(NoSnoopUnknown::Inaccessible);
        let failed = NoSnoop::Unknown(NoSnoopUnknown::ReadFailed);
        assert_eq!(pcie(Some(u16::MAX), None), inaccessible);
        assert_eq!(pcie(Some(CLEAR), Some(u16::MAX)), inaccessible);
        assert_eq!(pcie(None, None), failed);
        assert_eq!(pcie(Some(CLEAR), None), failed);
        assert_eq!(of(NoSnoopFacts::Absent), inaccessible);
        assert_eq!(
            of(NoSnoopFacts::NotResumed),
            NoSnoop::Unknown(NoSnoopUnknown::NotResumed)
        );
        assert!(inaccessible.counts_as_can());
        assert!(failed.counts_as_can());
    }

    /// A VF follows its PF's bit; a clear or unreadable one leaves it unknown.
    #[test]
    fn sriov_vf() {
        let vf = |pf_devctl| of(NoSnoopFacts::Vf { pf_devctl });
        assert_eq!(vf(Some(SET)), NoSnoop::Can);
        assert_eq!(vf(Some(CLEAR)), NoSnoop::Unknown(NoSnoopUnknown::PfClear));
        assert_eq!(
            vf(Some(u16::MAX)),
            NoSnoop::Unknown(NoSnoopUnknown::PfInaccessible)
        );
        assert_eq!(vf(None), NoSnoop::Unknown(NoSnoopUnknown::PfInaccessible));
        assert!(vf(Some(CLEAR)).counts_as_can());
    }

    /// Without a PCIe capability: integrated and PCI-X functions can, conventional PCI behind
    /// a bridge cannot; a device that is not PCI is assumed to.
    #[test]
    fn without_pcie_capability() {
        let no_pcie = |on_root_bus, pci_x| of(NoSnoopFacts::NoPcie { on_root_bus, pci_x });
        assert_eq!(no_pcie(true, false), NoSnoop::Can);
        assert_eq!(no_pcie(false, true), NoSnoop::Can);
        assert_eq!(no_pcie(false, false), NoSnoop::Cannot);
        assert!(!no_pcie(false, false).counts_as_can());
        assert_eq!(of(NoSnoopFacts::NotPci), NoSnoop::Can);
    }
}
