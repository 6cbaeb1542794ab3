// SPDX-License-Identifier: GPL-2.0

//! The per-open context of `/dev/iommu`.
//!
//! A [`Ctx`] lives from `open()` to the last `close()` of one file. It owns every object created
//! through that file; dropping it (on release) drops the object table and with it every object
//! that nothing else references.

use core::mem::offset_of;
use kernel::{
    capability::{
        capable,
        Capability, //
    },
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    mm::pin::{
        ChargeTo,
        PinCharge, //
    },
    new_mutex,
    notifier::BlockingNotifierHead,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        Mutex, //
    },
    uapi::{
        iommu_option,
        iommufd_option_IOMMU_OPTION_HUGE_PAGES as OPTION_HUGE_PAGES,
        iommufd_option_IOMMU_OPTION_RLIMIT_MODE as OPTION_RLIMIT_MODE,
        iommufd_option_ops_IOMMU_OPTION_OP_GET as OP_GET,
        iommufd_option_ops_IOMMU_OPTION_OP_SET as OP_SET, //
    },
};

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
use kernel::notifier::Subscriber;

use crate::{
    device,
    ioas,
    ioctl::{
        self,
        Ucmd, //
    },
    object::ObjectTable,
    uapi, //
};

/// The state of one open `/dev/iommu` file.
#[pin_data]
pub(crate) struct Ctx {
    /// Every object created through this file, by id.
    #[pin]
    pub(crate) objects: ObjectTable,
    /// The file this context belongs to. It outlives the context, which is dropped when the
    /// file is released; references to the context taken by other drivers are references to
    /// the file.
    file: *const File,
    /// The IOMMU groups of the devices bound to this context.
    #[pin]
    pub(crate) groups: Mutex<KVec<Arc<device::IGroup>>>,
    /// Subscribers to the context's coherency state: called with 1 or 0 ("some bound device
    /// does non-coherent DMA now" or not) after every attach, replace, detach and unbind.
    #[pin]
    pub(crate) coherency: BlockingNotifierHead,
    /// What the context's devices last published; every device's published state is kept
    /// under this lock ([`Published`]), so that the count, each device's state and the module's
    /// signal change together.
    #[pin]
    pub(crate) published: Mutex<Published>,
    /// A subscriber on `coherency` that counts events, for tests.
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    #[pin]
    pub(crate) test_events: Subscriber<crate::device::EventLog>,
    /// How pinned pages will be charged (`IOMMU_OPTION_RLIMIT_MODE`): to the mm's `pinned_vm`
    /// (true) or to the user's `locked_vm` (false, the default). Changes only while the context
    /// holds no object.
    account_to_mm: Atomic<bool>,
}

#[vtable]
impl MiscDevice for Ctx {
    type Ptr = Pin<KBox<Self>>;

    fn open(file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let ctx = KBox::pin_init(
            pin_init!(Self {
                objects <- ObjectTable::new(),
                file: core::ptr::from_ref(file),
                groups <- new_mutex!(KVec::new(), "Ctx::groups"),
                coherency <- BlockingNotifierHead::new(),
                published <- new_mutex!(Published { noncoherent_devices: 0 }, "Ctx::published"),
                #[cfg(CONFIG_IOMMUFD_RS_TEST)]
                test_events <- Subscriber::new(crate::device::EventLog::new()),
                account_to_mm: Atomic::new(false),
            }),
            GFP_KERNEL,
        )?;
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        // SAFETY: The subscriber lives in the context, which unregisters it before it goes
        // (`release`).
        unsafe { ctx.coherency.register(ctx.test_events.as_block()) }?;
        Ok(ctx)
    }

    fn release(ctx: Pin<KBox<Ctx>>, _file: &File) {
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        // SAFETY: Registered in `open`.
        let _ = unsafe { ctx.coherency.unregister(ctx.test_events.as_block()) };
        drop(ctx);
    }

    fn ioctl(me: Pin<&Ctx>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, cmd, arg).map(|()| 0)
    }
}

