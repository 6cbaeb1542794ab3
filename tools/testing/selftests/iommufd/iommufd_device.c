// SPDX-License-Identifier: GPL-2.0-only
/*
 * iommufd-rs with real devices: VFIO cdev binding and attachment, the IOVA
 * ranges a device imposes, and page pinning as the process sees it.
 *
 * The test VM binds QEMU's edu device (and an e1000e NIC for the two-device
 * tests) to vfio-pci; see vfio_utils.h. Every expectation is what upstream
 * Linux 7.3 does (drivers/vfio/{device_cdev,iommufd,vfio_main}.c and
 * drivers/iommu/iommufd/{device,io_pagetable,pages,main}.c):
 *
 *  - VFIO_DEVICE_BIND_IOMMUFD creates a device object; ATTACH to an IOAS
 *    creates (or reuses) an automatic HWPT whose id is reported back, and
 *    that HWPT keeps the IOAS busy until DETACH destroys it again;
 *  - once a device is attached the IOAS gets the device's reserved regions
 *    (what sysfs lists for its group; on x86, whichever IOMMU, that
 *    includes the MSI window 0xfee00000-0xfeefffff), the domain's
 *    aperture and a PAGE_SIZE IOVA alignment;
 *  - binding needs MSIs the platform isolates, or iommufd's
 *    allow_unsafe_interrupts parameter (the virtio-iommu profile: it
 *    cannot remap interrupts), and then warns;
 *  - user pages are pinned only while some domain needs them: pinning
 *    happens at map time when a device is attached, at attach time for
 *    mappings that already exist, and the pins go away on unmap, detach or
 *    unbind. Each pinned page is counted in the owning mm's pinned_vm
 *    (VmPin in /proc/self/status) whatever the accounting mode;
 *  - without CAP_IPC_LOCK the pins are charged against RLIMIT_MEMLOCK, to
 *    the user by default or to the mm's locked_vm (VmLck) in
 *    IOMMU_OPTION_RLIMIT_MODE 1.
 *
 * Each test runs in its own forked process (kselftest harness), so changing
 * capabilities or rlimits never leaks into another test. The fixture
 * teardown closes everything and checks that VmPin is back where it
 * started. Missing devices are failures, not skips.
 */
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/pci_regs.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"
#include "iommu_facts.h"

#define PSZ ((__u64)PAGE_SIZE)

/* IOVAs used for fixed maps; far below anything a device reserves. */
#define IOVA_A 0x1000000ULL
#define IOVA_B 0x2000000ULL
#define IOVA_C 0x3000000ULL
#define IOVA_D 0x4000000ULL

/* pages per ordinary mapping, and the RLIMIT_MEMLOCK of the memlock tests */
#define NPAGES 8
#define LIMIT_PAGES 16
/* fixture buffer: populated, big enough for every mapping below */
#define BUF_PAGES 64

/* ---------------------------------------------------------------------- */
/* shared helpers                                                          */
/* ---------------------------------------------------------------------- */

/* VmPin must be exactly @npages pages above the value at test start. */
#define expect_vmpin(npages)                                                  \
	({                                                                    \
		long __want = self->vmpin_start + PAGES_KB(npages);           \
		long __have = vmpin_kb();                                     \
		EXPECT_EQ(__want, __have)                                     \
			TH_LOG("VmPin %ld kB, expected %ld kB (%ld pages "    \
			       "pinned since start)",                         \
			       __have, __want, (long)(npages));               \
	})

/* Map @npages of the fixture buffer, starting at page @pg, at @iova. */
#define map_pages(ioas, pg, npages, iova)                                     \
	test_ioctl_ioas_map_fixed(ioas, self->buf + (pg) * PSZ,               \
				  (npages) * PSZ, iova)
#define unmap_pages(ioas, iova, npages) \
	test_ioctl_ioas_unmap(ioas, iova, (npages) * PSZ)

/* IOVA_RANGES of an IOAS with no device: one full range, alignment 1. */
static void __expect_full_range(struct __test_metadata *_metadata, int fd,
				__u32 ioas_id)
{
	struct iommu_iova_range r[4];
	__u64 align = 0;
	__u32 num = 4;

	memset(r, 0xa5, sizeof(r));
	ASSERT_EQ(0, _test_ioctl_ioas_iova_ranges(fd, ioas_id, &num, r,
						  &align))
		TH_LOG("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno));
	EXPECT_EQ(1U, num);
	EXPECT_EQ(1ULL, align);
	EXPECT_EQ(0ULL, r[0].start);
	EXPECT_EQ(UINT64_MAX, r[0].last);
}
#define expect_full_range(ioas_id) \
	__expect_full_range(_metadata, self->fd, ioas_id)

/*
 * The MSI window the kernel reserves for @bdf's group: its one "msi" region
 * in sysfs. On x86 each IOMMU of the test VM reserves the interrupt address
 * range 0xfee00000-0xfeefffff there: VT-d and AMD-Vi by themselves,
 * virtio-iommu because QEMU's pc machines describe it to the driver (the
 * device's probe request) as an MSI bypass region.
 */
static void __msi_window(struct __test_metadata *_metadata, const char *bdf,
			 struct iommu_iova_range *msi)
{
	struct resv_region resv[16];
	int n, i, found = 0;

	n = read_reserved_regions(bdf, resv, ARRAY_SIZE(resv));
	ASSERT_LE(0, n)
		TH_LOG("reserved_regions of the group of %s: %s", bdf,
		       strerror(-n));
	for (i = 0; i < n; i++) {
		if (strcmp(resv[i].type, "msi"))
			continue;
		msi->start = resv[i].start;
		msi->last = resv[i].last;
		found++;
	}
	ASSERT_EQ(1, found)
		TH_LOG("%s: %d \"msi\" regions in its group's reserved_regions, "
		       "wanted one", bdf, found);
	EXPECT_EQ(X86_MSI_WINDOW_START, msi->start);
	EXPECT_EQ(X86_MSI_WINDOW_LAST, msi->last)
		TH_LOG("%s: the MSI region is [0x%llx, 0x%llx], not the x86 "
		       "interrupt window", bdf, (unsigned long long)msi->start,
		       (unsigned long long)msi->last);
}

/*
 * IOVA_RANGES of an IOAS with device @bdf attached: the ranges are sorted
 * and disjoint, none overlaps a region the kernel reserves for the device's
 * group (all kinds but "direct-relaxable", which iommufd leaves usable),
 * the MSI window is a hole with exactly its own boundaries, the low IOVAs
 * used by the tests are usable and the alignment is the IOMMU page size
 * (PAGE_SIZE). Where the IOMMU's input range stops below 2^64 (see
 * iommu_facts.h) the last range does too.
 */
static void __expect_device_ranges(struct __test_metadata *_metadata, int fd,
				   __u32 ioas_id, const char *bdf)
{
	struct iommu_iova_range r[32], msi;
	struct resv_region resv[16];
	bool below = false, above = false, low = false;
	struct iommu_facts f;
	__u64 align = 0;
	__u32 num = 32, i;
	int nresv, j;

	iommu_facts_or_fail(bdf, &f);
	__msi_window(_metadata, bdf, &msi);
	nresv = read_reserved_regions(bdf, resv, ARRAY_SIZE(resv));
	ASSERT_LE(0, nresv);

	ASSERT_EQ(0, _test_ioctl_ioas_iova_ranges(fd, ioas_id, &num, r,
						  &align))
		TH_LOG("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno));
	ASSERT_LE(1U, num);
	ASSERT_GE(32U, num);
	EXPECT_EQ((__u64)PAGE_SIZE, align);

	for (i = 0; i < num; i++) {
		TH_LOG("range %u: [0x%llx, 0x%llx]", i,
		       (unsigned long long)r[i].start,
		       (unsigned long long)r[i].last);
		EXPECT_LE(r[i].start, r[i].last);
		if (i) {
			EXPECT_LT(r[i - 1].last + 1, r[i].start)
				TH_LOG("ranges %u and %u not sorted/disjoint",
				       i - 1, i);
		}
		for (j = 0; j < nresv; j++) {
			if (!strcmp(resv[j].type, "direct-relaxable"))
				continue;
			EXPECT_FALSE(r[i].start <= resv[j].last &&
				     r[i].last >= resv[j].start)
				TH_LOG("range %u overlaps the %s region "
				       "[0x%llx, 0x%llx] of %s", i,
				       resv[j].type,
				       (unsigned long long)resv[j].start,
				       (unsigned long long)resv[j].last, bdf);
		}
		if (r[i].last == msi.start - 1)
			below = true;
		if (r[i].start == msi.last + 1)
			above = true;
		if (r[i].start <= IOVA_A && r[i].last >= IOVA_D + 0xfffff)
			low = true;
	}
	EXPECT_TRUE(below)
		TH_LOG("no range ends right below the MSI window at 0x%llx",
		       (unsigned long long)msi.start);
	EXPECT_TRUE(above)
		TH_LOG("no range starts right above the MSI window at 0x%llx",
		       (unsigned long long)msi.last);
	EXPECT_TRUE(low) TH_LOG("IOVAs 0x%llx-0x%llx are not usable",
				IOVA_A, IOVA_D + 0xfffff);
	if (f.aperture_limited) {
		EXPECT_GT(UINT64_MAX, r[num - 1].last)
			TH_LOG("%s (%s) has a limited input range: the "
			       "domain aperture should limit the top IOVA",
			       f.name, f.unit);
	}
}
#define expect_device_ranges(ioas_id, bdf) \
	__expect_device_ranges(_metadata, self->fd, ioas_id, bdf)

/* Raw attach/detach with explicit argsz and flags. */
static int raw_attach(int devfd, __u32 argsz, __u32 flags, __u32 pt_id)
{
	struct vfio_device_attach_iommufd_pt cmd = {
		.argsz = argsz,
		.flags = flags,
		.pt_id = pt_id,
	};

	return ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
}

static int raw_detach(int devfd, __u32 argsz, __u32 flags)
{
	struct vfio_device_detach_iommufd_pt cmd = {
		.argsz = argsz,
		.flags = flags,
	};

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &cmd);
}

/* Raw bind with an explicit argsz; @extra lands right after the struct. */
static int raw_bind(int devfd, int iommufd, __u32 argsz, __u64 extra)
{
	struct {
		struct vfio_device_bind_iommufd bind;
		__u64 extra;
	} cmd = {
		.bind = {
			.argsz = argsz,
			.flags = 0,
			.iommufd = iommufd,
		},
		.extra = extra,
	};

	return ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &cmd);
}

