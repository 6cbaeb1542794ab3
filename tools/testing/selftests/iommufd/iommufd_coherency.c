// SPDX-License-Identifier: GPL-2.0-only
/*
 * The iommufd-rs cache-coherency extension, end to end on whichever IOMMU
 * the test VM puts in front of its devices.
 *
 * What is checked:
 *  - the coherency modes of IOMMU_IOAS_ALLOC and IOMMU_HWPT_ALLOC and the
 *    errnos of bad arguments;
 *  - the per-device report in IOMMU_GET_HW_INFO: the IOMMU driver's own
 *    report (its type and length, a VT-d report's registers) and, in
 *    out_capabilities, what the IOMMU can enforce, whether the device can
 *    issue No-Snoop, the default policy, and the live "non-coherent DMA
 *    now" bit, which must follow attach, replace and detach;
 *  - the 2x2 matrix of the design (IOMMU enforces? x device can No-Snoop?)
 *    for every IOAS/HWPT mode: whether attaching works and what the live
 *    bit says;
 *  - where the guest can read the I/O page tables (VT-d), the tables
 *    themselves: the leaf PTE of a mapped IOVA, read from the VT-d debugfs
 *    dump, has the snoop bit set exactly when the HWPT the device is
 *    attached to enforces coherency;
 *  - IOMMU_TEST_DEVICE_NO_SNOOP, the test-only override that makes a bound
 *    device count as No-Snoop capable.
 *
 * "The IOMMU can enforce coherency" is never taken from the driver under
 * test: iommu_facts.h derives it from sysfs, per IOMMU, and the report must
 * agree. The VM profiles (scripts/vm.sh) give:
 *
 *   sc-on   VT-d, ECAP.SC (bit 7) set      can enforce: boxes 1 and 2
 *   sc-off  VT-d, ECAP.SC clear            cannot:      boxes 3 and 4
 *   viommu  virtio-iommu                   cannot:      boxes 3 and 4
 *   (amd    AMD-Vi, FC in every PTE        can:         boxes 1 and 2)
 *
 * Neither emulated device (edu is conventional PCI, e1000e's "Enable No
 * Snoop" bit is read-only in QEMU) can issue No-Snoop, so the boxes with a
 * No-Snoop device are reached with the test override:
 *
 *   can enforce, override:    box 1 (coherent unless the HWPT is noncoherent)
 *   can enforce, no override: box 2 (always coherent)
 *   cannot, override:         box 3 (non-coherent; a coherent IOAS/HWPT
 *                             refuses it)
 *   cannot, no override:      box 4 (always coherent, attaches everywhere)
 *
 * Page tables: with CONFIG_INTEL_IOMMU_DEBUGFS every device behind VT-d has
 * /sys/kernel/debug/iommu/intel/<bdf>/domain_translation_struct, which
 * walks the I/O page table that the device's context entry points to right
 * now (legacy mode: the second-stage table). Each present leaf is one line
 *   "0x<IOVA >> 12, 13 hex digits> |" then the entries on the walk from the
 *   top: PML5E PML4E PDPE, then PDE and PTE when the leaf is below them,
 * so the last number on a line is the leaf. In a second-stage leaf bit 0
 * is Read, bit 1 Write, bit 11 SNP (snoop) and bits 51:12 the address.
 * debugfs is mounted if it is not; a missing file is a failure.
 * virtio-iommu keeps its page tables in the device (the host), and 7.3 has
 * no dump of AMD-Vi's: there the leaf checks have nothing to read, which
 * each fixture says in its log, and what the HWPT does is checked through
 * the kernel's report alone (that DMA really goes through the mappings is
 * iommufd_edu's part).
 *
 * Every test runs in its own process (kselftest harness) and binds the
 * devices afresh, so the override never outlives a test. Missing devices,
 * debugfs or the test-only command are failures, never skips.
 */
#include <stdio.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"
#include "iommu_facts.h"

#define PSZ ((__u64)PAGE_SIZE)

/* IOVAs for mappings made before and after a device attaches */
#define IOVA_PRE 0x1000000ULL
#define IOVA_POST 0x2000000ULL
/* pages of the fixture buffer */
#define BUF_PAGES 4

/* VT-d second-stage page-table entry bits */
#define VTD_SSPTE_R (1ULL << 0)
#define VTD_SSPTE_W (1ULL << 1)
#define VTD_SSPTE_SNP (1ULL << 11)
#define VTD_SSPTE_ADDR 0x000ffffffffff000ULL

#define DEBUGFS_MNT "/sys/kernel/debug"
#define VTD_DEBUGFS DEBUGFS_MNT "/iommu/intel"

/* every capability bit this kernel may report */
#define CAPS_COHERENCY                                                        \
	(IOMMU_HW_CAP_ENFORCE_COHERENCY | IOMMU_HW_CAP_NO_SNOOP |             \
	 IOMMU_HW_CAP_DEFAULT_COHERENT | IOMMU_HW_CAP_NONCOHERENT_DMA)
#define CAPS_UPSTREAM                                                         \
	((__u64)(IOMMU_HW_CAP_DIRTY_TRACKING | IOMMU_HW_CAP_PCI_PASID_EXEC |  \
		 IOMMU_HW_CAP_PCI_PASID_PRIV |                                \
		 IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED))

_Static_assert((__u32)IOMMU_IOAS_ALLOC_COHERENT ==
		       (__u32)IOMMU_HWPT_ALLOC_COHERENT &&
	       (__u32)IOMMU_IOAS_ALLOC_NONCOHERENT ==
		       (__u32)IOMMU_HWPT_ALLOC_NONCOHERENT,
	       "IOAS and HWPT coherency flags are expected to match");

/* ---------------------------------------------------------------------- */
/* the model: what the tests expect                                        */
/* ---------------------------------------------------------------------- */

enum coh_mode {
	MODE_AUTO,
	MODE_COHERENT,
	MODE_NONCOHERENT,
};

static const char *const mode_name[] = {
	[MODE_AUTO] = "auto",
	[MODE_COHERENT] = "coherent",
	[MODE_NONCOHERENT] = "noncoherent",
};

static __u32 ioas_flags_of(enum coh_mode m)
{
	switch (m) {
	case MODE_COHERENT:
		return IOMMU_IOAS_ALLOC_COHERENT;
	case MODE_NONCOHERENT:
		return IOMMU_IOAS_ALLOC_NONCOHERENT;
	default:
		return 0;
	}
}

static __u32 hwpt_flags_of(enum coh_mode m)
{
	switch (m) {
	case MODE_COHERENT:
		return IOMMU_HWPT_ALLOC_COHERENT;
	case MODE_NONCOHERENT:
		return IOMMU_HWPT_ALLOC_NONCOHERENT;
	default:
		return 0;
	}
}

/* what an HWPT in some mode does for a device */
enum enforce {
	ENF_NO,		/* made, does not force snooping */
	ENF_YES,	/* made, forces snooping (SNP in every leaf) */
	ENF_REFUSED,	/* a coherent mode refusing a box-3 device: EINVAL */
};

/*
 * @sc: the device's IOMMU can force snooping; @ns: the device can issue
 * No-Snoop. Auto enforces where the IOMMU can; noncoherent never does;
 * coherent enforces where the IOMMU can and otherwise accepts only devices
 * that cannot bypass the caches anyway.
 */
static enum enforce expected_enforce(enum coh_mode m, bool sc, bool ns)
{
	switch (m) {
	case MODE_COHERENT:
		if (sc)
			return ENF_YES;
		return ns ? ENF_REFUSED : ENF_NO;
	case MODE_NONCOHERENT:
		return ENF_NO;
	default:
		return sc ? ENF_YES : ENF_NO;
	}
}

static int box_of(bool sc, bool ns)
{
	return sc ? (ns ? 1 : 2) : (ns ? 3 : 4);
}

/* ---------------------------------------------------------------------- */
/* ioctl wrappers                                                          */
/* ---------------------------------------------------------------------- */

/*
 * IOMMU_GET_HW_INFO with a report buffer of @len bytes at @data. The whole
 * command, as the kernel left it, is returned in *@cmd.
 */
static int _test_get_hw_info(int fd, __u32 dev_id, void *data, __u32 len,
			     struct iommu_hw_info *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->size = sizeof(*cmd);
	cmd->dev_id = dev_id;
	cmd->data_len = len;
	cmd->data_uptr = (uintptr_t)data;
	return ioctl(fd, IOMMU_GET_HW_INFO, cmd);
}

