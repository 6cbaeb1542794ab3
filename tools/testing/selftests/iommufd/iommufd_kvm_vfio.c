// SPDX-License-Identifier: GPL-2.0-only
/*
 * The Rust KVM-VFIO device (KVM_DEV_TYPE_VFIO) and IOMMU_EXECUTE_WBINVD,
 * checked end to end in the iommufd-rs test VM.
 *
 * Why this matters: a device that can issue PCIe No-Snoop writes behind an
 * I/O page table that does not force snooping can put data in memory
 * behind the CPU caches' back. A guest driving such a device needs its
 * WBINVD to really write back and invalidate the host caches; every other
 * guest must not be allowed to stall all host CPUs that way. KVM decides
 * per VM ("has non-coherent DMA"), and the KVM-VFIO device is what tells
 * it, from the files userspace adds to it.
 *
 * How it is measured: the guest below runs GUEST_WBINVDS WBINVD
 * instructions in real mode. SVM (and VMX) always intercept WBINVD; KVM
 * then calls the host's wbinvd_on_cpus_mask() exactly once per instruction
 * when the VM has non-coherent DMA and does nothing otherwise. A kprobe on
 * that function, read from tracefs's kprobe_profile, counts the calls, so
 * one guest run must cost exactly GUEST_WBINVDS calls or none at all.
 * IOMMU_EXECUTE_WBINVD calls it too, once per flush; a second kprobe, on
 * __wbinvd(), which runs on each CPU a flush reaches, counts the CPUs.
 *
 * The VM runs in several profiles: emulated VT-d with snoop control on or
 * off, virtio-iommu (which cannot enforce coherency), and, proposed, AMD-Vi
 * (which always does). The tests take "the IOMMU can enforce" from what
 * the IOMMU in front of edu is (iommu_facts.h, from sysfs) and require
 * IOMMU_GET_HW_INFO's IOMMU_HW_CAP_ENFORCE_COHERENCY to say the same. edu
 * probes as unable to issue No-Snoop; IOMMU_TEST_DEVICE_NO_SNOOP declares
 * it able. That gives the four boxes of the design, two per profile (1 and
 * 2 where the IOMMU can enforce, 3 and 4 where it cannot):
 *
 *   box 1: the IOMMU can enforce,    the device can No-Snoop
 *   box 2: the IOMMU can enforce,    the device cannot
 *   box 3: the IOMMU cannot enforce, the device can No-Snoop
 *   box 4: neither
 *
 * and "non-coherent DMA present" for box 1 on a noncoherent IOAS/HWPT and
 * for box 3 on an auto or noncoherent one (a coherent one refuses box 3).
 *
 * Tests:
 *   kvfio.create_one_per_vm            KVM_CREATE_DEVICE: TEST flag, EBUSY
 *   kvfio.has_attr                     KVM_HAS_DEVICE_ATTR table
 *   kvfio.file_add_del_errnos          FILE_ADD / FILE_DEL failures
 *   kvfio.coherency_attr_errnos        the 0x100 group's failures, EFAULT,
 *                                      FORCE_DISABLE without files
 *   kvfio.add_del_readd                a cdev and a /dev/iommu fd, nr_files
 *   gate.guest_wbinvd                  per box x IOAS mode (6 variants)
 *   kvfio.transitions                  attach, replace, detach, force
 *                                      disable, FILE_DEL: flushes and edges
 *   kvfio.second_file_no_extra_edges   two contributing cdevs, one edge
 *   kvfio.iommufd_file_as_proof        a /dev/iommu fd added instead
 *   kvfio.close_kvm_device_first       lifetime: the KVM-VFIO fd, then VM
 *   kvfio.close_vm_first               lifetime: the VM fd, then the device
 *   kvfio.close_cdev_while_added       lifetime: KVM keeps the file alive
 *   kvfio.unbind_after_file_del        lifetime: close the cdev attached
 *   kvfio.group_file                   /dev/vfio/<group>
 *   kvfio.execute_wbinvd               IOMMU_EXECUTE_WBINVD
 *   kvfio.execute_wbinvd_callers_cpus  ... flushes only the caller's CPUs
 *   kvfio.execute_wbinvd_rate          ... at most one flush per ms
 *
 * Missing devices, modules, tracefs or kprobes are failures, never skips.
 * Every test runs in its own process and sets up (and tears down) its own
 * VM, /dev/iommu, device fds and kprobes.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <linux/kvm.h>
#include <linux/kvm_vfio_coherency.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"
#include "iommu_facts.h"
#include "kvm_wbinvd.h"

/* ---------------------------------------------------------------------- */
/* the model                                                              */
/* ---------------------------------------------------------------------- */

enum ioas_mode {
	IOAS_AUTO,
	IOAS_COHERENT,
	IOAS_NONCOHERENT,
};

static const char *const ioas_mode_name[] = {
	[IOAS_AUTO] = "auto",
	[IOAS_COHERENT] = "coherent",
	[IOAS_NONCOHERENT] = "noncoherent",
};

static __u32 ioas_mode_flags(enum ioas_mode m)
{
	if (m == IOAS_COHERENT)
		return IOMMU_IOAS_ALLOC_COHERENT;
	if (m == IOAS_NONCOHERENT)
		return IOMMU_IOAS_ALLOC_NONCOHERENT;
	return 0;
}

/* @sc: the IOMMU can enforce coherency; @ns: the device can No-Snoop */
static int box_of(bool sc, bool ns)
{
	if (sc)
		return ns ? 1 : 2;
	return ns ? 3 : 4;
}

/* What KVM is told plus why: the flags of a VM with non-coherent DMA. */
#define NC_FLAGS (KVM_VFIO_COHERENCY_NONCOHERENT | KVM_VFIO_COHERENCY_PROOF)
#define ALL_STATE_FLAGS                                                       \
	(KVM_VFIO_COHERENCY_NONCOHERENT | KVM_VFIO_COHERENCY_PROOF |          \
	 KVM_VFIO_COHERENCY_FORCE_DISABLED)

/* ---------------------------------------------------------------------- */
/* the KVM-VFIO device                                                    */
/* ---------------------------------------------------------------------- */

static int _kvfio_create(int vm, __u32 flags, __u32 *fd)
{
	struct kvm_create_device cd = {
		.type = KVM_DEV_TYPE_VFIO,
		.fd = 0xffffffff,
		.flags = flags,
	};
	int rc;

	rc = ioctl(vm, KVM_CREATE_DEVICE, &cd);
	if (fd)
		*fd = cd.fd;
	return rc;
}

static int __kvfio_create(struct __test_metadata *_metadata, int vm)
{
	__u32 fd = 0xffffffff;

	ASSERT_EQ(0, _kvfio_create(vm, 0, &fd))
		TH_LOG("KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO): %s%s",
		       strerror(errno),
		       errno == ENODEV ? " (no KVM-VFIO device type: is "
					 "kvm_vfio_rs built, or loadable "
					 "through its module alias?)" : "");
	ASSERT_GE((__u32)INT_MAX, fd);
	return (int)fd;
}

/* KVM_{SET,GET,HAS}_DEVICE_ATTR */
static int kvfio_attr(int kdev, unsigned long req, __u32 group, __u64 attr,
		      const void *addr)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uintptr_t)addr,
	};

	return ioctl(kdev, req, &a);
}
#define kvfio_set(kdev, group, attr, addr) \
	kvfio_attr(kdev, KVM_SET_DEVICE_ATTR, group, attr, addr)
#define kvfio_get(kdev, group, attr, addr) \
	kvfio_attr(kdev, KVM_GET_DEVICE_ATTR, group, attr, addr)
#define kvfio_has(kdev, group, attr) \
	kvfio_attr(kdev, KVM_HAS_DEVICE_ATTR, group, attr, NULL)

static int kvfio_add(int kdev, int fd)
{
	__s32 v = fd;

	return kvfio_set(kdev, KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, &v);
}

static int kvfio_del(int kdev, int fd)
{
	__s32 v = fd;

	return kvfio_set(kdev, KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL, &v);
}

/* COHERENCY_STATE into *@st, which is first filled with garbage */
static int kvfio_state(int kdev, struct kvm_vfio_coherency_state *st)
{
	memset(st, 0xa5, sizeof(*st));
	return kvfio_get(kdev, KVM_DEV_VFIO_COHERENCY,
			 KVM_DEV_VFIO_COHERENCY_STATE, st);
}

/* COHERENCY_FILE of @fd into *@f; the out fields start as garbage */
static int kvfio_file(int kdev, int fd, struct kvm_vfio_coherency_file *f)
{
	memset(f, 0xa5, sizeof(*f));
	f->fd = fd;
	return kvfio_get(kdev, KVM_DEV_VFIO_COHERENCY,
			 KVM_DEV_VFIO_COHERENCY_FILE, f);
}

static int kvfio_force(int kdev, __u32 val)
{
	return kvfio_set(kdev, KVM_DEV_VFIO_COHERENCY,
			 KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE, &val);
}

