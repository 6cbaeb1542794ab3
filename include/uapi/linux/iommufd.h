/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * iommufd-rs: userspace ABI of /dev/iommu.
 *
 * This header replaces the kernel's include/uapi/linux/iommufd.h. Every
 * name, value, type and layout in it is the upstream ABI and must stay
 * binary identical to it (scripts/abi-check.sh proves this); only the
 * documentation text is this project's own.
 */
#ifndef _UAPI_IOMMUFD_H
#define _UAPI_IOMMUFD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IOMMUFD_TYPE (';')

/**
 * DOC: General ioctl format
 *
 * Every iommufd ioctl takes a single argument: a pointer to a command
 * structure whose first member is a __u32 ``size``. Userspace stores in it
 * the number of bytes of the structure it was compiled against, which lets
 * old binaries run on new kernels and new binaries on old kernels:
 *
 *  - Each command has a minimum size, the end of the last member that the
 *    first version of the command defined. A ``size`` below that minimum is
 *    rejected with EINVAL.
 *  - If ``size`` is larger than the structure the kernel knows, the extra
 *    tail must be all zero bytes; a zero tail is accepted and ignored,
 *    while any non-zero byte in it makes the call fail with E2BIG.
 *  - If ``size`` is smaller than the kernel's structure (but not below the
 *    minimum), the missing members are treated as zero.
 *  - Output members are written back only up to ``size`` bytes.
 *
 * Errno values that carry the same meaning in all commands:
 *
 *  - ENOTTY: the ioctl number is not an iommufd command at all.
 *  - EOPNOTSUPP: the command is known, but a flag bit, a type value or a
 *    reserved member holds something this kernel does not implement.
 *    Reserved members must be zero.
 *  - EINVAL: the request was understood, but a value in it is not valid
 *    (bad alignment, zero length, inconsistent combination, ...).
 *  - ENOENT: an object ID does not name an object of the expected kind, or
 *    an IOVA range does not correspond to an existing mapping.
 *  - EFAULT: the argument or a user pointer inside it cannot be accessed.
 *  - EOVERFLOW: an address plus length computation wrapped around, or a
 *    64-bit value does not fit the kernel's unsigned long.
 *  - ENOMEM: a kernel allocation failed.
 *
 * Individual commands document the further errno values they can return.
 */

/**
 * DOC: iommufd-rs extensions
 *
 * iommufd-rs adds a few interfaces of its own on top of the upstream ABI,
 * all about cache coherency of device DMA (PCIe No-Snoop):
 *
 *  - a coherency mode for each IOAS (IOMMU_IOAS_ALLOC_COHERENT,
 *    IOMMU_IOAS_ALLOC_NONCOHERENT; neither: "auto", upstream's behaviour) and
 *    each HWPT (IOMMU_HWPT_ALLOC_COHERENT, IOMMU_HWPT_ALLOC_NONCOHERENT;
 *    neither: its IOAS's mode), fixed when the object is created;
 *  - a per-device coherency report in IOMMU_GET_HW_INFO's out_capabilities
 *    (IOMMU_HW_CAP_ENFORCE_COHERENCY, IOMMU_HW_CAP_NO_SNOOP,
 *    IOMMU_HW_CAP_DEFAULT_COHERENT, IOMMU_HW_CAP_NONCOHERENT_DMA);
 *  - IOMMU_EXECUTE_WBINVD, a cache flush for userspace, allowed only while
 *    a device bound to the iommufd does non-coherent DMA;
 *  - IOMMU_TEST_DEVICE_NO_SNOOP and IOMMU_TEST_COHERENCY_EVENTS, test-only
 *    commands (kernels built with CONFIG_IOMMUFD_RS_TEST only) that declare
 *    a bound device able to issue No-Snoop DMA and read what the in-kernel
 *    coherency notifier published.
 *
 * The model: a device does non-coherent DMA exactly while it can issue
 * No-Snoop requests (a PCIe function whose Device Control "Enable No Snoop"
 * bit is not hard-wired to zero; a conventional PCI function cannot; a
 * non-PCI device is assumed to) and is attached to an HWPT that does not
 * make the IOMMU force snooping. An HWPT forces snooping ("enforces
 * coherency") when its mode is coherent or auto and the device's IOMMU can
 * (IOMMU_HW_CAP_ENFORCE_COHERENCY); a noncoherent HWPT never does. A
 * coherent IOAS or HWPT refuses, with EINVAL, a device that would do
 * non-coherent DMA through it.
 *
 * To stay clear of anything upstream adds later, the extensions follow
 * these allocation rules:
 *
 *  - Flag bits and capability bits are taken from the most significant bit
 *    of the relevant field downwards (bit 31 of a __u32 flags word, bit 63
 *    of a __u64 capability word, then the next lower bit, and so on), while
 *    upstream allocates from bit 0 upwards.
 *  - Command numbers come from a private range starting at 0xc0; test-only
 *    commands from 0xe0. Upstream numbers its commands from
 *    IOMMUFD_CMD_BASE (0x80) and currently uses 0x80 to 0x95, plus 0xa0 for
 *    its selftest command, so these ranges are far from where upstream
 *    grows.
 */

/**
 * enum - iommufd command numbers
 * @IOMMUFD_CMD_BASE: First command number of iommufd (0x80)
 * @IOMMUFD_CMD_DESTROY: Number of IOMMU_DESTROY
 * @IOMMUFD_CMD_IOAS_ALLOC: Number of IOMMU_IOAS_ALLOC
 * @IOMMUFD_CMD_IOAS_ALLOW_IOVAS: Number of IOMMU_IOAS_ALLOW_IOVAS
 * @IOMMUFD_CMD_IOAS_COPY: Number of IOMMU_IOAS_COPY
 * @IOMMUFD_CMD_IOAS_IOVA_RANGES: Number of IOMMU_IOAS_IOVA_RANGES
 * @IOMMUFD_CMD_IOAS_MAP: Number of IOMMU_IOAS_MAP
 * @IOMMUFD_CMD_IOAS_UNMAP: Number of IOMMU_IOAS_UNMAP
 * @IOMMUFD_CMD_OPTION: Number of IOMMU_OPTION
 * @IOMMUFD_CMD_VFIO_IOAS: Number of IOMMU_VFIO_IOAS
 * @IOMMUFD_CMD_HWPT_ALLOC: Number of IOMMU_HWPT_ALLOC
 * @IOMMUFD_CMD_GET_HW_INFO: Number of IOMMU_GET_HW_INFO
 * @IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING: Number of
 *                                       IOMMU_HWPT_SET_DIRTY_TRACKING
 * @IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP: Number of IOMMU_HWPT_GET_DIRTY_BITMAP
 * @IOMMUFD_CMD_HWPT_INVALIDATE: Number of IOMMU_HWPT_INVALIDATE
 * @IOMMUFD_CMD_FAULT_QUEUE_ALLOC: Number of IOMMU_FAULT_QUEUE_ALLOC
 * @IOMMUFD_CMD_IOAS_MAP_FILE: Number of IOMMU_IOAS_MAP_FILE
 * @IOMMUFD_CMD_VIOMMU_ALLOC: Number of IOMMU_VIOMMU_ALLOC
 * @IOMMUFD_CMD_VDEVICE_ALLOC: Number of IOMMU_VDEVICE_ALLOC
 * @IOMMUFD_CMD_IOAS_CHANGE_PROCESS: Number of IOMMU_IOAS_CHANGE_PROCESS
 * @IOMMUFD_CMD_VEVENTQ_ALLOC: Number of IOMMU_VEVENTQ_ALLOC
 * @IOMMUFD_CMD_HW_QUEUE_ALLOC: Number of IOMMU_HW_QUEUE_ALLOC
 * @IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA: Number of IOMMU_IOAS_NOIOMMU_GET_PA
 *
 * These are the _IOC_NR() parts of the ioctl numbers below; all of them use
 * IOMMUFD_TYPE as the ioctl type. Numbers are never reused.
 */
enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
	IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f,
	IOMMUFD_CMD_VIOMMU_ALLOC = 0x90,
	IOMMUFD_CMD_VDEVICE_ALLOC = 0x91,
	IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92,
	IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93,
	IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94,
	IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA = 0x95,
};

/**
 * struct iommu_destroy - ioctl(IOMMU_DESTROY)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_destroy)
 * @id: Handle of the object to release; any object type that userspace is
 *      allowed to destroy directly
 *
 * Releases the object named by @id and frees its ID. The call fails with
 * ENOENT when no object has that ID and with EBUSY while other objects still
 * hold a reference on it (for example an IOAS that a HWPT was created from);
 * those dependants have to be destroyed first.
 */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/**
 * enum iommufd_ioas_alloc_flags - Flags of IOMMU_IOAS_ALLOC (iommufd-rs)
 * @IOMMU_IOAS_ALLOC_COHERENT: Every HWPT of the IOAS keeps device DMA cache
 *                             coherent: it makes the IOMMU force snooping,
 *                             or, where the IOMMU cannot, only devices that
 *                             cannot issue No-Snoop may attach (EINVAL for
 *                             the others)
 * @IOMMU_IOAS_ALLOC_NONCOHERENT: No HWPT of the IOAS makes the IOMMU force
 *                                snooping, even where it could; devices that
 *                                can issue No-Snoop then do non-coherent DMA
 *
 * With neither flag the IOAS is "auto": each HWPT forces snooping exactly
 * when the IOMMU of the device it is made for can, as upstream does. Both
 * flags together give EINVAL.
 */
