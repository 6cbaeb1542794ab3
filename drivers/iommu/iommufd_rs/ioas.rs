// SPDX-License-Identifier: GPL-2.0

//! The I/O address space (IOAS) object and its ioctls.
//!
//! An IOAS is the set of IOVA → memory mappings that every I/O page table attached to it mirrors.
//! In this version it holds its IOVA bookkeeping ([`IovaSpace`]) and answers
//! `IOMMU_IOAS_IOVA_RANGES`; mapping arrives with the memory half of the driver.

use core::mem::size_of;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi::iommu_iova_range,
};

use crate::{
    ctx::Ctx,
    io_pagetable::IovaSpace,
    ioctl::Ucmd,
    object::Object,
    uapi, //
};

/// An I/O address space.
#[pin_data]
pub(crate) struct Ioas {
    /// The IOVA bookkeeping.
    #[pin]
    iova: Mutex<IovaSpace>,
}

impl Ioas {
    /// Creates an empty IOAS.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                iova <- new_mutex!(IovaSpace::new(), "Ioas::iova"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }
}

/// `IOMMU_IOAS_ALLOC`: creates an IOAS and returns its id.
pub(crate) fn alloc(ctx: &Ctx, cmd: &mut uapi::IoasAlloc, ucmd: &Ucmd) -> Result {
    if cmd.0.flags != 0 {
        return Err(EOPNOTSUPP);
    }
    let slot = ctx.objects.reserve()?;
    let ioas = Ioas::new()?;
    cmd.0.out_ioas_id = slot.id();
    // The id becomes visible only once userspace has been told it; if that fails, dropping the
    // slot gives the id back and the IOAS is freed.
    ucmd.respond(cmd)?;
    slot.publish(Object::Ioas(ioas))
}

/// `IOMMU_IOAS_IOVA_RANGES`: reports the usable IOVA ranges of an IOAS.
///
/// At most `num_iovas` ranges are written to `allowed_iovas`; `num_iovas` is then set to the
/// total, and the call fails with `EMSGSIZE` after writing the struct back if they did not all
/// fit.
pub(crate) fn iova_ranges(ctx: &Ctx, cmd: &mut uapi::IoasIovaRanges, ucmd: &Ucmd) -> Result {
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ioas = ctx.objects.get::<Ioas>(cmd.0.ioas_id)?;

    // Snapshot the ranges, so that user memory is not touched under the lock.
    let max = cmd.0.num_iovas as usize;
    let mut ranges = KVec::new();
    let (total, alignment) = {
        let space = ioas.iova.lock();
        let mut total = 0usize;
        for range in space.usable() {
            if total < max {
                ranges.push(range, GFP_KERNEL)?;
            }
            total += 1;
        }
        (total, space.alignment())
    };

    let len = ranges.len() * size_of::<iommu_iova_range>();
    let mut writer = UserSlice::new(UserPtr::from_addr(cmd.0.allowed_iovas as usize), len).writer();
    for range in &ranges {
        writer.write(&uapi::IovaRange(iommu_iova_range {
            start: range.start,
            last: range.last,
        }))?;
    }

    cmd.0.num_iovas = u32::try_from(total).map_err(|_| EOVERFLOW)?;
    cmd.0.out_iova_alignment = alignment;
    ucmd.respond(cmd)?;
    if total > max {
        return Err(EMSGSIZE);
    }
    Ok(())
}
