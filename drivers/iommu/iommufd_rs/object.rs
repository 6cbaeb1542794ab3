// SPDX-License-Identifier: GPL-2.0

//! The object table of a context: ids, creation, typed lookup and destruction.
//!
//! Objects are named by ids from 1 to `i32::MAX`, unique among the live objects of one open file
//! and reused after destruction. Creation is two-phase: [`ObjectTable::reserve`] takes an id that
//! lookups cannot see yet, the creator does all its fallible work, and [`Slot::publish`] makes
//! the object visible; dropping the [`Slot`] instead gives the id back, so a failed creation
//! leaves nothing behind.
//!
//! Every object sits in an [`Entry`], its header: the id it was published under and a count of
//! its users, one for the table while the object is in it plus one for each [`ObjRef`] (an ioctl
//! using the object, or another object depending on it). Lookups take the count under the
//! table's lock, so destruction, which also holds that lock, can tell reliably that nobody but
//! the table uses an object and refuse with `EBUSY` otherwise.
//!
//! Ids are reused, so the kernel never destroys or finds an object by id alone once it has let
//! go of the table's lock: it names the object by its entry ([`ObjRef`]), and the table checks
//! that the id still holds that very entry before acting ([`ObjectTable::destroy_held`],
//! [`ObjectTable::get_same`]). Objects whose lifetime the kernel ends (a device at unbind) are
//! taken out of the table and then waited for: [`ObjectTable::remove_wait`] returns only once
//! every ioctl that was using the object has finished with it, as the C driver's `REMOVE_WAIT`.
//!
//! The table is generic over what it holds, `E`, an enum of the object types (the context's
//! `Object`); it knows nothing of those types. A type becomes an object kind, one that can be
//! looked up, by [`ObjectKind`] ([`object_kind!`] writes that for an enum variant).
//!
//! Lock order: the table's lock (the XArray spinlock), then an entry's `users` spinlock. Nothing
//! sleeps under either, and no object is dropped under them.

use kernel::{
    new_condvar, new_spinlock,
    prelude::*,
    sync::{
        Arc,
        CondVar,
        CondVarTimeoutResult,
        SpinLock, //
    },
    time::msecs_to_jiffies,
    xarray::{
        AllocKind,
        Reservation,
        XArray, //
    },
};

/// How long the kernel waits for ioctls to stop using an object it takes away, before it
/// reports a bug and goes on (the C driver waits as long).
const REMOVE_WAIT_MS: u32 = 60_000;

/// The header of a published object: its id, the count of its users, and the object.
///
/// # Invariants
///
/// `users` counts one for the table while the entry is in it, plus one per live [`ObjRef`] on
/// it; so it reaches zero only after the entry left the table.
#[pin_data]
pub(crate) struct Entry<E> {
    /// The id the object was published under. Never changes.
    id: u32,
    /// One for the table plus one per [`ObjRef`].
    #[pin]
    users: SpinLock<u32>,
    /// Notified when `users` reaches zero.
    #[pin]
    released: CondVar,
    /// The object itself.
    obj: E,
}

impl<E> Entry<E> {
    /// A new entry for `obj` under `id`, with `users` users.
    fn new(id: u32, users: u32, obj: E) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                id,
                users <- new_spinlock!(users, "iommufd_object::users"),
                released <- new_condvar!("iommufd_object::released"),
                obj,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Drops one use of the entry; wakes whoever waits for the last one.
    fn put(&self) {
        let mut users = self.users.lock();
        *users -= 1;
        if *users == 0 {
            self.released.notify_all();
        }
    }
}

/// An object type that can be looked up by id in an [`ObjectTable`] of `Self::Table`.
pub(crate) trait ObjectKind: Sized {
    /// What the table holds: the enum with a variant for this type.
    type Table;
    /// Returns the object if `obj` is of this type.
    fn downcast(obj: &Self::Table) -> Option<&Arc<Self>>;
    /// Wraps the object for the table.
    fn wrap(obj: Arc<Self>) -> Self::Table;
}

