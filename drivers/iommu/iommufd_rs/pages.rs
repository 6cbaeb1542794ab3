// SPDX-License-Identifier: GPL-2.0

//! The memory behind mappings: user memory or a memory file, pinned while an I/O page table
//! needs it and charged to the process that mapped it.
//!
//! A [`Pages`] describes the memory of one `IOMMU_IOAS_MAP` or `IOMMU_IOAS_MAP_FILE`; the areas
//! `IOMMU_IOAS_COPY` makes share it. It pins nothing until an area over it is mapped in a
//! domain. Then the area's pages are pinned a bounded batch at a time ([`PinBatch`]), mapped,
//! and the pins handed over to the domains: from there on the I/O page table is the record of
//! which pages are pinned, and they are read back from it to be unpinned
//! ([`kernel::mm::pin::unpin_run`]). No bookkeeping grows with the size of a mapping.
//!
//! An area mapped so is a *holder* of its pages. Each page is pinned once however many holders
//! have it. When another area over the same pages is mapped (a copy), the pages some holder has
//! are read from that holder's page table, so both map the same memory whatever the process
//! did to its address space in between; only pages no holder has are pinned from the source. A
//! holder that lets go unpins only the pages no other holder has. The pages are charged to the
//! payer once, however many areas hold them.

use kernel::{
    alloc::KVVec,
    fs::File,
    iommu::domain::Domain,
    mm::pin::{
        PageRun,
        PinBatch,
        PinCharge, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex,
        MutexGuard, //
    },
};

/// The page size, as a file offset or IOVA quantity.
const PAGE: u64 = PAGE_SIZE as u64;

/// Where the memory behind a [`Pages`] lives.
enum Source {
    /// In the address space of the process that mapped it, from this page-aligned address.
    User {
        /// The address.
        uptr: usize,
    },
    /// In a file (a memfd, for QEMU's guest RAM), from this page-aligned offset. The reference
    /// keeps the file, and so its memory, alive while anything maps it.
    File {
        /// The file.
        file: ARef<File>,
        /// The offset.
        start: u64,
    },
}

/// The memory behind one or more areas (shared by the areas `IOMMU_IOAS_COPY` makes).
#[pin_data]
pub(crate) struct Pages {
    /// Where the memory is.
    source: Source,
    /// The number of pages.
    npages: usize,
    /// Whether the memory may be mapped writable.
    writable: bool,
    /// Who pays for the pages while they are pinned: the process that mapped them. `None` only
    /// for memory described by a kernel thread (the KUnit tests), which cannot be pinned.
    payer: Option<PinCharge>,
    /// The charge and the holders.
    #[pin]
    pins: Mutex<PinState>,
}

/// An area whose pages are pinned and mapped: pages `first..=last` of the [`Pages`] are mapped
/// in `domain` from IOVA `iova` on. Each page some holder has holds exactly one pin, which the
/// holders that have it share: the last of them to let go drops it.
struct Holder {
    /// One of the domains of the area's IOAS (its first).
    domain: Arc<Domain>,
    /// The IOVA of page `first`.
    iova: u64,
    /// The first page.
    first: usize,
    /// The last page.
    last: usize,
}

/// What [`Pages::pins`] protects.
struct PinState {
    /// How many holders there are, plus the pins kept forever: the pages are charged while it
    /// is not zero.
    users: usize,
    /// The areas whose pages are pinned and mapped, and whose domains can be read for them.
    holders: KVVec<Holder>,
}

/// The pins of a [`Pages`], locked: the proof its holders stay put while one is read.
pub(crate) struct PinsLocked<'a> {
    /// The memory.
    pages: &'a Pages,
    /// The locked state.
    state: MutexGuard<'a, PinState>,
}