// SAFETY: `file` is only used to take references on the file, which is safe from any thread;
// everything else is `Send`.
unsafe impl Send for Ctx {}

// SAFETY: `file` is only used to take references on the file, which any thread may do; every
// other field is shared only through locks and atomics.
unsafe impl Sync for Ctx {}

impl Ctx {
    /// The file of the context.
    pub(crate) fn file(&self) -> &File {
        // SAFETY: The file outlives its context (see the field).
        unsafe { &*self.file }
    }

    /// Whether some bound device does non-coherent DMA now (as last published).
    pub(crate) fn noncoherent_dma(&self) -> bool {
        self.published.lock().noncoherent_devices != 0
    }

    /// Tells the context's subscribers its coherency state.
    pub(crate) fn publish_coherency(&self) {
        self.coherency.call_chain(u64::from(self.noncoherent_dma()));
    }

    /// A new bill for pages pinned on behalf of the caller, in the context's accounting mode.
    pub(crate) fn payer(&self) -> Result<PinCharge> {
        let to = if self.account_to_mm.load(Relaxed) {
            ChargeTo::Mm
        } else {
            ChargeTo::User
        };
        PinCharge::current(to)
    }
}

/// The coherency state a context's devices last published (see [`Ctx::published`]).
pub(crate) struct Published {
    /// How many bound devices last published "non-coherent DMA present".
    pub(crate) noncoherent_devices: u32,
}

/// `IOMMU_EXECUTE_WBINVD` (our extension): writes back and invalidates every CPU's caches, for
/// a caller that has a device doing non-coherent DMA through this context (`EPERM` otherwise:
/// without one the flush protects nothing and only costs every other user of the machine).
pub(crate) fn execute_wbinvd(ctx: &Ctx, cmd: &mut uapi::ExecuteWbinvd) -> Result {
    if cmd.0.flags != 0 || !cfg!(CONFIG_X86) {
        return Err(EOPNOTSUPP);
    }
    if !ctx.noncoherent_dma() {
        return Err(EPERM);
    }
    #[cfg(CONFIG_X86)]
    kernel::cache::wbinvd_on_all_cpus();
    Ok(())
}

/// `IOMMU_OPTION`: reads or sets an option of the context or of an IOAS. Only `val64` is written
/// back.
pub(crate) fn option(ctx: &Ctx, cmd: &mut uapi::IommuOption, ucmd: &Ucmd) -> Result {
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    match cmd.0.option_id {
        OPTION_RLIMIT_MODE => rlimit_mode(ctx, cmd)?,
        OPTION_HUGE_PAGES => ioas::option_huge_pages(ctx, cmd)?,
        _ => return Err(EOPNOTSUPP),
    }
    ucmd.write_at(offset_of!(iommu_option, val64), &cmd.0.val64)
}

/// `IOMMU_OPTION_RLIMIT_MODE`: where pinned pages are charged (0: the user's `RLIMIT_MEMLOCK`,
/// 1: the mm's). Setting it needs `CAP_SYS_RESOURCE` and a context with no object yet.
fn rlimit_mode(ctx: &Ctx, cmd: &mut uapi::IommuOption) -> Result {
    if cmd.0.object_id != 0 {
        return Err(EOPNOTSUPP);
    }
    match u32::from(cmd.0.op) {
        OP_GET => {
            cmd.0.val64 = u64::from(ctx.account_to_mm.load(Relaxed));
            Ok(())
        }
        OP_SET => {
            if !capable(Capability::SYS_RESOURCE) {
                return Err(EPERM);
            }
            // A context with objects answers EBUSY whatever the value, as upstream.
            ctx.objects.if_empty(|| {
                let to_mm = match cmd.0.val64 {
                    0 => false,
                    1 => true,
                    _ => return Err(EINVAL),
                };
                ctx.account_to_mm.store(to_mm, Relaxed);
                Ok(())
            })?
        }
        _ => Err(EOPNOTSUPP),
    }
}