/* ---------------------------------------------------------------------- */
/* the IOMMU in front of the devices                                      */
/* ---------------------------------------------------------------------- */

/*
 * Both test devices sit behind one IOMMU of a kind the tests know, and it
 * is the one the VM profile asked for: guest/check.sh passes that on in
 * IOMMUFD_TEST_IOMMU, which every test checks its IOMMU against (see
 * iommu_facts.h). Without the variable that check could not happen.
 */
TEST(iommu_matches_profile)
{
	char edu_bdf[64], nic_bdf[64];
	struct iommu_facts edu, nic;
	const char *want = getenv(IOMMU_ENV);
	const char *env = getenv(NIC_BDF_ENV);
	int rc = 0;

	__edu_bdf_or_fail(_metadata, edu_bdf, sizeof(edu_bdf));
	if (env && env[0])
		str_copy(nic_bdf, sizeof(nic_bdf), env);
	else
		rc = find_vfio_bdf(NIC_VENDOR_ID, NIC_DEVICE_ID, nic_bdf,
				   sizeof(nic_bdf));
	ASSERT_EQ(0, rc)
		TH_LOG("no e1000e (%04x:%04x) bound to %s: %s", NIC_VENDOR_ID,
		       NIC_DEVICE_ID, VFIO_PCI_DRIVER, strerror(-rc));
	iommu_facts_or_fail(edu_bdf, &edu);
	iommu_facts_or_fail(nic_bdf, &nic);
	TH_LOG("edu %s: %s %s; NIC %s: %s %s; %s=%s", edu_bdf, edu.name,
	       edu.unit, nic_bdf, nic.name, nic.unit, IOMMU_ENV,
	       want ? want : "(unset)");
	EXPECT_EQ(edu.kind, nic.kind);
	EXPECT_TRUE(want && want[0])
		TH_LOG("%s is not set, so the tests cannot tell whether the VM "
		       "came up with the IOMMU its profile asks for (set it to "
		       "vtd, amd or virtio)", IOMMU_ENV);
	if (edu.kind == IOMMU_KIND_VTD)
		TH_LOG("VT-d ecap 0x%llx: snoop control %s",
		       (unsigned long long)edu.vtd_ecap,
		       edu.can_enforce ? "on" : "off");
}

/* ---------------------------------------------------------------------- */
/* one device: edu                                                         */
/* ---------------------------------------------------------------------- */

FIXTURE(vfio_device)
{
	int fd;		/* /dev/iommu, nothing created in it yet */
	int dev;	/* edu cdev, opened but not bound */
	char bdf[64];
	long vmpin_start;
	__u8 *buf;	/* BUF_PAGES populated pages */
};

FIXTURE_SETUP(vfio_device)
{
	self->fd = -1;
	self->dev = -1;
	self->buf = MAP_FAILED;

	open_iommufd_or_fail(&self->fd);
	self->dev = open_edu_or_fail(self->bdf);

	self->buf = mmap(NULL, BUF_PAGES * PSZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x5a, BUF_PAGES * PSZ);

	self->vmpin_start = vmpin_kb();
	ASSERT_LE(0, self->vmpin_start)
		TH_LOG("no VmPin line in /proc/self/status");
}

FIXTURE_TEARDOWN(vfio_device)
{
	if (self->dev >= 0)
		EXPECT_EQ(0, close(self->dev));
	self->dev = -1;
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	/* with every fd closed nothing may stay pinned */
	expect_vmpin(0);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, BUF_PAGES * PSZ);
}

/* bind, allocate an IOAS, attach; the HWPT id comes back in *hwpt */
#define bind_alloc_attach(devidp, ioasp, hwptp)                               \
	({                                                                    \
		test_ioctl_vfio_bind(self->dev, devidp);                      \
		test_ioctl_ioas_alloc(ioasp);                                 \
		*(hwptp) = *(ioasp);                                          \
		test_ioctl_vfio_attach(self->dev, hwptp);                     \
	})

/* --- the IOMMU driver's map calls, from the iommu:map trace event ------ */

#define TRACEFS_DIR "/sys/kernel/tracing"

/* Starts (or stops) recording iommu:map events, from an empty trace. */
static int trace_iommu_maps(bool on)
{
	int rc;

	if (access(TRACEFS_DIR "/trace", F_OK) &&
	    mount("tracefs", TRACEFS_DIR, "tracefs", 0, NULL) && errno != EBUSY)
		return -errno;
	rc = write_file(TRACEFS_DIR "/events/iommu/map/enable",
			on ? "1\n" : "0\n", 0);
	if (rc)
		return rc;
	return write_file(TRACEFS_DIR "/trace", "", O_TRUNC);
}

/*
 * The iommu_map() calls traced since the last trace_iommu_maps(): how many,
 * and the largest size.  -errno if the trace cannot be read.
 */
static int traced_maps(unsigned long *count, unsigned long *largest)
{
	char line[512];
	FILE *f;

	*count = *largest = 0;
	f = fopen(TRACEFS_DIR "/trace", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, " map: IOMMU:");
		unsigned long size;

		if (!p || !(p = strstr(p, "size=")) ||
		    sscanf(p, "size=%lu", &size) != 1)
			continue;
		(*count)++;
		if (size > *largest)
			*largest = size;
	}
	fclose(f);
	return 0;
}

/*
 * --- large kernel allocations of this process, from kprobes ------------
 *
 * Kprobes on the three reallocation functions every growing vector of the
 * kernel's Rust code goes through (KVec: krealloc; VVec: vrealloc; KVVec:
 * kvrealloc, which calls one of the others) record this process's calls
 * asking for at least BIG_ALLOC bytes (the size is their second argument)
 * into a trace instance of its own.
 */
#define BIG_ALLOC (64 << 10)
#define BIG_GROUP "iommufd_rs_alloc"
#define BIG_INSTANCE TRACEFS_DIR "/instances/" BIG_GROUP

static const char *const big_alloc_fns[] = {
	"krealloc_node_align_noprof",
	"vrealloc_node_align_noprof",
	"kvrealloc_node_align_noprof",
};

static void big_allocs_stop(void)
{
	char path[256], cmd[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(big_alloc_fns); i++) {
		snprintf(path, sizeof(path),
			 BIG_INSTANCE "/events/" BIG_GROUP "/a%zu/enable", i);
		write_file(path, "0\n", 0);
	}
	rmdir(BIG_INSTANCE);
	for (i = 0; i < ARRAY_SIZE(big_alloc_fns); i++) {
		snprintf(cmd, sizeof(cmd), "-:" BIG_GROUP "/a%zu\n", i);
		write_file(TRACEFS_DIR "/kprobe_events", cmd, O_APPEND);
	}
}

/* Starts recording; 0 or -errno. */
static int big_allocs_start(void)
{
	char path[256], cmd[160], filter[96];
	size_t i;
	int rc;

	if (access(TRACEFS_DIR "/kprobe_events", F_OK) &&
	    mount("tracefs", TRACEFS_DIR, "tracefs", 0, NULL) && errno != EBUSY)
		return -errno;
	big_allocs_stop();
	for (i = 0; i < ARRAY_SIZE(big_alloc_fns); i++) {
		snprintf(cmd, sizeof(cmd), "p:" BIG_GROUP "/a%zu %s size=$arg2:u64\n",
			 i, big_alloc_fns[i]);
		rc = write_file(TRACEFS_DIR "/kprobe_events", cmd, O_APPEND);
		if (rc)
			return rc;
	}
	if (mkdir(BIG_INSTANCE, 0700))
		return -errno;
	snprintf(filter, sizeof(filter), "size >= %d && common_pid == %d\n",
		 BIG_ALLOC, getpid());
	for (i = 0; i < ARRAY_SIZE(big_alloc_fns); i++) {
		snprintf(path, sizeof(path),
			 BIG_INSTANCE "/events/" BIG_GROUP "/a%zu/filter", i);
		rc = write_file(path, filter, 0);
		if (rc)
			return rc;
		snprintf(path, sizeof(path),
			 BIG_INSTANCE "/events/" BIG_GROUP "/a%zu/enable", i);
		rc = write_file(path, "1\n", 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* The calls recorded since big_allocs_start(); -errno if unreadable. */
static long big_allocs(void)
{
	char line[512];
	long n = 0;
	FILE *f;

	f = fopen(BIG_INSTANCE "/trace", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#' && strstr(line, "size="))
			n++;
	fclose(f);
	return n;
}

/* --- binding ---------------------------------------------------------- */

TEST_F(vfio_device, bind_returns_devid)
{
	__u32 devid = 0, ioas_id, num = 0;

	test_ioctl_vfio_bind(self->dev, &devid);
	/* the device object is an ordinary object id in this context */
	test_ioctl_ioas_alloc(&ioas_id);
	EXPECT_NE(devid, ioas_id);
	/* VFIO holds the device object: it cannot be destroyed by id */
	test_err_ioctl_destroy(EBUSY, devid);
	/* nor is it an IOAS */
	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_iova_ranges(self->fd, devid,
							  &num, NULL, NULL));

	/* closing the device fd unbinds and removes the object */
	ASSERT_EQ(0, close(self->dev));
	self->dev = -1;
	test_err_ioctl_destroy(ENOENT, devid);
	test_ioctl_destroy(ioas_id);
}

TEST_F(vfio_device, bind_twice)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	int fd2;

	test_ioctl_vfio_bind(self->dev, &devid);
	/* a bound device fd cannot be bound again, to any iommufd */
	test_err_ioctl_vfio_bind(EINVAL, self->dev, self->fd);
	open_iommufd_or_fail(&fd2);
	test_err_ioctl_vfio_bind(EINVAL, self->dev, fd2);
	EXPECT_EQ(0, close(fd2));

	/* the first binding is unaffected */
	test_ioctl_ioas_alloc(&ioas_id);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	test_ioctl_vfio_detach(self->dev);
	test_ioctl_destroy(ioas_id);
}

TEST_F(vfio_device, bind_second_open)
{
	__u32 devid = 0, devid2 = 0;
	int dev2;

	/* opening the cdev twice is fine, binding both is not */
	dev2 = open_edu_or_fail(self->bdf);
	test_ioctl_vfio_bind(self->dev, &devid);
	test_err_ioctl_vfio_bind(EINVAL, dev2, self->fd);

	/* once the first fd is gone the second one can bind */
	ASSERT_EQ(0, close(self->dev));
	test_err_ioctl_destroy(ENOENT, devid);
	self->dev = dev2;
	test_ioctl_vfio_bind(self->dev, &devid2);
	test_err_ioctl_destroy(EBUSY, devid2);
}

TEST_F(vfio_device, bind_bad_iommufd)
{
	__u32 devid = 0;
	int closed_fd, null_fd;

	/* negative fds are rejected before anything is looked up */
	test_err_ioctl_vfio_bind(EINVAL, self->dev, -1);
	test_err_ioctl_vfio_bind(EINVAL, self->dev, -100);

	/* a number that is not an open fd */
	closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, closed_fd);
	ASSERT_EQ(0, close(closed_fd));
	test_err_ioctl_vfio_bind(EBADF, self->dev, closed_fd);

	/* open fds that are not /dev/iommu */
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, null_fd);
	test_err_ioctl_vfio_bind(EBADFD, self->dev, null_fd);
	EXPECT_EQ(0, close(null_fd));
	test_err_ioctl_vfio_bind(EBADFD, self->dev, self->dev);

	/* none of that left the device half bound */
	test_ioctl_vfio_bind(self->dev, &devid);
}

