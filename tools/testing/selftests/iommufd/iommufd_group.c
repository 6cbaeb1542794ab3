// SPDX-License-Identifier: GPL-2.0-only
/*
 * An IOMMU group of two devices. The IOMMU cannot tell the devices of a
 * group apart, so it translates for the group as a whole: once one device
 * is attached, every device of the group reaches that page table, attached
 * or not. The test VM has an edu device with two functions and no ACS,
 * which puts them in one group; these tests check the rules that follow:
 *
 *  - both devices bind to one context; a device of the group cannot attach
 *    to another page table than the group's;
 *  - a bound device whose group another device attached really DMAs through
 *    the group's page table;
 *  - replace moves the whole group, and each attached device with it;
 *  - coherency is the group's: a bound device counts as doing non-coherent
 *    DMA while its group is on a page table that lets No-Snoop through, and
 *    a coherent page table must admit every device of the group.
 *
 * A missing device pair is a failure, not a skip.
 */
#include <libgen.h>

#include "edu_utils.h"

#define IOVA 0x100000ULL
#define LEN ((__u64)PAGE_SIZE)

/* the IOMMU group number of PCI function @bdf, or -1 */
static int iommu_group_of(const char *bdf)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/iommu_group", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	return atoi(basename(target));
}

/*
 * Two vfio-bound edu functions of one IOMMU group, lowest addresses first.
 * 0, or -ENODEV.
 */
static int find_edu_pair(char *a, char *b, size_t len)
{
	char bdfs[16][NAME_MAX + 1];
	char path[PATH_MAX];
	unsigned int v = 0, d = 0, n = 0, i, j;
	struct dirent *de;
	DIR *dir;

	dir = opendir(PCI_SYSFS_DEVICES);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)) && n < 16) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/vendor",
			 de->d_name);
		if (read_sysfs_hex(path, &v) || v != EDU_VENDOR_ID)
			continue;
		snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/device",
			 de->d_name);
		if (read_sysfs_hex(path, &d) || d != EDU_DEVICE_ID)
			continue;
		if (pci_bound_to_vfio(de->d_name))
			str_copy(bdfs[n++], NAME_MAX + 1, de->d_name);
	}
	closedir(dir);
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			if (i == j || strcmp(bdfs[i], bdfs[j]) >= 0 ||
			    iommu_group_of(bdfs[i]) < 0 ||
			    iommu_group_of(bdfs[i]) != iommu_group_of(bdfs[j]))
				continue;
			str_copy(a, len, bdfs[i]);
			str_copy(b, len, bdfs[j]);
			return 0;
		}
	}
	return -ENODEV;
}

static __u64 __caps(struct __test_metadata *_metadata, int fd, __u32 dev_id)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
	};

	ASSERT_EQ(0, ioctl(fd, IOMMU_GET_HW_INFO, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(%u): %s", dev_id, strerror(errno));
	return cmd.out_capabilities;
}
#define noncoherent(dev_id)                                                   \
	(!!(__caps(_metadata, self->fd, dev_id) & IOMMU_HW_CAP_NONCOHERENT_DMA))

static int _execute_wbinvd(int fd)
{
	struct iommu_execute_wbinvd cmd = { .size = sizeof(cmd) };

	return ioctl(fd, IOMMU_EXECUTE_WBINVD, &cmd);
}

FIXTURE(group)
{
	int fd;
	int dev[2];
	char bdf[2][64];
	__u32 devid[2];
	volatile __u8 *bar[2];
	size_t bar_len[2];
	__u64 cfg_off[2];
	__u32 ioas[2];
	__u8 *mem;	/* two pages: one mapped in each IOAS at IOVA */
};

FIXTURE_SETUP(group)
{
	char cdev[PATH_MAX];
	int i, rc;

	self->fd = -1;
	self->dev[0] = self->dev[1] = -1;
	self->bar[0] = self->bar[1] = NULL;
	self->mem = MAP_FAILED;

	rc = find_edu_pair(self->bdf[0], self->bdf[1], sizeof(self->bdf[0]));
	ASSERT_EQ(0, rc)
		TH_LOG("no two edu functions bound to %s share an IOMMU "
		       "group; the test VM must provide a multifunction edu "
		       "device",
		       VFIO_PCI_DRIVER);
	open_iommufd_or_fail(&self->fd);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, vfio_cdev_path(self->bdf[i], cdev, sizeof(cdev)));
		self->dev[i] = open(cdev, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, self->dev[i])
			TH_LOG("open %s: %s", cdev, strerror(errno));
		test_ioctl_vfio_bind(self->dev[i], &self->devid[i]);
		edu_enable(self->dev[i], &self->bar[i], &self->bar_len[i],
			   &self->cfg_off[i]);
	}
	self->mem = mmap(NULL, 2 * LEN, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	memset(self->mem, SENTINEL, 2 * LEN);
	for (i = 0; i < 2; i++) {
		test_ioctl_ioas_alloc(&self->ioas[i]);
		test_ioctl_ioas_map_fixed(self->ioas[i], self->mem + i * LEN,
					  LEN, IOVA);
	}
}

