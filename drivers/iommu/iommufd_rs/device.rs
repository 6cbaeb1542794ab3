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
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
};

use crate::{
    ctx::Ctx,
    hwpt::HwptPaging,
    ioas::Ioas,
    object::ObjRef, //
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
        for g in groups.iter() {
            if core::ptr::eq(&*g.group, &*group) {
                g.state.lock().bound += 1;
                return Ok(g.clone());
            }
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
    ctx.groups
        .lock()
        .iter()
        .any(|g| core::ptr::eq(&*g.group, group))
}

/// A device bound to a context: the object VFIO gets when it binds.
pub(crate) struct IDevice {
    /// The device.
    dev: ARef<Device>,
    /// Its group.
    group: Arc<IGroup>,
    /// The DMA ownership of the device, claimed at bind; released when the object goes.
    owner: DmaOwner,
}

impl IDevice {
    /// The device's key in its group's attach state and in reserved-range owners.
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Attaches the device to the HWPT `hwpt`, whose id is `id`.
    ///
    /// `EINVAL` if the HWPT's domain does not suit the device, or the group is attached to
    /// another HWPT; `EBUSY` if the device is attached already; `EADDRINUSE` if one of the
    /// device's reserved regions is mapped in the IOAS.
    fn attach_hwpt(&self, id: u32, hwpt: ObjRef<HwptPaging>) -> Result {
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
    /// `EINVAL` if its IOMMU cannot make DMA cache coherent, `ENODEV` without an IOMMU, `EBUSY`
    /// if a kernel driver or another context owns its group's DMA.
    pub(crate) fn bind(ctx: &Ctx, dev: &Device) -> Result<KBox<Self>> {
        // Every mapping asks for coherent DMA (as in the C driver), so the IOMMU must offer it.
        if !domain::device_capable(dev, Cap::CacheCoherency) {
            return Err(EINVAL);
        }
        let group = Group::of_device(dev).ok_or(ENODEV)?;
        let owner = DmaOwner::claim(dev, ctx as *const Ctx as *const c_void)?;
        let group = IGroup::get(ctx, group)?;
        let idev = Arc::new(
            IDevice {
                dev: dev.into(),
                group: group.clone(),
                owner,
            },
            GFP_KERNEL,
        );
        let published = idev.map_err(Error::from).and_then(|idev| {
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
        for id in ioas.auto_hwpts()?.iter().copied() {
            let Ok(hwpt) = ctx.objects.get::<HwptPaging>(id) else {
                continue;
            };
            match self.idev.attach_hwpt(id, hwpt) {
                Ok(()) => return Ok(id),
                // The domain does not suit the device: try the next one.
                Err(e) if e == EINVAL => continue,
                Err(e) => return Err(e),
            }
        }
        let hwpt = HwptPaging::new(ioas.clone(), &self.idev.dev, true)?;
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
        let Some((old_id, old)) = self.idev.attached_hwpt() else {
            return self.attach(pt_id);
        };
        if old_id == pt_id {
            return Ok(pt_id);
        }
        if let Some((id, hwpt)) = self.idev.detach_hwpt() {
            // `old` still holds a use, so this never destroys it.
            release_hwpt(self.ctx(), id, hwpt);
        }
        match self.attach(pt_id) {
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
    }
}