TEST_F(vfio_device, bind_bad_flags)
{
	__u8 token[16] = { 0x12, 0x34 };
	__u32 devid = 0;
	void *hole;

	EXPECT_ERRNO(EINVAL, _test_ioctl_vfio_bind_flags(self->dev, self->fd,
							 1U << 1, NULL,
							 NULL));
	EXPECT_ERRNO(EINVAL, _test_ioctl_vfio_bind_flags(self->dev, self->fd,
							 ~0U, token, NULL));
	/*
	 * A VF token is only meaningful for SR-IOV PFs and VFs; edu is
	 * neither, so offering one is an error. The token is read first, so
	 * an unreadable pointer fails with EFAULT.
	 */
	EXPECT_ERRNO(EINVAL, _test_ioctl_vfio_bind_flags(
				     self->dev, self->fd,
				     VFIO_DEVICE_BIND_FLAG_TOKEN, token,
				     NULL));
	hole = mmap(NULL, PSZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, PSZ));
	EXPECT_ERRNO(EFAULT, _test_ioctl_vfio_bind_flags(
				     self->dev, self->fd,
				     VFIO_DEVICE_BIND_FLAG_TOKEN, hole, NULL));

	test_ioctl_vfio_bind(self->dev, &devid);
}

TEST_F(vfio_device, bind_argsz)
{
	const __u32 minsz =
		offsetofend(struct vfio_device_bind_iommufd, out_devid);
	const __u32 full = sizeof(struct vfio_device_bind_iommufd);

	EXPECT_ERRNO(EINVAL, raw_bind(self->dev, self->fd, 0, 0));
	EXPECT_ERRNO(EINVAL, raw_bind(self->dev, self->fd, minsz - 1, 0));
	/* unknown trailing bytes must be zero */
	EXPECT_ERRNO(E2BIG, raw_bind(self->dev, self->fd, full + 8, 1));
	/* a larger struct with a zero tail binds */
	ASSERT_EQ(0, raw_bind(self->dev, self->fd, full + 8, 0))
		TH_LOG("bind with argsz %u: %s", full + 8, strerror(errno));
}

TEST_F(vfio_device, bind_minimal_argsz)
{
	const __u32 minsz =
		offsetofend(struct vfio_device_bind_iommufd, out_devid);

	/* the struct without token_uuid_ptr is accepted */
	ASSERT_EQ(0, raw_bind(self->dev, self->fd, minsz, 0))
		TH_LOG("bind with argsz %u: %s", minsz, strerror(errno));
	test_err_ioctl_vfio_bind(EINVAL, self->dev, self->fd);
}

TEST_F(vfio_device, ioctls_before_bind)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_region_info rinfo;
	char byte;
	void *p;

	/* an unbound cdev fd accepts nothing but BIND_IOMMUFD */
	test_err_ioctl_vfio_attach(EINVAL, self->dev, 1);
	test_err_ioctl_vfio_detach(EINVAL, self->dev);
	EXPECT_ERRNO(EINVAL, ioctl(self->dev, VFIO_DEVICE_GET_INFO, &info));
	EXPECT_ERRNO(EINVAL, _vfio_region_info(self->dev,
					       VFIO_PCI_CONFIG_REGION_INDEX,
					       &rinfo));
	EXPECT_ERRNO(EINVAL, pread(self->dev, &byte, 1, 0));
	p = mmap(NULL, PSZ, PROT_READ, MAP_SHARED, self->dev, 0);
	if (p == MAP_FAILED) {
		EXPECT_EQ(EINVAL, errno);
	} else {
		munmap(p, PSZ);
		EXPECT_EQ(MAP_FAILED, p) TH_LOG("mmap before bind worked");
	}
}

/*
 * A device whose MSIs the platform does not isolate binds only with
 * iommufd's allow_unsafe_interrupts parameter, and then the bind warns.
 * Which case this is comes from the kernel: remapped interrupt chips
 * ("IR-...") in /proc/interrupts, and the parameter on the kernel command
 * line, where modprobe picks it up. VT-d and AMD-Vi remap interrupts in the
 * test VM; virtio-iommu cannot, so its profile boots with
 * iommufd.allow_unsafe_interrupts=1. Without either the bind is EPERM.
 */
TEST_F(vfio_device, bind_needs_isolated_msi)
{
	bool isolated, allowed;
	struct iommu_facts f;
	__u32 devid = 0;
	int kmsg, rc;

	iommu_facts_or_fail(self->bdf, &f);
	isolated = irq_remapping_on();
	allowed = cmdline_bool("iommufd.allow_unsafe_interrupts");
	TH_LOG("edu %s behind %s %s: interrupts %sremapped, unsafe "
	       "interrupts %sallowed", self->bdf, f.name, f.unit,
	       isolated ? "" : "not ", allowed ? "" : "not ");
	if (!f.remaps_msi)
		EXPECT_FALSE(isolated)
			TH_LOG("%s cannot remap interrupts, yet the kernel "
			       "lists remapped ones", f.name);

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	ASSERT_LE(0, lseek(kmsg, 0, SEEK_END));
	rc = _test_ioctl_vfio_bind(self->dev, self->fd, &devid);
	if (!isolated && !allowed) {
		EXPECT_ERRNO(EPERM, rc)
			TH_LOG("MSIs not isolated, unsafe interrupts not "
			       "allowed");
		close(kmsg);
		return;
	}
	ASSERT_EQ(0, rc) TH_LOG("bind: %s", strerror(errno));
	EXPECT_EQ(!isolated, wait_kmsg(kmsg, "allow_unsafe_interrupts", 500))
		TH_LOG("%s", isolated ?
			     "the bind warned although the MSIs are isolated" :
			     "the bind of a device with unisolated MSIs did "
			     "not warn");
	close(kmsg);
	test_err_ioctl_destroy(EBUSY, devid);
}

/* --- attach / detach -------------------------------------------------- */

#define UNSAFE_PARAM "/sys/module/iommufd/parameters/allow_unsafe_interrupts"

/* The parameter's value, 'Y' or 'N'; 0 if it cannot be read. */
static char unsafe_param(void)
{
	char v = 0;
	int fd = open(UNSAFE_PARAM, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (read(fd, &v, 1) != 1)
		v = 0;
	close(fd);
	return v;
}

/*
 * allow_unsafe_interrupts is in sysfs, mode 0644 as upstream, starts as the
 * kernel command line set it, and a change there applies to the next
 * bind: where MSIs are not isolated that bind fails with EPERM exactly
 * while the parameter is N.  The value is restored afterwards.
 */
TEST_F(vfio_device, allow_unsafe_interrupts_in_sysfs)
{
	const char vals[] = { 'N', 'Y' };
	bool isolated = irq_remapping_on();
	char orig, text[2] = "";
	struct stat st;
	__u32 devid;
	int i, rc;

	ASSERT_EQ(0, stat(UNSAFE_PARAM, &st))
		TH_LOG("%s: %s", UNSAFE_PARAM, strerror(errno));
	EXPECT_EQ(0644U, (unsigned int)(st.st_mode & 07777));
	orig = unsafe_param();
	EXPECT_EQ(cmdline_bool("iommufd.allow_unsafe_interrupts") ? 'Y' : 'N',
		  orig);

	for (i = 0; i < 2; i++) {
		text[0] = vals[i];
		ASSERT_EQ(0, write_file(UNSAFE_PARAM, text, 0));
		EXPECT_EQ(vals[i], unsafe_param());
		rc = _test_ioctl_vfio_bind(self->dev, self->fd, &devid);
		if (isolated || vals[i] == 'Y') {
			EXPECT_EQ(0, rc) TH_LOG("bind with %c: %s", vals[i],
						strerror(errno));
		} else {
			EXPECT_ERRNO(EPERM, rc)
				TH_LOG("bind with %c, MSIs not isolated",
				       vals[i]);
		}
		/* unbind (if bound) for the next round */
		ASSERT_EQ(0, close(self->dev));
		self->dev = open_edu_or_fail(self->bdf);
	}
	text[0] = orig;
	ASSERT_EQ(0, write_file(UNSAFE_PARAM, text, 0));
	EXPECT_EQ(orig, unsafe_param());
}

TEST_F(vfio_device, attach_ioas)
{
	__u32 devid = 0, ioas_id, hwpt_id, num = 0;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	/* an IOAS gets an automatic HWPT, a new object */
	EXPECT_NE(ioas_id, hwpt_id);
	EXPECT_NE(devid, hwpt_id);

	/* the HWPT holds the IOAS, the device holds the HWPT */
	test_err_ioctl_destroy(EBUSY, ioas_id);
	test_err_ioctl_destroy(EBUSY, hwpt_id);
	test_err_ioctl_destroy(EBUSY, devid);
	/* the HWPT is no IOAS */
	EXPECT_ERRNO(ENOENT, _test_ioctl_ioas_iova_ranges(self->fd, hwpt_id,
							  &num, NULL, NULL));

	/* detaching destroys the automatic HWPT and frees the IOAS */
	test_ioctl_vfio_detach(self->dev);
	test_err_ioctl_destroy(ENOENT, hwpt_id);
	test_ioctl_destroy(ioas_id);
	test_err_ioctl_destroy(EBUSY, devid);
}

TEST_F(vfio_device, attach_bad_pt_id)
{
	__u32 devid = 0, ioas_id, dead_id, hwpt_id;

	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);
	test_ioctl_ioas_alloc(&dead_id);
	test_ioctl_destroy(dead_id);

	test_err_ioctl_vfio_attach(ENOENT, self->dev, 0);
	test_err_ioctl_vfio_attach(ENOENT, self->dev, dead_id);
	test_err_ioctl_vfio_attach(ENOENT, self->dev, ioas_id + 1000);
	/* an object that is neither an IOAS nor a HWPT */
	test_err_ioctl_vfio_attach(EINVAL, self->dev, devid);

	/* the failures attached nothing: the IOAS is free */
	test_ioctl_destroy(ioas_id);
	test_ioctl_ioas_alloc(&ioas_id);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	/*
	 * An id nobody holds, while attached, changes nothing either (the
	 * dead id itself may have been reused by the automatic HWPT: ids are
	 * handed out lowest first, as upstream does).
	 */
	test_err_ioctl_vfio_attach(ENOENT, self->dev, ioas_id + 1000);
	test_err_ioctl_destroy(EBUSY, ioas_id);
	test_err_ioctl_destroy(EBUSY, hwpt_id);
}

