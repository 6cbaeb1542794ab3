// SPDX-License-Identifier: GPL-2.0

//! The KVM-VFIO device (`KVM_DEV_TYPE_VFIO`) in Rust, with a live coherency signal.
//!
//! A VMM adds the files through which its guest's devices reach memory (VFIO group and device
//! files, and, as our extension, `/dev/iommu` files) to the VM's KVM-VFIO device. KVM must then
//! run a real cache flush for a guest WBINVD exactly while one of those devices can write memory
//! behind the CPU caches ("non-coherent DMA present"); otherwise the instruction can safely do
//! nothing.
//!
//! Upstream's device decides once, when a file is added, from what the device's IOMMU could do.
//! This one follows the state: every added file is held and watched (a device file through
//! iommufd's per-device signal, a `/dev/iommu` file through its context's signal; the answer of
//! a group file, or of the device file of a device no IOMMU translates for, is fixed when it is
//! added, as upstream), each file's contribution is kept up to date
//! by the notifier callbacks, and KVM is told only when the VM as a whole goes from "no file
//! contributes" to "some file does" and back ([`Gate`]), because each such edge makes KVM
//! rebuild the VM's page tables. Userspace can read the state and why (which files
//! contribute), and can force real flushes off for the VM. The attributes are described in
//! `include/uapi/linux/kvm_vfio_coherency.h`.
//!
//! Lock order: a device's `files`, then its gate's `state`, then iommufd's own locks. Notifier
//! callbacks only take `state`, so adding and removing files may (un)subscribe while holding
//! `files`.

use core::mem::size_of;
use kernel::{
    ffi::c_void,
    fs::{
        File,
        LocalFile, //
    },
    new_mutex,
    notifier::{
        NotifierCallback,
        Subscriber, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, Mutex,
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

mod hooks;

use hooks::{
    DeviceKey,
    IommufdCtx,
    Kvm,
    VfioFile, //
};

module! {
    type: KvmVfioModule,
    name: "kvm_vfio_rs",
    authors: ["iommufd-rs developers"],
    description: "KVM-VFIO device with a live cache-coherency signal",
    license: "GPL",
    alias: ["kvm-device-type-4"],
}

/// `KVM_DEV_TYPE_VFIO`, the number the module alias above spells out.
const _: () = assert!(uapi::kvm_device_type_KVM_DEV_TYPE_VFIO == 4);

/// The module: the device type's registration with KVM.
struct KvmVfioModule;

impl kernel::Module for KvmVfioModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        hooks::register_device_type()?;
        Ok(Self)
    }
}

impl Drop for KvmVfioModule {
    fn drop(&mut self) {
        hooks::unregister_device_type();
    }
}

/// What KVM is told about one VM, and the counts it follows from.
struct GateState {
    /// How many added files contribute non-coherent DMA now.
    contributing: u32,
    /// Whether KVM was told the VM has non-coherent DMA.
    registered: bool,
    /// Whether userspace forced real flushes off (`KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE`).
    force_disabled: bool,
    /// How many times KVM was told the VM gained non-coherent DMA.
    register_edges: u64,
    /// How many times KVM was told it lost it.
    unregister_edges: u64,
}

/// Decides, for one VM, whether KVM treats it as having non-coherent DMA.
#[pin_data]
struct Gate {
    /// The VM.
    kvm: Kvm,
    /// The decision and its inputs.
    #[pin]
    state: Mutex<GateState>,
}

impl Gate {
    /// Brings KVM in line with `state`: non-coherent exactly while some file contributes and
    /// userspace did not force flushes off. Calls KVM only on a change.
    fn apply(&self, state: &mut GateState) {
        let want = state.contributing > 0 && !state.force_disabled;
        if want == state.registered {
            return;
        }
        self.kvm.set_noncoherent(want);
        state.registered = want;
        if want {
            state.register_edges += 1;
        } else {
            state.unregister_edges += 1;
        }
    }

    /// Re-reads the contribution of the file `watch` follows, and applies it.
    fn refresh(&self, watch: &Watch) {
        let mut state = self.state.lock();
        // Read under `state`, so that concurrent refreshes apply in the order they read.
        let now = watch.source.noncoherent_dma();
        Self::count(&mut state, watch, now);
        self.apply(&mut state);
    }

    /// Stops counting the file `watch` follows (it is being removed).
    fn forget(&self, watch: &Watch) {
        let mut state = self.state.lock();
        Self::count(&mut state, watch, false);
        self.apply(&mut state);
    }