enum iommufd_ioas_alloc_flags {
	IOMMU_IOAS_ALLOC_COHERENT = 1U << 31,
	IOMMU_IOAS_ALLOC_NONCOHERENT = 1 << 30,
};

/**
 * struct iommu_ioas_alloc - ioctl(IOMMU_IOAS_ALLOC)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_ioas_alloc)
 * @flags: Upstream defines no flag; iommufd-rs accepts the coherency modes of
 *         enum iommufd_ioas_alloc_flags. Any other set bit gives EOPNOTSUPP
 * @out_ioas_id: Output: object ID assigned to the created IOAS
 *
 * Creates an I/O address space (IOAS): an empty, software-managed table that
 * translates IO virtual addresses (IOVAs) to user memory. Mappings are added
 * with IOMMU_IOAS_MAP and friends, and devices or HWPTs attached to the IOAS
 * see those mappings.
 */
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

/**
 * struct iommu_iova_range - ioctl(IOMMU_IOVA_RANGE)
 * @start: Lowest IOVA belonging to the range
 * @last: Highest IOVA belonging to the range (the range includes it, so a
 *        range covering a single 4KiB page has last == start + 0xfff)
 *
 * One contiguous span of IOVA space, used as an array element by
 * IOMMU_IOAS_IOVA_RANGES and IOMMU_IOAS_ALLOW_IOVAS.
 */
struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

/**
 * struct iommu_ioas_iova_ranges - ioctl(IOMMU_IOAS_IOVA_RANGES)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_ioas_iova_ranges)
 * @ioas_id: The IOAS to query
 * @num_iovas: In: number of elements available at @allowed_iovas.
 *             Out: number of usable ranges the IOAS currently has
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @allowed_iovas: User address of an array of struct iommu_iova_range that
 *                 receives the usable ranges, in ascending order
 * @out_iova_alignment: Filled by the kernel with the alignment, in bytes,
 *                      that IOVAs given to IOMMU_IOAS_MAP/COPY must have
 *
 * Reports which IOVA ranges of the IOAS can hold mappings. A new IOAS with
 * nothing attached offers the whole address space. Every device and
 * HWPT attached to it can carve out holes (aperture limits, MSI windows,
 * reserved regions), and detaching gives the space back, so the answer is
 * only valid until the next attach or detach.
 *
 * The kernel writes at most the input @num_iovas elements and always sets
 * @num_iovas to the real count. If the array was too short, the ioctl still
 * fills what fits and updates @num_iovas and @out_iova_alignment, but then
 * fails with EMSGSIZE; the caller is expected to grow its array to the
 * returned @num_iovas and try again. Passing @num_iovas == 0 is therefore a
 * way to ask only for the count.
 *
 * An IOVA range [iova, iova + length) passed to a map or copy command must
 * satisfy::
 *
 *   iova % out_iova_alignment == 0
 *   (iova + length) % out_iova_alignment == 0
 *
 * The alignment is a power of two, never above the CPU page size, and equal
 * to 1 when there is no restriction.
 */
struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

/**
 * struct iommu_ioas_allow_iovas - ioctl(IOMMU_IOAS_ALLOW_IOVAS)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_ioas_allow_iovas)
 * @ioas_id: The IOAS to update
 * @num_iovas: Number of elements in the @allowed_iovas array
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @allowed_iovas: User address of an array of struct iommu_iova_range
 *
 * Declares the IOVA ranges that userspace insists on being able to use in
 * this IOAS; the given array replaces any list set before, and an empty
 * array removes the restriction.
 *
 * Each range must have start < last and the ranges must not overlap
 * (EINVAL). If a range already intersects space that is reserved by an
 * attached device, the call fails with EADDRINUSE and the previous list
 * stays in effect. Once a list is set, the reverse is enforced as well: a
 * later attach that would reserve IOVA inside one of these ranges is
 * refused, so IOMMU_IOAS_IOVA_RANGES keeps reporting at least these ranges.
 *
 * When ranges are set, IOMMU_IOAS_MAP and IOMMU_IOAS_COPY without
 * IOMMU_IOAS_MAP_FIXED_IOVA pick their IOVA only from inside them.
 */
struct iommu_ioas_allow_iovas {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
};
#define IOMMU_IOAS_ALLOW_IOVAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS)

/**
 * enum iommufd_ioas_map_flags - Flags of IOMMU_IOAS_MAP, _MAP_FILE and _COPY
 * @IOMMU_IOAS_MAP_FIXED_IOVA: The caller supplies the IOVA to use. Without
 *                             it, the kernel chooses a free, suitably
 *                             aligned IOVA and reports it back
 * @IOMMU_IOAS_MAP_WRITEABLE: Devices may write to the mapped memory
 * @IOMMU_IOAS_MAP_READABLE: Devices may read from the mapped memory
 *
 * At least one of WRITEABLE and READABLE must be given (EINVAL otherwise);
 * any other bit gives EOPNOTSUPP.
 */
enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

/**
 * struct iommu_ioas_map - ioctl(IOMMU_IOAS_MAP)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_ioas_map)
 * @flags: Any combination of enum iommufd_ioas_map_flags
 * @ioas_id: The IOAS that receives the mapping
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @user_va: Start of the process memory to map
 * @length: Size in bytes of the area to map
 * @iova: With IOMMU_IOAS_MAP_FIXED_IOVA, the input IOVA to map at; in all
 *        cases the kernel writes back the IOVA it used
 *
 * Pins the memory [user_va, user_va + length) and makes it reachable by DMA
 * at [iova, iova + length) for everything attached to the IOAS. Pinned pages
 * are charged against RLIMIT_MEMLOCK as selected by IOMMU_OPTION_RLIMIT_MODE.
 *
 * With a fixed IOVA, the range must be aligned as reported by
 * IOMMU_IOAS_IOVA_RANGES and must not touch a reserved region (EINVAL), and
 * it must be completely unmapped: existing mappings are never replaced
 * (EEXIST). Without it, the kernel looks for a hole inside the allowed
 * ranges and fails with ENOSPC if there is none. A zero @length is EINVAL,
 * and addresses that do not fit an unsigned long give EOVERFLOW.
 */
struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

/**
 * struct iommu_ioas_noiommu_get_pa - ioctl(IOMMU_IOAS_NOIOMMU_GET_PA)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_ioas_noiommu_get_pa)
 * @flags: No flags are defined; any set bit gives EOPNOTSUPP
 * @ioas_id: The IOAS holding the mapping to look up
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @iova: The IOVA to translate
 * @length: In: upper limit, in bytes, of the span to examine from @iova;
 *          zero is EINVAL. Out: how many bytes starting at @out_phys are
 *          physically contiguous, never more than the input value
 * @out_phys: Filled by the kernel with the physical address behind @iova
 *
 * Translates an IOVA of a no-IOMMU IOAS to a CPU physical address, so that
 * userspace drivers of devices without any IOMMU protection (unsafe DMA)
 * can program real addresses. It needs CAP_SYS_RAWIO (EPERM otherwise). The
 * first byte at @iova must already be mapped (ENOENT otherwise), and the IOAS
 * must belong to the no-IOMMU mode (EOPNOTSUPP otherwise).
 */
struct iommu_ioas_noiommu_get_pa {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 out_phys;
};
#define IOMMU_IOAS_NOIOMMU_GET_PA _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA)

/**
 * struct iommu_ioas_map_file - ioctl(IOMMU_IOAS_MAP_FILE)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_ioas_map_file)
 * @flags: Any combination of enum iommufd_ioas_map_flags, as for
 *         IOMMU_IOAS_MAP
 * @ioas_id: The IOAS that receives the mapping
 * @fd: File descriptor of the memfd or dma-buf to map
 * @start: Offset in bytes inside the file where the mapping begins
 * @length: Size in bytes of the area to map
 * @iova: Input with IOMMU_IOAS_MAP_FIXED_IOVA, output in all cases, as for
 *        IOMMU_IOAS_MAP
 *
 * Works like IOMMU_IOAS_MAP, but the memory is named by a file and an offset
 * instead of a process address, so it does not depend on the caller's page
 * tables. Besides memfd files, kernels built with dma-buf support accept
 * some dma-buf files, currently those a VFIO PCI driver exports through
 * VFIO_DEVICE_FEATURE_DMA_BUF that describe a single contiguous range; other
 * dma-bufs may be refused. memfd mappings made this way are the only kind
 * that IOMMU_IOAS_CHANGE_PROCESS can move to another process.
 *
 * iommufd-rs accepts only files that are memory (memfd and other shmem
 * files, hugetlbfs) and fails with EINVAL for any other at once, not when
 * the pages are first pinned: a mapping holds its file, so mapping the
 * /dev/iommu file itself, or a VFIO device file, would keep that context or
 * that device bound forever. dma-buf files are not supported yet: any
 * dma-buf fails with EOPNOTSUPP, as upstream answers for a dma-buf it cannot
 * map.
 */
