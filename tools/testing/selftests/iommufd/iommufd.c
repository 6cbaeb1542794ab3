// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace ABI tests for the iommufd-rs /dev/iommu, first slice:
 * IOMMU_DESTROY, IOMMU_IOAS_ALLOC and IOMMU_IOAS_IOVA_RANGES.
 *
 * The expectations are those of upstream Linux 7.3 (include/uapi/linux/
 * iommufd.h and drivers/iommu/iommufd/), which the Rust driver must match
 * bit for bit. No test relies on the IOMMU_TEST_CMD mock.
 *
 * A missing /dev/iommu is a FAILURE, not a skip: the test VM always has it.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "iommufd_utils.h"

/* Sentinel the kernel must not overwrite on failed calls. */
#define UNTOUCHED_ID 0xfeedfaceU
#define UNTOUCHED_U64 0x5a5a5a5a5a5a5a5aULL

/* How many low ids _test_count_ioas() probes for stray objects. */
#define PROBE_IDS 4096

/* Misc devices live on major 10 (MISC_MAJOR). */
#define MISC_MAJOR_NR 10

FIXTURE(iommufd)
{
	int fd;
};

FIXTURE_SETUP(iommufd)
{
	self->fd = -1;
	open_iommufd_or_fail(&self->fd);
}

FIXTURE_TEARDOWN(iommufd)
{
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

/*
 * Allocate an IOAS on @fd_a and on @fd_b and check that both got the same id,
 * then destroy both again. When the two files went through the same sequence
 * of *successful* object operations, this proves that any failed calls made
 * on only one of them left no object (and no consumed id) behind.
 */
#define expect_same_next_id(fd_a, fd_b)                                       \
	({                                                                    \
		__u32 __id_a = 0, __id_b = 0;                                 \
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd_a, 0, &__id_a));       \
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd_b, 0, &__id_b));       \
		EXPECT_EQ(__id_b, __id_a)                                     \
			TH_LOG("a failed call seems to have created or "      \
			       "leaked an object");                           \
		ASSERT_EQ(0, _test_ioctl_destroy(fd_a, __id_a));              \
		ASSERT_EQ(0, _test_ioctl_destroy(fd_b, __id_b));              \
	})

/* Map @npages pages, the last one inaccessible; return the first one. */
static void *map_with_guard(unsigned int npages)
{
	size_t len = (size_t)npages * PAGE_SIZE;
	__u8 *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len - PAGE_SIZE);
	if (mprotect(p + len - PAGE_SIZE, PAGE_SIZE, PROT_NONE)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

TEST(dev_node)
{
	char path[128], want[32], got[32] = {};
	struct stat st;
	ssize_t n;
	int fd;

	ASSERT_EQ(0, stat(IOMMUFD_DEV_PATH, &st))
		TH_LOG("%s: %s", IOMMUFD_DEV_PATH, strerror(errno));
	ASSERT_TRUE(S_ISCHR(st.st_mode))
		TH_LOG("%s is not a character device (mode 0%o)",
		       IOMMUFD_DEV_PATH, st.st_mode);
	EXPECT_EQ(0660U, st.st_mode & 07777)
		TH_LOG("%s has mode 0%o, want 0660", IOMMUFD_DEV_PATH,
		       st.st_mode & 07777);
	EXPECT_EQ((unsigned int)MISC_MAJOR_NR, major(st.st_rdev));

	/* The misc class entry is named "iommu" and names the same dev_t. */
	snprintf(path, sizeof(path), "/sys/class/misc/iommu/dev");
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", path, strerror(errno));
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	ASSERT_LT(0, n);
	snprintf(want, sizeof(want), "%u:%u\n", major(st.st_rdev),
		 minor(st.st_rdev));
	EXPECT_STREQ(want, got);
}

TEST_F(iommufd, simple_close)
{
	/* Setup opened the device, teardown checks close() succeeds. */
	ASSERT_LE(0, self->fd);
}

TEST_F(iommufd, cmd_fail)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = 0 };
	static const unsigned long not_ioctls[] = {
		/* just below and far above the command range */
		_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1),
		_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 0x50),
		_IO(IOMMUFD_TYPE, 0),
		_IO(IOMMUFD_TYPE, 0xff),
		/* the IOMMU_DESTROY number under another type letter */
		_IO(IOMMUFD_TYPE + 1, IOMMUFD_CMD_DESTROY),
		_IO('x', IOMMUFD_CMD_DESTROY),
		/* right type and nr but direction/size bits set */
		_IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY, struct iommu_destroy),
		_IOW(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC,
		     struct iommu_ioas_alloc),
	};
	unsigned int i;

	/* id 0 is never a valid object */
	test_err_ioctl_destroy(ENOENT, 0);
	test_err_ioctl_destroy(ENOENT, UINT32_MAX);

	/* NULL and unmapped argument pointers */
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, NULL));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, (void *)8));

	/*
	 * Numbers that are not iommufd ioctls. A valid argument is passed so
	 * that only the number itself can be the reason for the failure.
	 */
	for (i = 0; i < ARRAY_SIZE(not_ioctls); i++) {
		errno = 0;
		EXPECT_ERRNO(ENOTTY, ioctl(self->fd, not_ioctls[i], &cmd))
			TH_LOG("ioctl number 0x%lx", not_ioctls[i]);
	}
	/* Out-of-range numbers are rejected before the argument is read. */
	EXPECT_ERRNO(ENOTTY, ioctl(self->fd,
				   _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE - 1),
				   NULL));
	EXPECT_ERRNO(ENOTTY, ioctl(self->fd,
				   _IO(IOMMUFD_TYPE,
				       IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA + 1),
				   NULL));
	/*
	 * In the command range, as upstream, the argument's size is read
	 * first: an unreadable argument is EFAULT whatever the number means
	 * (served, not served here, or with other type or direction bits).
	 */
	for (i = IOMMUFD_CMD_BASE; i <= IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA; i++) {
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, _IO(IOMMUFD_TYPE, i),
					   NULL))
			TH_LOG("command 0x%x", i);
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, _IO('x', i), NULL))
			TH_LOG("command 0x%x, type 'x'", i);
	}
}