TEST_F(vfio_device, attach_detach_bad_args)
{
	const __u32 attach_min =
		offsetofend(struct vfio_device_attach_iommufd_pt, pt_id);
	const __u32 detach_min =
		offsetofend(struct vfio_device_detach_iommufd_pt, flags);
	__u32 devid = 0, ioas_id;

	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);

	EXPECT_ERRNO(EINVAL, raw_attach(self->dev, attach_min - 1, 0,
					ioas_id));
	EXPECT_ERRNO(EINVAL, raw_attach(self->dev, attach_min, 1U << 1,
					ioas_id));
	/* the PASID flag needs the struct to include the pasid field */
	EXPECT_ERRNO(EINVAL, raw_attach(self->dev, attach_min,
					VFIO_DEVICE_ATTACH_PASID, ioas_id));

	EXPECT_ERRNO(EINVAL, raw_detach(self->dev, detach_min - 1, 0));
	EXPECT_ERRNO(EINVAL, raw_detach(self->dev, detach_min, 1U << 1));
	EXPECT_ERRNO(EINVAL, raw_detach(self->dev, detach_min,
					VFIO_DEVICE_DETACH_PASID));

	/* nothing got attached */
	test_ioctl_destroy(ioas_id);
}

TEST_F(vfio_device, attach_same_ioas_twice)
{
	__u32 devid = 0, ioas_id, hwpt_id, again;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	/* an attached device is replaced; same IOAS means same HWPT */
	again = ioas_id;
	test_ioctl_vfio_attach(self->dev, &again);
	EXPECT_EQ(hwpt_id, again);
	/* attaching to the HWPT id directly is the same domain too */
	again = hwpt_id;
	test_ioctl_vfio_attach(self->dev, &again);
	EXPECT_EQ(hwpt_id, again);

	/* one detach undoes it all */
	test_ioctl_vfio_detach(self->dev);
	test_err_ioctl_destroy(ENOENT, hwpt_id);
	test_ioctl_destroy(ioas_id);
}

TEST_F(vfio_device, attach_replace_ioas)
{
	__u32 devid = 0, ioas1, ioas2, hwpt1, hwpt2;

	bind_alloc_attach(&devid, &ioas1, &hwpt1);
	map_pages(ioas1, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	test_ioctl_ioas_alloc(&ioas2);
	map_pages(ioas2, NPAGES, NPAGES / 2, IOVA_B);
	/* ioas2 has no domain yet: nothing more pinned */
	expect_vmpin(NPAGES);

	hwpt2 = ioas2;
	test_ioctl_vfio_attach(self->dev, &hwpt2);
	EXPECT_NE(hwpt1, hwpt2);
	EXPECT_NE(ioas2, hwpt2);
	/* the old automatic HWPT is gone, with the pins it needed */
	test_err_ioctl_destroy(ENOENT, hwpt1);
	expect_vmpin(NPAGES / 2);
	expect_full_range(ioas1);
	expect_device_ranges(ioas2, self->bdf);

	test_ioctl_destroy(ioas1);
	test_err_ioctl_destroy(EBUSY, ioas2);
	test_ioctl_vfio_detach(self->dev);
	expect_vmpin(0);
	test_ioctl_destroy(ioas2);
}

TEST_F(vfio_device, detach_when_not_attached)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	/* detaching a bound but unattached device is a no-op success */
	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_vfio_detach(self->dev);
	test_ioctl_vfio_detach(self->dev);

	test_ioctl_ioas_alloc(&ioas_id);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	test_ioctl_vfio_detach(self->dev);
	test_ioctl_vfio_detach(self->dev);
	test_ioctl_destroy(ioas_id);
}

/* --- IOVA ranges ------------------------------------------------------ */

TEST_F(vfio_device, iova_ranges_follow_attach)
{
	struct iommu_iova_range msi;
	__u32 devid = 0, ioas_id, hwpt_id;

	__msi_window(_metadata, self->bdf, &msi);
	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);
	/* binding alone reserves nothing */
	expect_full_range(ioas_id);

	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_device_ranges(ioas_id, self->bdf);

	/* fixed maps into the reserved window or off alignment fail */
	test_err_ioctl_ioas_map_fixed(EINVAL, ioas_id, self->buf, PSZ,
				      msi.start);
	test_err_ioctl_ioas_map_fixed(EINVAL, ioas_id, self->buf, PSZ,
				      msi.last + 1 - PSZ);
	test_err_ioctl_ioas_map_fixed(EINVAL, ioas_id, self->buf, PSZ,
				      IOVA_A + PSZ / 2);
	test_err_ioctl_ioas_map_fixed(EINVAL, ioas_id, self->buf, PSZ / 2,
				      IOVA_A);
	/* allowed ranges may not cover reserved ones */
	test_err_ioctl_ioas_allow_iovas(EADDRINUSE, ioas_id, &msi, 1);
	expect_vmpin(0);

	/* detaching gives the whole space back */
	test_ioctl_vfio_detach(self->dev);
	expect_full_range(ioas_id);
	test_ioctl_destroy(ioas_id);
}

/*
 * The first IOVA past the input range of the IOMMU behind the fixture's
 * device, read from an IOAS it is attached to; 0 if the range reaches 2^64.
 * The device is left bound and detached.
 */
static __u64 __past_aperture(struct __test_metadata *_metadata, int fd,
			     int dev)
{
	struct iommu_iova_range r[32];
	__u32 ioas_id, pt, num = 32;
	__u64 top;

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, 0, &ioas_id));
	pt = ioas_id;
	ASSERT_EQ(0, _test_ioctl_vfio_attach(dev, &pt))
		TH_LOG("attach: %s", strerror(errno));
	ASSERT_EQ(0, _test_ioctl_ioas_iova_ranges(fd, ioas_id, &num, r, NULL))
		TH_LOG("IOMMU_IOAS_IOVA_RANGES: %s", strerror(errno));
	ASSERT_LE(1U, num);
	ASSERT_GE(32U, num);
	top = r[num - 1].last;
	ASSERT_EQ(0, _test_ioctl_vfio_detach(dev));
	ASSERT_EQ(0, _test_ioctl_destroy(fd, ioas_id));
	return top + 1;
}

TEST_F(vfio_device, attach_conflicts_with_ioas)
{
	struct iommu_iova_range msi;
	struct iommu_facts f;
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 past;

	iommu_facts_or_fail(self->bdf, &f);
	__msi_window(_metadata, self->bdf, &msi);
	test_ioctl_vfio_bind(self->dev, &devid);
	past = __past_aperture(_metadata, self->fd, self->dev);
	test_ioctl_ioas_alloc(&ioas_id);

	/* a mapping inside the device's reserved MSI window */
	map_pages(ioas_id, 0, 1, msi.start);
	test_err_ioctl_vfio_attach(EADDRINUSE, self->dev, ioas_id);
	unmap_pages(ioas_id, msi.start, 1);

	/* an allowed range over the MSI window */
	test_ioctl_ioas_allow_iovas(ioas_id, &msi, 1);
	test_err_ioctl_vfio_attach(EADDRINUSE, self->dev, ioas_id);
	test_ioctl_ioas_allow_iovas(ioas_id, NULL, 0);

	/* a mapping right past the domain's aperture */
	if (past) {
		TH_LOG("%s (%s) translates IOVAs below 0x%llx", f.name,
		       f.unit, (unsigned long long)past);
		map_pages(ioas_id, 0, 1, past);
		test_err_ioctl_vfio_attach(EADDRINUSE, self->dev, ioas_id);
		unmap_pages(ioas_id, past, 1);
	} else {
		EXPECT_FALSE(f.aperture_limited)
			TH_LOG("%s should not translate all 64 bits of IOVA",
			       f.name);
		TH_LOG("%s translates all 64 bits of IOVA: no mapping can "
		       "lie past its aperture", f.name);
	}

	/* a mapping that the IOMMU page size cannot express */
	map_pages(ioas_id, 0, 1, IOVA_A + PSZ / 2);
	test_err_ioctl_vfio_attach(EADDRINUSE, self->dev, ioas_id);
	unmap_pages(ioas_id, IOVA_A + PSZ / 2, 1);

	/* none of the failures pinned anything or left a HWPT behind */
	expect_vmpin(0);
	expect_full_range(ioas_id);
	test_ioctl_destroy(ioas_id);

	test_ioctl_ioas_alloc(&ioas_id);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_device_ranges(ioas_id, self->bdf);
}

/* --- pinning ---------------------------------------------------------- */

TEST_F(vfio_device, pin_on_map)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 iova = 0;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	expect_vmpin(0);

	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);
	map_pages(ioas_id, NPAGES, NPAGES / 2, IOVA_B);
	expect_vmpin(NPAGES + NPAGES / 2);

	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(NPAGES / 2);
	unmap_pages(ioas_id, IOVA_B, NPAGES / 2);
	expect_vmpin(0);

	/* a kernel-chosen IOVA pins the same way */
	test_ioctl_ioas_map(ioas_id, self->buf, NPAGES * PSZ, &iova);
	EXPECT_EQ(0ULL, iova % PSZ);
	expect_vmpin(NPAGES);
	test_ioctl_ioas_unmap(ioas_id, iova, NPAGES * PSZ);
	expect_vmpin(0);
}

