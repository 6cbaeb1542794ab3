// SPDX-License-Identifier: GPL-2.0

//! The IOVA space of an I/O address space: mappings, reserved and allowed ranges.
//!
//! An IOAS maps IOVA ranges ("areas") to user memory. Areas never overlap; they live in a
//! red-black tree keyed by their first IOVA, so finding, inserting and removing an area at a given
//! IOVA costs O(log n) however many there are. Reserved ranges (later: the reserved regions of
//! attached devices, such as an MSI window) may never be mapped; the usable ranges userspace sees
//! are the holes between them ([`Holes`]). Allowed ranges (`IOMMU_IOAS_ALLOW_IOVAS`) restrict
//! where the kernel chooses IOVAs and promise that attaching devices will not reserve them.
//!
//! With no I/O page table (IOMMU domain) attached, mapping records the user range and pins
//! nothing, as in the C driver: pages are pinned when something needs them. While at least one
//! domain is attached, every area is mapped in every domain and is a holder of its pages, each
//! pinned once however many areas hold it (see [`Pages`]) and charged once to the memlock limit
//! of the process that mapped it; maps and unmaps apply to all domains or to none. Pins move a
//! bounded batch at a time ([`PinBatch`]): pinned, mapped into every domain, then handed over
//! to them; an unmap reads them back from the first domain to drop them ([`unfill`]). The
//! domains are the record of what is pinned, so nothing else grows with the size of a mapping.
//!
//! The rules (errors, alignment of kernel-chosen IOVAs) are the C driver's, so that userspace sees
//! the same behaviour; the arithmetic is pure and tested with KUnit.

use kernel::{
    iommu::domain::{
        prot as iommu_prot,
        Domain, //
    },
    mm::pin::{
        unpin_run,
        PageRun,
        PageRuns,
        PinBatch, //
    },
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::Arc,
};

use crate::double_span::{
    fits,
    insert_sorted,
    AllowedSpans,
    Holes, //
};
use crate::pages::{
    domain_run,
    pin_from_domain,
    PinsLocked, //
};
pub(crate) use crate::{
    double_span::IovaRange,
    pages::{
        Pages,
        Segment, //
    },
};

/// How many physically contiguous runs of pages one batch of pins holds (see [`PinBatch`]):
/// the bookkeeping an IOAS with domains keeps for moving pins, whatever it maps.
const RUNS_PER_BATCH: usize = 256;

/// The largest alignment a kernel-chosen IOVA is given: a PMD-sized huge page when transparent
/// huge pages exist (so the mapping can use one), else a page.
const MAX_ALIGNMENT: u64 = if cfg!(CONFIG_TRANSPARENT_HUGEPAGE) {
    // One page table page of 8-byte entries, mapped by one PMD entry.
    (PAGE_SIZE * (PAGE_SIZE / 8)) as u64
} else {
    PAGE_SIZE as u64
};

/// The page size, as an IOVA quantity.
const PAGE: u64 = PAGE_SIZE as u64;

/// Access rights of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prot {
    /// The device may read through the mapping.
    pub(crate) read: bool,
    /// The device may write through the mapping.
    pub(crate) write: bool,
}

/// One mapping: the IOVAs `[key, last]` map `pages` from byte `start_byte` on.
pub(crate) struct Area {
    /// The last IOVA of the area (its first is the tree key).
    last: u64,
    /// The memory mapped.
    pages: Arc<Pages>,
    /// Offset of the area's first byte in `pages`.
    start_byte: usize,
    /// Access rights.
    prot: Prot,
}

impl Area {
    /// The IOMMU protection bits of the area. Every mapping asks for cache-coherent DMA, as in
    /// the C driver.
    fn iommu_prot(&self) -> u32 {
        let mut prot = iommu_prot::CACHE;
        if self.prot.read {
            prot |= iommu_prot::READ;
        }
        if self.prot.write {
            prot |= iommu_prot::WRITE;
        }
        prot
    }

    /// The pages of the area, whose first IOVA is `start`, as (first page, number of pages).
    /// `EINVAL` unless the area is page aligned, as every area is while the IOAS has a domain
    /// (see [`IovaSpace::alignment`]).
    fn page_range(&self, start: u64) -> Result<(usize, usize)> {
        let length = self.last - start + 1;
        if start % PAGE != 0 || length % PAGE != 0 || self.start_byte % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let npages = usize::try_from(length / PAGE).map_err(|_| EINVAL)?;
        Ok((self.start_byte / PAGE_SIZE, npages))
    }
}

/// Maps `run` into `domain` at `iova`, in calls of at most `max_chunk` bytes (a multiple of
/// `PAGE_SIZE`: `PAGE_SIZE` keeps the IOMMU driver from using larger page table entries, for
/// `IOMMU_OPTION_HUGE_PAGES` off). On error, returns it with the number of bytes mapped, which
/// the caller unmaps.
///
/// # Safety
///
/// The pages of `run` stay allocated to the caller, who may give devices access to them, until
/// it unmaps them from `domain`.
unsafe fn map_run(
    domain: &Domain,
    iova: u64,
    run: PageRun,
    prot: u32,
    max_chunk: usize,
) -> core::result::Result<(), (Error, usize)> {
    let total = run.npages * PAGE_SIZE;
    let mut done = 0usize;
    while done < total {
        let size = (total - done).min(max_chunk);
        // SAFETY: The caller vouches for the memory until it unmaps it.
        unsafe { domain.map(iova + done as u64, run.phys + done as u64, size, prot) }
            .map_err(|e| (e, done))?;
        done += size;
    }
    Ok(())
}