/*
 * Length checks shared by all three ioctls. @cmd is the caller's template
 * (valid except for the size field), @len its struct size and @min the
 * minimum size the kernel must accept.
 */
#define check_too_short_and_nonzero_tail(ioctl_num, cmd, len, min)             \
	({                                                                     \
		/* shorter than the last mandatory field */                    \
		EXPECT_ERRNO(EINVAL, _test_ioctl_sized(self->fd, ioctl_num,    \
						       cmd, len, (min) - 1,    \
						       SIZE_MAX, 0));          \
		EXPECT_ERRNO(EINVAL, _test_ioctl_sized(self->fd, ioctl_num,    \
						       cmd, len, 4, SIZE_MAX,  \
						       0));                    \
		/* size 0 with otherwise valid memory */                       \
		EXPECT_ERRNO(EINVAL, _test_ioctl_sized(self->fd, ioctl_num,    \
						       cmd, len, 0, SIZE_MAX,  \
						       0));                    \
		/* one byte beyond the struct, and it is not zero */           \
		EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, ioctl_num,     \
						      cmd, len, (len) + 1,     \
						      len, 0xff));             \
		/* non-zero byte in a longer tail, not at its start */         \
		EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, ioctl_num,     \
						      cmd, len, (len) + 64,    \
						      (len) + 63, 0x01));      \
	})

TEST_F(iommufd, cmd_length_destroy)
{
	const size_t len = sizeof(struct iommu_destroy);
	const size_t min = offsetofend(struct iommu_destroy, id);
	struct iommu_destroy cmd = {};
	__u32 ioas_id;

	test_ioctl_ioas_alloc(&ioas_id);
	cmd.id = ioas_id;
	check_too_short_and_nonzero_tail(IOMMU_DESTROY, &cmd, len, min);
	/* none of the rejected calls destroyed the IOAS */
	test_ioas_alive(ioas_id);

	/* a zero tail is accepted as if size were sizeof */
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &cmd, len,
				       len + 1, SIZE_MAX, 0))
		TH_LOG("IOMMU_DESTROY, size+1 zero tail: %s", strerror(errno));
	EXPECT_ERRNO(ENOENT, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &cmd,
					       len, len + 1, SIZE_MAX, 0));
	EXPECT_ERRNO(ENOENT, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &cmd,
					       len, len, SIZE_MAX, 0));

	/* the exact minimum size */
	test_ioctl_ioas_alloc(&ioas_id);
	cmd.id = ioas_id;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &cmd, len,
				       min, SIZE_MAX, 0));
	test_err_ioctl_destroy(ENOENT, ioas_id);
}

