// SPDX-License-Identifier: GPL-2.0

//! Devices bound to a context by VFIO, and their attachment to I/O page tables.
//!
//! VFIO binds a device it owns to a context (`VFIO_DEVICE_BIND_IOMMUFD`): the context takes the
//! DMA ownership of the device's IOMMU group away from the kernel, so the device can do no DMA
//! at all until userspace attaches it (`VFIO_DEVICE_ATTACH_IOMMUFD_PT`) to an HWPT, or to an
//! IOAS, for which the kernel finds or makes a suitable HWPT. A group is attached as a whole, so
//! the attach state lives in [`IGroup`], shared by the bound devices of one group.
//!
//! While attached, a device's reserved regions (such as the MSI window) are reserved in the
//! IOAS, which then never maps them.

use core::mem::offset_of;
use kernel::{
    device::Device,
    iommu::domain::{
        self,
        Attachment,
        Cap,
        DmaOwner,
        Group,
        ReservedKind, //
    },
    new_mutex,
    notifier::{
        BlockingNotifierHead,
        NotifierCallback, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi::{
        iommu_hw_info,
        iommu_hw_info_type_IOMMU_HW_INFO_TYPE_DEFAULT as HW_INFO_TYPE_DEFAULT,
        iommu_hw_info_type_IOMMU_HW_INFO_TYPE_NONE as HW_INFO_TYPE_NONE,
        iommufd_hw_capabilities_IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED as CAP_PCI_ATS_NOT_SUPPORTED,
        iommufd_hw_info_flags_IOMMU_HW_INFO_FLAG_INPUT_TYPE as HW_INFO_FLAG_INPUT_TYPE,
        IOMMU_HW_CAP_DEFAULT_COHERENT,
        IOMMU_HW_CAP_ENFORCE_COHERENCY,
        IOMMU_HW_CAP_NONCOHERENT_DMA,
        IOMMU_HW_CAP_NO_SNOOP, //
    },
};

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
use kernel::notifier::Subscriber;

use crate::{
    coherency::{
        self,
        Mode, //
    },
    ctx::Ctx,
    hwpt::HwptPaging,
    ioas::Ioas,
    ioctl::Ucmd,
    object::ObjRef,
    signal::{
        self,
        DeviceSignal, //
    },
    uapi, //
};

/// The IOMMU group of bound devices, with what it is attached to.
#[pin_data]
pub(crate) struct IGroup {
    /// The group.
    group: ARef<Group>,
    /// The attach state.
    #[pin]
    state: Mutex<GroupState>,
}

/// What a group is attached to.
struct GroupState {
    /// How many devices of the group are bound to the context.
    bound: usize,
    /// The devices of the group that are attached (by [`IDevice::key`]).
    attached: KVec<usize>,
    /// The group's attachment to the domain of `hwpt`; `Some` exactly while `attached` is not
    /// empty. Declared before `hwpt` so that it is detached first.
    attachment: Option<Attachment>,
    /// The HWPT the group is attached to, and its id.
    hwpt: Option<(u32, ObjRef<HwptPaging>)>,
}

impl IGroup {
    /// The group of `dev` in `ctx`, created if no bound device uses it yet; counts one more
    /// bound device.
    fn get(ctx: &Ctx, group: ARef<Group>) -> Result<Arc<Self>> {
        let mut groups = ctx.groups.lock();
        if let Some(g) = Self::find(&groups, &group) {
            g.state.lock().bound += 1;
            return Ok(g.clone());
        }
        let g = Arc::pin_init(
            pin_init!(Self {
                group,
                state <- new_mutex!(GroupState {
                    bound: 1,
                    attached: KVec::new(),
                    attachment: None,
                    hwpt: None,
                }, "IGroup::state"),
            }),
            GFP_KERNEL,
        )?;
        groups.push(g.clone(), GFP_KERNEL)?;
        Ok(g)
    }

    /// The entry of `group` among a context's `groups`.
    fn find<'a>(groups: &'a [Arc<Self>], group: &Group) -> Option<&'a Arc<Self>> {
        groups.iter().find(|g| core::ptr::eq(&*g.group, group))
    }

    /// Counts one bound device less; forgets the group when none is left.
    fn put(self: &Arc<Self>, ctx: &Ctx) {
        let mut groups = ctx.groups.lock();
        let mut state = self.state.lock();
        state.bound -= 1;
        if state.bound == 0 {
            drop(state);
            groups.retain(|g| !Arc::ptr_eq(g, self));
        }
    }
}