/// Implements [`ObjectKind`] for `$ty`, held by the variant `$table::$variant`.
macro_rules! object_kind {
    ($ty:ty, $table:ident::$variant:ident) => {
        impl $crate::object::ObjectKind for $ty {
            type Table = $table;

            fn downcast(obj: &$table) -> Option<&Arc<Self>> {
                match obj {
                    $table::$variant(o) => Some(o),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            fn wrap(obj: Arc<Self>) -> $table {
                $table::$variant(obj)
            }
        }
    };
}
pub(crate) use object_kind;

/// A counted use of a published object of type `T`, obtained from [`ObjectTable::get`].
///
/// While it exists the object cannot be destroyed by userspace (`EBUSY`), and the kernel's own
/// removal ([`ObjectTable::remove_wait`]) waits for it.
pub(crate) struct ObjRef<T: ObjectKind> {
    /// The object's header, whose user count includes this use.
    entry: Arc<Entry<T::Table>>,
    /// The object.
    obj: Arc<T>,
}

impl<T: ObjectKind> ObjRef<T> {
    /// The id the object was published under (it may have been destroyed since, and the id
    /// reused: look it up again only through [`ObjectTable::get_same`]).
    pub(crate) fn id(&self) -> u32 {
        self.entry.id
    }

    /// Whether `self` and `other` are uses of the same object.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }

    /// A key naming the object itself, for lists that must not keep it alive; compare it with
    /// [`Self::key`] or [`ObjectTable::get_same`], never dereference it. It is the object's
    /// address, unique among live objects only: a list must drop an object's key before the
    /// object is freed.
    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.obj) as usize
    }
}

impl<T: ObjectKind> core::ops::Deref for ObjRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.obj
    }
}

impl<T: ObjectKind> Clone for ObjRef<T> {
    fn clone(&self) -> Self {
        *self.entry.users.lock() += 1;
        Self {
            entry: self.entry.clone(),
            obj: self.obj.clone(),
        }
    }
}

impl<T: ObjectKind> Drop for ObjRef<T> {
    fn drop(&mut self) {
        self.entry.put();
    }
}

/// The objects of one context, by id.
#[pin_data]
pub(crate) struct ObjectTable<E: 'static> {
    /// Published objects; reserved ids read as empty.
    #[pin]
    xa: XArray<Arc<Entry<E>>>,
}

/// An id reserved for an object under construction; see [`ObjectTable::reserve`].
pub(crate) struct Slot<'a, E: 'static> {
    /// The reserved index in the table.
    res: Reservation<'a, Arc<Entry<E>>>,
}

impl<E> Slot<'_, E> {
    /// Returns the id the object will have.
    pub(crate) fn id(&self) -> u32 {
        // Ids are reserved in `1..=i32::MAX`, so this cannot truncate.
        self.res.index() as u32
    }

    /// Makes `obj` visible under this slot's id.
    pub(crate) fn publish(self, obj: E) -> Result {
        let entry = Entry::new(self.id(), 1, obj)?;
        self.res.fill(entry, GFP_KERNEL)?;
        Ok(())
    }

    /// Like [`Self::publish`], but also returns a use of the object, so that it cannot be
    /// destroyed before the caller is done with it.
    pub(crate) fn publish_held<T: ObjectKind<Table = E>>(self, obj: Arc<T>) -> Result<ObjRef<T>> {
        let entry = Entry::new(self.id(), 2, T::wrap(obj.clone()))?;
        self.res.fill(entry.clone(), GFP_KERNEL)?;
        Ok(ObjRef { entry, obj })
    }
}

