/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VFIO cdev helpers for the iommufd-rs selftests that use real PCI functions.
 * Include after iommufd_utils.h.
 *
 * The test VM binds two PCI functions to vfio-pci before the tests start:
 * QEMU's "edu" device (1234:11e8) and an e1000e NIC (8086:10d3). Both are
 * found by vendor:device in sysfs, or taken from IOMMUFD_TEST_EDU_BDF /
 * IOMMUFD_TEST_NIC_BDF when set. A missing or wrongly bound device is a test
 * FAILURE with an explanation, never a skip.
 *
 * The VFIO ioctl wrappers follow the iommufd_utils.h convention:
 *   _test_ioctl_vfio_<name>(devfd, ...)  returns 0, or -1 with errno set;
 *   test_ioctl_vfio_<name>(devfd, ...)   ASSERTs success (bind uses self->fd
 *                                        as the iommufd);
 *   test_err_ioctl_vfio_<name>(e, ...)   EXPECTs failure with errno == e.
 *
 * Also here: /proc/self/status readers (VmPin, VmLck) and a raw
 * capget/capset helper to clear one capability from the effective set.
 */
#ifndef __SELFTEST_IOMMUFD_RS_VFIO_UTILS_H
#define __SELFTEST_IOMMUFD_RS_VFIO_UTILS_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "iommufd_utils.h"

#define PCI_SYSFS_DEVICES "/sys/bus/pci/devices"
#define VFIO_CDEV_DIR "/dev/vfio/devices"
#define VFIO_PCI_DRIVER "vfio-pci"

#define EDU_VENDOR_ID 0x1234
#define EDU_DEVICE_ID 0x11e8
#define EDU_BDF_ENV "IOMMUFD_TEST_EDU_BDF"

#define NIC_VENDOR_ID 0x8086
#define NIC_DEVICE_ID 0x10d3
#define NIC_BDF_ENV "IOMMUFD_TEST_NIC_BDF"

/*
 * The x86 interrupt address window. Every IOMMU of the test VM lists it as
 * its devices' "msi" reserved region (tests read it from sysfs and check
 * it against these).
 */
#define X86_MSI_WINDOW_START 0xfee00000ULL
#define X86_MSI_WINDOW_LAST 0xfeefffffULL

/* ---------------------------------------------------------------------- */
/* sysfs discovery                                                        */
/* ---------------------------------------------------------------------- */

/* Copy @src into @dst of @len bytes, truncating; always terminated. */
static inline void str_copy(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Read a sysfs attribute holding one hex number ("0x1234\n"). */
static inline int read_sysfs_hex(const char *path, unsigned int *val)
{
	unsigned int v;
	FILE *f;
	int n;

	f = fopen(path, "r");
	if (!f)
		return -errno;
	n = fscanf(f, "%x", &v);
	fclose(f);
	if (n != 1)
		return -EINVAL;
	*val = v;
	return 0;
}

/*
 * Name of the driver bound to PCI function @bdf, "" when none. Returns 0, or
 * -errno when @bdf does not exist.
 */
static inline int pci_driver_of(const char *bdf, char *name, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;

	if (len)
		name[0] = '\0';
	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s", bdf);
	if (access(path, F_OK))
		return -errno;
	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/driver", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	str_copy(name, len, base ? base + 1 : target);
	return 0;
}

static inline bool pci_bound_to_vfio(const char *bdf)
{
	char drv[64];

	return !pci_driver_of(bdf, drv, sizeof(drv)) &&
	       !strcmp(drv, VFIO_PCI_DRIVER);
}

/*
 * Find a PCI function with @vendor:@device that is bound to vfio-pci and
 * write its address ("0000:00:03.0") to @bdf_out. When several qualify the
 * lowest address wins, so repeated runs pick the same one.
 *
 * Returns 0 on success; -ENODEV when no function has that ID; -EBUSY when
 * one exists but none is bound to vfio-pci (then @bdf_out names one of them,
 * for the error message); another -errno when sysfs cannot be read.
 */
static inline int find_vfio_bdf(unsigned int vendor, unsigned int device,
				char *bdf_out, size_t len)
{
	char best[NAME_MAX + 1] = "", unbound[NAME_MAX + 1] = "";
	char path[PATH_MAX];
	unsigned int v = 0, d = 0;
	struct dirent *de;
	DIR *dir;

	dir = opendir(PCI_SYSFS_DEVICES);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/vendor",
			 de->d_name);
		if (read_sysfs_hex(path, &v) || v != vendor)
			continue;
		snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/device",
			 de->d_name);
		if (read_sysfs_hex(path, &d) || d != device)
			continue;
		if (!pci_bound_to_vfio(de->d_name)) {
			if (!unbound[0] || strcmp(de->d_name, unbound) < 0)
				str_copy(unbound, sizeof(unbound), de->d_name);
			continue;
		}
		if (!best[0] || strcmp(de->d_name, best) < 0)
			str_copy(best, sizeof(best), de->d_name);
	}
	closedir(dir);

	if (best[0]) {
		str_copy(bdf_out, len, best);
		return 0;
	}
	if (unbound[0]) {
		str_copy(bdf_out, len, unbound);
		return -EBUSY;
	}
	return -ENODEV;
}