    /// Records that the file `watch` follows contributes (`now`) or not.
    fn count(state: &mut GateState, watch: &Watch, now: bool) {
        if watch.contributes.xchg(now, Relaxed) != now {
            if now {
                state.contributing += 1;
            } else {
                state.contributing -= 1;
            }
        }
    }
}

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
}

/// Follows one added file for its VM's gate.
struct Watch {
    /// The gate of the VM the file was added to.
    gate: Arc<Gate>,
    /// Where the file's state comes from.
    source: Source,
    /// Whether the gate counts the file as contributing; changed only under the gate's lock.
    contributes: Atomic<bool>,
}

impl NotifierCallback for Watch {
    fn notify(&self, _event: u64) {
        // The event is one object's state; the file's own state is read afresh.
        self.gate.refresh(self);
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
            // SAFETY: The block lives in `self`, which is pinned and unsubscribes before it
            // goes (`drop`); the module cannot go while a device, and so `self`, exists.
            Source::Device(_) => unsafe { hooks::watch_devices(block) }?,
            // SAFETY: As above; the context reference lives in `self` too and is dropped after
            // the block is unsubscribed.
            Source::Iommufd(ctx) => unsafe { ctx.watch(block) }?,
        }
        // SAFETY: Only a plain field is written; nothing is moved out of the pin.
        let this = unsafe { self.get_unchecked_mut() };
        // INVARIANT: The block was just put on its source's chain.
        this.subscribed = true;
        let watch = this.watch.inner();
        if !matches!(watch.source, Source::Iommufd(_)) {
            watch.gate.kvm.lend_to(&this.file, true);
        }
        watch.gate.refresh(watch);
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
                // SAFETY: Subscribed in `start` (type invariant).
                Source::Device(_) => unsafe { hooks::unwatch_devices(block) },
                // SAFETY: As above.
                Source::Iommufd(ctx) => unsafe { ctx.unwatch(block) },
            }
            if !matches!(watch.source, Source::Iommufd(_)) {
                watch.gate.kvm.lend_to(&self.file, false);
            }
        }
        // No callback runs any more: the file stops counting.
        watch.gate.forget(watch);
    }
}

/// The KVM-VFIO device of one VM.
#[pin_data]
struct KvmVfio {
    /// The VM's coherency decision.
    gate: Arc<Gate>,
    /// The added files.
    #[pin]
    files: Mutex<KVec<Pin<KBox<Added>>>>,
}

impl KvmVfio {
    /// The device of the VM `kvm`, with no file yet.
    fn new(kvm: Kvm) -> Result<Pin<KBox<Self>>> {
        let gate = Arc::pin_init(
            pin_init!(Gate {
                kvm,
                state <- new_mutex!(GateState {
                    contributing: 0,
                    registered: false,
                    force_disabled: false,
                    register_edges: 0,
                    unregister_edges: 0,
                }),
            }),
            GFP_KERNEL,
        )?;
        KBox::pin_init(
            pin_init!(Self {
                gate,
                files <- new_mutex!(KVec::new(), "KvmVfio::files"),
            }),
            GFP_KERNEL,
        )
    }

    /// Finds `file` among the added files.
    fn position(files: &[Pin<KBox<Added>>], file: &File) -> Option<usize> {
        files.iter().position(|a| core::ptr::eq(&*a.file, file))
    }

    /// `KVM_DEV_VFIO_FILE_ADD`.
    fn add(&self, fd: i32) -> Result {
        let file = fget(fd)?;
        let source = if hooks::vfio_file_valid(&file) {
            match hooks::vfio_file_kind(&file) {
                VfioFile::Device(dev) => Source::Device(dev),
                VfioFile::Untranslated => Source::Fixed {
                    noncoherent: true,
                    kind: uapi::KVM_VFIO_FILE_KIND_DEVICE,
                },
                VfioFile::Group(coherent) => Source::Fixed {
                    noncoherent: !coherent,
                    kind: uapi::KVM_VFIO_FILE_KIND_GROUP,
                },
            }
        } else {
            Source::Iommufd(IommufdCtx::of_file(&file).ok_or(EINVAL)?)
        };
        let mut files = self.files.lock();
        if Self::position(&files, &file).is_some() {
            return Err(EEXIST);
        }
        files.reserve(1, GFP_KERNEL)?;
        let watch = Watch {
            gate: self.gate.clone(),
            source,
            contributes: Atomic::new(false),
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
        let files = self.files.lock();
        let state = self.gate.state.lock();
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
        attr.0.contributes = u32::from(watch.contributes.load(Relaxed));
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
        let mut state = self.gate.state.lock();
        state.force_disabled = on;
        self.gate.apply(&mut state);
        Ok(())
    }

    /// `KVM_SET_DEVICE_ATTR`.
    fn set_attr(&self, group: u32, attr: u64, addr: u64) -> Result {
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
    fn get_attr(&self, group: u32, attr: u64, addr: u64) -> Result {
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
                let on = self.gate.state.lock().force_disabled;
                write_user(addr, &u32::from(on))
            }
            _ => Err(ENXIO),
        }
    }
}