/*
 * IOMMU_OPTION_HUGE_PAGES off: the IOAS's pages go to the IOMMU one
 * PAGE_SIZE at a time, so no I/O page table entry covers more, even for
 * a transparent huge page; turning it off while a domain holds mappings
 * (which may use large entries already) is EINVAL, as upstream.  With the
 * option on, the same huge page goes in one call: that is how the test
 * knows it got a huge page.
 */
TEST_F(vfio_device, huge_pages_off_maps_small_iotes)
{
	const unsigned long huge = 2UL << 20;
	unsigned long count, largest;
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 v = 0, iova = 64 * huge;
	char *raw, *thp;

	raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	thp = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	write_file("/sys/kernel/mm/transparent_hugepage/enabled", "madvise",
		   0);
	ASSERT_EQ(0, madvise(thp, huge, MADV_HUGEPAGE));
	memset(thp, 0x3c, huge);

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	ASSERT_EQ(0, trace_iommu_maps(true))
		TH_LOG("tracing iommu:map: %s", strerror(errno));

	/* on (the default): the huge page in one call */
	test_ioctl_ioas_map_fixed(ioas_id, thp, huge, iova);
	ASSERT_EQ(0, traced_maps(&count, &largest));
	ASSERT_EQ(huge, largest)
		TH_LOG("with huge pages on, %lu map calls, the largest of %lu "
		       "bytes: no transparent huge page to test with?",
		       count, largest);

	/* a domain with a mapping: EINVAL, nothing changes */
	EXPECT_ERRNO(EINVAL, _test_ioctl_option(self->fd,
						IOMMU_OPTION_HUGE_PAGES,
						IOMMU_OPTION_OP_SET, ioas_id,
						&v));
	v = 2;
	ASSERT_EQ(0, _test_ioctl_option(self->fd, IOMMU_OPTION_HUGE_PAGES,
					IOMMU_OPTION_OP_GET, ioas_id, &v));
	EXPECT_EQ(1ULL, v);
	test_ioctl_ioas_unmap(ioas_id, iova, huge);

	/* a domain without mappings: off */
	v = 0;
	ASSERT_EQ(0, _test_ioctl_option(self->fd, IOMMU_OPTION_HUGE_PAGES,
					IOMMU_OPTION_OP_SET, ioas_id, &v));
	ASSERT_EQ(0, trace_iommu_maps(true));
	test_ioctl_ioas_map_fixed(ioas_id, thp, huge, iova);
	ASSERT_EQ(0, traced_maps(&count, &largest));
	EXPECT_EQ((unsigned long)PSZ, largest)
		TH_LOG("with huge pages off, a map call of %lu bytes", largest);
	EXPECT_EQ(huge / PSZ, count);
	expect_vmpin(huge / PSZ);

	/* and a second domain is filled the same way */
	ASSERT_EQ(0, trace_iommu_maps(true));
	test_ioctl_vfio_detach(self->dev);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	ASSERT_EQ(0, traced_maps(&count, &largest));
	EXPECT_EQ((unsigned long)PSZ, largest);
	EXPECT_EQ(huge / PSZ, count);

	ASSERT_EQ(0, trace_iommu_maps(false));
	test_ioctl_ioas_unmap(ioas_id, iova, huge);
	test_ioctl_vfio_detach(self->dev);
	munmap(raw, 2 * huge);
}

/* memfd-backed memory (QEMU's fd-backed guest RAM) is pinned like anonymous memory */
TEST_F(vfio_device, pin_memfd)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 iova = IOVA_A;
	int mfd;

	mfd = memfd_create("iommufd_device", MFD_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, NPAGES * PSZ));

	/* mapped before attach: nothing pinned until the device comes */
	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);
	ASSERT_EQ(0, _test_ioctl_ioas_map_file(self->fd, ioas_id, mfd, 0,
					       NPAGES * PSZ, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA |
						       MAP_RW));
	expect_vmpin(0);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_vmpin(NPAGES);

	/* mapped while attached: pinned at once, with an offset into the file */
	iova = IOVA_A + 0x100000;
	ASSERT_EQ(0, _test_ioctl_ioas_map_file(self->fd, ioas_id, mfd, PSZ,
					       2 * PSZ, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA |
						       MAP_RW));
	expect_vmpin(NPAGES + 2);
	test_ioctl_ioas_unmap(ioas_id, iova, 2 * PSZ);
	expect_vmpin(NPAGES);

	/* the mapping keeps the file; closing our fd changes nothing */
	ASSERT_EQ(0, close(mfd));
	expect_vmpin(NPAGES);
	test_ioctl_vfio_detach(self->dev);
	expect_vmpin(0);
	test_ioctl_ioas_unmap(ioas_id, IOVA_A, NPAGES * PSZ);
}

/* a file that is not a memfd cannot be pinned: the map fails, nothing stays */
TEST_F(vfio_device, pin_file_not_memfd)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 iova = IOVA_A;
	int fd;

	fd = open("/proc/self/status", O_RDONLY);
	ASSERT_LE(0, fd);
	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(
				     self->fd, ioas_id, fd, 0, PSZ, &iova,
				     IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE));
	/* nor is the VFIO device file, which the mapping would keep bound */
	EXPECT_ERRNO(EINVAL, _test_ioctl_ioas_map_file(
				     self->fd, ioas_id, self->dev, 0, PSZ, &iova,
				     IOMMU_IOAS_MAP_FIXED_IOVA |
					     IOMMU_IOAS_MAP_READABLE));
	expect_vmpin(0);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_A, PSZ);
	ASSERT_EQ(0, close(fd));
}

TEST_F(vfio_device, pin_on_attach)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);

	/* no domain: mapping pins nothing */
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(0);

	/* attaching fills the new domain and pins */
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_vmpin(NPAGES);

	/* detaching destroys the domain and unpins */
	test_ioctl_vfio_detach(self->dev);
	expect_vmpin(0);

	/* and again; the mapping itself survived all of this */
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_vmpin(NPAGES);
	test_ioctl_vfio_detach(self->dev);
	expect_vmpin(0);
	unmap_pages(ioas_id, IOVA_A, NPAGES);

	/* teardown closes the fds with nothing attached */
}

TEST_F(vfio_device, pin_same_va_twice)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	/*
	 * Two IOAS_MAPs of the same memory are two independent page sets,
	 * each pinning (and counting) the pages on its own.
	 */
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	map_pages(ioas_id, 0, NPAGES, IOVA_B);
	expect_vmpin(2 * NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_B, NPAGES);
	expect_vmpin(0);
}

TEST_F(vfio_device, pin_copy_same_ioas)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	/* COPY shares the already pinned pages */
	test_ioctl_ioas_copy_fixed(ioas_id, IOVA_B, ioas_id, IOVA_A,
				   NPAGES * PSZ);
	expect_vmpin(NPAGES);

	/* the copy keeps them pinned after the original goes */
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_B, NPAGES);
	expect_vmpin(0);
}

TEST_F(vfio_device, pin_readonly_memory)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u64 iova;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	ASSERT_EQ(0, mprotect(self->buf, NPAGES * PSZ, PROT_READ));

	/* a writeable mapping needs writable pages (FOLL_WRITE) */
	test_err_ioctl_ioas_map_fixed(EFAULT, ioas_id, self->buf,
				      NPAGES * PSZ, IOVA_A);
	expect_vmpin(0);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_A, NPAGES * PSZ);

	/* read-only for the device is fine */
	iova = IOVA_A;
	ASSERT_EQ(0, _test_ioctl_ioas_map(self->fd, ioas_id, self->buf,
					  NPAGES * PSZ, &iova,
					  IOMMU_IOAS_MAP_READABLE |
						  IOMMU_IOAS_MAP_FIXED_IOVA))
		TH_LOG("read-only map: %s", strerror(errno));
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(0);

	ASSERT_EQ(0, mprotect(self->buf, NPAGES * PSZ,
			      PROT_READ | PROT_WRITE));
}

/*
 * A map far larger than memory with a device attached: the request sizes
 * the kernel's bookkeeping, which userspace must not be able to turn into
 * an allocator warning (a crash with panic_on_warn). It fails cleanly
 * (ENOMEM, or EFAULT at the first page if the bookkeeping fits), pins
 * nothing and leaves nothing; the kernel log must stay clean (judged).
 */
TEST_F(vfio_device, pin_huge_map_fails_quietly)
{
	const __u64 len = 384ULL << 30, iova = 64ULL << 30;
	__u32 devid = 0, ioas_id, hwpt_id;
	int rc;
	void *p;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	p = mmap(NULL, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	rc = _test_ioctl_ioas_map(self->fd, ioas_id, p, len,
				  &(__u64){ iova },
				  IOMMU_IOAS_MAP_FIXED_IOVA |
					  IOMMU_IOAS_MAP_READABLE);
	EXPECT_EQ(-1, rc);
	EXPECT_TRUE(errno == ENOMEM || errno == EFAULT)
		TH_LOG("a %llu GiB map failed with %s",
		       (unsigned long long)(len >> 30), strerror(errno));
	expect_vmpin(0);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, iova, PSZ);
	munmap(p, len);
}

/*
 * The kernel's bookkeeping for a map with a device attached does not grow
 * with the map: pins are taken and handed to the I/O page table a bounded
 * batch at a time, the page table being the record of what is pinned.
 * Mapping 256 MiB (an array of 64Ki page pointers would be 512 KiB) must
 * not make this process allocate BIG_ALLOC bytes at once. The control, an
 * IOMMU_IOAS_ALLOW_IOVAS of 8Ki ranges (128 KiB of them), shows that the
 * probe sees such allocations.
 */
