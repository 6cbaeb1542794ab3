// SPDX-License-Identifier: GPL-2.0

//! Devices bound to a context by VFIO, and their attachment to I/O page tables.
//!
//! VFIO binds a device it owns to a context (`VFIO_DEVICE_BIND_IOMMUFD`): the context takes the
//! DMA ownership of the device's IOMMU group away from the kernel, so the device can do no DMA
//! at all until userspace attaches it (`VFIO_DEVICE_ATTACH_IOMMUFD_PT`) to an HWPT, or to an
//! IOAS, for which the kernel finds or makes a suitable HWPT. A group is attached as a whole, so
//! the attach state lives in the group ([`crate::group`]); this file holds what VFIO calls.
//!
//! While attached, a device's reserved regions (such as the MSI window) are reserved in the
//! IOAS, which then never maps them.

use kernel::{
    device::Device,
    iommu::domain::{
        self,
        Cap,
        DmaOwner,
        Group, //
    },
    prelude::*,
    sync::aref::ARef,
};

use crate::{
    ctx::Ctx,
    group::IDevice,
    hw_pagetable::HwptPaging,
    ioas::Ioas,
    object::ObjRef,
    signal::DeviceSignal, //
};

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
    /// if its MSIs are not isolated (unless the `allow_unsafe_interrupts` module parameter, which
    /// sysfs can change, says otherwise), `EBUSY` if a kernel driver or another context owns its
    /// group's DMA.
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
            if !crate::kapi::allow_unsafe_interrupts() {
                return Err(EPERM);
            }
            dev_warn!(
                dev,
                "MSI interrupts cannot be isolated by the platform (interrupt remapping?); \
                 bound anyway because of allow_unsafe_interrupts\n"
            );
        }
        let owner = DmaOwner::claim(dev, core::ptr::from_ref(ctx).cast())?;
        let group = ctx.groups.get(group)?;
        let idev = IDevice::new(dev, group.clone(), owner, &ctx.published).and_then(|idev| {
            group.add_member(&idev)?;
            ctx.objects
                .reserve()
                .and_then(|slot| slot.publish_held(idev.clone()))
                .inspect_err(|_| group.remove_member(&idev))
        });
        let idev = match idev {
            Ok(p) => p,
            Err(e) => {
                ctx.groups.put(&group);
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
        match self.idev.group().members() {
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
            if idev.set_published(&mut published, now) {
                if let Some(signal) = signal {
                    signal.set(idev.key(), now);
                }
            }
            now
        };
        idev.notify(now);
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
        let group = idev.group().clone();
        // No longer a member, it stops counting for the group's coherency (it still did if
        // another device keeps the group attached).
        group.remove_member(&idev);
        if idev.published(&ctx.published.lock()) {
            Self::publish_one(ctx, &idev);
            ctx.publish_coherency();
        }
        // Waits for ioctls still using the device; the object, and with it the DMA ownership,
        // is gone when it returns.
        ctx.objects.remove_wait(idev);
        ctx.groups.put(&group);
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
        let hwpt = HwptPaging::new(ioas.clone(), idev.device(), idev.caps(), true, ioas.mode())?;
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