/// Maps `runs`, back to back from `iova` on, into every domain of `domains` (see
/// [`map_run`]): into all of them, or on error into none, what was mapped being unmapped
/// again. The error comes back with whether some domain failed to unmap: then the pages must
/// stay pinned for good.
///
/// # Safety
///
/// As for [`map_run`], for every run and every domain.
unsafe fn map_everywhere(
    domains: &[Arc<Domain>],
    iova: u64,
    runs: impl Iterator<Item = PageRun> + Clone,
    prot: u32,
    max_chunk: usize,
) -> core::result::Result<(), (Error, bool)> {
    let size: usize = runs.clone().map(|run| run.npages * PAGE_SIZE).sum();
    for (i, domain) in domains.iter().enumerate() {
        let mut done = 0usize;
        for run in runs.clone() {
            // SAFETY: The caller's guarantee covers every run and domain.
            if let Err((e, mapped)) =
                unsafe { map_run(domain, iova + done as u64, run, prot, max_chunk) }
            {
                let mapped = done + mapped;
                let mut short = mapped != 0 && !unmap_exactly(domain, iova, mapped);
                for d in &domains[..i] {
                    short |= !unmap_exactly(d, iova, size);
                }
                return Err((e, short));
            }
            done += run.npages * PAGE_SIZE;
        }
    }
    Ok(())
}

/// Maps `count` pages that `from` maps from `from_iova` on into every domain of `domains`
/// from `iova` on, a physically contiguous run at a time. Returns how many pages every domain
/// maps, with the error that stopped it; what the failing run left mapped is unmapped (if a
/// domain fails to unmap, the run gets pins of its own that are never dropped, and `*kept` is
/// set for the charge).
///
/// # Safety
///
/// The pages `from` maps in the range are pinned, and stay pinned until the caller unmaps them
/// from `domains` again.
unsafe fn map_from_domain(
    from: &Domain,
    from_iova: u64,
    count: usize,
    domains: &[Arc<Domain>],
    iova: u64,
    prot: u32,
    max_chunk: usize,
    kept: &mut bool,
    runs: &mut PageRuns,
    writable: bool,
) -> (usize, Result) {
    let mut done = 0;
    while done < count {
        let offset = (done * PAGE_SIZE) as u64;
        let run = match domain_run(from, from_iova + offset, count - done) {
            Ok(run) => run,
            Err(e) => return (done, Err(e)),
        };
        // SAFETY: The pages are pinned until the caller unmaps them (its guarantee), or
        // until the undo just below.
        if let Err((e, short)) = unsafe {
            map_everywhere(
                domains,
                iova + offset,
                core::iter::once(run),
                prot,
                max_chunk,
            )
        } {
            if short {
                *kept = true;
                let mut batch = PinBatch::new(runs, writable);
                // SAFETY: The pages are pinned while this runs (the caller's guarantee).
                if unsafe { batch.add_pins(run.phys, run.npages) }.is_err() {
                    pr_err!("iommufd: could not keep the pages of a mapping pinned\n");
                }
                batch.hand_over();
            }
            return (done, Err(e));
        }
        done += run.npages;
    }
    (done, Ok(()))
}

/// Pins the pages of `area`, whose first IOVA is `start`, maps them into every domain of
/// `domains` and makes the area a holder of its pages, read from `domains[0]`. Pages another
/// holder has are read from its domain; the rest are pinned from the source a batch at a time
/// and their pins handed over to the domains. All of it, or nothing on error.
fn fill(
    area: &Area,
    start: u64,
    domains: &[Arc<Domain>],
    runs: &mut PageRuns,
    max_chunk: usize,
) -> Result {
    let d0 = domains.first().ok_or(EINVAL)?;
    let (first, npages) = area.page_range(start)?;
    let prot = area.iommu_prot();
    let mut pins = area.pages.lock_pins();
    pins.reserve_holder()?;
    pins.charge()?;
    // Pages mapped in every domain so far.
    let mut done = 0;
    let mut kept = false;
    let mut res = Ok(());
    while done < npages && res.is_ok() {
        let index = first + done;
        let iova = start + (done * PAGE_SIZE) as u64;
        let (seg_end, held) = pins.segment(index, first + npages);
        if let Some((from, from_iova)) = held {
            // SAFETY: A holder has these pages, so they are pinned; they stay so while it is a
            // holder, which it stays while the pins lock is held, and past that while this
            // area is one too (from the end of this function) or until `unfill` unmaps them.
            let (got, r) = unsafe {
                map_from_domain(
                    from,
                    from_iova,
                    seg_end - index,
                    domains,
                    iova,
                    prot,
                    max_chunk,
                    &mut kept,
                    runs,
                    area.pages.writable(),
                )
            };
            done += got;
            res = r;
            continue;
        }
        let mut batch = PinBatch::new(runs, area.pages.writable());
        let got = match pins.pin_from_source(&mut batch, index, seg_end - index) {
            Ok(0) => Err(ENOMEM),
            other => other,
        };
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                res = Err(e);
                break;
            }
        };
        // SAFETY: The batch's pins keep the pages until it hands them over below; from then on
        // the holders of the pages share them, and the last one drops them in `unfill`, after
        // unmapping the pages from every domain of its IOAS.
        if let Err((e, short)) =
            unsafe { map_everywhere(domains, iova, batch.runs().iter(), prot, max_chunk) }
        {
            if short {
                batch.hand_over();
                kept = true;
            }
            res = Err(e);
            break;
        }
        batch.hand_over();
        done += got;
    }
    if res.is_ok() {
        res = pins.add_holder(d0, start, first, npages);
    }
    match res {
        Ok(()) => Ok(()),
        Err(e) => {
            unfill(&mut pins, area, start, done, domains, runs);
            if kept {
                pins.keep_forever(&area.pages);
            }
            pins.uncharge();
            Err(e)
        }
    }
}