/// `KVM_HAS_DEVICE_ATTR`: 0 for the attributes the device serves, `ENXIO` for the rest.
fn has_attr(group: u32, attr: u64) -> Result {
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
    let fd = u32::try_from(fd).map_err(|_| EBADF)?;
    let file = LocalFile::fget(fd).map_err(|_| EBADF)?;
    // SAFETY: We are in a KVM device ioctl, which does not use the file position: no
    // `fdget_pos` is active on this thread.
    Ok(unsafe { LocalFile::assume_no_fdget_pos(file) })
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

// SAFETY: A struct of integers without padding: every byte is initialised.
unsafe impl AsBytes for StateAttr {}

// SAFETY: As above.
unsafe impl AsBytes for FileAttr {}

// SAFETY: A struct of integers: any bytes make a valid value.
unsafe impl FromBytes for FileAttr {}

// The entry points of `glue.c`.

/// Creates the device of the VM `kvm` and stores it in `*out`.
///
/// # Safety
///
/// `kvm` is the VM of the device being created (KVM holds its lock), and `out` is valid for
/// writes.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_create(kvm: *mut c_void, out: *mut *mut c_void) -> c_int {
    let Some(kvm) = core::ptr::NonNull::new(kvm) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `kvm` is the device's VM; the gate, which owns this value, goes when the device is
    // released (its last user, the device state, is dropped in `kvm_vfio_rs_release`, and every
    // callback holding it is unsubscribed before).
    let kvm = unsafe { Kvm::from_raw(kvm) };
    let dev = KvmVfio::new(kvm);
    match dev {
        Ok(dev) => {
            // SAFETY: `out` is valid for writes. The pointer goes back to
            // `Pin::new_unchecked(KBox::from_raw(..))` in `kvm_vfio_rs_release`, so the device
            // is never moved.
            unsafe { *out = KBox::into_raw(Pin::into_inner_unchecked(dev)).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Releases the device `state` (its file was closed; KVM holds the VM's lock).
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and is not used again.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_release(state: *mut c_void) {
    // SAFETY: As the caller guarantees; it was pinned when made.
    let dev = unsafe { Pin::new_unchecked(KBox::from_raw(state.cast::<KvmVfio>())) };
    // Each file is dropped in turn: unsubscribed, the VM handed back, the gate updated; the
    // last one leaves KVM told "coherent" if it was told otherwise.
    let files = core::mem::take(&mut *dev.files.lock());
    drop(files);
    drop(dev);
}

/// The device of `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
unsafe fn device<'a>(state: *mut c_void) -> &'a KvmVfio {
    // SAFETY: As the caller guarantees.
    unsafe { &*state.cast::<KvmVfio>() }
}

/// `KVM_SET_DEVICE_ATTR` on the device `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_set_attr(
    state: *mut c_void,
    group: u32,
    attr: u64,
    addr: u64,
) -> c_int {
    // SAFETY: As the caller guarantees.
    match unsafe { device(state) }.set_attr(group, attr, addr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `KVM_GET_DEVICE_ATTR` on the device `state`.
///
/// # Safety
///
/// `state` came from [`kvm_vfio_rs_create`] and was not released.
#[no_mangle]
unsafe extern "C" fn kvm_vfio_rs_get_attr(
    state: *mut c_void,
    group: u32,
    attr: u64,
    addr: u64,
) -> c_int {
    // SAFETY: As the caller guarantees.
    match unsafe { device(state) }.get_attr(group, attr, addr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `KVM_HAS_DEVICE_ATTR`.
#[no_mangle]
extern "C" fn kvm_vfio_rs_has_attr(group: u32, attr: u64) -> c_int {
    match has_attr(group, attr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
