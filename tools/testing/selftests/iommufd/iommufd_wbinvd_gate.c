// SPDX-License-Identifier: GPL-2.0-only
/*
 * The `make run` demo of KVM's WBINVD gate: for the edu device as it probes
 * and as declared able to issue No-Snoop (the test-only override), attached
 * to an auto, a coherent and a noncoherent IOAS, print which box of the
 * coherency matrix that is, what the Rust KVM-VFIO device tells KVM, and
 * how many of a guest's WBINVDs reached the host's caches.  The IOMMU side
 * is the VM's (VT-d with snoop control on or off, virtio-iommu, which
 * cannot enforce coherency, ...); run it under a profile that can and one
 * that cannot to see all four boxes.
 *
 * Not a test (iommufd_kvm_vfio is): it still stops with a failure if
 * something it needs is missing, so the demo never prints a made-up row.
 */
#define _GNU_SOURCE
#include <linux/kvm_vfio_coherency.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"
#include "iommu_facts.h"
#include "kvm_wbinvd.h"

static const struct {
	const char *name;
	__u32 flags;
} modes[] = {
	{ "auto", 0 },
	{ "coherent", IOMMU_IOAS_ALLOC_COHERENT },
	{ "noncoherent", IOMMU_IOAS_ALLOC_NONCOHERENT },
};

static int kvfio_attr(int kdev, unsigned long req, __u32 group, __u64 attr,
		      void *addr)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (__u64)(uintptr_t)addr,
	};

	return ioctl(kdev, req, &a);
}

/* One row: the device's No-Snoop as @ns, attached to an IOAS of @mode. */
static void __row(struct __test_metadata *_metadata, int iommufd, int devfd,
		  __u32 dev_id, int kdev, struct guest *g, bool sc, bool ns,
		  unsigned int mode, bool force_off)
{
	struct iommu_test_device_no_snoop nscmd = {
		.size = sizeof(nscmd),
		.dev_id = dev_id,
		.no_snoop = ns,
	};
	struct kvm_vfio_coherency_state st = {};
	__u32 ioas = 0, pt, off = force_off;
	char attach[24] = "ok";
	int box = sc ? (ns ? 1 : 2) : (ns ? 3 : 4);
	__u64 flushes = 0;
	bool told = false;

	ASSERT_EQ(0, ioctl(iommufd, IOMMU_TEST_DEVICE_NO_SNOOP, &nscmd))
		TH_LOG("IOMMU_TEST_DEVICE_NO_SNOOP: %s (CONFIG_IOMMUFD_RS_TEST)",
		       strerror(errno));
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(iommufd, modes[mode].flags, &ioas));
	pt = ioas;
	if (_test_ioctl_vfio_attach(devfd, &pt)) {
		snprintf(attach, sizeof(attach), "%s",
			 errno == EINVAL ? "refused (EINVAL)" : strerror(errno));
		pt = 0;
	}
	ASSERT_EQ(0, kvfio_attr(kdev, KVM_SET_DEVICE_ATTR,
				KVM_DEV_VFIO_COHERENCY,
				KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE, &off));
	ASSERT_EQ(0, kvfio_attr(kdev, KVM_GET_DEVICE_ATTR,
				KVM_DEV_VFIO_COHERENCY,
				KVM_DEV_VFIO_COHERENCY_STATE, &st));
	told = st.flags & KVM_VFIO_COHERENCY_NONCOHERENT;
	flushes = __guest_wbinvds(_metadata, g);

	printf("  %d    %-6s %-15s %-12s %-22s %-9s %-10s %llu of %d\n", box,
	       sc ? "yes" : "no", ns ? "yes (override)" : "no (probed)",
	       modes[mode].name, attach,
	       st.flags & KVM_VFIO_COHERENCY_PROOF ? "yes" : "no",
	       force_off ? "forced off" : told ? "yes" : "no",
	       (unsigned long long)flushes, GUEST_WBINVDS);

	off = 0;
	ASSERT_EQ(0, kvfio_attr(kdev, KVM_SET_DEVICE_ATTR,
				KVM_DEV_VFIO_COHERENCY,
				KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE, &off));
	if (pt)
		ASSERT_EQ(0, _test_ioctl_vfio_detach(devfd));
	ASSERT_EQ(0, _test_ioctl_destroy(iommufd, ioas));
}

TEST(gate)
{
	struct iommu_hw_info info = { .size = sizeof(info) };
	struct guest g;
	char bdf[64];
	unsigned int m;
	__u32 dev_id = 0, kdev_fd = 0;
	int iommufd, devfd, ns;
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct iommu_facts f;
	bool sc;

	__probes_install(_metadata);
	__guest_create_wbinvd(_metadata, &g);
	ASSERT_EQ(0, ioctl(g.vm, KVM_CREATE_DEVICE, &cd))
		TH_LOG("KVM_CREATE_DEVICE(VFIO): %s", strerror(errno));
	kdev_fd = cd.fd;

	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, iommufd);
	devfd = open_edu_or_fail(bdf);
	iommu_facts_or_fail(bdf, &f);
	/* QEMU's order: the device file goes to KVM before it is bound */
	ASSERT_EQ(0, kvfio_attr(kdev_fd, KVM_SET_DEVICE_ATTR, KVM_DEV_VFIO_FILE,
				KVM_DEV_VFIO_FILE_ADD, &devfd));
	ASSERT_EQ(0, _test_ioctl_vfio_bind(devfd, iommufd, &dev_id));
	info.dev_id = dev_id;
	ASSERT_EQ(0, ioctl(iommufd, IOMMU_GET_HW_INFO, &info));
	sc = info.out_capabilities & IOMMU_HW_CAP_ENFORCE_COHERENCY;
	ASSERT_EQ(f.can_enforce, sc)
		TH_LOG("GET_HW_INFO disagrees with what %s can enforce",
		       f.name);

	printf("\nKVM's WBINVD gate, edu device %s behind %s %s, which %s "
	       "force snooping\n", bdf, f.name, f.unit,
	       sc ? "can" : "cannot");
	printf("  box  IOMMU  device          IOAS         attach                 "
	       "non-coh.  KVM told   host flushes\n"
	       "       forces No-Snoop                                            "
	       "DMA now   non-coh.   / guest WBINVDs\n");
	for (ns = 0; ns < 2; ns++)
		for (m = 0; m < ARRAY_SIZE(modes); m++)
			__row(_metadata, iommufd, devfd, dev_id, kdev_fd, &g, sc,
			      ns, m, false);
	/* the third state: the VMM turns real flushes off */
	__row(_metadata, iommufd, devfd, dev_id, kdev_fd, &g, sc, true,
	      2, true);
	printf("\n");

	EXPECT_EQ(0, close((int)kdev_fd));
	EXPECT_EQ(0, guest_destroy(&g));
	EXPECT_EQ(0, close(devfd));
	EXPECT_EQ(0, close(iommufd));
	probes_remove();
}

TEST_HARNESS_MAIN