/*
 * The VFIO cdev of PCI function @bdf: /sys/bus/pci/devices/<bdf>/vfio-dev/
 * holds exactly one "vfioN" entry, the node is /dev/vfio/devices/vfioN.
 * Returns 0, or -errno (-ENOENT when the function has no VFIO cdev).
 */
static inline int vfio_cdev_path(const char *bdf, char *path, size_t len)
{
	char dirpath[PATH_MAX];
	struct dirent *de;
	unsigned int n;
	int rc = -ENOENT;
	DIR *dir;

	snprintf(dirpath, sizeof(dirpath), PCI_SYSFS_DEVICES "/%s/vfio-dev",
		 bdf);
	dir = opendir(dirpath);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (sscanf(de->d_name, "vfio%u", &n) != 1)
			continue;
		snprintf(path, len, VFIO_CDEV_DIR "/vfio%u", n);
		rc = 0;
		break;
	}
	closedir(dir);
	return rc;
}

/*
 * Open the VFIO cdev of the @what device (@vendor:@device, or the address in
 * environment variable @env) and return the fd; the address goes to @bdf
 * (at least 32 bytes). Any problem fails the test with a message saying what
 * the VM is missing.
 */
static inline int __open_vfio_device(struct __test_metadata *_metadata,
				     const char *env, unsigned int vendor,
				     unsigned int device, const char *what,
				     char *bdf, size_t bdf_len)
{
	const char *override = getenv(env);
	char cdev[PATH_MAX], drv[64];
	int rc, fd;

	if (override && override[0]) {
		str_copy(bdf, bdf_len, override);
		rc = pci_driver_of(bdf, drv, sizeof(drv));
		ASSERT_EQ(0, rc)
			TH_LOG("%s=%s: no such PCI function (%s)", env, bdf,
			       strerror(-rc));
		ASSERT_EQ(0, strcmp(drv, VFIO_PCI_DRIVER))
			TH_LOG("%s=%s: %s is bound to '%s', not to %s", env,
			       bdf, what, drv[0] ? drv : "no driver",
			       VFIO_PCI_DRIVER);
	} else {
		rc = find_vfio_bdf(vendor, device, bdf, bdf_len);
		if (rc == -EBUSY) {
			pci_driver_of(bdf, drv, sizeof(drv));
			ASSERT_EQ(0, rc)
				TH_LOG("%s (%04x:%04x) at %s is bound to '%s', "
				       "not to %s; the test VM must bind it "
				       "before the tests run",
				       what, vendor, device, bdf,
				       drv[0] ? drv : "no driver",
				       VFIO_PCI_DRIVER);
		}
		ASSERT_EQ(0, rc)
			TH_LOG("no %s (PCI %04x:%04x) bound to %s: %s; the "
			       "test VM must provide it (or set %s to its "
			       "address)",
			       what, vendor, device, VFIO_PCI_DRIVER,
			       strerror(-rc), env);
	}

	rc = vfio_cdev_path(bdf, cdev, sizeof(cdev));
	ASSERT_EQ(0, rc)
		TH_LOG("%s %s has no VFIO cdev under %s/%s/vfio-dev: %s "
		       "(CONFIG_VFIO_DEVICE_CDEV=y needed)",
		       what, bdf, PCI_SYSFS_DEVICES, bdf, strerror(-rc));
	fd = open(cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd)
		TH_LOG("open %s (%s %s): %s", cdev, what, bdf,
		       strerror(errno));
	return fd;
}
#define open_edu_or_fail(bdf)                                                 \
	__open_vfio_device(_metadata, EDU_BDF_ENV, EDU_VENDOR_ID,             \
			   EDU_DEVICE_ID, "QEMU edu device", bdf, sizeof(bdf))
#define open_nic_or_fail(bdf)                                                 \
	__open_vfio_device(_metadata, NIC_BDF_ENV, NIC_VENDOR_ID,             \
			   NIC_DEVICE_ID, "e1000e NIC", bdf, sizeof(bdf))

/* IOMMU_TEST_DEVICE_NO_SNOOP (test kernels only) with @reserved in __reserved */
static inline int _test_no_snoop(int fd, __u32 dev_id, __u32 no_snoop,
			  __u32 reserved)
{
	struct iommu_test_device_no_snoop cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.no_snoop = no_snoop,
		.__reserved = reserved,
	};

	return ioctl(fd, IOMMU_TEST_DEVICE_NO_SNOOP, &cmd);
}
/* ---------------------------------------------------------------------- */
/* VFIO_DEVICE_BIND_IOMMUFD / ATTACH_IOMMUFD_PT / DETACH_IOMMUFD_PT        */
/* ---------------------------------------------------------------------- */

