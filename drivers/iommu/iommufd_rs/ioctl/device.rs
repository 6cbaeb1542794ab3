// SPDX-License-Identifier: GPL-2.0

//! The ioctls on devices and HWPTs: `IOMMU_HWPT_ALLOC`, `IOMMU_GET_HW_INFO`, and our
//! `IOMMU_EXECUTE_WBINVD` for the devices' non-coherent DMA.

use core::mem::offset_of;
use kernel::{
    iommu::domain::{
        self,
        Cap, //
    },
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi::{
        iommu_hw_info,
        iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT as HW_INFO_TYPE_DEFAULT,
        iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE as HW_INFO_TYPE_NONE,
        iommu_hwpt_data_type_IOMMU_HWPT_DATA_NONE as DATA_NONE,
        iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED as CAP_PCI_ATS_NOT_SUPPORTED,
        iommufd_hw_info_flags_IOMMU_HW_INFO_FLAG_INPUT_TYPE as HW_INFO_FLAG_INPUT_TYPE,
        iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_PASID as ALLOC_PASID,
        iommufd_hwpt_alloc_flags_IOMMU_HWPT_FAULT_ID_VALID as FAULT_ID_VALID,
        IOMMU_HW_CAP_DEFAULT_COHERENT,
        IOMMU_HW_CAP_ENFORCE_COHERENCY,
        IOMMU_HW_CAP_NONCOHERENT_DMA,
        IOMMU_HW_CAP_NO_SNOOP, //
    },
};

#[cfg(CONFIG_X86)]
use kernel::time::{
    delay::fsleep,
    Delta,
    Instant, //
};

use crate::{
    coherency::{
        self,
        Mode, //
    },
    ctx::{
        Ctx,
        Object, //
    },
    group::IDevice,
    hw_pagetable::HwptPaging,
    ioas::Ioas,
    ioctl::Ucmd,
    uapi, //
};

/// `IOMMU_HWPT_ALLOC`: creates a paging HWPT on an IOAS for a device, optionally with a
/// coherency mode (our extension); returns its id.
///
/// Nesting, dirty tracking, fault reporting, PASID-compatible HWPTs and driver-specific data are
/// not supported (`EOPNOTSUPP`, or `EINVAL` for a nested HWPT on a paging HWPT, see
/// [`nested_alloc`]).
pub(crate) fn hwpt_alloc(ctx: &Ctx, cmd: &mut uapi::HwptAlloc, ucmd: &Ucmd) -> Result {
    let c = &cmd.0;
    if c.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    if (c.data_type == DATA_NONE) != (c.data_len == 0) {
        return Err(EINVAL);
    }
    let idev = ctx.objects.get::<IDevice>(c.dev_id)?;
    if ctx.objects.get::<HwptPaging>(c.pt_id).is_ok() {
        return nested_alloc(&idev, c.flags, c.data_len);
    }
    // Anything else but an IOAS (a missing object included) is EINVAL, as upstream.
    let ioas = ctx.objects.get::<Ioas>(c.pt_id).map_err(|_| EINVAL)?;
    if c.flags & !coherency::FLAGS != 0 || c.data_type != DATA_NONE {
        return Err(EOPNOTSUPP);
    }
    let mode = Mode::from_flags(c.flags, ioas.mode())?;
    let hwpt = HwptPaging::new(ioas, idev.device(), idev.caps(), false, mode)?;
    let slot = ctx.objects.reserve()?;
    cmd.0.out_hwpt_id = slot.id();
    ucmd.respond(cmd)?;
    slot.publish(Object::Hwpt(hwpt))
}

/// `IOMMU_HWPT_ALLOC` on a paging HWPT: a nested HWPT over it, which needs a nesting parent.
/// This driver makes none (it refuses `IOMMU_HWPT_ALLOC_NEST_PARENT`), so the request always
/// fails, with upstream's errno: `EOPNOTSUPP` for flags a nested HWPT cannot have, no driver
/// data, or an IOMMU driver without nested domains; `EINVAL` (not a nesting parent) otherwise.
fn nested_alloc(idev: &IDevice, flags: u32, data_len: u32) -> Result {
    if flags & !NESTED_FLAGS != 0 || data_len == 0 || !domain::device_offers_nesting(idev.device())
    {
        return Err(EOPNOTSUPP);
    }
    Err(EINVAL)
}

/// The flags a nested HWPT may be asked for.
const NESTED_FLAGS: u32 = FAULT_ID_VALID | ALLOC_PASID;