static int kvfio_force_get(int kdev, __u32 *val)
{
	*val = 0xa5a5a5a5;
	return kvfio_get(kdev, KVM_DEV_VFIO_COHERENCY,
			 KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE, val);
}

#define test_kvfio_add(kdev, fd)                                              \
	ASSERT_EQ(0, kvfio_add(kdev, fd))                                     \
		TH_LOG("KVM_DEV_VFIO_FILE_ADD(%s): %s", #fd, strerror(errno))
#define test_kvfio_del(kdev, fd)                                              \
	ASSERT_EQ(0, kvfio_del(kdev, fd))                                     \
		TH_LOG("KVM_DEV_VFIO_FILE_DEL(%s): %s", #fd, strerror(errno))
#define test_kvfio_force(kdev, val)                                           \
	ASSERT_EQ(0, kvfio_force(kdev, val))                                  \
		TH_LOG("FORCE_DISABLE <- %u: %s", (unsigned int)(val),        \
		       strerror(errno))

/*
 * The device's COHERENCY_STATE must be exactly this, and consistent with
 * itself: PROOF iff something contributes, NONCOHERENT iff PROOF and not
 * FORCE_DISABLED, and KVM was told "non-coherent" once more than it was
 * told "coherent" exactly while NONCOHERENT is set.
 */
static void __expect_state(struct __test_metadata *_metadata, int kdev,
			   __u32 flags, __u32 nr_files, __u32 nr_contributing,
			   __u64 reg, __u64 unreg, const char *when)
{
	struct kvm_vfio_coherency_state st;
	bool nc;

	ASSERT_EQ(0, kvfio_state(kdev, &st))
		TH_LOG("%s: KVM_DEV_VFIO_COHERENCY_STATE: %s", when,
		       strerror(errno));
	if (st.flags != flags || st.nr_files != nr_files ||
	    st.nr_contributing != nr_contributing ||
	    st.register_edges != reg || st.unregister_edges != unreg)
		TH_LOG("%s: state flags 0x%x files %u contributing %u edges "
		       "+%llu -%llu; wanted 0x%x %u %u +%llu -%llu", when,
		       st.flags, st.nr_files, st.nr_contributing,
		       (unsigned long long)st.register_edges,
		       (unsigned long long)st.unregister_edges, flags,
		       nr_files, nr_contributing, (unsigned long long)reg,
		       (unsigned long long)unreg);
	EXPECT_EQ(flags, st.flags) TH_LOG("%s: flags", when);
	EXPECT_EQ(nr_files, st.nr_files) TH_LOG("%s: nr_files", when);
	EXPECT_EQ(nr_contributing, st.nr_contributing)
		TH_LOG("%s: nr_contributing", when);
	EXPECT_EQ(reg, st.register_edges) TH_LOG("%s: register_edges", when);
	EXPECT_EQ(unreg, st.unregister_edges)
		TH_LOG("%s: unregister_edges", when);
	EXPECT_EQ(0U, st.__reserved) TH_LOG("%s: __reserved", when);

	EXPECT_EQ(0U, st.flags & ~ALL_STATE_FLAGS)
		TH_LOG("%s: unknown flags 0x%x", when, st.flags);
	EXPECT_EQ(st.nr_contributing > 0,
		  !!(st.flags & KVM_VFIO_COHERENCY_PROOF))
		TH_LOG("%s: PROOF must mean 'a file contributes'", when);
	nc = (st.flags & KVM_VFIO_COHERENCY_PROOF) &&
	     !(st.flags & KVM_VFIO_COHERENCY_FORCE_DISABLED);
	EXPECT_EQ(nc, !!(st.flags & KVM_VFIO_COHERENCY_NONCOHERENT))
		TH_LOG("%s: NONCOHERENT must be PROOF && !FORCE_DISABLED",
		       when);
	EXPECT_EQ((__u64)nc, st.register_edges - st.unregister_edges)
		TH_LOG("%s: the edges do not add up to what KVM holds", when);
	EXPECT_GE(st.nr_files, st.nr_contributing);
}
#define expect_state(kdev, flags, files, contrib, reg, unreg, when)           \
	__expect_state(_metadata, kdev, flags, files, contrib, reg, unreg,    \
		       when)

/* COHERENCY_FILE of @fd: added, of @kind, contributing iff @contributes */
static void __expect_file(struct __test_metadata *_metadata, int kdev,
			  int fd, bool contributes, __u32 kind,
			  const char *when)
{
	struct kvm_vfio_coherency_file f;

	ASSERT_EQ(0, kvfio_file(kdev, fd, &f))
		TH_LOG("%s: KVM_DEV_VFIO_COHERENCY_FILE(%d): %s", when, fd,
		       strerror(errno));
	EXPECT_EQ(fd, f.fd) TH_LOG("%s: the fd came back changed", when);
	EXPECT_EQ((__u32)contributes, f.contributes)
		TH_LOG("%s: fd %d should %scontribute", when, fd,
		       contributes ? "" : "not ");
	EXPECT_EQ(kind, f.kind) TH_LOG("%s: kind of fd %d", when, fd);
	EXPECT_EQ(0U, f.__reserved) TH_LOG("%s: __reserved", when);
}
#define expect_file(kdev, fd, contributes, kind, when)                        \
	__expect_file(_metadata, kdev, fd, contributes, kind, when)

/* ---------------------------------------------------------------------- */
/* /dev/iommu and VFIO                                                    */
/* ---------------------------------------------------------------------- */

/* out_capabilities of @dev_id */
static __u64 __dev_caps(struct __test_metadata *_metadata, int fd,
			__u32 dev_id)
{
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
	};

	ASSERT_EQ(0, ioctl(fd, IOMMU_GET_HW_INFO, &cmd))
		TH_LOG("IOMMU_GET_HW_INFO(dev %u): %s", dev_id,
		       strerror(errno));
	return cmd.out_capabilities;
}

/* iommufd's own view: NONCOHERENT_DMA of @dev_id must be @nc */
#define expect_dev_nc(fd, dev_id, nc, when)                                   \
	EXPECT_EQ((bool)(nc), !!(__dev_caps(_metadata, fd, dev_id) &          \
				 IOMMU_HW_CAP_NONCOHERENT_DMA))               \
		TH_LOG("%s: GET_HW_INFO's NONCOHERENT_DMA", when)

/* IOMMU_TEST_DEVICE_NO_SNOOP: declare @dev_id able (1) or not (0) */
static void __no_snoop(struct __test_metadata *_metadata, int fd,
		       __u32 dev_id, __u32 val)
{
	struct iommu_test_device_no_snoop cmd = {
		.size = sizeof(cmd),
		.dev_id = dev_id,
		.no_snoop = val,
	};

	ASSERT_EQ(0, ioctl(fd, IOMMU_TEST_DEVICE_NO_SNOOP, &cmd))
		TH_LOG("IOMMU_TEST_DEVICE_NO_SNOOP(dev %u, %u): %s%s", dev_id,
		       val, strerror(errno),
		       errno == ENOTTY ? " (kernel built without "
					 "CONFIG_IOMMUFD_RS_TEST?)" : "");
}

static __u32 __ioas_alloc(struct __test_metadata *_metadata, int fd,
			  enum ioas_mode m)
{
	__u32 id = 0;

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, ioas_mode_flags(m), &id))
		TH_LOG("IOMMU_IOAS_ALLOC(%s): %s", ioas_mode_name[m],
		       strerror(errno));
	return id;
}

/* paging HWPT on IOAS @ioas for @dev_id with @flags */
static __u32 __hwpt_alloc(struct __test_metadata *_metadata, int fd,
			  __u32 dev_id, __u32 ioas, __u32 flags)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = ioas,
	};

	ASSERT_EQ(0, ioctl(fd, IOMMU_HWPT_ALLOC, &cmd))
		TH_LOG("IOMMU_HWPT_ALLOC(flags 0x%x): %s", flags,
		       strerror(errno));
	return cmd.out_hwpt_id;
}

/* IOMMU_DESTROY of @id on @fd */
#define test_ioctl_destroy_fd(fd, id)                                         \
	ASSERT_EQ(0, _test_ioctl_destroy(fd, id))                             \
		TH_LOG("IOMMU_DESTROY(%u): %s", (unsigned int)(id),           \
		       strerror(errno))