struct iommu_ioas_map_file {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__s32 fd;
	__aligned_u64 start;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP_FILE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE)

/**
 * struct iommu_ioas_copy - ioctl(IOMMU_IOAS_COPY)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_ioas_copy)
 * @flags: Any combination of enum iommufd_ioas_map_flags, applied to the new
 *         mapping
 * @dst_ioas_id: The IOAS that receives the new mapping
 * @src_ioas_id: The IOAS whose existing mapping is reused
 * @length: Size in bytes of the area to copy
 * @dst_iova: With IOMMU_IOAS_MAP_FIXED_IOVA, the input IOVA in the
 *            destination; in all cases the kernel writes back the IOVA used
 * @src_iova: First IOVA of the area in the source IOAS
 *
 * Maps into the destination IOAS the same pages that already back
 * [src_iova, src_iova + length) in the source IOAS. The source range must be
 * entirely covered by existing mappings (ENOENT otherwise). Because the
 * pages are shared rather than pinned a second time, this is cheaper than a
 * new IOMMU_IOAS_MAP of the same memory and does not charge the pinned
 * memory limit again; it can be used to duplicate parts of an IOAS or to
 * keep a pinned pool of memory in a spare IOAS. Placement rules and errors
 * for the destination are the same as for IOMMU_IOAS_MAP. Each source
 * mapping the range spans becomes a mapping of its own in the destination,
 * so each piece, not only the whole range, must meet the destination's
 * alignment (its IOVA, length and offset into its first page): copying
 * mappings made with byte granularity in an IOAS without a device into one
 * that has a device fails with EINVAL.
 */
struct iommu_ioas_copy {
	__u32 size;
	__u32 flags;
	__u32 dst_ioas_id;
	__u32 src_ioas_id;
	__aligned_u64 length;
	__aligned_u64 dst_iova;
	__aligned_u64 src_iova;
};
#define IOMMU_IOAS_COPY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY)

/**
 * struct iommu_ioas_unmap - ioctl(IOMMU_IOAS_UNMAP)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_ioas_unmap)
 * @ioas_id: The IOAS to remove mappings from
 * @iova: First IOVA of the area to unmap
 * @length: In: size in bytes of the area. Out: number of bytes that were
 *          actually unmapped
 *
 * Removes every mapping that lies inside [iova, iova + length). Mappings are
 * removed whole: a mapping that sticks out of the area cannot be cut and
 * makes the call fail with ENOENT, as does an area containing no mapping at
 * all. Mappings that an in-kernel user is still using give EBUSY. The
 * special pair iova == 0, length == U64_MAX removes all mappings of the IOAS
 * and succeeds even if there were none.
 */
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

/**
 * enum iommufd_option - Option selectors of IOMMU_OPTION
 * @IOMMU_OPTION_RLIMIT_MODE:
 *    Context-wide option (object_id must be 0). Chooses how memory pinned
 *    through this iommufd is charged against RLIMIT_MEMLOCK: 0 charges the
 *    user, 1 charges the process (the way the VFIO type1 container does).
 *    Changing it requires CAP_SYS_RESOURCE (EPERM) and is only possible
 *    while the iommufd holds no objects (EBUSY); other values give EINVAL,
 *    and a non-zero object_id gives EOPNOTSUPP.
 * @IOMMU_OPTION_HUGE_PAGES:
 *    Per-IOAS option (object_id is the IOAS ID). 1, the default, lets the
 *    kernel build large IOPTEs from physically contiguous pages; 0 forces
 *    every IOPTE to be PAGE_SIZE, which is mostly useful for testing and
 *    benchmarking.
 */
enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};

/**
 * enum iommufd_option_ops - Operations of IOMMU_OPTION
 * @IOMMU_OPTION_OP_SET: Store val64 as the new value of the option
 * @IOMMU_OPTION_OP_GET: Return the present value of the option in val64
 */
enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};

/**
 * struct iommu_option - ioctl(IOMMU_OPTION)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_option)
 * @option_id: Which option, one of enum iommufd_option
 * @op: What to do, one of enum iommufd_option_ops
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @object_id: The object the option applies to, or 0 for context-wide options
 * @val64: Value to store for IOMMU_OPTION_OP_SET; receives the value for
 *         IOMMU_OPTION_OP_GET
 *
 * One ioctl for reading and changing small tunables, either of the whole
 * iommufd context or of a single object. Unknown @option_id or @op values
 * give EOPNOTSUPP.
 */
struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

/**
 * enum iommufd_vfio_ioas_op - Operations of IOMMU_VFIO_IOAS
 * @IOMMU_VFIO_IOAS_GET: Report the IOAS currently used for VFIO
 *                       compatibility; ENODEV if there is none
 * @IOMMU_VFIO_IOAS_SET: Make the given IOAS the VFIO compatibility IOAS
 * @IOMMU_VFIO_IOAS_CLEAR: Forget the VFIO compatibility IOAS
 */
enum iommufd_vfio_ioas_op {
	IOMMU_VFIO_IOAS_GET = 0,
	IOMMU_VFIO_IOAS_SET = 1,
	IOMMU_VFIO_IOAS_CLEAR = 2,
};

/**
 * struct iommu_vfio_ioas - ioctl(IOMMU_VFIO_IOAS)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_vfio_ioas)
 * @ioas_id: Input IOAS ID for IOMMU_VFIO_IOAS_SET; receives the IOAS ID for
 *           IOMMU_VFIO_IOAS_GET; ignored for IOMMU_VFIO_IOAS_CLEAR
 * @op: What to do, one of enum iommufd_vfio_ioas_op (EOPNOTSUPP otherwise)
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 *
 * The VFIO container API has no notion of IOAS IDs, so an iommufd that
 * stands in for a VFIO container routes all of it to one designated IOAS.
 * This command inspects or changes that choice. VFIO itself looks the IOAS
 * up when a group or device is first connected (VFIO_GROUP_SET_CONTAINER),
 * creating one if none is designated, and keeps using it afterwards, so
 * later SET or CLEAR operations only affect future connections. Neither SET
 * nor CLEAR destroys an IOAS that was created automatically.
 */
struct iommu_vfio_ioas {
	__u32 size;
	__u32 ioas_id;
	__u16 op;
	__u16 __reserved;
};
#define IOMMU_VFIO_IOAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS)

/**
 * enum iommufd_hwpt_alloc_flags - Flags of IOMMU_HWPT_ALLOC
 * @IOMMU_HWPT_ALLOC_NEST_PARENT: Create a paging HWPT that can later serve
 *                                as the second (parent) stage below nested
 *                                HWPTs and vIOMMUs
 * @IOMMU_HWPT_ALLOC_DIRTY_TRACKING: The HWPT must be able to track dirty
 *                                   IOVAs; allocation fails if the IOMMU
 *                                   cannot, and devices whose IOMMU lacks
 *                                   the feature cannot attach to it
 * @IOMMU_HWPT_FAULT_ID_VALID: The fault_id member of struct iommu_hwpt_alloc
 *                             names a FAULT object that receives I/O page
 *                             faults of this HWPT; not allowed together
 *                             with IOMMU_HWPT_ALLOC_NEST_PARENT
 * @IOMMU_HWPT_ALLOC_PASID: Create a HWPT that may be attached to PASIDs of a
 *                          device. Once a device uses PASID attachments,
 *                          the HWPT attached to its plain (non-PASID)
 *                          requests must carry this flag too, otherwise the
 *                          PASID attachment is refused. Devices that want
 *                          PASIDs should attach HWPTs rather than IOASes to
 *                          both parts. Gives EOPNOTSUPP if the IOMMU has no
 *                          PASID support.
 * @IOMMU_HWPT_ALLOC_COHERENT: (iommufd-rs) A paging HWPT in coherent mode,
 *                             as IOMMU_IOAS_ALLOC_COHERENT: it forces
 *                             snooping if the device's IOMMU can, and
 *                             otherwise only takes devices that cannot issue
 *                             No-Snoop (EINVAL if @dev_id can)
 * @IOMMU_HWPT_ALLOC_NONCOHERENT: (iommufd-rs) A paging HWPT that never forces
 *                                snooping
 *
 * Without either coherency flag a paging HWPT takes the mode of its IOAS;
 * both together give EINVAL. The mode never changes afterwards.
 */
enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
	IOMMU_HWPT_ALLOC_PASID = 1 << 3,
	IOMMU_HWPT_ALLOC_COHERENT = 1U << 31,
	IOMMU_HWPT_ALLOC_NONCOHERENT = 1 << 30,
};

/**
 * enum iommu_hwpt_vtd_s1_flags - Attribute bits of an Intel VT-d stage-1
 *                                page table
 * @IOMMU_VTD_S1_SRE: Allow supervisor-mode requests to use the table
 * @IOMMU_VTD_S1_EAFE: Enable the extended accessed flag
 * @IOMMU_VTD_S1_WPE: Honour write protection for supervisor requests
 */
enum iommu_hwpt_vtd_s1_flags {
	IOMMU_VTD_S1_SRE = 1 << 0,
	IOMMU_VTD_S1_EAFE = 1 << 1,
	IOMMU_VTD_S1_WPE = 1 << 2,
};

