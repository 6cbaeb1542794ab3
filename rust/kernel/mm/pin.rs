// SPDX-License-Identifier: GPL-2.0

//! Long-term pins on user memory, and what they cost their owner.
//!
//! A device that reaches user memory through an IOMMU needs every page behind a mapping to stay
//! where it is for as long as the mapping exists, whatever the process does to its address space
//! meanwhile. [`PinnedPages`] holds such pins (`FOLL_PIN | FOLL_LONGTERM`, so the pages are first
//! migrated out of movable zones) and drops them when it goes away. Pinned memory cannot be
//! reclaimed, so it is charged to somebody's `RLIMIT_MEMLOCK`: [`PinCharge`] does that the way
//! the kernel's other long-term pinners (io_uring, VFIO, iommufd) do.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/sched/user.h`](srctree/include/linux/sched/user.h).

use crate::{
    alloc::KVVec,
    bindings,
    capability::{
        capable,
        Capability, //
    },
    fs::File,
    io::PhysAddr,
    mm::{
        Mm,
        MmWithUser, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        }, //
    },
    task::Task, //
};
use core::ptr::NonNull;

/// How many pages one call into the pinning code asks for: large enough to amortise the page
/// table walk, small enough to stay responsive to signals between batches.
const PIN_BATCH: usize = 512;

/// The integer inside an `atomic_long_t`.
#[cfg(CONFIG_64BIT)]
type LongCounter = i64;
/// The integer inside an `atomic_long_t`.
#[cfg(not(CONFIG_64BIT))]
type LongCounter = i32;

/// Long-term pins on consecutive pages of a user address space or of a memfd, dropped with the
/// object.
///
/// # Invariants
///
/// If `folios` is empty, every element of `pages` is a page this object pinned with
/// `FOLL_PIN | FOLL_LONGTERM` and has not unpinned yet; when `writable` is set, it was pinned
/// with `FOLL_WRITE` too. Otherwise the object pinned every element of `folios` (with
/// `memfd_pin_folios`) and has not unpinned it yet, and `pages` are pages of those folios.
pub struct PinnedPages {
    /// The pinned pages, in address order.
    pages: KVVec<*mut bindings::page>,
    /// For memory of a memfd: the pinned folios the pages belong to.
    folios: KVVec<*mut bindings::folio>,
    /// Whether the pages were pinned for writing (and so get marked dirty when unpinned).
    writable: bool,
}

// SAFETY: A pin is not tied to the task that took it; the pages can be unpinned from any thread.
unsafe impl Send for PinnedPages {}

// SAFETY: Shared references only read the page pointers.
unsafe impl Sync for PinnedPages {}

impl PinnedPages {
    /// An empty set of pins; [`Self::pin`] adds to it. With `writable`, pages are pinned for
    /// writing, which fails on read-only memory.
    pub fn new(writable: bool) -> Self {
        // INVARIANT: There are no pages.
        Self {
            pages: KVVec::new(),
            folios: KVVec::new(),
            writable,
        }
    }

    /// Whether [`Self::pin_file`] can pin `file`'s pages: it is memory (shmem, which memfds
    /// are, or hugetlbfs), not a file whose pages belong to a device or live on disk.
    pub fn file_is_memory(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call; both only read its
        // mapping and operations.
        unsafe { bindings::shmem_file(file.as_ptr()) || bindings::is_file_hugepages(file.as_ptr()) }
    }

    /// Whether `file` is a dma-buf: memory an exporting driver lends out, which is not pinned
    /// but attached to.
    pub fn file_is_dma_buf(file: &File) -> bool {
        /// The magic number of the pseudo file system dma-buf files live on
        /// (`include/uapi/linux/magic.h`).
        const DMA_BUF_MAGIC: c_ulong = 0x444d_4142;
        // SAFETY: `file` is a valid file for the duration of the call, so its inode and that
        // inode's super block are valid too (an open file pins both); the magic number of a
        // super block never changes.
        unsafe { (*(*(*file.as_ptr()).f_inode).i_sb).s_magic == DMA_BUF_MAGIC }
    }

