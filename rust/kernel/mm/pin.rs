// SPDX-License-Identifier: GPL-2.0

//! Long-term pins on user memory, and what they cost their owner.
//!
//! A device that reaches user memory through an IOMMU needs every page behind a mapping to stay
//! where it is for as long as the mapping exists, whatever the process does to its address space
//! meanwhile. [`PinBatch`] takes such pins (`FOLL_PIN | FOLL_LONGTERM`, so the pages are first
//! migrated out of movable zones) a bounded number of physically contiguous runs ([`PageRuns`])
//! at a time; once the pages are in use (mapped), the batch hands its pins over to the caller,
//! whose own records (an I/O page table) say which pages to unpin later ([`unpin_run`]).
//! Pinned memory cannot be
//! reclaimed, so it is charged to somebody's `RLIMIT_MEMLOCK`: [`PinCharge`] does that the way
//! the kernel's other long-term pinners (io_uring, VFIO, iommufd) do.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/sched/user.h`](srctree/include/linux/sched/user.h).

use crate::{
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
    page::PAGE_SIZE,
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

/// The most pages one call into the pinning code asks for: large enough to amortise the page
/// table walk, small enough to stay responsive to signals between calls.
const PIN_CALL: usize = 512;

/// The page size, as a physical address quantity.
const PAGE: PhysAddr = PAGE_SIZE as PhysAddr;

/// The integer inside an `atomic_long_t`.
#[cfg(CONFIG_64BIT)]
type LongCounter = i64;
/// The integer inside an `atomic_long_t`.
#[cfg(not(CONFIG_64BIT))]
type LongCounter = i32;

/// Whether [`PinBatch::pin_file`] can pin `file`'s pages: it is memory (shmem, which memfds
/// are, or hugetlbfs), not a file whose pages belong to a device or live on disk.
pub fn file_is_memory(file: &File) -> bool {
    // SAFETY: `file` is a valid file for the duration of the call; both only read its mapping
    // and operations.
    unsafe { bindings::shmem_file(file.as_ptr()) || bindings::is_file_hugepages(file.as_ptr()) }
}

/// Whether `file` is a dma-buf: memory an exporting driver lends out, which is not pinned but
/// attached to.
pub fn file_is_dma_buf(file: &File) -> bool {
    /// The magic number of the pseudo file system dma-buf files live on
    /// (`include/uapi/linux/magic.h`).
    const DMA_BUF_MAGIC: c_ulong = 0x444d_4142;
    // SAFETY: `file` is a valid file for the duration of the call, so its inode and that inode's
    // super block are valid too (an open file pins both); the magic number of a super block
    // never changes.
    unsafe { (*(*(*file.as_ptr()).f_inode).i_sb).s_magic == DMA_BUF_MAGIC }
}

/// A physically contiguous run of pages: `npages` pages from the page-aligned `phys` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRun {
    /// The physical address of the first page.
    pub phys: PhysAddr,
    /// The number of pages.
    pub npages: usize,
}

impl PageRun {
    /// Whether the page at `phys` comes right after the run.
    fn continued_by(&self, phys: PhysAddr) -> bool {
        self.phys + self.npages as PhysAddr * PAGE == phys
    }
}

/// A list of physically contiguous runs of pages, in the order they were added, with a
/// capacity fixed when it is made: memory for bookkeeping that does not grow with the amount
/// of memory described. Plain data: it says nothing about who holds the pages.
pub struct PageRuns {
    /// The runs; never more than the capacity reserved at creation.
    runs: KVec<PageRun>,
}

impl PageRuns {
    /// An empty list with room for `capacity` runs (at least one).
    pub fn new(capacity: usize) -> Result<Self> {
        Ok(Self {
            runs: KVec::with_capacity(capacity.max(1), GFP_KERNEL_ACCOUNT)?,
        })
    }

    /// Forgets every run.
    pub fn clear(&mut self) {
        self.runs.clear();
    }

    /// How many more runs fit.
    pub fn room(&self) -> usize {
        self.runs.capacity() - self.runs.len()
    }

    /// Whether pages from `phys` on can be added: they continue the last run, or a new run
    /// fits.
    pub fn can_add(&self, phys: PhysAddr) -> bool {
        self.room() > 0 || self.runs.last().is_some_and(|last| last.continued_by(phys))
    }

