// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every capability bit IOMMU_GET_HW_INFO reports must stand for something
 * that works. A VMM acts on these bits (QEMU asks for a dirty-tracking HWPT
 * whenever IOMMU_HW_CAP_DIRTY_TRACKING is set, and fails to start the device
 * if that is refused), so a bit for a feature the driver does not implement
 * breaks real users. For each device of the test VM, this walks all 64 bits
 * of out_capabilities: a bit nobody defined fails, and each defined bit that
 * is set is followed by a use of the feature it announces, which must work.
 * For the bits that announce a feature, the converse holds too: while the
 * bit is clear, asking for the feature is refused.
 *
 * A missing device is a failure, not a skip.
 */
#include "iommufd_utils.h"
#include "vfio_utils.h"

/* PCI Express extended capability: Address Translation Services */
#define PCI_EXT_CAP_ID_ATS_ 0x0f
#define PCI_CFG_SPACE_SIZE_ 256
#define PCI_CFG_SPACE_EXP_SIZE_ 4096

static int _set_dirty_tracking(int fd, __u32 hwpt_id, bool on)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = hwpt_id,
	};

	return ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

/* Whether @bdf has an ATS capability, from its extended config space. */
static int pci_has_ats(const char *bdf, bool *has)
{
	char path[PATH_MAX];
	__u8 cfg[PCI_CFG_SPACE_EXP_SIZE_];
	unsigned int pos = PCI_CFG_SPACE_SIZE_, hops = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/config", PCI_SYSFS_DEVICES, bdf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	*has = false;
	/* conventional PCI: no extended space, so no ATS */
	if (n < PCI_CFG_SPACE_EXP_SIZE_)
		return 0;
	while (pos && pos + 4 <= sizeof(cfg) && hops++ < 512) {
		__u32 hdr;

		memcpy(&hdr, cfg + pos, sizeof(hdr));
		if (!hdr || hdr == 0xffffffff)
			break;
		if ((hdr & 0xffff) == PCI_EXT_CAP_ID_ATS_) {
			*has = true;
			break;
		}
		pos = hdr >> 20;
	}
	return 0;
}

FIXTURE(hw_caps)
{
	int fd;
	int dev;
	char bdf[64];
	__u32 devid;
	__u32 ioas_id;
};

FIXTURE_VARIANT(hw_caps)
{
	bool nic;
};

FIXTURE_VARIANT_ADD(hw_caps, edu)
{
	.nic = false,
};

FIXTURE_VARIANT_ADD(hw_caps, nic)
{
	.nic = true,
};

FIXTURE_SETUP(hw_caps)
{
	self->fd = -1;
	self->dev = -1;
	open_iommufd_or_fail(&self->fd);
	if (variant->nic)
		self->dev = open_nic_or_fail(self->bdf);
	else
		self->dev = open_edu_or_fail(self->bdf);
	test_ioctl_vfio_bind(self->dev, &self->devid);
	test_ioctl_ioas_alloc(&self->ioas_id);
}

FIXTURE_TEARDOWN(hw_caps)
{
	if (self->dev >= 0)
		EXPECT_EQ(0, close(self->dev));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

/* out_capabilities of the fixture's device */
static __u64 __caps(struct __test_metadata *_metadata, int fd, __u32 dev_id,
		    __u8 *max_pasid_log2)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
	};

	ASSERT_EQ(0, ioctl(fd, IOMMU_GET_HW_INFO, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO: %s", strerror(errno));
	if (max_pasid_log2)
		*max_pasid_log2 = cmd.out_max_pasid_log2;
	return cmd.out_capabilities;
}
#define caps_of(dev_id, pasid) __caps(_metadata, self->fd, dev_id, pasid)

/* a dirty-tracking HWPT can be made, and tracking switched on and off */
static void __check_dirty_tracking(struct __test_metadata *_metadata,
				   FIXTURE_DATA(hw_caps) * self, bool reported)
{
	__u32 hwpt_id = 0;
	int rc;

	rc = _test_ioctl_hwpt_alloc(self->fd, self->devid, self->ioas_id,
			 IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt_id);
	if (!reported) {
		EXPECT_ERRNO(EOPNOTSUPP, rc)
			TH_LOG("a dirty-tracking HWPT was made but "
			       "IOMMU_HW_CAP_DIRTY_TRACKING is not reported");
		if (!rc)
			test_ioctl_destroy(hwpt_id);
		return;
	}
	ASSERT_EQ(0, rc)
		TH_LOG("IOMMU_HW_CAP_DIRTY_TRACKING is reported, yet "
		       "HWPT_ALLOC(DIRTY_TRACKING) fails: %s",
		       strerror(errno));
	EXPECT_EQ(0, _set_dirty_tracking(self->fd, hwpt_id, true))
		TH_LOG("SET_DIRTY_TRACKING(on): %s", strerror(errno));
	EXPECT_EQ(0, _set_dirty_tracking(self->fd, hwpt_id, false))
		TH_LOG("SET_DIRTY_TRACKING(off): %s", strerror(errno));
	test_ioctl_destroy(hwpt_id);
}

/* an HWPT that makes the IOMMU force snooping can be made and attached */
static void __check_enforce(struct __test_metadata *_metadata,
			    FIXTURE_DATA(hw_caps) * self)
{
	__u32 hwpt_id, pt;

	ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, self->ioas_id,
				 IOMMU_HWPT_ALLOC_COHERENT, &hwpt_id))
		TH_LOG("IOMMU_HW_CAP_ENFORCE_COHERENCY is reported, yet "
		       "HWPT_ALLOC(COHERENT) fails: %s",
		       strerror(errno));
	pt = hwpt_id;
	test_ioctl_vfio_attach(self->dev, &pt);
	EXPECT_FALSE(!!(caps_of(self->devid, NULL) &
			IOMMU_HW_CAP_NONCOHERENT_DMA));
	test_ioctl_vfio_detach(self->dev);
	test_ioctl_destroy(hwpt_id);
}

