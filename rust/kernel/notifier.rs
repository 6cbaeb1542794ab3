// SPDX-License-Identifier: GPL-2.0

//! Blocking notifier chains: lists of callbacks a subsystem calls, in process context, when
//! something it owns changes.
//!
//! A [`BlockingNotifierHead`] is the publisher's end. Subscribers are `struct notifier_block`s:
//! C code passes its own ([`NotifierBlock`]); Rust code embeds a [`Subscriber`], which forwards
//! each event to a [`NotifierCallback`].
//!
//! C header: [`include/linux/notifier.h`](srctree/include/linux/notifier.h)
//!
//! # Examples
//!
//! ```
//! use kernel::notifier::{BlockingNotifierHead, NotifierCallback, Subscriber};
//! use kernel::sync::atomic::{Atomic, Relaxed};
//!
//! struct Count(Atomic<u64>);
//!
//! impl NotifierCallback for Count {
//!     fn notify(&self, event: u64) {
//!         self.0.store(event, Relaxed);
//!     }
//! }
//!
//! let head = KBox::pin_init(BlockingNotifierHead::new(), GFP_KERNEL)?;
//! let sub = KBox::pin_init(Subscriber::new(Count(Atomic::new(0))), GFP_KERNEL)?;
//! // SAFETY: `sub` is unregistered below, before it is dropped.
//! unsafe { head.register(sub.as_block()) }?;
//! head.call_chain(7);
//! assert_eq!(sub.inner().0.load(Relaxed), 7);
//! // SAFETY: `sub` is alive, and it is the block registered above.
//! unsafe { head.unregister(sub.as_block()) }?;
//! head.call_chain(8);
//! assert_eq!(sub.inner().0.load(Relaxed), 7);
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings,
    error::to_result,
    prelude::*,
    types::Opaque, //
};

/// A `struct notifier_block`, as C subscribers pass it.
#[repr(transparent)]
pub struct NotifierBlock(Opaque<bindings::notifier_block>);

/// The publisher's end of a blocking notifier chain.
///
/// # Invariants
///
/// `inner` is an initialised `struct blocking_notifier_head`.
#[pin_data]
pub struct BlockingNotifierHead {
    /// The chain.
    #[pin]
    inner: Opaque<bindings::blocking_notifier_head>,
}

// SAFETY: A `struct blocking_notifier_head` is not tied to the thread that initialised it: it
// holds only a list of blocks and the rw-semaphore that guards it, and may be torn down anywhere.
unsafe impl Send for BlockingNotifierHead {}

// SAFETY: Every method takes `&self` and goes through the C chain functions, which register,
// unregister and call the blocks under the head's rw-semaphore, so concurrent calls are safe.
unsafe impl Sync for BlockingNotifierHead {}

impl BlockingNotifierHead {
    /// An empty chain.
    pub fn new() -> impl PinInit<Self> {
        // INVARIANT: `BLOCKING_INIT_NOTIFIER_HEAD` initialises the head.
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned.
            inner <- Opaque::ffi_init(|slot| unsafe { bindings::BLOCKING_INIT_NOTIFIER_HEAD(slot) }),
        })
    }

    /// Adds `nb` to the chain. `EEXIST` if it is there already.
    ///
    /// # Safety
    ///
    /// `nb` points to a valid notifier block that stays valid, and in place, until it is
    /// removed with [`Self::unregister`], which must happen before the chain is dropped.
    pub unsafe fn register(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: The head is initialised (type invariant), and the caller guarantees that `nb`
        // stays valid and in place until it is unregistered, before the head goes.
        to_result(unsafe {
            bindings::blocking_notifier_chain_register(self.inner.get(), nb.cast())
        })
    }

    /// Removes `nb` from the chain; once this returns, its callback no longer runs. `ENOENT` if
    /// it is not there.
    ///
    /// # Safety
    ///
    /// `nb` points to a valid notifier block.
    pub unsafe fn unregister(&self, nb: *mut NotifierBlock) -> Result {
        // SAFETY: The head is initialised (type invariant) and the caller guarantees that `nb`
        // is a valid block; the C function only compares it with those on the chain.
        to_result(unsafe {
            bindings::blocking_notifier_chain_unregister(self.inner.get(), nb.cast())
        })
    }

    /// Calls every block on the chain with `event` (and a NULL argument), in priority order.
    /// Sleeps.
    pub fn call_chain(&self, event: u64) {
        // SAFETY: The head is initialised (type invariant). The blocks on it are valid until
        // unregistered (a condition of `register`), and unregistering waits for this call.
        unsafe {
            bindings::blocking_notifier_call_chain(
                self.inner.get(),
                event as c_ulong,
                core::ptr::null_mut(),
            )
        };
    }
}

/// What a Rust [`Subscriber`] does with an event.
pub trait NotifierCallback: Sync {
    /// Called for every event published on a chain the subscriber is on, in process context.
    fn notify(&self, event: u64);
}

/// A notifier block that forwards events to `T`.
///
/// # Invariants
///
/// `nb.notifier_call` is [`Subscriber::<T>::trampoline`].
#[pin_data]
pub struct Subscriber<T: NotifierCallback> {
    /// The block the chain links.
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    /// The callback.
    inner: T,
}

// SAFETY: Moving a subscriber to another thread moves its `T`, which is `Send`, and a block that
// is not tied to any thread: only the chain it is on writes it, under the chain's lock.
unsafe impl<T: NotifierCallback + Send> Send for Subscriber<T> {}

// SAFETY: Through `&Subscriber<T>` one gets `&T` (`inner`, or the chain's calls to `notify` from
// whichever thread publishes), which `T: Sync` allows on many threads at once, and a raw pointer
// to the block, which only the chain dereferences, under its lock.
unsafe impl<T: NotifierCallback> Sync for Subscriber<T> {}

impl<T: NotifierCallback> Subscriber<T> {
    /// A subscriber forwarding to `inner`, on no chain yet.
    pub fn new(inner: T) -> impl PinInit<Self> {
        // INVARIANT: The block's callback is the trampoline.
        pin_init!(Self {
            nb <- Opaque::ffi_init(|slot: *mut bindings::notifier_block| {
                // SAFETY: `slot` is valid for writes; a zeroed block with a callback is a valid
                // block.
                unsafe {
                    slot.write(core::mem::zeroed());
                    (*slot).notifier_call = Some(Self::trampoline);
                }
            }),
            inner,
        })
    }

    /// The callback.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The block to pass to [`BlockingNotifierHead::register`].
    pub fn as_block(&self) -> *mut NotifierBlock {
        self.nb.get().cast()
    }

    /// The function the chain calls.
    ///
    /// # Safety
    ///
    /// `nb` is the block of a live `Subscriber<T>`.
    unsafe extern "C" fn trampoline(
        nb: *mut bindings::notifier_block,
        event: c_ulong,
        _data: *mut c_void,
    ) -> c_int {
        // SAFETY: `nb` is the `nb` field of a `Subscriber<T>` (the block only ever carries this
        // callback inside one), which is alive while registered.
        let this = unsafe { &*crate::container_of!(Opaque::cast_from(nb).cast_mut(), Self, nb) };
        this.inner.notify(event as u64);
        bindings::NOTIFY_OK as c_int
    }
}