/**
 * struct iommu_hwpt_vtd_s1 - Intel VT-d stage-1 page table description
 *                            (IOMMU_HWPT_DATA_VTD_S1)
 * @flags: Any combination of enum iommu_hwpt_vtd_s1_flags
 * @pgtbl_addr: Guest-physical address of the root of the stage-1 table
 * @addr_width: Input address width, in bits, that the stage-1 table
 *              translates
 * @__reserved: Reserved, must be zero
 *
 * Driver data for IOMMU_HWPT_ALLOC that creates a nested HWPT from a guest
 * owned first-stage page table on top of a VT-d nesting parent.
 */
struct iommu_hwpt_vtd_s1 {
	__aligned_u64 flags;
	__aligned_u64 pgtbl_addr;
	__u32 addr_width;
	__u32 __reserved;
};

/**
 * struct iommu_hwpt_arm_smmuv3 - ARM SMMUv3 nested Stream Table Entry
 *                                (IOMMU_HWPT_DATA_ARM_SMMUV3)
 * @ste: Double words 0 and 1 of the guest's Stream Table Entry, in
 *       little-endian byte order. Only these fields (see section 5.2 of the
 *       SMMUv3 architecture specification) may be set:
 *       word 0: V, Cfg, S1Fmt, S1ContextPtr, S1CDMax;
 *       word 1: EATS, S1DSS, S1CIR, S1COR, S1CSH, S1STALLD
 *
 * Driver data for IOMMU_HWPT_ALLOC when a nested HWPT is created on an ARM
 * SMMUv3 vIOMMU. An STE with V clear is accepted and treated as all zeroes.
 * Otherwise, any bit outside the fields above, a Cfg other than abort,
 * bypass or stage-1 translate, or an unsupported EATS value makes the
 * allocation fail with EIO. A bypass STE translates like the nesting parent
 * alone; a stage-1 STE points the hardware at a guest Context Descriptor
 * table that is itself reached through the nesting parent.
 *
 * A VMM should create the vDEVICE (IOMMU_VDEVICE_ALLOC) that gives the
 * device its virtual Stream ID before attaching a stage-1 STE, because
 * invalidations and reported events are matched by that ID. Abort and
 * bypass STEs can be attached without a vDEVICE, which covers a guest that
 * runs with its SMMU disabled; but once the guest enables its SMMU, events
 * for a device without a vDEVICE cannot be delivered to it.
 */
struct iommu_hwpt_arm_smmuv3 {
	__aligned_le64 ste[2];
};

/**
 * struct iommu_hwpt_amd_guest - AMD IOMMU guest page table description
 *				 (IOMMU_HWPT_DATA_AMD_GUEST)
 * @dte: The guest's 256-bit Device Table Entry, as four 64-bit words
 *
 * Driver data for IOMMU_HWPT_ALLOC when a nested HWPT is created on an AMD
 * vIOMMU. The kernel takes the guest (v2) page table settings from it and
 * rejects entries whose host-only fields are set or whose guest table
 * settings are invalid.
 */
struct iommu_hwpt_amd_guest {
	__aligned_u64 dte[4];
};

/**
 * enum iommu_hwpt_data_type - Format of the driver data of IOMMU_HWPT_ALLOC
 * @IOMMU_HWPT_DATA_NONE: No driver data; a kernel-managed paging HWPT
 * @IOMMU_HWPT_DATA_VTD_S1: struct iommu_hwpt_vtd_s1
 * @IOMMU_HWPT_DATA_ARM_SMMUV3: struct iommu_hwpt_arm_smmuv3
 * @IOMMU_HWPT_DATA_AMD_GUEST: struct iommu_hwpt_amd_guest
 */
enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
	IOMMU_HWPT_DATA_ARM_SMMUV3 = 2,
	IOMMU_HWPT_DATA_AMD_GUEST = 3,
};

/**
 * struct iommu_hwpt_alloc - ioctl(IOMMU_HWPT_ALLOC)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_hwpt_alloc)
 * @flags: Any combination of enum iommufd_hwpt_alloc_flags
 * @dev_id: A device bound to this iommufd; the HWPT is built for its IOMMU
 * @pt_id: What the HWPT is built on: an IOAS, a nesting parent HWPT or a
 *         vIOMMU; any other object gives EINVAL
 * @out_hwpt_id: Output: object ID assigned to the created HWPT
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @data_type: Format of the driver data, one of enum iommu_hwpt_data_type
 * @data_len: Size in bytes of the driver data
 * @data_uptr: User address of the driver data
 * @fault_id: ID of a FAULT object; read only when @flags contains
 *            IOMMU_HWPT_FAULT_ID_VALID
 * @__reserved2: Padding up to a multiple of 8 bytes, must be zero
 *
 * Creates a hardware page table (HWPT), the object that stands for an IOMMU
 * driver's translation domain. Attaching a device to an IOAS creates such an
 * object implicitly; this command creates one explicitly so userspace can
 * control its properties.
 *
 * When @pt_id is an IOAS, the result is a paging HWPT whose translations the
 * kernel keeps in sync with the mappings of that IOAS; @data_type must be
 * IOMMU_HWPT_DATA_NONE. Pass IOMMU_HWPT_ALLOC_NEST_PARENT to allow it to be
 * used as the parent stage of nested translation later.
 *
 * When @pt_id is a nesting parent HWPT or a vIOMMU wrapping one, the result
 * is a nested HWPT whose first-stage table is owned by userspace (typically
 * a guest) and described by driver data of the given @data_type, which must
 * be a format the IOMMU of @dev_id understands. A vIOMMU given as @pt_id
 * must sit on the same physical IOMMU instance as @dev_id.
 *
 * @data_len and @data_uptr must both be zero for IOMMU_HWPT_DATA_NONE and
 * @data_len must be non-zero for any other type (EINVAL otherwise). The
 * driver data is itself extensible: a shorter @data_len is zero-extended and
 * a longer one must have a zero tail.
 */
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

/**
 * enum iommu_hw_info_vtd_flags - Flags of struct iommu_hw_info_vtd
 * @IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17: The hardware is affected by Intel
 *                                         erratum 772415 (SPR17), so a
 *                                         nesting parent HWPT cannot hold
 *                                         read-only mappings. Details:
 *                                         https://www.intel.com/content/www/us/en/content-details/772415/content-details.html
 */
enum iommu_hw_info_vtd_flags {
	IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0,
};

/**
 * struct iommu_hw_info_vtd - Intel VT-d hardware report
 *                            (IOMMU_HW_INFO_TYPE_INTEL_VTD)
 * @flags: Any combination of enum iommu_hw_info_vtd_flags
 * @__reserved: Reserved, always zero
 * @cap_reg: Raw content of the VT-d Capability Register (section 11.4.2 of
 *           the VT-d specification)
 * @ecap_reg: Raw content of the VT-d Extended Capability Register (section
 *            11.4.3 of the VT-d specification)
 *
 * The registers are passed through unmodified; decoding them is up to
 * userspace, following the VT-d specification.
 */
struct iommu_hw_info_vtd {
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 cap_reg;
	__aligned_u64 ecap_reg;
};

/**
 * enum iommu_hw_info_arm_smmuv3_flags - Flags of struct
 *                                       iommu_hw_info_arm_smmuv3
 * @IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI:
 *    The SMMU is affected by erratum T264-SMMU-3: every TLBI or CFGI command
 *    that userspace issues, followed by its CMD_SYNC, has to be issued twice.
 *    The kernel handles the same erratum for itself through
 *    arm_smmu_erratum_repeat_tlbi_cfgi_key.
 */
enum iommu_hw_info_arm_smmuv3_flags {
	IOMMU_HW_INFO_ARM_SMMUV3_ERRATA_REPEAT_TLBI_CFGI = 1 << 0,
};

/**
 * struct iommu_hw_info_arm_smmuv3 - ARM SMMUv3 hardware report
 *                                   (IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
 * @flags: Any combination of enum iommu_hw_info_arm_smmuv3_flags
 * @__reserved: Reserved, always zero
 * @idr: Raw SMMU_IDR0 to SMMU_IDR5 registers (feature identification)
 * @iidr: Raw SMMU_IIDR register (implementer, product and revision)
 * @aidr: Raw SMMU_AIDR register (architecture version)
 *
 * The register layouts are defined in sections 6.3.1 to 6.3.6 of the SMMUv3
 * architecture specification. They describe the physical SMMU, and only
 * part of what they advertise can be offered to a guest through nesting. A
 * VMM building a virtual SMMU should look only at these fields:
 *
 *  - IDR0: ST_LEVEL, TERM_MODEL, STALL_MODEL, TTENDIAN, CD2L, ASID16, TTF
 *  - IDR1: SIDSIZE, SSIDSIZE
 *  - IDR3: BBML, RIL
 *  - IDR5: VAX, GRAN64K, GRAN16K, GRAN4K, DS
 *
 * and in addition assume that stage 1 (S1P) is present whenever a nested
 * HWPT can be allocated, that coherent access (COHACC) is present because
 * VFIO/iommufd only run on such systems, and that ATS is a per-device choice
 * which the VMM advertises for the devices it describes as ATS capable.
 * Other bits must be ignored: the set of usable fields may grow in later
 * kernels, and features such as HTTU, BTM or MPAM are not available to
 * nested guests today.
 */
