// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace ABI tests for the iommufd-rs /dev/iommu, second slice:
 * IOMMU_IOAS_MAP, IOMMU_IOAS_UNMAP, IOMMU_IOAS_ALLOW_IOVAS and
 * IOMMU_IOAS_COPY, and what they do (or do not do) to IOMMU_IOAS_IOVA_RANGES;
 * IOMMU_OPTION (RLIMIT_MODE, HUGE_PAGES) and IOMMU_IOAS_MAP_FILE.
 *
 * Every IOAS here has no device and no domain attached. The expectations
 * are what upstream Linux 7.3 does in exactly that situation
 * (drivers/iommu/iommufd/{ioas,io_pagetable,pages}.c); the main consequences
 * of "no domain" are:
 *  - nothing is pinned or even looked at in the user's address space at map
 *    time, so any user_va works as long as user_va + length does not wrap;
 *  - the IOAS has no reserved ranges and an IOVA alignment of 1, so IOVAs,
 *    lengths and user_va need no particular alignment, and IOVA_RANGES keeps
 *    reporting [0, UINT64_MAX] whatever is mapped or allowed;
 *  - ALLOW_IOVAS only steers kernel-chosen IOVAs; fixed maps and existing
 *    mappings are never checked against it.
 *
 * Nothing uses IOMMU_TEST_CMD. A missing /dev/iommu is a failure, not a
 * skip.
 */
#include <stdio.h>
#include <sys/wait.h>

#include <linux/udmabuf.h>

#include "iommufd_utils.h"

#define UNTOUCHED_U64 0x5a5a5a5a5a5a5a5aULL
#define MiB (1ULL << 20)
#define PSZ ((__u64)PAGE_SIZE)
#define HALF (1ULL << 63)
/* fixture buffer: mapped but never touched, so it costs no memory */
#define BUF_SIZE (16 * MiB)

/*
 * Upper bound on the alignment of a kernel-chosen IOVA. Upstream caps it at
 * HPAGE_SIZE when built with CONFIG_TRANSPARENT_HUGEPAGE (the PMD size, as
 * reported in hpage_pmd_size) and at PAGE_SIZE otherwise.
 */
static __u64 max_auto_align;

static void init_max_auto_align(void)
{
	unsigned long long v = 0;
	FILE *f;

	max_auto_align = PSZ;
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	if (!f)
		return;
	if (fscanf(f, "%llu", &v) == 1 && v >= PSZ && !(v & (v - 1)))
		max_auto_align = v;
	fclose(f);
}

static __u64 roundup_pow2(__u64 x)
{
	__u64 r = 1;

	while (r < x)
		r <<= 1;
	return r;
}

static __u64 lowest_bit(__u64 x)
{
	return x & -x;
}

/*
 * The alignment upstream gives a kernel-chosen IOVA for @length bytes that
 * start at user address @va: the length rounded up to a power of two, but no
 * more than the alignment @va itself has (unless @va is 0), and never more
 * than max_auto_align.
 */
static __u64 auto_align(__u64 va, __u64 length)
{
	__u64 a = roundup_pow2(length);

	if (va && lowest_bit(va) < a)
		a = lowest_bit(va);
	if (a > max_auto_align)
		a = max_auto_align;
	return a;
}

/*
 * The IOVA upstream picks when the first free gap big enough starts at
 * @start: @start aligned up as above, with @va's offset inside its page
 * OR-ed in. Kernel-chosen IOVAs are searched for in
 * [PAGE_SIZE, UINT64_MAX - PAGE_SIZE], so on an empty IOAS without allowed
 * ranges @start is PAGE_SIZE.
 */
static __u64 auto_pick(__u64 start, __u64 va, __u64 length)
{
	__u64 a = auto_align(va, length);

	return ((start + a - 1) & ~(a - 1)) | (va % PSZ);
}

FIXTURE(iommufd_ioas)
{
	int fd;
	__u32 ioas_id;
	__u8 *buf;
};

FIXTURE_SETUP(iommufd_ioas)
{
	__u64 align, raw;
	void *p;

	self->fd = -1;
	open_iommufd_or_fail(&self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);

	init_max_auto_align();
	/* aligned well beyond anything auto_align() can return */
	align = 4 * max_auto_align > 4 * MiB ? 4 * max_auto_align : 4 * MiB;
	p = mmap(NULL, BUF_SIZE + align, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	raw = (uintptr_t)p;
	self->buf = (__u8 *)(uintptr_t)((raw + align - 1) & ~(align - 1));
}

FIXTURE_TEARDOWN(iommufd_ioas)
{
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

/* A fixed map of [iova, iova + length) must fit: map it, then unmap it. */
static void __expect_free(struct __test_metadata *_metadata, int fd,
			  __u32 ioas_id, const void *buf, __u64 iova,
			  __u64 length)
{
	__u64 i = iova, out = 0;

	EXPECT_EQ(0, _test_ioctl_ioas_map(fd, ioas_id, buf, length, &i,
					  MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))
	{
		TH_LOG("[0x%llx, +0x%llx) should be free: %s",
		       (unsigned long long)iova, (unsigned long long)length,
		       strerror(errno));
		return;
	}
	EXPECT_EQ(0, _test_ioctl_ioas_unmap(fd, ioas_id, iova, length, &out));
	EXPECT_EQ(length, out);
}
#define expect_free(ioas_id, iova, length) \
	__expect_free(_metadata, self->fd, ioas_id, self->buf, iova, length)

/* Something already overlaps [iova, iova + length). */
#define expect_used(ioas_id, iova, length) \
	test_err_ioctl_ioas_map_fixed(EEXIST, ioas_id, self->buf, length, iova)

/* With no device attached IOVA_RANGES always reports one full range. */
static void __expect_full_iova_range(struct __test_metadata *_metadata,
				     int fd, __u32 ioas_id)
{
	struct iommu_iova_range r[2] = {
		{ UNTOUCHED_U64, UNTOUCHED_U64 },
		{ UNTOUCHED_U64, UNTOUCHED_U64 },
	};
	__u64 align = UNTOUCHED_U64;
	__u32 num = 2;

	ASSERT_EQ(0, _test_ioctl_ioas_iova_ranges(fd, ioas_id, &num, r,
						  &align));
	EXPECT_EQ(1U, num);
	EXPECT_EQ(1U, align);
	EXPECT_EQ(0U, r[0].start);
	EXPECT_EQ(UINT64_MAX, r[0].last);
	EXPECT_EQ(UNTOUCHED_U64, r[1].start);
}
#define expect_full_iova_range(ioas_id) \
	__expect_full_iova_range(_metadata, self->fd, ioas_id)

/* Map with an explicit flags word (e.g. read-only), fixed IOVA. */
#define map_fixed_flags(ioas_id, buf, length, iova, flags)                    \
	({                                                                    \
		__u64 __i = (iova);                                           \
		ASSERT_EQ(0, _test_ioctl_ioas_map(                            \
				     self->fd, ioas_id, buf, length, &__i,    \
				     (flags) | IOMMU_IOAS_MAP_FIXED_IOVA))    \
			TH_LOG("map flags 0x%x: %s", (unsigned int)(flags),   \
			       strerror(errno));                              \
	})

/*
 * Size rules shared by every command: shorter than the minimum is EINVAL,
 * a non-zero byte past the known struct is E2BIG. Both are decided before
 * the command runs, so @cmd must come back as it went in.
 */
static void check_size_rules(struct __test_metadata *_metadata, int fd,
			     unsigned long nr, void *cmd, size_t len,
			     size_t min)
{
	__u8 before[64];

	ASSERT_GE(sizeof(before), len);
	memcpy(before, cmd, len);

	EXPECT_ERRNO(EINVAL, _test_ioctl_sized(fd, nr, cmd, len, min - 1,
					       SIZE_MAX, 0));
	EXPECT_ERRNO(EINVAL, _test_ioctl_sized(fd, nr, cmd, len, 0, SIZE_MAX,
					       0));
	EXPECT_ERRNO(EINVAL, _test_ioctl_sized(fd, nr, cmd, len,
					       sizeof(__u32), SIZE_MAX, 0));
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(fd, nr, cmd, len, len + 1, len,
					      0xff));
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(fd, nr, cmd, len, len + 64,
					      len + 63, 0x01));
	/* the size word in @cmd is whatever was last sent; compare the rest */
	EXPECT_EQ(0, memcmp(before + 4, (__u8 *)cmd + 4, len - 4));
}

TEST_F(iommufd_ioas, cmd_length_map)
{
	const size_t len = sizeof(struct iommu_ioas_map);
	const size_t min = offsetofend(struct iommu_ioas_map, iova);
	const __u64 x = 16 * PSZ;
	struct iommu_ioas_map cmd = {
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = self->ioas_id,
		.user_va = (uintptr_t)self->buf,
		.length = PSZ,
		.iova = x,
	};

	check_size_rules(_metadata, self->fd, IOMMU_IOAS_MAP, &cmd, len, min);
	/* nothing was mapped by the rejected calls */
	expect_free(self->ioas_id, x, PSZ);

	/* a zero tail is accepted */
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_MAP, &cmd, len,
				       len + 1, SIZE_MAX, 0))
		TH_LOG("IOMMU_IOAS_MAP size+1: %s", strerror(errno));
	EXPECT_EQ(x, cmd.iova);
	test_ioctl_ioas_unmap(self->ioas_id, x, PSZ);

	/* and the kernel's IOVA is written back through it */
	cmd.flags = MAP_RW;
	cmd.iova = UNTOUCHED_U64;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_MAP, &cmd, len,
				       len + 64, SIZE_MAX, 0));
	EXPECT_EQ(auto_pick(PSZ, cmd.user_va, PSZ), cmd.iova);
	test_ioctl_ioas_unmap(self->ioas_id, cmd.iova, PSZ);

	/* exactly the minimum */
	cmd.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA;
	cmd.iova = x;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_MAP, &cmd, len,
				       min, SIZE_MAX, 0));
	test_ioctl_ioas_unmap_all(self->ioas_id, PSZ);
}

TEST_F(iommufd_ioas, cmd_length_unmap)
{
	const size_t len = sizeof(struct iommu_ioas_unmap);
	const size_t min = offsetofend(struct iommu_ioas_unmap, length);
	const __u64 x = 16 * PSZ;
	struct iommu_ioas_unmap cmd = {
		.ioas_id = self->ioas_id,
		.iova = x,
		.length = PSZ,
	};

	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, x);
	check_size_rules(_metadata, self->fd, IOMMU_IOAS_UNMAP, &cmd, len,
			 min);
	/* still mapped */
	expect_used(self->ioas_id, x, PSZ);

	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_UNMAP, &cmd, len,
				       len + 1, SIZE_MAX, 0))
		TH_LOG("IOMMU_IOAS_UNMAP size+1: %s", strerror(errno));
	EXPECT_EQ(PSZ, cmd.length);
	/* gone: the same command now finds nothing */
	EXPECT_ERRNO(ENOENT, _test_ioctl_sized(self->fd, IOMMU_IOAS_UNMAP,
					       &cmd, len, len + 64, SIZE_MAX,
					       0));
	/* unmap-all through an oversized command */
	cmd.iova = 0;
	cmd.length = UINT64_MAX;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_UNMAP, &cmd, len,
				       len + 8, SIZE_MAX, 0));
	EXPECT_EQ(0U, cmd.length);
}