    /// Pins the `npages` pages of the memfd `file` from the page-aligned offset `start`,
    /// allocating the ones it does not have yet.
    ///
    /// `EINVAL` if `file` is not a memfd (shmem or hugetlbfs) or the range is bad, `ENOMEM`.
    pub fn pin_file(file: &File, start: u64, npages: usize) -> Result<Self> {
        if !Self::file_is_memory(file) {
            return Err(EINVAL);
        }
        let len = npages
            .checked_mul(crate::page::PAGE_SIZE)
            .filter(|&len| len > 0)
            .ok_or(EINVAL)?;
        let end = start.checked_add(len as u64 - 1).ok_or(EINVAL)?;
        let max = u32::try_from(npages).map_err(|_| EINVAL)?;
        let mut this = Self::new(true);
        // Sized by the caller's request: a size the allocator cannot give is ENOMEM, never a
        // warning (userspace chooses it).
        this.folios
            .reserve(npages, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
        this.pages
            .reserve(npages, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
        let mut offset: c_ulong = 0;
        // SAFETY: `file` is a valid file; `folios` has room for `max` pointers; the offsets fit
        // `loff_t` (checked by the callee, which fails on anything beyond the file's limits).
        let got = unsafe {
            bindings::memfd_pin_folios(
                file.as_ptr(),
                start as bindings::loff_t,
                end as bindings::loff_t,
                this.folios.spare_capacity_mut().as_mut_ptr().cast(),
                max,
                &mut offset,
            )
        };
        if got < 0 {
            return Err(Error::from_errno(got as i32));
        }
        // SAFETY: The call initialised `got <= max` pointers to folios it pinned.
        // INVARIANT: From here on `folios` holds pins, which drop releases.
        unsafe { this.folios.inc_len((got as usize).min(npages)) };
        let mut skip = offset as usize / crate::page::PAGE_SIZE;
        for &folio in this.folios.iter() {
            // SAFETY: `folio` is pinned, so valid.
            let nr = unsafe { bindings::folio_nr_pages(folio) } as usize;
            for i in skip..nr {
                if this.pages.len() == npages {
                    break;
                }
                // SAFETY: `i` is below the folio's number of pages.
                let page = unsafe { bindings::folio_page(folio, i as c_ulong) };
                // Room for `npages` pages was reserved above.
                this.pages.push(page, GFP_KERNEL_ACCOUNT)?;
            }
            skip = 0;
        }
        if this.pages.len() != npages {
            return Err(EFAULT);
        }
        Ok(this)
    }

    /// The number of pinned pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The physical address of the `index`-th pinned page, or `None` past the end.
    pub fn phys(&self, index: usize) -> Option<PhysAddr> {
        let page = *self.pages.get(index)?;
        // SAFETY: By the type invariant `page` is pinned, so it is a valid page.
        Some(unsafe { bindings::page_to_phys(page) })
    }

    /// Pins the `npages` pages of `mm` from the page-aligned address `start` and appends them.
    ///
    /// Either all of them are pinned or none is: `EFAULT` if part of the range is not mapped (or
    /// is read-only while pinning for writing), `ENOMEM` if memory runs out, `EINTR` if a fatal
    /// signal arrives. Uses the lockless fast path when `mm` is the caller's own.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use kernel::mm::pin::PinnedPages;
    /// use kernel::page::PAGE_SIZE;
    ///
    /// fn pin_buffer(uptr: usize, npages: usize) -> Result<PinnedPages> {
    ///     let task = kernel::current!();
    ///     let mm = task.mm().ok_or(EINVAL)?;
    ///     let mut pins = PinnedPages::new(true);
    ///     pins.pin(mm, uptr & !(PAGE_SIZE - 1), npages)?;
    ///     assert_eq!(pins.len(), npages);
    ///     Ok(pins)
    /// }
    /// ```
    pub fn pin(&mut self, mm: &MmWithUser, start: usize, npages: usize) -> Result {
        if !self.folios.is_empty() {
            return Err(EINVAL);
        }
        let old_len = self.pages.len();
        // As in `pin_file`: ENOMEM, never a warning, for a size the allocator cannot give.
        self.pages
            .reserve(npages, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
        let mut flags = bindings::FOLL_LONGTERM;
        if self.writable {
            flags |= bindings::FOLL_WRITE;
        }
        let own_mm = crate::current!()
            .mm()
            .is_some_and(|cur| core::ptr::eq(cur.as_raw(), mm.as_raw()));
        let mut done = 0;
        while done < npages {
            let want = (npages - done).min(PIN_BATCH);
            let Some(addr) = done
                .checked_mul(crate::page::PAGE_SIZE)
                .and_then(|off| start.checked_add(off))
            else {
                self.pages.truncate_pins(old_len, self.writable);
                return Err(EFAULT);
            };
            let dst = self.pages.spare_capacity_mut().as_mut_ptr().cast();
            let got = if own_mm {
                // SAFETY: `dst` has room for `want` pointers (reserved above), and
                // `pin_user_pages_fast` works on the caller's own address space, which `mm` is.
                // `want` is at most `PIN_BATCH`, so it fits an `int`.
                unsafe { bindings::pin_user_pages_fast(addr, want as i32, flags, dst) as c_long }
            } else {
                // SAFETY: `mm` has a user (`MmWithUser`), so its page tables exist; the read lock
                // is held across the call as `pin_user_pages_remote` with no `locked` requires,
                // and `dst` has room for `want` pointers.
                unsafe {
                    bindings::mmap_read_lock(mm.as_raw());
                    let got = bindings::pin_user_pages_remote(
                        mm.as_raw(),
                        addr,
                        want as c_ulong,
                        flags,
                        dst,
                        core::ptr::null_mut(),
                    );
                    bindings::mmap_read_unlock(mm.as_raw());
                    got
                }
            };
            if got <= 0 {
                self.pages.truncate_pins(old_len, self.writable);
                return Err(if got == 0 {
                    EFAULT
                } else {
                    Error::from_errno(got as i32)
                });
            }
            let got = (got as usize).min(want);
            // SAFETY: The call above initialised the first `got` spare elements with pinned pages,
            // and `got <= want` fits the reserved capacity.
            unsafe { self.pages.inc_len(got) };
            done += got;
        }
        // INVARIANT: Every page added above was pinned by this call with the flags `writable`
        // says.
        Ok(())
    }
}

/// Unpinning the tail of a vector of pinned pages.
trait TruncatePins {
    /// Unpins the pages from `len` on and drops them from the vector.
    fn truncate_pins(&mut self, len: usize, dirty: bool);
}

impl TruncatePins for KVVec<*mut bindings::page> {
    fn truncate_pins(&mut self, len: usize, dirty: bool) {
        let Some(tail) = self.as_mut_slice().get_mut(len..) else {
            return;
        };
        if !tail.is_empty() {
            // SAFETY: Every element is a page pinned by the owning `PinnedPages` (its type
            // invariant), and the truncation below forgets them, so each is unpinned once.
            unsafe {
                bindings::unpin_user_pages_dirty_lock(
                    tail.as_mut_ptr(),
                    tail.len() as c_ulong,
                    dirty,
                )
            };
        }
        self.truncate(len);
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        if self.folios.is_empty() {
            self.pages.truncate_pins(0, self.writable);
            return;
        }
        // SAFETY: By the type invariant every folio is pinned by us; each is unpinned once.
        unsafe { bindings::unpin_folios(self.folios.as_mut_ptr(), self.folios.len() as c_ulong) };
    }
}

/// Where the cost of pinned memory goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeTo {
    /// The user's `locked_vm`, checked against `RLIMIT_MEMLOCK` (as io_uring does); nothing is
    /// checked for a task with `CAP_IPC_LOCK`.
    User,
    /// The mm's `locked_vm` (`VmLck`), checked against `RLIMIT_MEMLOCK` (as VFIO's type1
    /// driver does); nothing is charged for a task with `CAP_IPC_LOCK`.
    Mm,
}

/// The bill for long-term pinned memory of the process that created it.
///
/// # Examples
///
/// ```no_run
/// use kernel::mm::pin::{ChargeTo, PinCharge};
///
/// fn charge_some(npages: usize) -> Result {
///     let payer = PinCharge::current(ChargeTo::User)?;
///     // `ENOMEM` if the caller's RLIMIT_MEMLOCK does not allow it.
///     payer.charge(npages)?;
///     payer.uncharge(npages);
///     Ok(())
/// }
/// ```
///
/// Whatever the mode, charged pages also count in the mm's `pinned_vm` (`VmPin` in
/// `/proc/<pid>/status`).
///
/// # Invariants
///
/// `user` holds a reference on a `struct user_struct`.
pub struct PinCharge {
    /// The mode, or `None` when the user's limit does not apply (`CAP_IPC_LOCK`).
    mode: Option<ChargeTo>,
    /// The user who pays in [`ChargeTo::User`] mode.
    user: NonNull<bindings::user_struct>,
    /// The thread-group leader whose `RLIMIT_MEMLOCK` applies.
    task: ARef<Task>,
    /// The address space whose `pinned_vm` (and, in [`ChargeTo::Mm`] mode, `locked_vm`) counts.
    mm: ARef<Mm>,
}

// SAFETY: The references it holds (user, task, mm) may be used and dropped from any thread.
unsafe impl Send for PinCharge {}

// SAFETY: Charging only uses atomic counters or takes the mm's lock.
unsafe impl Sync for PinCharge {}

impl PinCharge {
    /// The bill of the calling process, in mode `to`. `EINVAL` for a kernel thread.
    pub fn current(to: ChargeTo) -> Result<Self> {
        let cur = crate::current!();
        let mm: ARef<Mm> = ARef::from(&**cur.mm().ok_or(EINVAL)?);
        let task: ARef<Task> = ARef::from(cur.group_leader());
        let mode = if capable(Capability::IPC_LOCK) {
            None
        } else {
            Some(to)
        };
        // SAFETY: `get_current_user` takes a reference on the caller's user, never NULL.
        let user = unsafe { NonNull::new_unchecked(bindings::get_current_user()) };
        // INVARIANT: `user` was referenced just above.
        Ok(Self {
            mode,
            user,
            task,
            mm,
        })
    }

    /// The address space the pinned memory belongs to.
    pub fn mm(&self) -> &Mm {
        &self.mm
    }

    /// Charges `npages` pages. `ENOMEM` if that would take the payer over its
    /// `RLIMIT_MEMLOCK`; then nothing is charged.
    pub fn charge(&self, npages: usize) -> Result {
        match self.mode {
            None => {}
            Some(ChargeTo::User) => {
                // SAFETY: `self.task` is a valid task (we hold a reference).
                let limit =
                    unsafe { bindings::task_rlimit(self.task.as_ptr(), bindings::RLIMIT_MEMLOCK) }
                        >> crate::page::PAGE_SHIFT;
                let locked = self.user_locked_vm();
                let mut cur = locked.load(Relaxed);
                loop {
                    let new = (cur as c_ulong)
                        .checked_add(npages as c_ulong)
                        .filter(|&new| new <= limit)
                        .ok_or(ENOMEM)?;
                    match locked.cmpxchg(cur, new as LongCounter, Relaxed) {
                        Ok(_) => break,
                        Err(seen) => cur = seen,
                    }
                }
            }
            Some(ChargeTo::Mm) => self.account_mm(npages, true)?,
        }
        self.pinned_vm().add(npages as i64, Relaxed);
        Ok(())
    }

    /// Returns `npages` pages charged earlier by [`Self::charge`].
    pub fn uncharge(&self, npages: usize) {
        match self.mode {
            None => {}
            Some(ChargeTo::User) => {
                self.user_locked_vm()
                    .fetch_sub(npages as LongCounter, Relaxed);
            }
            Some(ChargeTo::Mm) => {
                // Uncharging cannot fail.
                let _ = self.account_mm(npages, false);
            }
        }
        self.pinned_vm().fetch_sub(npages as i64, Relaxed);
    }

    /// The user's `locked_vm` counter.
    fn user_locked_vm(&self) -> &Atomic<LongCounter> {
        // SAFETY: By the type invariant `self.user` is valid while `self` lives; the kernel only
        // ever accesses `locked_vm` atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.user.as_ptr()).locked_vm.counter) }
    }

    /// The mm's `pinned_vm` counter.
    fn pinned_vm(&self) -> &Atomic<i64> {
        // SAFETY: We hold a reference on the mm, so it is valid while `self` lives; the kernel
        // only ever accesses `pinned_vm` atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.mm.as_raw()).__bindgen_anon_1.pinned_vm.counter) }
    }

    /// Moves the mm's `locked_vm` by `npages` under its mmap lock.
    fn account_mm(&self, npages: usize, inc: bool) -> Result {
        let mm = self.mm.as_raw();
        // SAFETY: `mm` is valid while we hold our reference; `__account_locked_vm` needs the
        // write lock, taken around it, and a valid task for the limit.
        let ret = unsafe {
            bindings::mmap_write_lock(mm);
            let ret = bindings::__account_locked_vm(
                mm,
                npages as c_ulong,
                inc,
                self.task.as_ptr(),
                false,
            );
            bindings::mmap_write_unlock(mm);
            ret
        };
        crate::error::to_result(ret)
    }
}

impl Drop for PinCharge {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we hold a reference on `self.user`.
        unsafe { bindings::free_uid(self.user.as_ptr()) };
    }
}