TEST_F(iommufd, cmd_length_ioas_alloc)
{
	const size_t len = sizeof(struct iommu_ioas_alloc);
	const size_t min = offsetofend(struct iommu_ioas_alloc, out_ioas_id);
	struct iommu_ioas_alloc cmd = { .out_ioas_id = UNTOUCHED_ID };
	__u32 ids[3];
	int ctl;

	open_iommufd_or_fail(&ctl);

	check_too_short_and_nonzero_tail(IOMMU_IOAS_ALLOC, &cmd, len, min);
	EXPECT_EQ(UNTOUCHED_ID, cmd.out_ioas_id);
	/* nothing was created by the rejected calls */
	expect_same_next_id(self->fd, ctl);

	/* exact size */
	cmd.out_ioas_id = 0;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC, &cmd, len,
				       len, SIZE_MAX, 0));
	ids[0] = cmd.out_ioas_id;
	/* the minimum (which equals sizeof today) */
	cmd.out_ioas_id = 0;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC, &cmd, len,
				       min, SIZE_MAX, 0));
	ids[1] = cmd.out_ioas_id;
	/* one zero byte beyond: same as sizeof */
	cmd.out_ioas_id = 0;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC, &cmd, len,
				       len + 1, SIZE_MAX, 0));
	ids[2] = cmd.out_ioas_id;

	EXPECT_NE(0U, ids[0]);
	EXPECT_NE(0U, ids[1]);
	EXPECT_NE(0U, ids[2]);
	EXPECT_NE(ids[0], ids[1]);
	EXPECT_NE(ids[0], ids[2]);
	EXPECT_NE(ids[1], ids[2]);
	test_ioctl_destroy(ids[0]);
	test_ioctl_destroy(ids[1]);
	test_ioctl_destroy(ids[2]);

	EXPECT_EQ(0, close(ctl));
}

TEST_F(iommufd, cmd_length_iova_ranges)
{
	const size_t len = sizeof(struct iommu_ioas_iova_ranges);
	const size_t min =
		offsetofend(struct iommu_ioas_iova_ranges, out_iova_alignment);
	struct iommu_iova_range range = { UNTOUCHED_U64, UNTOUCHED_U64 };
	struct iommu_ioas_iova_ranges cmd = {
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
		.out_iova_alignment = UNTOUCHED_U64,
	};
	size_t sizes[] = { len, min, len + 1 };
	unsigned int i;

	test_ioctl_ioas_alloc(&cmd.ioas_id);
	check_too_short_and_nonzero_tail(IOMMU_IOAS_IOVA_RANGES, &cmd, len,
					 min);
	/* rejected before anything was written */
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(UNTOUCHED_U64, cmd.out_iova_alignment);
	EXPECT_EQ(UNTOUCHED_U64, range.start);
	EXPECT_EQ(UNTOUCHED_U64, range.last);

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		range.start = range.last = UNTOUCHED_U64;
		cmd.num_iovas = 1;
		cmd.out_iova_alignment = UNTOUCHED_U64;
		ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_IOVA_RANGES,
					       &cmd, len, sizes[i], SIZE_MAX,
					       0))
			TH_LOG("size %zu: %s", sizes[i], strerror(errno));
		EXPECT_EQ(1U, cmd.num_iovas);
		EXPECT_EQ(1U, cmd.out_iova_alignment);
		EXPECT_EQ(0U, range.start);
		EXPECT_EQ(UINT64_MAX, range.last);
	}
}

