/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Which IOMMU translates for a PCI function of the test VM, and what the
 * tests may expect of it. Include after vfio_utils.h.
 *
 * The test VM runs its devices behind one of several IOMMUs, one per
 * profile of scripts/vm.sh: QEMU's Intel VT-d with snoop control on or off,
 * virtio-iommu, and (proposed) AMD-Vi. No test hard-codes one of them. The
 * IOMMU is identified from sysfs, independently of iommufd:
 *
 *   /sys/bus/pci/devices/<bdf>/iommu        -> its unit (dmar0, virtio1, ...)
 *   /sys/class/iommu/<unit>/intel-iommu/    VT-d (ecap: its ECAP register)
 *   /sys/class/iommu/<unit>/amd-iommu/      AMD-Vi
 *   /sys/class/iommu/<unit>/device/driver   -> virtio_iommu
 *
 * and struct iommu_facts says what that IOMMU implies, from the 7.3 drivers
 * (intel/iommu.c, amd/iommu.c, virtio-iommu.c):
 *
 *                       VT-d            AMD-Vi            virtio-iommu
 *   enforces coherency  ECAP.SC (bit 7) always (PTE FC)   never
 *   remaps interrupts   yes             yes               no (MSIs bypass)
 *   GET_HW_INFO type    INTEL_VTD       AMD, or NONE      NONE (no hw_info)
 *                                       without
 *                                       CONFIG_AMD_IOMMU_IOMMUFD
 *   readable leaf PTEs  debugfs, SNP    no                no (the tables
 *                                                         live in the host)
 *   blocked DMA logged  "DMAR: ...      "IO_PAGE_FAULT"   "fault from EP"
 *                       fault"
 *
 * When IOMMUFD_TEST_IOMMU is set (guest/check.sh sets it from the profile
 * vm.sh booted: "vtd", "amd" or "virtio") the IOMMU found must be that one,
 * so a VM that came up with another IOMMU fails instead of quietly testing
 * something else.
 */
#ifndef __SELFTEST_IOMMUFD_RS_IOMMU_FACTS_H
#define __SELFTEST_IOMMUFD_RS_IOMMU_FACTS_H

#include <stdbool.h>
#include <stdio.h>

#include "vfio_utils.h"

#define IOMMU_ENV "IOMMUFD_TEST_IOMMU"
#define SYSFS_IOMMU_CLASS "/sys/class/iommu"

/* VT-d Extended Capability register: Snoop Control */
#define VTD_ECAP_SC (1ULL << 7)

enum iommu_kind {
	IOMMU_KIND_UNKNOWN,
	IOMMU_KIND_VTD,
	IOMMU_KIND_AMD,
	IOMMU_KIND_VIRTIO,
};

struct iommu_facts {
	enum iommu_kind kind;
	/* the profile's name for it (IOMMUFD_TEST_IOMMU), "" if unknown */
	const char *id;
	/* for messages */
	const char *name;
	/* its sysfs unit, e.g. "dmar0" */
	char unit[64];
	/* VT-d only: the Extended Capability register, from sysfs */
	__u64 vtd_ecap;
	/* IOMMU_CAP_ENFORCE_CACHE_COHERENCY: it can block No-Snoop */
	bool can_enforce;
	/* it can remap, and so isolate, MSIs */
	bool remaps_msi;
	/*
	 * Its input range stops below 2^64 (QEMU gives VT-d and virtio-iommu
	 * 39 bits on q35); AMD-Vi's six-level tables may span all of it.
	 */
	bool aperture_limited;
	/* IOMMU_GET_HW_INFO's out_data_type and data_len for it */
	__u32 hw_info_type;
	__u32 hw_info_len;
	/* its leaf PTEs, snoop bit included, can be read (VT-d debugfs) */
	bool pt_dump;
	/* its driver makes nested domains (iommu_ops.domain_alloc_nested) */
	bool nesting;
	/* two words that its kernel log line about a blocked DMA contains */
	const char *fault_log[2];
	/*
	 * A driver function that allocates while unmapping and cannot report
	 * the failure (the range stays mapped in the IOMMU, unmap returns 0),
	 * NULL if none: fault injection must stay out of it.
	 */
	const char *lossy_unmap_fn;
	/*
	 * Its driver moves a device from one page table to another in one
	 * step. None of the three does in 7.3: intel_iommu_attach_device()
	 * first blocks the device (device_block_translation()),
	 * amd_iommu_attach_device() first detaches it, and virtio-iommu's
	 * ATTACH gives the endpoint the new domain before viommu_attach_dev()
	 * replays its mappings; a DMA in between is blocked whatever iommufd
	 * does. Kept so that a driver that does gets the strict check.
	 */
	bool hitless_replace;
};