TEST_F(vfio_device, pin_bookkeeping_is_bounded)
{
	const size_t len = 256UL << 20, nranges = 8192;
	struct iommu_iova_range *ranges;
	__u32 devid = 0, ioas_id, hwpt_id, other;
	long during_map, during_control;
	__u64 iova = IOVA_A;
	size_t i;
	__u8 *p;
	int rc;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	test_ioctl_ioas_alloc(&other);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x3c, len);
	ranges = calloc(nranges, sizeof(*ranges));
	ASSERT_NE(NULL, ranges);
	for (i = 0; i < nranges; i++) {
		ranges[i].start = (i + 1) << 24;
		ranges[i].last = ((i + 1) << 24) + PSZ - 1;
	}

	rc = big_allocs_start();
	if (rc)
		big_allocs_stop();
	ASSERT_EQ(0, rc)
		TH_LOG("kprobes on the reallocation functions: %s; the test "
		       "kernel needs tracefs and CONFIG_KPROBE_EVENTS=y",
		       strerror(-rc));
	rc = _test_ioctl_ioas_map(self->fd, ioas_id, p, len, &iova,
				  IOMMU_IOAS_MAP_FIXED_IOVA |
					  IOMMU_IOAS_MAP_READABLE |
					  IOMMU_IOAS_MAP_WRITEABLE);
	during_map = big_allocs();
	if (!rc)
		rc = _test_ioctl_ioas_allow_iovas(self->fd, other, ranges,
						  nranges);
	during_control = big_allocs() - during_map;
	big_allocs_stop();
	ASSERT_EQ(0, rc) TH_LOG("map or allow_iovas: %s", strerror(errno));
	ASSERT_LE(0, during_map);
	EXPECT_EQ(0, during_map)
		TH_LOG("%ld allocations of %d bytes or more during a %zu MiB "
		       "map", during_map, BIG_ALLOC, len >> 20);
	EXPECT_LE(1, during_control)
		TH_LOG("the probe saw no large allocation for %zu ranges",
		       nranges);

	expect_vmpin(len / PSZ);
	unmap_pages(ioas_id, iova, len / PSZ);
	expect_vmpin(0);
	free(ranges);
	munmap(p, len);
}

TEST_F(vfio_device, pin_efault_hole)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u8 *p;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);

	/* four pages of address space, the last two unmapped again */
	p = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, 4 * PSZ);
	ASSERT_EQ(0, munmap(p + 2 * PSZ, 2 * PSZ));

	/* the two good pages must not stay pinned after the failure */
	test_err_ioctl_ioas_map_fixed(EFAULT, ioas_id, p, 4 * PSZ, IOVA_A);
	expect_vmpin(0);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_A, 4 * PSZ);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_A, PSZ);

	/* wholly unmapped memory */
	test_err_ioctl_ioas_map_fixed(EFAULT, ioas_id, p + 2 * PSZ, 2 * PSZ,
				      IOVA_A);
	expect_vmpin(0);

	/* the IOVA is still free for a good mapping */
	test_ioctl_ioas_map_fixed(ioas_id, p, 2 * PSZ, IOVA_A);
	expect_vmpin(2);
	unmap_pages(ioas_id, IOVA_A, 2);
	expect_vmpin(0);
	munmap(p, 2 * PSZ);
}

TEST_F(vfio_device, attach_efault_hole)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	__u8 *p;

	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);

	p = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x22, 4 * PSZ);
	ASSERT_EQ(0, munmap(p + 2 * PSZ, 2 * PSZ));

	/* with no domain the hole goes unnoticed ... */
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	test_ioctl_ioas_map_fixed(ioas_id, p, 4 * PSZ, IOVA_B);
	expect_vmpin(0);
	/* ... until a domain has to be filled */
	test_err_ioctl_vfio_attach(EFAULT, self->dev, ioas_id);
	expect_vmpin(0);
	expect_full_range(ioas_id);

	unmap_pages(ioas_id, IOVA_B, 4);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_vmpin(NPAGES);
	munmap(p, 2 * PSZ);
}

TEST_F(vfio_device, close_device_first)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	/* unbinding while attached detaches and unpins */
	ASSERT_EQ(0, close(self->dev));
	self->dev = -1;
	expect_vmpin(0);
	test_err_ioctl_destroy(ENOENT, hwpt_id);
	test_err_ioctl_destroy(ENOENT, devid);

	/* the IOAS and its (now unpinned) mapping live on */
	expect_full_range(ioas_id);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	test_ioctl_destroy(ioas_id);

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	expect_vmpin(0);
}

TEST_F(vfio_device, close_iommufd_first)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	/*
	 * The bound device keeps the iommufd context alive, so closing our
	 * fd to it releases nothing yet ...
	 */
	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	expect_vmpin(NPAGES);

	/* ... closing the device tears everything down */
	ASSERT_EQ(0, close(self->dev));
	self->dev = -1;
	expect_vmpin(0);
}

/* --- fork ------------------------------------------------------------- */

TEST_F(vfio_device, fork_child_exits)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	int status;
	pid_t pid;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* a new mm starts with nothing pinned */
		_exit(vmpin_kb() == 0 ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("the child's VmPin was not 0");

	/* the child's exit did not touch the parent's pins */
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(0);
}

/*
 * Child side of fork_child_pins_own_memory. Returns an exit code: 0 when
 * everything matched, otherwise which step failed.
 */
static int child_map_own_memory(int fd, __u32 ioas_id, long parent_kb)
{
	__u64 iova = IOVA_B;
	__u8 *p;

	p = mmap(NULL, 4 * PSZ, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 10;
	memset(p, 0x33, 4 * PSZ);
	if (_test_ioctl_ioas_map(fd, ioas_id, p, 4 * PSZ, &iova,
				 MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))
		return 11;
	/* charged to the mm that owns the pages: this one */
	if (vmpin_kb() != PAGES_KB(4))
		return 12;
	if (read_status_kb_of(getppid(), "VmPin:") != parent_kb)
		return 13;
	/* exit with the mapping (and its pins) still in place */
	return 0;
}

TEST_F(vfio_device, fork_child_pins_own_memory)
{
	static const char *const what[] = {
		[10] = "mmap failed",
		[11] = "IOMMU_IOAS_MAP through the inherited fd failed",
		[12] = "the child's VmPin did not rise by 4 pages",
		[13] = "the parent's VmPin changed while the child mapped",
	};
	__u32 devid = 0, ioas_id, hwpt_id;
	int status, code;
	pid_t pid;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_map_own_memory(self->fd, ioas_id,
					   self->vmpin_start +
						   PAGES_KB(NPAGES)));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	code = WEXITSTATUS(status);
	EXPECT_EQ(0, code)
		TH_LOG("child: %s",
		       code >= 10 && code <= 13 ? what[code] : "failed");

	/* the child's pages are still mapped, but not charged to us */
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_B, 4);
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(0);
}

/* --- RLIMIT_MEMLOCK --------------------------------------------------- */

TEST_F(vfio_device, memlock_limit)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	drop_cap_ipc_lock();
	set_memlock_limit(LIMIT_PAGES * PSZ);
	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);

	/* exactly the limit fits */
	map_pages(ioas_id, 0, LIMIT_PAGES, IOVA_A);
	expect_vmpin(LIMIT_PAGES);

	/* one page more does not, and leaves no trace */
	test_err_ioctl_ioas_map_fixed(ENOMEM, ioas_id,
				      self->buf + LIMIT_PAGES * PSZ, PSZ,
				      IOVA_B);
	expect_vmpin(LIMIT_PAGES);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_B, PSZ);

	/* unmapping gives the whole budget back */
	unmap_pages(ioas_id, IOVA_A, LIMIT_PAGES);
	expect_vmpin(0);

	/* a single map over the limit fails as a whole */
	test_err_ioctl_ioas_map_fixed(ENOMEM, ioas_id, self->buf,
				      (LIMIT_PAGES + 1) * PSZ, IOVA_A);
	expect_vmpin(0);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_A, PSZ);

	map_pages(ioas_id, 0, LIMIT_PAGES, IOVA_A);
	expect_vmpin(LIMIT_PAGES);
	unmap_pages(ioas_id, IOVA_A, LIMIT_PAGES);
}

TEST_F(vfio_device, memlock_limit_is_a_sum)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	drop_cap_ipc_lock();
	set_memlock_limit(LIMIT_PAGES * PSZ);
	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);

	map_pages(ioas_id, 0, LIMIT_PAGES / 2, IOVA_A);
	map_pages(ioas_id, LIMIT_PAGES / 2, LIMIT_PAGES / 2, IOVA_B);
	expect_vmpin(LIMIT_PAGES);
	test_err_ioctl_ioas_map_fixed(ENOMEM, ioas_id,
				      self->buf + LIMIT_PAGES * PSZ, PSZ,
				      IOVA_C);
	expect_vmpin(LIMIT_PAGES);

	/* half the budget back, half a budget fits again */
	unmap_pages(ioas_id, IOVA_A, LIMIT_PAGES / 2);
	expect_vmpin(LIMIT_PAGES / 2);
	map_pages(ioas_id, LIMIT_PAGES, LIMIT_PAGES / 2, IOVA_C);
	expect_vmpin(LIMIT_PAGES);
	test_err_ioctl_ioas_map_fixed(ENOMEM, ioas_id, self->buf, PSZ,
				      IOVA_D);
	expect_vmpin(LIMIT_PAGES);
}

TEST_F(vfio_device, memlock_limit_at_attach)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	drop_cap_ipc_lock();
	set_memlock_limit(LIMIT_PAGES * PSZ);
	test_ioctl_vfio_bind(self->dev, &devid);
	test_ioctl_ioas_alloc(&ioas_id);

	/* without a domain nothing is charged, so this all maps */
	map_pages(ioas_id, 0, LIMIT_PAGES, IOVA_A);
	map_pages(ioas_id, LIMIT_PAGES, 1, IOVA_B);
	expect_vmpin(0);

	/* filling the domain would need one page too many */
	test_err_ioctl_vfio_attach(ENOMEM, self->dev, ioas_id);
	expect_vmpin(0);

	unmap_pages(ioas_id, IOVA_B, 1);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);
	expect_vmpin(LIMIT_PAGES);
}

TEST_F(vfio_device, memlock_cap_ipc_lock_exempt)
{
	__u32 devid = 0, ioas_id, hwpt_id;

	/* root with CAP_IPC_LOCK pins beyond RLIMIT_MEMLOCK */
	ASSERT_EQ(1, have_effective_cap(CAP_IPC_LOCK))
		TH_LOG("the tests are expected to run as root");
	set_memlock_limit(LIMIT_PAGES * PSZ);
	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);

	map_pages(ioas_id, 0, 2 * LIMIT_PAGES, IOVA_A);
	expect_vmpin(2 * LIMIT_PAGES);
	unmap_pages(ioas_id, IOVA_A, 2 * LIMIT_PAGES);
	expect_vmpin(0);
}

