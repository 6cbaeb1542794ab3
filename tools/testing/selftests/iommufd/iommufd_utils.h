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

/* Read and write access: what a plain DMA buffer mapping asks for. */
#define MAP_RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

/*
 * IOMMU_IOAS_MAP of [@buf, @buf + @length) into @ioas_id. With
 * IOMMU_IOAS_MAP_FIXED_IOVA in @flags *@iova is the IOVA to map at; without
 * it the kernel picks one. *@iova receives the kernel's answer on success
 * only, so a sentinel survives a failed call. @iova may be NULL for a
 * kernel-chosen IOVA that the caller does not need.
 */
static inline int _test_ioctl_ioas_map(int fd, __u32 ioas_id, const void *buf,
				       __u64 length, __u64 *iova, __u32 flags)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)buf,
		.length = length,
		.iova = iova ? *iova : 0,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_MAP, &cmd);
	if (!rc && iova)
		*iova = cmd.iova;
	return rc;
}
/* kernel-chosen IOVA, read+write */
#define test_ioctl_ioas_map(ioas_id, buf, length, iovap)                      \
	ASSERT_EQ(0, _test_ioctl_ioas_map(self->fd, ioas_id, buf, length,     \
					  iovap, MAP_RW))                     \
		TH_LOG("IOMMU_IOAS_MAP(%p, 0x%llx): %s", (void *)(buf),       \
		       (unsigned long long)(length), strerror(errno))
#define test_err_ioctl_ioas_map(_errno, ioas_id, buf, length, iovap)          \
	EXPECT_ERRNO(_errno, _test_ioctl_ioas_map(self->fd, ioas_id, buf,     \
						  length, iovap, MAP_RW))
/* fixed IOVA, read+write; the kernel must report the same IOVA back */
#define test_ioctl_ioas_map_fixed(ioas_id, buf, length, iova)                 \
	({                                                                    \
		__u64 __iova = (iova);                                        \
		ASSERT_EQ(0, _test_ioctl_ioas_map(                            \
				     self->fd, ioas_id, buf, length, &__iova, \
				     MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))     \
			TH_LOG("IOMMU_IOAS_MAP(%p, 0x%llx) at 0x%llx: %s",    \
			       (void *)(buf), (unsigned long long)(length),   \
			       (unsigned long long)(iova), strerror(errno));  \
		ASSERT_EQ((__u64)(iova), __iova);                             \
	})
#define test_err_ioctl_ioas_map_fixed(_errno, ioas_id, buf, length, iova)     \
	({                                                                    \
		__u64 __iova = (iova);                                        \
		EXPECT_ERRNO(_errno,                                          \
			     _test_ioctl_ioas_map(                            \
				     self->fd, ioas_id, buf, length, &__iova, \
				     MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))     \
			TH_LOG("map of 0x%llx at 0x%llx",                     \
			       (unsigned long long)(length),                  \
			       (unsigned long long)(iova));                   \
	})

/*
 * IOMMU_IOAS_UNMAP of [@iova, @iova + @length). iova 0 with length UINT64_MAX
 * means "everything". *@out_len (if non-NULL) receives the length field as
 * the kernel left it, on failure too: the kernel only writes it on success,
 * so after a failure it still holds @length.
 */
static inline int _test_ioctl_ioas_unmap(int fd, __u32 ioas_id, __u64 iova,
					 __u64 length, __u64 *out_len)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_UNMAP, &cmd);
	if (out_len)
		*out_len = cmd.length;
	return rc;
}
/* success, and exactly @length bytes were unmapped */
#define test_ioctl_ioas_unmap(ioas_id, iova, length)                          \
	({                                                                    \
		__u64 __out = 0;                                              \
		ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, ioas_id, iova,  \
						    length, &__out))          \
			TH_LOG("IOMMU_IOAS_UNMAP(0x%llx, 0x%llx): %s",        \
			       (unsigned long long)(iova),                    \
			       (unsigned long long)(length), strerror(errno)); \
		ASSERT_EQ((__u64)(length), __out);                            \
	})
#define test_err_ioctl_ioas_unmap(_errno, ioas_id, iova, length)              \
	EXPECT_ERRNO(_errno, _test_ioctl_ioas_unmap(self->fd, ioas_id, iova,  \
						    length, NULL))            \
		TH_LOG("unmap of 0x%llx at 0x%llx",                           \
		       (unsigned long long)(length),                          \
		       (unsigned long long)(iova))
/* unmap everything; @expected_len bytes must have been mapped */
#define test_ioctl_ioas_unmap_all(ioas_id, expected_len)                      \
	({                                                                    \
		__u64 __out = 0;                                              \
		ASSERT_EQ(0, _test_ioctl_ioas_unmap(self->fd, ioas_id, 0,     \
						    UINT64_MAX, &__out))      \
			TH_LOG("IOMMU_IOAS_UNMAP(all): %s", strerror(errno)); \
		ASSERT_EQ((__u64)(expected_len), __out);                      \
	})

/* IOMMU_IOAS_ALLOW_IOVAS with @num entries at @ranges. */
static inline int _test_ioctl_ioas_allow_iovas(int fd, __u32 ioas_id,
					       const struct iommu_iova_range *ranges,
					       __u32 num)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.num_iovas = num,
		.allowed_iovas = (uintptr_t)ranges,
	};

	return ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}
