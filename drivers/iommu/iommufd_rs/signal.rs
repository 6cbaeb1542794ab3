// SPDX-License-Identifier: GPL-2.0

//! The coherency signal by device, for subscribers outside the module.
//!
//! The KVM-VFIO device learns of a VFIO device file before the device is bound to any context
//! (QEMU adds the file to KVM first), so it cannot subscribe to a bound device. It names the
//! `struct device` instead: [`DeviceSignal`] keeps, for every bound device of any context,
//! whether it has non-coherent DMA present now, and one chain that is called after any of them
//! may have changed. Subscribers then ask about the devices they care for.

use kernel::{
    device::Device,
    new_mutex,
    notifier::{
        BlockingNotifierHead,
        NotifierBlock, //
    },
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Mutex,
    },
};

/// The bound devices and whether each has non-coherent DMA present, and who wants to know.
#[pin_data]
pub(crate) struct DeviceSignal {
    /// Called with the new state of a device (1 or 0) after it was published; the argument is
    /// NULL, so subscribers ask [`DeviceSignal::noncoherent`] about their devices.
    #[pin]
    chain: BlockingNotifierHead,
    /// One entry per device object of any context.
    #[pin]
    devices: Mutex<KVec<Entry>>,
}

/// A device object in [`DeviceSignal`].
struct Entry {
    /// The address of its `struct device` (see [`key`]).
    dev: usize,
    /// The address of the object, which tells two bindings of one device apart while the old
    /// object is on its way out.
    object: usize,
    /// Whether it has non-coherent DMA present, as last published.
    noncoherent: bool,
}

/// The module's [`DeviceSignal`] while the module is loaded.
static SIGNAL: Atomic<*const DeviceSignal> = Atomic::new(core::ptr::null());

/// The key of `dev` in [`DeviceSignal`]: the address of its `struct device` (a [`Device`] is a
/// transparent wrapper of one), which is what other modules name it by.
pub(crate) fn key(dev: &Device) -> usize {
    core::ptr::from_ref(dev) as usize
}

impl DeviceSignal {
    /// No device, no subscriber.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            chain <- BlockingNotifierHead::new(),
            devices <- new_mutex!(KVec::new(), "DeviceSignal::devices"),
        })
    }

    /// Makes `self` the module's signal until [`DeviceSignal::unpublish`].
    pub(crate) fn publish(self: Pin<&Self>) {
        SIGNAL.store(core::ptr::from_ref(self.get_ref()), Release);
    }

    /// Stops handing out the module's signal (module exit).
    pub(crate) fn unpublish() {
        SIGNAL.store(core::ptr::null(), Release);
    }

    /// The module's signal.
    pub(crate) fn get() -> Option<&'static Self> {
        let s = SIGNAL.load(Acquire);
        // SAFETY: A non-NULL pointer is the signal inside the module state, set after it was
        // initialised and cleared before it is dropped; callers run with the module loaded (our
        // own code, or other modules through symbols of this one).
        unsafe { s.as_ref() }
    }

    /// Adds the device object at `object`, for the device at `dev`, without non-coherent DMA.
    pub(crate) fn add(&self, dev: usize, object: usize) -> Result {
        let entry = Entry {
            dev,
            object,
            noncoherent: false,
        };
        self.devices.lock().push(entry, GFP_KERNEL)?;
        Ok(())
    }

    /// Records that the device object at `object` has (`now`) or no longer has non-coherent DMA
    /// present. Runs before [`DeviceSignal::notify`], so that subscribers find the new state.
    pub(crate) fn set(&self, object: usize, now: bool) {
        if let Some(e) = self.devices.lock().iter_mut().find(|e| e.object == object) {
            e.noncoherent = now;
        }
    }

    /// Forgets the device object at `object`.
    pub(crate) fn remove(&self, object: usize) {
        self.devices.lock().retain(|e| e.object != object);
    }

    /// Tells the subscribers that a device's state was published as `now`.
    pub(crate) fn notify(&self, now: bool) {
        self.chain.call_chain(u64::from(now));
    }

    /// Whether the device at address `dev` has non-coherent DMA present now.
    pub(crate) fn noncoherent(&self, dev: usize) -> bool {
        self.devices
            .lock()
            .iter()
            .any(|e| e.dev == dev && e.noncoherent)
    }

    /// Adds `nb` to the subscribers.
    ///
    /// # Safety
    ///
    /// As for [`BlockingNotifierHead::register`].
    pub(crate) unsafe fn register(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: The caller keeps `nb` valid and in place until it unregisters it, which is
        // what the chain needs.
        unsafe { self.chain.register(nb) }
    }

    /// Removes `nb` from the subscribers.
    ///
    /// # Safety
    ///
    /// `nb` is a valid notifier block.
    pub(crate) unsafe fn unregister(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: `nb` is a valid notifier block (the caller's contract).
        unsafe { self.chain.unregister(nb) }
    }
}