/* attach (or replace) @devfd to @pt; returns the id reported back */
static __u32 __attach(struct __test_metadata *_metadata, int devfd, __u32 pt)
{
	__u32 got = pt;

	ASSERT_EQ(0, _test_ioctl_vfio_attach(devfd, &got))
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u): %s", pt,
		       strerror(errno));
	ASSERT_NE(0U, got);
	return got;
}
#define attach(devfd, pt) __attach(_metadata, devfd, pt)
#define detach(devfd)                                                         \
	ASSERT_EQ(0, _test_ioctl_vfio_detach(devfd))                          \
		TH_LOG("VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(errno))

/* bind @devfd to @iommufd; returns the device id */
static __u32 __bind(struct __test_metadata *_metadata, int devfd, int iommufd)
{
	__u32 id = 0;

	ASSERT_EQ(0, _test_ioctl_vfio_bind(devfd, iommufd, &id))
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	ASSERT_NE(0U, id);
	return id;
}

/* IOMMU_EXECUTE_WBINVD */
static int execute_wbinvd(int fd, __u32 flags)
{
	struct iommu_execute_wbinvd cmd = {
		.size = sizeof(cmd),
		.flags = flags,
	};

	return ioctl(fd, IOMMU_EXECUTE_WBINVD, &cmd);
}

/* The IOMMU group number of PCI function @bdf. */
static int __iommu_group_of(struct __test_metadata *_metadata,
			    const char *bdf)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	char *end;
	ssize_t n;
	long nr;

	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/iommu_group",
		 bdf);
	n = readlink(path, target, sizeof(target) - 1);
	ASSERT_LT(0, n) TH_LOG("readlink %s: %s", path, strerror(errno));
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	nr = strtol(base, &end, 10);
	ASSERT_TRUE(end != base && !*end && nr >= 0 && nr < INT_MAX)
		TH_LOG("%s points to '%s', not a group number", path, target);
	return (int)nr;
}

/* ---------------------------------------------------------------------- */
/* the environment every test starts from                                 */
/* ---------------------------------------------------------------------- */

/*
 * /dev/iommu, the edu cdev (open, NOT bound: some tests add it to KVM
 * first, as QEMU does), a guest with its KVM-VFIO device, both kprobes.
 */
struct env {
	int fd;		/* /dev/iommu */
	int edu;	/* edu's VFIO cdev */
	char bdf[64];
	__u32 devid;	/* after __env_bind() */
	bool sc;	/* after __env_bind(): edu's IOMMU can enforce */
	struct guest g;
	int kdev;	/* the KVM-VFIO device of g's VM */
};

static void __env_setup(struct __test_metadata *_metadata, struct env *e)
{
	e->fd = e->edu = e->kdev = -1;
	e->devid = 0;
	e->sc = false;
	guest_init(&e->g);

	open_iommufd_or_fail(&e->fd);
	e->edu = open_edu_or_fail(e->bdf);
	__guest_create_wbinvd(_metadata, &e->g);
	e->kdev = __kvfio_create(_metadata, e->g.vm);
	/* last: nothing after it may fail */
	__probes_install(_metadata);
}

/* KVM goes first, so the VFIO files it holds are dropped before ours. */
static void __env_teardown(struct __test_metadata *_metadata, struct env *e)
{
	int rc;

	if (e->kdev >= 0)
		EXPECT_EQ(0, close(e->kdev));
	EXPECT_EQ(0, guest_destroy(&e->g));
	if (e->edu >= 0)
		EXPECT_EQ(0, close(e->edu));
	if (e->fd >= 0)
		EXPECT_EQ(0, close(e->fd));
	e->kdev = e->edu = e->fd = -1;
	rc = probes_remove();
	EXPECT_EQ(0, rc)
		TH_LOG("removing the kprobes: %s", strerror(-rc));
}

/*
 * Bind edu to the env's iommufd and learn what its IOMMU can enforce: from
 * the IOMMU itself, and the driver's report must agree.
 */
static void __env_bind(struct __test_metadata *_metadata, struct env *e)
{
	struct iommu_facts f;

	iommu_facts_or_fail(e->bdf, &f);
	e->devid = __bind(_metadata, e->edu, e->fd);
	e->sc = f.can_enforce;
	EXPECT_EQ(e->sc, !!(__dev_caps(_metadata, e->fd, e->devid) &
			    IOMMU_HW_CAP_ENFORCE_COHERENCY))
		TH_LOG("edu %s is behind %s %s, which %s enforce coherency; "
		       "GET_HW_INFO says otherwise", e->bdf, f.name, f.unit,
		       f.can_enforce ? "can" : "cannot");
}

/*
 * As a module (CONFIG_KVM_VFIO_RS=m), the device type is loaded by KVM on
 * demand and cannot be unloaded while a VM has its device; built in, it is
 * always there.  Runs without the shared fixture so that no other device
 * holds the module.
 */
#define MODULE_NAME "kvm_vfio_rs"

static bool module_loaded(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, MODULE_NAME " ", strlen(MODULE_NAME) + 1);
	fclose(f);
	return found;
}

static int delete_module(const char *name)
{
	return syscall(__NR_delete_module, name, O_NONBLOCK);
}

/* A built-in Rust module without parameters has no /sys/module entry. */
static bool module_built_in(void)
{
	return !module_loaded() &&
	       !system("zcat /proc/config.gz 2>/dev/null | "
		       "grep -qx CONFIG_KVM_VFIO_RS=y");
}

TEST(module_pinned_by_device)
{
	int kvm, vm, kdev;

	kvm = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, kvm) TH_LOG("open %s: %s", KVM_DEV_PATH, strerror(errno));
	vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
	ASSERT_LE(0, vm) TH_LOG("KVM_CREATE_VM: %s", strerror(errno));
	kdev = __kvfio_create(_metadata, vm);

	if (module_built_in()) {
		/* CONFIG_KVM_VFIO_RS=y: registered at boot, never unloaded */
		TH_LOG(MODULE_NAME " is built in");
		EXPECT_ERRNO(ENOENT, delete_module(MODULE_NAME));
		EXPECT_EQ(0, close(kdev));
		EXPECT_EQ(0, close(vm));
		EXPECT_EQ(0, close(kvm));
		return;
	}
	ASSERT_TRUE(module_loaded())
		TH_LOG("the device exists but " MODULE_NAME " is neither "
		       "loaded nor built in (by /proc/config.gz)");
	/* in use: refused, and still there */
	EXPECT_ERRNO(EWOULDBLOCK, delete_module(MODULE_NAME));
	EXPECT_TRUE(module_loaded());

	/* the last device gone, the module may go ... */
	ASSERT_EQ(0, close(kdev));
	ASSERT_EQ(0, delete_module(MODULE_NAME))
		TH_LOG("delete_module(" MODULE_NAME "): %s", strerror(errno));
	EXPECT_FALSE(module_loaded());
	/* ... and the next KVM_CREATE_DEVICE brings it back */
	EXPECT_EQ(0, _kvfio_create(vm, KVM_CREATE_DEVICE_TEST, NULL))
		TH_LOG("KVM_CREATE_DEVICE_TEST after unload: %s",
		       strerror(errno));
	EXPECT_TRUE(module_loaded());
	kdev = __kvfio_create(_metadata, vm);
	EXPECT_EQ(0, close(kdev));
	EXPECT_EQ(0, close(vm));
	EXPECT_EQ(0, close(kvm));
}

FIXTURE(kvfio)
{
	struct env e;
};