/*
 * VFIO_DEVICE_BIND_IOMMUFD of @devfd to @iommufd with @flags; @token points
 * to a 16 byte VF token (only read by the kernel with
 * VFIO_DEVICE_BIND_FLAG_TOKEN). *@out_devid is written on success only.
 */
static inline int _test_ioctl_vfio_bind_flags(int devfd, int iommufd,
					      __u32 flags, const void *token,
					      __u32 *out_devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.flags = flags,
		.iommufd = iommufd,
		.token_uuid_ptr = (uintptr_t)token,
	};
	int rc;

	rc = ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (!rc && out_devid)
		*out_devid = bind.out_devid;
	return rc;
}
static inline int _test_ioctl_vfio_bind(int devfd, int iommufd,
					__u32 *out_devid)
{
	return _test_ioctl_vfio_bind_flags(devfd, iommufd, 0, NULL, out_devid);
}
/* bind @devfd to self->fd; the device id must be non-zero */
#define test_ioctl_vfio_bind(devfd, devidp)                                   \
	({                                                                    \
		ASSERT_EQ(0, _test_ioctl_vfio_bind(devfd, self->fd, devidp))  \
			TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s",                \
			       strerror(errno));                              \
		ASSERT_NE(0U, *(devidp));                                     \
	})
#define test_err_ioctl_vfio_bind(_errno, devfd, iommufd)                      \
	EXPECT_ERRNO(_errno, _test_ioctl_vfio_bind(devfd, iommufd, NULL))

/*
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: *@pt_id is the IOAS/HWPT to attach to and,
 * on success only, receives the id the kernel reports back (the HWPT that
 * was picked or created for an IOAS).
 */
static inline int _test_ioctl_vfio_attach(int devfd, __u32 *pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = offsetofend(struct vfio_device_attach_iommufd_pt,
				     pt_id),
		.flags = 0,
		.pt_id = *pt_id,
	};
	int rc;

	rc = ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
	if (!rc)
		*pt_id = attach.pt_id;
	return rc;
}
/* attach @devfd to *@ptidp; the id reported back must be non-zero */
#define test_ioctl_vfio_attach(devfd, ptidp)                                  \
	({                                                                    \
		__u32 __in = *(ptidp);                                        \
		ASSERT_EQ(0, _test_ioctl_vfio_attach(devfd, ptidp))           \
			TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u): %s", __in, \
			       strerror(errno));                              \
		ASSERT_NE(0U, *(ptidp));                                      \
	})
#define test_err_ioctl_vfio_attach(_errno, devfd, pt_id)                      \
	({                                                                    \
		__u32 __pt = (pt_id);                                         \
		EXPECT_ERRNO(_errno, _test_ioctl_vfio_attach(devfd, &__pt))   \
			TH_LOG("attach to pt_id %u", (unsigned int)(pt_id));  \
	})

/* VFIO_DEVICE_DETACH_IOMMUFD_PT (no PASID). */
static inline int _test_ioctl_vfio_detach(int devfd)
{
	struct vfio_device_detach_iommufd_pt detach = {
		.argsz = offsetofend(struct vfio_device_detach_iommufd_pt,
				     flags),
		.flags = 0,
	};

	return ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
}
#define test_ioctl_vfio_detach(devfd)                                         \
	ASSERT_EQ(0, _test_ioctl_vfio_detach(devfd))                          \
		TH_LOG("VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(errno))
#define test_err_ioctl_vfio_detach(_errno, devfd) \
	EXPECT_ERRNO(_errno, _test_ioctl_vfio_detach(devfd))

/*
 * IOMMU_TEST_COHERENCY_EVENTS (test kernels only): the number of events the
 * counting test subscriber on @dev_id (0: the context) saw, and the last.
 * Returns 0, or -1 with errno set (then *events and *state are untouched).
 */
static inline int _test_ioctl_coherency_events(int fd, __u32 dev_id,
					       __u32 *events, __u32 *state)
{
	struct iommu_test_coherency_events cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
	};
	int rc;

	rc = ioctl(fd, IOMMU_TEST_COHERENCY_EVENTS, &cmd);
	if (!rc) {
		*events = cmd.out_events;
		*state = cmd.out_state;
	}
	return rc;
}

/* VFIO_DEVICE_GET_REGION_INFO for region @index (no capability chain). */
static inline int _vfio_region_info(int devfd, __u32 index,
				    struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, info);
}

/* ---------------------------------------------------------------------- */
/* /proc/self/status                                                      */
/* ---------------------------------------------------------------------- */

/*
 * The value of the "@key" line of /proc/@pid/status (pid 0: self), in kB,
 * e.g. read_status_kb_of(0, "VmPin:"). Returns -1 if it cannot be read.
 */
static inline long read_status_kb_of(pid_t pid, const char *key)
{
	size_t klen = strlen(key);
	char path[64], line[256];
	long val = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen))
			continue;
		if (sscanf(line + klen, " %ld", &val) != 1)
			val = -1;
		break;
	}
	fclose(f);
	return val;
}
static inline long read_status_kb(const char *key)
{
	return read_status_kb_of(0, key);
}
#define vmpin_kb() read_status_kb("VmPin:")
#define vmlck_kb() read_status_kb("VmLck:")