TEST_F(vfio_device, rlimit_mode_mm)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	long lck_start, base_pages;
	__u64 val;

	/* only possible on a context without objects */
	val = 1;
	ASSERT_EQ(0, _test_ioctl_option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
					IOMMU_OPTION_OP_SET, 0, &val))
		TH_LOG("RLIMIT_MODE=1: %s", strerror(errno));
	val = 0;
	ASSERT_EQ(0, _test_ioctl_option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
					IOMMU_OPTION_OP_GET, 0, &val));
	EXPECT_EQ(1ULL, val);

	drop_cap_ipc_lock();
	test_ioctl_vfio_bind(self->dev, &devid);
	/* the device object makes the mode immutable */
	val = 0;
	EXPECT_ERRNO(EBUSY, _test_ioctl_option(self->fd,
					       IOMMU_OPTION_RLIMIT_MODE,
					       IOMMU_OPTION_OP_SET, 0, &val));

	test_ioctl_ioas_alloc(&ioas_id);
	hwpt_id = ioas_id;
	test_ioctl_vfio_attach(self->dev, &hwpt_id);

	lck_start = vmlck_kb();
	ASSERT_LE(0, lck_start) TH_LOG("no VmLck line in /proc/self/status");
	/* room for LIMIT_PAGES more than what is locked already */
	base_pages = lck_start * 1024 / (long)PAGE_SIZE;
	set_memlock_limit((base_pages + LIMIT_PAGES) * PSZ);

	/* pins are charged to this mm's locked_vm */
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	EXPECT_EQ(lck_start + PAGES_KB(NPAGES), vmlck_kb());
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	EXPECT_EQ(lck_start, vmlck_kb());
	expect_vmpin(0);

	/* and limited by RLIMIT_MEMLOCK, exactly */
	map_pages(ioas_id, 0, LIMIT_PAGES, IOVA_A);
	EXPECT_EQ(lck_start + PAGES_KB(LIMIT_PAGES), vmlck_kb());
	test_err_ioctl_ioas_map_fixed(ENOMEM, ioas_id,
				      self->buf + LIMIT_PAGES * PSZ, PSZ,
				      IOVA_B);
	EXPECT_EQ(lck_start + PAGES_KB(LIMIT_PAGES), vmlck_kb());
	expect_vmpin(LIMIT_PAGES);
	test_err_ioctl_ioas_unmap(ENOENT, ioas_id, IOVA_B, PSZ);

	unmap_pages(ioas_id, IOVA_A, LIMIT_PAGES);
	EXPECT_EQ(lck_start, vmlck_kb());
	expect_vmpin(0);
}

TEST_F(vfio_device, rlimit_mode_mm_cap_ipc_lock_exempt)
{
	__u32 devid = 0, ioas_id, hwpt_id;
	long lck_start;
	__u64 val = 1;

	ASSERT_EQ(0, _test_ioctl_option(self->fd, IOMMU_OPTION_RLIMIT_MODE,
					IOMMU_OPTION_OP_SET, 0, &val))
		TH_LOG("RLIMIT_MODE=1: %s", strerror(errno));
	ASSERT_EQ(1, have_effective_cap(CAP_IPC_LOCK));
	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);

	/* with CAP_IPC_LOCK nothing is charged, but pins still count */
	lck_start = vmlck_kb();
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	EXPECT_EQ(lck_start, vmlck_kb());
	expect_vmpin(NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(0);
}

/* ---------------------------------------------------------------------- */
/* two devices: edu and the NIC                                            */
/* ---------------------------------------------------------------------- */

FIXTURE(two_devices)
{
	int fd;
	int edu;
	int nic;
	char edu_bdf[64];
	char nic_bdf[64];
	__u32 edu_id;
	__u32 nic_id;
	long vmpin_start;
	__u8 *buf;
};

FIXTURE_SETUP(two_devices)
{
	self->fd = -1;
	self->edu = -1;
	self->nic = -1;
	self->buf = MAP_FAILED;

	open_iommufd_or_fail(&self->fd);
	self->edu = open_edu_or_fail(self->edu_bdf);
	self->nic = open_nic_or_fail(self->nic_bdf);
	test_ioctl_vfio_bind(self->edu, &self->edu_id);
	test_ioctl_vfio_bind(self->nic, &self->nic_id);
	ASSERT_NE(self->edu_id, self->nic_id);

	self->buf = mmap(NULL, BUF_PAGES * PSZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x6b, BUF_PAGES * PSZ);

	self->vmpin_start = vmpin_kb();
	ASSERT_LE(0, self->vmpin_start);
}

FIXTURE_TEARDOWN(two_devices)
{
	if (self->edu >= 0)
		EXPECT_EQ(0, close(self->edu));
	if (self->nic >= 0)
		EXPECT_EQ(0, close(self->nic));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	self->edu = self->nic = self->fd = -1;
	expect_vmpin(0);
	if (self->buf != MAP_FAILED)
		munmap(self->buf, BUF_PAGES * PSZ);
}

TEST_F(two_devices, attach_same_ioas)
{
	__u32 ioas_id, edu_hwpt, nic_hwpt;

	test_ioctl_ioas_alloc(&ioas_id);
	edu_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->edu, &edu_hwpt);
	nic_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->nic, &nic_hwpt);
	EXPECT_NE(ioas_id, edu_hwpt);
	EXPECT_NE(ioas_id, nic_hwpt);
	TH_LOG("edu HWPT %u, NIC HWPT %u (%s)", edu_hwpt, nic_hwpt,
	       edu_hwpt == nic_hwpt ? "shared" : "separate");
	expect_device_ranges(ioas_id, self->edu_bdf);
	expect_device_ranges(ioas_id, self->nic_bdf);

	test_err_ioctl_destroy(EBUSY, ioas_id);
	test_ioctl_vfio_detach(self->edu);
	/* the NIC still needs the IOAS and its reserved regions */
	test_err_ioctl_destroy(EBUSY, ioas_id);
	test_err_ioctl_destroy(EBUSY, nic_hwpt);
	expect_device_ranges(ioas_id, self->nic_bdf);
	test_ioctl_vfio_detach(self->nic);
	test_err_ioctl_destroy(ENOENT, nic_hwpt);
	expect_full_range(ioas_id);
	test_ioctl_destroy(ioas_id);
}

TEST_F(two_devices, pin_once_for_two_devices)
{
	__u32 ioas_id, edu_hwpt, nic_hwpt;

	test_ioctl_ioas_alloc(&ioas_id);
	edu_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->edu, &edu_hwpt);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	/* a second device (and maybe a second domain) pins no more */
	nic_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->nic, &nic_hwpt);
	expect_vmpin(NPAGES);
	map_pages(ioas_id, NPAGES, NPAGES, IOVA_B);
	expect_vmpin(2 * NPAGES);

	/* pins stay while any device needs them */
	test_ioctl_vfio_detach(self->edu);
	expect_vmpin(2 * NPAGES);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	expect_vmpin(NPAGES);
	test_ioctl_vfio_detach(self->nic);
	expect_vmpin(0);
}

TEST_F(two_devices, copy_does_not_pin_twice)
{
	__u32 ioas1, ioas2, edu_hwpt, nic_hwpt;

	test_ioctl_ioas_alloc(&ioas1);
	test_ioctl_ioas_alloc(&ioas2);
	edu_hwpt = ioas1;
	test_ioctl_vfio_attach(self->edu, &edu_hwpt);
	nic_hwpt = ioas2;
	test_ioctl_vfio_attach(self->nic, &nic_hwpt);
	EXPECT_NE(edu_hwpt, nic_hwpt);

	map_pages(ioas1, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	/* the NIC's domain gets the same pages, not new pins */
	test_ioctl_ioas_copy_fixed(ioas2, IOVA_C, ioas1, IOVA_A,
				   NPAGES * PSZ);
	expect_vmpin(NPAGES);

	/* either side alone keeps them pinned */
	unmap_pages(ioas1, IOVA_A, NPAGES);
	expect_vmpin(NPAGES);
	unmap_pages(ioas2, IOVA_C, NPAGES);
	expect_vmpin(0);
}

TEST_F(two_devices, copy_then_attach)
{
	__u32 ioas1, ioas2, edu_hwpt, nic_hwpt;

	test_ioctl_ioas_alloc(&ioas1);
	test_ioctl_ioas_alloc(&ioas2);
	edu_hwpt = ioas1;
	test_ioctl_vfio_attach(self->edu, &edu_hwpt);
	map_pages(ioas1, 0, NPAGES, IOVA_A);
	test_ioctl_ioas_copy_fixed(ioas2, IOVA_C, ioas1, IOVA_A,
				   NPAGES * PSZ);
	expect_vmpin(NPAGES);

	/* filling the NIC's domain from the copy reuses the pinned pages */
	nic_hwpt = ioas2;
	test_ioctl_vfio_attach(self->nic, &nic_hwpt);
	expect_vmpin(NPAGES);

	/* with the edu gone the NIC's copy still holds them */
	ASSERT_EQ(0, close(self->edu));
	self->edu = -1;
	expect_vmpin(NPAGES);
	ASSERT_EQ(0, close(self->nic));
	self->nic = -1;
	expect_vmpin(0);
}

/* ---------------------------------------------------------------------- */
/* hot removal                                                             */
/* ---------------------------------------------------------------------- */

/*
 * "echo 1 > remove" while the device is bound, attached and pinning: VFIO
 * asks its user to let go and waits (there is no request eventfd here, so
 * it logs that it is blocked); closing the device then unbinds it, which
 * detaches it and unpins, and the removal completes.  Nothing may be left
 * pinned and the IOAS survives.  The device is put back afterwards.
 */
TEST_F_TIMEOUT(vfio_device, remove_while_attached, 90)
{
	__u32 devid = 0, ioas_id, hwpt_id, ev_before, ev_after, st;
	char path[256];
	int kmsg, status;
	pid_t pid;

	bind_alloc_attach(&devid, &ioas_id, &hwpt_id);
	map_pages(ioas_id, 0, NPAGES, IOVA_A);
	expect_vmpin(NPAGES);

	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	ASSERT_LE(0, lseek(kmsg, 0, SEEK_END));

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove",
		 self->bdf);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* our copy of the device file would keep it in use forever */
		close(self->dev);
		close(self->fd);
		_exit(write_file(path, "1", 0) ? 1 : 0);
	}

	EXPECT_TRUE(wait_kmsg(kmsg, "blocked until released by user", 15000))
		TH_LOG("removing %s did not wait for its user", self->bdf);
	close(kmsg);
	/* still attached and pinning while the removal waits */
	expect_vmpin(NPAGES);
	test_err_ioctl_destroy(EBUSY, ioas_id);

	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &ev_before, &st));
	ASSERT_EQ(0, close(self->dev));
	self->dev = -1;
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	/* the context's subscribers heard the detach and the unbind */
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &ev_after, &st));
	EXPECT_EQ(ev_before + 2, ev_after);
	EXPECT_EQ(0U, st);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("the removal failed");
	expect_vmpin(0);
	test_err_ioctl_destroy(ENOENT, hwpt_id);
	test_err_ioctl_destroy(ENOENT, devid);
	unmap_pages(ioas_id, IOVA_A, NPAGES);
	test_ioctl_destroy(ioas_id);

	ASSERT_EQ(0, restore_edu(self->bdf))
		TH_LOG("could not bring %s back to vfio-pci", self->bdf);
	self->dev = open_edu_or_fail(self->bdf);
}