FIXTURE_SETUP(kvfio)
{
	__env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(kvfio)
{
	__env_teardown(_metadata, &self->e);
}

/* guest runs under TCG are slow: give the tests that run many room */
#define GUEST_TIMEOUT 180

/* ---------------------------------------------------------------------- */
/* the device's ABI                                                       */
/* ---------------------------------------------------------------------- */

/*
 * One KVM-VFIO device per VM. KVM_CREATE_DEVICE_TEST only asks whether the
 * type exists (KVM answers before the device's create runs), so it says 0
 * both before and after a device exists and never creates one.
 */
TEST_F(kvfio, create_one_per_vm)
{
	struct env *e = &self->e;
	__u32 fd = 0;
	int vm2, kdev2;

	/* the fixture's VM already has one */
	ASSERT_EQ(0, _kvfio_create(e->g.vm, KVM_CREATE_DEVICE_TEST, &fd))
		TH_LOG("KVM_CREATE_DEVICE_TEST: %s", strerror(errno));
	EXPECT_EQ(0xffffffffU, fd) TH_LOG("a TEST create returned an fd");
	EXPECT_ERRNO(EBUSY, _kvfio_create(e->g.vm, 0, &fd))
		TH_LOG("a second KVM-VFIO device on one VM");

	/* a fresh VM: TEST first, and the real create still works after it */
	vm2 = ioctl(e->g.kvm, KVM_CREATE_VM, 0UL);
	ASSERT_LE(0, vm2) TH_LOG("KVM_CREATE_VM: %s", strerror(errno));
	ASSERT_EQ(0, _kvfio_create(vm2, KVM_CREATE_DEVICE_TEST, &fd));
	EXPECT_EQ(0xffffffffU, fd);
	kdev2 = __kvfio_create(_metadata, vm2);
	EXPECT_ERRNO(EBUSY, _kvfio_create(vm2, 0, NULL));
	EXPECT_EQ(0, _kvfio_create(vm2, KVM_CREATE_DEVICE_TEST, NULL));
	/* it is a KVM-VFIO device, and a separate one */
	EXPECT_EQ(0, kvfio_has(kdev2, KVM_DEV_VFIO_FILE,
			       KVM_DEV_VFIO_FILE_ADD));
	test_kvfio_add(kdev2, e->edu);
	expect_state(kdev2, 0, 1, 0, 0, 0, "second VM's device");
	expect_state(e->kdev, 0, 0, 0, 0, 0, "first VM's device");
	EXPECT_EQ(0, close(kdev2));
	EXPECT_EQ(0, close(vm2));
}

TEST_F(kvfio, has_attr)
{
	static const struct {
		__u32 group;
		__u64 attr;
		int err;
	} table[] = {
		{ KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, 0 },
		{ KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL, 0 },
		{ KVM_DEV_VFIO_COHERENCY, KVM_DEV_VFIO_COHERENCY_STATE, 0 },
		{ KVM_DEV_VFIO_COHERENCY, KVM_DEV_VFIO_COHERENCY_FILE, 0 },
		{ KVM_DEV_VFIO_COHERENCY, KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE,
		  0 },
		{ KVM_DEV_VFIO_FILE, 0, ENXIO },
		/* SPAPR only */
		{ KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, ENXIO },
		{ KVM_DEV_VFIO_FILE, 4, ENXIO },
		/* the attribute is 64 bits wide: no truncation */
		{ KVM_DEV_VFIO_FILE, (1ULL << 32) | KVM_DEV_VFIO_FILE_ADD,
		  ENXIO },
		{ 0, KVM_DEV_VFIO_FILE_ADD, ENXIO },
		{ 2, KVM_DEV_VFIO_FILE_ADD, ENXIO },
		{ 7, KVM_DEV_VFIO_FILE_ADD, ENXIO },
		{ KVM_DEV_VFIO_COHERENCY, 0, ENXIO },
		{ KVM_DEV_VFIO_COHERENCY, 4, ENXIO },
		{ KVM_DEV_VFIO_COHERENCY,
		  (1ULL << 32) | KVM_DEV_VFIO_COHERENCY_STATE, ENXIO },
		{ KVM_DEV_VFIO_COHERENCY + 1, KVM_DEV_VFIO_COHERENCY_STATE,
		  ENXIO },
		{ KVM_DEV_VFIO_COHERENCY | KVM_DEV_VFIO_FILE,
		  KVM_DEV_VFIO_FILE_ADD, ENXIO },
		{ 0xffffffff, 1, ENXIO },
	};
	unsigned int i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(table); i++) {
		rc = kvfio_has(self->e.kdev, table[i].group, table[i].attr);
		if (!table[i].err) {
			EXPECT_EQ(0, rc)
				TH_LOG("HAS_DEVICE_ATTR(0x%x, 0x%llx): %s",
				       table[i].group,
				       (unsigned long long)table[i].attr,
				       strerror(errno));
		} else {
			EXPECT_ERRNO(table[i].err, rc)
				TH_LOG("HAS_DEVICE_ATTR(0x%x, 0x%llx)",
				       table[i].group,
				       (unsigned long long)table[i].attr);
		}
	}
}

/*
 * FILE_ADD / FILE_DEL: the argument must be readable, the fd open, the file
 * a VFIO group or device file or /dev/iommu, added once; DEL wants a file
 * that was added. Nothing that fails leaves a file behind.
 */
TEST_F(kvfio, file_add_del_errnos)
{
	struct env *e = &self->e;
	int devnull, efd, mfd, closed;
	__s32 one = e->edu;
	void *none;

	none = mmap(NULL, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd) TH_LOG("eventfd: %s", strerror(errno));
	mfd = memfd_create("iommufd_kvm_vfio", MFD_CLOEXEC);
	ASSERT_LE(0, mfd) TH_LOG("memfd_create: %s", strerror(errno));
	/* a number that was open a moment ago; nothing opens after this */
	closed = dup(mfd);
	ASSERT_LE(0, closed);
	ASSERT_EQ(0, close(closed));

	/* the fd cannot be read */
	EXPECT_ERRNO(EFAULT, kvfio_set(e->kdev, KVM_DEV_VFIO_FILE,
				       KVM_DEV_VFIO_FILE_ADD, none));
	EXPECT_ERRNO(EFAULT, kvfio_set(e->kdev, KVM_DEV_VFIO_FILE,
				       KVM_DEV_VFIO_FILE_DEL, none));

	/* not an open fd */
	EXPECT_ERRNO(EBADF, kvfio_add(e->kdev, closed));
	EXPECT_ERRNO(EBADF, kvfio_add(e->kdev, -1));
	EXPECT_ERRNO(EBADF, kvfio_del(e->kdev, closed));
	EXPECT_ERRNO(EBADF, kvfio_del(e->kdev, -1));

	/* open, but nothing KVM-VFIO knows */
	EXPECT_ERRNO(EINVAL, kvfio_add(e->kdev, devnull)) TH_LOG("/dev/null");
	EXPECT_ERRNO(EINVAL, kvfio_add(e->kdev, efd)) TH_LOG("an eventfd");
	EXPECT_ERRNO(EINVAL, kvfio_add(e->kdev, mfd)) TH_LOG("a memfd");
	EXPECT_ERRNO(EINVAL, kvfio_add(e->kdev, e->g.vm)) TH_LOG("the VM");
	EXPECT_ERRNO(EINVAL, kvfio_add(e->kdev, e->g.kvm))
		TH_LOG("/dev/kvm");
	expect_state(e->kdev, 0, 0, 0, 0, 0, "after the refused ADDs");

	/* DEL of open files that were never added */
	EXPECT_ERRNO(ENOENT, kvfio_del(e->kdev, e->edu));
	EXPECT_ERRNO(ENOENT, kvfio_del(e->kdev, e->fd));
	EXPECT_ERRNO(ENOENT, kvfio_del(e->kdev, devnull));

	/* twice the same file */
	test_kvfio_add(e->kdev, e->edu);
	EXPECT_ERRNO(EEXIST, kvfio_add(e->kdev, e->edu));
	expect_state(e->kdev, 0, 1, 0, 0, 0, "one file");
	test_kvfio_del(e->kdev, e->edu);
	EXPECT_ERRNO(ENOENT, kvfio_del(e->kdev, e->edu));

	/* unknown attributes of group 1, and unknown groups */
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_FILE, 0, &one));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_FILE,
				      KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE, &one));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_FILE, 99, &one));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, 7, KVM_DEV_VFIO_FILE_ADD,
				      &one));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, 0, KVM_DEV_VFIO_FILE_ADD,
				      &one));
	/* group 1 cannot be read */
	EXPECT_ERRNO(ENXIO, kvfio_get(e->kdev, KVM_DEV_VFIO_FILE,
				      KVM_DEV_VFIO_FILE_ADD, &one));
	EXPECT_ERRNO(ENXIO, kvfio_get(e->kdev, KVM_DEV_VFIO_FILE,
				      KVM_DEV_VFIO_FILE_DEL, &one));
	EXPECT_ERRNO(ENXIO, kvfio_get(e->kdev, 7, 1, &one));
	EXPECT_EQ(e->edu, one) TH_LOG("a failed GET wrote the argument");

	expect_state(e->kdev, 0, 0, 0, 0, 0, "at the end");
	EXPECT_EQ(0, close(mfd));
	EXPECT_EQ(0, close(efd));
	EXPECT_EQ(0, close(devnull));
	munmap(none, PAGE_SIZE);
}

/*
 * The coherency group: STATE and FILE are read-only, FORCE_DISABLE takes 0
 * or 1, bad addresses are EFAULT, FILE wants an open and added fd.
 */