FIXTURE_TEARDOWN(group)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (self->bar[i]) {
			edu_wait_idle(self->bar[i]);
			munmap((void *)self->bar[i], self->bar_len[i]);
		}
		if (self->dev[i] >= 0)
			EXPECT_EQ(0, close(self->dev[i]));
	}
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
	if (self->mem != MAP_FAILED)
		munmap(self->mem, 2 * LEN);
}

/*
 * Device @i writes one page of @seed to IOVA; returns which IOAS's page it
 * landed in (0 or 1), 2 for both, or -1 for neither.
 */
static int __landed(struct __test_metadata *_metadata,
		    FIXTURE_DATA(group) * self, int i, __u8 seed)
{
	__u8 pattern[EDU_BUF_SIZE];
	bool in[2];
	int k;

	/*
	 * The pattern reaches the device's buffer by a DMA read of IOVA, which
	 * means the same in both IOASes; a blocked read leaves an older seed.
	 */
	fill_pattern(pattern, sizeof(pattern), seed);
	memcpy(self->mem, pattern, sizeof(pattern));
	memcpy(self->mem + LEN, pattern, sizeof(pattern));
	EXPECT_EQ(0, edu_dma(self->bar[i], IOVA, EDU_BUF, EDU_BUF_SIZE, false));
	memset(self->mem, SENTINEL, 2 * LEN);
	EXPECT_EQ(0, edu_dma(self->bar[i], EDU_BUF, IOVA, EDU_BUF_SIZE, true));
	for (k = 0; k < 2; k++)
		in[k] = !memcmp(self->mem + k * LEN, pattern, sizeof(pattern));
	if (in[0] && in[1])
		return 2;
	return in[0] ? 0 : in[1] ? 1 : -1;
}
#define landed(i, seed) __landed(_metadata, self, i, seed)

TEST_F(group, attach_is_per_group)
{
	__u32 pt0 = self->ioas[0], pt1;

	EXPECT_EQ(iommu_group_of(self->bdf[0]), iommu_group_of(self->bdf[1]));
	test_ioctl_vfio_attach(self->dev[0], &pt0);
	/* the other device cannot go elsewhere ... */
	test_err_ioctl_vfio_attach(EINVAL, self->dev[1], self->ioas[1]);
	/* ... but joins the group's HWPT, by IOAS or by HWPT */
	pt1 = self->ioas[0];
	test_ioctl_vfio_attach(self->dev[1], &pt1);
	EXPECT_EQ(pt0, pt1);
	test_ioctl_vfio_detach(self->dev[1]);
	pt1 = pt0;
	test_ioctl_vfio_attach(self->dev[1], &pt1);
	EXPECT_EQ(pt0, pt1);
	/* the group stays on it while one device is attached */
	test_ioctl_vfio_detach(self->dev[0]);
	test_err_ioctl_vfio_attach(EINVAL, self->dev[0], self->ioas[1]);
	test_ioctl_vfio_detach(self->dev[1]);
	/* and is free once none is (the HWPT went; its id may come back) */
	pt1 = self->ioas[1];
	test_ioctl_vfio_attach(self->dev[0], &pt1);
	test_err_ioctl_vfio_attach(EINVAL, self->dev[1], self->ioas[0]);
	pt0 = self->ioas[1];
	test_ioctl_vfio_attach(self->dev[1], &pt0);
	EXPECT_EQ(pt1, pt0);
	test_ioctl_vfio_detach(self->dev[1]);
	test_ioctl_vfio_detach(self->dev[0]);
}

/* what the rules are for: the IOMMU translates for the group */
TEST_F(group, unattached_device_dmas_through_the_group)
{
	__u32 pt = self->ioas[0];

	test_ioctl_vfio_attach(self->dev[0], &pt);
	EXPECT_EQ(0, landed(0, 0x31));
	/* device 1 is bound, never attached, yet reaches IOAS 0's memory */
	EXPECT_EQ(0, landed(1, 0x32));
	test_ioctl_vfio_detach(self->dev[0]);
	/* a detached group is blocked for both */
	EXPECT_EQ(-1, landed(1, 0x33));
}