/// Unmaps the first `npages` pages of `area`, mapped from IOVA `start` on, from every domain of
/// `domains`, and unpins the ones no holder has (the caller is not one, or no longer), read
/// back from `domains[0]` a batch at a time. Pages a domain fails to unmap keep their pins,
/// and their charge, forever.
fn unfill(
    pins: &mut PinsLocked<'_>,
    area: &Area,
    start: u64,
    npages: usize,
    domains: &[Arc<Domain>],
    runs: &mut PageRuns,
) {
    let Some(d0) = domains.first() else {
        return;
    };
    let Ok((first, _)) = area.page_range(start) else {
        return;
    };
    if npages == 0 {
        return;
    }
    let size = npages * PAGE_SIZE;
    let mut kept = false;
    for domain in &domains[1..] {
        kept |= !unmap_exactly(domain, start, size);
    }
    if kept {
        // A domain still maps some of the pages: they get pins of their own, never dropped.
        pin_forever(pins, area, start, npages, d0, runs);
        kept = false;
    }
    let dirty = area.pages.writable();
    let mut done = 0;
    while done < npages {
        runs.clear();
        let iova = start + (done * PAGE_SIZE) as u64;
        // Read pages until one needs a new run and none fits. The batch then ends at a
        // physical discontinuity, which no page table entry spans, so it can be unmapped on
        // its own exactly.
        let mut n = 0;
        while done + n < npages {
            let phys = d0.iova_to_phys(iova + (n * PAGE_SIZE) as u64);
            if phys == 0 || !runs.add(phys, 1) {
                break;
            }
            n += 1;
        }
        if n == 0 {
            // A page missing from the domain: a bug. Whatever of the rest is mapped goes, the
            // pins stay.
            kernel::warn_on!(true);
            let _ = unmap_exactly(d0, iova, (npages - done) * PAGE_SIZE);
            kept = true;
            break;
        }
        if unmap_exactly(d0, iova, n * PAGE_SIZE) {
            let mut index = first + done;
            for run in runs.iter() {
                pins.for_each_unheld(index, index + run.npages, |a, b| {
                    // SAFETY: Each page some holder had holds one pin, which the last holder
                    // to let go owns: no holder has these pages any more, and the caller,
                    // which had them, read them back from the domain just before it unmapped
                    // them; no domain maps them now.
                    unsafe { unpin_run(run.phys + ((a - index) * PAGE_SIZE) as u64, b - a, dirty) };
                });
                index += run.npages;
            }
        } else {
            kept = true;
        }
        done += n;
    }
    runs.clear();
    if kept {
        pins.keep_forever(&area.pages);
    }
}

/// Maps `area`, whose first IOVA is `start` and which `from` maps, into `to` too, reading its
/// pages from `from`. All of it, or nothing on error.
fn mirror(
    area: &Area,
    start: u64,
    from: &Domain,
    to: &Arc<Domain>,
    runs: &mut PageRuns,
    max_chunk: usize,
) -> Result {
    let (_, npages) = area.page_range(start)?;
    let mut kept = false;
    // SAFETY: The area is a holder of its pages, which stay pinned while it is; it stops being
    // one only in `unfill`, after unmapping them from every domain, which `to` is one of once
    // this succeeds (on error it is unmapped below).
    let (done, res) = unsafe {
        map_from_domain(
            from,
            start,
            npages,
            core::slice::from_ref(to),
            start,
            area.iommu_prot(),
            max_chunk,
            &mut kept,
            runs,
            area.pages.writable(),
        )
    };
    if kept {
        area.pages.lock_pins().keep_forever(&area.pages);
    }
    if res.is_err() && done != 0 && !unmap_exactly(to, start, done * PAGE_SIZE) {
        pin_forever(&mut area.pages.lock_pins(), area, start, done, from, runs);
    }
    res
}

/// Takes `area`, whose first IOVA is `start`, out of the domains of `domains`, which map it:
/// it stops being a holder of its pages (read from `domains[0]`), is unmapped from every domain
/// and unpins what no other holder has, and its charge goes.
fn let_go(area: &Area, start: u64, domains: &[Arc<Domain>], runs: &mut PageRuns) {
    let Some(d0) = domains.first() else {
        return;
    };
    let mut pins = area.pages.lock_pins();
    pins.remove_holder(d0, start);
    match area.page_range(start) {
        Ok((_, npages)) => unfill(&mut pins, area, start, npages, domains, runs),
        // Every area of an IOAS with a domain is page aligned.
        Err(_) => {
            kernel::warn_on!(true);
        }
    }
    pins.uncharge();
}

/// Unmaps `area`, whose first IOVA is `start`, from `leaving`, a domain the IOAS is losing
/// while `d0` keeps mapping it. If `leaving` keeps part of it mapped, the pages get pins of
/// their own that are never dropped.
fn unmap_leaving(area: &Area, start: u64, leaving: &Domain, d0: &Domain, runs: &mut PageRuns) {
    // The length of an area mapped in a domain fits in a `usize`.
    if !unmap_exactly(leaving, start, (area.last - start + 1) as usize) {
        let npages = area.page_range(start).map_or(0, |(_, n)| n);
        pin_forever(&mut area.pages.lock_pins(), area, start, npages, d0, runs);
    }
}

/// Gives pins on the first `npages` pages of `area`, whose first IOVA is `start` and which
/// `from` maps, to no one: for pages a domain failed to unmap, which the pins the holders share
/// no longer cover once the holders let go of them. Called with the pages still pinned.
fn pin_forever(
    pins: &mut PinsLocked<'_>,
    area: &Area,
    start: u64,
    npages: usize,
    from: &Domain,
    runs: &mut PageRuns,
) {
    pins.keep_forever(&area.pages);
    let mut done = 0;
    while done < npages {
        let mut batch = PinBatch::new(runs, area.pages.writable());
        let iova = start + (done * PAGE_SIZE) as u64;
        // SAFETY: Every page `from` maps for an area is pinned: by the pins the holders share,
        // which the area is one of or has just stopped being one of without unpinning yet
        // (its callers unpin only after this returns), or by the batches `fill` handed over
        // before it failed. Nothing unpins them while the caller holds the pins lock.
        match unsafe { pin_from_domain(from, iova, &mut batch, npages - done) } {
            Ok(got) if got > 0 => done += got,
            _ => {
                pr_err!("iommufd: could not keep the pages of a mapping pinned\n");
                batch.hand_over();
                return;
            }
        }
        batch.hand_over();
    }
}

/// Unmaps `size` bytes at `iova` from `domain`; whether the IOMMU driver unmapped all of them.
///
/// Every range unmapped here was mapped whole, with the domain's alignment, so a short unmap is
/// a bug (ours or the IOMMU driver's); it is reported with a warning, and the caller keeps the
/// memory.
fn unmap_exactly(domain: &Domain, iova: u64, size: usize) -> bool {
    let unmapped = domain.unmap(iova, size);
    if !kernel::warn_on!(unmapped != size) {
        return true;
    }
    pr_err!(
        "iommufd: the IOMMU unmapped {unmapped:#x} of {size:#x} bytes at IOVA {iova:#x}; \
         the pages stay pinned\n"
    );
    false
}

