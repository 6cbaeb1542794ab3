// SPDX-License-Identifier: GPL-2.0-only
/*
 * iommufd map/unmap throughput benchmark (not a test: it prints numbers and
 * judges nothing about them).  The same binary runs against any /dev/iommu,
 * so `make bench` runs it on the Rust driver and on upstream's C driver
 * built from the same kernel source, and puts the two side by side.
 *
 * For 1 GiB of anonymous memory backed by 4 KiB pages and by 2 MiB huge
 * pages (THP, MADV_HUGEPAGE) it measures:
 *   - "whole": one IOMMU_IOAS_MAP of the 1 GiB, then one IOMMU_IOAS_UNMAP;
 *   - "4KiB" / "2MiB": the memory mapped in pieces of that size, one ioctl
 *     each, then unmapped the same way;
 * and prints GiB/s and microseconds per ioctl for map and for unmap (best of
 * REPEAT runs; a single run for the cases with many thousands of ioctls).
 *
 * It does so in two passes over one IOAS:
 *   - "no-device": nothing is attached, so neither driver pins pages at map
 *     time; the numbers measure the ioctl path and the IOVA bookkeeping;
 *   - "edu-attached": QEMU's edu PCI device (1234:11e8), bound to vfio-pci,
 *     is bound to the iommufd (VFIO_DEVICE_BIND_IOMMUFD) and attached to the
 *     IOAS (VFIO_DEVICE_ATTACH_IOMMUFD_PT, which gives it an automatic
 *     HWPT, i.e. an IOMMU domain).  Every map now pins the pages and writes
 *     the I/O page table, every unmap clears it (with an IOTLB flush) and
 *     unpins.  The 4 KiB-piece case of this pass covers only the first
 *     ATTACHED_4K_MIB MiB, as each of its ioctls is far slower under TCG;
 *     the MiB column of the output says how much each case mapped.
 *
 * Only the plain uAPI is used.  The edu device is found the way the
 * selftests find it (vfio_utils.h): by vendor:device in sysfs among the
 * functions bound to vfio-pci, or from $IOMMUFD_TEST_EDU_BDF.  If it cannot
 * be found, bound or attached, a line saying that the edu-attached pass was
 * not run is printed and the exit status is non-zero.
 *
 * Output: lines starting with '#' are comments; the table lines have nine
 * whitespace-separated fields (pass, backing, map size, MiB, ioctls, map
 * GiB/s, map us/ioctl, unmap GiB/s, unmap us/ioctl) that scripts/bench.sh
 * joins across the two drivers.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define REPEAT 3
/* cases with more ioctls than this run once instead of REPEAT times */
#define MANY_IOCTLS 10000
/* how much of the 1 GiB the edu-attached 4 KiB-piece case maps */
#define ATTACHED_4K_MIB 256ULL

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_BDF_ENV "IOMMUFD_TEST_EDU_BDF"
#define PCI_DEVICES "/sys/bus/pci/devices"

static int fd;
static __u32 ioas_id;
static const char *pass = "no-device";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "iommufd_bench (%s pass): %s: %s\n", pass, what,
		strerror(errno));
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

static void print_header(void)
{
	printf("%-12s %-8s %-5s %5s %7s %11s %12s %11s %14s\n", "#pass",
	       "backing", "size", "MiB", "ioctls", "map_GiB/s", "map_us/ioctl",
	       "unmap_GiB/s", "unmap_us/ioctl");
}

/*
 * Maps the first @total bytes of @buf in @chunk pieces and unmaps them again;
 * prints the best map and unmap rates of the runs.
 */
static void run(const char *backing, char *buf, __u64 total, __u64 chunk)
{
	const __u64 base = GiB;	/* IOVA of the first mapping */
	const double n = total / chunk;
	const double gib = (double)total / GiB;
	double best_map = 0, best_unmap = 0;
	int r, repeat = n > MANY_IOCTLS ? 1 : REPEAT;
	char size[16];

	for (r = 0; r < repeat; r++) {
		double t0, t1, t2;
		__u64 off;

		t0 = now();
		for (off = 0; off < total; off += chunk)
			map(buf + off, chunk, base + off);
		t1 = now();
		for (off = 0; off < total; off += chunk)
			unmap(base + off, chunk);
		t2 = now();
		if (gib / (t1 - t0) > best_map)
			best_map = gib / (t1 - t0);
		if (gib / (t2 - t1) > best_unmap)
			best_unmap = gib / (t2 - t1);
	}
	if (chunk == total)
		snprintf(size, sizeof(size), "whole");
	else if (chunk >= MiB)
		snprintf(size, sizeof(size), "%lluMiB", chunk / MiB);
	else
		snprintf(size, sizeof(size), "%lluKiB", chunk >> 10);
	printf("%-12s %-8s %-5s %5llu %7.0f %11.3f %12.2f %11.3f %14.2f\n",
	       pass, backing, size, total / MiB, n, best_map,
	       1e6 * gib / (best_map * n), best_unmap,
	       1e6 * gib / (best_unmap * n));
}