TEST_F_TIMEOUT(kvfio, coherency_attr_errnos, GUEST_TIMEOUT)
{
	struct kvm_vfio_coherency_file f, *ro_file;
	struct kvm_vfio_coherency_state st;
	struct env *e = &self->e;
	void *none, *ro;
	int devnull, closed;
	__u32 val;

	none = mmap(NULL, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	ro = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, closed);
	ASSERT_EQ(0, close(closed));

	test_kvfio_add(e->kdev, e->edu);

	/* STATE and FILE cannot be set */
	memset(&st, 0, sizeof(st));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY,
				      KVM_DEV_VFIO_COHERENCY_STATE, &st));
	memset(&f, 0, sizeof(f));
	f.fd = e->edu;
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY,
				      KVM_DEV_VFIO_COHERENCY_FILE, &f));
	/* unknown attributes of the group */
	val = 0;
	EXPECT_ERRNO(ENXIO, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY, 0,
				      &st));
	EXPECT_ERRNO(ENXIO, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY, 4,
				      &st));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY, 0,
				      &val));
	EXPECT_ERRNO(ENXIO, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY, 4,
				      &val));

	/* FORCE_DISABLE: 0 by default, only 0 and 1 */
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val))
		TH_LOG("GET FORCE_DISABLE: %s", strerror(errno));
	EXPECT_EQ(0U, val);
	EXPECT_ERRNO(EINVAL, kvfio_force(e->kdev, 2));
	EXPECT_ERRNO(EINVAL, kvfio_force(e->kdev, 0xffffffff));
	EXPECT_ERRNO(EINVAL, kvfio_force(e->kdev, 1U << 31));
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val));
	EXPECT_EQ(0U, val) TH_LOG("a refused value was stored");

	/* unreadable / unwritable arguments */
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_STATE, none));
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_FILE, none));
	EXPECT_ERRNO(EFAULT, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE,
				       none));
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE,
				       none));
	/*
	 * Readable but read-only: the answer cannot be written back. The
	 * page starts with a zero word (a valid FORCE_DISABLE value) and
	 * holds a FILE query for the added cdev further in.
	 */
	memset(ro, 0, PAGE_SIZE);
	ro_file = (struct kvm_vfio_coherency_file *)((char *)ro + 64);
	ro_file->fd = e->edu;
	ASSERT_EQ(0, mprotect(ro, PAGE_SIZE, PROT_READ));
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_STATE, ro));
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_FILE, ro_file))
		TH_LOG("FILE of an added fd into a read-only page");
	EXPECT_ERRNO(EFAULT, kvfio_get(e->kdev, KVM_DEV_VFIO_COHERENCY,
				       KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE,
				       ro));
	/* setting only reads: a value in a read-only page is fine */
	EXPECT_EQ(0, kvfio_set(e->kdev, KVM_DEV_VFIO_COHERENCY,
			       KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE, ro))
		TH_LOG("FORCE_DISABLE <- 0 from a read-only page: %s",
		       strerror(errno));
	expect_state(e->kdev, 0, 1, 0, 0, 0, "after the EFAULTs");

	/* FILE of fds that are not open or not added */
	EXPECT_ERRNO(EBADF, kvfio_file(e->kdev, closed, &f));
	EXPECT_ERRNO(EBADF, kvfio_file(e->kdev, -1, &f));
	EXPECT_ERRNO(ENOENT, kvfio_file(e->kdev, devnull, &f));
	EXPECT_ERRNO(ENOENT, kvfio_file(e->kdev, e->fd, &f));
	expect_file(e->kdev, e->edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "unbound cdev");

	/*
	 * Forcing with nothing to force: FORCE_DISABLED shows, KVM is told
	 * nothing, and setting the same value again changes nothing.
	 */
	test_kvfio_force(e->kdev, 1);
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val));
	EXPECT_EQ(1U, val);
	expect_state(e->kdev, KVM_VFIO_COHERENCY_FORCE_DISABLED, 1, 0, 0, 0,
		     "forced, nothing contributes");
	test_kvfio_force(e->kdev, 1);
	expect_state(e->kdev, KVM_VFIO_COHERENCY_FORCE_DISABLED, 1, 0, 0, 0,
		     "forced twice");
	test_kvfio_force(e->kdev, 0);
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val));
	EXPECT_EQ(0U, val);
	expect_state(e->kdev, 0, 1, 0, 0, 0, "unforced");
	expect_flushes(&e->g, false, "one unbound cdev");

	test_kvfio_del(e->kdev, e->edu);
	expect_state(e->kdev, 0, 0, 0, 0, 0, "at the end");
	EXPECT_EQ(0, close(devnull));
	munmap(ro, PAGE_SIZE);
	munmap(none, PAGE_SIZE);
}

/*
 * Adding, deleting and re-adding a cdev and a /dev/iommu fd. A dup()ed fd
 * is the same file. Nothing here is attached: nothing contributes.
 */
TEST_F_TIMEOUT(kvfio, add_del_readd, GUEST_TIMEOUT)
{
	struct kvm_vfio_coherency_file f;
	struct env *e = &self->e;
	int dup_edu;

	test_kvfio_add(e->kdev, e->edu);
	expect_file(e->kdev, e->edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "cdev added");
	expect_state(e->kdev, 0, 1, 0, 0, 0, "cdev added");
	EXPECT_ERRNO(EEXIST, kvfio_add(e->kdev, e->edu));

	dup_edu = dup(e->edu);
	ASSERT_LE(0, dup_edu);
	EXPECT_ERRNO(EEXIST, kvfio_add(e->kdev, dup_edu))
		TH_LOG("a dup()ed fd is the same file");
	expect_file(e->kdev, dup_edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "looked up through a dup()ed fd");

	__env_bind(_metadata, e);
	test_kvfio_add(e->kdev, e->fd);
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "/dev/iommu added");
	expect_file(e->kdev, e->edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "bound cdev");
	EXPECT_ERRNO(EEXIST, kvfio_add(e->kdev, e->fd));
	expect_state(e->kdev, 0, 2, 0, 0, 0, "two files");

	/* DEL through the dup()ed fd removes the cdev's file */
	test_kvfio_del(e->kdev, dup_edu);
	EXPECT_ERRNO(ENOENT, kvfio_file(e->kdev, e->edu, &f));
	EXPECT_ERRNO(ENOENT, kvfio_del(e->kdev, e->edu));
	expect_state(e->kdev, 0, 1, 0, 0, 0, "cdev deleted");
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "the other file is untouched");

	test_kvfio_add(e->kdev, e->edu);
	expect_state(e->kdev, 0, 2, 0, 0, 0, "cdev added again");
	test_kvfio_del(e->kdev, e->fd);
	EXPECT_ERRNO(ENOENT, kvfio_file(e->kdev, e->fd, &f));
	expect_state(e->kdev, 0, 1, 0, 0, 0, "/dev/iommu deleted");
	test_kvfio_add(e->kdev, e->fd);
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "/dev/iommu added again");
	expect_state(e->kdev, 0, 2, 0, 0, 0, "both again");
	expect_flushes(&e->g, false, "two files, nothing attached");

	test_kvfio_del(e->kdev, e->edu);
	test_kvfio_del(e->kdev, e->fd);
	expect_state(e->kdev, 0, 0, 0, 0, 0, "all deleted");
	EXPECT_EQ(0, close(dup_edu));
}

/* ---------------------------------------------------------------------- */
/* the gate, box by box                                                   */
/* ---------------------------------------------------------------------- */

FIXTURE(gate)
{
	struct env e;
};

FIXTURE_VARIANT(gate)
{
	enum ioas_mode mode;	/* of the IOAS edu attaches to */
	bool no_snoop;		/* override before attaching */
};