/* A size field much larger than a page: only the tail's content matters. */
TEST_F(iommufd, cmd_length_huge)
{
	const size_t big = 3 * PAGE_SIZE;
	struct iommu_destroy dcmd = {};
	struct iommu_ioas_alloc acmd = {};
	struct iommu_iova_range range = {};
	struct iommu_ioas_iova_ranges rcmd = {
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
	};
	__u32 id;
	int ctl;

	open_iommufd_or_fail(&ctl);

	/* IOAS_ALLOC: non-zero last byte fails and creates nothing */
	acmd.out_ioas_id = UNTOUCHED_ID;
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC,
					      &acmd, sizeof(acmd), big,
					      big - 1, 0x80));
	EXPECT_EQ(UNTOUCHED_ID, acmd.out_ioas_id);
	/* non-zero byte in the middle of the second page */
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC,
					      &acmd, sizeof(acmd), big,
					      PAGE_SIZE + PAGE_SIZE / 2, 1));
	expect_same_next_id(self->fd, ctl);

	/* IOAS_ALLOC: all-zero tail works */
	acmd.out_ioas_id = 0;
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_ALLOC, &acmd,
				       sizeof(acmd), big, SIZE_MAX, 0))
		TH_LOG("IOAS_ALLOC size %zu: %s", big, strerror(errno));
	id = acmd.out_ioas_id;
	ASSERT_NE(0U, id);

	/* IOVA_RANGES */
	rcmd.ioas_id = id;
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, IOMMU_IOAS_IOVA_RANGES,
					      &rcmd, sizeof(rcmd), big,
					      big - 1, 0xff));
	EXPECT_EQ(0U, range.last);
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_IOAS_IOVA_RANGES, &rcmd,
				       sizeof(rcmd), big, SIZE_MAX, 0))
		TH_LOG("IOVA_RANGES size %zu: %s", big, strerror(errno));
	EXPECT_EQ(1U, rcmd.num_iovas);
	EXPECT_EQ(1U, rcmd.out_iova_alignment);
	EXPECT_EQ(0U, range.start);
	EXPECT_EQ(UINT64_MAX, range.last);

	/* DESTROY: a non-zero tail must not destroy, a zero tail does */
	dcmd.id = id;
	EXPECT_ERRNO(E2BIG, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &dcmd,
					      sizeof(dcmd), big, big - 1, 1));
	ASSERT_EQ(0, _test_ioctl_sized(self->fd, IOMMU_DESTROY, &dcmd,
				       sizeof(dcmd), big, SIZE_MAX, 0))
		TH_LOG("DESTROY size %zu: %s", big, strerror(errno));
	test_err_ioctl_destroy(ENOENT, id);

	EXPECT_EQ(0, close(ctl));
}

/*
 * Argument memory that is only partly accessible. Upstream reads the size
 * word, then the struct, then checks the tail; any fault is EFAULT. A fault
 * while writing the answer of IOAS_ALLOC must also undo the allocation.
 */
