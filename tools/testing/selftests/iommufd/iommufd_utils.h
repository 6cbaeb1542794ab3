/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for the iommufd-rs /dev/iommu selftests.
 *
 * Every ioctl has two forms:
 *   _test_ioctl_<name>(fd, ...)  issues the ioctl and returns its result
 *                                (0, or -1 with errno set);
 *   test_ioctl_<name>(...)       ASSERTs success on self->fd;
 *   test_err_ioctl_<name>(e,...) ASSERTs failure with errno == e.
 *
 * Nothing here uses IOMMU_TEST_CMD: the Rust iommufd has no mock driver, so
 * only plain userspace-visible behaviour is exercised.
 */
#ifndef __SELFTEST_IOMMUFD_RS_UTILS_H
#define __SELFTEST_IOMMUFD_RS_UTILS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/iommufd.h>

#include "kselftest_harness.h"

#define IOMMUFD_DEV_PATH "/dev/iommu"

#ifndef offsetofend
#define offsetofend(TYPE, MEMBER) \
	(offsetof(TYPE, MEMBER) + sizeof(((TYPE *)0)->MEMBER))
#endif

static unsigned long PAGE_SIZE;

static __attribute__((constructor)) void iommufd_utils_init(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	PAGE_SIZE = ps > 0 ? (unsigned long)ps : 4096;
}

/*
 * Helper for EXPECT_ERRNO(): called with the result of the expression, so
 * errno is read before anything else can change it. Returns the errno to
 * compare, or 0 (never a valid expectation) when the call did not fail.
 */
static inline int __expect_errno_of(struct __test_metadata *_metadata,
				    int expected, long rc, const char *expr)
{
	int err = errno;

	if (rc != -1) {
		TH_LOG("'%s' returned %ld, wanted failure with %s", expr, rc,
		       strerror(expected));
		return 0;
	}
	if (err != expected)
		TH_LOG("'%s' failed with '%s', wanted '%s'", expr,
		       strerror(err), strerror(expected));
	return err;
}

/*
 * @expr must fail with -1 and errno == @expected_errno. Like the other
 * EXPECT_* macros it may be followed by a statement that runs on failure,
 * e.g. EXPECT_ERRNO(ENOENT, f()) TH_LOG("more context");
 */
#define EXPECT_ERRNO(expected_errno, expr)                                    \
	EXPECT_EQ(expected_errno,                                             \
		  __expect_errno_of(_metadata, expected_errno, (long)(expr),  \
				    #expr))

/*
 * Open /dev/iommu or fail the test. The test VM always provides the device,
 * so a missing node is a failure, never a skip.
 */
#define open_iommufd_or_fail(fdp)                                             \
	({                                                                    \
		*(fdp) = open(IOMMUFD_DEV_PATH, O_RDWR | O_CLOEXEC);          \
		ASSERT_LE(0, *(fdp))                                          \
			TH_LOG("cannot open %s: %s (is the iommufd-rs "       \
			       "driver built in / loaded?)",                  \
			       IOMMUFD_DEV_PATH, strerror(errno));            \
	})

/* IOMMU_DESTROY */
static inline int _test_ioctl_destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = {
		.size = sizeof(cmd),
		.id = id,
	};

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}
#define test_ioctl_destroy(id) \
	ASSERT_EQ(0, _test_ioctl_destroy(self->fd, id))
#define test_err_ioctl_destroy(_errno, id) \
	EXPECT_ERRNO(_errno, _test_ioctl_destroy(self->fd, id))

/*
 * IOMMU_IOAS_ALLOC with explicit flags. *id is only written on success, so the
 * caller's value survives a failed call.
 */
static inline int _test_ioctl_ioas_alloc(int fd, __u32 flags, __u32 *id)
{
	struct iommu_ioas_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (rc)
		return rc;
	if (id)
		*id = cmd.out_ioas_id;
	return 0;
}
#define test_ioctl_ioas_alloc(id)                                             \
	({                                                                    \
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->fd, 0, id))         \
			TH_LOG("IOMMU_IOAS_ALLOC: %s", strerror(errno));      \
		ASSERT_NE(0U, *(id));                                          \
	})