/* ---------------------------------------------------------------------- */
/* SR-IOV: a VF and its PF (QEMU's igb)                                     */
/* ---------------------------------------------------------------------- */

/*
 * A VF's Device Control "Enable No Snoop" bit is reserved (it reads 0); the
 * VF may issue No-Snoop whenever its PF's bit is set, which the PF's driver
 * may do at any time. So a VF counts as able to issue No-Snoop (reported
 * as IOMMU_HW_CAP_NO_SNOOP) whatever its own register says: "can" when the
 * PF's bit is set, "cannot tell" (which counts as able) when it is clear.
 * The PF is probed like any PCIe function: it can unless its bit is clear
 * and stays clear when written, which this test checks itself through the
 * PF's VFIO config region. The guest (guest/lib.sh setup_sriov) binds the
 * PF to vfio-pci and makes one VF, which vfio-pci takes too; the VF's user
 * must then present the VF token its PF's user set at bind.
 */
#define IGB_VENDOR_ID 0x8086
#define IGB_PF_DEVICE_ID 0x10c9
#define IGB_VF_DEVICE_ID 0x10ca

FIXTURE(sriov)
{
	int fd;
	int pf;
	int vf;
	char pf_bdf[64];
	char vf_bdf[64];
	__u32 pf_id;
	__u32 vf_id;
};

/* the VF token: any UUID, as long as the PF's and the VF's user agree */
static const __u8 sriov_token[16] = { 0x69, 0x6f, 0x6d, 0x6d, 0x75, 0x66,
				      0x64, 0x2d, 0x72, 0x73, 0x2d, 0x76,
				      0x66, 0x74, 0x6f, 0x6b };

FIXTURE_SETUP(sriov)
{
	self->fd = self->pf = self->vf = -1;
	open_iommufd_or_fail(&self->fd);
	self->pf = __open_vfio_device(_metadata, "IOMMUFD_TEST_PF_BDF",
				      IGB_VENDOR_ID, IGB_PF_DEVICE_ID,
				      "igb SR-IOV PF", self->pf_bdf,
				      sizeof(self->pf_bdf));
	self->vf = __open_vfio_device(_metadata, "IOMMUFD_TEST_VF_BDF",
				      IGB_VENDOR_ID, IGB_VF_DEVICE_ID,
				      "igb VF (sriov_numvfs of the PF)",
				      self->vf_bdf, sizeof(self->vf_bdf));
	ASSERT_EQ(0, _test_ioctl_vfio_bind_flags(self->pf, self->fd,
						 VFIO_DEVICE_BIND_FLAG_TOKEN,
						 sriov_token, &self->pf_id))
		TH_LOG("bind PF %s with a VF token: %s", self->pf_bdf,
		       strerror(errno));
	ASSERT_EQ(0, _test_ioctl_vfio_bind_flags(self->vf, self->fd,
						 VFIO_DEVICE_BIND_FLAG_TOKEN,
						 sriov_token, &self->vf_id))
		TH_LOG("bind VF %s with its PF's token: %s", self->vf_bdf,
		       strerror(errno));
	ASSERT_NE(self->pf_id, self->vf_id);
}

FIXTURE_TEARDOWN(sriov)
{
	/* the VF first: the PF's user may not go while a VF's is there */
	if (self->vf >= 0)
		EXPECT_EQ(0, close(self->vf));
	if (self->pf >= 0)
		EXPECT_EQ(0, close(self->pf));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	self->vf = self->pf = self->fd = -1;
}

/* @len bytes at @pos of the config space of VFIO device @devfd */
static int cfg_rw(int devfd, bool write, __u32 pos, void *val, size_t len)
{
	struct vfio_region_info info;
	ssize_t n;

	if (_vfio_region_info(devfd, VFIO_PCI_CONFIG_REGION_INDEX, &info))
		return -errno;
	n = write ? pwrite(devfd, val, len, info.offset + pos) :
		    pread(devfd, val, len, info.offset + pos);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/* the offset of the PCIe capability of @devfd, 0 if none */
static __u32 pcie_cap_of(int devfd)
{
	__u8 pos = 0, id = 0;
	int i;

	if (cfg_rw(devfd, false, PCI_CAPABILITY_LIST, &pos, 1))
		return 0;
	for (i = 0; i < 48 && pos >= 0x40; i++) {
		pos &= ~3;
		if (cfg_rw(devfd, false, pos, &id, 1))
			return 0;
		if (id == PCI_CAP_ID_EXP)
			return pos;
		if (cfg_rw(devfd, false, pos + 1, &pos, 1))
			return 0;
	}
	return 0;
}

/*
 * What the PF's register says, found the way the kernel's probe does it:
 * the bit is set, or it stays set when written (the register is restored).
 */
static bool pf_can_no_snoop(struct __test_metadata *_metadata, int pf,
			    __u16 *found)
{
	__u32 cap = pcie_cap_of(pf);
	__u16 ctl, probed;

	ASSERT_NE(0U, cap) TH_LOG("the PF has no PCIe capability");
	ASSERT_EQ(0, cfg_rw(pf, false, cap + PCI_EXP_DEVCTL, &ctl, 2));
	*found = ctl;
	if (ctl & PCI_EXP_DEVCTL_NOSNOOP_EN)
		return true;
	probed = ctl | PCI_EXP_DEVCTL_NOSNOOP_EN;
	ASSERT_EQ(0, cfg_rw(pf, true, cap + PCI_EXP_DEVCTL, &probed, 2));
	ASSERT_EQ(0, cfg_rw(pf, false, cap + PCI_EXP_DEVCTL, &probed, 2));
	ASSERT_EQ(0, cfg_rw(pf, true, cap + PCI_EXP_DEVCTL, &ctl, 2));
	return probed & PCI_EXP_DEVCTL_NOSNOOP_EN;
}

/* IOMMU_GET_HW_INFO's out_capabilities for @dev_id */
static __u64 hw_caps(struct __test_metadata *_metadata, int fd, __u32 dev_id)
{
	struct iommu_hw_info cmd = { .size = sizeof(cmd), .dev_id = dev_id };

	ASSERT_EQ(0, ioctl(fd, IOMMU_GET_HW_INFO, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(%u): %s", dev_id, strerror(errno));
	return cmd.out_capabilities;
}

/* The VF counts as able to issue No-Snoop; the PF as its register says. */
TEST_F(sriov, no_snoop_follows_the_pf)
{
	bool pf_ns = !!(hw_caps(_metadata, self->fd, self->pf_id) &
			IOMMU_HW_CAP_NO_SNOOP);
	bool vf_ns = !!(hw_caps(_metadata, self->fd, self->vf_id) &
			IOMMU_HW_CAP_NO_SNOOP);
	__u16 pf_ctl;
	bool pf_can = pf_can_no_snoop(_metadata, self->pf, &pf_ctl);

	TH_LOG("PF %s: Device Control 0x%04x, No-Snoop %s; kernel says PF %d, "
	       "VF %s %d",
	       self->pf_bdf, pf_ctl, pf_can ? "settable" : "hard-wired to 0",
	       pf_ns, self->vf_bdf, vf_ns);
	EXPECT_EQ(pf_can, pf_ns)
		TH_LOG("the PF's NO_SNOOP must be what its register says");
	EXPECT_TRUE(vf_ns)
		TH_LOG("a VF's Enable No Snoop is reserved and follows its "
		       "PF's, which %s; the VF must count as able",
		       pf_ctl & PCI_EXP_DEVCTL_NOSNOOP_EN ?
			       "is set" :
			       "its driver may set at any time");
}

/*
 * Both attach to one IOAS, and the live state follows the coherency rules:
 * the VF does non-coherent DMA exactly where its IOMMU cannot enforce
 * coherency (box 3), the PF only if it can issue No-Snoop too.
 */
TEST_F(sriov, attach_vf_and_pf)
{
	struct iommu_facts f;
	__u32 ioas_id, pf_hwpt, vf_hwpt;
	bool pf_ns;

	iommu_facts_or_fail(self->vf_bdf, &f);
	pf_ns = !!(hw_caps(_metadata, self->fd, self->pf_id) &
		   IOMMU_HW_CAP_NO_SNOOP);
	test_ioctl_ioas_alloc(&ioas_id);
	vf_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->vf, &vf_hwpt);
	pf_hwpt = ioas_id;
	test_ioctl_vfio_attach(self->pf, &pf_hwpt);
	EXPECT_EQ(!f.can_enforce,
		  !!(hw_caps(_metadata, self->fd, self->vf_id) &
		     IOMMU_HW_CAP_NONCOHERENT_DMA))
		TH_LOG("VF behind %s: non-coherent DMA iff it cannot enforce",
		       f.name);
	EXPECT_EQ(!f.can_enforce && pf_ns,
		  !!(hw_caps(_metadata, self->fd, self->pf_id) &
		     IOMMU_HW_CAP_NONCOHERENT_DMA));
	test_ioctl_vfio_detach(self->pf);
	test_ioctl_vfio_detach(self->vf);
	EXPECT_FALSE(!!(hw_caps(_metadata, self->fd, self->vf_id) &
			IOMMU_HW_CAP_NONCOHERENT_DMA));
	test_ioctl_destroy(ioas_id);
}

TEST_HARNESS_MAIN