/// Whether a device of `group` is bound to `ctx`.
pub(crate) fn ctx_has_group(ctx: &Ctx, group: &Group) -> bool {
    IGroup::find(&ctx.groups.lock(), group).is_some()
}

/// A device bound to a context: the object VFIO gets when it binds.
#[pin_data(PinnedDrop)]
pub(crate) struct IDevice {
    /// The device.
    dev: ARef<Device>,
    /// Its group.
    group: Arc<IGroup>,
    /// The DMA ownership of the device, claimed at bind; released when the object goes.
    owner: DmaOwner,
    /// Whether its IOMMU can force its DMA to snoop CPU caches.
    iommu_can_enforce: bool,
    /// Whether probing found that it can issue No-Snoop DMA.
    probed_no_snoop: bool,
    /// Whether it counts as able to issue No-Snoop DMA: what probing found, unless a test
    /// overrode it (`IOMMU_TEST_DEVICE_NO_SNOOP`, only while not attached).
    no_snoop: Atomic<bool>,
    /// Subscribers to its coherency state: called with 1 or 0 ("does non-coherent DMA now" or
    /// not) after every attach, replace, detach and unbind.
    #[pin]
    coherency: BlockingNotifierHead,
    /// The state last published on `coherency`.
    published: Atomic<bool>,
    /// A subscriber on `coherency` that counts events, for tests.
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    #[pin]
    test_events: Subscriber<EventLog>,
}

#[pinned_drop]
impl PinnedDrop for IDevice {
    fn drop(self: Pin<&mut Self>) {
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        // SAFETY: Registered when the device was bound.
        let _ = unsafe { self.coherency.unregister(self.test_events.as_block()) };
        if let Some(signal) = DeviceSignal::get() {
            signal.remove(self.key());
        }
    }
}

/// Counts the events a notifier chain publishes (a test subscriber).
pub(crate) struct EventLog {
    /// Events seen.
    events: Atomic<u32>,
    /// The last one.
    last: Atomic<u32>,
}

impl EventLog {
    /// No event yet.
    #[cfg_attr(not(CONFIG_IOMMUFD_RS_TEST), expect(dead_code))]
    pub(crate) fn new() -> Self {
        Self {
            events: Atomic::new(0),
            last: Atomic::new(0),
        }
    }

    /// The number of events seen and the last one.
    #[cfg_attr(not(CONFIG_IOMMUFD_RS_TEST), expect(dead_code))]
    pub(crate) fn read(&self) -> (u32, u32) {
        (self.events.load(Relaxed), self.last.load(Relaxed))
    }
}

impl NotifierCallback for EventLog {
    fn notify(&self, event: u64) {
        self.last.store(event as u32, Relaxed);
        self.events.fetch_add(1, Relaxed);
    }
}

impl IDevice {
    /// The device.
    pub(crate) fn device(&self) -> &Device {
        &self.dev
    }

    /// Whether its IOMMU can force its DMA to snoop CPU caches.
    pub(crate) fn iommu_can_enforce(&self) -> bool {
        self.iommu_can_enforce
    }

    /// Whether it can issue No-Snoop DMA.
    pub(crate) fn no_snoop(&self) -> bool {
        self.no_snoop.load(Relaxed)
    }

    /// Whether it does non-coherent DMA now: attached to an HWPT that does not enforce
    /// coherency, and able to issue No-Snoop.
    pub(crate) fn noncoherent_dma(&self) -> bool {
        let state = self.group.state.lock();
        let enforcing = match &state.hwpt {
            Some((_, hwpt)) if state.attached.contains(&self.key()) => Some(hwpt.is_enforcing()),
            _ => None,
        };
        coherency::noncoherent_dma(enforcing, self.no_snoop())
    }