/* out_capabilities of @dev_id; the call must work */
static __u64 __dev_caps(struct __test_metadata *_metadata, int fd,
			__u32 dev_id)
{
	struct iommu_hw_info cmd;

	ASSERT_EQ(0, _test_get_hw_info(fd, dev_id, NULL, 0, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(dev %u): %s", dev_id,
		       strerror(errno));
	return cmd.out_capabilities;
}

/*
 * GET_HW_INFO of @dev_id with room for any report: the IOMMU driver's
 * report must be the one the IOMMU @f in front of the device gives (type
 * and length; none at all from virtio-iommu, which has no hw_info op), the
 * rest of the buffer zeroed, and a VT-d report must carry the ECAP register
 * sysfs shows. The capabilities go to *@caps (if non-NULL).
 */
static void __expect_report(struct __test_metadata *_metadata, int fd,
			    __u32 dev_id, const struct iommu_facts *f,
			    __u64 *caps)
{
	union {
		struct iommu_hw_info_vtd vtd;
		struct iommu_hw_info_amd amd;
		__u8 raw[128];
	} data;
	struct iommu_hw_info cmd;
	unsigned int i;

	memset(&data, 0xa5, sizeof(data));
	ASSERT_EQ(0, _test_get_hw_info(fd, dev_id, &data, sizeof(data), &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(dev %u): %s", dev_id,
		       strerror(errno));
	EXPECT_EQ(f->hw_info_type, cmd.out_data_type)
		TH_LOG("device %u is behind %s (%s): report type %u, wanted %u",
		       dev_id, f->name, f->unit, cmd.out_data_type,
		       f->hw_info_type);
	EXPECT_EQ(f->hw_info_len, cmd.data_len)
		TH_LOG("device %u: report of %u bytes, %s gives %u", dev_id,
		       cmd.data_len, f->name, f->hw_info_len);
	for (i = f->hw_info_len; i < sizeof(data); i++)
		EXPECT_EQ(0, data.raw[i])
			TH_LOG("byte %u past the %u byte report not zeroed", i,
			       f->hw_info_len);
	if (f->kind == IOMMU_KIND_VTD &&
	    cmd.out_data_type == IOMMU_HW_INFO_TYPE_INTEL_VTD) {
		EXPECT_EQ(f->vtd_ecap, data.vtd.ecap_reg)
			TH_LOG("the report's ECAP differs from sysfs's (%s)",
			       f->unit);
		EXPECT_EQ(0U, data.vtd.__reserved);
	}
	if (caps)
		*caps = cmd.out_capabilities;
}

#define test_no_snoop(dev_id, val)                                            \
	ASSERT_EQ(0, _test_no_snoop(self->fd, dev_id, val, 0))                \
		TH_LOG("IOMMU_TEST_DEVICE_NO_SNOOP(dev %u, %u): %s%s",        \
		       (unsigned int)(dev_id), (unsigned int)(val),           \
		       strerror(errno),                                       \
		       errno == ENOTTY ? " (kernel built without "            \
					 "CONFIG_IOMMUFD_RS_TEST?)" : "")

/* IOMMU_IOAS_ALLOC in coherency mode @m */
#define test_ioas_alloc_mode(m, idp)                                          \
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->fd, ioas_flags_of(m), idp)) \
		TH_LOG("IOMMU_IOAS_ALLOC(%s): %s", mode_name[m],              \
		       strerror(errno))

/* IOMMU_HWPT_ALLOC of *@cmd (size filled in); *@cmd holds the answer. */
static int _test_hwpt_alloc(int fd, struct iommu_hwpt_alloc *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(fd, IOMMU_HWPT_ALLOC, cmd);
}

#define expect_hwpt_alloc_err(_errno, ...)                                    \
	({                                                                    \
		struct iommu_hwpt_alloc __c = { __VA_ARGS__ };                \
		EXPECT_ERRNO(_errno, _test_hwpt_alloc(self->fd, &__c))        \
			TH_LOG("IOMMU_HWPT_ALLOC { %s }", #__VA_ARGS__);      \
	})

/* ---------------------------------------------------------------------- */
/* checks of the coherency report                                          */
/* ---------------------------------------------------------------------- */

/*
 * The coherency bits of @dev_id must be: ENFORCE_COHERENCY = @sc,
 * DEFAULT_COHERENT = @sc, NO_SNOOP = @ns, NONCOHERENT_DMA = @nc. @when says
 * where the test is, for the log.
 */
static void __expect_coherency(struct __test_metadata *_metadata, int fd,
			       __u32 dev_id, bool sc, bool ns, bool nc,
			       const char *when)
{
	__u64 caps = __dev_caps(_metadata, fd, dev_id);

	EXPECT_EQ(sc, !!(caps & IOMMU_HW_CAP_ENFORCE_COHERENCY))
		TH_LOG("%s: ENFORCE_COHERENCY (caps 0x%llx)", when,
		       (unsigned long long)caps);
	EXPECT_EQ(sc, !!(caps & IOMMU_HW_CAP_DEFAULT_COHERENT))
		TH_LOG("%s: DEFAULT_COHERENT (caps 0x%llx)", when,
		       (unsigned long long)caps);
	EXPECT_EQ(ns, !!(caps & IOMMU_HW_CAP_NO_SNOOP))
		TH_LOG("%s: NO_SNOOP (caps 0x%llx)", when,
		       (unsigned long long)caps);
	EXPECT_EQ(nc, !!(caps & IOMMU_HW_CAP_NONCOHERENT_DMA))
		TH_LOG("%s: NONCOHERENT_DMA should be %s (caps 0x%llx)", when,
		       nc ? "set" : "clear", (unsigned long long)caps);
}
#define expect_coherency(dev_id, ns, nc, when)                                \
	__expect_coherency(_metadata, self->fd, dev_id, self->sc, ns, nc,     \
			   when)

/* ---------------------------------------------------------------------- */
/* the page tables: the VT-d dump                                          */
/* ---------------------------------------------------------------------- */

/* Whether the page tables of @bdf's IOMMU can be read here (VT-d only). */
static bool __pt_readable(struct __test_metadata *_metadata, const char *bdf)
{
	struct iommu_facts f;

	iommu_facts_or_fail(bdf, &f);
	return f.pt_dump;
}

/* Make sure the VT-d debugfs directory is reachable, mounting debugfs. */
static void __vtd_debugfs_ready(struct __test_metadata *_metadata)
{
	if (!access(VTD_DEBUGFS, F_OK))
		return;
	if (mount("debugfs", DEBUGFS_MNT, "debugfs", 0, NULL) &&
	    errno != EBUSY)
		TH_LOG("mount debugfs on %s: %s", DEBUGFS_MNT,
		       strerror(errno));
	ASSERT_EQ(0, access(VTD_DEBUGFS, F_OK))
		TH_LOG("%s missing: the test kernel needs "
		       "CONFIG_INTEL_IOMMU_DEBUGFS=y and VT-d enabled",
		       VTD_DEBUGFS);
}

struct leaf_lookup {
	bool header;	/* a "Device ..." line: the context entry is present */
	bool scalable;	/* the header names a PASID: scalable mode */
	bool bdf_ok;	/* the header names the device we asked for */
	bool found;	/* a leaf covers the IOVA */
	__u64 leaf;	/* that leaf entry */
	__u64 leaf_iova; /* first IOVA the leaf maps */
	__u64 leaf_size; /* bytes it maps */
	unsigned int leaves; /* leaf lines in the dump */
};

/*
 * Look @iova up in the dump of the page table @bdf's context entry uses.
 * Fails the test if the file cannot be read.
 */
static void __lookup_leaf(struct __test_metadata *_metadata, const char *bdf,
			  __u64 iova, struct leaf_lookup *res)
{
	char path[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	memset(res, 0, sizeof(*res));
	__vtd_debugfs_ready(_metadata);
	snprintf(path, sizeof(path), VTD_DEBUGFS "/%s/domain_translation_struct",
		 bdf);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f)
		TH_LOG("open %s: %s (CONFIG_INTEL_IOMMU_DEBUGFS=y creates it "
		       "for every device behind VT-d)",
		       path, strerror(errno));

	while (getline(&line, &cap, f) > 0) {
		__u64 ent[8], pfn;
		char *p, *end;
		int n = 0;

		if (!strncmp(line, "Device ", 7)) {
			res->header = true;
			res->scalable = !!strstr(line, "pasid");
			res->bdf_ok = !!strstr(line, bdf);
			continue;
		}
		p = strchr(line, '|');
		if (!p)
			continue;
		pfn = strtoull(line, &end, 16);
		if (end == line)
			continue;
		for (p++; n < 8; n++) {
			ent[n] = strtoull(p, &end, 16);
			if (end == p)
				break;
			p = end;
		}
		/* PML5E PML4E PDPE [PDE [PTE]]: 3 numbers = 1G leaf, 5 = 4K */
		if (n < 3 || n > 5)
			continue;
		res->leaves++;
		if (res->found)
			continue;
		res->leaf_size = 1ULL << (12 + 9 * (5 - n));
		res->leaf_iova = pfn << 12;
		if (iova >= res->leaf_iova &&
		    iova - res->leaf_iova < res->leaf_size) {
			res->found = true;
			res->leaf = ent[n - 1];
		}
	}
	free(line);
	fclose(f);
}

/* PFN of the page at @va from /proc/self/pagemap; 0 when not available */
static __u64 pagemap_pfn(const void *va)
{
	__u64 ent = 0;
	off_t off = (off_t)((uintptr_t)va / PAGE_SIZE) * sizeof(ent);
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent), off) != sizeof(ent))
		ent = 0;
	close(fd);
	if (!(ent & (1ULL << 63)))
		return 0;
	return ent & ((1ULL << 55) - 1);
}