/* The @key line of /proc/self/status in kB, -1 if there is none. */
static long status_kb(const char *key)
{
	size_t klen = strlen(key);
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen)) {
			if (sscanf(line + klen, " %ld", &kb) != 1)
				kb = -1;
			break;
		}
	}
	fclose(f);
	return kb;
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

/* 1 GiB of populated anonymous memory, 2 MiB aligned; *@raw to munmap. */
static char *alloc_1g(int huge, void **raw)
{
	char *buf;

	buf = mmap(NULL, GiB + 2 * MiB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	*raw = buf;
	/* 2 MiB aligned, so huge pages can back it */
	buf = (char *)(((uintptr_t)buf + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	if (madvise(buf, GiB, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise");
	/* back it now, so page faults are not measured */
	memset(buf, 1, GiB);
	return buf;
}

/*
 * With a device attached a map must pin its pages (VmPin) and the unmap
 * must unpin them.  Checked once, outside the timed runs, so that the
 * numbers of the edu-attached pass are known to include pinning.
 * Returns 0 if it did.
 */
static int check_pinning(char *buf)
{
	long before, mapped, after;

	before = status_kb("VmPin:");
	map(buf, 2 * MiB, GiB);
	mapped = status_kb("VmPin:");
	unmap(GiB, 2 * MiB);
	after = status_kb("VmPin:");
	printf("# %s: a 2 MiB map moved VmPin from %ld to %ld kB, its unmap back to %ld kB\n",
	       pass, before, mapped, after);
	if (before < 0 || mapped - before != 2048 || after != before) {
		printf("# %s: WARNING: pages were not pinned and unpinned as "
		       "expected; this pass may not measure pinning\n", pass);
		return -1;
	}
	return 0;
}

/* One pass: every case over the 4 KiB-page and the THP-backed buffer. */
static int run_pass(__u64 small_total)
{
	int rc = 0;
	void *raw;
	char *buf;

	buf = alloc_1g(0, &raw);
	if (strcmp(pass, "no-device"))
		rc = check_pinning(buf);
	run("4KiB", buf, GiB, GiB);
	run("4KiB", buf, small_total, 4096);
	munmap(raw, GiB + 2 * MiB);

	buf = alloc_1g(1, &raw);
	printf("# %s: THP backs %ld of the 1024 MiB\n", pass, anon_huge_mib());
	run("2MiB-THP", buf, GiB, GiB);
	run("2MiB-THP", buf, GiB, 2 * MiB);
	munmap(raw, GiB + 2 * MiB);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* the edu device */

/* Copies @src to @dst of @len bytes, cut short if need be; terminated. */
static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static int read_hex(const char *path, unsigned int *val)
{
	FILE *f = fopen(path, "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%x", val);
	fclose(f);
	return n == 1 ? 0 : -1;
}

/* The driver bound to @bdf ("" for none) in @drv. */
static void driver_of(const char *bdf, char *drv, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		copy_str(drv, len, "");
		return;
	}
	target[n] = 0;
	base = strrchr(target, '/');
	copy_str(drv, len, base ? base + 1 : target);
}

/*
 * The PCI address of the edu device to use in @bdf: $IOMMUFD_TEST_EDU_BDF,
 * else the lowest-addressed 1234:11e8 bound to vfio-pci.  Returns 0, or -1
 * with the reason in @why.
 */
static int find_edu(char *bdf, size_t len, char *why, size_t why_len)
{
	char best[NAME_MAX + 1] = "", other[NAME_MAX + 1] = "";
	const char *env = getenv(EDU_BDF_ENV);
	char path[PATH_MAX], drv[64];
	unsigned int v, d;
	struct dirent *de;
	DIR *dir;

	if (env && env[0]) {
		copy_str(bdf, len, env);
		driver_of(bdf, drv, sizeof(drv));
		if (strcmp(drv, "vfio-pci")) {
			snprintf(why, why_len,
				 "%s=%s is bound to '%s', not to vfio-pci",
				 EDU_BDF_ENV, bdf, drv[0] ? drv : "no driver");
			return -1;
		}
		return 0;
	}

	dir = opendir(PCI_DEVICES);
	if (!dir) {
		snprintf(why, why_len, "%s: %s", PCI_DEVICES, strerror(errno));
		return -1;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor",
			 de->d_name);
		if (read_hex(path, &v) || v != EDU_VENDOR)
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/device",
			 de->d_name);
		if (read_hex(path, &d) || d != EDU_DEVICE)
			continue;
		driver_of(de->d_name, drv, sizeof(drv));
		if (strcmp(drv, "vfio-pci")) {
			copy_str(other, sizeof(other), de->d_name);
			continue;
		}
		if (!best[0] || strcmp(de->d_name, best) < 0)
			copy_str(best, sizeof(best), de->d_name);
	}
	closedir(dir);

	if (best[0]) {
		copy_str(bdf, len, best);
		return 0;
	}
	if (other[0]) {
		driver_of(other, drv, sizeof(drv));
		snprintf(why, why_len,
			 "edu (%04x:%04x) at %s is bound to '%s', not to vfio-pci",
			 EDU_VENDOR, EDU_DEVICE, other,
			 drv[0] ? drv : "no driver");
	} else {
		snprintf(why, why_len, "no edu device (PCI %04x:%04x)",
			 EDU_VENDOR, EDU_DEVICE);
	}
	return -1;
}

/* /dev/vfio/devices/vfioN of @bdf in @cdev; 0, or -1 with @why. */
static int vfio_cdev_of(const char *bdf, char *cdev, size_t len, char *why,
			size_t why_len)
{
	char path[160];
	struct dirent *de;
	unsigned int n;
	DIR *dir;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/vfio-dev", bdf);
	dir = opendir(path);
	if (!dir) {
		snprintf(why, why_len, "%s: %s (no VFIO cdev)", path,
			 strerror(errno));
		return -1;
	}
	while ((de = readdir(dir))) {
		if (sscanf(de->d_name, "vfio%u", &n) == 1) {
			snprintf(cdev, len, "/dev/vfio/devices/vfio%u", n);
			closedir(dir);
			return 0;
		}
	}
	closedir(dir);
	snprintf(why, why_len, "%s holds no vfioN entry", path);
	return -1;
}

/*
 * Finds edu, binds it to the iommufd and attaches it to the IOAS.  Returns
 * the device fd, or -1 after printing why the pass cannot run.
 */
static int attach_edu(void)
{
	char bdf[64], cdev[64], why[512];
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = fd,
	};
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = ioas_id,
	};
	int dev;

	if (find_edu(bdf, sizeof(bdf), why, sizeof(why)) ||
	    vfio_cdev_of(bdf, cdev, sizeof(cdev), why, sizeof(why)))
		goto not_run;
	dev = open(cdev, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		snprintf(why, sizeof(why), "open %s (edu %s): %s", cdev, bdf,
			 strerror(errno));
		goto not_run;
	}
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		snprintf(why, sizeof(why),
			 "VFIO_DEVICE_BIND_IOMMUFD of %s (edu %s): %s", cdev,
			 bdf, strerror(errno));
		close(dev);
		goto not_run;
	}
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach)) {
		snprintf(why, sizeof(why),
			 "VFIO_DEVICE_ATTACH_IOMMUFD_PT of %s (edu %s) to IOAS %u: %s",
			 cdev, bdf, ioas_id, strerror(errno));
		close(dev);
		goto not_run;
	}
	printf("# %s: edu %s (%s) bound as device %u, attached to IOAS %u through HWPT %u\n",
	       pass, bdf, cdev, bind.out_devid, ioas_id, attach.pt_id);
	return dev;