    /// The device's key in its group's attach state and in reserved-range owners.
    fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Attaches the device to the HWPT `hwpt`, whose id is `id`.
    ///
    /// `EINVAL` if the HWPT's domain does not suit the device (its IOMMU cannot enforce
    /// coherency for it, or the HWPT is coherent and the device would do non-coherent DMA through
    /// it), or the group is attached to another HWPT; `EBUSY` if the device is attached already; `EADDRINUSE` if one of the
    /// device's reserved regions is mapped in the IOAS.
    fn attach_hwpt(&self, id: u32, hwpt: ObjRef<HwptPaging>) -> Result {
        if !hwpt.mode().admits(hwpt.is_enforcing(), self.no_snoop()) {
            return Err(EINVAL);
        }
        let mut state = self.group.state.lock();
        if state.attached.contains(&self.key()) {
            return Err(EBUSY);
        }
        if matches!(&state.hwpt, Some((cur, _)) if *cur != id) {
            return Err(EINVAL);
        }
        let mut regions = domain::reserved_regions(&self.dev)?;
        regions.retain(|r| r.kind != ReservedKind::DirectRelaxable);
        state.attached.reserve(1, GFP_KERNEL)?;
        hwpt.ioas().reserve_regions(self.key(), &regions)?;
        if state.hwpt.is_none() {
            match self.group.group.attach(&self.owner, hwpt.domain().clone()) {
                Ok(attachment) => {
                    state.attachment = Some(attachment);
                    state.hwpt = Some((id, hwpt));
                }
                Err(e) => {
                    hwpt.ioas().unreserve(self.key());
                    return Err(e);
                }
            }
        }
        // Room was reserved above.
        state.attached.push(self.key(), GFP_KERNEL)?;
        Ok(())
    }

    /// Detaches the device. Returns the HWPT if the group left it (the last device detached).
    fn detach_hwpt(&self) -> Option<(u32, ObjRef<HwptPaging>)> {
        let mut state = self.group.state.lock();
        let pos = state.attached.iter().position(|k| *k == self.key())?;
        let _ = state.attached.remove(pos);
        if let Some((_, hwpt)) = &state.hwpt {
            hwpt.ioas().unreserve(self.key());
        }
        if !state.attached.is_empty() {
            return None;
        }
        drop(state.attachment.take());
        state.hwpt.take()
    }

    /// The id and a use of the HWPT the device is attached to.
    fn attached_hwpt(&self) -> Option<(u32, ObjRef<HwptPaging>)> {
        let state = self.group.state.lock();
        if !state.attached.contains(&self.key()) {
            return None;
        }
        state.hwpt.as_ref().map(|(id, h)| (*id, h.clone()))
    }
}

/// Destroys the automatic HWPT `id` once nothing uses it any more, after its last device left.
fn release_hwpt(ctx: &Ctx, id: u32, hwpt: ObjRef<HwptPaging>) {
    if !hwpt.is_auto() {
        return;
    }
    let ioas = hwpt.ioas_ref().clone();
    drop(hwpt);
    if ctx.objects.destroy(id).is_ok() {
        ioas.remove_auto_hwpt(id);
    }
}

/// What VFIO holds for a bound device (its `struct iommufd_device *`).
///
/// # Invariants
///
/// `ctx` is valid while the object exists: `_file` holds a reference on the context's file.
pub(crate) struct Bound {
    /// The context.
    ctx: *const Ctx,
    /// A reference on the context's file, which keeps the context alive.
    _file: ARef<kernel::fs::File>,
    /// The device object (a use of it, so that userspace cannot destroy it).
    idev: ObjRef<IDevice>,
    /// The object id.
    id: u32,
}

impl Bound {
    /// The context.
    pub(crate) fn ctx(&self) -> &Ctx {
        // SAFETY: By the type invariant the context is alive while `self` is.
        unsafe { &*self.ctx }
    }