impl PinsLocked<'_> {
    /// Counts a new user; the first charges every page to the payer.
    ///
    /// `ENOMEM` over the memlock limit, `EINVAL` for memory no process pays for; then nothing
    /// changes.
    pub(crate) fn charge(&mut self) -> Result {
        if self.state.users == 0 {
            let payer = self.pages.payer.as_ref().ok_or(EINVAL)?;
            payer.charge(self.pages.npages)?;
        }
        self.state.users += 1;
        Ok(())
    }

    /// Undoes [`Self::charge`]; the last user uncharges.
    pub(crate) fn uncharge(&mut self) {
        self.state.users -= 1;
        if self.state.users == 0 {
            if let Some(payer) = &self.pages.payer {
                payer.uncharge(self.pages.npages);
            }
        }
    }

    /// Keeps `pages` (which are these), their charge and whatever pins the caller leaves
    /// behind for as long as the system runs: for pages an IOMMU driver failed to unmap, which
    /// a device may still reach. Costs their memory and the payer's charge, which is better
    /// than letting a device write to freed memory.
    pub(crate) fn keep_forever(&mut self, pages: &Arc<Pages>) {
        self.state.users += 1;
        // Without this the charge would go with the last area over the pages.
        core::mem::forget(pages.clone());
    }

    /// Makes room for one more holder, so that [`Self::add_holder`] cannot fail.
    pub(crate) fn reserve_holder(&mut self) -> Result {
        // Sized by how many copies userspace makes: ENOMEM, never a warning, when too many.
        self.state
            .holders
            .reserve(1, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
        Ok(())
    }

    /// Records that pages `first..first + npages` are mapped in `domain` from `iova` on and
    /// pinned. [`Self::reserve_holder`] made room, so this does not fail; if it did, the caller
    /// must undo the mapping, since pages no holder has are unpinned by the next holder that
    /// lets go of them.
    pub(crate) fn add_holder(
        &mut self,
        domain: &Arc<Domain>,
        iova: u64,
        first: usize,
        npages: usize,
    ) -> Result {
        let holder = Holder {
            domain: domain.clone(),
            iova,
            first,
            last: first + npages - 1,
        };
        self.state
            .holders
            .push_within_capacity(holder)
            .map_err(|_| ENOMEM)
    }

    /// Forgets the holder mapped in `domain` at `iova`. Called before the holder unmaps.
    pub(crate) fn remove_holder(&mut self, domain: &Arc<Domain>, iova: u64) {
        let holders = &mut self.state.holders;
        if let Some(i) = holders
            .iter()
            .position(|h| h.iova == iova && Arc::ptr_eq(&h.domain, domain))
        {
            let _ = holders.remove(i);
        }
    }

    /// The holder mapped in `old` at `iova` is now read from `new`, which maps it too. Called
    /// before `old` unmaps it.
    pub(crate) fn move_holder(&mut self, old: &Arc<Domain>, new: &Arc<Domain>, iova: u64) {
        if let Some(h) = self
            .state
            .holders
            .iter_mut()
            .find(|h| h.iova == iova && Arc::ptr_eq(&h.domain, old))
        {
            h.domain = new.clone();
        }
    }

    /// The pages from `index` up to `end` (exclusive) that are alike to page `index`: up to
    /// where the holder that has page `index` stops having pages, or, if none has it, up to
    /// where the first holder after it starts. Returns that end, and for pages a holder has,
    /// the domain it maps them in and the IOVA of page `index` there.
    pub(crate) fn segment(&self, index: usize, end: usize) -> (usize, Option<(&Arc<Domain>, u64)>) {
        let holders = &self.state.holders;
        if let Some(h) = holders.iter().find(|h| h.first <= index && index <= h.last) {
            let iova = h.iova + ((index - h.first) * PAGE_SIZE) as u64;
            return (end.min(h.last + 1), Some((&h.domain, iova)));
        }
        let next = holders
            .iter()
            .filter(|h| h.first > index)
            .map(|h| h.first)
            .min()
            .unwrap_or(usize::MAX);
        (end.min(next), None)
    }

    /// Pins pages from page `index` on, which no holder has, into `batch` from the source: at
    /// most `count`, as many as fit. Returns how many, 0 only if `batch` is full.
    ///
    /// `EFAULT` if a page is not mapped (or is read-only and the pages are writable),
    /// `ENOMEM`, `EINTR`, `EINVAL` for memory described by a kernel thread. What was pinned
    /// before an error stays in `batch`.
    pub(crate) fn pin_from_source(
        &self,
        batch: &mut PinBatch<'_>,
        index: usize,
        count: usize,
    ) -> Result<usize> {
        let mut done = 0;
        let mut mm = None;
        while done < count {
            let i = index + done;
            let got = match &self.pages.source {
                Source::User { uptr } => {
                    if mm.is_none() {
                        let payer = self.pages.payer.as_ref().ok_or(EINVAL)?;
                        mm = Some(payer.mm().mmget_not_zero().ok_or(EFAULT)?);
                    }
                    let mm = mm.as_ref().ok_or(EFAULT)?;
                    batch.pin_user(mm, uptr + i * PAGE_SIZE, count - done)?
                }
                Source::File { file, start } => {
                    batch.pin_file(file, start + i as u64 * PAGE, count - done)?
                }
            };
            if got == 0 {
                break;
            }
            done += got;
        }
        Ok(done)
    }

    /// Calls `f(first, end)` for each range of pages from `index` up to `end` (exclusive)
    /// that no holder has: the pages whose pin is the caller's alone.
    pub(crate) fn for_each_unheld(
        &self,
        index: usize,
        end: usize,
        mut f: impl FnMut(usize, usize),
    ) {
        let mut i = index;
        while i < end {
            let (seg_end, held) = self.segment(i, end);
            if held.is_none() {
                f(i, seg_end);
            }
            i = seg_end;
        }
    }
}