/*
 * With the default mode the kernel gives the device an HWPT that enforces
 * coherency: attached to its IOAS, the device does no non-coherent DMA even
 * if it can issue No-Snoop.
 */
static void __check_default_coherent(struct __test_metadata *_metadata,
				     FIXTURE_DATA(hw_caps) * self)
{
	__u32 pt = self->ioas_id;

	test_ioctl_vfio_attach(self->dev, &pt);
	EXPECT_FALSE(!!(caps_of(self->devid, NULL) &
			IOMMU_HW_CAP_NONCOHERENT_DMA))
		TH_LOG("IOMMU_HW_CAP_DEFAULT_COHERENT is reported, yet the "
		       "default attach does non-coherent DMA");
	test_ioctl_vfio_detach(self->dev);
}

/* the live state: a cache flush is allowed exactly while it is reported */
static void __check_noncoherent_dma(struct __test_metadata *_metadata,
				    FIXTURE_DATA(hw_caps) * self,
				    bool reported)
{
	struct iommu_execute_wbinvd cmd = { .size = sizeof(cmd) };
	int rc = ioctl(self->fd, IOMMU_EXECUTE_WBINVD, &cmd);

	if (reported) {
		EXPECT_EQ(0, rc)
			TH_LOG("IOMMU_HW_CAP_NONCOHERENT_DMA is reported, "
			       "yet EXECUTE_WBINVD fails: %s",
			       strerror(errno));
	} else {
		EXPECT_ERRNO(EPERM, rc);
	}
}

TEST_F(hw_caps, every_bit_is_implemented)
{
	__u8 max_pasid_log2 = 0;
	__u64 caps = caps_of(self->devid, &max_pasid_log2);
	bool has_ats;
	int bit;

	TH_LOG("%s: capabilities 0x%016llx, max PASID log2 %u", self->bdf,
	       (unsigned long long)caps, max_pasid_log2);
	for (bit = 0; bit < 64; bit++) {
		__u64 b = 1ULL << bit;
		bool set = caps & b;

		switch (b) {
		case IOMMU_HW_CAP_DIRTY_TRACKING:
			__check_dirty_tracking(_metadata, self, set);
			break;
		case IOMMU_HW_CAP_PCI_PASID_EXEC:
		case IOMMU_HW_CAP_PCI_PASID_PRIV:
			/* PASID attributes only mean something with PASIDs */
			EXPECT_FALSE(set && !max_pasid_log2)
				TH_LOG("PASID bit %d without PASID support",
				       bit);
			break;
		case IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED:
			/* a claim about the device: check it against it */
			ASSERT_EQ(0, pci_has_ats(self->bdf, &has_ats));
			if (!set) {
				EXPECT_TRUE(has_ats)
					TH_LOG("ATS reported usable on a "
					       "device without ATS");
			}
			break;
		case IOMMU_HW_CAP_ENFORCE_COHERENCY:
			if (set)
				__check_enforce(_metadata, self);
			break;
		case IOMMU_HW_CAP_DEFAULT_COHERENT:
			EXPECT_FALSE(set && !(caps &
					      IOMMU_HW_CAP_ENFORCE_COHERENCY))
				TH_LOG("default coherent without an IOMMU "
				       "that can enforce it");
			if (set)
				__check_default_coherent(_metadata, self);
			break;
		case IOMMU_HW_CAP_NO_SNOOP:
			/* what probing the device found; nothing to use */
			break;
		case IOMMU_HW_CAP_NONCOHERENT_DMA:
			/* the device is bound, not attached */
			EXPECT_FALSE(set);
			__check_noncoherent_dma(_metadata, self, set);
			break;
		default:
			EXPECT_FALSE(set)
				TH_LOG("bit %d is reported but means nothing "
				       "to this kernel",
				       bit);
		}
	}
}

TEST_HARNESS_MAIN