FIXTURE_VARIANT_ADD(gate, probed_auto)
{
	.mode = IOAS_AUTO,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(gate, probed_noncoherent)
{
	.mode = IOAS_NONCOHERENT,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(gate, probed_coherent)
{
	.mode = IOAS_COHERENT,
	.no_snoop = false,
};

FIXTURE_VARIANT_ADD(gate, no_snoop_auto)
{
	.mode = IOAS_AUTO,
	.no_snoop = true,
};

FIXTURE_VARIANT_ADD(gate, no_snoop_noncoherent)
{
	.mode = IOAS_NONCOHERENT,
	.no_snoop = true,
};

FIXTURE_VARIANT_ADD(gate, no_snoop_coherent)
{
	.mode = IOAS_COHERENT,
	.no_snoop = true,
};

FIXTURE_SETUP(gate)
{
	__env_setup(_metadata, &self->e);
}

FIXTURE_TEARDOWN(gate)
{
	__env_teardown(_metadata, &self->e);
}

/*
 * edu bound to a fresh /dev/iommu, its cdev added to KVM, attached to an
 * IOAS of the variant's mode. Guest WBINVD must flush exactly when the
 * device then has non-coherent DMA, and the device's STATE, the file's
 * contribution and iommufd's own NONCOHERENT_DMA bit must agree.
 */
TEST_F_TIMEOUT(gate, guest_wbinvd, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	bool ns = variant->no_snoop, refused, nc;
	__u32 ioas, pt;
	char when[96];
	int rc;

	__env_bind(_metadata, e);
	if (ns)
		__no_snoop(_metadata, e->fd, e->devid, 1);
	refused = variant->mode == IOAS_COHERENT && ns && !e->sc;
	nc = !refused && ns &&
	     (variant->mode == IOAS_NONCOHERENT || !e->sc);
	snprintf(when, sizeof(when), "box %d, %s IOAS", box_of(e->sc, ns),
		 ioas_mode_name[variant->mode]);
	TH_LOG("edu %s: box %d (IOMMU %s enforce, device %s No-Snoop), %s "
	       "IOAS: expecting %s", e->bdf, box_of(e->sc, ns),
	       e->sc ? "can" : "cannot", ns ? "can" : "cannot",
	       ioas_mode_name[variant->mode],
	       refused ? "a refused attach" :
	       nc ? "flushes" : "no flushes");

	test_kvfio_add(e->kdev, e->edu);
	expect_state(e->kdev, 0, 1, 0, 0, 0, "bound, unattached");

	ioas = __ioas_alloc(_metadata, e->fd, variant->mode);
	pt = ioas;
	rc = _test_ioctl_vfio_attach(e->edu, &pt);
	if (refused) {
		EXPECT_ERRNO(EINVAL, rc)
			TH_LOG("%s: a coherent IOAS must refuse box 3", when);
	} else {
		ASSERT_EQ(0, rc)
			TH_LOG("%s: attach: %s", when, strerror(errno));
	}

	expect_dev_nc(e->fd, e->devid, nc, when);
	expect_file(e->kdev, e->edu, nc, KVM_VFIO_FILE_KIND_DEVICE, when);
	expect_state(e->kdev, nc ? NC_FLAGS : 0, 1, nc, nc, 0, when);
	expect_flushes(&e->g, nc, when);

	if (!refused) {
		detach(e->edu);
		expect_file(e->kdev, e->edu, false,
			    KVM_VFIO_FILE_KIND_DEVICE, "detached");
		expect_state(e->kdev, 0, 1, 0, nc, nc, "detached");
		expect_flushes(&e->g, false, "detached");
	}
	test_kvfio_del(e->kdev, e->edu);
	expect_state(e->kdev, 0, 0, 0, nc, nc, "file deleted");
	test_ioctl_destroy_fd(e->fd, ioas);
}

/* ---------------------------------------------------------------------- */
/* transitions                                                            */
/* ---------------------------------------------------------------------- */

/*
 * edu declared No-Snoop capable on noncoherent page tables, which gives
 * non-coherent DMA in both profiles. Followed through QEMU's order (add
 * before bind), attach, replace, detach, force-disable and FILE_DEL: the
 * flushes must follow at once, and KVM must only hear about real edges.
 */
TEST_F_TIMEOUT(kvfio, transitions, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u64 reg = 0, unreg = 0;
	__u32 nc_ioas, auto_ioas, hwpt, val;
	bool auto_nc;

	test_kvfio_add(e->kdev, e->edu);
	expect_file(e->kdev, e->edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "added before bind");
	expect_state(e->kdev, 0, 1, 0, 0, 0, "added before bind");
	expect_flushes(&e->g, false, "added before bind");

	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	auto_nc = !e->sc;
	TH_LOG("edu %s: box %d", e->bdf, box_of(e->sc, true));
	expect_state(e->kdev, 0, 1, 0, 0, 0, "bound, unattached");
	expect_flushes(&e->g, false, "bound, unattached");

	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	reg++;
	expect_file(e->kdev, e->edu, true, KVM_VFIO_FILE_KIND_DEVICE,
		    "attached");
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg, "attached");
	expect_flushes(&e->g, true, "attached");

	/* replace onto another non-coherent HWPT and back: no edges */
	hwpt = __hwpt_alloc(_metadata, e->fd, e->devid, nc_ioas,
			    IOMMU_HWPT_ALLOC_NONCOHERENT);
	EXPECT_EQ(hwpt, attach(e->edu, hwpt));
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg,
		     "replaced by a noncoherent HWPT");
	expect_flushes(&e->g, true, "replaced by a noncoherent HWPT");
	attach(e->edu, nc_ioas);
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg,
		     "replaced back by the IOAS");

	/* detach: no flushes from now on, while the file stays added */
	detach(e->edu);
	unreg++;
	expect_file(e->kdev, e->edu, false, KVM_VFIO_FILE_KIND_DEVICE,
		    "detached");
	expect_state(e->kdev, 0, 1, 0, reg, unreg, "detached");
	expect_flushes(&e->g, false, "detached");

	attach(e->edu, nc_ioas);
	reg++;
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg, "re-attached");
	expect_flushes(&e->g, true, "re-attached");

	/* force-disable: KVM is told "coherent" although the proof stays */
	test_kvfio_force(e->kdev, 1);
	unreg++;
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val));
	EXPECT_EQ(1U, val);
	expect_state(e->kdev,
		     KVM_VFIO_COHERENCY_PROOF |
			     KVM_VFIO_COHERENCY_FORCE_DISABLED,
		     1, 1, reg, unreg, "force-disabled");
	expect_file(e->kdev, e->edu, true, KVM_VFIO_FILE_KIND_DEVICE,
		    "force-disabled");
	expect_flushes(&e->g, false, "force-disabled");
	test_kvfio_force(e->kdev, 1);
	expect_state(e->kdev,
		     KVM_VFIO_COHERENCY_PROOF |
			     KVM_VFIO_COHERENCY_FORCE_DISABLED,
		     1, 1, reg, unreg, "force-disabled twice");

	/* while forced, the proof may come and go without telling KVM */
	detach(e->edu);
	expect_state(e->kdev, KVM_VFIO_COHERENCY_FORCE_DISABLED, 1, 0, reg,
		     unreg, "forced, detached");
	attach(e->edu, nc_ioas);
	expect_state(e->kdev,
		     KVM_VFIO_COHERENCY_PROOF |
			     KVM_VFIO_COHERENCY_FORCE_DISABLED,
		     1, 1, reg, unreg, "forced, re-attached");
	expect_flushes(&e->g, false, "forced, re-attached");

	test_kvfio_force(e->kdev, 0);
	reg++;
	ASSERT_EQ(0, kvfio_force_get(e->kdev, &val));
	EXPECT_EQ(0U, val);
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg, "unforced");
	expect_flushes(&e->g, true, "unforced");
	test_kvfio_force(e->kdev, 0);
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg, "unforced twice");

	/*
	 * A replace that changes the state: an auto IOAS enforces in box 1
	 * (an edge down, and back up on the way back) and not in box 3.
	 */
	auto_ioas = __ioas_alloc(_metadata, e->fd, IOAS_AUTO);
	attach(e->edu, auto_ioas);
	if (!auto_nc)
		unreg++;
	expect_state(e->kdev, auto_nc ? NC_FLAGS : 0, 1, auto_nc, reg, unreg,
		     "replaced by an auto IOAS");
	expect_flushes(&e->g, auto_nc, "replaced by an auto IOAS");
	attach(e->edu, nc_ioas);
	if (!auto_nc)
		reg++;
	expect_state(e->kdev, NC_FLAGS, 1, 1, reg, unreg,
		     "back on the noncoherent IOAS");

	/* FILE_DEL ends the contribution; the device itself is unchanged */
	test_kvfio_del(e->kdev, e->edu);
	unreg++;
	expect_state(e->kdev, 0, 0, 0, reg, unreg, "file deleted");
	expect_flushes(&e->g, false, "file deleted");
	expect_dev_nc(e->fd, e->devid, true, "file deleted");

	detach(e->edu);
	expect_state(e->kdev, 0, 0, 0, reg, unreg, "detached at the end");
	test_ioctl_destroy_fd(e->fd, hwpt);
	test_ioctl_destroy_fd(e->fd, auto_ioas);
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/*
 * Two contributing cdevs (edu and the e1000e, both declared No-Snoop
 * capable): while one contributes, the other attaching and detaching
 * changes nr_contributing but tells KVM nothing.
 */
TEST_F_TIMEOUT(kvfio, second_file_no_extra_edges, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u32 nc_ioas, nic_id;
	char nic_bdf[64];
	int nic, i;

	nic = open_nic_or_fail(nic_bdf);
	__env_bind(_metadata, e);
	nic_id = __bind(_metadata, nic, e->fd);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	__no_snoop(_metadata, e->fd, nic_id, 1);
	test_kvfio_add(e->kdev, e->edu);
	test_kvfio_add(e->kdev, nic);
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);

	attach(e->edu, nc_ioas);
	expect_state(e->kdev, NC_FLAGS, 2, 1, 1, 0, "edu attached");
	for (i = 0; i < 3; i++) {
		attach(nic, nc_ioas);
		expect_file(e->kdev, nic, true, KVM_VFIO_FILE_KIND_DEVICE,
			    "NIC attached too");
		expect_state(e->kdev, NC_FLAGS, 2, 2, 1, 0,
			     "NIC attached too");
		detach(nic);
		expect_file(e->kdev, nic, false, KVM_VFIO_FILE_KIND_DEVICE,
			    "NIC detached");
		expect_state(e->kdev, NC_FLAGS, 2, 1, 1, 0, "NIC detached");
	}
	expect_flushes(&e->g, true, "edu attached, NIC toggled");

	detach(e->edu);
	expect_state(e->kdev, 0, 2, 0, 1, 1, "both detached");
	expect_flushes(&e->g, false, "both detached");

	/* the other way round: the NIC first, edu joins and leaves */
	attach(nic, nc_ioas);
	expect_state(e->kdev, NC_FLAGS, 2, 1, 2, 1, "NIC attached");
	attach(e->edu, nc_ioas);
	expect_state(e->kdev, NC_FLAGS, 2, 2, 2, 1, "both attached");
	detach(nic);
	expect_state(e->kdev, NC_FLAGS, 2, 1, 2, 1, "edu left");
	expect_flushes(&e->g, true, "edu left");
	detach(e->edu);
	expect_state(e->kdev, 0, 2, 0, 2, 2, "none left");

	test_kvfio_del(e->kdev, nic);
	test_kvfio_del(e->kdev, e->edu);
	EXPECT_EQ(0, close(nic));
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/*
 * A /dev/iommu fd as the proof: it contributes while some device bound to
 * it has non-coherent DMA. With the cdev added as well there are two
 * contributing files but one edge. Closing the cdev unbinds the device,
 * which takes the context's proof with it.
 */
