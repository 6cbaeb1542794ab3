// SPDX-License-Identifier: GPL-2.0-only
/*
 * iommufd map/unmap throughput benchmark (not a test: it prints numbers and
 * judges nothing).  The same binary runs against any /dev/iommu, so `make
 * bench` runs it on the Rust driver and on upstream's C driver built from
 * the same kernel source, side by side.
 *
 * For 1 GiB of anonymous memory backed by 4 KiB pages and by 2 MiB huge
 * pages (THP, MADV_HUGEPAGE; hugetlbfs if THP is unavailable) it measures:
 *   - "whole":  one IOMMU_IOAS_MAP of the 1 GiB, then one IOMMU_IOAS_UNMAP;
 *   - "chunks": the 1 GiB mapped as 4 KiB (resp. 2 MiB) mappings, one
 *               ioctl each, then unmapped the same way.
 * and prints GiB/s and microseconds per ioctl for map and for unmap (best of
 * REPEAT runs; one run for the 262144 4 KiB pieces, which take longest).
 *
 * With no device attached, neither driver pins pages at map time, so these
 * numbers measure the ioctl path and the IOVA bookkeeping; once a device is
 * attached, the same runs include pinning and I/O page table updates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>

#define GiB (1ULL << 30)
#define REPEAT 3

static int fd;
static __u32 ioas_id;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "iommufd_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void map(void *va, __u64 length, __u64 iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova,
	};

	if (ioctl(fd, IOMMU_IOAS_MAP, &cmd))
		die("IOMMU_IOAS_MAP");
}

static void unmap(__u64 iova, __u64 length)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = length,
	};

	if (ioctl(fd, IOMMU_IOAS_UNMAP, &cmd))
		die("IOMMU_IOAS_UNMAP");
	if (cmd.length != length) {
		errno = EIO;
		die("IOMMU_IOAS_UNMAP length");
	}
}

/* Best map and unmap GiB/s of REPEAT runs, mapping @buf in @chunk pieces. */
static void run(const char *backing, char *buf, __u64 chunk)
{
	const __u64 base = GiB;	/* IOVA of the first mapping */
	const double n = GiB / chunk;
	double best_map = 0, best_unmap = 0;
	int r, repeat = n > 100000 ? 1 : REPEAT;

	for (r = 0; r < repeat; r++) {
		double t0, t1, t2;
		__u64 off;

		t0 = now();
		for (off = 0; off < GiB; off += chunk)
			map(buf + off, chunk, base + off);
		t1 = now();
		for (off = 0; off < GiB; off += chunk)
			unmap(base + off, chunk);
		t2 = now();
		if (1 / (t1 - t0) > best_map)
			best_map = 1 / (t1 - t0);
		if (1 / (t2 - t1) > best_unmap)
			best_unmap = 1 / (t2 - t1);
	}
	printf("%-9s %-6s %6.0f ioctls  map %10.3f GiB/s %8.2f us/ioctl"
	       "  unmap %10.3f GiB/s %8.2f us/ioctl\n",
	       backing, chunk == GiB ? "whole" : "pieces", n,
	       best_map, 1e6 / (best_map * n), best_unmap,
	       1e6 / (best_unmap * n));
}

/* How much of this process's anonymous memory THP backs, in MiB. */
static long anon_huge_mib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib < 0 ? -1 : kib / 1024;
}

static char *alloc_1g(int huge)
{
	char *buf;

	buf = mmap(NULL, GiB + (2ULL << 20), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	/* 2 MiB aligned, so huge pages can back it */
	buf = (char *)(((uintptr_t)buf + (2ULL << 20) - 1) & ~((2ULL << 20) - 1));
	if (madvise(buf, GiB, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise");
	/* back it now, so page faults are not measured */
	memset(buf, 1, GiB);
	return buf;
}

int main(void)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	char *buf;

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		die("open /dev/iommu");
	if (ioctl(fd, IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	ioas_id = alloc.out_ioas_id;

	buf = alloc_1g(0);
	run("4KiB", buf, GiB);
	run("4KiB", buf, 4096);
	munmap(buf, GiB);

	buf = alloc_1g(1);
	printf("(THP backs %ld of the 1024 MiB)\n", anon_huge_mib());
	run("2MiB-THP", buf, GiB);
	run("2MiB-THP", buf, 2ULL << 20);
	return 0;
}