TEST_F(iommufd_ioas, cmd_length_allow_iovas)
{
	const size_t len = sizeof(struct iommu_ioas_allow_iovas);
	const size_t min =
		offsetofend(struct iommu_ioas_allow_iovas, allowed_iovas);
	const __u64 r = 1ULL << 30;
	struct iommu_iova_range range = { r, r + 4 * PSZ - 1 };
	struct iommu_ioas_allow_iovas cmd = {
		.ioas_id = self->ioas_id,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
	};
	__u64 iova = 0;

	check_size_rules(_metadata, self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd,
			 len, min);
	/* the allowed set was not installed: placement is unconstrained */
	test_ioctl_ioas_map(self->ioas_id, self->buf, PSZ, &iova);
	EXPECT_EQ(auto_pick(PSZ, (uintptr_t)self->buf, PSZ), iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, PSZ);

	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd,
				       len, len + 1, SIZE_MAX, 0))
		TH_LOG("IOMMU_IOAS_ALLOW_IOVAS size+1: %s", strerror(errno));
	test_ioctl_ioas_map(self->ioas_id, self->buf, PSZ, &iova);
	EXPECT_EQ(r, iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, PSZ);
}

TEST_F(iommufd_ioas, cmd_length_copy)
{
	const size_t len = sizeof(struct iommu_ioas_copy);
	const size_t min = offsetofend(struct iommu_ioas_copy, src_iova);
	const __u64 x = 16 * PSZ, y = 64 * PSZ;
	struct iommu_ioas_copy cmd = {
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.src_ioas_id = self->ioas_id,
		.length = PSZ,
		.dst_iova = y,
		.src_iova = x,
	};

	test_ioctl_ioas_alloc(&cmd.dst_ioas_id);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, x);

	check_size_rules(_metadata, self->fd, IOMMU_IOAS_COPY, &cmd, len, min);
	expect_free(cmd.dst_ioas_id, y, PSZ);

	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_COPY, &cmd, len,
				       len + 1, SIZE_MAX, 0))
		TH_LOG("IOMMU_IOAS_COPY size+1: %s", strerror(errno));
	EXPECT_EQ(y, cmd.dst_iova);
	test_ioctl_ioas_unmap(cmd.dst_ioas_id, y, PSZ);

	/* kernel-chosen destination, answer written back */
	cmd.flags = MAP_RW;
	cmd.dst_iova = UNTOUCHED_U64;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_COPY, &cmd, len,
				       len + 64, SIZE_MAX, 0));
	EXPECT_EQ(auto_pick(PSZ, (uintptr_t)self->buf, PSZ), cmd.dst_iova);
	test_ioctl_ioas_unmap_all(cmd.dst_ioas_id, PSZ);
}

/* A failed MAP must not write the command back. */
#define map_fails(_errno, cmdp)                                               \
	({                                                                    \
		struct iommu_ioas_map __in = *(cmdp);                         \
		EXPECT_ERRNO(_errno, ioctl(self->fd, IOMMU_IOAS_MAP, cmdp));  \
		EXPECT_EQ(0, memcmp(&__in, cmdp, sizeof(__in)));              \
	})

TEST_F(iommufd_ioas, map_bad_args)
{
	const struct iommu_ioas_map good = {
		.size = sizeof(good),
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = self->ioas_id,
		.user_va = (uintptr_t)self->buf,
		.length = PSZ,
		.iova = 16 * PSZ,
	};
	struct iommu_ioas_map cmd;
	unsigned int bit;
	__u32 dead_id;

	test_ioctl_ioas_alloc(&dead_id);
	test_ioctl_destroy(dead_id);

	/* unknown flags and __reserved: EOPNOTSUPP, before anything else */
	for (bit = 3; bit < 32; bit++) {
		cmd = good;
		cmd.flags |= 1U << bit;
		map_fails(EOPNOTSUPP, &cmd);
	}
	for (bit = 0; bit < 32; bit++) {
		cmd = good;
		cmd.__reserved = 1U << bit;
		map_fails(EOPNOTSUPP, &cmd);
	}
	cmd = good;
	cmd.flags = UINT32_MAX;
	cmd.ioas_id = dead_id;
	cmd.length = 0;
	cmd.iova = UINT64_MAX;
	map_fails(EOPNOTSUPP, &cmd);

	/* iova or length of UINT64_MAX (>= ULONG_MAX): EOVERFLOW */
	cmd = good;
	cmd.iova = UINT64_MAX;
	map_fails(EOVERFLOW, &cmd);
	/* the iova field is checked even when the kernel picks the IOVA */
	cmd.flags = MAP_RW;
	map_fails(EOVERFLOW, &cmd);
	cmd = good;
	cmd.length = UINT64_MAX;
	map_fails(EOVERFLOW, &cmd);
	/* ... and before the access flags and the IOAS id */
	cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	cmd.ioas_id = dead_id;
	map_fails(EOVERFLOW, &cmd);

	/* neither READABLE nor WRITEABLE: EINVAL, before the id lookup */
	cmd = good;
	cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	map_fails(EINVAL, &cmd);
	cmd.flags = 0;
	map_fails(EINVAL, &cmd);
	cmd.ioas_id = dead_id;
	cmd.length = 0;
	map_fails(EINVAL, &cmd);

	/* bad IOAS ids: ENOENT, before any range check */
	cmd = good;
	cmd.ioas_id = 0;
	map_fails(ENOENT, &cmd);
	cmd.ioas_id = UINT32_MAX;
	map_fails(ENOENT, &cmd);
	cmd.ioas_id = dead_id;
	map_fails(ENOENT, &cmd);
	cmd.length = 0;
	map_fails(ENOENT, &cmd);

	/* zero length: EINVAL, fixed or not */
	cmd = good;
	cmd.length = 0;
	map_fails(EINVAL, &cmd);
	cmd.flags = MAP_RW;
	cmd.iova = UNTOUCHED_U64;
	map_fails(EINVAL, &cmd);
	cmd.user_va = UINT64_MAX;
	map_fails(EINVAL, &cmd);

	/* user_va + length beyond the top of the address space: EOVERFLOW */
	cmd = good;
	cmd.user_va = UINT64_MAX - PSZ + 1;
	map_fails(EOVERFLOW, &cmd);
	cmd.user_va = UINT64_MAX;
	cmd.length = 1;
	map_fails(EOVERFLOW, &cmd);
	cmd.user_va = (uintptr_t)self->buf;
	cmd.length = UINT64_MAX - PSZ;
	map_fails(EOVERFLOW, &cmd);

	/* lengths the page tracking cannot describe (> SIZE_MAX - PAGE_SIZE) */
	cmd = good;
	cmd.user_va = 0;
	cmd.iova = 0;
	cmd.length = UINT64_MAX - PSZ + 1;
	map_fails(EINVAL, &cmd);
	cmd.length = UINT64_MAX - 1;
	map_fails(EINVAL, &cmd);

	/* fixed iova + length wraps: EOVERFLOW */
	cmd = good;
	cmd.iova = UINT64_MAX - PSZ + 2;
	map_fails(EOVERFLOW, &cmd);
	cmd.iova = UINT64_MAX - 1;
	cmd.length = 3;
	map_fails(EOVERFLOW, &cmd);

	/* none of that mapped anything; IOVA_RANGES is unaffected */
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);
	expect_full_iova_range(self->ioas_id);
	/* and the good command works */
	cmd = good;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_MAP, &cmd));
	EXPECT_EQ(good.iova, cmd.iova);
}

TEST_F(iommufd_ioas, map_fixed)
{
	const __u64 x = 16 * PSZ;
	__u8 *buf = self->buf;

	test_ioctl_ioas_map_fixed(self->ioas_id, buf, 2 * PSZ, x);

	/* any overlap with an existing mapping is EEXIST */
	expect_used(self->ioas_id, x, 2 * PSZ);
	expect_used(self->ioas_id, x, PSZ);
	expect_used(self->ioas_id, x + PSZ, PSZ);
	expect_used(self->ioas_id, x - PSZ, 2 * PSZ);
	expect_used(self->ioas_id, x - PSZ, 4 * PSZ);
	expect_used(self->ioas_id, x + 2 * PSZ - 1, 1);
	expect_used(self->ioas_id, x - 1, 2);
	expect_used(self->ioas_id, x + PSZ + 7, 3);

	/* touching it on either side is fine */
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ, x - PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ, x + 2 * PSZ);
	/* and the three are separate mappings */
	test_ioctl_ioas_unmap(self->ioas_id, x - PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, x + 2 * PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, x, 2 * PSZ);

	/* IOVA 0 can be mapped explicitly */
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ, 0);
	/* and so can the very top of the IOVA space */
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ,
				  UINT64_MAX - PSZ + 1);
	test_ioctl_ioas_unmap(self->ioas_id, UINT64_MAX - PSZ + 1, PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, 2, UINT64_MAX - 1);
	expect_used(self->ioas_id, UINT64_MAX - 2, 2);
	test_ioctl_ioas_unmap(self->ioas_id, UINT64_MAX - 1, 2);
	test_ioctl_ioas_unmap(self->ioas_id, 0, PSZ);

	/* alignment 1: odd iova, odd length, odd user_va */
	test_ioctl_ioas_map_fixed(self->ioas_id, buf + 1, 3, 0x1001);
	test_ioctl_ioas_map_fixed(self->ioas_id, buf + 5, 1, 0x1004);
	test_ioctl_ioas_map_fixed(self->ioas_id, buf + 4093, 0x1ffb, 0x1000 +
				  5 * PSZ + 3);
	expect_used(self->ioas_id, 0x1003, 1);
	expect_used(self->ioas_id, 0x1000, 2);
	expect_free(self->ioas_id, 0x1000, 1);
	expect_free(self->ioas_id, 0x1005, 7);
	test_ioctl_ioas_unmap(self->ioas_id, 0x1001, 3);
	test_ioctl_ioas_unmap(self->ioas_id, 0x1004, 1);
	test_ioctl_ioas_unmap(self->ioas_id, 0x1000 + 5 * PSZ + 3, 0x1ffb);

	/* one access direction is enough */
	map_fixed_flags(self->ioas_id, buf, PSZ, x,
			IOMMU_IOAS_MAP_READABLE);
	map_fixed_flags(self->ioas_id, buf, PSZ, x + PSZ,
			IOMMU_IOAS_MAP_WRITEABLE);
	test_ioctl_ioas_unmap_all(self->ioas_id, 2 * PSZ);
	expect_full_iova_range(self->ioas_id);
}

/*
 * Without a domain nothing is pinned at map time: the user range is only
 * recorded. So user_va need not be mapped, accessible, writable, or even a
 * user address; the only check is that user_va + length does not wrap.
 */