TEST_F_TIMEOUT(kvfio, iommufd_file_as_proof, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u32 nc_ioas;

	test_kvfio_add(e->kdev, e->fd);
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "empty context");
	expect_state(e->kdev, 0, 1, 0, 0, 0, "empty context");

	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "device bound, unattached");
	expect_flushes(&e->g, false, "device bound, unattached");

	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	expect_file(e->kdev, e->fd, true, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "device attached");
	expect_state(e->kdev, NC_FLAGS, 1, 1, 1, 0, "device attached");
	expect_flushes(&e->g, true, "device attached");

	detach(e->edu);
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "device detached");
	expect_state(e->kdev, 0, 1, 0, 1, 1, "device detached");
	expect_flushes(&e->g, false, "device detached");

	/* the cdev too: two files contribute, KVM hears it once */
	test_kvfio_add(e->kdev, e->edu);
	attach(e->edu, nc_ioas);
	expect_file(e->kdev, e->fd, true, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "both files");
	expect_file(e->kdev, e->edu, true, KVM_VFIO_FILE_KIND_DEVICE,
		    "both files");
	expect_state(e->kdev, NC_FLAGS, 2, 2, 2, 1, "both files");
	detach(e->edu);
	expect_state(e->kdev, 0, 2, 0, 2, 2, "both files, detached");

	/* back to the context alone, then unbind by closing the cdev */
	test_kvfio_del(e->kdev, e->edu);
	attach(e->edu, nc_ioas);
	expect_state(e->kdev, NC_FLAGS, 1, 1, 3, 2, "context alone");
	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;
	expect_file(e->kdev, e->fd, false, KVM_VFIO_FILE_KIND_IOMMUFD,
		    "device unbound");
	expect_state(e->kdev, 0, 1, 0, 3, 3, "device unbound");
	expect_flushes(&e->g, false, "device unbound");

	test_kvfio_del(e->kdev, e->fd);
	expect_state(e->kdev, 0, 0, 0, 3, 3, "file deleted");
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/* ---------------------------------------------------------------------- */
/* lifetimes                                                              */
/* ---------------------------------------------------------------------- */

/* The edu device can be opened and bound again: nothing holds it. */
static void __expect_rebind(struct __test_metadata *_metadata, int iommufd,
			    const char *when)
{
	char bdf[64];
	__u32 id = 0;
	int dev;

	dev = open_edu_or_fail(bdf);
	EXPECT_EQ(0, _test_ioctl_vfio_bind(dev, iommufd, &id))
		TH_LOG("%s: binding edu again: %s", when, strerror(errno));
	EXPECT_EQ(0, close(dev));
}

/*
 * Close the KVM-VFIO device's fd while edu (added before bind, as QEMU
 * does, so VFIO holds a reference on the VM) is attached and contributing.
 * Releasing the KVM-VFIO device drops its files: the VM stops flushing at
 * once and may get a new KVM-VFIO device. Then the VM fd goes while a
 * second device still holds the file, then that device. Afterwards edu
 * detaches, unbinds and closes normally and can be bound again.
 */