TEST_F(iommufd, cmd_fault)
{
	__u8 *page = map_with_guard(2);
	__u8 *guard = page + PAGE_SIZE;
	struct iommu_ioas_alloc *acmd;
	struct iommu_destroy *dcmd;
	__u32 *size_only;
	__u32 id, id_ctl;
	unsigned int i;
	int ctl;

	ASSERT_NE(NULL, page);
	open_iommufd_or_fail(&ctl);

	/* entirely inside the guard page */
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, guard));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, guard));
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, guard));

	/* only the size word is readable, the rest of the struct is not */
	size_only = (__u32 *)(guard - sizeof(__u32));
	*size_only = sizeof(struct iommu_ioas_alloc);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, size_only));
	*size_only = sizeof(struct iommu_ioas_iova_ranges);
	EXPECT_ERRNO(EFAULT,
		     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, size_only));
	*size_only = sizeof(struct iommu_destroy);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, size_only));

	/* the struct is readable but its claimed tail runs into the guard */
	acmd = (void *)(guard - sizeof(*acmd));
	*acmd = (struct iommu_ioas_alloc){ .size = sizeof(*acmd) + 8 };
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, acmd));

	test_ioctl_ioas_alloc(&id);
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(ctl, 0, &id_ctl));
	dcmd = (void *)(guard - sizeof(*dcmd));
	*dcmd = (struct iommu_destroy){ .size = sizeof(*dcmd) + 8, .id = id };
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_DESTROY, dcmd));
	/* ... and the IOAS is still there */
	test_ioas_alive(id);

	/*
	 * Read-only argument: DESTROY writes nothing back so it works,
	 * IOAS_ALLOC cannot report its id and must fail without leaving an
	 * object behind.
	 */
	memset(page, 0, PAGE_SIZE);
	dcmd = (void *)page;
	*dcmd = (struct iommu_destroy){ .size = sizeof(*dcmd), .id = id };
	acmd = (void *)(page + 64);
	*acmd = (struct iommu_ioas_alloc){ .size = sizeof(*acmd) };
	ASSERT_EQ(0, mprotect(page, PAGE_SIZE, PROT_READ));
	EXPECT_EQ(0, ioctl(self->fd, IOMMU_DESTROY, dcmd))
		TH_LOG("DESTROY from read-only memory: %s", strerror(errno));
	test_err_ioctl_destroy(ENOENT, id);

	/* ctl mirrors the successful part: one alloc, one destroy */
	ASSERT_EQ(0, _test_ioctl_destroy(ctl, id_ctl));
	expect_same_next_id(self->fd, ctl);

	for (i = 0; i < 3; i++)
		EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_ALLOC, acmd));
	/*
	 * The aborted objects must be gone. Their ids were never reported, so
	 * probe the low id range (a fresh file hands out small ids) instead of
	 * comparing the next id, which an allocator with a cursor may
	 * legitimately have advanced.
	 */
	EXPECT_EQ(0, _test_count_ioas(self->fd, PROBE_IDS))
		TH_LOG("IOAS_ALLOC with an unwritable result left an object");
	test_ioctl_ioas_alloc(&id);
	EXPECT_EQ(1, _test_count_ioas(self->fd, PROBE_IDS));
	test_ioctl_destroy(id);

	EXPECT_EQ(0, close(ctl));
	munmap(page, 2 * PAGE_SIZE);
}

TEST_F(iommufd, ioas_alloc_flags)
{
	__u32 id_self = 0, id_ctl = 0, id;
	unsigned int bit;
	int ctl;

	open_iommufd_or_fail(&ctl);

	/* identical successful history on both files */
	test_ioctl_ioas_alloc(&id_self);
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(ctl, 0, &id_ctl));
	EXPECT_EQ(id_ctl, id_self);
	test_ioctl_destroy(id_self);
	ASSERT_EQ(0, _test_ioctl_destroy(ctl, id_ctl));

	/*
	 * Every upstream flag bit is unsupported and allocates nothing; bits
	 * 30 and 31 are our coherency modes (iommufd_coherency tests them).
	 */
	for (bit = 0; bit < 30; bit++) {
		id = UNTOUCHED_ID;
		EXPECT_ERRNO(EOPNOTSUPP,
			     _test_ioctl_ioas_alloc(self->fd, 1U << bit, &id))
			TH_LOG("flags bit %u", bit);
		EXPECT_EQ(UNTOUCHED_ID, id);
	}
	id = UNTOUCHED_ID;
	test_err_ioctl_ioas_alloc(EOPNOTSUPP, UINT32_MAX, &id);
	EXPECT_EQ(UNTOUCHED_ID, id);

	/* no object appeared ... */
	EXPECT_EQ(0, _test_count_ioas(self->fd, PROBE_IDS));
	/* ... and the next id is the one a file without the failures gets */
	expect_same_next_id(self->fd, ctl);

	/* and allocation still works normally */
	test_ioctl_ioas_alloc(&id);
	test_ioctl_destroy(id);

	EXPECT_EQ(0, close(ctl));
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

