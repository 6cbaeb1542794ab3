// SPDX-License-Identifier: GPL-2.0

//! The KVM-VFIO device of one VM: the files added to it, each followed by a subscription, and
//! the device attributes.
//!
//! A file is held from `KVM_DEV_VFIO_FILE_ADD` to `KVM_DEV_VFIO_FILE_DEL` (or the device's
//! release) as an [`Added`], which subscribes to where the file's state comes from ([`Source`])
//! and feeds the answer to the VM's gate through the file's [`Contribution`].

use core::mem::size_of;
use kernel::{
    fs::File,
    new_mutex,
    notifier::{
        NotifierCallback,
        Subscriber, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};

use crate::{
    gate::{
        Contribution,
        Gate, //
    },
    hooks::{
        self,
        DeviceKey,
        IommufdCtx,
        Kvm,
        VfioFile, //
    },
};

/// Where a file's "non-coherent DMA present" comes from.
enum Source {
    /// A file whose answer is fixed when it is added: a VFIO group file, from what its IOMMU
    /// can enforce (as upstream), or the device file of a device no IOMMU translates for
    /// (always non-coherent, as upstream).
    Fixed {
        /// Whether the file's devices may do non-coherent DMA.
        noncoherent: bool,
        /// The `KVM_VFIO_FILE_KIND_*` of the file.
        kind: u32,
    },
    /// A VFIO device file: what iommufd reports for the device now.
    Device(DeviceKey),
    /// A `/dev/iommu` file: whether a device bound to it has non-coherent DMA now.
    Iommufd(IommufdCtx),
}

impl Source {
    /// Where the state of `file` comes from; `EINVAL` if it is neither a VFIO file nor an open
    /// `/dev/iommu`.
    fn of_file(file: &File) -> Result<Self> {
        if !hooks::vfio_file_valid(file) {
            return IommufdCtx::of_file(file).map(Self::Iommufd).ok_or(EINVAL);
        }
        Ok(match hooks::vfio_file_kind(file) {
            VfioFile::Device(dev) => Self::Device(dev),
            VfioFile::Untranslated => Self::Fixed {
                noncoherent: true,
                kind: uapi::KVM_VFIO_FILE_KIND_DEVICE,
            },
            VfioFile::Group(coherent) => Self::Fixed {
                noncoherent: !coherent,
                kind: uapi::KVM_VFIO_FILE_KIND_GROUP,
            },
        })
    }

    /// What the source says now.
    fn noncoherent_dma(&self) -> bool {
        match self {
            Self::Fixed { noncoherent, .. } => *noncoherent,
            Self::Device(dev) => dev.noncoherent_dma(),
            Self::Iommufd(ctx) => ctx.noncoherent_dma(),
        }
    }

    /// The `KVM_VFIO_FILE_KIND_*` of the file.
    fn kind(&self) -> u32 {
        match self {
            Self::Fixed { kind, .. } => *kind,
            Self::Device(_) => uapi::KVM_VFIO_FILE_KIND_DEVICE,
            Self::Iommufd(_) => uapi::KVM_VFIO_FILE_KIND_IOMMUFD,
        }
    }

    /// Whether the file is a VFIO file, which is lent the VM while added.
    fn is_vfio(&self) -> bool {
        !matches!(self, Self::Iommufd(_))
    }
}

/// Follows one added file for its VM's gate.
struct Watch {
    /// Where the file's state comes from.
    source: Source,
    /// Whether the gate counts the file.
    contribution: Contribution,
}

impl NotifierCallback for Watch {
    fn notify(&self, _event: u64) {
        // The event is one object's state; the file's own state is read afresh.
        self.contribution.update(|| self.source.noncoherent_dma());
    }
}

/// A file added to a KVM-VFIO device.
///
/// # Invariants
///
/// While `subscribed`, `watch` is on the notifier chain of its source (the all-devices chain for
/// a device file, the context's chain for a `/dev/iommu` file; a fixed one has none) and a VFIO
/// file has been lent the VM.
#[pin_data(PinnedDrop)]
struct Added {
    /// The file, held until the file is removed or the device goes.
    file: ARef<File>,
    /// The subscription that keeps the file's contribution up to date.
    #[pin]
    watch: Subscriber<Watch>,
    /// Whether [`Added::start`] completed.
    subscribed: bool,
}

impl Added {
    /// Starts following the file: subscribes to its source and counts its state now.
    fn start(self: Pin<&mut Self>) -> Result {
        let block = self.watch.as_block();
        match &self.watch.inner().source {
            Source::Fixed { .. } => {}
            // SAFETY: `block` is the notifier block of `self.watch`, which is pinned and is
            // unsubscribed in `drop` before it goes; the module cannot be unloaded while a
            // device, which owns `self`, exists.
            Source::Device(_) => unsafe { hooks::watch_devices(block) }?,
            // SAFETY: `block` is pinned in `self` and unsubscribed in `drop` before it goes, and
            // before `ctx`, which also lives in `self`, is dropped.
            Source::Iommufd(ctx) => unsafe { ctx.watch(block) }?,
        }
        // SAFETY: Only the plain `subscribed` field is written through the reference; nothing
        // is moved out of the pinned value.
        let this = unsafe { self.get_unchecked_mut() };
        // INVARIANT: The block was just put on its source's chain; the VM is lent below.
        this.subscribed = true;
        let watch = this.watch.inner();
        if watch.source.is_vfio() {
            watch.contribution.gate().kvm().lend_to(&this.file, true);
        }
        watch.contribution.update(|| watch.source.noncoherent_dma());
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Added {
    fn drop(self: Pin<&mut Self>) {
        let watch = self.watch.inner();
        if self.subscribed {
            let block = self.watch.as_block();
            match &watch.source {
                Source::Fixed { .. } => {}
                // SAFETY: `subscribed` is set, so `block` is on the all-devices chain (type
                // invariant).
                Source::Device(_) => unsafe { hooks::unwatch_devices(block) },
                // SAFETY: `subscribed` is set, so `block` is on the chain of `ctx` (type
                // invariant).
                Source::Iommufd(ctx) => unsafe { ctx.unwatch(block) },
            }
            if watch.source.is_vfio() {
                watch.contribution.gate().kvm().lend_to(&self.file, false);
            }
        }
        // No callback runs any more: the file stops counting.
        watch.contribution.withdraw();
    }
}

/// The KVM-VFIO device of one VM.
#[pin_data]
pub(crate) struct KvmVfio {
    /// The VM's coherency decision.
    gate: Arc<Gate>,
    /// The added files.
    #[pin]
    files: Mutex<KVec<Pin<KBox<Added>>>>,
}

impl KvmVfio {
    /// The device of the VM `kvm`, with no file yet.
    pub(crate) fn new(kvm: Kvm) -> Result<Pin<KBox<Self>>> {
        let gate = Gate::new(kvm)?;
        KBox::pin_init(
            pin_init!(Self {
                gate,
                files <- new_mutex!(KVec::new(), "KvmVfio::files"),
            }),
            GFP_KERNEL,
        )
    }

    /// Removes every file, as the device goes: each is unsubscribed, hands back the VM and
    /// stops counting, so the last one leaves KVM told "coherent" if it was told otherwise.
    pub(crate) fn remove_all(&self) {
        let files = core::mem::take(&mut *self.files.lock());
        drop(files);
    }

    /// Finds `file` among the added files.
    fn position(files: &[Pin<KBox<Added>>], file: &File) -> Option<usize> {
        files.iter().position(|a| core::ptr::eq(&*a.file, file))
    }

    /// `KVM_DEV_VFIO_FILE_ADD`.
    fn add(&self, fd: i32) -> Result {
        let file = fget(fd)?;
        let source = Source::of_file(&file)?;
        let mut files = self.files.lock();
        if Self::position(&files, &file).is_some() {
            return Err(EEXIST);
        }
        files.reserve(1, GFP_KERNEL)?;
        let watch = Watch {
            source,
            contribution: Contribution::new(&self.gate),
        };
        let mut added = KBox::pin_init(
            pin_init!(Added {
                file,
                watch <- Subscriber::new(watch),
                subscribed: false,
            }),
            GFP_KERNEL,
        )?;
        added.as_mut().start()?;
        // Cannot fail: room was reserved above.
        files.push(added, GFP_KERNEL)?;
        Ok(())
    }

    /// `KVM_DEV_VFIO_FILE_DEL`.
    fn del(&self, fd: i32) -> Result {
        let file = fget(fd)?;
        let mut files = self.files.lock();
        let i = Self::position(&files, &file).ok_or(ENOENT)?;
        // Dropping it unsubscribes, hands back the VM and the file, and updates the gate.
        drop(files.remove(i).map_err(|_| ENOENT)?);
        Ok(())
    }

    /// `KVM_DEV_VFIO_COHERENCY_STATE`.
    fn state(&self) -> StateAttr {
        // The file list is held so that the counts agree with the number of files.
        let files = self.files.lock();
        let state = self.gate.status();
        let mut flags = 0;
        if state.registered {
            flags |= uapi::KVM_VFIO_COHERENCY_NONCOHERENT;
        }
        if state.contributing > 0 {
            flags |= uapi::KVM_VFIO_COHERENCY_PROOF;
        }
        if state.force_disabled {
            flags |= uapi::KVM_VFIO_COHERENCY_FORCE_DISABLED;
        }
        StateAttr(uapi::kvm_vfio_coherency_state {
            flags,
            nr_files: u32::try_from(files.len()).unwrap_or(u32::MAX),
            nr_contributing: state.contributing,
            __reserved: 0,
            register_edges: state.register_edges,
            unregister_edges: state.unregister_edges,
        })
    }

    /// `KVM_DEV_VFIO_COHERENCY_FILE`: fills in what the file `attr.0.fd` contributes.
    fn file_state(&self, attr: &mut FileAttr) -> Result {
        let file = fget(attr.0.fd)?;
        let files = self.files.lock();
        let i = Self::position(&files, &file).ok_or(ENOENT)?;
        let watch = files[i].watch.inner();
        attr.0.contributes = u32::from(watch.contribution.counted());
        attr.0.kind = watch.source.kind();
        attr.0.__reserved = 0;
        Ok(())
    }

    /// `KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE` (set).
    fn force_disable(&self, on: u32) -> Result {
        let on = match on {
            0 => false,
            1 => true,
            _ => return Err(EINVAL),
        };
        self.gate.force_disable(on);
        Ok(())
    }

    /// `KVM_SET_DEVICE_ATTR`.
    pub(crate) fn set_attr(&self, group: u32, attr: u64, addr: u64) -> Result {
        match (group, attr) {
            (uapi::KVM_DEV_VFIO_FILE, a) if a == u64::from(uapi::KVM_DEV_VFIO_FILE_ADD) => {
                self.add(read_user::<i32>(addr)?)
            }
            (uapi::KVM_DEV_VFIO_FILE, a) if a == u64::from(uapi::KVM_DEV_VFIO_FILE_DEL) => {
                self.del(read_user::<i32>(addr)?)
            }
            (uapi::KVM_DEV_VFIO_COHERENCY, a)
                if a == u64::from(uapi::KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE) =>
            {
                self.force_disable(read_user::<u32>(addr)?)
            }
            _ => Err(ENXIO),
        }
    }

    /// `KVM_GET_DEVICE_ATTR`.
    pub(crate) fn get_attr(&self, group: u32, attr: u64, addr: u64) -> Result {
        if group != uapi::KVM_DEV_VFIO_COHERENCY {
            return Err(ENXIO);
        }
        match u32::try_from(attr).map_err(|_| ENXIO)? {
            uapi::KVM_DEV_VFIO_COHERENCY_STATE => write_user(addr, &self.state()),
            uapi::KVM_DEV_VFIO_COHERENCY_FILE => {
                let mut f = read_user::<FileAttr>(addr)?;
                self.file_state(&mut f)?;
                write_user(addr, &f)
            }
            uapi::KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE => {
                let on = self.gate.status().force_disabled;
                write_user(addr, &u32::from(on))
            }
            _ => Err(ENXIO),
        }
    }
}

/// `KVM_HAS_DEVICE_ATTR`: 0 for the attributes the device serves, `ENXIO` for the rest.
pub(crate) fn has_attr(group: u32, attr: u64) -> Result {
    let known: &[u32] = match group {
        uapi::KVM_DEV_VFIO_FILE => &[uapi::KVM_DEV_VFIO_FILE_ADD, uapi::KVM_DEV_VFIO_FILE_DEL],
        uapi::KVM_DEV_VFIO_COHERENCY => &[
            uapi::KVM_DEV_VFIO_COHERENCY_STATE,
            uapi::KVM_DEV_VFIO_COHERENCY_FILE,
            uapi::KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE,
        ],
        _ => &[],
    };
    if known.iter().any(|k| u64::from(*k) == attr) {
        Ok(())
    } else {
        Err(ENXIO)
    }
}

/// Takes a reference on the file open as `fd` in the caller's table; `EBADF` if there is none.
fn fget(fd: i32) -> Result<ARef<File>> {
    // SAFETY: We are in a KVM device ioctl (`KVM_SET_DEVICE_ATTR` or `KVM_GET_DEVICE_ATTR`):
    // `ioctl(2)` took the device's file with `fdget()`, and nothing on this path takes a file
    // with `fdget_pos()`, so none is active on this thread.
    unsafe { File::fget_in_ioctl(fd) }
}

/// Reads a `T` from the user address `addr`; `EFAULT` if it cannot.
fn read_user<T: FromBytes>(addr: u64) -> Result<T> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
        .reader()
        .read::<T>()
}

/// Writes `value` to the user address `addr`; `EFAULT` if it cannot.
fn write_user<T: AsBytes>(addr: u64, value: &T) -> Result {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
        .writer()
        .write(value)
}

/// `struct kvm_vfio_coherency_state`, which userspace reads.
#[repr(transparent)]
struct StateAttr(uapi::kvm_vfio_coherency_state);

/// `struct kvm_vfio_coherency_file`, which userspace reads and writes.
#[repr(transparent)]
struct FileAttr(uapi::kvm_vfio_coherency_file);

// Both structs are integers only and, as the sizes show, without padding.
const _: () = assert!(size_of::<StateAttr>() == 4 * 4 + 2 * 8);
const _: () = assert!(size_of::<FileAttr>() == 4 * 4);

// SAFETY: Four `u32` and two `u64`, 32 bytes in all (asserted above): the `u64`s start at offset
// 16, so there is no padding and every byte is initialised.
unsafe impl AsBytes for StateAttr {}

// SAFETY: An `i32` and three `u32`, 16 bytes in all (asserted above): no padding, every byte
// initialised.
unsafe impl AsBytes for FileAttr {}

// SAFETY: An `i32` and three `u32`: any bytes make a valid value of each, and so of the struct.
unsafe impl FromBytes for FileAttr {}
