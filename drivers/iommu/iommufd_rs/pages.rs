// SPDX-License-Identifier: GPL-2.0

//! The memory behind mappings: user memory or a memory file, pinned while an I/O page table
//! needs it and charged to the process that mapped it.
//!
//! A [`Pages`] describes the memory of one `IOMMU_IOAS_MAP` or `IOMMU_IOAS_MAP_FILE`; the areas
//! `IOMMU_IOAS_COPY` makes share it. It pins nothing until an area over it is mapped in a
//! domain, then pins every page once, however many areas and domains use them, and unpins them
//! with the last such use.

use kernel::{
    fs::File,
    mm::pin::{
        PinCharge,
        PinnedPages, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
};

/// The page size, as a file offset.
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
    /// The pins, taken while some area over these pages is mapped in an I/O page table.
    #[pin]
    pins: Mutex<PinState>,
}

/// The pins of a [`Pages`].
struct PinState {
    /// How many (area, IOAS with at least one domain) pairs need the pages pinned.
    users: usize,
    /// The pins: `Some` exactly while `users` is not zero.
    pinned: Option<PinnedPages>,
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
                pins <- new_mutex!(PinState { users: 0, pinned: None }, "Pages::pins"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Takes a pin reference: the first one pins every page and charges them to the payer.
    ///
    /// `EFAULT` if some page is not mapped (or is read-only and the pages are writable),
    /// `ENOMEM` over the memlock limit, `EINVAL` for a file that is not a memfd. On error
    /// nothing is pinned or charged.
    pub(crate) fn pin_get(&self) -> Result {
        let mut state = self.pins.lock();
        if state.users == 0 {
            let payer = self.payer.as_ref().ok_or(EINVAL)?;
            payer.charge(self.npages)?;
            let pinned = match &self.source {
                Source::User { uptr } => payer.mm().mmget_not_zero().ok_or(EFAULT).and_then(|mm| {
                    let mut pinned = PinnedPages::new(self.writable);
                    pinned.pin(&mm, *uptr, self.npages)?;
                    Ok(pinned)
                }),
                Source::File { file, start } => PinnedPages::pin_file(file, *start, self.npages),
            };
            match pinned {
                Ok(pinned) => state.pinned = Some(pinned),
                Err(e) => {
                    payer.uncharge(self.npages);
                    return Err(e);
                }
            }
        }
        state.users += 1;
        Ok(())
    }

    /// Keeps the pages pinned, and so allocated to us, for as long as the system runs: for pages
    /// an IOMMU driver failed to unmap, which a device may still reach. Costs their memory and
    /// the payer's charge, which is better than letting a device write to freed memory.
    pub(crate) fn pin_forever(self: &Arc<Self>) {
        self.pins.lock().users += 1;
        // Without this the pins would go when the last area over the pages does.
        core::mem::forget(self.clone());
    }

    /// Drops a pin reference taken by [`Self::pin_get`]; the last one unpins and uncharges.
    pub(crate) fn pin_put(&self) {
        let mut state = self.pins.lock();
        state.users -= 1;
        if state.users == 0 {
            drop(state.pinned.take());
            if let Some(payer) = &self.payer {
                payer.uncharge(self.npages);
            }
        }
    }

    /// Calls `f(page_index, phys, npages)` for each physically contiguous run of the pinned
    /// pages `first..first + count`, stopping at the first error.
    pub(crate) fn for_each_run(
        &self,
        first: usize,
        count: usize,
        mut f: impl FnMut(usize, u64, usize) -> Result,
    ) -> Result {
        let state = self.pins.lock();
        let pinned = state.pinned.as_ref().ok_or(EINVAL)?;
        let mut i = first;
        let end = first + count;
        while i < end {
            let start_phys = pinned.phys(i).ok_or(EINVAL)?;
            let mut n = 1;
            while i + n < end && pinned.phys(i + n) == Some(start_phys + (n * PAGE_SIZE) as u64) {
                n += 1;
            }
            f(i, start_phys, n)?;
            i += n;
        }
        Ok(())
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