struct iommu_hw_info_arm_smmuv3 {
	__u32 flags;
	__u32 __reserved;
	__u32 idr[6];
	__u32 iidr;
	__u32 aidr;
};

/**
 * struct iommu_hw_info_tegra241_cmdqv - NVIDIA Tegra241 CMDQV hardware
 *                                       report
 *                                       (IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV)
 * @flags: No flags are defined; always zero
 * @version: CMDQ-V hardware version, as in PARAM bits [3:0]
 * @log2vcmdqs: Base-2 logarithm of the number of VCMDQs, as in PARAM bits
 *              [7:4]
 * @log2vsids: Base-2 logarithm of the number of Stream ID replacement
 *             slots, as in PARAM bits [15:12]
 * @__reserved: Reserved, always zero
 *
 * The values can be copied directly into the PARAM register that the VMM
 * emulates for its guest. A guest is only ever given one virtual interface
 * (VINTF), so the emulated PARAM bits [11:8] (log2 of the VINTF count)
 * should read as zero.
 */
struct iommu_hw_info_tegra241_cmdqv {
	__u32 flags;
	__u8 version;
	__u8 log2vcmdqs;
	__u8 log2vsids;
	__u8 __reserved;
};

/**
 * struct iommu_hw_info_amd - AMD IOMMU hardware report
 *                            (IOMMU_HW_INFO_TYPE_AMD)
 * @efr: Raw Extended Feature Register (MMIO offset 0x0030)
 * @efr2: Raw Extended Feature 2 Register (MMIO offset 0x01A0)
 *
 * Both registers are described in the AMD I/O Virtualization Technology
 * (IOMMU) Specification (https://docs.amd.com/v/u/en-US/48882_3.10_PUB).
 * They are reported exactly as the hardware presents them, including
 * features the kernel does not support for a hardware-assisted vIOMMU, so
 * the VMM has to filter them. At present a VMM may expose only these EFR
 * features to a guest: GTSup, GASup, GioSup, PPRSup, EPHSup, GATS, GLX and
 * PASmax.
 */
struct iommu_hw_info_amd {
	__aligned_u64 efr;
	__aligned_u64 efr2;
};

/**
 * enum iommu_hw_info_type - Format of the data returned by IOMMU_GET_HW_INFO
 * @IOMMU_HW_INFO_TYPE_NONE: Output only: the IOMMU driver has no hardware
 *                           report to give
 * @IOMMU_HW_INFO_TYPE_DEFAULT: Input only: let the driver pick its usual
 *                              format (same value as NONE)
 * @IOMMU_HW_INFO_TYPE_INTEL_VTD: struct iommu_hw_info_vtd
 * @IOMMU_HW_INFO_TYPE_ARM_SMMUV3: struct iommu_hw_info_arm_smmuv3
 * @IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV: struct iommu_hw_info_tegra241_cmdqv,
 *                                     for SMMUv3 instances with the NVIDIA
 *                                     Tegra241 CMDQV extension
 * @IOMMU_HW_INFO_TYPE_AMD: struct iommu_hw_info_amd
 */
enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_DEFAULT = 0,
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
	IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2,
	IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3,
	IOMMU_HW_INFO_TYPE_AMD = 4,
};

/**
 * enum iommufd_hw_capabilities - Generic capability bits of IOMMU_GET_HW_INFO
 * @IOMMU_HW_CAP_DIRTY_TRACKING: The IOMMU can record which IOVAs devices
 *                               wrote to, so HWPTs created with
 *                               IOMMU_HWPT_ALLOC_DIRTY_TRACKING and the
 *                               commands IOMMU_HWPT_SET_DIRTY_TRACKING and
 *                               IOMMU_HWPT_GET_DIRTY_BITMAP can be used
 * @IOMMU_HW_CAP_PCI_PASID_EXEC: The device's PASID capability has Execute
 *                               Permission support enabled; meaningless when
 *                               out_max_pasid_log2 is zero
 * @IOMMU_HW_CAP_PCI_PASID_PRIV: The device's PASID capability has Privileged
 *                               Mode support enabled; meaningless when
 *                               out_max_pasid_log2 is zero
 * @IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED: ATS cannot be used with this device,
 *                                      either because it lacks ATS or the
 *                                      IOMMU does not allow it. When the bit
 *                                      is clear, ATS may be enabled
 *
 * iommufd-rs adds the coherency bits defined below the enum.
 */
enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
	IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3,
};

/*
 * iommufd-rs coherency report in IOMMU_GET_HW_INFO's out_capabilities (64-bit
 * values, so defines rather than enum members):
 *
 * IOMMU_HW_CAP_ENFORCE_COHERENCY: the device's IOMMU can force its DMA to
 *   snoop CPU caches (an HWPT made for it may enforce coherency)
 * IOMMU_HW_CAP_NO_SNOOP: the device can issue No-Snoop DMA
 * IOMMU_HW_CAP_DEFAULT_COHERENT: with the default ("auto") mode the kernel
 *   gives the device an HWPT that enforces coherency
 * IOMMU_HW_CAP_NONCOHERENT_DMA: live state: the device is attached to an HWPT
 *   that does not enforce coherency and can issue No-Snoop, so its DMA may
 *   bypass CPU caches right now
 */
#define IOMMU_HW_CAP_ENFORCE_COHERENCY (1ULL << 63)
#define IOMMU_HW_CAP_NO_SNOOP (1ULL << 62)
#define IOMMU_HW_CAP_DEFAULT_COHERENT (1ULL << 61)
#define IOMMU_HW_CAP_NONCOHERENT_DMA (1ULL << 60)

/**
 * enum iommufd_hw_info_flags - Flags of IOMMU_GET_HW_INFO
 * @IOMMU_HW_INFO_FLAG_INPUT_TYPE: in_data_type holds the report format the
 *                                 caller asks for; without this flag the
 *                                 input value is ignored and the driver's
 *                                 default format is used
 */
enum iommufd_hw_info_flags {
	IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0,
};

/**
 * struct iommu_hw_info - ioctl(IOMMU_GET_HW_INFO)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_hw_info)
 * @flags: Any combination of enum iommufd_hw_info_flags
 * @dev_id: A device bound to this iommufd whose IOMMU is queried
 * @data_len: In: size in bytes of the buffer at @data_uptr. Out: size of the
 *            full report the kernel has, which may exceed the input value
 * @data_uptr: User address of the buffer receiving the driver-specific report
 * @in_data_type: Input view of the shared type member: with
 *                IOMMU_HW_INFO_FLAG_INPUT_TYPE set, the enum
 *                iommu_hw_info_type the caller wants; ignored otherwise
 * @out_data_type: Output view of the same member: the enum
 *                 iommu_hw_info_type of the report written to @data_uptr
 * @out_max_pasid_log2: Number of PASID bits the device can use; zero when it
 *                      has no usable PASID support
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @out_capabilities: Filled by the kernel with a combination of enum
 *                    iommufd_hw_capabilities
 *
 * Describes the IOMMU behind a bound device, mainly so a VMM can present a
 * virtual IOMMU that matches the physical one, for example to check that a
 * guest's stage-1 page table format is usable for nesting.
 *
 * The kernel copies min(@data_len, report size) bytes of the report to
 * @data_uptr and zero-fills the rest of the user buffer, then sets
 * @data_len to the report size so that callers can detect a truncated
 * report. A @data_len of zero is valid and only queries the size, type and
 * capabilities. Devices in no-IOMMU mode give EOPNOTSUPP, and a requested
 * type that the driver does not provide is refused by the driver.
 */
struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	union {
		__u32 in_data_type;
		__u32 out_data_type;
	};
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

/**
 * enum iommufd_hwpt_set_dirty_tracking_flags - Flags of
 *                                              IOMMU_HWPT_SET_DIRTY_TRACKING
 * @IOMMU_HWPT_DIRTY_TRACKING_ENABLE: Turn dirty tracking on; when the flag
 *                                    is absent, tracking is turned off
 */
enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

/**
 * struct iommu_hwpt_set_dirty_tracking - ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_hwpt_set_dirty_tracking)
 * @flags: Any combination of enum iommufd_hwpt_set_dirty_tracking_flags
 * @hwpt_id: The paging HWPT to change
 * @__reserved: Reserved, must be zero
 *
 * Starts or stops dirty tracking in the IOMMU page table of a paging HWPT.
 * Turning it on first clears any stale dirty state, so the first bitmap read
 * afterwards only covers writes made after this call. The HWPT must have
 * been created with IOMMU_HWPT_ALLOC_DIRTY_TRACKING; otherwise the driver
 * gives EOPNOTSUPP.
 */
struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, \
					  IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

/**
 * enum iommufd_hwpt_get_dirty_bitmap_flags - Flags of
 *                                            IOMMU_HWPT_GET_DIRTY_BITMAP
 * @IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR: Report the dirty state but leave it
 *                                        set in the IOPTEs. Useful when the
 *                                        range is about to be unmapped
 *                                        anyway, which saves the cost of
 *                                        clearing and flushing
 */
enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

