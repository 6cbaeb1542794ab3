// SPDX-License-Identifier: GPL-2.0

//! Bound devices and their IOMMU groups: what a group is attached to, and the coherency state
//! that follows from it.
//!
//! The IOMMU translates for a group, not a device: while a group is attached to an HWPT, every
//! bound device of it reaches the HWPT's memory, attached or not. So the attach state lives in
//! [`IGroup`], shared by the bound devices ([`IDevice`]) of one group, and so do the coherency
//! rules: an HWPT must admit every member, and a member does non-coherent DMA while the group is
//! on an HWPT that does not enforce coherency.
//!
//! The VFIO-facing operations that use these (bind, attach, replace, detach, unbind) are in
//! [`crate::device`].

use kernel::{
    device::Device,
    iommu::domain::{
        self,
        Attachment,
        Cap,
        DmaOwner,
        Group,
        NoSnoop,
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
};

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
use kernel::notifier::Subscriber;

use crate::{
    coherency,
    hw_pagetable::HwptPaging,
    object::ObjRef,
    signal::{
        self,
        DeviceSignal, //
    },
};

/// The IOMMU groups of the devices bound to one context.
#[pin_data]
pub(crate) struct Groups {
    /// Each group once, while a device of it is bound.
    #[pin]
    list: Mutex<KVec<Arc<IGroup>>>,
}

impl Groups {
    /// No group yet.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            list <- new_mutex!(KVec::new(), "Ctx::groups"),
        })
    }

    /// The entry of `group`, created if no bound device uses it yet; counts one more bound
    /// device.
    pub(crate) fn get(&self, group: ARef<Group>) -> Result<Arc<IGroup>> {
        let mut list = self.list.lock();
        if let Some(g) = IGroup::find(&list, &group) {
            g.state.lock().bound += 1;
            return Ok(g.clone());
        }
        let g = Arc::pin_init(
            pin_init!(IGroup {
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
        list.push(g.clone(), GFP_KERNEL)?;
        Ok(g)
    }

    /// Counts one bound device of `g` less; forgets the group when none is left.
    pub(crate) fn put(&self, g: &Arc<IGroup>) {
        let mut list = self.list.lock();
        let mut state = g.state.lock();
        state.bound -= 1;
        if state.bound == 0 {
            drop(state);
            list.retain(|e| !Arc::ptr_eq(e, g));
        }
    }

    /// Whether a device of `group` is bound.
    pub(crate) fn contains(&self, group: &Group) -> bool {
        IGroup::find(&self.list.lock(), group).is_some()
    }
}

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
    /// The entry of `group` in `groups`.
    fn find<'a>(groups: &'a [Arc<Self>], group: &Group) -> Option<&'a Arc<Self>> {
        groups.iter().find(|g| core::ptr::eq(&*g.group, group))
    }

    /// Makes `idev` a member. `EINVAL` if the group is attached to an HWPT that would not
    /// have admitted it.
    pub(crate) fn add_member(&self, idev: &Arc<IDevice>) -> Result {
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
    pub(crate) fn remove_member(&self, idev: &IDevice) {
        self.state
            .lock()
            .members
            .retain(|m| !core::ptr::eq(&**m, idev));
    }

    /// The members, for publishing their state.
    pub(crate) fn members(&self) -> Result<KVec<Arc<IDevice>>> {
        let state = self.state.lock();
        let mut out = KVec::with_capacity(state.members.len(), GFP_KERNEL)?;
        for m in state.members.iter() {
            out.push(m.clone(), GFP_KERNEL)?;
        }
        Ok(out)
    }
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
    /// Whether probing found that it can issue No-Snoop DMA, or could not tell (which counts
    /// as able: see [`probe_no_snoop`]).
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

/// Whether `dev` counts as able to issue No-Snoop DMA, by probing it (which writes its control
/// register: the caller must own it).
///
/// An answer the probe could not give counts as able: taking a device that can for one that
/// cannot would let it do non-coherent DMA that nothing reports (KVM would skip the cache
/// flushes its guest needs), while the opposite mistake only costs flushes or refuses a
/// `coherent` page table the IOMMU cannot enforce. Such a guess is logged.
fn probe_no_snoop(dev: &Device) -> bool {
    let probe = domain::device_no_snoop(dev);
    if let NoSnoop::Unknown(why) = probe {
        dev_info!(
            dev,
            "cannot tell whether it can issue No-Snoop DMA ({}); counted as able to\n",
            why.describe()
        );
    }
    probe.counts_as_can()
}

impl IDevice {
    /// The object for `dev`, a new member-to-be of `group`, whose DMA `owner` the context has
    /// claimed; its published state is kept under `published`. Probes whether it can issue
    /// No-Snoop DMA (which writes its control register: only now that the context owns it) and
    /// makes it known to the module's coherency signal.
    pub(crate) fn new(
        dev: &Device,
        group: Arc<IGroup>,
        owner: DmaOwner,
        published: &Mutex<Published>,
    ) -> Result<Arc<Self>> {
        let probed = probe_no_snoop(dev);
        let idev = Arc::pin_init(
            pin_init!(Self {
                dev: dev.into(),
                group,
                owner,
                iommu_can_enforce: domain::device_capable(dev, Cap::EnforceCacheCoherency),
                probed_no_snoop: probed,
                no_snoop: Atomic::new(probed),
                coherency <- BlockingNotifierHead::new(),
                published: LockedBy::new(published, false),
                #[cfg(CONFIG_IOMMUFD_RS_TEST)]
                test_events <- Subscriber::new(EventLog::new()),
            }),
            GFP_KERNEL,
        )?;
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        // SAFETY: The subscriber lives in the device object, which unregisters it when it is
        // dropped.
        unsafe { idev.coherency.register(idev.test_events.as_block()) }?;
        // Known to the signal from now on; the object's drop forgets it.
        if let Some(signal) = DeviceSignal::get() {
            signal.add(signal::key(dev), idev.key())?;
        }
        Ok(idev)
    }

    /// Its group.
    pub(crate) fn group(&self) -> &Arc<IGroup> {
        &self.group
    }

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

    /// What it brings to the coherency rules.
    pub(crate) fn caps(&self) -> coherency::DevCaps {
        coherency::DevCaps {
            iommu_can_enforce: self.iommu_can_enforce,
            no_snoop: self.no_snoop(),
        }
    }

    /// Whether it does non-coherent DMA now: bound, able to issue No-Snoop, and its group
    /// (through this device or another) attached to an HWPT that does not enforce coherency.
    pub(crate) fn noncoherent_dma(&self) -> bool {
        self.group.state.lock().noncoherent_dma(self)
    }

    /// Records `now` as the state the device published last, in `published` (the context's,
    /// locked), and counts it there. Returns whether it changed.
    pub(crate) fn set_published(&self, published: &mut Published, now: bool) -> bool {
        let was = core::mem::replace(self.published.access_mut(published), now);
        if was != now {
            if now {
                published.noncoherent_devices += 1;
            } else {
                published.noncoherent_devices -= 1;
            }
        }
        was != now
    }

    /// The state the device published last (read under the context's `published` lock).
    pub(crate) fn published(&self, published: &Published) -> bool {
        *self.published.access(published)
    }

    /// Tells the device's subscribers its coherency state `now`.
    pub(crate) fn notify(&self, now: bool) {
        self.coherency.call_chain(u64::from(now));
    }

    /// Declares the device able (or, back to what probing found, unable) to issue No-Snoop
    /// DMA, for tests; `EBUSY` while its group is attached, when it may be doing DMA already.
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    pub(crate) fn set_no_snoop_for_test(&self, value: bool) -> Result {
        let state = self.group.state.lock();
        if state.hwpt.is_some() {
            return Err(EBUSY);
        }
        self.no_snoop.store(value || self.probed_no_snoop, Relaxed);
        Ok(())
    }

    /// The test subscriber's count of the device's coherency events.
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    pub(crate) fn test_events(&self) -> &EventLog {
        self.test_events.inner()
    }

    /// The device's key in its group's attach state and in reserved-range owners.
    pub(crate) fn key(&self) -> usize {
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
    pub(crate) fn attach_hwpt(&self, hwpt: ObjRef<HwptPaging>) -> Result {
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
    pub(crate) fn replace_hwpt(
        &self,
        hwpt: ObjRef<HwptPaging>,
    ) -> Result<Option<ObjRef<HwptPaging>>> {
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
    pub(crate) fn detach_hwpt(&self) -> Option<ObjRef<HwptPaging>> {
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
    pub(crate) fn attached_hwpt(&self) -> Option<ObjRef<HwptPaging>> {
        let state = self.group.state.lock();
        if !state.is_attached(self.key()) {
            return None;
        }
        state.hwpt.clone()
    }
}

/// The coherency state the devices of one context last published, kept under a lock of the
/// context (`Ctx::published`).
#[derive(Default)]
pub(crate) struct Published {
    /// How many bound devices last published "non-coherent DMA present".
    noncoherent_devices: u32,
}

impl Published {
    /// How many bound devices last published "non-coherent DMA present".
    pub(crate) fn noncoherent_devices(&self) -> u32 {
        self.noncoherent_devices
    }
}
