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
        ReservedKind,
        ReservedRegion, //
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
        LockedBy,
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
    ctx::{
        Ctx,
        Published, //
    },
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

/// The bound devices of a group and what the group is attached to.
///
/// The group is the unit the IOMMU translates for: while it is attached, every bound device of
/// it reaches the HWPT's memory, attached or not. So the coherency rules and the coherency
/// state are the group's: an HWPT must admit every member ([`GroupState::admits`]), and a
/// member does non-coherent DMA while the group is on an HWPT that does not enforce coherency.
struct GroupState {
    /// How many devices of the group are bound to the context, or being bound.
    bound: usize,
    /// The devices of the group bound to the context (removed at unbind, which breaks the
    /// cycle with [`IDevice::group`]).
    members: KVec<Arc<IDevice>>,
    /// The devices of the group that are attached.
    attached: KVec<AttachedDev>,
    /// The group's attachment to the domain of `hwpt`; `Some` exactly while `attached` is not
    /// empty. Declared before `hwpt` so that it is detached first.
    attachment: Option<Attachment>,
    /// The HWPT the group is attached to.
    hwpt: Option<ObjRef<HwptPaging>>,
}

/// A device attached through its group.
struct AttachedDev {
    /// The device ([`IDevice::key`]); also the owner of its ranges reserved in the IOAS.
    key: usize,
    /// Its reserved regions, reserved in the IOAS of the group's HWPT.
    regions: KVec<ReservedRegion>,
}

impl GroupState {
    /// Whether the device `key` is attached.
    fn is_attached(&self, key: usize) -> bool {
        self.attached.iter().any(|d| d.key == key)
    }

    /// Whether `hwpt` may take the group: no member would do non-coherent DMA through a
    /// coherent HWPT.
    fn admits(&self, hwpt: &HwptPaging) -> bool {
        self.members
            .iter()
            .all(|m| hwpt.mode().admits(hwpt.is_enforcing(), m.no_snoop()))
    }

    /// Whether `idev`, if a member, does non-coherent DMA now.
    fn noncoherent_dma(&self, idev: &IDevice) -> bool {
        if !self.members.iter().any(|m| core::ptr::eq(&**m, idev)) {
            return false;
        }
        let enforcing = self.hwpt.as_ref().map(|h| h.is_enforcing());
        coherency::noncoherent_dma(enforcing, idev.no_snoop())
    }
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
                    members: KVec::new(),
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