TEST_F(iommufd_ioas, map_unpinned_user_va)
{
	__u8 *hole, *none, *ro;
	__u64 iova = 0, len;

	hole = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 4 * PSZ));
	none = mmap(NULL, PSZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	ro = mmap(NULL, PSZ, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);

	test_ioctl_ioas_map_fixed(self->ioas_id, NULL, PSZ, 16 * PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, hole, 4 * PSZ, 32 * PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, none, PSZ, 48 * PSZ);
	/* WRITEABLE on read-only memory */
	test_ioctl_ioas_map_fixed(self->ioas_id, ro, PSZ, 64 * PSZ);
	/* addresses far outside the user half */
	test_ioctl_ioas_map_fixed(self->ioas_id,
				  (void *)(uintptr_t)(UINT64_MAX - 2 * PSZ + 1),
				  PSZ, 80 * PSZ);
	/* ending exactly at the last byte does not wrap */
	test_ioctl_ioas_map_fixed(self->ioas_id,
				  (void *)(uintptr_t)(UINT64_MAX - PSZ + 1),
				  PSZ - 1, 96 * PSZ);
	test_err_ioctl_ioas_map_fixed(EOVERFLOW, self->ioas_id,
				      (void *)(uintptr_t)(UINT64_MAX - PSZ + 1),
				      PSZ, 112 * PSZ);

	test_ioctl_ioas_unmap(self->ioas_id, 16 * PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, 32 * PSZ, 4 * PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, 48 * PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, 64 * PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, 80 * PSZ, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, 96 * PSZ, PSZ - 1);

	/* kernel-chosen IOVA for a NULL user_va: aligned by length alone */
	for (len = PSZ; len <= 9 * PSZ; len += 2 * PSZ) {
		test_ioctl_ioas_map(self->ioas_id, NULL, len, &iova);
		EXPECT_EQ(auto_pick(PSZ, 0, len), iova)
			TH_LOG("length 0x%llx, max align 0x%llx",
			       (unsigned long long)len,
			       (unsigned long long)max_auto_align);
		test_ioctl_ioas_unmap(self->ioas_id, iova, len);
	}

	munmap(none, PSZ);
	munmap(ro, PSZ);
}

/*
 * Since nothing is pinned, almost the whole 64-bit IOVA space can be mapped
 * at once. This reaches the length limits of MAP and fills the window the
 * kernel chooses IOVAs from.
 */
TEST_F(iommufd_ioas, map_huge_lazy)
{
	/* exactly [PAGE_SIZE, UINT64_MAX - PAGE_SIZE] */
	const __u64 window = UINT64_MAX - 2 * PSZ + 1;
	__u64 iova = UNTOUCHED_U64;

	/* the longest length accepted at all is SIZE_MAX - PAGE_SIZE */
	test_ioctl_ioas_map_fixed(self->ioas_id, NULL, UINT64_MAX - PSZ, 0);
	test_ioctl_ioas_unmap_all(self->ioas_id, UINT64_MAX - PSZ);
	test_err_ioctl_ioas_map_fixed(EINVAL, self->ioas_id, NULL,
				      UINT64_MAX - PSZ + 1, 0);

	/* a kernel-chosen IOVA needs length < ULONG_MAX / 2 */
	test_err_ioctl_ioas_map(EOVERFLOW, self->ioas_id, NULL, UINT64_MAX / 2,
				&iova);
	test_err_ioctl_ioas_map(EOVERFLOW, self->ioas_id, NULL, HALF, &iova);
	EXPECT_EQ(UNTOUCHED_U64, iova);
	test_ioctl_ioas_map(self->ioas_id, NULL, UINT64_MAX / 2 - 1, &iova);
	EXPECT_EQ(auto_pick(PSZ, 0, UINT64_MAX / 2 - 1), iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, UINT64_MAX / 2 - 1);

	/* fill the whole window the kernel picks from */
	test_ioctl_ioas_map_fixed(self->ioas_id, NULL, window, PSZ);
	iova = UNTOUCHED_U64;
	test_err_ioctl_ioas_map(ENOSPC, self->ioas_id, self->buf, PSZ, &iova);
	test_err_ioctl_ioas_map(ENOSPC, self->ioas_id, self->buf, 1, &iova);
	test_err_ioctl_ioas_map(ENOSPC, self->ioas_id, self->buf + 1, 1,
				&iova);
	EXPECT_EQ(UNTOUCHED_U64, iova);
	/* copies with a kernel-chosen IOVA have nowhere to go either */
	EXPECT_ERRNO(ENOSPC, _test_ioctl_ioas_copy(self->fd, self->ioas_id,
						   self->ioas_id, PSZ, PSZ,
						   &iova, MAP_RW));
	/* outside the window fixed IOVAs still work */
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, 0);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ - 1,
				  UINT64_MAX - PSZ + 1);
	expect_used(self->ioas_id, UINT64_MAX - PSZ, 1);
	/* the last byte is mappable, but not as a start */
	test_err_ioctl_ioas_map_fixed(EOVERFLOW, self->ioas_id, self->buf, 1,
				      UINT64_MAX);
	expect_full_iova_range(self->ioas_id);

	/* the big one can be unmapped on its own, exactly */
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, PSZ, window - 1);
	test_ioctl_ioas_unmap(self->ioas_id, PSZ, window);
	test_ioctl_ioas_unmap_all(self->ioas_id, PSZ + PSZ - 1);
}

TEST_F(iommufd_ioas, map_auto_iova_align)
{
	static const struct {
		__u64 off;     /* from the 4 MiB+ aligned buffer */
		__u64 pages;   /* length in pages ... */
		__u64 bytes;   /* ... plus this many bytes */
	} cases[] = {
		{ 0, 1, 0 },	  { 0, 2, 0 },	      { 0, 3, 0 },
		{ 0, 16, 0 },	  { 0, 512, 0 },      { 0, 1024, 0 },
		{ 0, 2048, 0 },	  { 0, 0, 1 },	      { 0, 0, 100 },
		{ 1, 0, 1 },	  { 3, 0, 100 },      { 0x10, 1, 0 },
		{ 0x800, 2, 0 },  { 4096, 8, 0 },     { 8192, 8, 0 },
		{ 65536, 256, 0 }, { 2 * MiB, 1024, 0 },
		{ 2 * MiB + 4096, 1024, 0 }, { 4095, 1, 1 },
	};
	unsigned int i;
	__u64 va, len, iova = 0, a;

	/*
	 * On an empty IOAS the placement is fully determined. An IOVA of 0 is
	 * never handed out, and the result keeps as much of the buffer's
	 * alignment as the length can use, up to the THP size.
	 */
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		va = (uintptr_t)self->buf + cases[i].off;
		len = cases[i].pages * PSZ + cases[i].bytes;
		a = auto_align(va, len);

		test_ioctl_ioas_map(self->ioas_id, (void *)(uintptr_t)va, len,
				    &iova);
		EXPECT_EQ(auto_pick(PSZ, va, len), iova)
			TH_LOG("case %u: va 0x%llx len 0x%llx align 0x%llx "
			       "(max 0x%llx)", i, (unsigned long long)va,
			       (unsigned long long)len, (unsigned long long)a,
			       (unsigned long long)max_auto_align);
		EXPECT_EQ(0U, iova % a);
		EXPECT_LE(PSZ, iova);
		test_ioctl_ioas_unmap(self->ioas_id, iova, len);
	}

	/* a THP-sized, THP-aligned buffer lands on a THP boundary */
	test_ioctl_ioas_map(self->ioas_id, self->buf, max_auto_align, &iova);
	EXPECT_EQ(max_auto_align, iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, max_auto_align);
	/* length rounds up: 3 pages want 4-page alignment */
	test_ioctl_ioas_map(self->ioas_id, self->buf, 3 * PSZ, &iova);
	EXPECT_EQ(max_auto_align >= 4 * PSZ ? 4 * PSZ : PSZ, iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, 3 * PSZ);
}

TEST_F(iommufd_ioas, map_auto_iova_first_fit)
{
	__u8 *buf = self->buf;
	__u64 iova = 0;

	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ, PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, buf, PSZ, 3 * PSZ);

	/* lowest gap that fits wins */
	test_ioctl_ioas_map(self->ioas_id, buf, PSZ, &iova);
	EXPECT_EQ(2 * PSZ, iova);
	test_ioctl_ioas_map(self->ioas_id, buf, PSZ, &iova);
	EXPECT_EQ(4 * PSZ, iova);
	/* a 1-byte map at an odd user address needs no alignment */
	test_ioctl_ioas_map(self->ioas_id, buf + 1, 1, &iova);
	EXPECT_EQ(5 * PSZ + 1, iova);
	/* the rest of that page is skipped by a page-aligned request */
	test_ioctl_ioas_map(self->ioas_id, buf, PSZ, &iova);
	EXPECT_EQ(6 * PSZ, iova);
	/* freed space is reused */
	test_ioctl_ioas_unmap(self->ioas_id, 2 * PSZ, PSZ);
	test_ioctl_ioas_map(self->ioas_id, buf, PSZ, &iova);
	EXPECT_EQ(2 * PSZ, iova);
	/* a gap too small for the request is passed over */
	test_ioctl_ioas_unmap(self->ioas_id, 4 * PSZ, PSZ);
	test_ioctl_ioas_map(self->ioas_id, buf + PSZ, 2 * PSZ, &iova);
	EXPECT_EQ(7 * PSZ, iova);
	test_ioctl_ioas_map(self->ioas_id, buf, PSZ, &iova);
	EXPECT_EQ(4 * PSZ, iova);

	test_ioctl_ioas_unmap_all(self->ioas_id, 7 * PSZ + 1);
}

TEST_F(iommufd_ioas, map_auto_iova_no_overlap)
{
	enum { NFIXED = 5, NAUTO = 200 };
	struct { __u64 start, last; } used[NFIXED + NAUTO];
	static const __u64 fixed_pg[NFIXED][2] = {
		{ 1, 1 }, { 5, 1 }, { 16, 4 }, { 100, 3 }, { 1024, 1 },
	};
	__u64 seed = 12345, total = 0, va, len, iova = 0, a;
	unsigned int n = 0, i, j;

	for (i = 0; i < NFIXED; i++) {
		len = fixed_pg[i][1] * PSZ;
		test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, len,
					  fixed_pg[i][0] * PSZ);
		used[n].start = fixed_pg[i][0] * PSZ;
		used[n].last = used[n].start + len - 1;
		n++;
		total += len;
	}

	for (i = 0; i < NAUTO; i++) {
		/* deterministic mix of offsets and lengths */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		va = (uintptr_t)self->buf + ((seed >> 20) % (4 * MiB) &
					     ~((1ULL << ((seed >> 8) % 14)) - 1));
		len = 1 + (seed >> 40) % (64 * PSZ);
		a = auto_align(va, len);

		test_ioctl_ioas_map(self->ioas_id, (void *)(uintptr_t)va, len,
				    &iova);
		EXPECT_EQ(0U, iova % a);
		EXPECT_LE(PSZ, iova);
		EXPECT_GE(UINT64_MAX - PSZ, iova + len - 1);
		for (j = 0; j < n; j++) {
			EXPECT_FALSE(iova <= used[j].last &&
				     used[j].start <= iova + len - 1)
				TH_LOG("[0x%llx, 0x%llx] overlaps [0x%llx, "
				       "0x%llx]", (unsigned long long)iova,
				       (unsigned long long)(iova + len - 1),
				       (unsigned long long)used[j].start,
				       (unsigned long long)used[j].last);
		}
		used[n].start = iova;
		used[n].last = iova + len - 1;
		n++;
		total += len;
	}

	/* the kernel agrees: each one is a whole mapping of its own */
	for (i = 0; i < n; i += 2)
		test_ioctl_ioas_unmap(self->ioas_id, used[i].start,
				      used[i].last - used[i].start + 1);
	for (i = 0; i < n; i += 2)
		total -= used[i].last - used[i].start + 1;
	test_ioctl_ioas_unmap_all(self->ioas_id, total);
}