TEST_F(iommufd, ioas_ids_many)
{
	enum { N = 1000 };
	__u32 *ids = calloc(N, sizeof(*ids));
	__u32 *sorted = calloc(N, sizeof(*sorted));
	unsigned int i, dups;
	__u32 num, id;

	ASSERT_NE(NULL, ids);
	ASSERT_NE(NULL, sorted);

	for (i = 0; i < N; i++)
		test_ioctl_ioas_alloc(&ids[i]);

	/* all distinct (non-zero was checked by test_ioctl_ioas_alloc) */
	memcpy(sorted, ids, N * sizeof(*ids));
	qsort(sorted, N, sizeof(*sorted), cmp_u32);
	dups = 0;
	for (i = 1; i < N; i++) {
		if (sorted[i - 1] == sorted[i]) {
			TH_LOG("id %u handed out twice", sorted[i]);
			dups++;
		}
	}
	ASSERT_EQ(0U, dups);

	/* every one of them is a live IOAS */
	for (i = 0; i < N; i++) {
		num = 0;
		EXPECT_ERRNO(EMSGSIZE, _test_ioctl_ioas_iova_ranges(
					       self->fd, ids[i], &num, NULL,
					       NULL));
		EXPECT_EQ(1U, num);
	}

	/* destroy in an interleaved order: even indices, then odd */
	for (i = 0; i < N; i += 2)
		test_ioctl_destroy(ids[i]);
	for (i = 1; i < N; i += 2) {
		id = ids[i];
		test_ioas_alive(id);
	}
	for (i = 1; i < N; i += 2)
		test_ioctl_destroy(ids[i]);

	/* all gone now */
	for (i = 0; i < N; i++) {
		num = 1;
		test_err_ioctl_destroy(ENOENT, ids[i]);
		test_err_ioctl_ioas_iova_ranges(ENOENT, ids[i], &num, NULL);
	}

	/* the file is still fully usable */
	for (i = 0; i < 8; i++)
		test_ioctl_ioas_alloc(&ids[i]);
	for (i = 0; i < 8; i++)
		test_ioctl_destroy(ids[i]);

	free(ids);
	free(sorted);
}

TEST_F(iommufd, ioas_ids_per_fd)
{
	__u32 id_a, id_b, num;
	int fd_b, fd_dup;

	test_ioctl_ioas_alloc(&id_a);

	/* a second open of the device is a separate, empty context */
	open_iommufd_or_fail(&fd_b);
	num = 1;
	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_iova_ranges(fd_b, id_a, &num,
							  NULL, NULL));
	EXPECT_ERRNO(ENOENT, _test_ioctl_destroy(fd_b, id_a));
	/* the failed DESTROY on B did not touch A's object */
	test_ioas_alive(id_a);

	/* B allocates on its own; destroying B's object leaves A's alone */
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd_b, 0, &id_b));
	ASSERT_NE(0U, id_b);
	ASSERT_EQ(0, _test_ioctl_destroy(fd_b, id_b));
	test_ioas_alive(id_a);

	/* a dup()ed descriptor is the same file, so it sees A's objects */
	fd_dup = dup(self->fd);
	ASSERT_LE(0, fd_dup);
	num = 0;
	EXPECT_ERRNO(EMSGSIZE, _test_ioctl_ioas_iova_ranges(fd_dup, id_a, &num,
							    NULL, NULL));
	EXPECT_EQ(1U, num);
	ASSERT_EQ(0, _test_ioctl_destroy(fd_dup, id_a));
	test_err_ioctl_destroy(ENOENT, id_a);

	EXPECT_EQ(0, close(fd_dup));
	EXPECT_EQ(0, close(fd_b));
}

TEST_F(iommufd, iova_ranges_empty_ioas)
{
	struct iommu_iova_range range = { UNTOUCHED_U64, UNTOUCHED_U64 };
	__u64 align = UNTOUCHED_U64;
	__u32 ioas_id, num = 1;

	test_ioctl_ioas_alloc(&ioas_id);
	test_ioctl_ioas_iova_ranges(ioas_id, &num, &range, &align);
	EXPECT_EQ(1U, num);
	EXPECT_EQ(0U, range.start);
	EXPECT_EQ(UINT64_MAX, range.last);
	EXPECT_EQ(1U, align);

	/* a second query reports the same */
	range.start = range.last = UNTOUCHED_U64;
	test_ioctl_ioas_iova_ranges(ioas_id, &num, &range, &align);
	EXPECT_EQ(1U, num);
	EXPECT_EQ(0U, range.start);
	EXPECT_EQ(UINT64_MAX, range.last);

	test_ioctl_destroy(ioas_id);
}