/*
 * The device @bdf must be translated through a legacy-mode table whose
 * leaf for @iova maps @va read/write, with SNP set exactly when @snp.
 * Without readable tables (virtio-iommu, AMD-Vi) only the expectation is
 * checked: it may not ask for snooping from an IOMMU that cannot force it.
 */
static void __expect_leaf(struct __test_metadata *_metadata, const char *bdf,
			  __u64 iova, const void *va, bool snp,
			  const char *when)
{
	struct iommu_facts f;
	struct leaf_lookup r;
	__u64 pfn, pa;

	iommu_facts_or_fail(bdf, &f);
	if (!f.pt_dump) {
		EXPECT_TRUE(!snp || f.can_enforce)
			TH_LOG("%s: %s cannot force snooping, yet the HWPT "
			       "is expected to", when, f.name);
		return;
	}
	__lookup_leaf(_metadata, bdf, iova, &r);
	ASSERT_TRUE(r.header)
		TH_LOG("%s: the VT-d dump shows no page table for %s, which "
		       "should be attached", when, bdf);
	EXPECT_TRUE(r.bdf_ok)
		TH_LOG("%s: the dump's header does not name %s", when, bdf);
	ASSERT_FALSE(r.scalable)
		TH_LOG("%s: VT-d runs in scalable mode; these checks read "
		       "legacy-mode second-stage entries", when);
	ASSERT_TRUE(r.found)
		TH_LOG("%s: no leaf PTE for IOVA 0x%llx among %u in the dump",
		       when, (unsigned long long)iova, r.leaves);

	TH_LOG("%s: IOVA 0x%llx leaf 0x%016llx (%llu KiB), SNP %s", when,
	       (unsigned long long)iova, (unsigned long long)r.leaf,
	       (unsigned long long)(r.leaf_size >> 10),
	       (r.leaf & VTD_SSPTE_SNP) ? "set" : "clear");
	EXPECT_EQ(VTD_SSPTE_R | VTD_SSPTE_W,
		  r.leaf & (VTD_SSPTE_R | VTD_SSPTE_W))
		TH_LOG("%s: leaf 0x%llx is not read/write", when,
		       (unsigned long long)r.leaf);
	EXPECT_EQ(snp, !!(r.leaf & VTD_SSPTE_SNP))
		TH_LOG("%s: SNP (bit 11) of leaf 0x%016llx should be %s", when,
		       (unsigned long long)r.leaf, snp ? "set" : "clear");

	/* it is our page: the address matches the process's own mapping */
	pfn = pagemap_pfn(va);
	if (!pfn) {
		TH_LOG("%s: no PFN in /proc/self/pagemap, address not checked",
		       when);
		return;
	}
	pa = (r.leaf & VTD_SSPTE_ADDR) +
	     ((iova - r.leaf_iova) & ~(PSZ - 1) & (r.leaf_size - 1));
	EXPECT_EQ(pfn << 12, pa)
		TH_LOG("%s: leaf maps 0x%llx, the buffer is at 0x%llx", when,
		       (unsigned long long)pa,
		       (unsigned long long)(pfn << 12));
}
#define expect_leaf(bdf, iova, va, snp, when) \
	__expect_leaf(_metadata, bdf, iova, va, snp, when)

/*
 * No leaf covers @iova in the table @bdf is translated through (if any),
 * where the tables can be read.
 */
#define expect_no_leaf(bdf, iova, when)                                       \
	({                                                                    \
		struct leaf_lookup __r = { .found = false };                  \
		if (__pt_readable(_metadata, bdf))                            \
			__lookup_leaf(_metadata, bdf, iova, &__r);            \
		EXPECT_FALSE(__r.found)                                       \
			TH_LOG("%s: IOVA 0x%llx still has leaf 0x%llx", when, \
			       (unsigned long long)(iova),                    \
			       (unsigned long long)__r.leaf);                 \
	})

/* ---------------------------------------------------------------------- */
/* fixtures: the edu device bound, nothing attached                       */
/* ---------------------------------------------------------------------- */

/* Says in the log what the IOMMU @f lets the tests see and expect. */
static void log_iommu(struct __test_metadata *_metadata, const char *what,
		      const char *bdf, const struct iommu_facts *f)
{
	TH_LOG("%s %s: %s %s, %s enforce coherency; leaf PTEs %s", what, bdf,
	       f->name, f->unit, f->can_enforce ? "can" : "cannot",
	       f->pt_dump ? "read from debugfs" :
			    "not readable here, the report alone is checked");
}

/*
 * Common setup: /dev/iommu, the edu device bound to it, what its IOMMU
 * can enforce (iommu_facts.h), a populated buffer of BUF_PAGES pages.
 */
#define coh_setup()                                                           \
	({                                                                    \
		self->fd = -1;                                                \
		self->dev = -1;                                               \
		self->buf = MAP_FAILED;                                       \
		ASSERT_EQ(4096UL, PAGE_SIZE)                                  \
			TH_LOG("VT-d leaves are read as 4 KiB pages");        \
		open_iommufd_or_fail(&self->fd);                              \
		self->dev = open_edu_or_fail(self->bdf);                      \
		iommu_facts_or_fail(self->bdf, &self->iommu);                 \
		test_ioctl_vfio_bind(self->dev, &self->devid);                \
		self->sc = self->iommu.can_enforce;                           \
		self->buf = mmap(NULL, BUF_PAGES * PSZ,                       \
				 PROT_READ | PROT_WRITE,                      \
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);         \
		ASSERT_NE(MAP_FAILED, self->buf);                             \
		memset(self->buf, 0x3c, BUF_PAGES * PSZ);                     \
	})

#define coh_teardown()                                                        \
	({                                                                    \
		if (self->dev >= 0)                                           \
			EXPECT_EQ(0, close(self->dev));                       \
		if (self->fd >= 0)                                            \
			EXPECT_EQ(0, close(self->fd));                        \
		self->dev = self->fd = -1;                                    \
		if (self->buf != MAP_FAILED)                                  \
			munmap(self->buf, BUF_PAGES * PSZ);                   \
	})

/* page @n of the fixture buffer */
#define PAGE_N(n) (self->buf + (n) * PSZ)

FIXTURE(coherency)
{
	int fd;
	int dev;	/* edu, bound */
	char bdf[64];
	__u32 devid;
	struct iommu_facts iommu;	/* of edu's IOMMU */
	bool sc;	/* that IOMMU can enforce coherency */
	__u8 *buf;
};

FIXTURE_SETUP(coherency)
{
	coh_setup();
	log_iommu(_metadata, "edu", self->bdf, &self->iommu);
}

FIXTURE_TEARDOWN(coherency)
{
	coh_teardown();
}

/* --- GET_HW_INFO ------------------------------------------------------ */

/*
 * The report: size and type with data_len 0, then the IOMMU driver's report
 * as its IOMMU gives it (see __expect_report), the same again when its type
 * is asked for explicitly, and the coherency bits of an unattached edu
 * device (box 2 or 4: ENFORCE = DEFAULT = what the IOMMU can, no No-Snoop,
 * no live state).
 */