/**
 * struct iommu_hwpt_get_dirty_bitmap - ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_hwpt_get_dirty_bitmap)
 * @hwpt_id: The paging HWPT to read
 * @flags: Any combination of enum iommufd_hwpt_get_dirty_bitmap_flags
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 * @iova: IOVA that bit 0 of the bitmap stands for
 * @length: Size in bytes of the IOVA range to scan
 * @page_size: Number of bytes of IOVA that each bitmap bit stands for; a
 *             non-zero power of two
 * @data: User address of the bitmap, an array of __u64 words with room for
 *        length / page_size bits
 *
 * Scans the IOMMU page table over [iova, iova + length) and sets one bit in
 * the user bitmap for every page_size unit that devices wrote to; bits of
 * clean units are left untouched, so the caller normally zeroes the bitmap
 * first. Whether IOVA x was dirty is found by::
 *
 *   n = (x - iova) / page_size
 *   data[n / 64] & (1ULL << (n % 64))
 *
 * Unless IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR is given, the dirty state that
 * was reported is cleared in the page table. @length must be non-zero, and
 * both ends of the range must be aligned to @page_size and to the IOAS IOVA
 * alignment (EINVAL otherwise); the range has to be entirely mapped.
 */
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, \
					IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

/**
 * enum iommu_hwpt_invalidate_data_type - Format of the entries passed to
 *                                        IOMMU_HWPT_INVALIDATE
 * @IOMMU_HWPT_INVALIDATE_DATA_VTD_S1: struct iommu_hwpt_vtd_s1_invalidate
 * @IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3: struct
 *                                           iommu_viommu_arm_smmuv3_invalidate
 */
enum iommu_hwpt_invalidate_data_type {
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0,
	IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1,
};

/**
 * enum iommu_hwpt_vtd_s1_invalidate_flags - Flags of struct
 *                                           iommu_hwpt_vtd_s1_invalidate
 * @IOMMU_VTD_INV_FLAGS_LEAF: Only leaf entries changed: flush the IOTLB
 *                            entries for the range but keep the cached
 *                            intermediate (paging structure) entries
 */
enum iommu_hwpt_vtd_s1_invalidate_flags {
	IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0,
};

/**
 * struct iommu_hwpt_vtd_s1_invalidate - Intel VT-d stage-1 invalidation
 *                                       entry
 *                                       (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
 * @addr: First address of the range to flush; must be 4KiB aligned
 * @npages: Number of 4KiB pages in the range
 * @flags: Any combination of enum iommu_hwpt_vtd_s1_invalidate_flags
 * @__reserved: Reserved, must be zero
 *
 * One request to drop cached translations of a guest-owned stage-1 page
 * table, sent by userspace after it edited that table. @addr == 0 together
 * with @npages == U64_MAX flushes everything cached for the table. When ATS
 * is enabled, the kernel flushes the device TLB as well.
 */
struct iommu_hwpt_vtd_s1_invalidate {
	__aligned_u64 addr;
	__aligned_u64 npages;
	__u32 flags;
	__u32 __reserved;
};

/**
 * struct iommu_viommu_arm_smmuv3_invalidate - ARM SMMUv3 invalidation entry
 *         (IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3)
 * @cmd: One 128-bit SMMU command queue entry, in little-endian byte order
 *
 * A guest command forwarded by the VMM when a vIOMMU is passed as hwpt_id.
 * The accepted opcodes are CMDQ_OP_TLBI_NSNH_ALL, CMDQ_OP_TLBI_NH_VA,
 * CMDQ_OP_TLBI_NH_VAA, CMDQ_OP_TLBI_NH_ALL, CMDQ_OP_TLBI_NH_ASID,
 * CMDQ_OP_ATC_INV, CMDQ_OP_CFGI_CD and CMDQ_OP_CFGI_CD_ALL; Stream IDs in
 * them are virtual and translated through the vDEVICEs of the vIOMMU. A
 * command with another opcode, a field the kernel does not accept, or a
 * field value the physical SMMU does not implement fails with EIO.
 */
struct iommu_viommu_arm_smmuv3_invalidate {
	__aligned_le64 cmd[2];
};

/**
 * struct iommu_hwpt_invalidate - ioctl(IOMMU_HWPT_INVALIDATE)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_hwpt_invalidate)
 * @hwpt_id: A nested HWPT or a vIOMMU whose caches are to be flushed
 * @data_uptr: User address of an array of invalidation entries
 * @data_type: Format of every entry, one of enum
 *             iommu_hwpt_invalidate_data_type, and one the object named by
 *             @hwpt_id supports
 * @entry_len: Size in bytes of one entry; at most PAGE_SIZE
 * @entry_num: In: number of entries in the array. Out: number of entries
 *             the kernel processed successfully
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 *
 * Flushes IOMMU caches on behalf of userspace. With a nested HWPT, this is
 * how changes to the user-owned first-stage table become visible. With a
 * vIOMMU, other caches can be targeted too, such as device (ATC) or context
 * descriptor caches. The array holds @entry_num entries of @entry_len bytes
 * each; every entry is extensible like an ioctl structure, so @entry_len may
 * differ from the kernel's entry size.
 *
 * Entries are handled in order and processing stops at the first failure;
 * @entry_num is written back even on error, so userspace knows how many
 * entries took effect. @entry_num == 0 is allowed and ignores @entry_len and
 * @data_uptr, which lets userspace probe whether @data_type is supported.
 * Otherwise, a zero @data_uptr or @entry_len, an @entry_len above PAGE_SIZE
 * or an excessive @entry_num gives EINVAL.
 */
struct iommu_hwpt_invalidate {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 data_uptr;
	__u32 data_type;
	__u32 entry_len;
	__u32 entry_num;
	__u32 __reserved;
};
#define IOMMU_HWPT_INVALIDATE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)

/**
 * enum iommu_hwpt_pgfault_flags - Flags of struct iommu_hwpt_pgfault
 * @IOMMU_PGFAULT_FLAGS_PASID_VALID: The faulting request carried a PASID,
 *                                   reported in the pasid member
 * @IOMMU_PGFAULT_FLAGS_LAST_PAGE: This message closes its fault group; its
 *                                 cookie is the one to answer with
 */
enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID		= (1 << 0),
	IOMMU_PGFAULT_FLAGS_LAST_PAGE		= (1 << 1),
};

/**
 * enum iommu_hwpt_pgfault_perm - Access rights requested by a page fault
 * @IOMMU_PGFAULT_PERM_READ: The device wants to read
 * @IOMMU_PGFAULT_PERM_WRITE: The device wants to write
 * @IOMMU_PGFAULT_PERM_EXEC: The PASID TLP prefix of the request had its
 *                           Execute Requested bit set (PCIe 10.4.1)
 * @IOMMU_PGFAULT_PERM_PRIV: The PASID TLP prefix of the request had its
 *                           Privileged Mode Requested bit set (PCIe 10.4.1)
 */
enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ			= (1 << 0),
	IOMMU_PGFAULT_PERM_WRITE		= (1 << 1),
	IOMMU_PGFAULT_PERM_EXEC			= (1 << 2),
	IOMMU_PGFAULT_PERM_PRIV			= (1 << 3),
};

/**
 * struct iommu_hwpt_pgfault - I/O page fault message read from a FAULT fd
 * @flags: Any combination of enum iommu_hwpt_pgfault_flags
 * @dev_id: ID of the bound device that raised the fault
 * @pasid: PASID of the request; only meaningful with
 *         IOMMU_PGFAULT_FLAGS_PASID_VALID
 * @grpid: Page Request Group Index of the request
 * @perm: Any combination of enum iommu_hwpt_pgfault_perm
 * @__reserved: Reserved, always zero
 * @addr: The faulting address
 * @length: Optional hint, in bytes, of how much the device intends to
 *          access from @addr, so the handler can fault in more than one
 *          page at once (say, 10MB for a 10MB transfer); zero when no hint
 *          was provided
 * @cookie: Kernel-chosen tag of the fault group; the message that carries
 *          IOMMU_PGFAULT_FLAGS_LAST_PAGE holds the cookie that must be
 *          returned in struct iommu_hwpt_page_response
 *
 * read() on the fd of a FAULT object returns whole fault groups as arrays
 * of these messages; the read size must be a multiple of this structure's
 * size.
 */
struct iommu_hwpt_pgfault {
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;
};

/**
 * enum iommufd_page_response_code - Outcome reported for a fault group
 * @IOMMUFD_PAGE_RESP_SUCCESS: The fault was resolved and the page tables
 *                             now map the address; the device should retry
 *                             (PCI "Success" response, section 10.4.2.1)
 * @IOMMUFD_PAGE_RESP_INVALID: The fault cannot be resolved; the device must
 *                             not retry (PCI "Invalid Request" response,
 *                             section 10.4.2.1)
 */
enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};

/**
 * struct iommu_hwpt_page_response - Reply written to a FAULT fd
 * @cookie: The cookie of the fault group being answered
 * @code: The result, one of enum iommufd_page_response_code
 *
 * write() on the fd of a FAULT object takes an array of these; the write
 * size must be a multiple of this structure's size. An unknown @code or a
 * @cookie that does not name a pending group gives EINVAL.
 */
struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;
};

