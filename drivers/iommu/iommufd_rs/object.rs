// SPDX-License-Identifier: GPL-2.0

//! The object table of a context: ids, creation, typed lookup and destruction.
//!
//! Objects are named by ids from 1 to `i32::MAX`, unique among the live objects of one open file
//! and reused after destruction. Creation is two-phase: [`ObjectTable::reserve`] takes an id that
//! lookups cannot see yet, the creator does all its fallible work, and [`Slot::publish`] makes
//! the object visible; dropping the [`Slot`] instead gives the id back, so a failed creation
//! leaves nothing behind.
//!
//! Every live object has a `users` count: one for the table, plus one for each [`ObjRef`] (an
//! ioctl using the object, or later another object depending on it). Lookups take the count
//! under the table's lock, so destruction, which also holds that lock, can tell reliably that
//! nobody but the table uses an object and refuse with `EBUSY` otherwise.
//!
//! Destruction removes the object from the table, so no new lookup finds it, and drops the
//! table's reference. Unlike the C driver, it does not wait for a racing ioctl that had already
//! looked the object up (and so held a count) to drop its reference: if one still holds it, that
//! ioctl frees the object when it finishes. Memory safety does not depend on it (the object is
//! reference counted); only the moment its resources are released can move by that much.
//!
//! Lock order: the table's lock (the XArray spinlock) is innermost. Nothing sleeps under it and
//! no object is dropped under it.

use kernel::{
    prelude::*,
    sync::{
        atomic::Relaxed,
        Arc,
        Refcount, //
    },
    xarray::{
        AllocKind,
        Reservation,
        XArray, //
    },
};

use crate::{
    device::IDevice,
    hwpt::HwptPaging,
    ioas::Ioas, //
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

/// A table slot: an object and the count of its users.
pub(crate) struct Entry {
    /// One for the table plus one per [`ObjRef`].
    users: Refcount,
    /// The object itself.
    obj: Object,
}

/// An object type that can be looked up by id.
pub(crate) trait ObjectKind: Sized {
    /// Returns the object if `obj` is of this type.
    fn downcast(obj: &Object) -> Option<&Arc<Self>>;
    /// Wraps the object for the table.
    fn wrap(obj: Arc<Self>) -> Object;
}

/// Implements [`ObjectKind`] for the type held by one variant of [`Object`].
macro_rules! object_kind {
    ($ty:ty, $variant:ident) => {
        impl ObjectKind for $ty {
            fn downcast(obj: &Object) -> Option<&Arc<Self>> {
                match obj {
                    Object::$variant(o) => Some(o),
                    _ => None,
                }
            }

            fn wrap(obj: Arc<Self>) -> Object {
                Object::$variant(obj)
            }
        }
    };
}

object_kind!(Ioas, Ioas);
object_kind!(HwptPaging, Hwpt);
object_kind!(IDevice, Device);

/// A counted use of a live object of type `T`, obtained from [`ObjectTable::get`].
///
/// While it exists the object cannot be destroyed (destruction fails with `EBUSY`).
pub(crate) struct ObjRef<T: ObjectKind> {
    /// Keeps the table slot, and so the user count, alive.
    entry: Arc<Entry>,
    /// The object.
    obj: Arc<T>,
}

impl<T: ObjectKind> core::ops::Deref for ObjRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.obj
    }
}

impl<T: ObjectKind> Clone for ObjRef<T> {
    fn clone(&self) -> Self {
        self.entry.users.inc();
        Self {
            entry: self.entry.clone(),
            obj: self.obj.clone(),
        }
    }
}

impl<T: ObjectKind> Drop for ObjRef<T> {
    fn drop(&mut self) {
        // The table still holds its own count, so this never reaches zero.
        self.entry.users.dec();
    }
}

/// The objects of one context, by id.
#[pin_data]
pub(crate) struct ObjectTable {
    /// Live objects; reserved ids read as empty.
    #[pin]
    xa: XArray<Arc<Entry>>,
}

/// An id reserved for an object under construction; see [`ObjectTable::reserve`].
pub(crate) struct Slot<'a> {
    /// The reserved index in the table.
    res: Reservation<'a, Arc<Entry>>,
}

impl Slot<'_> {
    /// Returns the id the object will have.
    pub(crate) fn id(&self) -> u32 {
        // Ids are reserved in `1..=i32::MAX`, so this cannot truncate.
        self.res.index() as u32
    }

    /// Makes `obj` visible under this slot's id.
    pub(crate) fn publish(self, obj: Object) -> Result {
        let entry = Arc::new(
            Entry {
                users: Refcount::new(1),
                obj,
            },
            GFP_KERNEL,
        )?;
        self.res.fill(entry, GFP_KERNEL)?;
        Ok(())
    }

    /// Like [`Self::publish`], but also returns a use of the object, so that it cannot be
    /// destroyed before the caller is done with it.
    pub(crate) fn publish_held<T: ObjectKind>(self, obj: Arc<T>) -> Result<ObjRef<T>> {
        let entry = Arc::new(
            Entry {
                users: Refcount::new(2),
                obj: T::wrap(obj.clone()),
            },
            GFP_KERNEL,
        )?;
        self.res.fill(entry.clone(), GFP_KERNEL)?;
        Ok(ObjRef { entry, obj })
    }
}