TEST_F(coherency, hw_info_report)
{
	const struct iommu_facts *f = &self->iommu;
	struct iommu_hw_info cmd;
	__u64 caps, caps2 = 0;

	/* size query */
	ASSERT_EQ(0, _test_get_hw_info(self->fd, self->devid, NULL, 0, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(data_len 0): %s", strerror(errno));
	EXPECT_EQ(f->hw_info_len, cmd.data_len);
	EXPECT_EQ(f->hw_info_type, cmd.out_data_type);
	caps = cmd.out_capabilities;

	/* a large buffer: the report, then zeroes */
	__expect_report(_metadata, self->fd, self->devid, f, &caps2);
	EXPECT_EQ(caps, caps2);
	TH_LOG("%s %s: report type %u, %u bytes, caps 0x%016llx", f->name,
	       f->unit, f->hw_info_type, f->hw_info_len,
	       (unsigned long long)caps);
	if (f->kind == IOMMU_KIND_VTD)
		EXPECT_EQ(self->sc, !!(f->vtd_ecap & VTD_ECAP_SC));

	/*
	 * Asking for a format explicitly: the IOMMU's own gives the same; a
	 * driver with a report of its own refuses another's (VT-d), and one
	 * without (virtio-iommu) answers "none" whatever is asked.
	 */
	memset(&cmd, 0, sizeof(cmd));
	cmd.size = sizeof(cmd);
	cmd.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
	cmd.dev_id = self->devid;
	cmd.in_data_type = f->hw_info_type != IOMMU_HW_INFO_TYPE_NONE ?
				   f->hw_info_type :
				   IOMMU_HW_INFO_TYPE_INTEL_VTD;
	ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(INPUT_TYPE %u): %s",
		       cmd.in_data_type, strerror(errno));
	EXPECT_EQ(f->hw_info_type, cmd.out_data_type);
	EXPECT_EQ(f->hw_info_len, cmd.data_len);
	memset(&cmd, 0, sizeof(cmd));
	cmd.size = sizeof(cmd);
	cmd.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
	cmd.dev_id = self->devid;
	cmd.in_data_type = IOMMU_HW_INFO_TYPE_ARM_SMMUV3;
	if (f->hw_info_type == IOMMU_HW_INFO_TYPE_NONE) {
		ASSERT_EQ(0, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd))
			TH_LOG("IOMMU_GET_HW_INFO(INPUT_TYPE SMMUV3) behind "
			       "%s: %s", f->name, strerror(errno));
		EXPECT_EQ((__u32)IOMMU_HW_INFO_TYPE_NONE, cmd.out_data_type);
		EXPECT_EQ(0U, cmd.data_len);
	} else {
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO,
					       &cmd))
			TH_LOG("an SMMUv3 report from %s", f->name);
	}

	/* the coherency bits against the IOMMU */
	EXPECT_EQ(self->sc, !!(caps & IOMMU_HW_CAP_ENFORCE_COHERENCY))
		TH_LOG("ENFORCE_COHERENCY must say what %s can (%s)", f->name,
		       self->sc ? "enforce" : "nothing");
	EXPECT_EQ(!!(caps & IOMMU_HW_CAP_ENFORCE_COHERENCY),
		  !!(caps & IOMMU_HW_CAP_DEFAULT_COHERENT))
		TH_LOG("the auto policy enforces wherever the IOMMU can");
	EXPECT_FALSE(!!(caps & IOMMU_HW_CAP_NO_SNOOP))
		TH_LOG("edu is conventional PCI: it cannot issue No-Snoop");
	EXPECT_FALSE(!!(caps & IOMMU_HW_CAP_NONCOHERENT_DMA))
		TH_LOG("an unattached device does no DMA at all");
	EXPECT_EQ(0ULL, caps & ~(CAPS_COHERENCY | CAPS_UPSTREAM))
		TH_LOG("unknown capability bits 0x%llx",
		       (unsigned long long)(caps &
					    ~(CAPS_COHERENCY | CAPS_UPSTREAM)));
}

/* Bad arguments: reserved bytes, unknown flags, ids that are not devices. */
TEST_F(coherency, hw_info_bad_args)
{
	struct iommu_hw_info cmd;
	__u32 ioas_id;
	int i;

	for (i = 0; i < 3; i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.size = sizeof(cmd);
		cmd.dev_id = self->devid;
		cmd.__reserved[i] = 1;
		EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO,
					       &cmd))
			TH_LOG("__reserved[%d] = 1", i);
	}

	memset(&cmd, 0, sizeof(cmd));
	cmd.size = sizeof(cmd);
	cmd.dev_id = self->devid;
	cmd.flags = 1U << 1;
	EXPECT_ERRNO(EOPNOTSUPP, ioctl(self->fd, IOMMU_GET_HW_INFO, &cmd));

	test_ioctl_ioas_alloc(&ioas_id);
	EXPECT_ERRNO(ENOENT, _test_get_hw_info(self->fd, 0, NULL, 0, &cmd));
	EXPECT_ERRNO(ENOENT,
		     _test_get_hw_info(self->fd, 0xdead, NULL, 0, &cmd));
	EXPECT_ERRNO(ENOENT,
		     _test_get_hw_info(self->fd, ioas_id, NULL, 0, &cmd))
		TH_LOG("an IOAS id is not a device");
	test_ioctl_destroy(ioas_id);
}

/* --- IOAS_ALLOC ------------------------------------------------------- */

/* Auto, coherent and noncoherent work; both is EINVAL; other bits EOPNOTSUPP. */
TEST_F(coherency, ioas_alloc_modes)
{
	__u32 ids[3], id = 0;
	int bit;

	test_ioas_alloc_mode(MODE_AUTO, &ids[0]);
	test_ioas_alloc_mode(MODE_COHERENT, &ids[1]);
	test_ioas_alloc_mode(MODE_NONCOHERENT, &ids[2]);
	EXPECT_NE(ids[0], ids[1]);
	EXPECT_NE(ids[1], ids[2]);
	EXPECT_NE(ids[0], ids[2]);

	test_err_ioctl_ioas_alloc(EINVAL, IOMMU_IOAS_ALLOC_COHERENT |
						  IOMMU_IOAS_ALLOC_NONCOHERENT,
				  &id);
	for (bit = 0; bit < 30; bit++) {
		test_err_ioctl_ioas_alloc(EOPNOTSUPP, 1U << bit, &id)
			TH_LOG("IOAS_ALLOC flag bit %d", bit);
	}
	test_err_ioctl_ioas_alloc(EOPNOTSUPP, IOMMU_IOAS_ALLOC_COHERENT | 1,
				  &id);
	test_err_ioctl_ioas_alloc(EOPNOTSUPP,
				  IOMMU_IOAS_ALLOC_NONCOHERENT | (1U << 29),
				  &id);
	EXPECT_EQ(0U, id) TH_LOG("a failed IOAS_ALLOC wrote an id");

	/* the failures left nothing behind */
	EXPECT_EQ(3, _test_count_ioas(self->fd, 256));
	test_ioctl_destroy(ids[0]);
	test_ioctl_destroy(ids[1]);
	test_ioctl_destroy(ids[2]);
	EXPECT_EQ(0, _test_count_ioas(self->fd, 256));
}

/* --- HWPT_ALLOC ------------------------------------------------------- */