impl<E> ObjectTable<E> {
    /// Creates an empty table.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            xa <- XArray::new(AllocKind::Alloc1),
        })
    }

    /// Reserves the lowest free id for a new object.
    pub(crate) fn reserve(&self) -> Result<Slot<'_, E>> {
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

    /// Whether object `id` exists (of any type).
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.xa.lock().get(id as usize).is_some()
    }

    /// Looks up the object `id` of type `T`; `ENOENT` if there is none.
    pub(crate) fn get<T: ObjectKind<Table = E>>(&self, id: u32) -> Result<ObjRef<T>> {
        let guard = self.xa.lock();
        let entry = guard.get(id as usize).ok_or(ENOENT)?;
        let obj = T::downcast(&entry.obj).ok_or(ENOENT)?.clone();
        *entry.users.lock() += 1;
        Ok(ObjRef {
            entry: entry.into(),
            obj,
        })
    }

    /// Looks up object `id` if it is still the object `key` names (see [`ObjRef::key`]): `None`
    /// if it was destroyed and its id now names another object, unless that one sits at the
    /// same address (the freed object's memory reused): callers check that what they found
    /// is what they need, not only that it is the same.
    pub(crate) fn get_same<T: ObjectKind<Table = E>>(
        &self,
        id: u32,
        key: usize,
    ) -> Option<ObjRef<T>> {
        self.get::<T>(id).ok().filter(|r| r.key() == key)
    }

    /// Destroys the object `id`, of any type, for userspace.
    ///
    /// Fails with `ENOENT` if there is no such object and with `EBUSY` if anything but the table
    /// uses it.
    pub(crate) fn destroy(&self, id: u32) -> Result {
        let removed = {
            let mut guard = self.xa.lock();
            let entry = guard.get(id as usize).ok_or(ENOENT)?;
            if *entry.users.lock() != 1 {
                return Err(EBUSY);
            }
            guard.remove(id as usize)
        };
        // The object is dropped here, outside the spinlock.
        drop(removed);
        Ok(())
    }

    /// Drops the use `obj` and destroys the object if nothing but the table uses it any more.
    /// The object is named by identity: if userspace destroyed it meanwhile and its id now
    /// names another object, that one is left alone. Returns whether it was destroyed.
    pub(crate) fn destroy_held<T: ObjectKind<Table = E>>(&self, obj: ObjRef<T>) -> bool {
        let entry = obj.entry.clone();
        drop(obj);
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(entry.id as usize) {
                Some(cur) if core::ptr::eq(&*cur, &*entry) && *cur.users.lock() == 1 => {
                    guard.remove(entry.id as usize)
                }
                _ => None,
            }
        };
        let destroyed = removed.is_some();
        // The object goes here, outside the spinlock, with the last of these references.
        drop(removed);
        drop(entry);
        destroyed
    }

    /// Takes the object `obj` is a use of out of the table, whoever uses it, and waits until
    /// every other use has ended (ioctls that looked it up finish with it). For objects whose
    /// lifetime the kernel, not userspace, ends: when it returns, the object is gone, unless a
    /// bug kept a use for longer than [`REMOVE_WAIT_MS`] (then reported).
    pub(crate) fn remove_wait<T: ObjectKind<Table = E>>(&self, obj: ObjRef<T>) {
        let entry = obj.entry.clone();
        drop(obj);
        let removed = {
            let mut guard = self.xa.lock();
            match guard.get(entry.id as usize) {
                Some(cur) if core::ptr::eq(&*cur, &*entry) => guard.remove(entry.id as usize),
                _ => None,
            }
        };
        if removed.is_some() {
            // The table's use.
            entry.put();
        }
        drop(removed);
        let mut users = entry.users.lock();
        while *users != 0 {
            let timeout = msecs_to_jiffies(REMOVE_WAIT_MS);
            if let CondVarTimeoutResult::Timeout = entry.released.wait_timeout(&mut users, timeout)
            {
                pr_err!(
                    "iommufd: object {} still has {} users after {} ms\n",
                    entry.id,
                    *users,
                    REMOVE_WAIT_MS
                );
                kernel::warn_on!(true);
                break;
            }
        }
        drop(users);
        // The object goes with this reference, unless the bug above keeps it.
        drop(entry);
    }
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_object)]
mod tests {
    use super::*;

    /// An object for the tests.
    struct Thing;

    /// Another type, so that lookups of the wrong type can be tried.
    struct Other;

    /// What the test tables hold.
    enum TestObject {
        Thing(Arc<Thing>),
        Other(Arc<Other>),
    }

    object_kind!(Thing, TestObject::Thing);
    object_kind!(Other, TestObject::Other);

    type Table = ObjectTable<TestObject>;

    /// A new thing.
    fn thing() -> Result<Arc<Thing>> {
        Ok(Arc::new(Thing, GFP_KERNEL)?)
    }

    /// Runs `f` on a fresh, empty table.
    fn with_table(f: impl FnOnce(&Table) -> Result) -> Result {
        let table = KBox::pin_init(Table::new(), GFP_KERNEL)?;
        f(&table)
    }

    /// Creates a thing in `table` and returns its id.
    fn new_thing(table: &Table) -> Result<u32> {
        let slot = table.reserve()?;
        let id = slot.id();
        slot.publish(TestObject::Thing(thing()?))?;
        Ok(id)
    }

    #[test]
    fn ids_start_at_one_and_are_reused() -> Result {
        with_table(|table| {
            assert_eq!(new_thing(table)?, 1);
            assert_eq!(new_thing(table)?, 2);
            table.destroy(1)?;
            assert_eq!(new_thing(table)?, 1);
            Ok(())
        })
    }