    /// Adds `npages` pages from the page-aligned `phys`, joined to the last run if they continue
    /// it. Returns `false`, and adds nothing, if that needs a new run and none fits.
    pub fn add(&mut self, phys: PhysAddr, npages: usize) -> bool {
        if let Some(last) = self.runs.last_mut() {
            if last.continued_by(phys) {
                last.npages += npages;
                return true;
            }
        }
        if self
            .runs
            .push_within_capacity(PageRun { phys, npages })
            .is_err()
        {
            return false;
        }
        true
    }

    /// The runs, in order.
    pub fn iter(&self) -> impl Iterator<Item = PageRun> + Clone + '_ {
        self.runs.iter().copied()
    }
}

/// Calls `f(folio, page, nr)` for each folio the physically contiguous run of `npages` pages
/// from `phys` touches, with its first page in the run and how many of its pages the run
/// covers, stopping at the first `false` from `f`. Returns how many pages were covered by the
/// calls that returned `true`.
///
/// # Safety
///
/// Every page of the run is pinned, by the caller or by somebody who keeps the pin while this
/// runs, so that it has a valid `struct page` and belongs to a folio that stays allocated.
unsafe fn for_each_folio(
    phys: PhysAddr,
    npages: usize,
    mut f: impl FnMut(*mut bindings::folio, *mut bindings::page, usize) -> bool,
) -> usize {
    let mut pfn = (phys / PAGE) as c_ulong;
    let mut done = 0;
    while done < npages {
        // SAFETY: `pfn` is the frame of a pinned page (the caller's guarantee), so it has a
        // valid `struct page`, in a folio its pin keeps allocated. Looking the page up by frame
        // for every folio, rather than stepping through `struct page`s, is right whatever the
        // memory model.
        let (folio, page, nr) = unsafe {
            let page = bindings::pfn_to_page(pfn);
            let folio = bindings::page_folio(page);
            let index = bindings::folio_page_idx(folio, page) as usize;
            let in_folio = bindings::folio_nr_pages(folio) as usize - index;
            (folio, page, in_folio.min(npages - done))
        };
        if !f(folio, page, nr) {
            break;
        }
        done += nr;
        pfn += nr as c_ulong;
    }
    done
}

/// Drops one long-term pin on each of the `npages` pages from `phys`, marking them dirty first
/// if `dirty`.
///
/// # Safety
///
/// The caller owns one pin on each page of the run (from [`PinBatch`], kept with
/// [`PinBatch::hand_over`]), and gives it up; the run is physically contiguous.
pub unsafe fn unpin_run(phys: PhysAddr, npages: usize, dirty: bool) {
    // SAFETY: The caller owns a pin on every page of the run.
    unsafe {
        for_each_folio(phys, npages, |_, page, nr| {
            // SAFETY: `page` and the `nr - 1` pages after it are pages of one folio, so their
            // `struct page`s are contiguous; the caller owns a pin on each, dropped once here.
            bindings::unpin_user_page_range_dirty_lock(page, nr as c_ulong, dirty);
            true
        })
    };
}

/// Long-term pins (`FOLL_PIN | FOLL_LONGTERM`, so the pages are first migrated out of movable
/// zones) on the pages listed in a [`PageRuns`], dropped with the batch unless handed over.
///
/// A batch holds at most as many runs as its [`PageRuns`] has room for, however much memory
/// they cover: pinning a large range is a loop of batches, each used (mapped) and handed over
/// before the next, so the bookkeeping stays the same size whatever the range.
///
/// # Invariants
///
/// The batch owns one pin on every page listed in `*runs`, taken for writing if `writable`.
pub struct PinBatch<'a> {
    /// The pinned pages.
    runs: &'a mut PageRuns,
    /// Whether the pages were pinned for writing (and so get marked dirty when unpinned).
    writable: bool,
    /// Room for the page pointers one call into the pinning code returns.
    scratch: KVec<*mut bindings::page>,
}

impl<'a> PinBatch<'a> {
    /// An empty batch that lists its pins in `runs` (cleared first). With `writable`, pages are
    /// pinned for writing, which fails on read-only memory.
    pub fn new(runs: &'a mut PageRuns, writable: bool) -> Self {
        runs.clear();
        // INVARIANT: Nothing is listed.
        Self {
            runs,
            writable,
            scratch: KVec::new(),
        }
    }

    /// The pinned pages.
    pub fn runs(&self) -> &PageRuns {
        self.runs
    }

    /// Whether a page at `phys` could still be added.
    pub fn can_add(&self, phys: PhysAddr) -> bool {
        self.runs.can_add(phys)
    }