TEST_F(iommufd_ioas, unmap_whole_areas)
{
	const __u64 a = 16 * PSZ, b = 18 * PSZ, c = 24 * PSZ;
	__u64 out;
	__u32 dead_id;

	test_ioctl_ioas_alloc(&dead_id);
	test_ioctl_destroy(dead_id);

	/* nothing mapped: ENOENT */
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 0, PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, PSZ, 10 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 12345, 1);

	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 2 * PSZ, a);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, b);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 4 * PSZ, c);

	/* a range that cuts a mapping is ENOENT; the length is not written */
	out = UNTOUCHED_U64;
	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						    a, PSZ, &out));
	EXPECT_EQ(PSZ, out);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a + PSZ, PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a - PSZ, 2 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a + PSZ, 2 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a + 1, 2 * PSZ - 1);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a, 2 * PSZ - 1);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, c + 3 * PSZ, 2 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, c - PSZ, 2 * PSZ);
	/* a range in a gap between mappings */
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, b + PSZ, c - b - PSZ);
	/* all three survived */
	expect_used(self->ioas_id, a, 1);
	expect_used(self->ioas_id, b, 1);
	expect_used(self->ioas_id, c, 1);

	/* two adjacent mappings in one go */
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, self->ioas_id, a, 3 * PSZ,
					    &out));
	EXPECT_EQ(3 * PSZ, out);

	/* a range with gaps: only mapped bytes are counted */
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 2 * PSZ, a);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, b);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, self->ioas_id, 8 * PSZ,
					    32 * PSZ, &out));
	EXPECT_EQ(7 * PSZ, out);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);

	/* byte granular */
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf + 1, 3, 0x1001);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 0x1001, 2);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 0x1002, 2);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, self->ioas_id, 0x1000, 5,
					    &out));
	EXPECT_EQ(3U, out);

	/* argument errors; the IOAS id is looked up first */
	test_err_ioctl_ioas_unmap(ENOENT, dead_id, a, PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, dead_id, a, 0);
	test_err_ioctl_ioas_unmap(ENOENT, dead_id, UINT64_MAX, UINT64_MAX);
	test_err_ioctl_ioas_unmap(ENOENT, 0, 0, UINT64_MAX);
	test_err_ioctl_ioas_unmap(EINVAL, self->ioas_id, a, 0);
	test_err_ioctl_ioas_unmap(EINVAL, self->ioas_id, 0, 0);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, UINT64_MAX, 1);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, UINT64_MAX, 0);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, 1, UINT64_MAX);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, PSZ, UINT64_MAX);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, HALF + 1, HALF);
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, UINT64_MAX - 1, 3);
	/* ending exactly at the top is a valid (here empty) range */
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, UINT64_MAX - 1, 2);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 0, UINT64_MAX - 1);
}

/*
 * Mappings are removed in IOVA order as they are found. When a later one is
 * only partly covered the call fails with ENOENT, but the whole mappings
 * before it are already gone.
 */
TEST_F(iommufd_ioas, unmap_partial_failure)
{
	const __u64 a = 16 * PSZ, b = 18 * PSZ;
	__u64 out = UNTOUCHED_U64;

	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, a);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 2 * PSZ, b);

	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_unmap(self->fd, self->ioas_id,
						    a, 3 * PSZ, &out));
	EXPECT_EQ(3 * PSZ, out);
	expect_free(self->ioas_id, a, PSZ);
	test_ioctl_ioas_unmap(self->ioas_id, b, 2 * PSZ);

	/* a range starting inside the first mapping removes nothing */
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, a);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 2 * PSZ, b);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, a + 1, 4 * PSZ);
	test_ioctl_ioas_unmap_all(self->ioas_id, 3 * PSZ);
}

TEST_F(iommufd_ioas, unmap_all)
{
	__u64 out;

	/* empty IOAS: success, and the length written back is 0 */
	out = UNTOUCHED_U64;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, self->ioas_id, 0,
					    UINT64_MAX, &out));
	EXPECT_EQ(0U, out);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);

	/* only iova 0 + length UINT64_MAX means "all" */
	test_err_ioctl_ioas_unmap(EOVERFLOW, self->ioas_id, 1, UINT64_MAX);
	test_err_ioctl_ioas_unmap(ENOENT, self->ioas_id, 0, UINT64_MAX - 1);
	test_err_ioctl_ioas_unmap(ENOENT, 0, 0, UINT64_MAX);
	test_err_ioctl_ioas_unmap(ENOENT, UINT32_MAX, 0, UINT64_MAX);

	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, 0);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf + 1, 7, 3 * PSZ);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, 2 * PSZ, HALF);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ,
				  UINT64_MAX - PSZ + 1);
	test_ioctl_ioas_unmap_all(self->ioas_id, 4 * PSZ + 7);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);
	expect_free(self->ioas_id, 0, PSZ);
	expect_free(self->ioas_id, UINT64_MAX - PSZ + 1, PSZ);
}

/*
 * QEMU clears an IOAS with two UNMAPs, [0, 2^63) and [2^63, 2^64), because
 * a single 2^64 length cannot be expressed. Neither is the special "all"
 * form, so each half fails with ENOENT when it finds nothing, and a mapping
 * straddling 2^63 makes both halves fail.
 */
TEST_F(iommufd_ioas, unmap_two_halves)
{
	const __u32 id = self->ioas_id;
	__u64 out;

	/* empty */
	test_err_ioctl_ioas_unmap(ENOENT, id, 0, HALF);
	test_err_ioctl_ioas_unmap(ENOENT, id, HALF, HALF);

	/* low half only */
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 16 * PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, 2 * PSZ, 32 * PSZ);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, id, 0, HALF, &out));
	EXPECT_EQ(3 * PSZ, out);
	test_err_ioctl_ioas_unmap(ENOENT, id, HALF, HALF);

	/* high half only, including the last page */
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, HALF);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, UINT64_MAX - PSZ + 1);
	test_err_ioctl_ioas_unmap(ENOENT, id, 0, HALF);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, id, HALF, HALF, &out));
	EXPECT_EQ(2 * PSZ, out);

	/* both halves, with mappings touching 2^63 from either side */
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, HALF - PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, 3 * PSZ, HALF);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, id, 0, HALF, &out));
	EXPECT_EQ(PSZ, out);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, id, HALF, HALF, &out));
	EXPECT_EQ(3 * PSZ, out);

	/*
	 * Straddling 2^63: the low half removes what lies below the straddler
	 * and then fails; the high half fails at once, keeping what lies above.
	 */
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 16 * PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, 2 * PSZ, HALF - PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, HALF + 4 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, id, 0, HALF);
	expect_free(id, 16 * PSZ, PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, id, HALF, HALF);
	expect_used(id, HALF + 4 * PSZ, PSZ);
	test_ioctl_ioas_unmap_all(id, 3 * PSZ);
}