    #[test]
    fn reserved_ids_are_invisible_until_published() -> Result {
        with_table(|table| {
            let slot = table.reserve()?;
            let id = slot.id();
            assert_eq!(table.get::<Thing>(id).err(), Some(ENOENT));
            assert_eq!(table.destroy(id), Err(ENOENT));
            // A second reservation does not get the same id.
            let other = table.reserve()?;
            assert_eq!(other.id(), id + 1);
            slot.publish(TestObject::Thing(thing()?))?;
            assert!(table.get::<Thing>(id).is_ok());
            Ok(())
        })
    }

    #[test]
    fn dropped_reservations_leave_nothing() -> Result {
        with_table(|table| {
            let id = table.reserve()?.id();
            assert_eq!(table.get::<Thing>(id).err(), Some(ENOENT));
            // The id is free again.
            assert_eq!(new_thing(table)?, id);
            Ok(())
        })
    }

    #[test]
    fn destroy_refuses_while_in_use() -> Result {
        with_table(|table| {
            let id = new_thing(table)?;
            let user = table.get::<Thing>(id)?;
            assert_eq!(table.destroy(id), Err(EBUSY));
            // Still there, still usable.
            assert!(table.get::<Thing>(id).is_ok());
            drop(user);
            table.destroy(id)?;
            assert_eq!(table.get::<Thing>(id).err(), Some(ENOENT));
            assert_eq!(table.destroy(id), Err(ENOENT));
            Ok(())
        })
    }

    #[test]
    fn destroy_held_names_the_object_not_the_id() -> Result {
        with_table(|table| {
            let id = new_thing(table)?;
            let old = table.get::<Thing>(id)?;
            assert_eq!(old.id(), id);
            // Userspace cannot destroy it while it is used...
            assert_eq!(table.destroy(id), Err(EBUSY));
            // ...and the kernel destroys it only when nothing else uses it.
            let other = old.clone();
            assert!(!table.destroy_held(other));
            assert!(table.get::<Thing>(id).is_ok());
            // Gone, and the id reused by a new object: a late destroy of the old one must
            // leave the new one alone, and the key of another live object must not find it.
            drop(old);
            table.destroy(id)?;
            assert_eq!(new_thing(table)?, id);
            let other_id = new_thing(table)?;
            let other = table.get::<Thing>(other_id)?;
            assert!(table.get_same::<Thing>(id, other.key()).is_none());
            drop(other);
            let new = table.get::<Thing>(id)?;
            let stale = ObjRef {
                entry: Entry::new(id, 1, TestObject::Thing(thing()?))?,
                obj: thing()?,
            };
            assert!(!table.destroy_held(stale));
            assert!(table.get_same::<Thing>(id, new.key()).is_some());
            assert!(table.destroy_held(new));
            assert_eq!(table.get::<Thing>(id).err(), Some(ENOENT));
            Ok(())
        })
    }

    #[test]
    fn remove_wait_takes_it_away_while_held() -> Result {
        with_table(|table| {
            let id = new_thing(table)?;
            let held = table.get::<Thing>(id)?;
            // No other user: returns at once, and the object is gone even though userspace
            // could not have destroyed it.
            table.remove_wait(held);
            assert_eq!(table.get::<Thing>(id).err(), Some(ENOENT));
            assert_eq!(table.destroy(id), Err(ENOENT));
            Ok(())
        })
    }

    #[test]
    fn lookups_check_the_type() -> Result {
        with_table(|table| {
            let id = new_thing(table)?;
            assert_eq!(table.get::<Other>(id).err(), Some(ENOENT));
            assert!(table.contains(id));
            assert!(table.get::<Thing>(id).is_ok());
            let slot = table.reserve()?;
            let other = slot.id();
            slot.publish(TestObject::Other(Arc::new(Other, GFP_KERNEL)?))?;
            assert_eq!(table.get::<Thing>(other).err(), Some(ENOENT));
            assert!(table.get::<Other>(other).is_ok());
            Ok(())
        })
    }

    #[test]
    fn unknown_ids() -> Result {
        with_table(|table| {
            assert_eq!(table.get::<Thing>(0).err(), Some(ENOENT));
            assert_eq!(table.destroy(0), Err(ENOENT));
            assert_eq!(table.destroy(u32::MAX), Err(ENOENT));
            Ok(())
        })
    }
}