TEST_F(iommufd, iova_ranges_emsgsize)
{
	struct iommu_iova_range ranges[4];
	struct iommu_iova_range pattern[4];
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.num_iovas = 0,
		.allowed_iovas = (uintptr_t)ranges,
		.out_iova_alignment = UNTOUCHED_U64,
	};
	__u8 *bad = map_with_guard(1);

	ASSERT_NE(NULL, bad);
	memset(pattern, 0xa5, sizeof(pattern));
	memcpy(ranges, pattern, sizeof(ranges));
	test_ioctl_ioas_alloc(&cmd.ioas_id);

	/* room for nothing: the totals come back, the array is not touched */
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(1U, cmd.out_iova_alignment);
	EXPECT_EQ(0U, cmd.__reserved);
	EXPECT_EQ((uintptr_t)ranges, cmd.allowed_iovas);
	EXPECT_EQ(sizeof(cmd), cmd.size);
	EXPECT_EQ(0, memcmp(ranges, pattern, sizeof(ranges)))
		TH_LOG("allowed_iovas written with num_iovas == 0");

	/* with num_iovas == 0 the array pointer is never dereferenced */
	cmd.num_iovas = 0;
	cmd.allowed_iovas = 0;
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1U, cmd.num_iovas);
	cmd.num_iovas = 0;
	cmd.allowed_iovas = (uintptr_t)bad;
	EXPECT_ERRNO(EMSGSIZE, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1U, cmd.num_iovas);

	/* retrying with the reported count succeeds */
	cmd.allowed_iovas = (uintptr_t)ranges;
	cmd.out_iova_alignment = UNTOUCHED_U64;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(1U, cmd.out_iova_alignment);
	EXPECT_EQ(0U, ranges[0].start);
	EXPECT_EQ(UINT64_MAX, ranges[0].last);
	EXPECT_EQ(0, memcmp(&ranges[1], &pattern[1], 3 * sizeof(ranges[0])));

	munmap(bad, PAGE_SIZE);
}

TEST_F(iommufd, iova_ranges_oversized_array)
{
	struct iommu_iova_range ranges[8];
	struct iommu_iova_range pattern[8];
	__u64 align = UNTOUCHED_U64;
	__u32 ioas_id, num;

	memset(pattern, 0x3c, sizeof(pattern));
	memcpy(ranges, pattern, sizeof(ranges));
	test_ioctl_ioas_alloc(&ioas_id);

	num = ARRAY_SIZE(ranges);
	test_ioctl_ioas_iova_ranges(ioas_id, &num, ranges, &align);
	EXPECT_EQ(1U, num);
	EXPECT_EQ(1U, align);
	EXPECT_EQ(0U, ranges[0].start);
	EXPECT_EQ(UINT64_MAX, ranges[0].last);
	/* only as many entries as exist are written */
	EXPECT_EQ(0, memcmp(&ranges[1], &pattern[1],
			    sizeof(ranges) - sizeof(ranges[0])));

	/* a huge count with a one-entry buffer is also fine */
	memcpy(ranges, pattern, sizeof(ranges));
	num = UINT32_MAX;
	test_ioctl_ioas_iova_ranges(ioas_id, &num, ranges, NULL);
	EXPECT_EQ(1U, num);
	EXPECT_EQ(0U, ranges[0].start);
	EXPECT_EQ(UINT64_MAX, ranges[0].last);
	EXPECT_EQ(0, memcmp(&ranges[1], &pattern[1],
			    sizeof(ranges) - sizeof(ranges[0])));
}