TEST_F(coherency, hwpt_alloc_bad_args)
{
	__u64 data[2] = { 0, 0 };
	__u32 ioas_id, hwpt_id, other;
	int bit;

	test_ioctl_ioas_alloc(&ioas_id);
	ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id, 0, &hwpt_id))
		TH_LOG("IOMMU_HWPT_ALLOC: %s", strerror(errno));

	/* both coherency modes at once */
	expect_hwpt_alloc_err(EINVAL, .dev_id = self->devid, .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_COHERENT |
				       IOMMU_HWPT_ALLOC_NONCOHERENT);
	/* upstream flags this driver does not offer */
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_NEST_PARENT);
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_FAULT_ID_VALID);
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_PASID);
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_COHERENT |
				       IOMMU_HWPT_ALLOC_NEST_PARENT);
	/* bits nobody defines */
	for (bit = 4; bit < 30; bit++) {
		expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
				      .pt_id = ioas_id, .flags = 1U << bit);
	}
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id,
			      .flags = IOMMU_HWPT_ALLOC_NONCOHERENT | (1U << 29));
	/* reserved word */
	expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
			      .pt_id = ioas_id, .__reserved = 1);
	/* data of type NONE */
	expect_hwpt_alloc_err(EINVAL, .dev_id = self->devid, .pt_id = ioas_id,
			      .data_type = IOMMU_HWPT_DATA_NONE,
			      .data_len = sizeof(data),
			      .data_uptr = (uintptr_t)data);
	/* dev_id that is not a device */
	expect_hwpt_alloc_err(ENOENT, .dev_id = 0, .pt_id = ioas_id);
	expect_hwpt_alloc_err(ENOENT, .dev_id = 0xdead, .pt_id = ioas_id);
	expect_hwpt_alloc_err(ENOENT, .dev_id = ioas_id, .pt_id = ioas_id);
	expect_hwpt_alloc_err(ENOENT, .dev_id = hwpt_id, .pt_id = ioas_id);
	/* pt_id that is not an IOAS */
	expect_hwpt_alloc_err(EINVAL, .dev_id = self->devid, .pt_id = 0);
	expect_hwpt_alloc_err(EINVAL, .dev_id = self->devid, .pt_id = 0xdead);
	expect_hwpt_alloc_err(EINVAL, .dev_id = self->devid,
			      .pt_id = self->devid);

	/*
	 * A paging HWPT as pt_id asks for a nested HWPT over it, which needs
	 * a nesting parent (this driver makes none): as upstream, EOPNOTSUPP
	 * without driver data, for flags a nested HWPT cannot have, or when
	 * the IOMMU driver has no nested domains; EINVAL (not a nesting
	 * parent) for a request that is otherwise well formed.
	 */
	{
		struct iommu_hwpt_vtd_s1 s1 = { .addr_width = 48 };

		expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
				      .pt_id = hwpt_id);
		expect_hwpt_alloc_err(EOPNOTSUPP, .dev_id = self->devid,
				      .pt_id = hwpt_id,
				      .flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
				      .data_type = IOMMU_HWPT_DATA_VTD_S1,
				      .data_len = sizeof(s1),
				      .data_uptr = (uintptr_t)&s1);
		expect_hwpt_alloc_err(self->iommu.nesting ? EINVAL : EOPNOTSUPP,
				      .dev_id = self->devid, .pt_id = hwpt_id,
				      .data_type = IOMMU_HWPT_DATA_VTD_S1,
				      .data_len = sizeof(s1),
				      .data_uptr = (uintptr_t)&s1);
	}

	/* the valid modes still work, and each failure left nothing behind */
	ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id,
				 IOMMU_HWPT_ALLOC_COHERENT, &other))
		TH_LOG("HWPT_ALLOC(COHERENT) for a box %d device: %s",
		       box_of(self->sc, false), strerror(errno));
	test_ioctl_destroy(other);
	ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id,
				 IOMMU_HWPT_ALLOC_NONCOHERENT, &other))
		TH_LOG("HWPT_ALLOC(NONCOHERENT): %s", strerror(errno));
	test_ioctl_destroy(other);
	test_err_ioctl_destroy(EBUSY, ioas_id);
	test_ioctl_destroy(hwpt_id);
	test_ioctl_destroy(ioas_id);
}

/*
 * A coherent HWPT made while the device could not issue No-Snoop stays
 * coherent: without SC it does not enforce, so it refuses the same device
 * once the override makes it No-Snoop capable; with SC it enforces and
 * takes it.
 */
TEST_F(coherency, coherent_hwpt_refuses_no_snoop_later)
{
	__u32 ioas_id, hwpt_id, pt;

	test_ioas_alloc_mode(MODE_AUTO, &ioas_id);
	test_ioctl_ioas_map_fixed(ioas_id, PAGE_N(0), PSZ, IOVA_PRE);
	ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id,
				 IOMMU_HWPT_ALLOC_COHERENT, &hwpt_id))
		TH_LOG("HWPT_ALLOC(COHERENT), box %d: %s",
		       box_of(self->sc, false), strerror(errno));

	/* box 2 or 4: attaches, coherent either way */
	pt = hwpt_id;
	test_ioctl_vfio_attach(self->dev, &pt);
	EXPECT_EQ(hwpt_id, pt);
	expect_coherency(self->devid, false, false, "coherent HWPT, probed");
	expect_leaf(self->bdf, IOVA_PRE, PAGE_N(0), self->sc,
		    "coherent HWPT, probed");
	test_ioctl_vfio_detach(self->dev);

	/* box 1 or 3 */
	test_no_snoop(self->devid, 1);
	pt = hwpt_id;
	if (self->sc) {
		test_ioctl_vfio_attach(self->dev, &pt);
		expect_coherency(self->devid, true, false,
				 "box 1 on an enforcing coherent HWPT");
		expect_leaf(self->bdf, IOVA_PRE, PAGE_N(0), true,
			    "box 1 on an enforcing coherent HWPT");
		test_ioctl_vfio_detach(self->dev);
	} else {
		EXPECT_ERRNO(EINVAL, _test_ioctl_vfio_attach(self->dev, &pt))
			TH_LOG("box 3 on a non-enforcing coherent HWPT");
		expect_coherency(self->devid, true, false,
				 "after the refused attach");
		expect_no_leaf(self->bdf, IOVA_PRE, "after the refused attach");
	}
	/* the HWPT and the IOAS are still intact and can go */
	test_ioctl_destroy(hwpt_id);
	test_ioctl_destroy(ioas_id);
}

/* --- the test override ------------------------------------------------ */

TEST_F(coherency, no_snoop_override)
{
	__u32 ioas_id, nc_ioas, pt;

	/* probed value */
	expect_coherency(self->devid, false, false, "probed");

	/* bad arguments change nothing */
	EXPECT_ERRNO(EOPNOTSUPP, _test_no_snoop(self->fd, self->devid, 1, 1));
	EXPECT_ERRNO(EOPNOTSUPP,
		     _test_no_snoop(self->fd, self->devid, 1, 1U << 31));
	EXPECT_ERRNO(EINVAL, _test_no_snoop(self->fd, self->devid, 2, 0));
	EXPECT_ERRNO(EINVAL,
		     _test_no_snoop(self->fd, self->devid, 0xffffffff, 0));
	test_ioctl_ioas_alloc(&ioas_id);
	EXPECT_ERRNO(ENOENT, _test_no_snoop(self->fd, 0xdead, 1, 0));
	EXPECT_ERRNO(ENOENT, _test_no_snoop(self->fd, ioas_id, 1, 0));
	expect_coherency(self->devid, false, false, "after bad overrides");

	/* declared capable; the IOMMU side and the default do not move */
	test_no_snoop(self->devid, 1);
	expect_coherency(self->devid, true, false, "override on, unattached");
	test_no_snoop(self->devid, 1);
	expect_coherency(self->devid, true, false, "override on twice");

	/* attached: the override is frozen, both ways */
	pt = ioas_id;
	test_ioctl_vfio_attach(self->dev, &pt);
	EXPECT_ERRNO(EBUSY, _test_no_snoop(self->fd, self->devid, 0, 0));
	EXPECT_ERRNO(EBUSY, _test_no_snoop(self->fd, self->devid, 1, 0));
	expect_coherency(self->devid, true, !self->sc,
			 "override on, auto IOAS");

	/* it survives a detach */
	test_ioctl_vfio_detach(self->dev);
	expect_coherency(self->devid, true, false, "override on, detached");

	/* 0 goes back to the probed value: no live state even on noncoherent */
	test_no_snoop(self->devid, 0);
	expect_coherency(self->devid, false, false, "override off");
	test_no_snoop(self->devid, 0);
	test_ioas_alloc_mode(MODE_NONCOHERENT, &nc_ioas);
	pt = nc_ioas;
	test_ioctl_vfio_attach(self->dev, &pt);
	expect_coherency(self->devid, false, false,
			 "override off, noncoherent IOAS");
	test_ioctl_vfio_detach(self->dev);

	test_ioctl_destroy(nc_ioas);
	test_ioctl_destroy(ioas_id);
}

/*
 * Without CAP_SYS_ADMIN the override is EPERM. A child drops the
 * capability from its effective set and tries; GET_HW_INFO still works
 * there. The device's state must not change.
 */
TEST_F(coherency, no_snoop_override_needs_cap_sys_admin)
{
	int status = 0;
	pid_t pid;

	ASSERT_EQ(1, have_effective_cap(CAP_SYS_ADMIN))
		TH_LOG("the tests run as root with CAP_SYS_ADMIN");

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct iommu_hw_info cmd;

		if (set_effective_cap(CAP_SYS_ADMIN, false) ||
		    have_effective_cap(CAP_SYS_ADMIN) != 0)
			_exit(10);
		if (_test_get_hw_info(self->fd, self->devid, NULL, 0, &cmd))
			_exit(11);
		if (!_test_no_snoop(self->fd, self->devid, 1, 0))
			_exit(12);
		if (errno != EPERM)
			_exit(13);
		if (!_test_no_snoop(self->fd, self->devid, 0, 0))
			_exit(14);
		if (errno != EPERM)
			_exit(15);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child: 10 capset failed, 11 GET_HW_INFO failed, "
		       "12/14 override worked without CAP_SYS_ADMIN, "
		       "13/15 wrong errno");
	expect_coherency(self->devid, false, false, "after the child");

	/* with the capability it works */
	test_no_snoop(self->devid, 1);
	expect_coherency(self->devid, true, false, "override by root");
}