/// The capability bits `IOMMU_GET_HW_INFO` reports for `idev`: upstream's, and ours about
/// coherency.
fn capabilities(idev: &IDevice) -> u64 {
    let dev = idev.device();
    // Only features this driver implements are reported: not dirty tracking (yet), whatever
    // the IOMMU can do, since a VMM that sees the bit asks for a dirty-tracking HWPT.
    let mut caps = 0u64;
    if !domain::device_capable(dev, Cap::PciAtsSupported) {
        caps |= u64::from(CAP_PCI_ATS_NOT_SUPPORTED);
    }
    if idev.iommu_can_enforce() {
        caps |= IOMMU_HW_CAP_ENFORCE_COHERENCY as u64;
    }
    if idev.no_snoop() {
        caps |= IOMMU_HW_CAP_NO_SNOOP;
    }
    if Mode::Auto.enforce(idev.iommu_can_enforce(), idev.no_snoop()) == Ok(true) {
        caps |= IOMMU_HW_CAP_DEFAULT_COHERENT;
    }
    if idev.noncoherent_dma() {
        caps |= IOMMU_HW_CAP_NONCOHERENT_DMA;
    }
    caps
}

/// `IOMMU_GET_HW_INFO`: describes the IOMMU behind a bound device (the IOMMU driver's report)
/// and, as our extension, the device's coherency: what its IOMMU can enforce, whether it can
/// issue No-Snoop, the default policy for it and whether it does non-coherent DMA now.
pub(crate) fn get_hw_info(ctx: &Ctx, cmd: &mut uapi::HwInfo, ucmd: &Ucmd) -> Result {
    if cmd.0.flags & !HW_INFO_FLAG_INPUT_TYPE != 0 || cmd.0.__reserved != [0; 3] {
        return Err(EOPNOTSUPP);
    }
    // SAFETY: Both members of the union are `u32`s.
    let mut kind = unsafe { cmd.0.__bindgen_anon_1.in_data_type };
    if cmd.0.flags & HW_INFO_FLAG_INPUT_TYPE == 0 {
        kind = HW_INFO_TYPE_DEFAULT;
    }
    // Everything about the device is read first, and the device let go before the (possibly
    // long) copy to userspace, so that an unbind waits for as short a time as possible.
    let idev = ctx.objects.get::<IDevice>(cmd.0.dev_id)?;
    let info = domain::HwInfo::get(idev.device(), kind)?;
    let caps = capabilities(&idev);
    drop(idev);
    let (data, out_kind) = match &info {
        Some(info) if info.kind() == HW_INFO_TYPE_NONE => return Err(EOPNOTSUPP),
        Some(info) => (info.as_bytes(), info.kind()),
        None => (&[][..], HW_INFO_TYPE_NONE),
    };
    let user_len = cmd.0.data_len as usize;
    let copy = user_len.min(data.len());
    let mut writer =
        UserSlice::new(UserPtr::from_addr(cmd.0.data_uptr as usize), user_len).writer();
    writer.write_slice(&data[..copy])?;
    // Zero whatever of the user's buffer the report does not fill.
    let zeros = [0u8; 64];
    let mut rest = user_len - copy;
    while rest > 0 {
        let n = rest.min(zeros.len());
        writer.write_slice(&zeros[..n])?;
        rest -= n;
    }
    cmd.0.data_len = u32::try_from(data.len()).map_err(|_| EOVERFLOW)?;
    cmd.0.__bindgen_anon_1.out_data_type = out_kind;
    cmd.0.out_capabilities = caps;
    // PASIDs are not supported, so none is reported.
    cmd.0.out_max_pasid_log2 = 0;
    ucmd.respond(cmd)
}

/// Keeps the size of `struct iommu_hw_info` and the offset the C driver checks in sync.
const _: () = assert!(offset_of!(iommu_hw_info, out_capabilities) == 32);

/// The shortest time between two flushes of one context (`IOMMU_EXECUTE_WBINVD`): at most a
/// thousand a second, whatever the caller does.
#[cfg(CONFIG_X86)]
const WBINVD_INTERVAL: Delta = Delta::from_millis(1);

/// `IOMMU_EXECUTE_WBINVD` (our extension): writes back and invalidates the caches of the CPUs
/// the caller may run on, for a caller that has a device doing non-coherent DMA through this
/// context (`EPERM` otherwise: without one the flush protects nothing and only costs the other
/// users of those CPUs and of the caches they share). A context's flushes run one at a time,
/// [`WBINVD_INTERVAL`] apart at least: a caller that comes sooner waits.
pub(crate) fn execute_wbinvd(ctx: &Ctx, cmd: &mut uapi::ExecuteWbinvd, _ucmd: &Ucmd) -> Result {
    if cmd.0.flags != 0 || !cfg!(CONFIG_X86) {
        return Err(EOPNOTSUPP);
    }
    if !ctx.noncoherent_dma() {
        return Err(EPERM);
    }
    #[cfg(CONFIG_X86)]
    {
        let mut last = ctx.last_wbinvd.lock();
        if let Some(since) = last.map(|t| t.elapsed()) {
            if since < WBINVD_INTERVAL {
                fsleep(WBINVD_INTERVAL - since);
                // The device may have stopped doing non-coherent DMA meanwhile.
                if !ctx.noncoherent_dma() {
                    return Err(EPERM);
                }
            }
        }
        kernel::cache::wbinvd_on_current_cpus()?;
        *last = Some(Instant::now());
    }
    Ok(())
}