TEST_F(iommufd, iova_ranges_efault)
{
	__u8 *page = map_with_guard(2);
	__u8 *guard = page + PAGE_SIZE;
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.num_iovas = 1,
		.out_iova_alignment = UNTOUCHED_U64,
	};

	ASSERT_NE(NULL, page);
	test_ioctl_ioas_alloc(&cmd.ioas_id);

	cmd.allowed_iovas = 0;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	cmd.allowed_iovas = (uintptr_t)guard;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	/* the entry straddles the end of the accessible page */
	cmd.allowed_iovas = (uintptr_t)(guard - 8);
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	/* read-only memory cannot take the answer either */
	ASSERT_EQ(0, mprotect(page, PAGE_SIZE, PROT_READ));
	cmd.allowed_iovas = (uintptr_t)page;
	EXPECT_ERRNO(EFAULT, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	/* the failed calls handed nothing back */
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(UNTOUCHED_U64, cmd.out_iova_alignment);

	/* the IOAS is unaffected */
	ASSERT_EQ(0, mprotect(page, PAGE_SIZE, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(0U, ((struct iommu_iova_range *)page)->start);
	EXPECT_EQ(UINT64_MAX, ((struct iommu_iova_range *)page)->last);

	munmap(page, 2 * PAGE_SIZE);
}

TEST_F(iommufd, iova_ranges_reserved)
{
	struct iommu_iova_range range = { UNTOUCHED_U64, UNTOUCHED_U64 };
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.num_iovas = 1,
		.allowed_iovas = (uintptr_t)&range,
		.out_iova_alignment = UNTOUCHED_U64,
	};
	unsigned int bit;

	test_ioctl_ioas_alloc(&cmd.ioas_id);

	for (bit = 0; bit < 32; bit++) {
		cmd.__reserved = 1U << bit;
		EXPECT_ERRNO(EOPNOTSUPP,
			     ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd))
			TH_LOG("__reserved bit %u", bit);
	}
	EXPECT_EQ(1U, cmd.num_iovas);
	EXPECT_EQ(UNTOUCHED_U64, cmd.out_iova_alignment);
	EXPECT_EQ(UNTOUCHED_U64, range.start);

	/* __reserved is checked before the id is looked up (as upstream) */
	cmd.__reserved = 1;
	cmd.ioas_id = 0;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_IOAS_IOVA_RANGES, &cmd));
}

TEST_F(iommufd, iova_ranges_bad_id)
{
	struct iommu_iova_range range = { UNTOUCHED_U64, UNTOUCHED_U64 };
	static const __u32 bad_ids[] = { 0, 1, 2, 0x7fffffff, UINT32_MAX };
	__u32 num;
	unsigned int i;

	/* nothing allocated yet: no id can resolve */
	for (i = 0; i < ARRAY_SIZE(bad_ids); i++) {
		num = 1;
		test_err_ioctl_ioas_iova_ranges(ENOENT, bad_ids[i], &num,
						&range);
		EXPECT_EQ(1U, num);
		EXPECT_EQ(UNTOUCHED_U64, range.start);
	}
}

TEST_F(iommufd, close_with_objects)
{
	__u32 ids[16];
	unsigned int i;
	__u32 num;
	int fd2;

	/* objects left behind on the fixture's file */
	for (i = 0; i < ARRAY_SIZE(ids); i++)
		test_ioctl_ioas_alloc(&ids[i]);
	/* destroy a few, leave holes */
	test_ioctl_destroy(ids[3]);
	test_ioctl_destroy(ids[7]);
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;

	/* a second file with objects, closed as well */
	open_iommufd_or_fail(&fd2);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd2, 0, &(__u32){ 0 }));
	ASSERT_EQ(0, close(fd2));

	/* reopening gives an empty, working context */
	open_iommufd_or_fail(&self->fd);
	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		num = 1;
		test_err_ioctl_destroy(ENOENT, ids[i]);
		test_err_ioctl_ioas_iova_ranges(ENOENT, ids[i], &num, NULL);
	}
	for (i = 0; i < ARRAY_SIZE(ids); i++)
		test_ioctl_ioas_alloc(&ids[i]);
	num = 0;
	EXPECT_ERRNO(EMSGSIZE, _test_ioctl_ioas_iova_ranges(self->fd, ids[0],
							    &num, NULL, NULL));
	EXPECT_EQ(1U, num);
	/* teardown closes with all 16 objects still alive */
}

/* Many files at once, each with objects, closed out of order. */
TEST(many_files)
{
	enum { NFILES = 32, NOBJ = 8 };
	int fds[NFILES];
	unsigned int i, j;
	__u32 id;

	for (i = 0; i < NFILES; i++) {
		open_iommufd_or_fail(&fds[i]);
		for (j = 0; j < NOBJ; j++) {
			ASSERT_EQ(0, _test_ioctl_ioas_alloc(fds[i], 0, &id));
			ASSERT_NE(0U, id);
		}
	}
	for (i = 0; i < NFILES; i += 2)
		ASSERT_EQ(0, close(fds[i]));
	for (i = 1; i < NFILES; i += 2) {
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fds[i], 0, &id));
		ASSERT_EQ(0, _test_ioctl_destroy(fds[i], id));
		ASSERT_EQ(0, close(fds[i]));
	}
}

TEST_HARNESS_MAIN