TEST_F(iommufd_ioas, allow_iovas_placement)
{
	const __u32 id = self->ioas_id;
	const __u64 r = 1ULL << 30;
	struct iommu_iova_range ranges[2];
	__u64 iova = 0;

	ranges[0] = (struct iommu_iova_range){ r, r + 4 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	/* IOVA_RANGES reports usable space, not the allowed set */
	expect_full_iova_range(id);

	/* kernel-chosen IOVAs come from the allowed range, lowest first */
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(r, iova);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(r + PSZ, iova);
	test_ioctl_ioas_map(id, self->buf, 2 * PSZ, &iova);
	EXPECT_EQ(r + 2 * PSZ, iova);
	iova = UNTOUCHED_U64;
	test_err_ioctl_ioas_map(ENOSPC, id, self->buf, PSZ, &iova);
	test_err_ioctl_ioas_map(ENOSPC, id, self->buf, 1, &iova);
	EXPECT_EQ(UNTOUCHED_U64, iova);

	/* fixed IOVAs are not restricted by the allowed set */
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 16 * PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 0);

	/* a new set may exclude existing mappings; they stay mapped */
	ranges[0] = (struct iommu_iova_range){ r + 16 * PSZ, r + 32 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(r + 16 * PSZ, iova);
	test_ioctl_ioas_unmap(id, r, PSZ);
	test_ioctl_ioas_unmap(id, 16 * PSZ, PSZ);
	expect_full_iova_range(id);

	/* num_iovas == 0 clears the set; the pointer is not read */
	test_ioctl_ioas_allow_iovas(id, (void *)8, 0);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(PSZ, iova);
	test_ioctl_ioas_unmap_all(id, 6 * PSZ);

	/* below PAGE_SIZE nothing is ever chosen */
	ranges[0] = (struct iommu_iova_range){ 0, PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_err_ioctl_ioas_map(ENOSPC, id, self->buf, 1, &iova);
	ranges[0] = (struct iommu_iova_range){ 0, 2 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(PSZ, iova);
	test_ioctl_ioas_unmap_all(id, PSZ);

	/* nor in the last page */
	ranges[0] = (struct iommu_iova_range){ UINT64_MAX - 2 * PSZ + 1,
					       UINT64_MAX };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(UINT64_MAX - 2 * PSZ + 1, iova);
	test_err_ioctl_ioas_map(ENOSPC, id, self->buf, 1, &iova);
	test_ioctl_ioas_unmap_all(id, PSZ);

	/* the array need not be sorted */
	ranges[0] = (struct iommu_iova_range){ 2 * r + 8 * PSZ,
					       2 * r + 9 * PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ 2 * r, 2 * r + PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 2);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(2 * r, iova);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(2 * r + 8 * PSZ, iova);
	test_ioctl_ioas_unmap_all(id, 2 * PSZ);

	/* adjacent ranges act as one */
	ranges[0] = (struct iommu_iova_range){ 3 * r, 3 * r + PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ 3 * r + PSZ,
					       3 * r + 2 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 2);
	/* (buf + PAGE_SIZE keeps the wanted alignment at one page) */
	test_ioctl_ioas_map(id, self->buf + PSZ, 2 * PSZ, &iova);
	EXPECT_EQ(3 * r, iova);
	test_ioctl_ioas_unmap_all(id, 2 * PSZ);

	/* a range too small is skipped for the next one */
	ranges[0] = (struct iommu_iova_range){ 4 * r, 4 * r + PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ 4 * r + 4 * PSZ,
					       4 * r + 8 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 2);
	test_ioctl_ioas_map(id, self->buf + PSZ, 2 * PSZ, &iova);
	EXPECT_EQ(4 * r + 4 * PSZ, iova);
	test_ioctl_ioas_unmap_all(id, 2 * PSZ);

	/* alignment is applied inside the allowed range */
	ranges[0] = (struct iommu_iova_range){ 5 * r + PSZ,
					       5 * r + 16 * MiB - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map(id, self->buf, max_auto_align, &iova);
	EXPECT_EQ(auto_pick(5 * r + PSZ, (uintptr_t)self->buf,
			    max_auto_align), iova);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	/* with THP the first map left a gap at the start, else it is full */
	EXPECT_EQ(max_auto_align > PSZ ? 5 * r + PSZ :
					 5 * r + PSZ + max_auto_align, iova);
	test_ioctl_ioas_unmap_all(id, max_auto_align + PSZ);

	/* copies with a kernel-chosen IOVA obey it too */
	ranges[0] = (struct iommu_iova_range){ 6 * r, 6 * r + 2 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 16 * PSZ);
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, id, id, 16 * PSZ, PSZ,
					   &iova, MAP_RW));
	EXPECT_EQ(6 * r, iova);
	test_ioctl_ioas_unmap_all(id, 2 * PSZ);
	expect_full_iova_range(id);
}

TEST_F(iommufd_ioas, allow_iovas_errors)
{
	const __u32 id = self->ioas_id;
	const __u64 r = 1ULL << 30, s = 1ULL << 31;
	struct iommu_iova_range ranges[3];
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = id,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)ranges,
	};
	unsigned int bit;
	__u8 *page, *guard;
	__u32 dead_id;
	__u64 iova = 0;

	test_ioctl_ioas_alloc(&dead_id);
	test_ioctl_destroy(dead_id);
	page = mmap(NULL, 2 * PSZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	guard = page + PSZ;
	ASSERT_EQ(0, mprotect(guard, PSZ, PROT_NONE));

	/* the allowed set every failure below must leave in place */
	ranges[0] = (struct iommu_iova_range){ r, r + 4 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);

	/* __reserved: EOPNOTSUPP, even before the id lookup */
	for (bit = 0; bit < 32; bit++) {
		cmd.__reserved = 1U << bit;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));
	}
	cmd.ioas_id = dead_id;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd));

	/* bad ids: ENOENT, before the array is read */
	test_err_ioctl_ioas_allow_iovas(ENOENT, dead_id, ranges, 1);
	test_err_ioctl_ioas_allow_iovas(ENOENT, 0, NULL, 1);
	test_err_ioctl_ioas_allow_iovas(ENOENT, UINT32_MAX, NULL, 0);

	/* unreadable arrays */
	test_err_ioctl_ioas_allow_iovas(EFAULT, id, NULL, 1);
	test_err_ioctl_ioas_allow_iovas(EFAULT, id, (void *)guard, 1);
	test_err_ioctl_ioas_allow_iovas(EFAULT, id, NULL, UINT32_MAX);
	/* the second entry runs into the guard page */
	memcpy(guard - sizeof(ranges[0]),
	       &(struct iommu_iova_range){ s, s + PSZ - 1 },
	       sizeof(ranges[0]));
	test_err_ioctl_ioas_allow_iovas(
		EFAULT, id, (void *)(guard - sizeof(ranges[0])), 2);

	/* start must be strictly below last */
	ranges[0] = (struct iommu_iova_range){ s, s };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 1);
	ranges[0] = (struct iommu_iova_range){ s + 1, s };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 1);
	ranges[0] = (struct iommu_iova_range){ UINT64_MAX, 0 };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 1);
	/* an invalid entry after a valid one */
	ranges[0] = (struct iommu_iova_range){ s, s + PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ 5, 5 };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 2);

	/* entries may not overlap one another */
	ranges[0] = (struct iommu_iova_range){ s, s + 2 * PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ s + 2 * PSZ - 1, s + 4 * PSZ };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 2);
	ranges[1] = ranges[0];
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 2);
	ranges[1] = (struct iommu_iova_range){ s + 1, s + 2 };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 2);
	ranges[1] = (struct iommu_iova_range){ 0, UINT64_MAX };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 2);
	ranges[1] = (struct iommu_iova_range){ s + 4 * PSZ, s + 8 * PSZ - 1 };
	ranges[2] = (struct iommu_iova_range){ s - PSZ, s };
	test_err_ioctl_ioas_allow_iovas(EINVAL, id, ranges, 3);

	/* none of the failures replaced the set */
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(r, iova);
	test_ioctl_ioas_unmap(id, iova, PSZ);

	/* touching ranges are fine, and so is the full space */
	ranges[0] = (struct iommu_iova_range){ s, s + 2 * PSZ - 1 };
	ranges[1] = (struct iommu_iova_range){ s + 2 * PSZ, s + 4 * PSZ - 1 };
	test_ioctl_ioas_allow_iovas(id, ranges, 2);
	ranges[0] = (struct iommu_iova_range){ 0, UINT64_MAX };
	test_ioctl_ioas_allow_iovas(id, ranges, 1);
	test_ioctl_ioas_map(id, self->buf, PSZ, &iova);
	EXPECT_EQ(PSZ, iova);
	test_ioctl_ioas_unmap(id, iova, PSZ);
	expect_full_iova_range(id);

	munmap(page, 2 * PSZ);
}

/*
 * A million allowed ranges in descending order: accepted (sorting them
 * costs n log n; the old insertion into a sorted array cost n squared and
 * kept a CPU busy for minutes), kernel-chosen IOVAs come from the lowest
 * one, and an overlap at the very end is still found.
 */
TEST_F(iommufd_ioas, allow_iovas_many_descending)
{
	const __u32 n = 1U << 20;
	const __u64 base = 1ULL << 32, step = 2 * PSZ;
	struct iommu_iova_range *ranges;
	__u64 iova = 0;
	__u32 i;

	ranges = calloc(n, sizeof(*ranges));
	ASSERT_NE(NULL, ranges);
	for (i = 0; i < n; i++) {
		ranges[i].start = base + (__u64)(n - 1 - i) * step;
		ranges[i].last = ranges[i].start + PSZ - 1;
	}
	test_ioctl_ioas_allow_iovas(self->ioas_id, ranges, n);
	test_ioctl_ioas_map(self->ioas_id, self->buf, PSZ, &iova);
	EXPECT_EQ(base, iova);
	test_ioctl_ioas_unmap(self->ioas_id, iova, PSZ);

	/* the first and the last entry overlap */
	ranges[n - 1].last = ranges[0].start;
	test_err_ioctl_ioas_allow_iovas(EINVAL, self->ioas_id, ranges, n);
	free(ranges);
}

TEST_F(iommufd_ioas, copy_basic)
{
	const __u32 src = self->ioas_id;
	const __u64 m1 = 16 * PSZ;
	__u64 iova = 0;
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	test_ioctl_ioas_map_fixed(src, self->buf, 4 * PSZ, m1);

	/* whole mapping, fixed and kernel-chosen destination */
	test_ioctl_ioas_copy_fixed(dst, 64 * PSZ, src, m1, 4 * PSZ);
	iova = UNTOUCHED_U64;
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, src, m1, 4 * PSZ,
					   &iova, MAP_RW));
	EXPECT_EQ(auto_pick(PSZ, (uintptr_t)self->buf, 4 * PSZ), iova);
	test_ioctl_ioas_unmap(dst, iova, 4 * PSZ);

	/* any sub-range, byte granular */
	test_ioctl_ioas_copy_fixed(dst, 128 * PSZ, src, m1 + PSZ, 2 * PSZ);
	test_ioctl_ioas_copy_fixed(dst, 256 * PSZ + 3, src, m1 + 5, 7);
	/* each copy is one mapping of exactly the copied size */
	test_err_ioctl_ioas_unmap(ENOENT, dst, 129 * PSZ, PSZ);
	test_ioctl_ioas_unmap(dst, 128 * PSZ, 2 * PSZ);
	test_ioctl_ioas_unmap(dst, 256 * PSZ + 3, 7);

	/* read-only or write-only copies of a read-write mapping */
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, src, m1, PSZ,
					   &(__u64){ 300 * PSZ },
					   IOMMU_IOAS_MAP_FIXED_IOVA |
						   IOMMU_IOAS_MAP_READABLE));
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, src, m1, PSZ,
					   &(__u64){ 301 * PSZ },
					   IOMMU_IOAS_MAP_FIXED_IOVA |
						   IOMMU_IOAS_MAP_WRITEABLE));
	test_ioctl_ioas_unmap(dst, 300 * PSZ, 2 * PSZ);

	/* inside one IOAS, and a copy of a copy */
	test_ioctl_ioas_copy_fixed(src, 32 * PSZ, src, m1, 4 * PSZ);
	test_ioctl_ioas_copy_fixed(src, 48 * PSZ, dst, 64 * PSZ, 4 * PSZ);
	test_err_ioctl_ioas_copy_fixed(EEXIST, src, m1 + PSZ, src, m1, PSZ);

	/* copies outlive the source mapping */
	test_ioctl_ioas_unmap(src, m1, 4 * PSZ);
	test_err_ioctl_ioas_copy_fixed(ENOENT, dst, 512 * PSZ, src, m1, PSZ);
	test_ioctl_ioas_unmap(src, 32 * PSZ, 4 * PSZ);
	test_ioctl_ioas_unmap(src, 48 * PSZ, 4 * PSZ);
	test_ioctl_ioas_unmap(dst, 64 * PSZ, 4 * PSZ);

	/*
	 * A source range spanning two adjacent mappings (here with unrelated
	 * user addresses) works and yields one destination mapping per
	 * source piece.
	 */
	test_ioctl_ioas_map_fixed(src, self->buf, 4 * PSZ, m1);
	test_ioctl_ioas_map_fixed(src, self->buf + 8 * PSZ, PSZ, m1 + 4 * PSZ);
	test_ioctl_ioas_copy_fixed(dst, 512 * PSZ, src, m1 + 2 * PSZ, 3 * PSZ);
	test_ioctl_ioas_copy_fixed(dst, 600 * PSZ, src, m1, 5 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, dst, 513 * PSZ, 2 * PSZ);
	test_ioctl_ioas_unmap(dst, 512 * PSZ, 2 * PSZ);
	test_ioctl_ioas_unmap(dst, 514 * PSZ, PSZ);
	test_ioctl_ioas_unmap(dst, 600 * PSZ, 4 * PSZ);
	test_ioctl_ioas_unmap(dst, 604 * PSZ, PSZ);

	test_ioctl_ioas_unmap_all(dst, 0);
	test_ioctl_ioas_unmap_all(src, 5 * PSZ);
	expect_full_iova_range(src);
	expect_full_iova_range(dst);
}