/// The IOVA bookkeeping of one IOAS.
pub(crate) struct IovaSpace {
    /// The mappings, by first IOVA. They never overlap each other or a reserved range.
    areas: RBTree<u64, Area>,
    /// Ranges that may not be mapped, sorted by start; they may overlap or touch. The union of
    /// `reserved_by`.
    reserved: KVec<IovaRange>,
    /// The reserved ranges, each with its owner (a domain's aperture, a device's regions).
    reserved_by: KVec<(usize, IovaRange)>,
    /// The I/O page tables mirroring the areas. While there is one, every area is mapped in
    /// each of them and is a holder of its pages (see [`Pages`]).
    domains: KVec<Arc<Domain>>,
    /// Room for one batch of pins on their way into or out of the domains: `Some` exactly while
    /// there is a domain, so that unmapping never needs to allocate.
    runs: Option<PageRuns>,
    /// The alignment the domains need: their smallest page size (1 without a domain).
    domain_alignment: u64,
    /// Ranges kernel-chosen IOVAs must come from, sorted, not overlapping; empty: no limit.
    allowed: KVVec<IovaRange>,
    /// The alignment every mapping must have.
    alignment: u64,
    /// Whether mappings may use pages larger than `PAGE_SIZE` (`IOMMU_OPTION_HUGE_PAGES`).
    large_pages: bool,
}

impl IovaSpace {
    /// An empty space: the whole 64-bit range is usable.
    pub(crate) fn new() -> Self {
        Self {
            areas: RBTree::new(),
            reserved: KVec::new(),
            reserved_by: KVec::new(),
            domains: KVec::new(),
            runs: None,
            domain_alignment: 1,
            allowed: KVVec::new(),
            alignment: 1,
            large_pages: true,
        }
    }

    /// Whether mappings may use pages larger than `PAGE_SIZE`.
    pub(crate) fn large_pages(&self) -> bool {
        self.large_pages
    }

    /// Allows or forbids pages larger than `PAGE_SIZE`.
    ///
    /// Forbidding them fails with `EINVAL` while a domain holds mappings (which may already use
    /// large pages), as upstream; it also makes every mapping page aligned, so it fails with
    /// `EADDRINUSE` while a mapping is not.
    pub(crate) fn set_large_pages(&mut self, enable: bool) -> Result {
        if !enable && self.large_pages && !self.domains.is_empty() && !self.areas.is_empty() {
            return Err(EINVAL);
        }
        let alignment = if enable { 1 } else { PAGE };
        self.check_areas_aligned(alignment)?;
        self.large_pages = enable;
        self.alignment = alignment;
        Ok(())
    }

    /// `EADDRINUSE` if some area's IOVA, length or page offset is not a multiple of `alignment`.
    fn check_areas_aligned(&self, alignment: u64) -> Result {
        if alignment <= self.alignment() {
            return Ok(());
        }
        let mask = alignment - 1;
        let misaligned = self.areas.iter().any(|(start, area)| {
            start & mask != 0
                || (area.last - start + 1) & mask != 0
                || (area.start_byte as u64 % PAGE) & mask != 0
        });
        if misaligned {
            return Err(EADDRINUSE);
        }
        Ok(())
    }

    /// The alignment every mapping's IOVA, length and page offset must have: what the
    /// `IOMMU_OPTION_HUGE_PAGES` setting and the attached domains need.
    pub(crate) fn alignment(&self) -> u64 {
        self.alignment.max(self.domain_alignment)
    }