    /// Keeps the pins: the caller now owns them (and drops them with [`unpin_run`]).
    pub fn hand_over(self) {
        // INVARIANT: Nothing is listed any more, so drop unpins nothing.
        self.runs.clear();
    }

    /// Pins up to `max` pages of `mm` from the page-aligned address `start`, as many as fit.
    /// Returns how many, 0 only if the batch is full. Pages pinned in one call that do not fit
    /// are unpinned again, so a batch stays full to its last run.
    ///
    /// `EFAULT` if the first page is not mapped (or is read-only while pinning for writing),
    /// `ENOMEM`, `EINTR` if a fatal signal arrives. Uses the lockless fast path when `mm` is
    /// the caller's own.
    pub fn pin_user(&mut self, mm: &MmWithUser, start: usize, max: usize) -> Result<usize> {
        let want = max.min(PIN_CALL);
        if want == 0 || self.runs.room() == 0 {
            return Ok(0);
        }
        if self.scratch.capacity() < PIN_CALL {
            self.scratch = KVec::with_capacity(PIN_CALL, GFP_KERNEL)?;
        }
        let mut flags = bindings::FOLL_LONGTERM;
        if self.writable {
            flags |= bindings::FOLL_WRITE;
        }
        let own_mm = crate::current!()
            .mm()
            .is_some_and(|cur| core::ptr::eq(cur.as_raw(), mm.as_raw()));
        self.scratch.clear();
        let dst = self.scratch.spare_capacity_mut().as_mut_ptr().cast();
        let got = if own_mm {
            // SAFETY: `dst` has room for `PIN_CALL >= want` pointers, and `pin_user_pages_fast`
            // works on the caller's own address space, which `mm` is. `want` is at most
            // `PIN_CALL`, so it fits an `int`.
            unsafe { bindings::pin_user_pages_fast(start, want as i32, flags, dst) as c_long }
        } else {
            // SAFETY: `mm` has a user (`MmWithUser`), so its page tables exist; the read lock is
            // held across the call as `pin_user_pages_remote` with no `locked` requires, and
            // `dst` has room for `want` pointers.
            unsafe {
                bindings::mmap_read_lock(mm.as_raw());
                let got = bindings::pin_user_pages_remote(
                    mm.as_raw(),
                    start,
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
            return Err(if got == 0 {
                EFAULT
            } else {
                Error::from_errno(got as i32)
            });
        }
        // SAFETY: The call above wrote a pinned page to each of its first `got <= want`
        // slots, which fit the capacity.
        unsafe { self.scratch.inc_len((got as usize).min(want)) };
        let pages = self.scratch.as_mut_slice();
        let mut added = 0;
        for &page in pages.iter() {
            // SAFETY: The page is pinned, so valid.
            let phys = unsafe { bindings::page_to_phys(page) };
            // INVARIANT: The page was pinned above, with the flags `writable` says; once added,
            // the batch owns its pin.
            if !self.runs.add(phys, 1) {
                break;
            }
            added += 1;
        }
        let rest = &mut pages[added..];
        if !rest.is_empty() {
            // SAFETY: These pages were pinned above and not added to the batch: nothing else
            // owns their pins, each dropped once here.
            unsafe {
                bindings::unpin_user_pages_dirty_lock(
                    rest.as_mut_ptr(),
                    rest.len() as c_ulong,
                    false,
                )
            };
        }
        self.scratch.clear();
        Ok(added)
    }

    /// Pins up to `max` pages of the memfd `file` from the page-aligned offset `start`,
    /// allocating the ones it does not have yet, as many as fit. Returns how many, 0 only if
    /// the batch is full.
    ///
    /// `EINVAL` if `file` is not a memfd (shmem or hugetlbfs) or the range is bad, `ENOMEM`.
    pub fn pin_file(&mut self, file: &File, start: u64, max: usize) -> Result<usize> {
        if !file_is_memory(file) {
            return Err(EINVAL);
        }
        // One new run per folio at worst.
        let max_folios = self.runs.room().min(PIN_CALL);
        if max == 0 || max_folios == 0 {
            return Ok(0);
        }
        let len = max.checked_mul(PAGE_SIZE).ok_or(EINVAL)?;
        let end = start.checked_add(len as u64 - 1).ok_or(EINVAL)?;
        let mut folios: KVec<*mut bindings::folio> = KVec::with_capacity(max_folios, GFP_KERNEL)?;
        let mut offset: c_ulong = 0;
        // SAFETY: `file` is a valid file; `folios` has room for `max_folios` pointers (at most
        // `PIN_CALL`, so it fits a `u32`); the offsets fit `loff_t` (checked by the callee,
        // which fails on anything beyond the file's limits).
        let got = unsafe {
            bindings::memfd_pin_folios(
                file.as_ptr(),
                start as bindings::loff_t,
                end as bindings::loff_t,
                folios.spare_capacity_mut().as_mut_ptr().cast(),
                max_folios as u32,
                &mut offset,
            )
        };
        if got <= 0 {
            return Err(if got == 0 {
                EFAULT
            } else {
                Error::from_errno(got as i32)
            });
        }
        // SAFETY: The call initialised `got <= max_folios` pointers to folios it pinned once
        // each; from here each is either turned into pins of this batch or unpinned below.
        unsafe { folios.inc_len((got as usize).min(max_folios)) };
        let mut skip = offset as usize / PAGE_SIZE;
        let mut done = 0;
        let mut failed = None;
        for (i, &folio) in folios.iter().enumerate() {
            // SAFETY: `folio` is pinned, so valid.
            let nr = unsafe { bindings::folio_nr_pages(folio) } as usize;
            let take = nr.saturating_sub(skip).min(max - done);
            // The folio's own pin stands for its first page; every further page gets one of
            // its own, so that pages can be unpinned one by one.
            // SAFETY: The folio is pinned (by the call above); `take` fits a `u32`, being at
            // most the folio's number of pages.
            if take == 0
                || (take > 1 && unsafe { bindings::folio_add_pins(folio, take as u32 - 1) } != 0)
            {
                failed = Some(i);
                break;
            }
            // SAFETY: `skip < nr`, since `take` is not zero.
            let phys =
                unsafe { bindings::page_to_phys(bindings::folio_page(folio, skip as c_ulong)) };
            // INVARIANT: Each of the `take` pages holds one pin now, which the batch owns once
            // added. Folios are physically contiguous and there was room for one run per folio.
            if !self.runs.add(phys, take) {
                // SAFETY: The pins were taken above and are not the batch's: dropped once.
                unsafe { unpin_run(phys, take, false) };
                failed = Some(i + 1);
                break;
            }
            done += take;
            skip = 0;
        }
        if let Some(i) = failed {
            let rest = &mut folios.as_mut_slice()[i..];
            // SAFETY: These folios hold the single pin the call above took, which nothing
            // else owns; each is dropped once.
            unsafe { bindings::unpin_folios(rest.as_mut_ptr(), rest.len() as c_ulong) };
            if done == 0 {
                return Err(ENOMEM);
            }
        }
        Ok(done)
    }

    /// Takes one more pin on each of the `npages` pages from `phys`, which somebody else
    /// pinned: the same memory, held for this batch's user too. `ENOSPC` if the run does not
    /// fit; `ENOMEM` if the memory refuses more pins. On error nothing is added.
    ///
    /// # Safety
    ///
    /// Every page of the run is pinned (`FOLL_PIN`, with the same `writable`) by somebody who
    /// keeps that pin until this returns, and the run is physically contiguous.
    pub unsafe fn add_pins(&mut self, phys: PhysAddr, npages: usize) -> Result {
        if !self.runs.can_add(phys) {
            return Err(ENOSPC);
        }
        // SAFETY: The caller's guarantee: every page of the run is pinned while this runs.
        let done = unsafe {
            for_each_folio(phys, npages, |folio, _, nr| {
                // SAFETY: The folio is pinned already, which is what adding pins needs; `nr`
                // is at most the folio's number of pages, so it fits a `u32`.
                bindings::folio_add_pins(folio, nr as u32) == 0
            })
        };
        if done < npages {
            // SAFETY: The walk above took one pin on each of the first `done` pages, for us.
            unsafe { unpin_run(phys, done, false) };
            return Err(ENOMEM);
        }
        // INVARIANT: The batch owns the pins just taken. The run fits (checked above).
        self.runs.add(phys, npages);
        Ok(())
    }
}

// SAFETY: A pin is not tied to the task that took it; the pages can be unpinned from any thread.
unsafe impl Send for PinBatch<'_> {}

impl Drop for PinBatch<'_> {
    fn drop(&mut self) {
        for run in self.runs.iter() {
            // SAFETY: By the type invariant the batch owns one pin on each page of the run, and
            // forgets it below, so each is dropped once.
            unsafe { unpin_run(run.phys, run.npages, self.writable) };
        }
        self.runs.clear();
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