not_run:
	printf("%s: NOT RUN: %s\n", pass, why);
	return -1;
}

static void detach_edu(int dev)
{
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = sizeof(detach),
	};

	if (ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach))
		die("VFIO_DEVICE_DETACH_IOMMUFD_PT");
	if (close(dev))
		die("close of the edu device");
}

int main(void)
{
	struct iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	int dev, rc;

	/* stdout and stderr usually go to one file: keep them in order */
	setvbuf(stdout, NULL, _IOLBF, 0);

	fd = open("/dev/iommu", O_RDWR);
	if (fd < 0)
		die("open /dev/iommu");
	if (ioctl(fd, IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	ioas_id = alloc.out_ioas_id;

	printf("# map/unmap of anonymous memory into one IOAS; best of %d runs "
	       "(1 run above %d ioctls)\n", REPEAT, MANY_IOCTLS);
	print_header();
	printf("# --- pass 1, no-device: nothing attached, nothing pinned\n");
	run_pass(GiB);

	pass = "edu-attached";
	printf("# --- pass 2, edu-attached: maps pin the pages and fill the IOMMU page table\n");
	dev = attach_edu();
	if (dev < 0)
		return 1;
	printf("# %s: the 4 KiB-piece case maps %llu of the 1024 MiB\n",
	       pass, ATTACHED_4K_MIB);
	rc = run_pass(ATTACHED_4K_MIB * MiB);
	detach_edu(dev);
	return rc ? 2 : 0;
}