/* --- the live state across replace ------------------------------------ */

/*
 * Attaching to another IOAS while attached replaces the HWPT. With the
 * override off and on, walk through IOASes of every mode; after each step
 * NONCOHERENT_DMA and the SNP bit of the mapped page must describe the HWPT
 * the device is on. A refused replace (box 3 onto a coherent IOAS) leaves
 * the device where it was.
 */
TEST_F(coherency, live_state_follows_replace)
{
	static const enum coh_mode seq[] = {
		MODE_AUTO,     MODE_NONCOHERENT, MODE_COHERENT,
		MODE_NONCOHERENT, MODE_AUTO,     MODE_COHERENT,
		MODE_AUTO,
	};
	__u32 ioas[3], pt;
	char when[128];
	unsigned int i;
	int ns;

	for (i = 0; i < 3; i++) {
		test_ioas_alloc_mode((enum coh_mode)i, &ioas[i]);
		test_ioctl_ioas_map_fixed(ioas[i], PAGE_N(0), PSZ, IOVA_PRE);
	}

	for (ns = 0; ns < 2; ns++) {
		int cur = -1;	/* enum enforce of the current HWPT */

		test_no_snoop(self->devid, ns);
		for (i = 0; i < ARRAY_SIZE(seq); i++) {
			enum enforce want = expected_enforce(seq[i], self->sc,
							     ns);
			int rc;

			snprintf(when, sizeof(when),
				 "box %d, step %u: %s IOAS",
				 box_of(self->sc, ns), i, mode_name[seq[i]]);
			pt = ioas[seq[i]];
			rc = _test_ioctl_vfio_attach(self->dev, &pt);
			if (want == ENF_REFUSED) {
				EXPECT_ERRNO(EINVAL, rc) TH_LOG("%s", when);
			} else {
				ASSERT_EQ(0, rc)
					TH_LOG("%s: attach: %s", when,
					       strerror(errno));
				cur = want;
			}
			expect_coherency(self->devid, ns,
					 ns && cur == ENF_NO, when);
			if (cur >= 0)
				expect_leaf(self->bdf, IOVA_PRE, PAGE_N(0),
					    cur == ENF_YES, when);
		}
		test_ioctl_vfio_detach(self->dev);
		expect_coherency(self->devid, ns, false, "detached");
		expect_no_leaf(self->bdf, IOVA_PRE, "detached");
	}

	/* every automatic HWPT went away with its last device */
	for (i = 0; i < 3; i++)
		test_ioctl_destroy(ioas[i]);
}

/* --- the coherency notifier ------------------------------------------ */

/*
 * After the operation @what: exactly one more event on the device's chain
 * and one on the context's, each carrying the state now.
 */
#define expect_events(dev_id, dev_before, ctx_before, nc, what)               \
	({                                                                    \
		__u32 __ev, __st;                                             \
		ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, dev_id,   \
							  &__ev, &__st));     \
		EXPECT_EQ((dev_before) + 1, __ev) TH_LOG("device, %s", what); \
		EXPECT_EQ((__u32)(nc), __st) TH_LOG("device, %s", what);      \
		dev_before = __ev;                                            \
		ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0,        \
							  &__ev, &__st));     \
		EXPECT_EQ((ctx_before) + 1, __ev) TH_LOG("context, %s", what);\
		EXPECT_EQ((__u32)(nc), __st) TH_LOG("context, %s", what);     \
		ctx_before = __ev;                                            \
	})

/*
 * Every attach, replace, detach and unbind publishes the device's state, and
 * the context's, to their subscribers: here the counting subscriber of test
 * kernels. The device is declared No-Snoop capable, so a noncoherent IOAS
 * gives non-coherent DMA in both profiles and an auto IOAS exactly without
 * snoop control.
 */
TEST_F(coherency, notifier_follows_every_change)
{
	__u32 nc_a, nc_b, auto_ioas, pt, dev_ev = 0, ctx_ev = 0, st;
	bool auto_nc = !self->sc;

	test_no_snoop(self->devid, 1);
	test_ioas_alloc_mode(MODE_NONCOHERENT, &nc_a);
	test_ioas_alloc_mode(MODE_NONCOHERENT, &nc_b);
	test_ioas_alloc_mode(MODE_AUTO, &auto_ioas);

	/* nothing published yet: binding attaches nothing */
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, self->devid,
						  &dev_ev, &st));
	EXPECT_EQ(0U, dev_ev);
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &ctx_ev, &st));
	EXPECT_EQ(0U, ctx_ev);
	EXPECT_ERRNO(ENOENT, _test_ioctl_coherency_events(self->fd, nc_a,
							  &dev_ev, &st));

	pt = nc_a;
	test_ioctl_vfio_attach(self->dev, &pt);
	expect_events(self->devid, dev_ev, ctx_ev, 1, "attach noncoherent");

	/* replace to another non-coherent HWPT: the state stays 1 */
	pt = nc_b;
	test_ioctl_vfio_attach(self->dev, &pt);
	expect_events(self->devid, dev_ev, ctx_ev, 1, "replace noncoherent");

	pt = auto_ioas;
	test_ioctl_vfio_attach(self->dev, &pt);
	expect_events(self->devid, dev_ev, ctx_ev, auto_nc, "replace auto");

	test_ioctl_vfio_detach(self->dev);
	expect_events(self->devid, dev_ev, ctx_ev, 0, "detach");

	/* a refused attach publishes too, with the state unchanged */
	pt = nc_a + 1000;
	EXPECT_ERRNO(ENOENT, _test_ioctl_vfio_attach(self->dev, &pt));
	expect_events(self->devid, dev_ev, ctx_ev, 0, "failed attach");

	pt = nc_a;
	test_ioctl_vfio_attach(self->dev, &pt);
	expect_events(self->devid, dev_ev, ctx_ev, 1, "attach again");

	/*
	 * Closing the device while attached: VFIO detaches, then unbinds; the
	 * context sees both, each with state 0.
	 */
	ASSERT_EQ(0, close(self->dev));
	self->dev = -1;
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &dev_ev, &st));
	EXPECT_EQ(ctx_ev + 2, dev_ev);
	EXPECT_EQ(0U, st);
	EXPECT_ERRNO(ENOENT, _test_ioctl_coherency_events(self->fd, self->devid,
							  &dev_ev, &st));

	/* destroying objects publishes the (unchanged) context state too */
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &ctx_ev, &st));
	test_ioctl_destroy(nc_a);
	test_ioctl_destroy(nc_b);
	test_ioctl_destroy(auto_ioas);
	ASSERT_EQ(0, _test_ioctl_coherency_events(self->fd, 0, &dev_ev, &st));
	EXPECT_EQ(ctx_ev + 3, dev_ev);
	EXPECT_EQ(0U, st);
}

/*
 * The same with HWPTs allocated explicitly on one auto IOAS: one per mode
 * (flags 0 = the IOAS's mode). They are made before the override is set,
 * so the coherent one exists in every profile.
 */
TEST_F(coherency, live_state_follows_hwpt_replace)
{
	static const enum coh_mode seq[] = {
		MODE_NONCOHERENT, MODE_AUTO, MODE_COHERENT,
		MODE_NONCOHERENT, MODE_COHERENT, MODE_AUTO,
	};
	__u32 ioas_id, hwpt[3], pt;
	char when[128];
	unsigned int i;
	int ns;

	test_ioas_alloc_mode(MODE_AUTO, &ioas_id);
	test_ioctl_ioas_map_fixed(ioas_id, PAGE_N(0), PSZ, IOVA_PRE);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id,
					 hwpt_flags_of((enum coh_mode)i),
					 &hwpt[i]))
			TH_LOG("HWPT_ALLOC(%s): %s", mode_name[i],
			       strerror(errno));
	}

	for (ns = 0; ns < 2; ns++) {
		int cur = -1;

		test_no_snoop(self->devid, ns);
		for (i = 0; i < ARRAY_SIZE(seq); i++) {
			enum enforce want = expected_enforce(seq[i], self->sc,
							     ns);
			int rc;

			snprintf(when, sizeof(when),
				 "box %d, step %u: %s HWPT",
				 box_of(self->sc, ns), i, mode_name[seq[i]]);
			pt = hwpt[seq[i]];
			rc = _test_ioctl_vfio_attach(self->dev, &pt);
			if (want == ENF_REFUSED) {
				EXPECT_ERRNO(EINVAL, rc) TH_LOG("%s", when);
			} else {
				ASSERT_EQ(0, rc)
					TH_LOG("%s: attach: %s", when,
					       strerror(errno));
				EXPECT_EQ(hwpt[seq[i]], pt);
				cur = want;
			}
			expect_coherency(self->devid, ns,
					 ns && cur == ENF_NO, when);
			if (cur >= 0)
				expect_leaf(self->bdf, IOVA_PRE, PAGE_N(0),
					    cur == ENF_YES, when);
		}
		test_ioctl_vfio_detach(self->dev);
		expect_coherency(self->devid, ns, false, "detached");
	}

	for (i = 0; i < 3; i++)
		test_ioctl_destroy(hwpt[i]);
	test_ioctl_destroy(ioas_id);
}