#define test_err_ioctl_ioas_alloc(_errno, flags, id) \
	EXPECT_ERRNO(_errno, _test_ioctl_ioas_alloc(self->fd, flags, id))

/*
 * IOMMU_IOAS_IOVA_RANGES. *num_iovas is the array length on input and the
 * kernel's total on output. The whole command struct is handed back through
 * @out (if non-NULL), also on failure, so the caller can inspect what the
 * kernel wrote.
 */
static inline int _test_ioctl_ioas_iova_ranges(int fd, __u32 ioas_id,
					       __u32 *num_iovas,
					       struct iommu_iova_range *ranges,
					       __u64 *out_alignment)
{
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = *num_iovas,
		.allowed_iovas = (uintptr_t)ranges,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &cmd);
	*num_iovas = cmd.num_iovas;
	if (out_alignment)
		*out_alignment = cmd.out_iova_alignment;
	return rc;
}
#define test_ioctl_ioas_iova_ranges(ioas_id, num_iovas, ranges, align)        \
	ASSERT_EQ(0, _test_ioctl_ioas_iova_ranges(self->fd, ioas_id,          \
						  num_iovas, ranges, align))  \
		TH_LOG("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno))
#define test_err_ioctl_ioas_iova_ranges(_errno, ioas_id, num_iovas, ranges)   \
	EXPECT_ERRNO(_errno, _test_ioctl_ioas_iova_ranges(                    \
				     self->fd, ioas_id, num_iovas, ranges,    \
				     NULL))

/*
 * Issue @ioctl_num with a command of @total bytes: the first @cmd_len bytes
 * come from @cmd, the rest of the buffer is zero except that, when
 * @tail_byte_off < @total, the byte at that offset is set to @tail_byte.
 * The ioctl's size field is set to @total. After the call the leading
 * @cmd_len bytes are copied back into @cmd so the caller can check outputs.
 * Returns the ioctl result; errno is preserved.
 */
static inline int _test_ioctl_sized(int fd, unsigned long ioctl_num,
				    void *cmd, size_t cmd_len, size_t total,
				    size_t tail_byte_off, __u8 tail_byte)
{
	size_t alloc_len = total;
	__u8 *buf;
	int saved_errno;
	int rc;

	/* even a tiny size field sits in a buffer holding the whole struct */
	if (alloc_len < cmd_len)
		alloc_len = cmd_len;
	if (alloc_len < sizeof(__u32))
		alloc_len = sizeof(__u32);
	buf = calloc(1, alloc_len);
	if (!buf) {
		errno = ENOMEM;
		return -2;
	}
	memcpy(buf, cmd, cmd_len);
	*(__u32 *)buf = total;
	if (tail_byte_off < total)
		buf[tail_byte_off] = tail_byte;

	rc = ioctl(fd, ioctl_num, buf);
	saved_errno = errno;
	memcpy(cmd, buf, cmd_len);
	free(buf);
	errno = saved_errno;
	return rc;
}

/* Check that @id names a live IOAS on @fd: a one-entry IOVA_RANGES works. */
static inline int _test_ioas_alive(int fd, __u32 id)
{
	struct iommu_iova_range range;
	__u32 num = 1;

	return _test_ioctl_ioas_iova_ranges(fd, id, &num, &range, NULL);
}
#define test_ioas_alive(id)                                                   \
	ASSERT_EQ(0, _test_ioas_alive(self->fd, id))                          \
		TH_LOG("IOAS %u should still exist: %s", id, strerror(errno))

/*
 * Count the IOAS objects with ids 1..max_id on @fd without changing anything:
 * IOVA_RANGES with room for no entries fails with EMSGSIZE for a live IOAS
 * and with ENOENT otherwise. Returns -1 on any other outcome.
 */
static inline int _test_count_ioas(int fd, __u32 max_id)
{
	int count = 0;
	__u32 id, num;

	for (id = 1; id <= max_id; id++) {
		num = 0;
		if (!_test_ioctl_ioas_iova_ranges(fd, id, &num, NULL, NULL))
			return -1;
		if (errno == EMSGSIZE)
			count++;
		else if (errno != ENOENT)
			return -1;
	}
	return count;
}

#endif /* __SELFTEST_IOMMUFD_RS_UTILS_H */