/* kB that @npages pages take in /proc/<pid>/status */
#define PAGES_KB(npages) ((long)((npages) * (PAGE_SIZE / 1024)))

/* ---------------------------------------------------------------------- */
/* capabilities and RLIMIT_MEMLOCK                                        */
/* ---------------------------------------------------------------------- */

/* Read this process's capability sets into @hdr and @data. 0 or -1. */
static inline int get_caps(struct __user_cap_header_struct *hdr,
			   struct __user_cap_data_struct *data)
{
	hdr->version = _LINUX_CAPABILITY_VERSION_3;
	hdr->pid = 0;
	memset(data, 0, sizeof(*data) * _LINUX_CAPABILITY_U32S_3);
	return syscall(SYS_capget, hdr, data);
}

/*
 * Set (@on) or clear capability @cap in this process's effective set with
 * raw capget/capset, no libcap. Raising only works while the capability is
 * still in the permitted set, which clearing the effective bit keeps.
 * Returns 0 or -1 with errno.
 *
 * Tests normally call this in the harness's per-test child, so nothing
 * leaks into other tests even without restoring.
 */
static inline int set_effective_cap(int cap, bool on)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (get_caps(&hdr, data))
		return -1;
	if (on)
		data[CAP_TO_INDEX(cap)].effective |= CAP_TO_MASK(cap);
	else
		data[CAP_TO_INDEX(cap)].effective &= ~CAP_TO_MASK(cap);
	return syscall(SYS_capset, &hdr, data);
}

/* 1 if @cap is in the effective set, 0 if not, -1 on error */
static inline int have_effective_cap(int cap)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (get_caps(&hdr, data))
		return -1;
	return !!(data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap));
}

/*
 * Stop being exempt from RLIMIT_MEMLOCK: without CAP_IPC_LOCK iommufd
 * charges pinned pages to the user (or, in RLIMIT_MODE 1, to the mm).
 */
#define drop_cap_ipc_lock()                                                   \
	({                                                                    \
		ASSERT_EQ(0, set_effective_cap(CAP_IPC_LOCK, false))          \
			TH_LOG("capset: %s", strerror(errno));                \
		ASSERT_EQ(0, have_effective_cap(CAP_IPC_LOCK));               \
	})

/* Set the soft RLIMIT_MEMLOCK to @bytes, keeping the hard limit. */
#define set_memlock_limit(bytes)                                              \
	({                                                                    \
		struct rlimit __rl;                                           \
		ASSERT_EQ(0, getrlimit(RLIMIT_MEMLOCK, &__rl));               \
		__rl.rlim_cur = (bytes);                                      \
		if (__rl.rlim_max != RLIM_INFINITY &&                         \
		    __rl.rlim_max < __rl.rlim_cur)                            \
			__rl.rlim_max = __rl.rlim_cur;                        \
		ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &__rl))                \
			TH_LOG("setrlimit(RLIMIT_MEMLOCK, %llu): %s",         \
			       (unsigned long long)(bytes), strerror(errno)); \
	})

/* Puts a removed edu back: rescan the bus and hand the new function to vfio-pci. */
static inline int restore_edu(const char *bdf)
{
	char path[256], dir[200];
	int i;

	if (write_file("/sys/bus/pci/rescan", "1", 0))
		return -EIO;
	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/driver_override",
		 bdf);
	if (write_file(path, "vfio-pci", 0))
		return -ENOENT;
	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/driver", bdf);
	if (access(path, F_OK) == 0) {
		snprintf(path, sizeof(path),
			 PCI_SYSFS_DEVICES "/%s/driver/unbind", bdf);
		write_file(path, bdf, 0);
	}
	if (write_file("/sys/bus/pci/drivers_probe", bdf, 0))
		return -EIO;
	snprintf(dir, sizeof(dir), PCI_SYSFS_DEVICES "/%s/vfio-dev", bdf);
	for (i = 0; i < 100; i++) {
		if (access(dir, F_OK) == 0)
			return 0;
		usleep(50 * 1000);
	}
	return -ETIMEDOUT;
}

#endif /* __SELFTEST_IOMMUFD_RS_VFIO_UTILS_H */