/* A failed COPY must not write the command back. */
#define copy_fails(_errno, cmdp)                                              \
	({                                                                    \
		struct iommu_ioas_copy __in = *(cmdp);                        \
		EXPECT_ERRNO(_errno, ioctl(self->fd, IOMMU_IOAS_COPY, cmdp)); \
		EXPECT_EQ(0, memcmp(&__in, cmdp, sizeof(__in)));              \
	})

TEST_F(iommufd_ioas, copy_errors)
{
	const __u32 src = self->ioas_id;
	const __u64 m = 16 * PSZ, ro = 32 * PSZ, m3 = 40 * PSZ;
	struct iommu_ioas_copy good = {
		.size = sizeof(good),
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.src_ioas_id = src,
		.length = PSZ,
		.dst_iova = 64 * PSZ,
		.src_iova = m,
	};
	struct iommu_iova_range low = { 0, PSZ - 1 };
	struct iommu_ioas_copy cmd;
	unsigned int bit;
	__u32 dst, dead_id;

	test_ioctl_ioas_alloc(&dst);
	good.dst_ioas_id = dst;
	test_ioctl_ioas_alloc(&dead_id);
	test_ioctl_destroy(dead_id);

	test_ioctl_ioas_map_fixed(src, self->buf, 4 * PSZ, m);
	map_fixed_flags(src, self->buf, PSZ, ro, IOMMU_IOAS_MAP_READABLE);
	test_ioctl_ioas_map_fixed(src, self->buf + PSZ, PSZ, m3);

	/* unknown flags: EOPNOTSUPP first */
	for (bit = 3; bit < 32; bit++) {
		cmd = good;
		cmd.flags |= 1U << bit;
		copy_fails(EOPNOTSUPP, &cmd);
	}
	cmd = good;
	cmd.flags = UINT32_MAX;
	cmd.src_ioas_id = dead_id;
	cmd.length = 0;
	copy_fails(EOPNOTSUPP, &cmd);

	/* any of length, src_iova, dst_iova >= ULONG_MAX: EOVERFLOW */
	cmd = good;
	cmd.length = UINT64_MAX;
	copy_fails(EOVERFLOW, &cmd);
	cmd = good;
	cmd.src_iova = UINT64_MAX;
	copy_fails(EOVERFLOW, &cmd);
	cmd = good;
	cmd.dst_iova = UINT64_MAX;
	copy_fails(EOVERFLOW, &cmd);
	cmd.flags = MAP_RW; /* also when the kernel would choose */
	copy_fails(EOVERFLOW, &cmd);
	cmd.flags = 0;
	cmd.src_ioas_id = dead_id;
	copy_fails(EOVERFLOW, &cmd);

	/* no access flags: EINVAL, before the ids */
	cmd = good;
	cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA;
	copy_fails(EINVAL, &cmd);
	cmd.flags = 0;
	cmd.src_ioas_id = dead_id;
	copy_fails(EINVAL, &cmd);

	/* source id, then source range, then destination id */
	cmd = good;
	cmd.src_ioas_id = dead_id;
	copy_fails(ENOENT, &cmd);
	cmd.length = 0;
	copy_fails(ENOENT, &cmd);
	cmd = good;
	cmd.dst_ioas_id = dead_id;
	copy_fails(ENOENT, &cmd);
	cmd.dst_ioas_id = 0;
	copy_fails(ENOENT, &cmd);
	cmd.length = 0;
	copy_fails(EINVAL, &cmd);
	cmd.length = PSZ;
	cmd.src_iova = UINT64_MAX - PSZ + 2;
	copy_fails(EOVERFLOW, &cmd);

	/* source range problems */
	cmd = good;
	cmd.length = 0;
	copy_fails(EINVAL, &cmd);
	cmd.src_iova = UINT64_MAX - 1;
	cmd.length = 3;
	copy_fails(EOVERFLOW, &cmd);
	cmd = good;
	cmd.src_iova = 8 * PSZ;		/* nothing there */
	copy_fails(ENOENT, &cmd);
	cmd.src_iova = m - PSZ;		/* starts before the mapping */
	cmd.length = 2 * PSZ;
	copy_fails(ENOENT, &cmd);
	cmd.src_iova = m + 3 * PSZ;	/* runs past its end */
	copy_fails(ENOENT, &cmd);
	cmd.src_iova = m;
	cmd.length = 4 * PSZ + 1;
	copy_fails(ENOENT, &cmd);
	cmd.src_iova = ro;		/* two mappings with a hole between */
	cmd.length = m3 - ro + PSZ;
	copy_fails(ENOENT, &cmd);

	/* destination problems */
	test_ioctl_ioas_copy_fixed(dst, 64 * PSZ, src, m, PSZ);
	cmd = good;
	copy_fails(EEXIST, &cmd);
	cmd.dst_iova = 63 * PSZ;
	cmd.length = 2 * PSZ;
	copy_fails(EEXIST, &cmd);
	cmd.dst_iova = 64 * PSZ + PSZ - 1;
	cmd.length = 1;
	copy_fails(EEXIST, &cmd);
	cmd.dst_iova = UINT64_MAX - PSZ + 1;
	cmd.length = 2 * PSZ;
	copy_fails(EOVERFLOW, &cmd);

	/* a mapping made without WRITEABLE cannot be copied writable */
	cmd = good;
	cmd.src_iova = ro;
	cmd.dst_iova = 80 * PSZ;
	copy_fails(EPERM, &cmd);
	cmd.flags = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA;
	copy_fails(EPERM, &cmd);
	/* the destination overlap is found first */
	cmd.dst_iova = 64 * PSZ;
	copy_fails(EEXIST, &cmd);
	cmd.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA;
	cmd.dst_iova = 80 * PSZ;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &cmd));

	/* kernel-chosen destination with no room */
	test_ioctl_ioas_allow_iovas(dst, &low, 1);
	cmd = good;
	cmd.flags = MAP_RW;
	copy_fails(ENOSPC, &cmd);

	/* only the two good copies landed */
	expect_free(dst, 80 * PSZ + PSZ, PSZ);
	test_ioctl_ioas_unmap_all(dst, 2 * PSZ);
	test_ioctl_ioas_unmap_all(src, 6 * PSZ);
}

/*
 * A kernel-chosen destination IOVA is aligned after the user address that
 * backs the first copied byte, as for MAP.
 */
TEST_F(iommufd_ioas, copy_auto_iova)
{
	const __u32 src = self->ioas_id;
	const __u64 va = (uintptr_t)self->buf + PSZ;
	static const struct { __u64 off, len; } cases[] = {
		{ 0, 8 }, { 1, 4 }, { 2, 2 }, { 2, 4 }, { 4, 4 }, { 3, 1 },
	};
	unsigned int i;
	__u64 iova = 0, s, len, at;
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	test_ioctl_ioas_map_fixed(src, (void *)(uintptr_t)va, 8 * PSZ,
				  64 * PSZ);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		s = 64 * PSZ + cases[i].off * PSZ;
		len = cases[i].len * PSZ;
		at = va + cases[i].off * PSZ;
		ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, src, s, len,
						   &iova, MAP_RW));
		EXPECT_EQ(auto_pick(PSZ, at, len), iova)
			TH_LOG("case %u: user address 0x%llx", i,
			       (unsigned long long)at);
		test_ioctl_ioas_unmap(dst, iova, len);
	}

	/* byte granular source */
	test_ioctl_ioas_map_fixed(src, self->buf + 5, 100, 0x3000);
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, src, 0x3010, 10,
					   &iova, MAP_RW));
	EXPECT_EQ(auto_pick(PSZ, (uintptr_t)self->buf + 0x15, 10), iova);
	test_ioctl_ioas_unmap_all(dst, 10);
}

/*
 * The result is written back after the work is done. If that write faults
 * the call fails with EFAULT but the map, unmap or copy has happened.
 */
TEST_F(iommufd_ioas, respond_efault)
{
	const __u32 id = self->ioas_id;
	const __u64 r = 1ULL << 30;
	struct iommu_ioas_map *map;
	struct iommu_ioas_unmap *unmap;
	struct iommu_ioas_copy *copy;
	struct iommu_ioas_allow_iovas *allow;
	struct iommu_iova_range *range;
	__u8 *page;
	__u64 iova = 0;
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 32 * PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 48 * PSZ);

	page = mmap(NULL, PSZ, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	map = (void *)page;
	unmap = (void *)(page + 128);
	copy = (void *)(page + 256);
	allow = (void *)(page + 384);
	range = (void *)(page + 512);
	*map = (struct iommu_ioas_map){
		.size = sizeof(*map),
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = id,
		.user_va = (uintptr_t)self->buf,
		.length = PSZ,
		.iova = 16 * PSZ,
	};
	*unmap = (struct iommu_ioas_unmap){
		.size = sizeof(*unmap),
		.ioas_id = id,
		.iova = 32 * PSZ,
		.length = PSZ,
	};
	*copy = (struct iommu_ioas_copy){
		.size = sizeof(*copy),
		.flags = MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.dst_ioas_id = dst,
		.src_ioas_id = id,
		.length = PSZ,
		.dst_iova = 64 * PSZ,
		.src_iova = 48 * PSZ,
	};
	*range = (struct iommu_iova_range){ r, r + PSZ - 1 };
	*allow = (struct iommu_ioas_allow_iovas){
		.size = sizeof(*allow),
		.ioas_id = dst,
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)range,
	};
	ASSERT_EQ(0, mprotect(page, PSZ, PROT_READ));

	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_MAP, map));
	expect_used(id, 16 * PSZ, PSZ);
	test_ioctl_ioas_unmap(id, 16 * PSZ, PSZ);

	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_UNMAP, unmap));
	test_err_ioctl_ioas_unmap(ENOENT, id, 32 * PSZ, PSZ);

	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_COPY, copy));
	test_ioctl_ioas_unmap(dst, 64 * PSZ, PSZ);

	/* ALLOW_IOVAS writes nothing back, so read-only memory is fine */
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_IOAS_ALLOW_IOVAS, allow));
	ASSERT_EQ(0, _test_ioctl_ioas_copy(self->fd, dst, id, 48 * PSZ, PSZ,
					   &iova, MAP_RW));
	EXPECT_EQ(r, iova);

	test_ioctl_ioas_unmap_all(dst, PSZ);
	test_ioctl_ioas_unmap_all(id, PSZ);
	munmap(page, PSZ);
}