    /// The device's object id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Binds `dev` to `ctx`: takes its DMA ownership and creates its object.
    ///
    /// `EINVAL` if its IOMMU cannot make DMA cache coherent, `ENODEV` without an IOMMU, `EPERM`
    /// if its MSIs are not isolated (unless the `allow_unsafe_interrupts` module parameter
    /// says otherwise), `EBUSY` if a kernel driver or another context owns its group's DMA.
    pub(crate) fn bind(ctx: &Ctx, dev: &Device) -> Result<KBox<Self>> {
        // Every mapping asks for coherent DMA (as in the C driver), so the IOMMU must offer it.
        if !domain::device_capable(dev, Cap::CacheCoherency) {
            return Err(EINVAL);
        }
        let group = Group::of_device(dev).ok_or(ENODEV)?;
        // A device whose MSIs are not isolated could raise interrupts outside its user's
        // reach with a plain DMA write: refused unless the administrator allows it, as
        // upstream.
        if !group.has_isolated_msi() {
            if !crate::module_parameters::allow_unsafe_interrupts.value() {
                return Err(EPERM);
            }
            dev_warn!(
                dev,
                "MSI interrupts cannot be isolated by the platform (interrupt remapping?); \
                 bound anyway because of allow_unsafe_interrupts\n"
            );
        }
        let owner = DmaOwner::claim(dev, core::ptr::from_ref(ctx).cast())?;
        // Probing writes the device's control register: only now that we own it.
        let probed = domain::device_can_no_snoop(dev);
        let group = IGroup::get(ctx, group)?;
        let idev_group = group.clone();
        let idev = Arc::pin_init(
            pin_init!(IDevice {
                dev: dev.into(),
                group: idev_group,
                owner,
                iommu_can_enforce: domain::device_capable(dev, Cap::EnforceCacheCoherency),
                probed_no_snoop: probed,
                no_snoop: Atomic::new(probed),
                coherency <- BlockingNotifierHead::new(),
                published: Atomic::new(false),
                #[cfg(CONFIG_IOMMUFD_RS_TEST)]
                test_events <- Subscriber::new(EventLog::new()),
            }),
            GFP_KERNEL,
        );
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        let idev = idev.and_then(|idev| {
            // SAFETY: The subscriber lives in the device object, which unregisters it when it
            // is dropped.
            unsafe { idev.coherency.register(idev.test_events.as_block()) }?;
            Ok(idev)
        });
        let idev = idev.and_then(|idev| {
            // Known to the signal from now on; the object's drop forgets it.
            if let Some(signal) = DeviceSignal::get() {
                signal.add(signal::key(dev), idev.key())?;
            }
            Ok(idev)
        });
        let published = idev.and_then(|idev| {
            let slot = ctx.objects.reserve()?;
            let id = slot.id();
            Ok((id, slot.publish_held(idev)?))
        });
        let (id, idev) = match published {
            Ok(p) => p,
            Err(e) => {
                group.put(ctx);
                return Err(e);
            }
        };
        let file = ARef::from(ctx.file());
        match KBox::new(
            Self {
                ctx,
                _file: file,
                idev,
                id,
            },
            GFP_KERNEL,
        ) {
            Ok(b) => Ok(b),
            Err(e) => {
                ctx.objects.remove(id);
                group.put(ctx);
                Err(e.into())
            }
        }
    }

    /// Tells the device's and the context's subscribers, and those of the module's
    /// [`DeviceSignal`], the device's coherency state, after anything that may have changed it.
    fn publish(&self) {
        let ctx = self.ctx();
        let idev = &*self.idev;
        let now = idev.noncoherent_dma();
        let signal = DeviceSignal::get();
        if idev.published.xchg(now, Relaxed) != now {
            ctx.count_noncoherent(now);
            if let Some(signal) = signal {
                signal.set(idev.key(), now);
            }
        }
        idev.coherency.call_chain(u64::from(now));
        ctx.publish_coherency();
        if let Some(signal) = signal {
            signal.notify(now);
        }
    }

    /// Unbinds the device, detaching it first if needed.
    pub(crate) fn unbind(self: KBox<Self>) {
        self.detach();
        let ctx = self.ctx();
        ctx.objects.remove(self.id);
        self.idev.group.put(ctx);
        // Dropping `self` drops the last uses of the object, which gives the DMA ownership
        // back, and then the reference on the context's file.
    }

    /// Attaches the device to `pt_id`: an HWPT, or an IOAS (then to an automatic HWPT of it
    /// that suits the device, made if needed). Returns the HWPT's id. `ENOENT` if there is no
    /// object `pt_id`, `EINVAL` if it is of another type.
    pub(crate) fn attach(&self, pt_id: u32) -> Result<u32> {
        let res = self.do_attach(pt_id);
        self.publish();
        res
    }