/* Reads a sysfs file holding one hex number, with or without "0x". */
static inline int read_sysfs_u64(const char *path, __u64 *val)
{
	unsigned long long v;
	FILE *f;
	int n;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fscanf(f, "%llx", &v);
	fclose(f);
	if (n != 1)
		return -EINVAL;
	*val = v;
	return 0;
}

/* The last component of the symlink @path into @out. 0 or -errno. */
static inline int link_basename(const char *path, char *out, size_t len)
{
	char target[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	str_copy(out, len, base ? base + 1 : target);
	return 0;
}

/* Whether the running kernel was built with @sym=y (/proc/config.gz). */
static inline bool kernel_config_y(const char *sym)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd),
		 "zcat /proc/config.gz 2>/dev/null | grep -qx '%s=y'", sym);
	return system(cmd) == 0;
}

/*
 * Identify the IOMMU in front of PCI function @bdf and fill @f. Returns 0
 * (kind IOMMU_KIND_UNKNOWN if the unit is none of ours) or -errno, e.g.
 * -ENOENT when no IOMMU translates for the function.
 */
static inline int iommu_facts_of(const char *bdf, struct iommu_facts *f)
{
	static int amd_report = -1;
	char path[PATH_MAX], drv[64];
	int rc;

	memset(f, 0, sizeof(*f));
	f->id = "";
	f->name = "an unknown IOMMU";
	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/iommu", bdf);
	rc = link_basename(path, f->unit, sizeof(f->unit));
	if (rc)
		return rc;

	snprintf(path, sizeof(path), SYSFS_IOMMU_CLASS "/%s/intel-iommu/ecap",
		 f->unit);
	if (!read_sysfs_u64(path, &f->vtd_ecap)) {
		f->kind = IOMMU_KIND_VTD;
		f->id = "vtd";
		f->name = "Intel VT-d";
		f->can_enforce = !!(f->vtd_ecap & VTD_ECAP_SC);
		f->remaps_msi = true;
		f->aperture_limited = true;
		f->hw_info_type = IOMMU_HW_INFO_TYPE_INTEL_VTD;
		f->hw_info_len = sizeof(struct iommu_hw_info_vtd);
		f->pt_dump = true;
		f->nesting = true;
		f->fault_log[0] = "DMAR";
		f->fault_log[1] = "fault";
		return 0;
	}

	snprintf(path, sizeof(path), SYSFS_IOMMU_CLASS "/%s/amd-iommu",
		 f->unit);
	if (!access(path, F_OK)) {
		f->kind = IOMMU_KIND_AMD;
		f->id = "amd";
		f->name = "AMD-Vi";
		/* every v1 leaf has Force Coherent set, whatever the HWPT */
		f->can_enforce = true;
		f->remaps_msi = true;
		f->aperture_limited = false;
		/* asked once: it runs zcat */
		if (amd_report < 0)
			amd_report = kernel_config_y("CONFIG_AMD_IOMMU_IOMMUFD");
		if (amd_report) {
			f->hw_info_type = IOMMU_HW_INFO_TYPE_AMD;
			f->hw_info_len = sizeof(struct iommu_hw_info_amd);
		} else {
			f->hw_info_type = IOMMU_HW_INFO_TYPE_NONE;
		}
		f->fault_log[0] = "Event logged";
		f->fault_log[1] = "IO_PAGE_FAULT";
		return 0;
	}

	snprintf(path, sizeof(path), SYSFS_IOMMU_CLASS "/%s/device/driver",
		 f->unit);
	if (!link_basename(path, drv, sizeof(drv)) &&
	    !strcmp(drv, "virtio_iommu")) {
		f->kind = IOMMU_KIND_VIRTIO;
		f->id = "virtio";
		f->name = "virtio-iommu";
		f->can_enforce = false;
		f->remaps_msi = false;
		f->aperture_limited = true;
		f->hw_info_type = IOMMU_HW_INFO_TYPE_NONE;
		f->fault_log[0] = "virtio_iommu";
		f->fault_log[1] = "fault from EP";
		/* its UNMAP request is allocated GFP_ATOMIC after the fact */
		f->lossy_unmap_fn = "viommu_unmap_pages";
		return 0;
	}
	return 0;
}

/*
 * The facts of @bdf's IOMMU, which must be one of ours and, when
 * IOMMUFD_TEST_IOMMU says which, that one.
 */