#define test_ioctl_ioas_allow_iovas(ioas_id, ranges, num)                     \
	ASSERT_EQ(0, _test_ioctl_ioas_allow_iovas(self->fd, ioas_id, ranges,  \
						  num))                       \
		TH_LOG("IOMMU_IOAS_ALLOW_IOVAS: %s", strerror(errno))
#define test_err_ioctl_ioas_allow_iovas(_errno, ioas_id, ranges, num)         \
	EXPECT_ERRNO(_errno, _test_ioctl_ioas_allow_iovas(self->fd, ioas_id,  \
							  ranges, num))

/*
 * IOMMU_HWPT_ALLOC of a paging HWPT on @pt_id for @dev_id with @flags;
 * *@out_id is written on success only.
 */
static inline int _test_ioctl_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
					 __u32 flags, __u32 *out_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
	};
	int rc = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (!rc)
		*out_id = cmd.out_hwpt_id;
	return rc;
}

/*
 * IOMMU_IOAS_COPY of [@src_iova, @src_iova + @length) in @src_ioas to
 * @dst_ioas. *@dst_iova is the input IOVA with IOMMU_IOAS_MAP_FIXED_IOVA and
 * receives the kernel's answer on success only.
 */
static inline int _test_ioctl_ioas_copy(int fd, __u32 dst_ioas, __u32 src_ioas,
					__u64 src_iova, __u64 length,
					__u64 *dst_iova, __u32 flags)
{
	struct iommu_ioas_copy cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dst_ioas_id = dst_ioas,
		.src_ioas_id = src_ioas,
		.length = length,
		.dst_iova = dst_iova ? *dst_iova : 0,
		.src_iova = src_iova,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_COPY, &cmd);
	if (!rc && dst_iova)
		*dst_iova = cmd.dst_iova;
	return rc;
}
#define test_ioctl_ioas_copy_fixed(dst_ioas, dst_iova, src_ioas, src_iova,     \
				   length)                                     \
	({                                                                     \
		__u64 __dst = (dst_iova);                                      \
		ASSERT_EQ(0, _test_ioctl_ioas_copy(                            \
				     self->fd, dst_ioas, src_ioas, src_iova,   \
				     length, &__dst,                           \
				     MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))      \
			TH_LOG("IOMMU_IOAS_COPY(0x%llx, 0x%llx) to 0x%llx: %s", \
			       (unsigned long long)(src_iova),                 \
			       (unsigned long long)(length),                   \
			       (unsigned long long)(dst_iova),                 \
			       strerror(errno));                               \
		ASSERT_EQ((__u64)(dst_iova), __dst);                           \
	})
#define test_err_ioctl_ioas_copy_fixed(_errno, dst_ioas, dst_iova, src_ioas,   \
				       src_iova, length)                       \
	({                                                                     \
		__u64 __dst = (dst_iova);                                      \
		EXPECT_ERRNO(_errno,                                           \
			     _test_ioctl_ioas_copy(                            \
				     self->fd, dst_ioas, src_ioas, src_iova,   \
				     length, &__dst,                           \
				     MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))      \
			TH_LOG("copy of 0x%llx at 0x%llx to 0x%llx",           \
			       (unsigned long long)(length),                   \
			       (unsigned long long)(src_iova),                 \
			       (unsigned long long)(dst_iova));                \
	})

/* IOAS_MAP_FILE of [@start, +@length) of @mfd; the IOVA in and out in *@iova. */
static inline int _test_ioctl_ioas_map_file(int fd, __u32 ioas_id, int mfd,
					    __u64 start, __u64 length,
					    __u64 *iova, __u32 flags)
{
	struct iommu_ioas_map_file cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas_id,
		.fd = mfd,
		.start = start,
		.length = length,
		.iova = *iova,
	};
	int rc;

	rc = ioctl(fd, IOMMU_IOAS_MAP_FILE, &cmd);
	if (!rc)
		*iova = cmd.iova;
	return rc;
}

/* IOMMU_OPTION: *@val64 in, the answer out (on success). */
static inline int _test_ioctl_option(int fd, __u32 option_id, __u16 op,
				     __u32 object_id, __u64 *val64)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = op,
		.object_id = object_id,
		.val64 = *val64,
	};
	int rc;

	rc = ioctl(fd, IOMMU_OPTION, &cmd);
	if (!rc)
		*val64 = cmd.val64;
	return rc;
}

/*
 * Write @text to the file @path (sysfs, debugfs, tracefs knobs), opened with
 * O_WRONLY | @flags: pass O_APPEND for files where truncation means
 * something, such as kprobe_events. Returns 0 or -errno (-EIO for a short
 * write).
 */
static inline int write_file(const char *path, const char *text, int flags)
{
	size_t len = strlen(text);
	int fd, err = 0;
	ssize_t n;

	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

/*
 * Waits up to @ms for a kernel log line containing @needle, reading from
 * @kmsg (opened non-blocking, positioned before the event). true if seen.
 */
static inline bool wait_kmsg(int kmsg, const char *needle, int ms)
{
	char rec[1024];

	for (; ms > 0; ms -= 50) {
		ssize_t n;

		while ((n = read(kmsg, rec, sizeof(rec) - 1)) > 0) {
			rec[n] = 0;
			if (strstr(rec, needle))
				return true;
		}
		usleep(50 * 1000);
	}
	return false;
}

#endif /* __SELFTEST_IOMMUFD_RS_UTILS_H */