TEST_F(iommufd_ioas, iova_ranges_unaffected)
{
	const __u32 id = self->ioas_id;
	struct iommu_iova_range allow = { 1ULL << 32, (1ULL << 33) - 1 };
	__u64 iova = 0;
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	expect_full_iova_range(id);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 0);
	test_ioctl_ioas_map_fixed(id, self->buf + 1, 3, 2 * PSZ + 1);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, UINT64_MAX - PSZ + 1);
	test_ioctl_ioas_map(id, self->buf, 5 * PSZ, &iova);
	expect_full_iova_range(id);
	test_ioctl_ioas_allow_iovas(id, &allow, 1);
	expect_full_iova_range(id);
	test_ioctl_ioas_copy_fixed(dst, 0, id, 0, PSZ);
	expect_full_iova_range(dst);
	test_ioctl_ioas_unmap_all(id, 2 * PSZ + 3 + 5 * PSZ);
	expect_full_iova_range(id);
}

TEST_F(iommufd_ioas, destroy_with_maps)
{
	const __u32 id = self->ioas_id;
	struct iommu_iova_range r = { PSZ, 2 * PSZ - 1 };
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	test_ioctl_ioas_map_fixed(id, self->buf, 4 * PSZ, 16 * PSZ);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, 0);
	test_ioctl_ioas_copy_fixed(dst, 64 * PSZ, id, 17 * PSZ, 2 * PSZ);

	/* with no domain attached mappings do not keep an IOAS busy */
	test_ioctl_destroy(id);
	test_err_ioctl_destroy(ENOENT, id);
	test_err_ioctl_ioas_map_fixed(ENOENT, id, self->buf, PSZ, 16 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, id, 16 * PSZ, 4 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, id, 0, UINT64_MAX);
	test_err_ioctl_ioas_allow_iovas(ENOENT, id, &r, 1);
	test_err_ioctl_ioas_copy_fixed(ENOENT, dst, 0, id, 16 * PSZ, PSZ);

	/* the copy made from it is unaffected */
	expect_used(dst, 64 * PSZ, 2 * PSZ);
	test_ioctl_ioas_copy_fixed(dst, 0, dst, 64 * PSZ, 2 * PSZ);
	test_ioctl_ioas_unmap(dst, 64 * PSZ, 2 * PSZ);

	test_ioctl_destroy(dst);
	test_err_ioctl_destroy(ENOENT, dst);
}

TEST_F(iommufd_ioas, close_with_maps)
{
	__u32 ids[3], i;

	ids[0] = self->ioas_id;
	test_ioctl_ioas_alloc(&ids[1]);
	test_ioctl_ioas_alloc(&ids[2]);
	test_ioctl_ioas_map_fixed(ids[0], self->buf, 8 * PSZ, 16 * PSZ);
	test_ioctl_ioas_copy_fixed(ids[1], 0, ids[0], 16 * PSZ, 8 * PSZ);
	test_ioctl_ioas_copy_fixed(ids[2], 0, ids[1], PSZ, PSZ);
	test_ioctl_ioas_map_fixed(ids[2], NULL, UINT64_MAX - 2 * PSZ + 1, PSZ);
	for (i = 0; i < 64; i++)
		test_ioctl_ioas_map_fixed(ids[1], self->buf, PSZ,
					  (64 + i) * PSZ);

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;

	open_iommufd_or_fail(&self->fd);
	for (i = 0; i < 3; i++)
		test_err_ioctl_ioas_unmap(ENOENT, ids[i], 0, UINT64_MAX);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, 16 * PSZ);
	/* teardown closes with this mapping in place */
}

TEST_F(iommufd_ioas, many_maps)
{
	enum { N = 2000 };
	const __u64 base = 1ULL << 32;
	__u64 *iovas = calloc(N, sizeof(*iovas));
	__u64 out;
	unsigned int i;

	ASSERT_NE(NULL, iovas);

	/* every other page, removed by one covering UNMAP */
	for (i = 0; i < N; i++)
		test_ioctl_ioas_map_fixed(self->ioas_id, self->buf + (i % 64) * PSZ,
					  PSZ, base + 2ULL * i * PSZ);
	out = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, self->ioas_id, base,
					    2ULL * N * PSZ, &out));
	EXPECT_EQ((__u64)N * PSZ, out);

	/* back to back, removed by unmap-all */
	for (i = 0; i < N; i++)
		test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ,
					  base + (__u64)i * PSZ);
	expect_used(self->ioas_id, base + (N - 1) * PSZ, PSZ);
	expect_free(self->ioas_id, base + (__u64)N * PSZ, PSZ);
	test_ioctl_ioas_unmap_all(self->ioas_id, (__u64)N * PSZ);

	/* kernel-chosen: all distinct, each removable on its own */
	for (i = 0; i < N; i++) {
		test_ioctl_ioas_map(self->ioas_id, self->buf, PSZ, &iovas[i]);
		if (i)
			EXPECT_NE(iovas[i - 1], iovas[i]);
	}
	for (i = 0; i < N; i++)
		test_ioctl_ioas_unmap(self->ioas_id, iovas[N - 1 - i], PSZ);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);

	/* copies of all of them into a second IOAS, one by one */
	for (i = 0; i < N; i++)
		test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ,
					  base + 2ULL * i * PSZ);
	{
		__u32 dst;

		test_ioctl_ioas_alloc(&dst);
		for (i = 0; i < N; i++)
			test_ioctl_ioas_copy_fixed(dst, (__u64)i * PSZ,
						   self->ioas_id,
						   base + 2ULL * i * PSZ, PSZ);
		test_ioctl_destroy(self->ioas_id);
		test_ioctl_ioas_unmap_all(dst, (__u64)N * PSZ);
		test_ioctl_destroy(dst);
	}
	free(iovas);
}

/*
 * An iommufd shared across fork(): the child can map its own memory through
 * the inherited descriptor and exit; the parent then unmaps everything.
 */
TEST_F(iommufd_ioas, fork)
{
	const __u32 id = self->ioas_id;
	const __u64 x = 16 * PSZ, y = 32 * PSZ;
	int status;
	pid_t pid;
	__u32 dst;

	test_ioctl_ioas_alloc(&dst);
	test_ioctl_ioas_map_fixed(id, self->buf, PSZ, x);

	/* a child that does nothing */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* a child that maps its own, fresh memory */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		void *mine = mmap(NULL, PSZ, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		__u64 iova = y;
		int rc = 0;

		if (mine == MAP_FAILED)
			_exit(10);
		if (_test_ioctl_ioas_map(self->fd, id, mine, PSZ, &iova,
					 MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))
			rc |= 1;
		/* it sees the parent's mapping */
		iova = x;
		if (_test_ioctl_ioas_map(self->fd, id, mine, PSZ, &iova,
					 MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA) !=
			    -1 ||
		    errno != EEXIST)
			rc |= 2;
		_exit(rc);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child failed, code %d", WEXITSTATUS(status));

	/* the child is gone; its mapping can still be copied and unmapped */
	test_ioctl_ioas_copy_fixed(dst, 0, id, y, PSZ);
	test_ioctl_ioas_unmap(id, y, PSZ);
	test_ioctl_ioas_unmap(id, x, PSZ);
	test_ioctl_ioas_unmap_all(id, 0);
	test_ioctl_ioas_unmap_all(dst, PSZ);
}

#define option_get(option_id, object_id)                                      \
	({                                                                    \
		__u64 __v = UNTOUCHED_U64;                                    \
		ASSERT_EQ(0, _test_ioctl_option(self->fd, option_id,          \
						IOMMU_OPTION_OP_GET,          \
						object_id, &__v))             \
			TH_LOG("OPTION GET %u: %s", option_id,                \
			       strerror(errno));                              \
		__v;                                                          \
	})

#define option_set_err(_errno, fd, option_id, object_id, value)               \
	({                                                                    \
		__u64 __v = (value);                                          \
		EXPECT_ERRNO(_errno, _test_ioctl_option(fd, option_id,        \
							IOMMU_OPTION_OP_SET,  \
							object_id, &__v));    \
	})

TEST_F(iommufd_ioas, cmd_length_option)
{
	const size_t len = sizeof(struct iommu_option);
	struct iommu_option cmd = {
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = self->ioas_id,
	};

	check_size_rules(_metadata, self->fd, IOMMU_OPTION, &cmd, len,
			 offsetofend(struct iommu_option, val64));
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_OPTION, &cmd, len,
				       len + 8, SIZE_MAX, 0));
	EXPECT_EQ(1U, cmd.val64);
}

TEST_F(iommufd_ioas, option_bad_args)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_GET,
		.object_id = self->ioas_id,
		.val64 = UNTOUCHED_U64,
	};
	struct iommu_option *ro;

	cmd.__reserved = 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	EXPECT_EQ(UNTOUCHED_U64, cmd.val64);
	cmd.__reserved = 0;
	cmd.option_id = 2;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
	cmd.op = 2;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	/* the IOAS is looked up before the op is checked */
	cmd.object_id = self->ioas_id + 100;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_OPTION, &cmd));
	cmd.object_id = 0;
	cmd.op = IOMMU_OPTION_OP_GET;
	EXPECT_ERRNO(ENOENT, ioctl(self->fd, IOMMU_OPTION, &cmd));
	/* RLIMIT_MODE is per context: no object id */
	cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
	cmd.object_id = self->ioas_id;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	cmd.object_id = 0;
	cmd.op = 2;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_OPTION, &cmd));
	/* only val64 is written back: a read-only struct faults */
	ro = mmap(NULL, PSZ, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	*ro = cmd;
	ro->op = IOMMU_OPTION_OP_GET;
	ASSERT_EQ(0, mprotect(ro, PSZ, PROT_READ));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_OPTION, ro));
	munmap(ro, PSZ);
}

TEST_F(iommufd_ioas, option_rlimit_mode)
{
	int fd;
	pid_t pid;
	int status;

	EXPECT_EQ(0U, option_get(IOMMU_OPTION_RLIMIT_MODE, 0));
	/* this context has an IOAS: the mode can no longer change */
	option_set_err(EBUSY, self->fd, IOMMU_OPTION_RLIMIT_MODE, 0, 1);
	/* EBUSY comes first, even for a value that is not a mode */
	option_set_err(EBUSY, self->fd, IOMMU_OPTION_RLIMIT_MODE, 0, 2);

	fd = open(IOMMUFD_DEV_PATH, O_RDWR);
	ASSERT_LE(0, fd);
	option_set_err(EINVAL, fd, IOMMU_OPTION_RLIMIT_MODE, 0, 2);
	{
		__u64 v = 1;
		__u32 id;

		ASSERT_EQ(0, _test_ioctl_option(fd, IOMMU_OPTION_RLIMIT_MODE,
						IOMMU_OPTION_OP_SET, 0, &v));
		v = UNTOUCHED_U64;
		ASSERT_EQ(0, _test_ioctl_option(fd, IOMMU_OPTION_RLIMIT_MODE,
						IOMMU_OPTION_OP_GET, 0, &v));
		EXPECT_EQ(1U, v);
		/* modes are per context */
		EXPECT_EQ(0U, option_get(IOMMU_OPTION_RLIMIT_MODE, 0));
		/* a reserved-then-destroyed object leaves the context empty */
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, 0, &id));
		option_set_err(EBUSY, fd, IOMMU_OPTION_RLIMIT_MODE, 0, 0);
		ASSERT_EQ(0, _test_ioctl_destroy(fd, id));
		v = 0;
		ASSERT_EQ(0, _test_ioctl_option(fd, IOMMU_OPTION_RLIMIT_MODE,
						IOMMU_OPTION_OP_SET, 0, &v));
	}

	/* without CAP_SYS_RESOURCE (here: as nobody) it cannot be set */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		__u64 v = 1;

		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		if (!_test_ioctl_option(fd, IOMMU_OPTION_RLIMIT_MODE,
					IOMMU_OPTION_OP_SET, 0, &v))
			_exit(3);
		_exit(errno == EPERM ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("unprivileged RLIMIT_MODE set: child status %d",
		       WEXITSTATUS(status));
	EXPECT_EQ(0, close(fd));
}