/* ---------------------------------------------------------------------- */
/* the matrix: each IOAS mode, with and without the override               */
/* ---------------------------------------------------------------------- */

FIXTURE(matrix)
{
	int fd;
	int dev;
	char bdf[64];
	__u32 devid;
	struct iommu_facts iommu;
	bool sc;
	__u8 *buf;
};

FIXTURE_VARIANT(matrix)
{
	enum coh_mode mode;	/* of the IOAS */
	bool no_snoop;		/* set the override before attaching */
};

FIXTURE_VARIANT_ADD(matrix, ioas_auto)
{
	.mode = MODE_AUTO,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(matrix, ioas_coherent)
{
	.mode = MODE_COHERENT,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(matrix, ioas_noncoherent)
{
	.mode = MODE_NONCOHERENT,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(matrix, ioas_auto_no_snoop)
{
	.mode = MODE_AUTO,
	.no_snoop = true,
};

FIXTURE_VARIANT_ADD(matrix, ioas_coherent_no_snoop)
{
	.mode = MODE_COHERENT,
	.no_snoop = true,
};

FIXTURE_VARIANT_ADD(matrix, ioas_noncoherent_no_snoop)
{
	.mode = MODE_NONCOHERENT,
	.no_snoop = true,
};

FIXTURE_SETUP(matrix)
{
	coh_setup();
	if (variant->no_snoop)
		test_no_snoop(self->devid, 1);
	expect_coherency(self->devid, variant->no_snoop, false, "bound");
	log_iommu(_metadata, "edu", self->bdf, &self->iommu);
	TH_LOG("edu %s: box %d, %s IOAS", self->bdf,
	       box_of(self->sc, variant->no_snoop), mode_name[variant->mode]);
}

FIXTURE_TEARDOWN(matrix)
{
	coh_teardown();
}

/*
 * Attach to @pt (an IOAS or an HWPT) expecting @want, with IOVA_PRE mapped
 * before and IOVA_POST after the attach; check the live bit and both leaf
 * PTEs, then detach and check that the state dropped.
 */
static void __matrix_attach(struct __test_metadata *_metadata, int fd,
			    int dev, const char *bdf, __u32 devid, bool sc,
			    bool ns, __u32 ioas_id, __u32 pt, __u8 *buf,
			    enum enforce want, const char *what)
{
	bool nc = ns && want == ENF_NO;
	__u32 got = pt;
	int rc;

	rc = _test_ioctl_vfio_attach(dev, &got);
	if (want == ENF_REFUSED) {
		EXPECT_ERRNO(EINVAL, rc)
			TH_LOG("%s: box 3 must not attach to a coherent page "
			       "table", what);
		__expect_coherency(_metadata, fd, devid, sc, ns, false, what);
		expect_no_leaf(bdf, IOVA_PRE, what);
		return;
	}
	ASSERT_EQ(0, rc) TH_LOG("%s: attach: %s", what, strerror(errno));
	EXPECT_NE(0U, got);
	__expect_coherency(_metadata, fd, devid, sc, ns, nc, what);
	expect_leaf(bdf, IOVA_PRE, buf, want == ENF_YES, what);

	ASSERT_EQ(0, _test_ioctl_ioas_map(fd, ioas_id, buf + PSZ, PSZ,
					  &(__u64){ IOVA_POST },
					  MAP_RW | IOMMU_IOAS_MAP_FIXED_IOVA))
		TH_LOG("map at 0x%llx: %s", IOVA_POST, strerror(errno));
	expect_leaf(bdf, IOVA_POST, buf + PSZ, want == ENF_YES, what);
	ASSERT_EQ(0, _test_ioctl_ioas_unmap(fd, ioas_id, IOVA_POST, PSZ,
					    NULL));
	expect_no_leaf(bdf, IOVA_POST, "after unmap");

	ASSERT_EQ(0, _test_ioctl_vfio_detach(dev))
		TH_LOG("detach: %s", strerror(errno));
	__expect_coherency(_metadata, fd, devid, sc, ns, false, "detached");
	expect_no_leaf(bdf, IOVA_PRE, "detached");
}
#define matrix_attach(ioas_id, pt, want, what)                                \
	__matrix_attach(_metadata, self->fd, self->dev, self->bdf,            \
			self->devid, self->sc, variant->no_snoop, ioas_id,    \
			pt, self->buf, want, what)

/* Attach to the IOAS itself: an automatic HWPT in the IOAS's mode. */
TEST_F(matrix, attach_ioas)
{
	enum enforce want = expected_enforce(variant->mode, self->sc,
					     variant->no_snoop);
	__u32 ioas_id;

	test_ioas_alloc_mode(variant->mode, &ioas_id);
	test_ioctl_ioas_map_fixed(ioas_id, PAGE_N(0), PSZ, IOVA_PRE);
	matrix_attach(ioas_id, ioas_id, want, "attach to the IOAS");
	/* no automatic HWPT outlives the detach (or the refusal) */
	test_ioctl_destroy(ioas_id);
}

/* HWPT_ALLOC with flags 0 takes the IOAS's mode. */
TEST_F(matrix, hwpt_inherits_ioas_mode)
{
	enum enforce want = expected_enforce(variant->mode, self->sc,
					     variant->no_snoop);
	__u32 ioas_id, hwpt_id = 0;
	int rc;

	test_ioas_alloc_mode(variant->mode, &ioas_id);
	test_ioctl_ioas_map_fixed(ioas_id, PAGE_N(0), PSZ, IOVA_PRE);
	rc = _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id, 0, &hwpt_id);
	if (want == ENF_REFUSED) {
		/* a coherent HWPT cannot be made for a box-3 device */
		EXPECT_ERRNO(EINVAL, rc);
	} else {
		ASSERT_EQ(0, rc) TH_LOG("HWPT_ALLOC(0): %s", strerror(errno));
		matrix_attach(ioas_id, hwpt_id, want, "HWPT of flags 0");
		test_ioctl_destroy(hwpt_id);
	}
	test_ioctl_destroy(ioas_id);
}

/* HWPT_ALLOC's coherent / noncoherent flags override the IOAS's mode. */
TEST_F(matrix, hwpt_mode_overrides_ioas)
{
	static const enum coh_mode modes[] = { MODE_COHERENT,
					       MODE_NONCOHERENT };
	__u32 ioas_id, hwpt_id;
	char what[64];
	unsigned int i;

	test_ioas_alloc_mode(variant->mode, &ioas_id);
	test_ioctl_ioas_map_fixed(ioas_id, PAGE_N(0), PSZ, IOVA_PRE);
	for (i = 0; i < ARRAY_SIZE(modes); i++) {
		enum enforce want = expected_enforce(modes[i], self->sc,
						     variant->no_snoop);
		int rc;

		snprintf(what, sizeof(what), "%s HWPT on a %s IOAS",
			 mode_name[modes[i]], mode_name[variant->mode]);
		rc = _test_ioctl_hwpt_alloc(self->fd, self->devid, ioas_id,
				 hwpt_flags_of(modes[i]), &hwpt_id);
		if (want == ENF_REFUSED) {
			EXPECT_ERRNO(EINVAL, rc) TH_LOG("%s", what);
			continue;
		}
		ASSERT_EQ(0, rc) TH_LOG("%s: %s", what, strerror(errno));
		matrix_attach(ioas_id, hwpt_id, want, what);
		test_ioctl_destroy(hwpt_id);
	}
	test_ioctl_destroy(ioas_id);
}

/* ---------------------------------------------------------------------- */
/* two devices: edu and the e1000e                                        */
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
	struct iommu_facts edu_iommu;
	struct iommu_facts nic_iommu;
	bool sc;	/* the edu device's IOMMU can enforce coherency */
	bool nic_sc;	/* the NIC's can */
	__u8 *buf;
};

FIXTURE_SETUP(two_devices)
{
	self->fd = self->edu = self->nic = -1;
	self->buf = MAP_FAILED;

	open_iommufd_or_fail(&self->fd);
	self->edu = open_edu_or_fail(self->edu_bdf);
	self->nic = open_nic_or_fail(self->nic_bdf);
	iommu_facts_or_fail(self->edu_bdf, &self->edu_iommu);
	iommu_facts_or_fail(self->nic_bdf, &self->nic_iommu);
	test_ioctl_vfio_bind(self->edu, &self->edu_id);
	test_ioctl_vfio_bind(self->nic, &self->nic_id);
	self->sc = self->edu_iommu.can_enforce;
	self->nic_sc = self->nic_iommu.can_enforce;
	log_iommu(_metadata, "edu", self->edu_bdf, &self->edu_iommu);
	log_iommu(_metadata, "NIC", self->nic_bdf, &self->nic_iommu);

	self->buf = mmap(NULL, BUF_PAGES * PSZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->buf);
	memset(self->buf, 0x4d, BUF_PAGES * PSZ);
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
	if (self->buf != MAP_FAILED)
		munmap(self->buf, BUF_PAGES * PSZ);
}

/*
 * Neither emulated device can issue No-Snoop: edu has no PCIe capability,
 * and QEMU's e1000e keeps "Enable No Snoop" at zero. Each report follows
 * that device's own IOMMU unit.
 */
TEST_F(two_devices, probed_no_snoop_clear)
{
	__u64 edu_caps, nic_caps;

	__expect_report(_metadata, self->fd, self->edu_id, &self->edu_iommu,
			&edu_caps);
	__expect_report(_metadata, self->fd, self->nic_id, &self->nic_iommu,
			&nic_caps);
	TH_LOG("edu %s (%s) caps 0x%llx; nic %s (%s) caps 0x%llx",
	       self->edu_bdf, self->edu_iommu.unit,
	       (unsigned long long)edu_caps, self->nic_bdf,
	       self->nic_iommu.unit, (unsigned long long)nic_caps);

	EXPECT_FALSE(!!(edu_caps & IOMMU_HW_CAP_NO_SNOOP))
		TH_LOG("edu is conventional PCI");
	EXPECT_FALSE(!!(nic_caps & IOMMU_HW_CAP_NO_SNOOP))
		TH_LOG("QEMU's e1000e cannot enable No-Snoop");
	EXPECT_EQ(self->sc, !!(edu_caps & IOMMU_HW_CAP_ENFORCE_COHERENCY));
	EXPECT_EQ(self->nic_sc, !!(nic_caps & IOMMU_HW_CAP_ENFORCE_COHERENCY));
	EXPECT_EQ(self->sc, !!(edu_caps & IOMMU_HW_CAP_DEFAULT_COHERENT));
	EXPECT_EQ(self->nic_sc, !!(nic_caps & IOMMU_HW_CAP_DEFAULT_COHERENT));
	EXPECT_FALSE(!!(edu_caps & IOMMU_HW_CAP_NONCOHERENT_DMA));
	EXPECT_FALSE(!!(nic_caps & IOMMU_HW_CAP_NONCOHERENT_DMA));
}

/*
 * The live state is per device: edu (override on) and the NIC (probed,
 * no No-Snoop) on one IOAS of each mode. The NIC attaches everywhere and
 * never does non-coherent DMA; edu follows the matrix. On a coherent IOAS
 * without SC the NIC (box 4) attaches and edu (box 3) is refused.
 */
TEST_F(two_devices, live_state_is_per_device)
{
	enum coh_mode m;
	__u32 ioas_id, edu_pt, nic_pt;
	char what[64];
	int rc;

	test_no_snoop(self->edu_id, 1);
	for (m = MODE_AUTO; m <= MODE_NONCOHERENT; m++) {
		enum enforce edu_want = expected_enforce(m, self->sc, true);
		enum enforce nic_want = expected_enforce(m, self->nic_sc,
							 false);

		snprintf(what, sizeof(what), "%s IOAS", mode_name[m]);
		test_ioas_alloc_mode(m, &ioas_id);
		test_ioctl_ioas_map_fixed(ioas_id, self->buf, PSZ, IOVA_PRE);

		nic_pt = ioas_id;
		ASSERT_NE((int)ENF_REFUSED, (int)nic_want);
		test_ioctl_vfio_attach(self->nic, &nic_pt);
		__expect_coherency(_metadata, self->fd, self->nic_id,
				   self->nic_sc, false, false, what);
		expect_leaf(self->nic_bdf, IOVA_PRE, self->buf,
			    nic_want == ENF_YES, what);

		edu_pt = ioas_id;
		rc = _test_ioctl_vfio_attach(self->edu, &edu_pt);
		if (edu_want == ENF_REFUSED) {
			EXPECT_ERRNO(EINVAL, rc) TH_LOG("%s: edu", what);
			__expect_coherency(_metadata, self->fd, self->edu_id,
					   self->sc, true, false, what);
		} else {
			ASSERT_EQ(0, rc)
				TH_LOG("%s: edu: %s", what, strerror(errno));
			TH_LOG("%s: edu on HWPT %u, NIC on HWPT %u", what,
			       edu_pt, nic_pt);
			__expect_coherency(_metadata, self->fd, self->edu_id,
					   self->sc, true,
					   edu_want == ENF_NO, what);
			expect_leaf(self->edu_bdf, IOVA_PRE, self->buf,
				    edu_want == ENF_YES, what);
		}
		/* the NIC is unaffected by its neighbour */
		__expect_coherency(_metadata, self->fd, self->nic_id,
				   self->nic_sc, false, false, what);

		if (edu_want != ENF_REFUSED) {
			test_ioctl_vfio_detach(self->edu);
			__expect_coherency(_metadata, self->fd, self->edu_id,
					   self->sc, true, false,
					   "edu detached");
		}
		test_ioctl_vfio_detach(self->nic);
		test_ioctl_destroy(ioas_id);
	}
}

/*
 * An HWPT made for the NIC (no No-Snoop), of each mode, then shared by edu
 * with the override on. Its enforcement was fixed for the NIC: an
 * enforcing one takes edu if edu's IOMMU can enforce (the IOMMU driver
 * refuses otherwise) and keeps it coherent; a coherent one that could not
 * enforce refuses edu; any other one takes edu, which then does
 * non-coherent DMA while the NIC on the same HWPT does not.
 */
TEST_F(two_devices, hwpt_made_for_another_device)
{
	enum coh_mode m;
	__u32 ioas_id, hwpt_id, pt;
	char what[64];
	int rc;

	test_no_snoop(self->edu_id, 1);
	for (m = MODE_AUTO; m <= MODE_NONCOHERENT; m++) {
		enum enforce e = expected_enforce(m, self->nic_sc, false);
		bool edu_ok;

		if (e == ENF_YES)
			edu_ok = self->sc;
		else
			edu_ok = m != MODE_COHERENT;
		snprintf(what, sizeof(what), "%s HWPT made for the NIC",
			 mode_name[m]);

		test_ioas_alloc_mode(MODE_AUTO, &ioas_id);
		test_ioctl_ioas_map_fixed(ioas_id, self->buf, PSZ, IOVA_PRE);
		ASSERT_EQ(0, _test_ioctl_hwpt_alloc(self->fd, self->nic_id, ioas_id,
					 hwpt_flags_of(m), &hwpt_id))
			TH_LOG("%s: %s", what, strerror(errno));
		pt = hwpt_id;
		test_ioctl_vfio_attach(self->nic, &pt);
		expect_leaf(self->nic_bdf, IOVA_PRE, self->buf, e == ENF_YES,
			    what);

		pt = hwpt_id;
		rc = _test_ioctl_vfio_attach(self->edu, &pt);
		if (!edu_ok) {
			EXPECT_ERRNO(EINVAL, rc) TH_LOG("%s: edu", what);
			__expect_coherency(_metadata, self->fd, self->edu_id,
					   self->sc, true, false, what);
		} else {
			ASSERT_EQ(0, rc)
				TH_LOG("%s: edu: %s", what, strerror(errno));
			__expect_coherency(_metadata, self->fd, self->edu_id,
					   self->sc, true, e == ENF_NO, what);
			expect_leaf(self->edu_bdf, IOVA_PRE, self->buf,
				    e == ENF_YES, what);
			test_ioctl_vfio_detach(self->edu);
		}
		__expect_coherency(_metadata, self->fd, self->nic_id,
				   self->nic_sc, false, false, what);
		test_ioctl_vfio_detach(self->nic);
		test_ioctl_destroy(hwpt_id);
		test_ioctl_destroy(ioas_id);
	}
}

TEST_HARNESS_MAIN