/**
 * struct iommu_fault_alloc - ioctl(IOMMU_FAULT_QUEUE_ALLOC)
 * @size: Byte size of the caller's structure, sizeof(struct iommu_fault_alloc)
 * @flags: No flags are defined; any set bit gives EOPNOTSUPP
 * @out_fault_id: Output: object ID assigned to the created FAULT object
 * @out_fault_fd: Filled by the kernel with a new file descriptor for it
 *
 * Creates a FAULT object, a queue through which I/O page faults of HWPTs
 * created with IOMMU_HWPT_FAULT_ID_VALID are delivered to userspace.
 * Faults are read from @out_fault_fd as struct iommu_hwpt_pgfault records
 * and answered by writing struct iommu_hwpt_page_response records to it.
 */
struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)

/**
 * enum iommu_viommu_type - Kind of virtual IOMMU
 * @IOMMU_VIOMMU_TYPE_DEFAULT: Placeholder; not accepted by
 *                             IOMMU_VIOMMU_ALLOC (EOPNOTSUPP)
 * @IOMMU_VIOMMU_TYPE_ARM_SMMUV3: Virtual ARM SMMUv3
 * @IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV: Virtual ARM SMMUv3 with the NVIDIA
 *                                    Tegra241 CMDQV extension. The kernel
 *                                    backs it with a VINTF that it owns
 *                                    (HYP_OWN=0), so the VMM must make the
 *                                    HYP_OWN bit of the guest's
 *                                    VINTF_CONFIG register read as 0, or
 *                                    the VCMDQs will not work
 */
enum iommu_viommu_type {
	IOMMU_VIOMMU_TYPE_DEFAULT = 0,
	IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1,
	IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2,
};

/**
 * struct iommu_viommu_tegra241_cmdqv - Output data of a Tegra241 CMDQV
 *                                      vIOMMU
 *                                      (IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV)
 * @out_vintf_mmap_offset: Offset to pass to mmap() on the iommufd to map
 *                         page 0 of the VINTF
 * @out_vintf_mmap_length: Length to pass to that mmap()
 *
 * Filled in by IOMMU_VIOMMU_ALLOC. Mapping the VINTF page 0 lets the VMM
 * place the physical registers into guest physical address space, so the
 * guest drives its virtual command queues directly, without traps.
 */
struct iommu_viommu_tegra241_cmdqv {
	__aligned_u64 out_vintf_mmap_offset;
	__aligned_u64 out_vintf_mmap_length;
};

/**
 * struct iommu_viommu_alloc - ioctl(IOMMU_VIOMMU_ALLOC)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_viommu_alloc)
 * @flags: No flags are defined; any set bit gives EOPNOTSUPP
 * @type: Kind of vIOMMU, one of enum iommu_viommu_type other than
 *        IOMMU_VIOMMU_TYPE_DEFAULT (EOPNOTSUPP otherwise)
 * @dev_id: A bound device; the vIOMMU is built on that device's physical
 *          IOMMU
 * @hwpt_id: A paging HWPT created with IOMMU_HWPT_ALLOC_NEST_PARENT (EINVAL
 *           otherwise), used as the second stage of the vIOMMU
 * @out_viommu_id: Output: object ID assigned to the created vIOMMU
 * @data_len: Size in bytes of the type-specific data
 * @__reserved: Reserved, must be zero
 * @data_uptr: User address of the type-specific data, e.g. struct
 *             iommu_viommu_tegra241_cmdqv
 *
 * Creates a vIOMMU object: the share of one physical IOMMU's virtualization
 * features that belongs to one VM, isolated from other VMs. It groups what
 * applies to the whole virtual IOMMU rather than to one device, such as:
 *
 *  - a namespace for guest-chosen IDs like cache tags;
 *  - reporting of events not tied to a device, e.g. command queue errors;
 *  - a nesting parent page table that may be shared among physical IOMMUs;
 *  - translation of virtual device IDs (e.g. virtual Stream IDs or RIDs);
 *  - paravirtualized cache invalidation;
 *  - command queues and interrupts assigned directly to the guest.
 *
 * Fails with EOPNOTSUPP if the IOMMU driver cannot create a vIOMMU of @type.
 */
struct iommu_viommu_alloc {
	__u32 size;
	__u32 flags;
	__u32 type;
	__u32 dev_id;
	__u32 hwpt_id;
	__u32 out_viommu_id;
	__u32 data_len;
	__u32 __reserved;
	__aligned_u64 data_uptr;
};
#define IOMMU_VIOMMU_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC)

/**
 * struct iommu_vdevice_alloc - ioctl(IOMMU_VDEVICE_ALLOC)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_vdevice_alloc)
 * @viommu_id: The vIOMMU the virtual device belongs to
 * @dev_id: The bound physical device being represented; it must sit behind
 *          the same physical IOMMU as the vIOMMU (EINVAL otherwise)
 * @out_vdevice_id: Output: object ID assigned to the created vDEVICE,
 *                  which is released with IOMMU_DESTROY
 * @virt_id: The device's ID as the guest sees it on that vIOMMU, such as the
 *           virtual Stream ID on ARM SMMUv3, the virtual DeviceID on AMD or
 *           the virtual RID on Intel VT-d
 *
 * Creates a vDEVICE, which ties a physical device to its identity in the
 * VM's view of a vIOMMU. A device can have only one vDEVICE, and a @virt_id
 * can be used only once per vIOMMU (EEXIST for either).
 *
 * Userspace should destroy the vDEVICE before it releases the physical
 * device (by closing its VFIO cdev). If the device goes away first, the
 * kernel tears the vDEVICE down by force, and its ID then stays occupied,
 * neither destroyable nor reusable, until the iommufd is closed.
 */
struct iommu_vdevice_alloc {
	__u32 size;
	__u32 viommu_id;
	__u32 dev_id;
	__u32 out_vdevice_id;
	__aligned_u64 virt_id;
};
#define IOMMU_VDEVICE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC)

/**
 * struct iommu_ioas_change_process - ioctl(IOMMU_IOAS_CHANGE_PROCESS)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_ioas_change_process)
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 *
 * Moves the pinned-memory accounting of every mapping in every IOAS of this
 * iommufd to the calling process, which is how a device can be handed over
 * to another process, e.g. during a live update of the userspace driver.
 * All mappings must have been made with IOMMU_IOAS_MAP_FILE; any other kind
 * gives EINVAL. The operation is all or nothing: on failure no accounting
 * has moved.
 */
struct iommu_ioas_change_process {
	__u32 size;
	__u32 __reserved;
};

#define IOMMU_IOAS_CHANGE_PROCESS \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS)

/**
 * enum iommu_veventq_flag - Flags of struct iommufd_vevent_header
 * @IOMMU_VEVENTQ_FLAG_LOST_EVENTS: Marker header, with no data after it,
 *                                  telling that the queue overflowed and
 *                                  events were dropped
 */
enum iommu_veventq_flag {
	IOMMU_VEVENTQ_FLAG_LOST_EVENTS = (1U << 0),
};

/**
 * struct iommufd_vevent_header - Header in front of each vEVENT
 * @flags: Any combination of enum iommu_veventq_flag
 * @sequence: Position of the event in the queue's stream; it counts from 0
 *            up to INT_MAX and then starts over at 0
 *
 * Reading a vEVENTQ fd returns one or more records, each made of this
 * header followed by the type-specific event data.
 *
 * Consecutive events carry consecutive @sequence values, so a jump of N + 1
 * between two headers means N events were lost in between. When events are
 * lost after the last one that was queued, there is no later header to show
 * the gap; in that case the queue ends with a header that has
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS set and the next @sequence value, without
 * any data following it.
 */
struct iommufd_vevent_header {
	__u32 flags;
	__u32 sequence;
};

/**
 * enum iommu_veventq_type - Kind of virtual event queue
 * @IOMMU_VEVENTQ_TYPE_DEFAULT: Placeholder; not accepted by
 *                              IOMMU_VEVENTQ_ALLOC (EOPNOTSUPP)
 * @IOMMU_VEVENTQ_TYPE_ARM_SMMUV3: ARM SMMUv3 event records, data is struct
 *                                 iommu_vevent_arm_smmuv3
 * @IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV: Tegra241 CMDQV error interrupts, data
 *                                     is struct iommu_vevent_tegra241_cmdqv
 */
enum iommu_veventq_type {
	IOMMU_VEVENTQ_TYPE_DEFAULT = 0,
	IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1,
	IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2,
};

/**
 * struct iommu_vevent_arm_smmuv3 - ARM SMMUv3 virtual event
 *                                  (IOMMU_VEVENTQ_TYPE_ARM_SMMUV3)
 * @evt: The 256-bit event record (section 7.3 of the SMMUv3 specification),
 *       in little-endian byte order. The events forwarded are
 *       C_BAD_STE (0x04), F_STREAM_DISABLED (0x06), C_BAD_SUBSTREAMID
 *       (0x08), C_BAD_CD (0x0a), F_TRANSLATION (0x10), F_ADDR_SIZE (0x11),
 *       F_ACCESS (0x12) and F_PERMISSION (0x13)
 *
 * The StreamID field of the record holds the virtual ID of the device, which
 * is why events are only delivered for devices that have a vDEVICE
 * (IOMMU_VDEVICE_ALLOC).
 */
struct iommu_vevent_arm_smmuv3 {
	__aligned_le64 evt[4];
};

