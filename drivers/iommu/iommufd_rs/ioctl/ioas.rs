// SPDX-License-Identifier: GPL-2.0

//! The ioctls on I/O address spaces: `IOMMU_IOAS_*` and the IOAS's `IOMMU_OPTION`.
//!
//! Each decodes and checks its argument in the C driver's order, so userspace sees the same
//! errors, and leaves the IOVA arithmetic to [`IovaSpace`](crate::io_pagetable::IovaSpace).

use core::mem::size_of;
use kernel::{
    fs::File,
    mm::pin::{
        file_is_dma_buf,
        file_is_memory, //
    },
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi::{
        iommu_iova_range,
        iommufd_ioas_map_flags_IOMMU_IOAS_MAP_FIXED_IOVA as MAP_FIXED_IOVA,
        iommufd_ioas_map_flags_IOMMU_IOAS_MAP_READABLE as MAP_READABLE,
        iommufd_ioas_map_flags_IOMMU_IOAS_MAP_WRITEABLE as MAP_WRITEABLE,
        iommufd_option_ops_IOMMU_OPTION_OP_GET as OP_GET,
        iommufd_option_ops_IOMMU_OPTION_OP_SET as OP_SET, //
    },
};

use crate::{
    coherency::{
        self,
        Mode, //
    },
    ctx::{
        Ctx,
        Object, //
    },
    double_span::sort_by_start,
    io_pagetable::{
        IovaRange,
        Pages,
        Prot, //
    },
    ioas::Ioas,
    ioctl::Ucmd,
    uapi, //
};