static inline void __iommu_facts_or_fail(struct __test_metadata *_metadata,
					 const char *bdf,
					 struct iommu_facts *f)
{
	const char *want = getenv(IOMMU_ENV);
	int rc;

	rc = iommu_facts_of(bdf, f);
	ASSERT_EQ(0, rc)
		TH_LOG("%s: no IOMMU translates for it (%s): the test VM puts "
		       "every test device behind one", bdf, strerror(-rc));
	ASSERT_NE((int)IOMMU_KIND_UNKNOWN, (int)f->kind)
		TH_LOG("%s: IOMMU %s is neither VT-d, AMD-Vi nor "
		       "virtio-iommu", bdf, f->unit);
	if (want && want[0]) {
		ASSERT_EQ(0, strcmp(want, f->id))
			TH_LOG("%s is behind %s (%s, \"%s\"), but the VM "
			       "profile put \"%s\" in front of it (%s)", bdf,
			       f->name, f->unit, f->id, want, IOMMU_ENV);
	}
}
#define iommu_facts_or_fail(bdf, f) __iommu_facts_or_fail(_metadata, bdf, f)

/* The address of the edu device, from the environment or sysfs. */
static inline void __edu_bdf_or_fail(struct __test_metadata *_metadata,
				     char *bdf, size_t len)
{
	const char *env = getenv(EDU_BDF_ENV);
	int rc;

	if (env && env[0]) {
		str_copy(bdf, len, env);
		return;
	}
	rc = find_vfio_bdf(EDU_VENDOR_ID, EDU_DEVICE_ID, bdf, len);
	ASSERT_EQ(0, rc)
		TH_LOG("no edu device (%04x:%04x) bound to %s: %s",
		       EDU_VENDOR_ID, EDU_DEVICE_ID, VFIO_PCI_DRIVER,
		       strerror(-rc));
}

/*
 * Whether the kernel remaps interrupts: with remapping on, x86 names the
 * interrupt chips "IR-IO-APIC", "IR-PCI-MSI" and so on in
 * /proc/interrupts, and every MSI domain is marked isolated.
 */
static inline bool irq_remapping_on(void)
{
	char line[512];
	bool found = false;
	FILE *f;

	f = fopen("/proc/interrupts", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " IR-") != NULL;
	fclose(f);
	return found;
}

/*
 * The value of the last "@name=value" word of the kernel command line into
 * @val (@len bytes). false if there is none.
 */
static inline bool cmdline_arg(const char *name, char *val, size_t len)
{
	char buf[4096], *tok, *save = NULL;
	size_t n, nlen = strlen(name);
	bool found = false;
	FILE *f;

	f = fopen("/proc/cmdline", "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (tok = strtok_r(buf, "\t\n ", &save); tok;
	     tok = strtok_r(NULL, "\t\n ", &save)) {
		if (strncmp(tok, name, nlen) || tok[nlen] != '=')
			continue;
		str_copy(val, len, tok + nlen + 1);
		found = true;
	}
	return found;
}

/* A boolean kernel or module parameter as the kernel reads it (kstrtobool). */
static inline bool cmdline_bool(const char *name)
{
	char v[16];

	if (!cmdline_arg(name, v, sizeof(v)))
		return false;
	return strchr("yYtT1", v[0]) ? v[0] != '\0' :
	       (v[0] == 'o' || v[0] == 'O') && (v[1] == 'n' || v[1] == 'N');
}

/* One line of an IOMMU group's reserved_regions file. */
struct resv_region {
	__u64 start;
	__u64 last;
	char type[24];	/* "direct", "direct-relaxable", "reserved", "msi" */
};

/*
 * The reserved regions the kernel reports for the IOMMU group of @bdf (all
 * its devices'), at most @max of them. Returns how many, or -errno.
 */
static inline int read_reserved_regions(const char *bdf,
					struct resv_region *r, int max)
{
	char path[PATH_MAX], line[256];
	unsigned long long s, l;
	char type[24];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 PCI_SYSFS_DEVICES "/%s/iommu_group/reserved_regions", bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %llx %23s", &s, &l, type) != 3)
			continue;
		if (n == max) {
			n = -E2BIG;
			break;
		}
		r[n].start = s;
		r[n].last = l;
		str_copy(r[n].type, sizeof(r[n].type), type);
		n++;
	}
	fclose(f);
	return n;
}

#endif /* __SELFTEST_IOMMUFD_RS_IOMMU_FACTS_H */