/// The longest physically contiguous run of at most `max` (at least one) pages that `domain`
/// maps from `iova` on. `EFAULT` if the page at `iova` is missing, a bug: every page of an area
/// is mapped in every domain of its IOAS.
pub(crate) fn domain_run(domain: &Domain, iova: u64, max: usize) -> Result<PageRun> {
    let phys = domain.iova_to_phys(iova);
    if phys == 0 {
        pr_err!("iommufd: a page of a mapping is missing from its I/O page table\n");
        return Err(EFAULT);
    }
    let step = |n: usize| (n * PAGE_SIZE) as u64;
    let mut npages = 1;
    while npages < max && domain.iova_to_phys(iova + step(npages)) == phys + step(npages) {
        npages += 1;
    }
    Ok(PageRun { phys, npages })
}

/// Adds pins to `batch` on the `count` pages `domain` maps from `iova` on, read from it, as many
/// as fit. Returns how many. `EFAULT` if a page is missing from `domain` (a bug), `ENOMEM`.
///
/// # Safety
///
/// Each page `domain` maps in the range holds a pin, taken for writing if `batch`'s pins are,
/// that its owner keeps until this returns.
pub(crate) unsafe fn pin_from_domain(
    domain: &Domain,
    iova: u64,
    batch: &mut PinBatch<'_>,
    count: usize,
) -> Result<usize> {
    let mut done = 0;
    while done < count {
        let run = domain_run(domain, iova + (done * PAGE_SIZE) as u64, count - done)?;
        if !batch.can_add(run.phys) {
            break;
        }
        // SAFETY: Each page of the run holds a pin kept until we return (the caller's
        // guarantee), with the batch's `writable`; the run is physically contiguous (just
        // read).
        unsafe { batch.add_pins(run.phys, run.npages) }?;
        done += run.npages;
    }
    Ok(done)
}

impl Pages {
    /// Describes `length` bytes of memory from `source`, starting `start_byte` bytes into its
    /// first page.
    ///
    /// `EINVAL` if the length is zero or too large to describe.
    fn new(
        source: Source,
        start_byte: usize,
        length: u64,
        writable: bool,
        payer: Option<PinCharge>,
    ) -> Result<Arc<Self>> {
        let length = usize::try_from(length).map_err(|_| EINVAL)?;
        if length == 0 || length > usize::MAX - PAGE_SIZE {
            return Err(EINVAL);
        }
        Arc::pin_init(
            pin_init!(Self {
                source,
                npages: (start_byte + length).div_ceil(PAGE_SIZE),
                writable,
                payer,
                pins <- new_mutex!(
                    PinState {
                        users: 0,
                        holders: KVVec::new(),
                    },
                    "Pages::pins"
                ),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Locks the pins.
    pub(crate) fn lock_pins(&self) -> PinsLocked<'_> {
        PinsLocked {
            pages: self,
            state: self.pins.lock(),
        }
    }

    /// The number of pages.
    pub(crate) fn npages(&self) -> usize {
        self.npages
    }

    /// Whether the memory may be mapped writable.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Describes the user memory `[uptr, uptr + length)`. Returns it and the offset of `uptr` in
    /// its page.
    ///
    /// `EOVERFLOW` if the range wraps; `EINVAL` if it is empty or too large to describe.
    pub(crate) fn new_user(
        uptr: u64,
        length: u64,
        writable: bool,
        payer: Option<PinCharge>,
    ) -> Result<(Arc<Self>, usize)> {
        let uptr = usize::try_from(uptr).map_err(|_| EOVERFLOW)?;
        let len = usize::try_from(length).map_err(|_| EOVERFLOW)?;
        uptr.checked_add(len).ok_or(EOVERFLOW)?;
        let start_byte = uptr % PAGE_SIZE;
        let source = Source::User {
            uptr: uptr - start_byte,
        };
        Ok((
            Self::new(source, start_byte, length, writable, payer)?,
            start_byte,
        ))
    }

    /// Describes `length` bytes of `file` from offset `start`. Returns it and the offset of
    /// `start` in its page. The caller has checked that the range does not wrap.
    ///
    /// `EINVAL` if it is empty or too large to describe.
    pub(crate) fn new_file(
        file: ARef<File>,
        start: u64,
        length: u64,
        writable: bool,
        payer: Option<PinCharge>,
    ) -> Result<(Arc<Self>, usize)> {
        // Below `PAGE_SIZE`, so it fits.
        let start_byte = (start % PAGE) as usize;
        let source = Source::File {
            file,
            start: start - start_byte as u64,
        };
        Ok((
            Self::new(source, start_byte, length, writable, payer)?,
            start_byte,
        ))
    }

    /// The address (user address or file offset) of byte `offset` of the memory: what a
    /// kernel-chosen IOVA keeps the alignment of.
    pub(crate) fn addr(&self, offset: usize) -> u64 {
        match &self.source {
            Source::User { uptr } => (uptr + offset) as u64,
            Source::File { start, .. } => start + offset as u64,
        }
    }
}

/// A piece of memory to map: `length` bytes of `pages` from byte `start_byte` on.
pub(crate) struct Segment {
    /// The memory.
    pub(crate) pages: Arc<Pages>,
    /// Offset of the first byte in `pages`.
    pub(crate) start_byte: usize,
    /// The number of bytes.
    pub(crate) length: u64,
}