TEST_F(group, replace_moves_the_group)
{
	__u32 pt0 = self->ioas[0], pt1 = self->ioas[0], pt;

	test_ioctl_vfio_attach(self->dev[0], &pt0);
	test_ioctl_vfio_attach(self->dev[1], &pt1);
	EXPECT_EQ(0, landed(0, 0x41));
	EXPECT_EQ(0, landed(1, 0x42));

	/* attaching an attached device replaces: the whole group moves */
	pt = self->ioas[1];
	test_ioctl_vfio_attach(self->dev[0], &pt);
	EXPECT_NE(pt0, pt);
	EXPECT_EQ(1, landed(0, 0x43));
	EXPECT_EQ(1, landed(1, 0x44));
	/* device 1 went with it: asking for the same place changes nothing */
	pt1 = self->ioas[1];
	test_ioctl_vfio_attach(self->dev[1], &pt1);
	EXPECT_EQ(pt, pt1);

	/* the IOAS the group left can go; the automatic HWPT went with it */
	test_ioctl_destroy(self->ioas[0]);
	test_ioctl_ioas_alloc(&self->ioas[0]);
	test_ioctl_vfio_detach(self->dev[1]);
	test_ioctl_vfio_detach(self->dev[0]);
	test_ioctl_destroy(self->ioas[1]);
}

/* coherency is the group's: every bound device of it counts */
TEST_F(group, coherency_counts_every_device)
{
	__u32 ioas_nc, ioas_coh, pt;
	bool sc = __caps(_metadata, self->fd, self->devid[0]) &
		  IOMMU_HW_CAP_ENFORCE_COHERENCY;

	/* device 1 can issue No-Snoop (test override), device 0 cannot */
	ASSERT_EQ(0, _test_no_snoop(self->fd, self->devid[1], 1, 0))
		TH_LOG("IOMMU_TEST_DEVICE_NO_SNOOP: %s (CONFIG_IOMMUFD_RS_TEST "
		       "needed)",
		       strerror(errno));
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->fd,
					    IOMMU_IOAS_ALLOC_NONCOHERENT,
					    &ioas_nc));
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->fd,
					    IOMMU_IOAS_ALLOC_COHERENT,
					    &ioas_coh));

	/* only device 0 attaches, to a page table that lets No-Snoop by */
	pt = ioas_nc;
	test_ioctl_vfio_attach(self->dev[0], &pt);
	EXPECT_FALSE(noncoherent(self->devid[0]));
	EXPECT_TRUE(noncoherent(self->devid[1]))
		TH_LOG("a bound device of an attached group does not count");
	EXPECT_EQ(0, _execute_wbinvd(self->fd));
	/* the override is refused while the group is attached */
	EXPECT_ERRNO(EBUSY, _test_no_snoop(self->fd, self->devid[1], 0, 0));

	/*
	 * A coherent page table must admit every device of the group: where
	 * the IOMMU cannot force snooping, device 1 would do non-coherent
	 * DMA through it, so the group cannot move there.
	 */
	pt = ioas_coh;
	if (sc) {
		test_ioctl_vfio_attach(self->dev[0], &pt);
		EXPECT_FALSE(noncoherent(self->devid[1]));
		EXPECT_ERRNO(EPERM, _execute_wbinvd(self->fd));
	} else {
		test_err_ioctl_vfio_attach(EINVAL, self->dev[0], ioas_coh);
		/* and stayed where it was */
		EXPECT_TRUE(noncoherent(self->devid[1]));
	}

	/* unbinding device 1 takes its part away */
	pt = ioas_nc;
	test_ioctl_vfio_attach(self->dev[0], &pt);
	EXPECT_TRUE(noncoherent(self->devid[1]));
	munmap((void *)self->bar[1], self->bar_len[1]);
	self->bar[1] = NULL;
	ASSERT_EQ(0, close(self->dev[1]));
	self->dev[1] = -1;
	EXPECT_ERRNO(EPERM, _execute_wbinvd(self->fd));
	test_ioctl_vfio_detach(self->dev[0]);
	test_ioctl_destroy(ioas_nc);
	test_ioctl_destroy(ioas_coh);
}

TEST_F(group, other_context_is_refused)
{
	char cdev[PATH_MAX];
	__u32 devid;
	int fd2, dev;

	/* the group's DMA belongs to this context now */
	open_iommufd_or_fail(&fd2);
	munmap((void *)self->bar[1], self->bar_len[1]);
	self->bar[1] = NULL;
	ASSERT_EQ(0, close(self->dev[1]));
	self->dev[1] = -1;
	ASSERT_EQ(0, vfio_cdev_path(self->bdf[1], cdev, sizeof(cdev)));
	dev = open(cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	/* the IOMMU core refuses a second owner of the group, as upstream */
	EXPECT_ERRNO(EPERM, _test_ioctl_vfio_bind(dev, fd2, &devid));
	EXPECT_EQ(0, _test_ioctl_vfio_bind(dev, self->fd, &devid));
	EXPECT_EQ(0, close(dev));
	EXPECT_EQ(0, close(fd2));
}

TEST_HARNESS_MAIN