/// `IOMMU_IOAS_ALLOC`: creates an IOAS and returns its id. The flags may ask for a coherency
/// mode (our extension).
pub(crate) fn alloc(ctx: &Ctx, cmd: &mut uapi::IoasAlloc, ucmd: &Ucmd) -> Result {
    if cmd.0.flags & !coherency::FLAGS != 0 {
        return Err(EOPNOTSUPP);
    }
    let mode = Mode::from_flags(cmd.0.flags, Mode::Auto)?;
    let slot = ctx.objects.reserve()?;
    let ioas = Ioas::new(mode)?;
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
        let space = ioas.lock_iova();
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

/// Every flag `IOMMU_IOAS_MAP` and `IOMMU_IOAS_COPY` accept.
const MAP_FLAGS: u32 = MAP_FIXED_IOVA | MAP_WRITEABLE | MAP_READABLE;

/// The access rights asked for by map `flags`; `EINVAL` if neither read nor write.
fn map_prot(flags: u32) -> Result<Prot> {
    let prot = Prot {
        read: flags & MAP_READABLE != 0,
        write: flags & MAP_WRITEABLE != 0,
    };
    if !prot.read && !prot.write {
        return Err(EINVAL);
    }
    Ok(prot)
}

/// The checks every map-like command starts with, in the C driver's order: unknown flags
/// (`EOPNOTSUPP`), an IOVA or length that does not fit (`EOVERFLOW`), no access right (`EINVAL`).
/// Returns the access rights.
fn check_map_args(flags: u32, values: &[u64]) -> Result<Prot> {
    if flags & !MAP_FLAGS != 0 {
        return Err(EOPNOTSUPP);
    }
    if values.contains(&u64::MAX) {
        return Err(EOVERFLOW);
    }
    map_prot(flags)
}

/// The caller-chosen IOVA if map `flags` ask for one.
fn fixed_iova(flags: u32, iova: u64) -> Option<u64> {
    (flags & MAP_FIXED_IOVA != 0).then_some(iova)
}

/// `IOMMU_IOAS_MAP`: maps user memory into an IOAS.
pub(crate) fn map(ctx: &Ctx, cmd: &mut uapi::IoasMap, ucmd: &Ucmd) -> Result {
    let c = &mut cmd.0;
    if c.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let prot = check_map_args(c.flags, &[c.iova, c.length])?;
    let ioas = ctx.objects.get::<Ioas>(c.ioas_id)?;

    let (pages, start_byte) = Pages::new_user(c.user_va, c.length, prot.write, Some(ctx.payer()?))?;
    c.iova = ioas.map_pages(
        fixed_iova(c.flags, c.iova),
        pages,
        start_byte,
        c.length,
        prot,
    )?;
    // As in the C driver, the mapping stays if the answer cannot be written back.
    ucmd.respond(cmd)
}

/// `IOMMU_IOAS_MAP_FILE`: maps part of a file (a memfd) into an IOAS.
///
/// Only files that are memory (memfd and other shmem files, hugetlbfs) are accepted (`EINVAL`
/// otherwise), at once rather than when something first pins the pages as in the C driver: the
/// mapping keeps a reference on its file, so the `/dev/iommu` file itself or a VFIO device file
/// mapped here would keep its own context, or device, alive forever. dma-buf files are refused
/// with `EOPNOTSUPP`, the C driver's answer for a dma-buf it cannot map (it maps only VFIO PCI
/// BAR dma-bufs, which this driver does not do yet).
pub(crate) fn map_file(ctx: &Ctx, cmd: &mut uapi::IoasMapFile, ucmd: &Ucmd) -> Result {
    let c = &mut cmd.0;
    let prot = check_map_args(c.flags, &[c.iova, c.length])?;
    let ioas = ctx.objects.get::<Ioas>(c.ioas_id)?;

    IovaRange::from_length(c.start, c.length)?;
    // SAFETY: This runs in an ioctl on /dev/iommu, which takes its own file with `fdget()`: no
    // `fdget_pos()` is active on this thread, and the file is only used for its memory.
    let file = unsafe { File::fget_in_ioctl(c.fd) }?;
    if file_is_dma_buf(&file) {
        return Err(EOPNOTSUPP);
    }
    if !file_is_memory(&file) {
        return Err(EINVAL);
    }
    let (pages, start_byte) =
        Pages::new_file(file, c.start, c.length, prot.write, Some(ctx.payer()?))?;
    c.iova = ioas.map_pages(
        fixed_iova(c.flags, c.iova),
        pages,
        start_byte,
        c.length,
        prot,
    )?;
    ucmd.respond(cmd)
}

/// `IOMMU_IOAS_UNMAP`: removes whole mappings from an IOAS.
///
/// `iova == 0, length == u64::MAX` removes every mapping and succeeds even if there is none;
/// otherwise a range that removes nothing fails with `ENOENT`. The number of bytes removed is
/// returned in `length`.
pub(crate) fn unmap(ctx: &Ctx, cmd: &mut uapi::IoasUnmap, ucmd: &Ucmd) -> Result {
    let ioas = ctx.objects.get::<Ioas>(cmd.0.ioas_id)?;
    let unmapped = if cmd.0.iova == 0 && cmd.0.length == u64::MAX {
        ioas.lock_iova().unmap(IovaRange {
            start: 0,
            last: u64::MAX,
        })?
    } else {
        if cmd.0.iova == u64::MAX || cmd.0.length == u64::MAX {
            return Err(EOVERFLOW);
        }
        let range = IovaRange::from_length(cmd.0.iova, cmd.0.length)?;
        let unmapped = ioas.lock_iova().unmap(range)?;
        if unmapped == 0 {
            return Err(ENOENT);
        }
        unmapped
    };
    cmd.0.length = unmapped;
    ucmd.respond(cmd)
}

/// Reads `num` IOVA ranges from the user array at `uptr`, sorted by start.
///
/// `EINVAL` for a range whose start is not below its last IOVA, or that overlaps another.
fn load_ranges(uptr: u64, num: u32) -> Result<KVVec<IovaRange>> {
    let len = (num as usize)
        .checked_mul(size_of::<iommu_iova_range>())
        .ok_or(EOVERFLOW)?;
    let mut reader = UserSlice::new(UserPtr::from_addr(uptr as usize), len).reader();
    let mut ranges = KVVec::new();
    for _ in 0..num {
        let user: uapi::IovaRange = reader.read()?;
        if user.0.start >= user.0.last {
            return Err(EINVAL);
        }
        let range = IovaRange {
            start: user.0.start,
            last: user.0.last,
        };
        // Charged to the caller; a size the allocator cannot give is ENOMEM, not a warning.
        ranges.push(range, GFP_KERNEL_ACCOUNT | __GFP_NOWARN)?;
    }
    // Sorted and checked in O(n log n) whatever order userspace gave them in.
    sort_by_start(&mut ranges);
    if ranges.windows(2).any(|w| w[0].last >= w[1].start) {
        return Err(EINVAL);
    }
    Ok(ranges)
}

/// `IOMMU_IOAS_ALLOW_IOVAS`: sets the ranges kernel-chosen IOVAs must come from.
pub(crate) fn allow_iovas(ctx: &Ctx, cmd: &mut uapi::IoasAllowIovas, _ucmd: &Ucmd) -> Result {
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let ioas = ctx.objects.get::<Ioas>(cmd.0.ioas_id)?;
    let ranges = load_ranges(cmd.0.allowed_iovas, cmd.0.num_iovas)?;
    let mut space = ioas.lock_iova();
    space.set_allowed(ranges)
}

/// `IOMMU_IOAS_COPY`: maps memory already mapped in one IOAS into another (or the same) one.
///
/// The source range must be covered by mappings without a gap; its memory is shared, not copied.
pub(crate) fn copy(ctx: &Ctx, cmd: &mut uapi::IoasCopy, ucmd: &Ucmd) -> Result {
    let c = &mut cmd.0;
    let prot = check_map_args(c.flags, &[c.length, c.src_iova, c.dst_iova])?;
    let segments = {
        let src = ctx.objects.get::<Ioas>(c.src_ioas_id)?;
        let range = IovaRange::from_length(c.src_iova, c.length)?;
        let space = src.lock_iova();
        space.segments(range)?
    };
    let dst = ctx.objects.get::<Ioas>(c.dst_ioas_id)?;
    let fixed = fixed_iova(c.flags, c.dst_iova);
    c.dst_iova = dst.lock_iova().map(fixed, &segments, c.length, prot)?;
    ucmd.respond(cmd)
}

/// `IOMMU_OPTION_HUGE_PAGES` on an IOAS: whether mappings may use pages larger than `PAGE_SIZE`
/// (1, the default) or not (0; mappings must then be page aligned).
pub(crate) fn option_huge_pages(ctx: &Ctx, cmd: &mut uapi::IommuOption) -> Result {
    let ioas = ctx.objects.get::<Ioas>(cmd.0.object_id)?;
    let mut space = ioas.lock_iova();
    match u32::from(cmd.0.op) {
        OP_GET => {
            cmd.0.val64 = u64::from(space.large_pages());
            Ok(())
        }
        OP_SET => match cmd.0.val64 {
            0 => space.set_large_pages(false),
            1 => space.set_large_pages(true),
            _ => Err(EINVAL),
        },
        _ => Err(EOPNOTSUPP),
    }
}
