// SPDX-License-Identifier: GPL-2.0

//! The per-open context of `/dev/iommu`.
//!
//! A [`Ctx`] lives from `open()` to the last `close()` of one file. It owns every object created
//! through that file; dropping it (on release) drops the object table and with it every object
//! that nothing else references.

use kernel::{
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
    time::{
        Instant,
        Monotonic, //
    },
};

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
use kernel::notifier::Subscriber;

use crate::{
    group::{
        EventLog,
        Groups,
        IDevice,
        Published, //
    },
    hw_pagetable::HwptPaging,
    ioas::Ioas,
    ioctl,
    object::{
        object_kind,
        ObjectTable, //
    },
};

/// Every kind of object a context can hold.
pub(crate) enum Object {
    /// An I/O address space.
    Ioas(Arc<Ioas>),
    /// An I/O page table mirroring an IOAS.
    Hwpt(Arc<HwptPaging>),
    /// A device bound by VFIO.
    Device(Arc<IDevice>),
}

object_kind!(Ioas, Object::Ioas);
object_kind!(HwptPaging, Object::Hwpt);
object_kind!(IDevice, Object::Device);

/// The state of one open `/dev/iommu` file.
#[pin_data]
pub(crate) struct Ctx {
    /// Every object created through this file, by id.
    #[pin]
    pub(crate) objects: ObjectTable<Object>,
    /// The file this context belongs to. It outlives the context, which is dropped when the
    /// file is released; references to the context taken by other drivers are references to
    /// the file.
    file: *const File,
    /// The IOMMU groups of the devices bound to this context.
    #[pin]
    pub(crate) groups: Groups,
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
    pub(crate) test_events: Subscriber<EventLog>,
    /// When the context's last `IOMMU_EXECUTE_WBINVD` flush ended; held across a flush, so
    /// that the flushes of one context run one at a time.
    #[pin]
    pub(crate) last_wbinvd: Mutex<Option<Instant<Monotonic>>>,
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
                groups <- Groups::new(),
                coherency <- BlockingNotifierHead::new(),
                published <- new_mutex!(Published::default(), "Ctx::published"),
                #[cfg(CONFIG_IOMMUFD_RS_TEST)]
                test_events <- Subscriber::new(EventLog::new()),
                last_wbinvd <- new_mutex!(None, "Ctx::last_wbinvd"),
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
        self.published.lock().noncoherent_devices() != 0
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

    /// Whether pinned pages are charged to the mm (`IOMMU_OPTION_RLIMIT_MODE` 1) rather than
    /// to the user (0).
    pub(crate) fn rlimit_mode(&self) -> u64 {
        u64::from(self.account_to_mm.load(Relaxed))
    }

    /// Sets `IOMMU_OPTION_RLIMIT_MODE` to `val`: `EBUSY` if the context holds an object (the
    /// first check, as upstream), `EINVAL` for a value other than 0 and 1.
    pub(crate) fn set_rlimit_mode(&self, val: u64) -> Result {
        self.objects.if_empty(|| {
            let to_mm = match val {
                0 => false,
                1 => true,
                _ => return Err(EINVAL),
            };
            self.account_to_mm.store(to_mm, Relaxed);
            Ok(())
        })?
    }
}