/**
 * struct iommu_vevent_tegra241_cmdqv - Tegra241 CMDQV error interrupt event
 *                                      (IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV)
 * @lvcmdq_err_map: The 128-bit logical VCMDQ error map of the VINTF (the
 *                  LVCMDQ_ERR_MAP registers), in little-endian byte order
 *
 * The hardware reports in this map only the errors of the virtual interface
 * that backs the vIOMMU; the kernel forwards the register contents as read.
 */
struct iommu_vevent_tegra241_cmdqv {
	__aligned_le64 lvcmdq_err_map[2];
};

/**
 * struct iommu_veventq_alloc - ioctl(IOMMU_VEVENTQ_ALLOC)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_veventq_alloc)
 * @flags: No flags are defined; any set bit gives EOPNOTSUPP
 * @viommu_id: The vIOMMU whose events the queue receives
 * @type: Kind of queue, one of enum iommu_veventq_type other than
 *        IOMMU_VEVENTQ_TYPE_DEFAULT (EOPNOTSUPP otherwise)
 * @veventq_depth: Capacity of the queue in events; zero or an excessive
 *                 value gives EINVAL
 * @out_veventq_id: Output: object ID assigned to the created vEVENTQ
 * @out_veventq_fd: Filled by the kernel with a new file descriptor for the
 *                  queue; userspace owns it and has to close it
 * @__reserved: Reserved, must be zero (EOPNOTSUPP otherwise)
 *
 * Creates a vEVENTQ, a queue that delivers the events of one @type from a
 * vIOMMU to userspace. A vIOMMU may have several queues, but only one per
 * @type (EEXIST). Userspace read()s @out_veventq_fd and gets a sequence of
 * records, each a struct iommufd_vevent_header followed by the data of
 * @type; the read size must fit at least one whole record. If more than
 * @veventq_depth events are pending, new events are dropped and a final
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS header reports the loss.
 */
struct iommu_veventq_alloc {
	__u32 size;
	__u32 flags;
	__u32 viommu_id;
	__u32 type;
	__u32 veventq_depth;
	__u32 out_veventq_id;
	__u32 out_veventq_fd;
	__u32 __reserved;
};
#define IOMMU_VEVENTQ_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC)

/**
 * enum iommu_hw_queue_type - Kind of hardware-accelerated queue
 * @IOMMU_HW_QUEUE_TYPE_DEFAULT: Placeholder; not accepted by
 *                               IOMMU_HW_QUEUE_ALLOC (EOPNOTSUPP)
 * @IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV: A virtual command queue (VCMDQ) of
 *    the NVIDIA Tegra241 CMDQV extension of ARM SMMUv3. Allocation fails
 *    unless: queues are allocated with ascending index starting at 0 and
 *    destroyed in the reverse order; the queue memory is mapped in the IOAS
 *    and its base is aligned to its length; the length is a power of two of
 *    at least 32 bytes and at most 2^IDR1.CMDQS * 16 bytes (IDR1 as reported
 *    in struct iommu_hw_info_arm_smmuv3). A simple way to get physically
 *    contiguous queue memory is to back it with one huge page aligned to
 *    the queue size and to cap the emulated IDR1.CMDQS at
 *    log2(huge page size / 16)
 */
enum iommu_hw_queue_type {
	IOMMU_HW_QUEUE_TYPE_DEFAULT = 0,
	IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1,
};

/**
 * struct iommu_hw_queue_alloc - ioctl(IOMMU_HW_QUEUE_ALLOC)
 * @size: Byte size of the caller's structure,
 *        sizeof(struct iommu_hw_queue_alloc)
 * @flags: No flags are defined; any set bit gives EOPNOTSUPP
 * @viommu_id: The vIOMMU the queue belongs to
 * @type: Kind of queue, one of enum iommu_hw_queue_type other than
 *        IOMMU_HW_QUEUE_TYPE_DEFAULT (EOPNOTSUPP otherwise)
 * @index: Number of this queue among the queues of @type on the vIOMMU
 * @out_hw_queue_id: Output: object ID assigned to the created HW queue
 * @nesting_parent_iova: Guest physical address of the queue memory, i.e. an
 *                       IOVA of the vIOMMU's nesting parent
 * @length: Size in bytes of the queue memory; zero gives EINVAL and a range
 *          that wraps around gives EOVERFLOW
 *
 * Creates a HW queue object: a queue in guest memory that the IOMMU hardware
 * reads directly on behalf of the guest, such as an accelerated command
 * queue. The kernel pins the memory at [nesting_parent_iova,
 * nesting_parent_iova + length), which must be mapped in the IOAS of the
 * vIOMMU's nesting parent and be physically contiguous (EFAULT otherwise),
 * and hands its physical address to the hardware. Several queues may exist
 * on one vIOMMU; within one @type each needs its own @index, for example
 * queues 0 and 1 of one type next to queue 0 of another.
 */
struct iommu_hw_queue_alloc {
	__u32 size;
	__u32 flags;
	__u32 viommu_id;
	__u32 type;
	__u32 index;
	__u32 out_hw_queue_id;
	__aligned_u64 nesting_parent_iova;
	__aligned_u64 length;
};
#define IOMMU_HW_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC)
/**
 * struct iommu_execute_wbinvd - ioctl(IOMMU_EXECUTE_WBINVD)
 * @size: sizeof(struct iommu_execute_wbinvd)
 * @flags: Must be 0 (EOPNOTSUPP otherwise)
 *
 * iommufd-rs extension. Writes back and invalidates the data caches of the
 * CPUs the calling thread may run on (x86 WBINVD on each CPU of its
 * affinity mask), for a VMM that emulates a guest's WBINVD itself instead
 * of leaving it to KVM; KVM likewise flushes only the CPUs a vCPU ran on,
 * so a vCPU thread should call it with the affinity it runs the vCPU with.
 * A caller is entitled to it only while a device bound to this iommufd does
 * non-coherent DMA (the state IOMMU_HW_CAP_NONCOHERENT_DMA reports): only
 * then can the device's writes bypass the caches the flush is about.
 * Otherwise the command fails with EPERM and flushes nothing. EOPNOTSUPP on
 * architectures without such an instruction.
 *
 * A flush stalls the CPUs it reaches for the time the hardware takes to
 * write back their caches, and drains caches they share with other CPUs,
 * other tenants' included. The entitlement above limits who can impose that
 * cost and the CPU set limits where; the flushes of one iommufd also run
 * one at a time and at least one millisecond apart (a caller that comes
 * sooner waits), so one iommufd imposes at most a thousand a second (see
 * Documentation/iommufd_rs/coherency.rst).
 */
struct iommu_execute_wbinvd {
	__u32 size;
	__u32 flags;
};
#define IOMMUFD_CMD_EXECUTE_WBINVD 0xc0
#define IOMMU_EXECUTE_WBINVD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_EXECUTE_WBINVD)

/**
 * struct iommu_test_device_no_snoop - ioctl(IOMMU_TEST_DEVICE_NO_SNOOP)
 * @size: sizeof(struct iommu_test_device_no_snoop)
 * @dev_id: A device bound to this iommufd
 * @no_snoop: 1: treat the device as able to issue No-Snoop DMA; 0: go back to
 *            what probing the device found
 * @__reserved: Must be zero (EOPNOTSUPP otherwise)
 *
 * iommufd-rs test-only command, served only by kernels built with
 * CONFIG_IOMMUFD_RS_TEST (ENOTTY otherwise), and only to CAP_SYS_ADMIN
 * (EPERM). No device QEMU emulates has a writable "Enable No Snoop" bit, so
 * tests use it to reach the cases where a device can do non-coherent DMA; the
 * IOMMU side stays real. The device must not be attached (EBUSY), so that the
 * live state follows from the next attach.
 */
struct iommu_test_device_no_snoop {
	__u32 size;
	__u32 dev_id;
	__u32 no_snoop;
	__u32 __reserved;
};
#define IOMMUFD_CMD_TEST_DEVICE_NO_SNOOP 0xe0
#define IOMMU_TEST_DEVICE_NO_SNOOP \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_TEST_DEVICE_NO_SNOOP)

/**
 * struct iommu_test_coherency_events - ioctl(IOMMU_TEST_COHERENCY_EVENTS)
 * @size: sizeof(struct iommu_test_coherency_events)
 * @dev_id: A device bound to this iommufd, or 0 for the context itself
 * @out_events: Number of coherency events published on that object so far
 * @out_state: The last one: 1 if it had non-coherent DMA present, else 0
 *
 * iommufd-rs test-only command (CONFIG_IOMMUFD_RS_TEST kernels only, ENOTTY
 * otherwise). Each context and bound device publishes its "non-coherent DMA
 * present" state to in-kernel subscribers (the KVM-VFIO device) after every
 * attach, replace, detach and unbind; test kernels add a subscriber that
 * counts, and this command reads it.
 */
struct iommu_test_coherency_events {
	__u32 size;
	__u32 dev_id;
	__u32 out_events;
	__u32 out_state;
};
#define IOMMUFD_CMD_TEST_COHERENCY_EVENTS 0xe1
#define IOMMU_TEST_COHERENCY_EVENTS \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_TEST_COHERENCY_EVENTS)

#endif