impl ObjectTable {
    /// Creates an empty table.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            xa <- XArray::new(AllocKind::Alloc1),
        })
    }

    /// Reserves the lowest free id for a new object.
    pub(crate) fn reserve(&self) -> Result<Slot<'_>> {
        let res = self
            .xa
            .lock()
            .reserve_limit(1..=i32::MAX as u32, GFP_KERNEL_ACCOUNT)?;
        Ok(Slot { res })
    }

    /// Runs `f` if the table holds no object and no reserved id, under the table's lock so that
    /// none can appear meanwhile; `EBUSY` otherwise. `f` must not sleep.
    pub(crate) fn if_empty<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let guard = self.xa.lock();
        if !guard.is_empty() {
            return Err(EBUSY);
        }
        Ok(f())
    }

    /// Looks up the object `id` of type `T`; `ENOENT` if there is none.
    /// Whether object `id` exists (of any type).
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.xa.lock().get(id as usize).is_some()
    }

    pub(crate) fn get<T: ObjectKind>(&self, id: u32) -> Result<ObjRef<T>> {
        let guard = self.xa.lock();
        let entry = guard.get(id as usize).ok_or(ENOENT)?;
        let obj = T::downcast(&entry.obj).ok_or(ENOENT)?.clone();
        entry.users.inc();
        Ok(ObjRef {
            entry: entry.into(),
            obj,
        })
    }

    /// Destroys the object `id`, of any type.
    ///
    /// Fails with `ENOENT` if there is no such object and with `EBUSY` if anything but the table
    /// uses it.
    /// Removes object `id` whoever still uses it (they keep their reference). For objects
    /// whose lifetime the kernel, not userspace, controls (a device at unbind).
    pub(crate) fn remove(&self, id: u32) {
        let removed = self.xa.lock().remove(id as usize);
        drop(removed);
    }

    pub(crate) fn destroy(&self, id: u32) -> Result {
        let removed = {
            let mut guard = self.xa.lock();
            let entry = guard.get(id as usize).ok_or(ENOENT)?;
            if entry.users.as_atomic().load(Relaxed) != 1 {
                return Err(EBUSY);
            }
            guard.remove(id as usize)
        };
        // The object is dropped here, outside the spinlock.
        drop(removed);
        Ok(())
    }
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_object)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh, empty table.
    fn with_table(f: impl FnOnce(&ObjectTable) -> Result) -> Result {
        let table = KBox::pin_init(ObjectTable::new(), GFP_KERNEL)?;
        f(&table)
    }

    /// Creates an IOAS in `table` and returns its id.
    fn new_ioas(table: &ObjectTable) -> Result<u32> {
        let slot = table.reserve()?;
        let id = slot.id();
        slot.publish(Object::Ioas(Ioas::new(crate::coherency::Mode::Auto)?))?;
        Ok(id)
    }

    #[test]
    fn ids_start_at_one_and_are_reused() -> Result {
        with_table(|table| {
            assert_eq!(new_ioas(table)?, 1);
            assert_eq!(new_ioas(table)?, 2);
            table.destroy(1)?;
            assert_eq!(new_ioas(table)?, 1);
            Ok(())
        })
    }

    #[test]
    fn reserved_ids_are_invisible_until_published() -> Result {
        with_table(|table| {
            let slot = table.reserve()?;
            let id = slot.id();
            assert_eq!(table.get::<Ioas>(id).err(), Some(ENOENT));
            assert_eq!(table.destroy(id), Err(ENOENT));
            // A second reservation does not get the same id.
            let other = table.reserve()?;
            assert_eq!(other.id(), id + 1);
            slot.publish(Object::Ioas(Ioas::new(crate::coherency::Mode::Auto)?))?;
            assert!(table.get::<Ioas>(id).is_ok());
            Ok(())
        })
    }

    #[test]
    fn dropped_reservations_leave_nothing() -> Result {
        with_table(|table| {
            let id = table.reserve()?.id();
            assert_eq!(table.get::<Ioas>(id).err(), Some(ENOENT));
            // The id is free again.
            assert_eq!(new_ioas(table)?, id);
            Ok(())
        })
    }

    #[test]
    fn destroy_refuses_while_in_use() -> Result {
        with_table(|table| {
            let id = new_ioas(table)?;
            let user = table.get::<Ioas>(id)?;
            assert_eq!(table.destroy(id), Err(EBUSY));
            // Still there, still usable.
            assert!(table.get::<Ioas>(id).is_ok());
            drop(user);
            table.destroy(id)?;
            assert_eq!(table.get::<Ioas>(id).err(), Some(ENOENT));
            assert_eq!(table.destroy(id), Err(ENOENT));
            Ok(())
        })
    }

    #[test]
    fn unknown_ids() -> Result {
        with_table(|table| {
            assert_eq!(table.get::<Ioas>(0).err(), Some(ENOENT));
            assert_eq!(table.destroy(0), Err(ENOENT));
            assert_eq!(table.destroy(u32::MAX), Err(ENOENT));
            Ok(())
        })
    }
}