    /// [`Self::attach`], without telling subscribers.
    fn do_attach(&self, pt_id: u32) -> Result<u32> {
        let ctx = self.ctx();
        if let Ok(hwpt) = ctx.objects.get::<HwptPaging>(pt_id) {
            self.idev.attach_hwpt(pt_id, hwpt)?;
            return Ok(pt_id);
        }
        let ioas = match ctx.objects.get::<Ioas>(pt_id) {
            Ok(ioas) => ioas,
            // Neither an IOAS nor an HWPT.
            Err(_) if ctx.objects.contains(pt_id) => return Err(EINVAL),
            Err(e) => return Err(e),
        };
        let idev = &*self.idev;
        for id in ioas.auto_hwpts()?.iter().copied() {
            let Ok(hwpt) = ctx.objects.get::<HwptPaging>(id) else {
                continue;
            };
            // Share only an HWPT the IOAS's mode would make for this device.
            if !hwpt.mode().auto_fits(
                hwpt.is_enforcing(),
                idev.iommu_can_enforce(),
                idev.no_snoop(),
            ) {
                continue;
            }
            match self.idev.attach_hwpt(id, hwpt) {
                Ok(()) => return Ok(id),
                // The domain does not suit the device: try the next one.
                Err(e) if e == EINVAL => continue,
                Err(e) => return Err(e),
            }
        }
        let hwpt = HwptPaging::new(ioas.clone(), idev, true, ioas.mode())?;
        let slot = ctx.objects.reserve()?;
        let id = slot.id();
        let hwpt = slot.publish_held(hwpt)?;
        if let Err(e) = ioas.add_auto_hwpt(id) {
            drop(hwpt);
            let _ = ctx.objects.destroy(id);
            return Err(e);
        }
        if let Err(e) = self.idev.attach_hwpt(id, hwpt) {
            ioas.remove_auto_hwpt(id);
            let _ = ctx.objects.destroy(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Moves the device to `pt_id` (as for [`Self::attach`]); if it fails, the device stays
    /// where it was. Returns the new HWPT's id.
    pub(crate) fn replace(&self, pt_id: u32) -> Result<u32> {
        let res = self.do_replace(pt_id);
        self.publish();
        res
    }

    /// [`Self::replace`], without telling subscribers.
    fn do_replace(&self, pt_id: u32) -> Result<u32> {
        let Some((old_id, old)) = self.idev.attached_hwpt() else {
            return self.do_attach(pt_id);
        };
        if old_id == pt_id {
            return Ok(pt_id);
        }
        if let Some((id, hwpt)) = self.idev.detach_hwpt() {
            // `old` still holds a use, so this never destroys it.
            release_hwpt(self.ctx(), id, hwpt);
        }
        match self.do_attach(pt_id) {
            Ok(id) => {
                release_hwpt(self.ctx(), old_id, old);
                Ok(id)
            }
            Err(e) => {
                if self.idev.attach_hwpt(old_id, old).is_err() {
                    pr_warn!("iommufd: device could not go back to HWPT {}\n", old_id);
                }
                Err(e)
            }
        }
    }

    /// Detaches the device, if attached.
    pub(crate) fn detach(&self) {
        if let Some((id, hwpt)) = self.idev.detach_hwpt() {
            release_hwpt(self.ctx(), id, hwpt);
        }
        self.publish();
    }
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
    let idev = ctx.objects.get::<IDevice>(cmd.0.dev_id)?;
    let info = domain::HwInfo::get(&idev.dev, kind)?;
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

    let dev = &*idev.dev;
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
    cmd.0.out_capabilities = caps;
    // PASIDs are not supported, so none is reported.
    cmd.0.out_max_pasid_log2 = 0;
    ucmd.respond(cmd)
}

/// `IOMMU_TEST_DEVICE_NO_SNOOP` (test kernels only): declares a bound, unattached device able
/// (or, back to what probing found, unable) to issue No-Snoop DMA.
#[cfg(CONFIG_IOMMUFD_RS_TEST)]
pub(crate) fn test_no_snoop(ctx: &Ctx, cmd: &mut uapi::TestDeviceNoSnoop) -> Result {
    use kernel::capability::{
        capable,
        Capability, //
    };
    if !capable(Capability::SYS_ADMIN) {
        return Err(EPERM);
    }
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let value = match cmd.0.no_snoop {
        0 => false,
        1 => true,
        _ => return Err(EINVAL),
    };
    let idev = ctx.objects.get::<IDevice>(cmd.0.dev_id)?;
    let state = idev.group.state.lock();
    if state.attached.contains(&idev.key()) {
        return Err(EBUSY);
    }
    idev.no_snoop.store(value || idev.probed_no_snoop, Relaxed);
    Ok(())
}

/// Keeps the size of `struct iommu_hw_info` and the offset the C driver checks in sync.
const _: () = assert!(offset_of!(iommu_hw_info, out_capabilities) == 32);

/// `IOMMU_TEST_COHERENCY_EVENTS` (test kernels only): how many coherency events the test
/// subscriber of a device (or, for id 0, of the context) saw, and the last one.
#[cfg(CONFIG_IOMMUFD_RS_TEST)]
pub(crate) fn test_events(ctx: &Ctx, cmd: &mut uapi::TestCoherencyEvents, ucmd: &Ucmd) -> Result {
    let (events, last) = if cmd.0.dev_id == 0 {
        ctx.test_events.inner().read()
    } else {
        ctx.objects
            .get::<IDevice>(cmd.0.dev_id)?
            .test_events
            .inner()
            .read()
    };
    cmd.0.out_events = events;
    cmd.0.out_state = last;
    ucmd.respond(cmd)
}