TEST_F_TIMEOUT(kvfio, close_kvm_device_first, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u32 nc_ioas;
	int kdev2;

	test_kvfio_add(e->kdev, e->edu);
	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	expect_flushes(&e->g, true, "contributing");

	EXPECT_EQ(0, close(e->kdev));
	e->kdev = -1;
	expect_flushes(&e->g, false, "KVM-VFIO device closed");
	expect_dev_nc(e->fd, e->devid, true, "KVM-VFIO device closed");

	/* the released device left the VM: a new one can be made */
	kdev2 = __kvfio_create(_metadata, e->g.vm);
	test_kvfio_add(kdev2, e->edu);
	expect_state(kdev2, NC_FLAGS, 1, 1, 1, 0, "added to a new device");
	expect_flushes(&e->g, true, "added to a new device");

	/* the VM fd first: the vCPU and the device keep the VM alive */
	EXPECT_EQ(0, close(e->g.vm));
	e->g.vm = -1;
	expect_state(kdev2, NC_FLAGS, 1, 1, 1, 0, "VM fd closed");
	expect_flushes(&e->g, true, "VM fd closed");
	EXPECT_EQ(0, close(kdev2));
	expect_flushes(&e->g, false, "second KVM-VFIO device closed");
	EXPECT_EQ(0, guest_destroy(&e->g));

	/* VFIO and iommufd carry on as if KVM had never been there */
	expect_dev_nc(e->fd, e->devid, true, "KVM gone");
	EXPECT_EQ(0, execute_wbinvd(e->fd, 0))
		TH_LOG("EXECUTE_WBINVD with KVM gone: %s", strerror(errno));
	detach(e->edu);
	expect_dev_nc(e->fd, e->devid, false, "KVM gone, detached");
	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;
	__expect_rebind(_metadata, e->fd, "after KVM and the device closed");
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/*
 * The VM goes first: vCPU and VM fd closed while the KVM-VFIO device holds
 * a contributing cdev (bound before it was added this time), then the
 * device fd, which destroys the VM. edu is still attached throughout.
 */
TEST_F_TIMEOUT(kvfio, close_vm_first, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u32 nc_ioas;

	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	test_kvfio_add(e->kdev, e->edu);
	expect_state(e->kdev, NC_FLAGS, 1, 1, 1, 0,
		     "added while contributing");
	expect_flushes(&e->g, true, "added while contributing");

	EXPECT_EQ(0, guest_destroy(&e->g));
	/* only the KVM-VFIO device holds the VM now */
	expect_state(e->kdev, NC_FLAGS, 1, 1, 1, 0, "VM and vCPU fds closed");
	expect_file(e->kdev, e->edu, true, KVM_VFIO_FILE_KIND_DEVICE,
		    "VM and vCPU fds closed");
	EXPECT_EQ(0, close(e->kdev));
	e->kdev = -1;

	expect_dev_nc(e->fd, e->devid, true, "VM destroyed");
	detach(e->edu);
	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;
	__expect_rebind(_metadata, e->fd, "after the VM went first");
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/*
 * Close our cdev fd while it is added: KVM holds the file, so the device
 * stays bound and attached and keeps contributing. Releasing the KVM side drops the last reference:
 * the device is unbound and can be opened and bound again.
 */
TEST_F_TIMEOUT(kvfio, close_cdev_while_added, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	struct iommu_hw_info info;
	__u32 nc_ioas;

	test_kvfio_add(e->kdev, e->edu);
	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	expect_flushes(&e->g, true, "contributing");

	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;
	expect_state(e->kdev, NC_FLAGS, 1, 1, 1, 0, "our cdev fd closed");
	expect_flushes(&e->g, true, "our cdev fd closed");
	expect_dev_nc(e->fd, e->devid, true, "our cdev fd closed");
	EXPECT_EQ(0, execute_wbinvd(e->fd, 0))
		TH_LOG("EXECUTE_WBINVD, device kept by KVM: %s",
		       strerror(errno));

	/*
	 * No second open + bind to show the device is still taken: VFIO's
	 * failing bind path drops the device's KVM reference, which belongs
	 * to the first bind, and would spoil what is checked next.
	 */

	/* releasing the KVM-VFIO device drops the last reference */
	EXPECT_EQ(0, close(e->kdev));
	e->kdev = -1;
	EXPECT_ERRNO(EPERM, execute_wbinvd(e->fd, 0))
		TH_LOG("the device should be unbound now");
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.dev_id = e->devid;
	EXPECT_ERRNO(ENOENT, ioctl(e->fd, IOMMU_GET_HW_INFO, &info))
		TH_LOG("device id %u should be gone", e->devid);
	expect_flushes(&e->g, false, "KVM-VFIO device closed");
	EXPECT_EQ(0, guest_destroy(&e->g));

	__expect_rebind(_metadata, e->fd, "after the VM was destroyed");
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/*
 * FILE_DEL first, then unbind by closing the cdev while it is still
 * attached: no error, the context is empty, edu can be bound again.
 */
TEST_F_TIMEOUT(kvfio, unbind_after_file_del, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	__u32 nc_ioas;

	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	test_kvfio_add(e->kdev, e->edu);
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	expect_flushes(&e->g, true, "contributing");

	test_kvfio_del(e->kdev, e->edu);
	expect_state(e->kdev, 0, 0, 0, 1, 1, "file deleted");
	expect_flushes(&e->g, false, "file deleted");
	expect_dev_nc(e->fd, e->devid, true, "file deleted");
	EXPECT_EQ(0, execute_wbinvd(e->fd, 0));

	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;
	EXPECT_ERRNO(EPERM, execute_wbinvd(e->fd, 0))
		TH_LOG("nothing bound any more");
	expect_state(e->kdev, 0, 0, 0, 1, 1, "device unbound");
	expect_flushes(&e->g, false, "device unbound");
	__expect_rebind(_metadata, e->fd, "after the unbind");
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/* ---------------------------------------------------------------------- */
/* a VFIO group file                                                      */
/* ---------------------------------------------------------------------- */

/*
 * edu's group file. As upstream, a group contributes what it was when it
 * was added: non-coherent exactly when its IOMMU cannot enforce. No cdev
 * of the device may be open meanwhile (the group would be EBUSY), so edu is
 * bound only briefly, to learn the profile, and closed again.
 */
TEST_F_TIMEOUT(kvfio, group_file, GUEST_TIMEOUT)
{
	struct env *e = &self->e;
	char path[64], bdf[64];
	int nr, group;
	bool nc;

	__env_bind(_metadata, e);
	nc = !e->sc;
	EXPECT_EQ(0, close(e->edu));
	e->edu = -1;

	__edu_bdf_or_fail(_metadata, bdf, sizeof(bdf));
	EXPECT_EQ(0, strcmp(bdf, e->bdf));
	nr = __iommu_group_of(_metadata, bdf);
	snprintf(path, sizeof(path), "/dev/vfio/%d", nr);
	group = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, group)
		TH_LOG("open %s (edu's group): %s%s", path, strerror(errno),
		       errno == EBUSY ? " (a cdev of the device is open?)" :
		       errno == ENOENT ? " (CONFIG_VFIO_GROUP=y needed)" : "");
	TH_LOG("edu %s, group %d: IOMMU %s enforce", bdf, nr,
	       e->sc ? "can" : "cannot");

	test_kvfio_add(e->kdev, group);
	EXPECT_ERRNO(EEXIST, kvfio_add(e->kdev, group));
	expect_file(e->kdev, group, nc, KVM_VFIO_FILE_KIND_GROUP,
		    "group added");
	expect_state(e->kdev, nc ? NC_FLAGS : 0, 1, nc, nc, 0,
		     "group added");
	expect_flushes(&e->g, nc, "group added");

	test_kvfio_del(e->kdev, group);
	expect_state(e->kdev, 0, 0, 0, nc, nc, "group deleted");
	expect_flushes(&e->g, false, "group deleted");
	EXPECT_EQ(0, close(group));
}

/* ---------------------------------------------------------------------- */
/* IOMMU_EXECUTE_WBINVD                                                   */
/* ---------------------------------------------------------------------- */

/* The CPUs the calling thread may run on. */
static int allowed_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	return CPU_COUNT(&set);
}

/*
 * IOMMU_EXECUTE_WBINVD must flush the CPUs the caller may run on (one
 * wbinvd_on_cpus_mask() call, reaching each of them once) exactly while a
 * device bound to that iommufd has non-coherent DMA, and refuse without
 * flushing otherwise.
 *
 * The counts are compared exactly; no other kernel caller of those
 * functions (KVM without a running vCPU, cache-attribute changes, SEV,
 * TDX) runs in the quiet test VM.
 */
static void __expect_execute(struct __test_metadata *_metadata, int fd,
			     __u32 flags, int err, const char *when)
{
	__u64 calls, cpus;
	int rc, allowed;

	allowed = allowed_cpus();
	ASSERT_LT(0, allowed) TH_LOG("sched_getaffinity: %s", strerror(-allowed));
	calls = __probe_calls(_metadata, PROBE_MASK);
	cpus = __probe_calls(_metadata, PROBE_CPU);
	rc = execute_wbinvd(fd, flags);
	if (err) {
		EXPECT_ERRNO(err, rc)
			TH_LOG("%s: EXECUTE_WBINVD(flags 0x%x)", when, flags);
	} else {
		EXPECT_EQ(0, rc)
			TH_LOG("%s: EXECUTE_WBINVD: %s", when,
			       strerror(errno));
	}
	calls = __probe_calls(_metadata, PROBE_MASK) - calls;
	cpus = __probe_calls(_metadata, PROBE_CPU) - cpus;
	EXPECT_EQ((__u64)(err ? 0 : 1), calls)
		TH_LOG("%s: wbinvd_on_cpus_mask() ran %llu times", when,
		       (unsigned long long)calls);
	EXPECT_EQ((__u64)(err ? 0 : allowed), cpus)
		TH_LOG("%s: %llu CPUs flushed, the caller may run on %d", when,
		       (unsigned long long)cpus, allowed);
}
#define expect_execute(fd, flags, err, when) \
	__expect_execute(_metadata, fd, flags, err, when)

TEST_F(kvfio, execute_wbinvd)
{
	struct env *e = &self->e;
	__u32 nc_ioas, auto_ioas;
	bool auto_nc;
	int other;

	/* arguments are checked before the entitlement */
	expect_execute(e->fd, 1, EOPNOTSUPP, "flags 1, empty context");
	expect_execute(e->fd, 1U << 31, EOPNOTSUPP, "flags bit 31");
	expect_execute(e->fd, 0, EPERM, "empty context");

	__env_bind(_metadata, e);
	expect_execute(e->fd, 0, EPERM, "bound, unattached");

	/* box 2 or 4: even a noncoherent IOAS gives no entitlement */
	nc_ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, nc_ioas);
	expect_execute(e->fd, 0, EPERM, "probed device, noncoherent IOAS");
	detach(e->edu);

	/* box 1 or 3 */
	__no_snoop(_metadata, e->fd, e->devid, 1);
	auto_nc = !e->sc;
	auto_ioas = __ioas_alloc(_metadata, e->fd, IOAS_AUTO);
	attach(e->edu, auto_ioas);
	expect_execute(e->fd, 0, auto_nc ? 0 : EPERM,
		       auto_nc ? "box 3, auto IOAS" : "box 1, auto IOAS");

	attach(e->edu, nc_ioas);
	expect_dev_nc(e->fd, e->devid, true, "noncoherent IOAS");
	expect_execute(e->fd, 0, 0, "No-Snoop device, noncoherent IOAS");
	expect_execute(e->fd, 0, 0, "and again");
	expect_execute(e->fd, 1, EOPNOTSUPP, "flags 1, entitled");

	/* the entitlement belongs to the context the device is bound to */
	open_iommufd_or_fail(&other);
	expect_execute(other, 0, EPERM, "another, empty context");
	EXPECT_EQ(0, close(other));

	detach(e->edu);
	expect_execute(e->fd, 0, EPERM, "detached");
	test_ioctl_destroy_fd(e->fd, auto_ioas);
	test_ioctl_destroy_fd(e->fd, nc_ioas);
}

/* Makes the device of @e do non-coherent DMA: box 1 or 3, noncoherent IOAS. */
static __u32 __entitle(struct __test_metadata *_metadata, struct env *e)
{
	__u32 ioas;

	__env_bind(_metadata, e);
	__no_snoop(_metadata, e->fd, e->devid, 1);
	ioas = __ioas_alloc(_metadata, e->fd, IOAS_NONCOHERENT);
	attach(e->edu, ioas);
	expect_dev_nc(e->fd, e->devid, true, "noncoherent IOAS");
	return ioas;
}

/* Restricts the calling thread to the CPUs of @set. */
static int set_cpus(cpu_set_t *set)
{
	return sched_setaffinity(0, sizeof(*set), set);
}

/*
 * The flush reaches the CPUs the caller may run on, and no other: pinned to
 * one CPU it flushes that one only, whichever it is; allowed on all, all.
 */
TEST_F(kvfio, execute_wbinvd_callers_cpus)
{
	struct env *e = &self->e;
	int cpu, ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t all, one;
	__u32 ioas;

	ASSERT_LE(2, ncpus)
		TH_LOG("the test VM needs two CPUs or more to tell them apart");
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(all), &all));
	ioas = __entitle(_metadata, e);

	for (cpu = 0; cpu < ncpus; cpu++) {
		char when[64];

		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		ASSERT_EQ(0, set_cpus(&one))
			TH_LOG("pinning to CPU %d: %s", cpu, strerror(errno));
		snprintf(when, sizeof(when), "pinned to CPU %d", cpu);
		expect_execute(e->fd, 0, 0, when);
	}
	ASSERT_EQ(0, set_cpus(&all));
	ASSERT_EQ(ncpus, allowed_cpus());
	expect_execute(e->fd, 0, 0, "allowed on every CPU");

	detach(e->edu);
	test_ioctl_destroy_fd(e->fd, ioas);
}

/* Flushes of one context are a millisecond apart at least. */
#define RATE_CALLS 200

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * RATE_CALLS flushes in a row cannot take less than RATE_CALLS - 1
 * milliseconds, however fast the machine (a lower bound only: a slow
 * machine passes too).  Each call still flushes.
 */
TEST_F(kvfio, execute_wbinvd_rate)
{
	struct env *e = &self->e;
	__u64 calls;
	double start, took;
	__u32 ioas;
	int i;

	ioas = __entitle(_metadata, e);
	calls = __probe_calls(_metadata, PROBE_MASK);
	start = now_ms();
	for (i = 0; i < RATE_CALLS; i++)
		ASSERT_EQ(0, execute_wbinvd(e->fd, 0))
			TH_LOG("call %d: %s", i, strerror(errno));
	took = now_ms() - start;
	calls = __probe_calls(_metadata, PROBE_MASK) - calls;
	EXPECT_EQ((__u64)RATE_CALLS, calls);
	EXPECT_LE((double)(RATE_CALLS - 1), took)
		TH_LOG("%d flushes took %.1f ms", RATE_CALLS, took);
	TH_LOG("%d flushes in %.1f ms", RATE_CALLS, took);

	detach(e->edu);
	test_ioctl_destroy_fd(e->fd, ioas);
}

TEST_HARNESS_MAIN