TEST_F(iommufd_ioas, option_huge_pages)
{
	struct iommu_ioas_iova_ranges ranges = {
		.size = sizeof(ranges),
		.ioas_id = self->ioas_id,
	};
	__u64 iova;

	EXPECT_EQ(1U, option_get(IOMMU_OPTION_HUGE_PAGES, self->ioas_id));
	option_set_err(EINVAL, self->fd, IOMMU_OPTION_HUGE_PAGES,
		       self->ioas_id, 2);

	/* a mapping that is not page aligned blocks turning them off */
	test_ioctl_ioas_map_fixed(self->ioas_id, (char *)self->buf + 0x123,
				  0x10, 16 * PSZ + 0x123);
	option_set_err(EADDRINUSE, self->fd, IOMMU_OPTION_HUGE_PAGES,
		       self->ioas_id, 0);
	EXPECT_EQ(1U, option_get(IOMMU_OPTION_HUGE_PAGES, self->ioas_id));
	test_ioctl_ioas_unmap_all(self->ioas_id, 0x10);

	/* off: every mapping must now be page aligned */
	{
		__u64 v = 0;

		ASSERT_EQ(0, _test_ioctl_option(self->fd,
						IOMMU_OPTION_HUGE_PAGES,
						IOMMU_OPTION_OP_SET,
						self->ioas_id, &v));
		EXPECT_EQ(0U, v);
	}
	EXPECT_EQ(0U, option_get(IOMMU_OPTION_HUGE_PAGES, self->ioas_id));
	EXPECT_ERRNO(EMSGSIZE,
		     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
	EXPECT_EQ(PSZ, ranges.out_iova_alignment);
	iova = 16 * PSZ + 0x100;
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map(self->fd, self->ioas_id,
						  self->buf, PSZ, &iova,
						  IOMMU_IOAS_MAP_FIXED_IOVA |
						  IOMMU_IOAS_MAP_READABLE));
	iova = 16 * PSZ;
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map(self->fd, self->ioas_id,
						  self->buf, PSZ / 2, &iova,
						  IOMMU_IOAS_MAP_FIXED_IOVA |
						  IOMMU_IOAS_MAP_READABLE));
	test_ioctl_ioas_map_fixed(self->ioas_id, self->buf, PSZ, 16 * PSZ);
	/* turning it off again is a no-op */
	{
		__u64 v = 0;

		EXPECT_EQ(0, _test_ioctl_option(self->fd,
						IOMMU_OPTION_HUGE_PAGES,
						IOMMU_OPTION_OP_SET,
						self->ioas_id, &v));
		v = 1;
		EXPECT_EQ(0, _test_ioctl_option(self->fd,
						IOMMU_OPTION_HUGE_PAGES,
						IOMMU_OPTION_OP_SET,
						self->ioas_id, &v));
	}
	ranges.num_iovas = 0;
	EXPECT_ERRNO(EMSGSIZE,
		     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &ranges));
	EXPECT_EQ(1U, ranges.out_iova_alignment);
}

#define RW_FLAGS (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

/* A 1 MiB memfd, the kind of file QEMU backs guest RAM with. */
static int new_memfd(struct __test_metadata *_metadata)
{
	int mfd = memfd_create("iommufd-rs-test", MFD_CLOEXEC);

	ASSERT_LE(0, mfd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(0, ftruncate(mfd, MiB));
	return mfd;
}

TEST_F(iommufd_ioas, cmd_length_map_file)
{
	const size_t len = sizeof(struct iommu_ioas_map_file);
	int mfd = new_memfd(_metadata);
	struct iommu_ioas_map_file cmd = {
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | RW_FLAGS,
		.ioas_id = self->ioas_id,
		.fd = mfd,
		.length = PSZ,
		.iova = 16 * PSZ,
	};

	check_size_rules(_metadata, self->fd, IOMMU_IOAS_MAP_FILE, &cmd, len,
			 offsetofend(struct iommu_ioas_map_file, iova));
	expect_free(self->ioas_id, 16 * PSZ, PSZ);
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_MAP_FILE, &cmd,
				       len, len + 8, SIZE_MAX, 0));
	expect_used(self->ioas_id, 16 * PSZ, PSZ);
	close(mfd);
}

TEST_F(iommufd_ioas, map_file)
{
	int mfd = new_memfd(_metadata);
	__u64 iova;
	int devnull;

	/* caller-chosen IOVA */
	iova = 256 * PSZ;
	ASSERT_EQ(0, _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       MiB, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA |
					       RW_FLAGS));
	EXPECT_EQ(256 * PSZ, iova);
	expect_used(self->ioas_id, iova, MiB);
	/* overlapping it fails as for user memory */
	EXPECT_ERRNO(EEXIST,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       PSZ, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA |
					       RW_FLAGS));

	/* kernel-chosen: keeps the file offset's position in its page */
	iova = 0;
	ASSERT_EQ(0, _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd,
					       2 * PSZ + 0x80, 0x100, &iova,
					       IOMMU_IOAS_MAP_READABLE));
	EXPECT_EQ(0x80U, iova % PSZ);
	EXPECT_LE(PSZ, iova);

	/* the mapping holds the file: closing the fd changes nothing */
	EXPECT_EQ(0, close(mfd));
	test_ioctl_ioas_unmap_all(self->ioas_id, MiB + 0x100);

	/*
	 * Unlike upstream, which checks the file only when pages are pinned,
	 * a file that is not memory is refused at once (see the uAPI header).
	 */
	devnull = open("/dev/null", O_RDWR);
	ASSERT_LE(0, devnull);
	iova = 16 * PSZ;
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(
				     self->fd, self->ioas_id, devnull, 0, PSZ,
				     &iova,
				     IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE));
	close(devnull);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);
}

TEST_F(iommufd_ioas, map_file_errors)
{
	int mfd = new_memfd(_metadata);
	const __u32 fixed = IOMMU_IOAS_MAP_FIXED_IOVA | RW_FLAGS;
	__u64 iova = 16 * PSZ;
	int closed;

	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       PSZ, &iova, fixed | (1U << 3)));
	EXPECT_ERRNO(EOVERFLOW,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       UINT64_MAX, &iova, fixed));
	iova = UINT64_MAX;
	EXPECT_ERRNO(EOVERFLOW,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       PSZ, &iova, RW_FLAGS));
	iova = 16 * PSZ;
	EXPECT_ERRNO(EINVAL,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       PSZ, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA));
	/* the IOAS is looked up before the file */
	EXPECT_ERRNO(ENOENT,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id + 100,
					       -1, 0, PSZ, &iova, fixed));
	EXPECT_ERRNO(EINVAL,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, -1, 0,
					       0, &iova, fixed));
	EXPECT_ERRNO(EOVERFLOW,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, -1,
					       UINT64_MAX - PSZ + 1, 2 * PSZ,
					       &iova, fixed));
	/* bad file descriptors */
	EXPECT_ERRNO(EBADF,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, -1, 0,
					       PSZ, &iova, fixed));
	closed = dup(mfd);
	ASSERT_LE(0, closed);
	close(closed);
	EXPECT_ERRNO(EBADF,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, closed,
					       0, PSZ, &iova, fixed));
	/*
	 * Only memory can be mapped: not a file whose pages are the kernel's
	 * or a device's, and above all not the /dev/iommu file itself, which
	 * the mapping would keep open forever (it holds its file).
	 */
	closed = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, closed);
	EXPECT_ERRNO(EINVAL,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id, closed,
					       0, PSZ, &iova, fixed));
	close(closed);
	EXPECT_ERRNO(EINVAL,
		     _test_ioctl_ioas_map_file(self->fd, self->ioas_id,
					       self->fd, 0, PSZ, &iova, fixed));
	/*
	 * Nor a dma-buf (udmabuf makes one from a sealed memfd): upstream
	 * maps only VFIO PCI BAR dma-bufs, as MMIO, and answers EOPNOTSUPP
	 * for others; this driver maps none yet and answers so for all, at
	 * once, not when a device attaches.
	 */
	{
		int sealed = memfd_create("iommufd-rs-udmabuf",
					  MFD_CLOEXEC | MFD_ALLOW_SEALING);
		struct udmabuf_create create = { .size = PSZ };
		int udev, dmabuf;

		ASSERT_LE(0, sealed);
		ASSERT_EQ(0, ftruncate(sealed, PSZ));
		ASSERT_EQ(0, fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK));
		udev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, udev) TH_LOG("/dev/udmabuf: %s (CONFIG_UDMABUF)",
					  strerror(errno));
		create.memfd = sealed;
		dmabuf = ioctl(udev, UDMABUF_CREATE, &create);
		ASSERT_LE(0, dmabuf) TH_LOG("UDMABUF_CREATE: %s",
					    strerror(errno));
		EXPECT_ERRNO(EOPNOTSUPP, _test_ioctl_ioas_map_file(
					     self->fd, self->ioas_id, dmabuf,
					     0, PSZ, &iova, fixed));
		close(dmabuf);
		close(udev);
		close(sealed);
	}
	/* nothing of the above left a mapping behind */
	expect_free(self->ioas_id, 16 * PSZ, PSZ);
	test_ioctl_ioas_unmap_all(self->ioas_id, 0);
	close(mfd);
}

TEST_F(iommufd_ioas, copy_from_file_mapping)
{
	int mfd = new_memfd(_metadata);
	struct iommu_ioas_copy copy = {
		.size = sizeof(copy),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | RW_FLAGS,
		.dst_ioas_id = self->ioas_id,
		.src_ioas_id = self->ioas_id,
		.length = 4 * PSZ,
		.dst_iova = 1024 * PSZ,
		.src_iova = 512 * PSZ + 2 * PSZ,
	};
	__u64 iova = 512 * PSZ;

	ASSERT_EQ(0, _test_ioctl_ioas_map_file(self->fd, self->ioas_id, mfd, 0,
					       16 * PSZ, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA |
					       RW_FLAGS));
	close(mfd);
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_COPY, &copy))
		TH_LOG("IOAS_COPY of a file mapping: %s", strerror(errno));
	expect_used(self->ioas_id, 1024 * PSZ, 4 * PSZ);
	test_ioctl_ioas_unmap_all(self->ioas_id, 20 * PSZ);
}

TEST_HARNESS_MAIN