    /// Makes `idev` a member. `EINVAL` if the group is attached to an HWPT that would not
    /// have admitted it.
    fn add_member(&self, idev: &Arc<IDevice>) -> Result {
        let mut state = self.state.lock();
        if let Some(hwpt) = &state.hwpt {
            if !hwpt.mode().admits(hwpt.is_enforcing(), idev.no_snoop()) {
                return Err(EINVAL);
            }
        }
        state.members.push(idev.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Removes the member `idev`.
    fn remove_member(&self, idev: &IDevice) {
        self.state
            .lock()
            .members
            .retain(|m| !core::ptr::eq(&**m, idev));
    }

    /// The members, for publishing their state.
    fn members(&self) -> Result<KVec<Arc<IDevice>>> {
        let state = self.state.lock();
        let mut out = KVec::with_capacity(state.members.len(), GFP_KERNEL)?;
        for m in state.members.iter() {
            out.push(m.clone(), GFP_KERNEL)?;
        }
        Ok(out)
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
    /// overrode it (`IOMMU_TEST_DEVICE_NO_SNOOP`, only while its group is not attached).
    no_snoop: Atomic<bool>,
    /// Subscribers to its coherency state: called with 1 or 0 ("does non-coherent DMA now" or
    /// not) after every attach, replace, detach and unbind.
    #[pin]
    coherency: BlockingNotifierHead,
    /// The state last published on `coherency`, kept under the context's `published` lock.
    published: LockedBy<bool, Published>,
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

    /// Whether it does non-coherent DMA now: bound, able to issue No-Snoop, and its group
    /// (through this device or another) attached to an HWPT that does not enforce coherency.
    pub(crate) fn noncoherent_dma(&self) -> bool {
        self.group.state.lock().noncoherent_dma(self)
    }

    /// The device's key in its group's attach state and in reserved-range owners.
    fn key(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// Attaches the device to the HWPT `hwpt`: attaches its group, or joins the devices of
    /// its group already attached there.
    ///
    /// `EINVAL` if the HWPT's domain does not suit the device (its IOMMU cannot enforce
    /// coherency for it, or the HWPT is coherent and the device would do non-coherent DMA
    /// through it), or the group is attached to another HWPT; `EBUSY` if the device is
    /// attached already; `EADDRINUSE` if one of the device's reserved regions is mapped in the
    /// IOAS.
    fn attach_hwpt(&self, hwpt: ObjRef<HwptPaging>) -> Result {
        let mut state = self.group.state.lock();
        if state.is_attached(self.key()) {
            return Err(EBUSY);
        }
        if matches!(&state.hwpt, Some(cur) if !cur.same(&hwpt)) || !state.admits(&hwpt) {
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
                    state.hwpt = Some(hwpt);
                }
                Err(e) => {
                    hwpt.ioas().unreserve(self.key());
                    return Err(e);
                }
            }
        }
        let dev = AttachedDev {
            key: self.key(),
            regions,
        };
        // Room was reserved above.
        state.attached.push(dev, GFP_KERNEL)?;
        Ok(())
    }

    /// Moves the device's group, with every device of it attached, to `hwpt`, without blocking
    /// its DMA in between. Returns the HWPT the group left, `None` if it was on `hwpt` already.
    ///
    /// `EINVAL` if the device is not attached or the HWPT does not suit it (as for
    /// [`Self::attach_hwpt`]); `EADDRINUSE` if a reserved region of one of the group's
    /// attached devices is mapped in the new IOAS. On error nothing changed.
    fn replace_hwpt(&self, hwpt: ObjRef<HwptPaging>) -> Result<Option<ObjRef<HwptPaging>>> {
        let mut guard = self.group.state.lock();
        let state = &mut *guard;
        if !state.is_attached(self.key()) || !state.admits(&hwpt) {
            return Err(EINVAL);
        }
        let (Some(old), Some(attachment)) = (&state.hwpt, &mut state.attachment) else {
            return Err(EINVAL);
        };
        if old.same(&hwpt) {
            return Ok(None);
        }
        let new_ioas = !core::ptr::eq(old.ioas(), hwpt.ioas());
        if new_ioas {
            for (i, dev) in state.attached.iter().enumerate() {
                if let Err(e) = hwpt.ioas().reserve_regions(dev.key, &dev.regions) {
                    for done in &state.attached[..i] {
                        hwpt.ioas().unreserve(done.key);
                    }
                    return Err(e);
                }
            }
        }
        if let Err(e) = attachment.replace(hwpt.domain().clone()) {
            if new_ioas {
                for dev in state.attached.iter() {
                    hwpt.ioas().unreserve(dev.key);
                }
            }
            return Err(e);
        }
        if new_ioas {
            for dev in state.attached.iter() {
                old.ioas().unreserve(dev.key);
            }
        }
        Ok(state.hwpt.replace(hwpt))
    }

    /// Detaches the device. Returns the HWPT if the group left it (the last device detached).
    fn detach_hwpt(&self) -> Option<ObjRef<HwptPaging>> {
        let mut state = self.group.state.lock();
        let pos = state.attached.iter().position(|d| d.key == self.key())?;
        let _ = state.attached.remove(pos);
        if let Some(hwpt) = &state.hwpt {
            hwpt.ioas().unreserve(self.key());
        }
        if !state.attached.is_empty() {
            return None;
        }
        drop(state.attachment.take());
        state.hwpt.take()
    }

    /// A use of the HWPT the device is attached to.
    fn attached_hwpt(&self) -> Option<ObjRef<HwptPaging>> {
        let state = self.group.state.lock();
        if !state.is_attached(self.key()) {
            return None;
        }
        state.hwpt.clone()
    }
}

/// Drops a use of an HWPT a group left; an automatic one is destroyed if nothing else uses it
/// (else whoever does, or userspace, destroys it later). By identity: if userspace destroyed it
/// and its id was reused meanwhile, the new object is left alone.
fn release_hwpt(ctx: &Ctx, hwpt: ObjRef<HwptPaging>) {
    if hwpt.is_auto() {
        ctx.objects.destroy_held(hwpt);
    }
}

/// What VFIO holds for a bound device (its `struct iommufd_device *`).
///
/// # Invariants
///
/// `ctx` is valid while the object exists: `file` holds a reference on the context's file.
pub(crate) struct Bound {
    /// The context.
    ctx: *const Ctx,
    /// A reference on the context's file, which keeps the context alive.
    file: ARef<kernel::fs::File>,
    /// The device object (a use of it, so that userspace cannot destroy it).
    idev: ObjRef<IDevice>,
}

impl Bound {
    /// The context.
    pub(crate) fn ctx(&self) -> &Ctx {
        // SAFETY: By the type invariant the context is alive while `self` is.
        unsafe { &*self.ctx }
    }

    /// The device's object id.
    pub(crate) fn id(&self) -> u32 {
        self.idev.id()
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
        // Allocated first: once the object is published, nothing may fail.
        let bound = KBox::<Self>::new_uninit(GFP_KERNEL)?;
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
                published: LockedBy::new(&ctx.published, false),
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
        let idev = idev.and_then(|idev| {
            group.add_member(&idev)?;
            ctx.objects
                .reserve()
                .and_then(|slot| slot.publish_held(idev.clone()))
                .inspect_err(|_| group.remove_member(&idev))
        });
        let idev = match idev {
            Ok(p) => p,
            Err(e) => {
                group.put(ctx);
                return Err(e);
            }
        };
        let file = ARef::from(ctx.file());
        let bound = KBox::write(bound, Self { ctx, file, idev });
        // A device of a group attached elsewhere may do non-coherent DMA from the start.
        if bound.idev.noncoherent_dma() {
            bound.publish();
        }
        Ok(bound)
    }

    /// Tells the device's and the context's subscribers, and those of the module's
    /// [`DeviceSignal`], the device's coherency state, after anything that may have changed it.
    ///
    /// The state is the group's, so every member's is published, this device's first.
    fn publish(&self) {
        let ctx = self.ctx();
        Self::publish_one(ctx, &self.idev);
        match self.idev.group.members() {
            Ok(members) => {
                for m in members
                    .iter()
                    .filter(|m| !core::ptr::eq(&***m, &*self.idev))
                {
                    Self::publish_one(ctx, m);
                }
            }
            // Only the other members' subscribers can miss this change; counts stay right.
            Err(_) => pr_warn!("iommufd: coherency of a group published in part\n"),
        }
        ctx.publish_coherency();
    }

    /// Publishes the coherency state of one device of the context `ctx`.
    ///
    /// The state is computed and recorded (the device's, the context's count, the module's
    /// signal) under the context's `published` lock, so concurrent publications of one device
    /// cannot leave them disagreeing; the chains are called after it.
    fn publish_one(ctx: &Ctx, idev: &IDevice) {
        let signal = DeviceSignal::get();
        let now = {
            let mut published = ctx.published.lock();
            let now = idev.noncoherent_dma();
            let was = core::mem::replace(idev.published.access_mut(&mut published), now);
            if was != now {
                if now {
                    published.noncoherent_devices += 1;
                } else {
                    published.noncoherent_devices -= 1;
                }
                if let Some(signal) = signal {
                    signal.set(idev.key(), now);
                }
            }
            now
        };
        idev.coherency.call_chain(u64::from(now));
        if let Some(signal) = signal {
            signal.notify(now);
        }
    }

    /// Unbinds the device, detaching it first if needed. When it returns, no ioctl uses the
    /// device any more and its DMA ownership is given back: VFIO may hand the device to another
    /// context or to a kernel driver at once.
    pub(crate) fn unbind(self: KBox<Self>) {
        self.detach();
        let Bound { ctx, file, idev } = KBox::into_inner(self);
        // SAFETY: `file` keeps the context alive (the type invariant) until the end of this
        // function, where it is dropped last.
        let ctx = unsafe { &*ctx };
        let group = idev.group.clone();
        // No longer a member, it stops counting for the group's coherency (it still did if
        // another device keeps the group attached).
        group.remove_member(&idev);
        if *idev.published.access(&ctx.published.lock()) {
            Self::publish_one(ctx, &idev);
            ctx.publish_coherency();
        }
        // Waits for ioctls still using the device; the object, and with it the DMA ownership,
        // is gone when it returns.
        ctx.objects.remove_wait(idev);
        group.put(ctx);
        drop(file);
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
        self.to_pt(pt_id, IDevice::attach_hwpt).map(|(id, ())| id)
    }

    /// Runs `op` (attach or replace) on the HWPT `pt_id` or, for an IOAS, on the first of its
    /// automatic HWPTs `op` accepts, else on a new one made for the device (destroyed again if
    /// `op` fails). Returns the HWPT's id and what `op` returned. `ENOENT` if there is no
    /// object `pt_id`, `EINVAL` if it is of another type.
    fn to_pt<R>(
        &self,
        pt_id: u32,
        op: impl Fn(&IDevice, ObjRef<HwptPaging>) -> Result<R>,
    ) -> Result<(u32, R)> {
        let ctx = self.ctx();
        let idev = &*self.idev;
        if let Ok(hwpt) = ctx.objects.get::<HwptPaging>(pt_id) {
            return Ok((pt_id, op(idev, hwpt)?));
        }
        let ioas = match ctx.objects.get::<Ioas>(pt_id) {
            Ok(ioas) => ioas,
            // Neither an IOAS nor an HWPT.
            Err(_) if ctx.objects.contains(pt_id) => return Err(EINVAL),
            Err(e) => return Err(e),
        };
        for (id, key) in ioas.auto_hwpts()?.iter().copied() {
            // Only the HWPT the IOAS listed: its id may name another object by now (and, if
            // the listed one went and another took its id and its memory, then at least an
            // automatic HWPT of this IOAS, which serves as well).
            let Some(hwpt) = ctx
                .objects
                .get_same::<HwptPaging>(id, key)
                .filter(|h| h.is_auto() && core::ptr::eq(h.ioas(), &*ioas))
            else {
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
            match op(idev, hwpt) {
                Ok(r) => return Ok((id, r)),
                // The domain does not suit the device: try the next one.
                Err(e) if e == EINVAL => continue,
                Err(e) => return Err(e),
            }
        }
        let hwpt = HwptPaging::new(ioas.clone(), idev, true, ioas.mode())?;
        let hwpt = ctx.objects.reserve()?.publish_held(hwpt)?;
        let id = hwpt.id();
        // Unlisted again when the HWPT is dropped, however that happens.
        if let Err(e) = ioas.add_auto_hwpt(id, hwpt.key()) {
            ctx.objects.destroy_held(hwpt);
            return Err(e);
        }
        let mine = hwpt.clone();
        match op(idev, hwpt) {
            Ok(r) => Ok((id, r)),
            Err(e) => {
                // Nothing else can have used it yet.
                ctx.objects.destroy_held(mine);
                Err(e)
            }
        }
    }

    /// Moves the device, with its whole group, to `pt_id` (as for [`Self::attach`]) without
    /// blocking its DMA in between; if it fails, the group stays where it was. Returns the new
    /// HWPT's id.
    pub(crate) fn replace(&self, pt_id: u32) -> Result<u32> {
        let res = self.do_replace(pt_id);
        self.publish();
        res
    }

    /// [`Self::replace`], without telling subscribers.
    fn do_replace(&self, pt_id: u32) -> Result<u32> {
        let Some(old) = self.idev.attached_hwpt() else {
            return self.do_attach(pt_id);
        };
        if old.id() == pt_id {
            return Ok(pt_id);
        }
        // Only a use: the group's own use comes back from `replace_hwpt`.
        drop(old);
        let (id, left) = self.to_pt(pt_id, IDevice::replace_hwpt)?;
        if let Some(left) = left {
            release_hwpt(self.ctx(), left);
        }
        Ok(id)
    }

    /// Detaches the device, if attached.
    pub(crate) fn detach(&self) {
        if let Some(hwpt) = self.idev.detach_hwpt() {
            release_hwpt(self.ctx(), hwpt);
        }
        self.publish();
    }
}

/// The capability bits `IOMMU_GET_HW_INFO` reports for `idev`: upstream's, and ours about
/// coherency.
fn capabilities(idev: &IDevice) -> u64 {
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
    let info = domain::HwInfo::get(&idev.dev, kind)?;
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
    // While its group is attached the device may be doing DMA already.
    let state = idev.group.state.lock();
    if state.hwpt.is_some() {
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