    /// The usable ranges, in ascending order.
    pub(crate) fn usable(&self) -> Holes<'_> {
        Holes::new(&self.reserved)
    }

    /// The area containing `iova`, or else the first one after it, as `(first, last)`.
    fn area_from(&self, iova: u64) -> Option<IovaRange> {
        let range = |start: &u64, area: &Area| IovaRange {
            start: *start,
            last: area.last,
        };
        match self.areas.cursor_lower_bound(&iova) {
            Some(cursor) => {
                let (start, area) = cursor.current();
                if *start != iova {
                    if let Some((prev, prev_area)) = cursor.peek_prev() {
                        if prev_area.last >= iova {
                            return Some(range(prev, prev_area));
                        }
                    }
                }
                Some(range(start, area))
            }
            None => {
                let cursor = self.areas.cursor_back()?;
                let (start, area) = cursor.current();
                (area.last >= iova).then(|| range(start, area))
            }
        }
    }

    /// The first used range (area or reserved) that ends at or after `iova`.
    fn used_from(&self, iova: u64) -> Option<IovaRange> {
        let reserved = self
            .reserved
            .iter()
            .filter(|r| r.last >= iova)
            .min_by_key(|r| r.start)
            .copied();
        match (self.area_from(iova), reserved) {
            (Some(a), Some(r)) => Some(if r.start < a.start { r } else { a }),
            (a, r) => a.or(r),
        }
    }

    /// Checks that `length` bytes may be mapped at the caller-chosen IOVA `iova`.
    fn check_fixed(&self, iova: u64, length: u64) -> Result {
        if iova & (self.alignment() - 1) != 0 {
            return Err(EINVAL);
        }
        let range = IovaRange::from_length(iova, length)?;
        if self.reserved.iter().any(|r| r.overlaps(&range)) {
            return Err(EINVAL);
        }
        match self.area_from(range.start) {
            Some(area) if area.start <= range.last => Err(EEXIST),
            _ => Ok(()),
        }
    }

    /// Chooses an IOVA for `length` bytes of memory at user address `addr`.
    ///
    /// The IOVA keeps as much of `addr`'s alignment as the length can use (up to
    /// [`MAX_ALIGNMENT`]), so that huge pages can back the mapping, and `addr`'s offset in its
    /// page. It is never 0, and never in the first or last page of the space.
    fn alloc_iova(&self, addr: u64, length: u64) -> Result<u64> {
        if length == 0 || length >= u64::MAX / 2 {
            return Err(EOVERFLOW);
        }
        let page_offset = addr % PAGE;
        let pow = length.next_power_of_two();
        let mut align = if addr == 0 {
            pow
        } else {
            pow.min(1 << addr.trailing_zeros())
        };
        align = align.min(MAX_ALIGNMENT);
        if align < self.alignment() {
            return Err(EINVAL);
        }

        let whole = IovaRange {
            start: PAGE,
            last: u64::MAX - PAGE,
        };
        for span in AllowedSpans::new(&self.allowed, whole) {
            let mut start = span.start;
            if !fits(&mut start, span.last, length, align, page_offset) {
                continue;
            }
            let mut pos = span.start;
            loop {
                let used = self.used_from(pos).filter(|u| u.start <= span.last);
                let hole_last = match used {
                    Some(u) if u.start <= pos => None,
                    Some(u) => Some(u.start - 1),
                    None => Some(span.last),
                };
                if let Some(last) = hole_last {
                    let mut start = pos;
                    if fits(&mut start, last, length, align, page_offset) {
                        return Ok(start);
                    }
                }
                match used {
                    Some(u) if u.last < span.last => pos = u.last + 1,
                    _ => break,
                }
            }
        }
        Err(ENOSPC)
    }

    /// Maps `segments`, back to back, at `iova` or, if `None`, at an IOVA the kernel chooses.
    /// `length` is their total length. Returns the IOVA.
    ///
    /// Either every segment is mapped or none is. A single segment costs one allocation (the
    /// tree node); more need a vector of nodes.
    pub(crate) fn map(
        &mut self,
        iova: Option<u64>,
        segments: &[Segment],
        length: u64,
        prot: Prot,
    ) -> Result<u64> {
        let first_node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let mut more_nodes = KVec::new();
        for _ in 1..segments.len() {
            more_nodes.push(
                RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?,
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        if length & (self.alignment() - 1) != 0 || length == 0 {
            return Err(EINVAL);
        }
        let first = segments.first().ok_or(EINVAL)?;
        let iova = match iova {
            Some(iova) => {
                self.check_fixed(iova, length)?;
                iova
            }
            None => self.alloc_iova(first.pages.addr(first.start_byte), length)?,
        };

        // Check every segment before inserting any. Each becomes an area of its own, so each
        // needs the alignment, not only the whole: a copy of byte-granular areas into an IOAS
        // with a domain would otherwise make areas no domain can map or unmap exactly.
        let mask = self.alignment() - 1;
        let mut next = iova;
        for seg in segments {
            if prot.write && !seg.pages.writable() {
                return Err(EPERM);
            }
            if next & mask != 0
                || seg.length & mask != 0
                || (seg.start_byte as u64 % PAGE) & mask != 0
            {
                return Err(EINVAL);
            }
            let range = IovaRange::from_length(next, seg.length)?;
            let last_page = (seg.start_byte as u64)
                .checked_add(seg.length - 1)
                .ok_or(EOVERFLOW)?
                / PAGE;
            if last_page >= seg.pages.npages() as u64 {
                return Err(EOVERFLOW);
            }
            next = range.last.wrapping_add(1);
        }

        let mut next = iova;
        let nodes = Iterator::chain(core::iter::once(first_node), more_nodes);
        for (seg, node) in segments.iter().zip(nodes) {
            let last = next + (seg.length - 1);
            let area = Area {
                last,
                pages: seg.pages.clone(),
                start_byte: seg.start_byte,
                prot,
            };
            if let Err(e) = self.acquire(next, &area) {
                // Take back the areas of the earlier segments.
                let mut pos = iova;
                while pos != next {
                    if let Some(done) = self.areas.remove(&pos) {
                        self.release(pos, &done);
                        pos = done.last.wrapping_add(1);
                    } else {
                        break;
                    }
                }
                return Err(e);
            }
            self.areas.insert(node.into_node(next, area));
            next = last.wrapping_add(1);
        }
        Ok(iova)
    }

    /// The most bytes one call into the IOMMU driver may map (see [`map_run`]).
    fn map_chunk(&self) -> usize {
        if self.large_pages {
            usize::MAX
        } else {
            PAGE_SIZE
        }
    }

    /// Makes a new area, whose first IOVA is `start`, visible to the domains: pins its pages
    /// and maps them in each. Nothing to do without a domain. All or nothing.
    fn acquire(&mut self, start: u64, area: &Area) -> Result {
        let chunk = self.map_chunk();
        match self.runs.as_mut() {
            Some(runs) if !self.domains.is_empty() => fill(area, start, &self.domains, runs, chunk),
            _ => Ok(()),
        }
    }

    /// Undoes [`Self::acquire`] for an area leaving the IOAS: unmaps it from every domain and
    /// drops its pins.
    fn release(&mut self, start: u64, area: &Area) {
        if let Some(runs) = self.runs.as_mut() {
            let_go(area, start, &self.domains, runs);
        }
    }

    /// Adds `domain` to the I/O page tables that mirror the IOAS: reserves the IOVAs outside its
    /// aperture, pins the areas' pages if it is the first, and maps every area into it.
    ///
    /// `EADDRINUSE` if an area or an allowed range lies outside the aperture, or an area is not
    /// aligned to the domain's smallest page; `EFAULT`/`ENOMEM` from pinning. All or nothing.
    pub(crate) fn add_domain(&mut self, domain: Arc<Domain>) -> Result {
        let min_page = 1u64 << domain.pgsize_bitmap().trailing_zeros();
        let alignment = self.domain_alignment.max(min_page);
        self.check_areas_aligned(alignment)?;

        let (ap_start, ap_end) = domain.aperture();
        let mut outside = KVec::new();
        if ap_start > 0 {
            outside.push(
                IovaRange {
                    start: 0,
                    last: ap_start - 1,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        if ap_end < u64::MAX {
            outside.push(
                IovaRange {
                    start: ap_end + 1,
                    last: u64::MAX,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        let owner = Arc::as_ptr(&domain) as usize;
        // Everything that can fail on its own before the reservation, which is undone below.
        self.domains.reserve(1, GFP_KERNEL_ACCOUNT)?;
        self.add_reserved(owner, &outside)?;

        let first = self.domains.is_empty();
        if first {
            match PageRuns::new(RUNS_PER_BATCH) {
                Ok(runs) => self.runs = Some(runs),
                Err(e) => {
                    self.remove_reserved(owner);
                    return Err(e);
                }
            }
        }
        let chunk = self.map_chunk();
        let mut done: Option<u64> = None;
        let mut res = Ok(());
        if let Some(runs) = self.runs.as_mut() {
            let only = core::slice::from_ref(&domain);
            for (start, area) in self.areas.iter() {
                res = match self.domains.first() {
                    None => fill(area, *start, only, runs, chunk),
                    Some(d0) => mirror(area, *start, d0, &domain, runs, chunk),
                };
                if res.is_err() {
                    break;
                }
                done = Some(*start);
            }
            if res.is_err() {
                for (start, area) in self.areas.iter() {
                    if done.is_none_or(|last_done| *start > last_done) {
                        break;
                    }
                    match self.domains.first() {
                        None => let_go(area, *start, only, runs),
                        Some(d0) => unmap_leaving(area, *start, &domain, d0, runs),
                    }
                }
            }
        }
        if let Err(e) = res {
            if first {
                self.runs = None;
            }
            self.remove_reserved(owner);
            return Err(e);
        }
        // Capacity was reserved above.
        self.domains.push(domain, GFP_KERNEL_ACCOUNT)?;
        self.domain_alignment = alignment;
        Ok(())
    }

    /// Removes `domain` (added by [`Self::add_domain`]): unmaps every area from it and, if it
    /// was the last, unpins the pages.
    pub(crate) fn remove_domain(&mut self, domain: &Arc<Domain>) {
        let Some(index) = self.domains.iter().position(|d| Arc::ptr_eq(d, domain)) else {
            return;
        };
        let Ok(domain) = self.domains.remove(index) else {
            return;
        };
        if let Some(runs) = self.runs.as_mut() {
            match self.domains.first() {
                None => {
                    let only = core::slice::from_ref(&domain);
                    for (start, area) in self.areas.iter() {
                        let_go(area, *start, only, runs);
                    }
                }
                Some(d0) => {
                    for (start, area) in self.areas.iter() {
                        if index == 0 {
                            // Readers of the area's pins must not find them in a domain
                            // about to unmap them.
                            area.pages.lock_pins().move_holder(&domain, d0, *start);
                        }
                        unmap_leaving(area, *start, &domain, d0, runs);
                    }
                }
            }
        }
        if self.domains.is_empty() {
            self.runs = None;
        }
        self.remove_reserved(Arc::as_ptr(&domain) as usize);
        self.domain_alignment = self
            .domains
            .iter()
            .map(|d| 1u64 << d.pgsize_bitmap().trailing_zeros())
            .max()
            .unwrap_or(1);
    }

    /// Reserves `ranges` on behalf of `owner`. `EADDRINUSE` if an area or an allowed range
    /// overlaps one of them; then nothing is reserved.
    pub(crate) fn add_reserved(&mut self, owner: usize, ranges: &[IovaRange]) -> Result {
        for r in ranges {
            if self.allowed.iter().any(|a| a.overlaps(r)) {
                return Err(EADDRINUSE);
            }
            if matches!(self.area_from(r.start), Some(a) if a.start <= r.last) {
                return Err(EADDRINUSE);
            }
        }
        self.reserved_by.reserve(ranges.len(), GFP_KERNEL_ACCOUNT)?;
        self.reserved.reserve(ranges.len(), GFP_KERNEL_ACCOUNT)?;
        for r in ranges {
            self.reserved_by.push((owner, *r), GFP_KERNEL_ACCOUNT)?;
            insert_sorted(&mut self.reserved, *r);
        }
        Ok(())
    }

    /// Drops every range `owner` reserved.
    pub(crate) fn remove_reserved(&mut self, owner: usize) {
        self.reserved_by.retain(|(o, _)| *o != owner);
        self.reserved.clear();
        for (_, r) in self.reserved_by.iter() {
            // `reserved` had room for all of these before, and clearing keeps its capacity.
            insert_sorted(&mut self.reserved, *r);
        }
    }

    /// The memory mapped at `range`, which areas must cover without a gap (`ENOENT` otherwise).
    pub(crate) fn segments(&self, range: IovaRange) -> Result<KVec<Segment>> {
        let mut segments = KVec::new();
        let mut cur = range.start;
        let mut span = self
            .area_from(cur)
            .filter(|a| a.start <= cur)
            .ok_or(ENOENT)?;
        loop {
            let area = self.areas.get(&span.start).ok_or(ENOENT)?;
            let last = range.last.min(span.last);
            // `cur - span.start` is below the area's length, which fits in a `usize`.
            let start_byte = area.start_byte + (cur - span.start) as usize;
            segments.push(
                Segment {
                    pages: area.pages.clone(),
                    start_byte,
                    length: last - cur + 1,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
            if range.last <= span.last {
                return Ok(segments);
            }
            cur = span.last + 1;
            span = self
                .area_from(cur)
                .filter(|a| a.start == cur)
                .ok_or(ENOENT)?;
        }
    }

    /// Unmaps every area inside `range`. Returns the number of bytes unmapped, modulo 2^64 (the
    /// whole space is 2^64 bytes, one more than a `u64` holds), as the C driver counts them.
    ///
    /// An area only partly inside `range` stops the walk with `ENOENT`; the areas before it stay
    /// unmapped, as in the C driver.
    pub(crate) fn unmap(&mut self, range: IovaRange) -> Result<u64> {
        let mut unmapped = 0u64;
        let mut pos = range.start;
        while let Some(area) = self.area_from(pos).filter(|a| a.start <= range.last) {
            if area.start < range.start || area.last > range.last {
                return Err(ENOENT);
            }
            if let Some(removed) = self.areas.remove(&area.start) {
                self.release(area.start, &removed);
            }
            unmapped = unmapped.wrapping_add(area.last - area.start + 1);
            if area.last >= range.last {
                break;
            }
            pos = area.last + 1;
        }
        Ok(unmapped)
    }

    /// Replaces the allowed ranges. `ranges` must be sorted and not overlap.
    ///
    /// `EADDRINUSE` if one of them covers a reserved IOVA.
    pub(crate) fn set_allowed(&mut self, ranges: KVVec<IovaRange>) -> Result {
        if ranges
            .iter()
            .any(|a| self.reserved.iter().any(|r| r.overlaps(a)))
        {
            return Err(EADDRINUSE);
        }
        self.allowed = ranges;
        Ok(())
    }
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_iova)]
mod tests {
    use super::*;

    /// Shorthand for a range.
    fn r(start: u64, last: u64) -> IovaRange {
        IovaRange { start, last }
    }

    /// Checks that the holes of `reserved` are exactly `want`.
    fn check(reserved: &[IovaRange], want: &[IovaRange]) -> Result {
        let mut got = KVec::new();
        for hole in Holes::new(reserved) {
            got.push(hole, GFP_KERNEL)?;
        }
        assert_eq!(&got[..], want);
        Ok(())
    }

    #[test]
    fn no_reserved() -> Result {
        check(&[], &[r(0, u64::MAX)])
    }

    #[test]
    fn one_in_the_middle() -> Result {
        check(&[r(0x1000, 0x1fff)], &[r(0, 0xfff), r(0x2000, u64::MAX)])
    }

    #[test]
    fn at_both_ends() -> Result {
        check(
            &[r(0, 0xfff), r(0xffff_0000, u64::MAX)],
            &[r(0x1000, 0xfffe_ffff)],
        )
    }

    #[test]
    fn overlapping_and_touching() -> Result {
        check(
            &[
                r(0x1000, 0x2fff),
                r(0x2000, 0x3fff),
                r(0x2500, 0x2600),
                r(0x4000, 0x4fff),
            ],
            &[r(0, 0xfff), r(0x5000, u64::MAX)],
        )
    }

    #[test]
    fn everything_reserved() -> Result {
        check(&[r(0, u64::MAX)], &[])?;
        check(&[r(0, 5), r(6, u64::MAX)], &[])
    }

    #[test]
    fn single_iova_holes() -> Result {
        check(&[r(1, u64::MAX - 1)], &[r(0, 0), r(u64::MAX, u64::MAX)])
    }

    /// One segment of fresh, writable user memory at `uptr`.
    fn seg(uptr: u64, length: u64) -> Result<KVec<Segment>> {
        let (pages, start_byte) = Pages::new_user(uptr, length, true, None)?;
        let mut v = KVec::new();
        v.push(
            Segment {
                pages,
                start_byte,
                length,
            },
            GFP_KERNEL,
        )?;
        Ok(v)
    }

    const RW: Prot = Prot {
        read: true,
        write: true,
    };

    /// Maps `length` bytes at `iova` (or a kernel-chosen IOVA) from user address `uptr`.
    fn map(space: &mut IovaSpace, iova: Option<u64>, uptr: u64, length: u64) -> Result<u64> {
        space.map(iova, &seg(uptr, length)?, length, RW)
    }

    #[test]
    fn fixed_maps_must_not_overlap() -> Result {
        let mut s = IovaSpace::new();
        assert_eq!(map(&mut s, Some(0x10000), 0x1000, 0x2000)?, 0x10000);
        assert_eq!(
            map(&mut s, Some(0x11000), 0x1000, 0x1000).err(),
            Some(EEXIST)
        );
        assert_eq!(
            map(&mut s, Some(0xf000), 0x1000, 0x2000).err(),
            Some(EEXIST)
        );
        // Touching on both sides is fine.
        map(&mut s, Some(0xf000), 0x1000, 0x1000)?;
        map(&mut s, Some(0x12000), 0x1000, 0x1000)?;
        // Wrapping and empty ranges.
        assert_eq!(
            map(&mut s, Some(u64::MAX - 0xfff), 0x1000, 0x2000).err(),
            Some(EOVERFLOW)
        );
        assert_eq!(s.map(Some(0), &[], 0, RW).err(), Some(EINVAL));
        Ok(())
    }

    #[test]
    fn unmap_takes_whole_areas_only() -> Result {
        let mut s = IovaSpace::new();
        map(&mut s, Some(0x10000), 0x1000, 0x2000)?;
        map(&mut s, Some(0x12000), 0x1000, 0x1000)?;
        map(&mut s, Some(0x20000), 0x1000, 0x1000)?;
        // Part of an area.
        assert_eq!(s.unmap(r(0x10000, 0x10fff)), Err(ENOENT));
        assert_eq!(s.unmap(r(0x11000, 0x12fff)), Err(ENOENT));
        // Nothing there.
        assert_eq!(s.unmap(r(0x30000, 0x3ffff))?, 0);
        // Two whole areas and the gap after them.
        assert_eq!(s.unmap(r(0x10000, 0x1ffff))?, 0x3000);
        assert_eq!(s.unmap(r(0, u64::MAX))?, 0x1000);
        assert_eq!(s.unmap(r(0, u64::MAX))?, 0);
        Ok(())
    }

    #[test]
    fn kernel_chosen_iovas() -> Result {
        let mut s = IovaSpace::new();
        // Never in the first page; keeps the page alignment of the user address.
        assert_eq!(map(&mut s, None, 0x7000, 0x1000)?, 0x1000);
        assert_eq!(map(&mut s, None, 0x7000, 0x1000)?, 0x2000);
        // A huge-page-sized, huge-page-aligned buffer gets a huge-page-aligned IOVA (or a
        // page-aligned one without THP).
        let iova = map(&mut s, None, 0x4020_0000, 0x20_0000)?;
        assert_eq!(iova % MAX_ALIGNMENT, 0);
        assert!(iova >= 0x3000);
        // The offset in the page is kept.
        let iova = map(&mut s, None, 0x7123, 0x10)?;
        assert_eq!(iova % PAGE, 0x123);
        Ok(())
    }

    #[test]
    fn allowed_ranges_steer_kernel_choice() -> Result {
        let mut s = IovaSpace::new();
        let mut allowed = KVVec::new();
        allowed.push(r(0x10_0000, 0x10_ffff), GFP_KERNEL)?;
        allowed.push(r(0x20_0000, 0x2f_ffff), GFP_KERNEL)?;
        s.set_allowed(allowed)?;
        assert_eq!(map(&mut s, None, 0x1000, 0x1000)?, 0x10_0000);
        // Too big for the first range: goes to the second.
        assert_eq!(map(&mut s, None, 0x1000, 0x2_0000)?, 0x20_0000);
        // Too big for either.
        assert_eq!(map(&mut s, None, 0x1000, 0x20_0000).err(), Some(ENOSPC));
        // Fixed IOVAs are not limited by the allowed ranges.
        map(&mut s, Some(0x4000_0000), 0x1000, 0x1000)?;
        Ok(())
    }

    #[test]
    fn segments_need_contiguous_areas() -> Result {
        let mut s = IovaSpace::new();
        map(&mut s, Some(0x10000), 0x5000, 0x2000)?;
        map(&mut s, Some(0x12000), 0x9000, 0x1000)?;
        map(&mut s, Some(0x14000), 0x9000, 0x1000)?;
        // Across the first two areas, starting inside the first.
        let segs = s.segments(r(0x11800, 0x12fff))?;
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].start_byte, 0x1800);
        assert_eq!(segs[0].length, 0x800);
        assert_eq!(segs[1].start_byte, 0);
        assert_eq!(segs[1].length, 0x1000);
        // A gap at 0x13000.
        assert_eq!(s.segments(r(0x12000, 0x14fff)).err(), Some(ENOENT));
        assert_eq!(s.segments(r(0x9000, 0x10fff)).err(), Some(ENOENT));
        // Copying maps the same memory elsewhere, in one piece.
        let len = 0x1800;
        let iova = s.map(None, &segs, len, RW)?;
        assert_eq!(iova % PAGE, 0x800);
        Ok(())
    }

    #[test]
    fn copies_keep_every_area_aligned() -> Result {
        // Byte-granular areas are fine where nothing needs alignment...
        let mut src = IovaSpace::new();
        map(&mut src, Some(0x10000), 0x5000, 0x1800)?;
        map(&mut src, Some(0x11800), 0x9800, 0x800)?;
        let segs = src.segments(r(0x10000, 0x11fff))?;
        assert_eq!(segs.len(), 2);
        // ...but cannot be copied, even as an aligned whole, where pages are needed.
        let mut dst = IovaSpace::new();
        dst.set_large_pages(false)?;
        assert_eq!(dst.alignment(), PAGE);
        assert_eq!(
            dst.map(Some(0x20000), &segs, 0x2000, RW).err(),
            Some(EINVAL)
        );
        assert_eq!(dst.map(None, &segs, 0x2000, RW).err(), Some(EINVAL));
        assert_eq!(dst.areas.iter().count(), 0);
        // An aligned part of the first area can.
        let segs = src.segments(r(0x10000, 0x10fff))?;
        assert_eq!(dst.map(Some(0x20000), &segs, 0x1000, RW)?, 0x20000);
        Ok(())
    }

    #[test]
    fn ranges_sort_by_start() -> Result {
        let mut v = KVVec::new();
        // Descending, ascending and shuffled runs, with a duplicate start.
        for i in (0..50u64).rev() {
            v.push(r(i * 0x1000, i * 0x1000 + 0xfff), GFP_KERNEL)?;
        }
        for i in 50..60u64 {
            v.push(r(i * 0x1000, i * 0x1000 + 0xfff), GFP_KERNEL)?;
        }
        v.push(r(0x7000, 0x7fff), GFP_KERNEL)?;
        crate::double_span::sort_by_start(&mut v);
        assert!(v.windows(2).all(|w| w[0].start <= w[1].start));
        assert_eq!(v.len(), 61);
        let mut empty: [IovaRange; 0] = [];
        crate::double_span::sort_by_start(&mut empty);
        let mut one = [r(5, 6)];
        crate::double_span::sort_by_start(&mut one);
        assert_eq!(one[0], r(5, 6));
        Ok(())
    }

    #[test]
    fn empty_space() -> Result {
        let space = IovaSpace::new();
        assert_eq!(space.alignment(), 1);
        assert_eq!(space.usable().count(), 1);
        Ok(())
    }

    /// The usable ranges of `s`.
    fn usable(s: &IovaSpace) -> Result<KVec<IovaRange>> {
        let mut v = KVec::new();
        for hole in s.usable() {
            v.push(hole, GFP_KERNEL)?;
        }
        Ok(v)
    }

    #[test]
    fn reservations_have_owners() -> Result {
        let mut s = IovaSpace::new();
        // Two owners, out of order, one with two ranges.
        s.add_reserved(2, &[r(0xfee0_0000, 0xfeef_ffff)])?;
        s.add_reserved(1, &[r(0, 0xfff), r(1 << 48, u64::MAX)])?;
        let holes = usable(&s)?;
        let want = [r(0x1000, 0xfedf_ffff), r(0xfef0_0000, (1 << 48) - 1)];
        assert_eq!(&holes[..], &want[..]);
        // Nothing can be mapped there, and no mapping may sit under a new reservation.
        assert_eq!(
            map(&mut s, Some(0xfee0_0000), 0x1000, 0x1000).err(),
            Some(EINVAL)
        );
        map(&mut s, Some(0x10_0000), 0x1000, 0x1000)?;
        assert_eq!(
            s.add_reserved(3, &[r(0x10_0000, 0x10_0fff)]),
            Err(EADDRINUSE)
        );
        // Dropping one owner's ranges leaves the other's.
        s.remove_reserved(1);
        let holes = usable(&s)?;
        assert_eq!(
            &holes[..],
            &[r(0, 0xfedf_ffff), r(0xfef0_0000, u64::MAX)][..]
        );
        s.remove_reserved(2);
        assert_eq!(s.usable().count(), 1);
        Ok(())
    }

    #[test]
    fn reservations_respect_allowed_ranges() -> Result {
        let mut s = IovaSpace::new();
        let mut allowed = KVVec::new();
        allowed.push(r(0x1000_0000, 0x1fff_ffff), GFP_KERNEL)?;
        s.set_allowed(allowed)?;
        assert_eq!(
            s.add_reserved(1, &[r(0x1800_0000, 0x1800_0fff)]),
            Err(EADDRINUSE)
        );
        s.add_reserved(1, &[r(0x2000_0000, 0x2000_0fff)])?;
        Ok(())
    }
}
