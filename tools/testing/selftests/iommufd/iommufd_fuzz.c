// SPDX-License-Identifier: GPL-2.0-only
/*
 * A seeded random-ioctl fuzzer for /dev/iommu, the VFIO cdev's iommufd
 * ioctls and the KVM-VFIO device.
 *
 *   iommufd_fuzz [-s SEED] [-n CALLS] [-v]
 *
 * Each call is drawn from a pseudo-random generator seeded with SEED, so a
 * seed and a call count name one run; -v prints every call as it is made,
 * which turns a failing run into a reproducer. The calls cover every
 * command number of include/uapi/linux/iommufd.h plus some unknown ones,
 * VFIO_DEVICE_BIND_IOMMUFD / ATTACH / DETACH_IOMMUFD_PT on the edu and
 * e1000e cdevs, and KVM_CREATE_VM, KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO)
 * and its attributes. Arguments mix the valid with the broken: live,
 * stale and made-up object ids, struct sizes too small or larger with a
 * zero or non-zero tail, stray flags, any kind of fd, IOVAs and lengths
 * that are aligned, unaligned, reserved or wrapping, and user pointers
 * that are valid, NULL, unmapped or read-only. During the middle third of
 * the run the fuzzer keeps the edu device bound and attached, so mappings
 * pin pages and the device paths run too.
 *
 * Whatever the arguments, some answers are fixed, and are checked on every
 * call: no kernel-internal errno (ERESTARTSYS, ENOTSUPP, ...) may reach
 * userspace; an unknown command fails with ENOTTY (EFAULT when its
 * argument cannot be read); an iommufd command whose size is below any
 * command's minimum fails with EINVAL, and one whose size runs past the
 * struct into a non-zero byte fails with E2BIG (or ENOTTY when the command
 * is not implemented).
 *
 * At the end the fuzzer releases the KVM objects and the devices, destroys
 * every object it created, and then counts what the context still holds;
 * it checks that VmPin and VmLck are back to their values at the start,
 * that the device binds again to a fresh /dev/iommu, and that the module
 * references taken by the run are gone. Any leak fails the run.
 *
 * Output is TAP (a few results, with the summary as comments: calls made
 * and an errno histogram per ioctl), for scripts/judge.py. Nothing is ever
 * skipped: a missing device or /dev/kvm is a failure.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <linux/kvm.h>
#include <linux/kvm_vfio_coherency.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"

/* about a minute in the TCG test VM (~700 calls/s) */
#define DEFAULT_CALLS 40000
#define DEFAULT_SEED 1

#define KVM_PATH "/dev/kvm"

/* pages of each buffer; every buffer is followed by an unmapped guard page */
#define DATA_PAGES 64
#define SCRATCH_PAGES 16
#define CMD_PAGES 2
#define RO_PAGES 16
#define MEMFD_PAGES 16

/* IOVAs the fuzzer likes: inside edu's 28 bits, away from reserved ranges */
#define IOVA_BASE 0x1000000ULL
#define IOVA_SPAN 0x1000000ULL

#define MAX_OWNED 512
#define MAX_SEEN 64
#define NR_DEVS 2
#define MAX_ERRNO 134		/* histogram slots 1..133; the last: beyond */
#define NR_RECENT 16

/* ---------------------------------------------------------------------- */
/* what is counted                                                         */
/* ---------------------------------------------------------------------- */

enum kind {
	/* IOMMUFD_CMD_BASE .. IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA, in order */
	K_IOMMUFD_FIRST,
	K_IOMMUFD_LAST = K_IOMMUFD_FIRST + IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA -
			 IOMMUFD_CMD_BASE,
	K_EXECUTE_WBINVD,
	K_TEST_NO_SNOOP,
	K_TEST_EVENTS,
	K_UNKNOWN,
	K_VFIO_BIND,
	K_VFIO_ATTACH,
	K_VFIO_DETACH,
	K_KVM_CREATE_VM,
	K_KVM_CREATE_DEVICE,
	K_KVM_FILE_ADD,
	K_KVM_FILE_DEL,
	K_KVM_SET_ATTR,
	K_KVM_GET_ATTR,
	K_KVM_HAS_ATTR,
	NR_KINDS,
};

static const char *const iommufd_cmd_name[] = {
	"DESTROY", "IOAS_ALLOC", "IOAS_ALLOW_IOVAS", "IOAS_COPY",
	"IOAS_IOVA_RANGES", "IOAS_MAP", "IOAS_UNMAP", "OPTION", "VFIO_IOAS",
	"HWPT_ALLOC", "GET_HW_INFO", "HWPT_SET_DIRTY_TRACKING",
	"HWPT_GET_DIRTY_BITMAP", "HWPT_INVALIDATE", "FAULT_QUEUE_ALLOC",
	"IOAS_MAP_FILE", "VIOMMU_ALLOC", "VDEVICE_ALLOC",
	"IOAS_CHANGE_PROCESS", "VEVENTQ_ALLOC", "HW_QUEUE_ALLOC",
	"IOAS_NOIOMMU_GET_PA",
};

static const char *kind_name(int k)
{
	static const char *const rest[] = {
		"EXECUTE_WBINVD", "TEST_DEVICE_NO_SNOOP",
		"TEST_COHERENCY_EVENTS", "unknown iommufd ioctl",
		"VFIO_DEVICE_BIND_IOMMUFD", "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
		"VFIO_DEVICE_DETACH_IOMMUFD_PT", "KVM_CREATE_VM",
		"KVM_CREATE_DEVICE", "KVM_SET_DEVICE_ATTR(FILE_ADD)",
		"KVM_SET_DEVICE_ATTR(FILE_DEL)", "KVM_SET_DEVICE_ATTR(other)",
		"KVM_GET_DEVICE_ATTR", "KVM_HAS_DEVICE_ATTR",
	};

	if (k <= K_IOMMUFD_LAST)
		return iommufd_cmd_name[k - K_IOMMUFD_FIRST];
	return rest[k - K_EXECUTE_WBINVD];
}

/* [kind][0]: successes, [kind][e]: failures with errno e */
static unsigned long hist[NR_KINDS][MAX_ERRNO + 1];
static unsigned long nr_calls, nr_violations, nr_device_attached_calls;

/* ---------------------------------------------------------------------- */
/* the generator                                                           */
/* ---------------------------------------------------------------------- */

static __u64 rng_state, seed = DEFAULT_SEED;

/* xorshift64*: small, fast and the same everywhere */
static __u64 rnd64(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static __u32 rnd(__u32 n)
{
	return n ? (__u32)(rnd64() % n) : 0;
}

/* true once in @n times */
static bool one_in(__u32 n)
{
	return !rnd(n);
}

/* ---------------------------------------------------------------------- */
/* state                                                                   */
/* ---------------------------------------------------------------------- */

static struct {
	int ifd;			/* the /dev/iommu under test */
	int devfd[NR_DEVS];		/* edu, e1000e: always open */
	char cdev[NR_DEVS][PATH_MAX];
	__u32 devid[NR_DEVS];		/* 0: not bound to ifd */
	int kvm, vm, kdev;		/* -1 when not open */
	int memfd;
	int closed_fd;			/* a number known to be free */

	__u8 *data;			/* DATA_PAGES, populated, RW */
	__u8 *scratch;			/* SCRATCH_PAGES for the kernel to write */
	__u8 *cmd;			/* CMD_PAGES: the ioctl arguments */
	__u8 *ro;			/* RO_PAGES, read-only */
	__u8 *ro_cmd;			/* read-only view of ro_cmd_rw */
	__u8 *ro_cmd_rw;
	void *unmapped;

	__u32 owned[MAX_OWNED];		/* IOAS and HWPT ids this run made */
	unsigned int nr_owned;
	__u32 seen[MAX_SEEN];		/* any id the kernel reported */
	__u32 max_id;
	__u32 home_ioas;		/* the middle third's IOAS, 0: none */
	bool phase_attached;

	bool verbose;
	char recent[NR_RECENT][200];	/* the last calls, for a report */
	unsigned int nr_recent;
} f;

static void note(const char *fmt, ...)
{
	char *line = f.recent[f.nr_recent++ % NR_RECENT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(f.recent[0]), fmt, ap);
	va_end(ap);
	if (f.verbose)
		printf("# %lu: %s\n", nr_calls, line);
}

static void see_id(__u32 id)
{
	if (!id || id == 0xffffffff)
		return;
	f.seen[rnd64() % MAX_SEEN] = id;
	if (id > f.max_id && id < 0x100000)
		f.max_id = id;
}

static void own_id(__u32 id)
{
	see_id(id);
	if (f.nr_owned < MAX_OWNED)
		f.owned[f.nr_owned++] = id;
}

static void disown_id(__u32 id)
{
	unsigned int i;

	for (i = 0; i < f.nr_owned; i++) {
		if (f.owned[i] == id) {
			f.owned[i] = f.owned[--f.nr_owned];
			return;
		}
	}
}

static bool is_owned(__u32 id)
{
	unsigned int i;

	for (i = 0; i < f.nr_owned; i++)
		if (f.owned[i] == id)
			return true;
	return false;
}

/* ---------------------------------------------------------------------- */
/* argument pools                                                          */
/* ---------------------------------------------------------------------- */

static __u32 pick_id(void)
{
	switch (rnd(10)) {
	case 0:
		return 0;
	case 1:
	case 2:
	case 3:
		if (f.nr_owned)
			return f.owned[rnd(f.nr_owned)];
		return f.seen[rnd(MAX_SEEN)];
	case 4:
		return f.devid[rnd(NR_DEVS)];
	case 5:
	case 6:
		return f.seen[rnd(MAX_SEEN)];
	case 7:
		return 1 + rnd(f.max_id + 4);
	case 8:
		return 0xffffffff;
	default:
		return (__u32)rnd64();
	}
}

static __u32 pick_dev_id(void)
{
	return one_in(4) ? pick_id() : f.devid[rnd(NR_DEVS)];
}

static __u32 pick_flags(__u32 valid)
{
	switch (rnd(8)) {
	case 0:
		return 0;
	case 1:
		return 1U << rnd(32);
	case 2:
		return ~0U;
	case 3:
		return valid | (1U << rnd(32));
	default:
		return valid & (__u32)rnd64();
	}
}

static __u64 pick_iova(void)
{
	switch (rnd(12)) {
	case 0:
		return 0;
	case 1:
		return IOVA_BASE + rnd(IOVA_SPAN / PAGE_SIZE) * PAGE_SIZE +
		       1 + rnd(PAGE_SIZE - 1);
	case 2:
		return X86_MSI_WINDOW_START + rnd(16) * PAGE_SIZE;
	case 3:
		return 1ULL << (32 + rnd(32));
	case 4:
		return -(__u64)PAGE_SIZE * (1 + rnd(4));
	case 5:
		return rnd64();
	default:
		return IOVA_BASE + rnd(IOVA_SPAN / PAGE_SIZE / 16) * 16 *
					   PAGE_SIZE;
	}
}

static __u64 pick_length(void)
{
	switch (rnd(12)) {
	case 0:
		return 0;
	case 1:
		return 1 + rnd(PAGE_SIZE * 2);
	case 2:
		return 1ULL << (30 + rnd(34));
	case 3:
		return UINT64_MAX - rnd(PAGE_SIZE);
	case 4:
		return rnd64();
	case 5:
		return DATA_PAGES * PAGE_SIZE;
	default:
		return (1 + rnd(16)) * PAGE_SIZE;
	}
}

static __u32 pick_count(void)
{
	switch (rnd(8)) {
	case 0:
		return 0;
	case 1:
		return 0xffffffff;
	case 2:
		return 1 << rnd(20);
	default:
		return 1 + rnd(8);
	}
}

/* A user address for the kernel to read from (pinning, input arrays). */
static __u64 pick_uptr_in(void)
{
	switch (rnd(12)) {
	case 0:
		return 0;
	case 1:
		return (uintptr_t)f.unmapped;
	case 2:
		return (uintptr_t)f.ro + rnd(RO_PAGES) * PAGE_SIZE;
	case 3:
		return (uintptr_t)f.data + rnd(DATA_PAGES * PAGE_SIZE);
	case 4:
		return rnd64();
	case 5:
		/* runs off the end of the buffer into the guard page */
		return (uintptr_t)f.data + (DATA_PAGES - 1 - rnd(2)) * PAGE_SIZE;
	default:
		return (uintptr_t)f.data + rnd(DATA_PAGES) * PAGE_SIZE;
	}
}

/* A user address for the kernel to write to; never the fuzzer's own data. */
static __u64 pick_uptr_out(void)
{
	switch (rnd(10)) {
	case 0:
		return 0;
	case 1:
		return (uintptr_t)f.unmapped;
	case 2:
		return (uintptr_t)f.ro;
	case 3:
		/* the last bytes before the guard page */
		return (uintptr_t)f.scratch + SCRATCH_PAGES * PAGE_SIZE -
		       8 * (1 + rnd(8));
	default:
		return (uintptr_t)f.scratch + rnd(SCRATCH_PAGES / 2) * PAGE_SIZE;
	}
}

static int pick_fd(void)
{
	switch (rnd(12)) {
	case 0:
		return -1;
	case 1:
		return f.closed_fd;
	case 2:
		return f.ifd;
	case 3:
		return f.memfd;
	case 4:
		return f.kvm;
	case 5:
		return f.vm;
	case 6:
		return f.kdev;
	case 7:
		return (int)rnd(64);
	case 8:
		return (int)rnd64();
	default:
		return f.devfd[rnd(NR_DEVS)];
	}
}

/* ---------------------------------------------------------------------- */
/* issuing a call                                                          */
/* ---------------------------------------------------------------------- */

/* the errnos an ioctl may answer with; anything else is worth a look */
static bool errno_plausible(int e)
{
	switch (e) {
	case EPERM: case ENOENT: case EINTR: case EIO: case ENXIO:
	case E2BIG: case EBADF: case EAGAIN: case ENOMEM: case EFAULT:
	case EBUSY: case EEXIST: case ENODEV: case EINVAL: case ENFILE:
	case EMFILE: case ENOTTY: case ENOSPC: case ERANGE: case EDEADLK:
	case EMSGSIZE: case EOPNOTSUPP: case EADDRINUSE: case EOVERFLOW:
	case ENOSYS: case EACCES: case EXDEV: case ESRCH: case ENODATA:
	case EBADFD:	/* VFIO bind given a file that is not /dev/iommu */
		return true;
	}
	return false;
}

static void violation(const char *fmt, ...)
{
	char msg[240];
	unsigned int i, n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (nr_violations++ >= 10)
		return;
	printf("# VIOLATION at call %lu (seed %" PRIu64 "): %s\n", nr_calls,
	       (uint64_t)seed, msg);
	n = f.nr_recent < NR_RECENT ? f.nr_recent : NR_RECENT;
	for (i = 0; i < n; i++)
		printf("#   recent: %s\n",
		       f.recent[(f.nr_recent - n + i) % NR_RECENT]);
}

/* Count the outcome of one call of @k that returned @rc. */
static int account(int k, int rc)
{
	int e = rc ? errno : 0;

	nr_calls++;
	if (f.phase_attached)
		nr_device_attached_calls++;
	if (rc && e <= 0)
		e = MAX_ERRNO;
	hist[k][e < MAX_ERRNO ? e : MAX_ERRNO]++;
	if (rc && !errno_plausible(e))
		violation("%s failed with errno %d (%s): not an errno an "
			  "ioctl should answer (kernel-internal?)",
			  kind_name(k), e, strerror(e));
	if (f.verbose)
		printf("#   -> %d %s\n", rc, rc ? strerror(e) : "");
	errno = e;
	return rc;
}

enum size_mode {
	SZ_EXACT,
	SZ_SMALL,	/* below every command's minimum: EINVAL */
	SZ_ZERO_TAIL,	/* larger, the extra bytes zero: as exact */
	SZ_NONZERO_TAIL,/* larger, a non-zero extra byte: E2BIG */
	SZ_PAST_GUARD,	/* runs into the guard page */
	SZ_RANDOM,
};

enum ptr_mode {
	PTR_OK,
	PTR_NULL,
	PTR_UNMAPPED,
	PTR_RO,
};

/*
 * Issue iommufd ioctl @nr with the @len bytes at f.cmd as its struct
 * (already filled in, size field included), after maybe breaking the size
 * or the pointer, and check the answers that do not depend on the
 * arguments. The struct stays in f.cmd for the caller to read.
 */
static int iommufd_call(unsigned int nr, size_t len, int k)
{
	enum size_mode sm = SZ_EXACT;
	enum ptr_mode pm = PTR_OK;
	__u8 *arg = f.cmd;
	__u32 size = len;
	size_t extra = 0;
	int rc, e;

	switch (rnd(40)) {
	case 0: case 1:
		sm = SZ_SMALL;
		size = rnd(8);
		break;
	case 2: case 3:
		sm = SZ_ZERO_TAIL;
		extra = 1 + rnd(64);
		break;
	case 4: case 5:
		sm = SZ_NONZERO_TAIL;
		extra = 1 + rnd(64);
		break;
	case 6:
		sm = SZ_PAST_GUARD;
		size = CMD_PAGES * PAGE_SIZE + rnd(PAGE_SIZE);
		break;
	case 7:
		sm = SZ_RANDOM;
		size = (__u32)rnd64();
		break;
	}
	switch (rnd(60)) {
	case 0:
		pm = PTR_NULL;
		arg = NULL;
		break;
	case 1:
		pm = PTR_UNMAPPED;
		arg = f.unmapped;
		break;
	case 2:
	case 3:
		pm = PTR_RO;
		break;
	}
	if (sm == SZ_ZERO_TAIL || sm == SZ_NONZERO_TAIL) {
		size = len + extra;
		memset(f.cmd + len, 0, extra);
		if (sm == SZ_NONZERO_TAIL)
			f.cmd[len + rnd(extra)] = 1 + rnd(255);
	}
	*(__u32 *)f.cmd = size;
	if (pm == PTR_RO) {
		memcpy(f.ro_cmd_rw, f.cmd, len + extra);
		arg = f.ro_cmd;
	}
	note("%s(nr 0x%x) size %u (%s) ptr %s", kind_name(k), nr, size,
	     (const char *[]){ "exact", "small", "zero tail", "non-zero tail",
			       "past guard", "random" }[sm],
	     (const char *[]){ "ok", "NULL", "unmapped", "read-only" }[pm]);

	rc = ioctl(f.ifd, _IO(IOMMUFD_TYPE, nr), arg);
	e = errno;
	account(k, rc);

	if (k == K_UNKNOWN) {
		if (!rc)
			violation("unknown iommufd command 0x%x succeeded", nr);
		else if (e != ENOTTY && !(pm != PTR_OK && pm != PTR_RO &&
					  e == EFAULT))
			violation("unknown iommufd command 0x%x: %s, not "
				  "ENOTTY", nr, strerror(e));
	} else if (pm == PTR_OK || pm == PTR_RO) {
		if (sm == SZ_SMALL && (!rc || (e != EINVAL && e != ENOTTY)))
			violation("%s with size %u: %s, not EINVAL",
				  kind_name(k), size, rc ? strerror(e) : "ok");
		if (sm == SZ_NONZERO_TAIL && (!rc || (e != E2BIG && e != ENOTTY)))
			violation("%s with size %u and a non-zero tail: %s, "
				  "not E2BIG",
				  kind_name(k), size, rc ? strerror(e) : "ok");
	}
	/* a read-only argument cannot carry a result back */
	if (pm == PTR_RO && !rc && k != K_UNKNOWN)
		memcpy(f.cmd, f.ro_cmd_rw, len);
	errno = e;
	return rc;
}

#define IOMMUFD_KIND(nr) (K_IOMMUFD_FIRST + (nr) - IOMMUFD_CMD_BASE)
#define CMD(type) ((type *)memset(f.cmd, 0, sizeof(type)))

/* ---------------------------------------------------------------------- */
/* the iommufd commands                                                    */
/* ---------------------------------------------------------------------- */

static void fz_destroy(void)
{
	struct iommu_destroy *c = CMD(struct iommu_destroy);
	__u32 id = pick_id();

	c->id = id;
	if (!iommufd_call(IOMMUFD_CMD_DESTROY, sizeof(*c),
			  IOMMUFD_KIND(IOMMUFD_CMD_DESTROY)))
		disown_id(id);
}

static void fz_ioas_alloc(void)
{
	struct iommu_ioas_alloc *c = CMD(struct iommu_ioas_alloc);

	c->flags = pick_flags(IOMMU_IOAS_ALLOC_COHERENT |
			      IOMMU_IOAS_ALLOC_NONCOHERENT);
	if (one_in(2))
		c->flags = 0;
	if (!iommufd_call(IOMMUFD_CMD_IOAS_ALLOC, sizeof(*c),
			  IOMMUFD_KIND(IOMMUFD_CMD_IOAS_ALLOC)))
		own_id(c->out_ioas_id);
}

static void fz_ioas_ranges(unsigned int nr)
{
	/* ALLOW_IOVAS and IOVA_RANGES share a layout */
	struct iommu_ioas_iova_ranges *c = CMD(struct iommu_ioas_iova_ranges);
	struct iommu_iova_range *r;
	unsigned int i, n;

	c->ioas_id = pick_id();
	c->num_iovas = pick_count();
	if (nr == IOMMUFD_CMD_IOAS_ALLOW_IOVAS) {
		c->allowed_iovas = pick_uptr_in();
		if (one_in(2)) {
			/* a sensible list in the scratch area */
			r = (void *)f.scratch;
			n = 1 + rnd(8);
			for (i = 0; i < n; i++) {
				r[i].start = one_in(4) ? pick_iova() :
					     IOVA_BASE * i;
				r[i].last = one_in(4) ? pick_iova() :
					    r[i].start + IOVA_BASE - 1;
			}
			c->num_iovas = one_in(8) ? pick_count() : n;
			c->allowed_iovas = (uintptr_t)r;
		}
	} else {
		c->allowed_iovas = pick_uptr_out();
		if (c->num_iovas > 64 && c->allowed_iovas ==
		    (uintptr_t)f.scratch)
			c->num_iovas = 64;
	}
	if (one_in(16))
		c->__reserved = 1;
	iommufd_call(nr, sizeof(*c), IOMMUFD_KIND(nr));
}

static void fz_ioas_map(void)
{
	struct iommu_ioas_map *c = CMD(struct iommu_ioas_map);

	c->flags = pick_flags(IOMMU_IOAS_MAP_FIXED_IOVA |
			      IOMMU_IOAS_MAP_WRITEABLE |
			      IOMMU_IOAS_MAP_READABLE);
	if (one_in(2))
		c->flags = MAP_RW | (one_in(2) ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
	c->ioas_id = pick_id();
	c->user_va = pick_uptr_in();
	c->length = pick_length();
	c->iova = pick_iova();
	if (one_in(32))
		c->__reserved = 1;
	iommufd_call(IOMMUFD_CMD_IOAS_MAP, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_IOAS_MAP));
}

static void fz_ioas_map_file(void)
{
	struct iommu_ioas_map_file *c = CMD(struct iommu_ioas_map_file);

	c->flags = pick_flags(IOMMU_IOAS_MAP_FIXED_IOVA |
			      IOMMU_IOAS_MAP_WRITEABLE |
			      IOMMU_IOAS_MAP_READABLE);
	if (one_in(2))
		c->flags = MAP_RW | (one_in(2) ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
	c->ioas_id = pick_id();
	c->fd = one_in(2) ? f.memfd : pick_fd();
	c->start = one_in(2) ? rnd(MEMFD_PAGES) * PAGE_SIZE : pick_length();
	c->length = one_in(2) ? (1 + rnd(MEMFD_PAGES)) * PAGE_SIZE :
				pick_length();
	c->iova = pick_iova();
	iommufd_call(IOMMUFD_CMD_IOAS_MAP_FILE, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_IOAS_MAP_FILE));
}

static void fz_ioas_copy(void)
{
	struct iommu_ioas_copy *c = CMD(struct iommu_ioas_copy);

	c->flags = pick_flags(IOMMU_IOAS_MAP_FIXED_IOVA |
			      IOMMU_IOAS_MAP_WRITEABLE |
			      IOMMU_IOAS_MAP_READABLE);
	if (one_in(2))
		c->flags = MAP_RW | (one_in(2) ? IOMMU_IOAS_MAP_FIXED_IOVA : 0);
	c->dst_ioas_id = pick_id();
	c->src_ioas_id = pick_id();
	c->length = pick_length();
	c->dst_iova = pick_iova();
	c->src_iova = pick_iova();
	iommufd_call(IOMMUFD_CMD_IOAS_COPY, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_IOAS_COPY));
}

static void fz_ioas_unmap(void)
{
	struct iommu_ioas_unmap *c = CMD(struct iommu_ioas_unmap);

	c->ioas_id = pick_id();
	if (one_in(4)) {
		c->iova = 0;
		c->length = UINT64_MAX;
	} else {
		c->iova = pick_iova();
		c->length = pick_length();
	}
	iommufd_call(IOMMUFD_CMD_IOAS_UNMAP, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_IOAS_UNMAP));
}

static void fz_option(void)
{
	struct iommu_option *c = CMD(struct iommu_option);

	c->option_id = one_in(8) ? (__u32)rnd64() : rnd(3);
	c->op = one_in(8) ? (__u16)rnd64() : rnd(2);
	c->object_id = one_in(2) ? 0 : pick_id();
	c->val64 = one_in(4) ? rnd64() : rnd(3);
	if (one_in(16))
		c->__reserved = 1;
	iommufd_call(IOMMUFD_CMD_OPTION, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_OPTION));
}

static void fz_vfio_ioas(void)
{
	struct iommu_vfio_ioas *c = CMD(struct iommu_vfio_ioas);

	c->ioas_id = pick_id();
	c->op = one_in(4) ? (__u16)rnd64() : rnd(3);
	iommufd_call(IOMMUFD_CMD_VFIO_IOAS, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_VFIO_IOAS));
}

static void fz_hwpt_alloc(void)
{
	struct iommu_hwpt_alloc *c = CMD(struct iommu_hwpt_alloc);

	c->flags = pick_flags(IOMMU_HWPT_ALLOC_NEST_PARENT |
			      IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
			      IOMMU_HWPT_ALLOC_PASID |
			      IOMMU_HWPT_ALLOC_COHERENT |
			      IOMMU_HWPT_ALLOC_NONCOHERENT);
	if (one_in(2))
		c->flags = 0;
	c->dev_id = pick_dev_id();
	c->pt_id = pick_id();
	if (one_in(4)) {
		c->data_type = one_in(2) ? rnd(5) : (__u32)rnd64();
		c->data_len = one_in(2) ? 8 * rnd(8) : pick_count();
		c->data_uptr = pick_uptr_in();
	}
	if (one_in(8))
		c->fault_id = pick_id();
	if (one_in(16))
		c->__reserved = 1;
	if (one_in(16))
		c->__reserved2 = 1;
	if (!iommufd_call(IOMMUFD_CMD_HWPT_ALLOC, sizeof(*c),
			  IOMMUFD_KIND(IOMMUFD_CMD_HWPT_ALLOC)))
		own_id(c->out_hwpt_id);
}

static void fz_get_hw_info(void)
{
	struct iommu_hw_info *c = CMD(struct iommu_hw_info);

	c->flags = one_in(2) ? 0 : pick_flags(IOMMU_HW_INFO_FLAG_INPUT_TYPE);
	c->dev_id = pick_dev_id();
	c->data_len = one_in(2) ? 8 * rnd(64) : pick_count();
	c->data_uptr = pick_uptr_out();
	/* never let the kernel write past the scratch area's guard page */
	if (c->data_uptr >= (uintptr_t)f.scratch &&
	    c->data_uptr < (uintptr_t)f.scratch + SCRATCH_PAGES * PAGE_SIZE &&
	    c->data_len > SCRATCH_PAGES * PAGE_SIZE)
		c->data_len = SCRATCH_PAGES * PAGE_SIZE;
	if (one_in(4))
		c->in_data_type = rnd(6);
	iommufd_call(IOMMUFD_CMD_GET_HW_INFO, sizeof(*c),
		     IOMMUFD_KIND(IOMMUFD_CMD_GET_HW_INFO));
}

/* The commands the driver does not implement: random words in a struct. */
static void fz_other(unsigned int nr)
{
	size_t len;
	unsigned int i;
	__u32 *w;

	switch (nr) {
	case IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING:
		len = sizeof(struct iommu_hwpt_set_dirty_tracking);
		break;
	case IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP:
		len = sizeof(struct iommu_hwpt_get_dirty_bitmap);
		break;
	case IOMMUFD_CMD_HWPT_INVALIDATE:
		len = sizeof(struct iommu_hwpt_invalidate);
		break;
	case IOMMUFD_CMD_FAULT_QUEUE_ALLOC:
		len = sizeof(struct iommu_fault_alloc);
		break;
	case IOMMUFD_CMD_VIOMMU_ALLOC:
		len = sizeof(struct iommu_viommu_alloc);
		break;
	case IOMMUFD_CMD_VDEVICE_ALLOC:
		len = sizeof(struct iommu_vdevice_alloc);
		break;
	case IOMMUFD_CMD_IOAS_CHANGE_PROCESS:
		len = sizeof(struct iommu_ioas_change_process);
		break;
	case IOMMUFD_CMD_VEVENTQ_ALLOC:
		len = sizeof(struct iommu_veventq_alloc);
		break;
	case IOMMUFD_CMD_HW_QUEUE_ALLOC:
		len = sizeof(struct iommu_hw_queue_alloc);
		break;
	case IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA:
		len = sizeof(struct iommu_ioas_noiommu_get_pa);
		break;
	default:
		len = 64;
		break;
	}
	memset(f.cmd, 0, len);
	w = (__u32 *)f.cmd;
	for (i = 1; i < len / 4; i++) {
		switch (rnd(4)) {
		case 0:
			w[i] = pick_id();
			break;
		case 1:
			w[i] = rnd(4);
			break;
		default:
			break;
		}
	}
	iommufd_call(nr, len, IOMMUFD_KIND(nr));
}

static void fz_execute_wbinvd(void)
{
	struct iommu_execute_wbinvd *c = CMD(struct iommu_execute_wbinvd);

	c->flags = one_in(4) ? pick_flags(0) : 0;
	iommufd_call(IOMMUFD_CMD_EXECUTE_WBINVD, sizeof(*c), K_EXECUTE_WBINVD);
}

static void fz_test_no_snoop(void)
{
	struct iommu_test_device_no_snoop *c =
		CMD(struct iommu_test_device_no_snoop);

	c->dev_id = pick_dev_id();
	c->no_snoop = one_in(4) ? (__u32)rnd64() : rnd(2);
	if (one_in(16))
		c->__reserved = 1;
	iommufd_call(IOMMUFD_CMD_TEST_DEVICE_NO_SNOOP, sizeof(*c),
		     K_TEST_NO_SNOOP);
}

static void fz_test_events(void)
{
	struct iommu_test_coherency_events *c =
		CMD(struct iommu_test_coherency_events);

	c->dev_id = one_in(3) ? 0 : pick_dev_id();
	iommufd_call(IOMMUFD_CMD_TEST_COHERENCY_EVENTS, sizeof(*c),
		     K_TEST_EVENTS);
}

static void fz_unknown(void)
{
	/* around the ranges in use: before, between and after them */
	static const unsigned int nrs[] = {
		0x00, 0x3e, 0x7f, 0x96, 0x9f, 0xa0, 0xbf, 0xc1,
		0xdf, 0xe2, 0xef, 0xff,
	};
	__u32 *w = (__u32 *)f.cmd;
	unsigned int i;

	for (i = 0; i < 16; i++)
		w[i] = one_in(2) ? 0 : (__u32)rnd64();
	iommufd_call(nrs[rnd(ARRAY_SIZE(nrs))], 64, K_UNKNOWN);
}

static void fz_iommufd(void)
{
	unsigned int nr = IOMMUFD_CMD_BASE +
			  rnd(IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA -
			      IOMMUFD_CMD_BASE + 1);

	/* favour what is implemented */
	switch (rnd(24)) {
	case 0: case 1: case 2:
		nr = IOMMUFD_CMD_IOAS_MAP;
		break;
	case 3: case 4:
		nr = IOMMUFD_CMD_IOAS_UNMAP;
		break;
	case 5: case 6:
		nr = IOMMUFD_CMD_IOAS_ALLOC;
		break;
	case 7: case 8:
		nr = IOMMUFD_CMD_DESTROY;
		break;
	case 9:
		nr = IOMMUFD_CMD_IOAS_COPY;
		break;
	case 10:
		nr = IOMMUFD_CMD_HWPT_ALLOC;
		break;
	case 11:
		nr = IOMMUFD_CMD_IOAS_MAP_FILE;
		break;
	case 12:
		fz_execute_wbinvd();
		return;
	case 13:
		fz_test_no_snoop();
		return;
	case 14:
		fz_test_events();
		return;
	case 15:
		fz_unknown();
		return;
	}
	/* too many objects: clear some away instead */
	if ((nr == IOMMUFD_CMD_IOAS_ALLOC || nr == IOMMUFD_CMD_HWPT_ALLOC) &&
	    f.nr_owned >= MAX_OWNED / 2)
		nr = IOMMUFD_CMD_DESTROY;

	switch (nr) {
	case IOMMUFD_CMD_DESTROY:
		fz_destroy();
		break;
	case IOMMUFD_CMD_IOAS_ALLOC:
		fz_ioas_alloc();
		break;
	case IOMMUFD_CMD_IOAS_ALLOW_IOVAS:
	case IOMMUFD_CMD_IOAS_IOVA_RANGES:
		fz_ioas_ranges(nr);
		break;
	case IOMMUFD_CMD_IOAS_COPY:
		fz_ioas_copy();
		break;
	case IOMMUFD_CMD_IOAS_MAP:
		fz_ioas_map();
		break;
	case IOMMUFD_CMD_IOAS_UNMAP:
		fz_ioas_unmap();
		break;
	case IOMMUFD_CMD_OPTION:
		fz_option();
		break;
	case IOMMUFD_CMD_VFIO_IOAS:
		fz_vfio_ioas();
		break;
	case IOMMUFD_CMD_HWPT_ALLOC:
		fz_hwpt_alloc();
		break;
	case IOMMUFD_CMD_GET_HW_INFO:
		fz_get_hw_info();
		break;
	case IOMMUFD_CMD_IOAS_MAP_FILE:
		fz_ioas_map_file();
		break;
	default:
		fz_other(nr);
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* the VFIO cdev                                                           */
/* ---------------------------------------------------------------------- */

/* An argsz: mostly right, sometimes too small or larger. */
static __u32 pick_argsz(__u32 right, __u32 min)
{
	switch (rnd(12)) {
	case 0:
		return rnd(min);
	case 1:
		return right + 4 * (1 + rnd(8));
	case 2:
		return (__u32)rnd64();
	default:
		return right;
	}
}

static int vfio_call(int fd, unsigned long req, void *arg, int k)
{
	int rc;

	if (one_in(64))
		arg = one_in(2) ? NULL : f.unmapped;
	rc = ioctl(fd, req, arg);
	return account(k, rc);
}

static void fz_vfio_bind(int i, int iommufd)
{
	struct vfio_device_bind_iommufd *b = (void *)f.cmd;

	memset(f.cmd, 0, 64);
	b->argsz = pick_argsz(sizeof(*b), offsetofend(typeof(*b), out_devid));
	b->flags = one_in(8) ? pick_flags(VFIO_DEVICE_BIND_FLAG_TOKEN) : 0;
	b->iommufd = iommufd;
	b->token_uuid_ptr = one_in(4) ? pick_uptr_in() : 0;
	note("VFIO_DEVICE_BIND_IOMMUFD dev %d argsz %u flags 0x%x iommufd %d",
	     i, b->argsz, b->flags, iommufd);
	if (!vfio_call(f.devfd[i], VFIO_DEVICE_BIND_IOMMUFD, b, K_VFIO_BIND) &&
	    iommufd == f.ifd) {
		f.devid[i] = b->out_devid;
		see_id(b->out_devid);
	}
}

static int vfio_attach(int i, __u32 pt_id, bool fuzz)
{
	struct vfio_device_attach_iommufd_pt *a = (void *)f.cmd;
	int rc;

	memset(f.cmd, 0, 64);
	a->argsz = offsetofend(typeof(*a), pt_id);
	a->pt_id = pt_id;
	if (fuzz) {
		a->argsz = pick_argsz(one_in(2) ? sizeof(*a) : a->argsz, 8);
		a->flags = one_in(8) ? pick_flags(VFIO_DEVICE_ATTACH_PASID) : 0;
		a->pasid = one_in(2) ? rnd(4) : (__u32)rnd64();
	}
	note("VFIO_DEVICE_ATTACH_IOMMUFD_PT dev %d argsz %u flags 0x%x pt %u",
	     i, a->argsz, a->flags, a->pt_id);
	rc = vfio_call(f.devfd[i], VFIO_DEVICE_ATTACH_IOMMUFD_PT, a,
		       K_VFIO_ATTACH);
	if (!rc)
		see_id(a->pt_id);
	return rc;
}

static void fz_vfio_detach(int i)
{
	struct vfio_device_detach_iommufd_pt *d = (void *)f.cmd;

	memset(f.cmd, 0, 64);
	d->argsz = pick_argsz(one_in(2) ? sizeof(*d) :
			      offsetofend(typeof(*d), flags), 8);
	d->flags = one_in(8) ? pick_flags(VFIO_DEVICE_DETACH_PASID) : 0;
	d->pasid = rnd(4);
	note("VFIO_DEVICE_DETACH_IOMMUFD_PT dev %d argsz %u flags 0x%x", i,
	     d->argsz, d->flags);
	vfio_call(f.devfd[i], VFIO_DEVICE_DETACH_IOMMUFD_PT, d, K_VFIO_DETACH);
}

/* Close a device file (unbinding it) and open it again, unbound. */
static int reopen_dev(int i)
{
	note("reopen device %d", i);
	close(f.devfd[i]);
	f.devid[i] = 0;
	f.devfd[i] = open(f.cdev[i], O_RDWR | O_CLOEXEC);
	return f.devfd[i] < 0 ? -1 : 0;
}

static void fz_vfio(void)
{
	int i = rnd(NR_DEVS);

	switch (rnd(10)) {
	case 0:
	case 1:
	case 2:
		fz_vfio_bind(i, one_in(4) ? pick_fd() : f.ifd);
		break;
	case 3:
	case 4:
	case 5:
		vfio_attach(i, pick_id(), true);
		break;
	case 6:
	case 7:
		fz_vfio_detach(i);
		break;
	default:
		if (one_in(4))
			reopen_dev(i);
		else
			fz_vfio_bind(i, f.ifd);
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* KVM and the KVM-VFIO device                                            */
/* ---------------------------------------------------------------------- */

static void close_kvm_objects(void)
{
	if (f.kdev >= 0)
		close(f.kdev);
	if (f.vm >= 0)
		close(f.vm);
	f.kdev = f.vm = -1;
}

static void fz_kvm_create(void)
{
	struct kvm_create_device cd = {};
	int rc;

	if (f.vm < 0 || one_in(8)) {
		close_kvm_objects();
		note("KVM_CREATE_VM");
		f.vm = ioctl(f.kvm, KVM_CREATE_VM, 0UL);
		account(K_KVM_CREATE_VM, f.vm < 0 ? -1 : 0);
		return;
	}
	cd.type = one_in(16) ? rnd(16) : KVM_DEV_TYPE_VFIO;
	cd.flags = one_in(4) ? pick_flags(KVM_CREATE_DEVICE_TEST) : 0;
	cd.fd = (__u32)rnd64();
	note("KVM_CREATE_DEVICE type %u flags 0x%x", cd.type, cd.flags);
	rc = ioctl(f.vm, KVM_CREATE_DEVICE, &cd);
	account(K_KVM_CREATE_DEVICE, rc);
	if (!rc && !(cd.flags & KVM_CREATE_DEVICE_TEST)) {
		if (cd.type == KVM_DEV_TYPE_VFIO && f.kdev < 0)
			f.kdev = cd.fd;
		else
			close(cd.fd);
	}
}

static void fz_kvm_attr(void)
{
	struct kvm_device_attr a = {};
	__s32 *val = (__s32 *)(f.scratch + SCRATCH_PAGES / 2 * PAGE_SIZE);
	unsigned long req = KVM_SET_DEVICE_ATTR;
	int k, fd = one_in(8) ? pick_fd() : f.kdev;

	if (f.kdev < 0 && !one_in(16)) {
		fz_kvm_create();
		return;
	}
	*val = pick_fd();
	a.addr = (uintptr_t)val;
	if (one_in(16))
		a.addr = pick_uptr_out();
	switch (rnd(10)) {
	case 0: case 1: case 2: case 3:
		a.group = KVM_DEV_VFIO_FILE;
		a.attr = KVM_DEV_VFIO_FILE_ADD;
		k = K_KVM_FILE_ADD;
		break;
	case 4: case 5:
		a.group = KVM_DEV_VFIO_FILE;
		a.attr = KVM_DEV_VFIO_FILE_DEL;
		k = K_KVM_FILE_DEL;
		break;
	case 6:
		a.group = one_in(2) ? KVM_DEV_VFIO_COHERENCY : rnd(4);
		a.attr = one_in(2) ? KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE :
				     rnd(8);
		*val = one_in(4) ? (__s32)rnd64() : (__s32)rnd(2);
		k = K_KVM_SET_ATTR;
		break;
	case 7:
	case 8:
		req = KVM_GET_DEVICE_ATTR;
		a.group = one_in(4) ? rnd(4) : KVM_DEV_VFIO_COHERENCY;
		a.attr = 1 + rnd(4);
		if (a.attr == KVM_DEV_VFIO_COHERENCY_FILE)
			*val = pick_fd();
		k = K_KVM_GET_ATTR;
		break;
	default:
		req = KVM_HAS_DEVICE_ATTR;
		a.group = one_in(2) ? rnd(4) : KVM_DEV_VFIO_COHERENCY;
		a.attr = rnd(5);
		k = K_KVM_HAS_ATTR;
		break;
	}
	if (one_in(32))
		a.flags = 1;
	note("%s on fd %d group 0x%x attr %llu value %d", kind_name(k), fd,
	     a.group, (unsigned long long)a.attr, *val);
	account(k, ioctl(fd, req, &a));
}

/* ---------------------------------------------------------------------- */
/* the run                                                                 */
/* ---------------------------------------------------------------------- */

/* Close /dev/iommu, objects and all, and start on a fresh context. */
static void reopen_iommufd(void)
{
	note("reopen /dev/iommu");
	close(f.ifd);
	f.ifd = open(IOMMUFD_DEV_PATH, O_RDWR | O_CLOEXEC);
	f.nr_owned = 0;
	f.home_ioas = 0;
	memset(f.devid, 0, sizeof(f.devid));
}

/*
 * The middle third of the run: make sure edu is bound to the context and
 * attached to an IOAS that maps some of the data buffer, so that maps pin
 * and the device paths run. Done every few calls; whatever the fuzzer
 * undid in between is done again.
 */
static void keep_device_attached(void)
{
	struct iommu_ioas_alloc *c;
	__u64 iova = IOVA_BASE;
	__u32 pt;

	if (!f.devid[0]) {
		fz_vfio_bind(0, f.ifd);
		if (!f.devid[0]) {
			/* bound elsewhere, or held by KVM: start afresh */
			close_kvm_objects();
			reopen_dev(0);
			fz_vfio_bind(0, f.ifd);
		}
	}
	if (!f.home_ioas || !is_owned(f.home_ioas)) {
		c = CMD(struct iommu_ioas_alloc);
		c->size = sizeof(*c);
		note("IOAS_ALLOC (home)");
		if (account(IOMMUFD_KIND(IOMMUFD_CMD_IOAS_ALLOC),
			    ioctl(f.ifd, IOMMU_IOAS_ALLOC, c)))
			return;
		f.home_ioas = c->out_ioas_id;
		own_id(f.home_ioas);
		note("IOAS_MAP (home)");
		account(IOMMUFD_KIND(IOMMUFD_CMD_IOAS_MAP),
			_test_ioctl_ioas_map(f.ifd, f.home_ioas, f.data,
					     8 * PAGE_SIZE, &iova,
					     MAP_RW |
						     IOMMU_IOAS_MAP_FIXED_IOVA));
	}
	pt = f.home_ioas;
	vfio_attach(0, pt, false);
}

static void one_call(void)
{
	unsigned int r = rnd(100);

	if (r < 70)
		fz_iommufd();
	else if (r < 86)
		fz_vfio();
	else if (r < 88 && one_in(4))
		fz_kvm_create();
	else if (r < 97)
		fz_kvm_attr();
	else if (r < 98 && one_in(64))
		reopen_iommufd();
	else
		fz_iommufd();
}

/*
 * Kernel log lines that mean trouble, as scripts/judge.py sees them; the
 * fuzzer reports those logged during its run itself, so that a long
 * `make fuzz` names them next to its seed.
 */
static const char *const splat_words[] = {
	"WARNING:", "BUG:", "kernel BUG at", "Oops", "general protection",
	"possible circular locking", "possible recursive locking",
	"inconsistent lock state", "suspicious RCU usage",
	"DEBUG_LOCKS_WARN_ON", "UBSAN:", "KFENCE:", "blocked for more than",
	"Call Trace:",
};

/* Count the splat lines in the records /dev/kmsg has after @fd's place. */
static int count_splats(int fd)
{
	char rec[2048];
	unsigned int i;
	int n = 0;
	ssize_t len;

	for (;;) {
		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;	/* records overwritten: go on */
		if (len <= 0)
			break;
		rec[len] = '\0';
		for (i = 0; i < ARRAY_SIZE(splat_words); i++) {
			if (strstr(rec, splat_words[i])) {
				if (n++ < 5)
					ksft_print_msg("kernel: %s",
						       strchr(rec, ';') ?
						       strchr(rec, ';') + 1 :
						       rec);
				break;
			}
		}
	}
	return n;
}

static int module_refcnt(const char *mod)
{
	char path[128];
	FILE *fp;
	int n = -1;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", mod);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	if (fscanf(fp, "%d", &n) != 1)
		n = -1;
	fclose(fp);
	return n;
}

static void *map_guarded(size_t pages, int prot)
{
	__u8 *p = mmap(NULL, (pages + 1) * PAGE_SIZE, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + pages * PAGE_SIZE, PAGE_SIZE, PROT_NONE))
		return NULL;
	return p;
}

static const char *errname(int e)
{
	static const char *const names[] = {
		[0] = "ok", [EPERM] = "EPERM", [ENOENT] = "ENOENT",
		[EINTR] = "EINTR", [EIO] = "EIO", [ENXIO] = "ENXIO",
		[E2BIG] = "E2BIG", [EBADF] = "EBADF", [EAGAIN] = "EAGAIN",
		[ENOMEM] = "ENOMEM", [EFAULT] = "EFAULT", [EBUSY] = "EBUSY",
		[EEXIST] = "EEXIST", [ENODEV] = "ENODEV", [EINVAL] = "EINVAL",
		[ENOTTY] = "ENOTTY", [ENOSPC] = "ENOSPC", [ERANGE] = "ERANGE",
		[EMSGSIZE] = "EMSGSIZE", [EOPNOTSUPP] = "EOPNOTSUPP",
		[EADDRINUSE] = "EADDRINUSE", [EOVERFLOW] = "EOVERFLOW",
		[ENOSYS] = "ENOSYS", [EACCES] = "EACCES", [EBADFD] = "EBADFD",
	};
	static char buf[16];

	if (e < (int)ARRAY_SIZE(names) && names[e])
		return names[e];
	snprintf(buf, sizeof(buf), e == MAX_ERRNO ? "other" : "errno%d", e);
	return buf;
}

static void print_histogram(void)
{
	char line[1024];
	size_t n;
	int k, e;

	printf("# errno histogram per ioctl (ok = success):\n");
	for (k = 0; k < NR_KINDS; k++) {
		unsigned long total = 0;

		for (e = 0; e <= MAX_ERRNO; e++)
			total += hist[k][e];
		if (!total)
			continue;
		n = snprintf(line, sizeof(line), "#   %-30s %7lu:", kind_name(k),
			     total);
		for (e = 0; e <= MAX_ERRNO && n < sizeof(line); e++)
			if (hist[k][e])
				n += snprintf(line + n, sizeof(line) - n,
					      " %s=%lu", errname(e),
					      hist[k][e]);
		printf("%s\n", line);
	}
}

static int setup(char *why, size_t len)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	char bdf[64];
	int i, rc, mfd;

	f.ifd = open(IOMMUFD_DEV_PATH, O_RDWR | O_CLOEXEC);
	if (f.ifd < 0)
		return snprintf(why, len, "open %s: %s", IOMMUFD_DEV_PATH,
				strerror(errno));
	for (i = 0; i < NR_DEVS; i++) {
		rc = find_vfio_bdf(i ? NIC_VENDOR_ID : EDU_VENDOR_ID,
				   i ? NIC_DEVICE_ID : EDU_DEVICE_ID, bdf,
				   sizeof(bdf));
		if (!rc)
			rc = vfio_cdev_path(bdf, f.cdev[i], PATH_MAX);
		if (rc)
			return snprintf(why, len, "no %s bound to vfio-pci "
					"with a cdev: %s",
					i ? "e1000e" : "edu", strerror(-rc));
		f.devfd[i] = open(f.cdev[i], O_RDWR | O_CLOEXEC);
		if (f.devfd[i] < 0)
			return snprintf(why, len, "open %s: %s", f.cdev[i],
					strerror(errno));
	}
	f.vm = f.kdev = -1;
	f.kvm = open(KVM_PATH, O_RDWR | O_CLOEXEC);
	if (f.kvm < 0)
		return snprintf(why, len, "open %s: %s", KVM_PATH,
				strerror(errno));
	/*
	 * Load the KVM-VFIO device's module now (KVM loads it on the first
	 * KVM_CREATE_DEVICE of its type): linking it takes a reference on
	 * iommufd for as long as it is loaded, which must not count as one
	 * the run leaked.
	 */
	f.vm = ioctl(f.kvm, KVM_CREATE_VM, 0UL);
	if (f.vm < 0)
		return snprintf(why, len, "KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(f.vm, KVM_CREATE_DEVICE, &cd))
		return snprintf(why, len, "KVM_CREATE_DEVICE(VFIO): %s",
				strerror(errno));
	close(cd.fd);
	close(f.vm);
	f.vm = -1;

	f.memfd = memfd_create("iommufd_fuzz", MFD_CLOEXEC);
	if (f.memfd < 0 || ftruncate(f.memfd, MEMFD_PAGES * PAGE_SIZE))
		return snprintf(why, len, "memfd: %s", strerror(errno));
	f.closed_fd = 1000;
	close(f.closed_fd);

	f.data = map_guarded(DATA_PAGES, PROT_READ | PROT_WRITE);
	f.scratch = map_guarded(SCRATCH_PAGES, PROT_READ | PROT_WRITE);
	f.cmd = map_guarded(CMD_PAGES, PROT_READ | PROT_WRITE);
	f.ro = map_guarded(RO_PAGES, PROT_READ);
	f.unmapped = map_guarded(1, PROT_READ);
	if (!f.data || !f.scratch || !f.cmd || !f.ro || !f.unmapped ||
	    munmap(f.unmapped, 2 * PAGE_SIZE))
		return snprintf(why, len, "mmap: %s", strerror(errno));
	memset(f.data, 0x5a, DATA_PAGES * PAGE_SIZE);

	/* one page seen twice: written through one view, read-only the other */
	mfd = memfd_create("iommufd_fuzz_ro", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, PAGE_SIZE))
		return snprintf(why, len, "memfd: %s", strerror(errno));
	f.ro_cmd_rw = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			   mfd, 0);
	f.ro_cmd = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, mfd, 0);
	close(mfd);
	if (f.ro_cmd_rw == MAP_FAILED || f.ro_cmd == MAP_FAILED)
		return snprintf(why, len, "mmap: %s", strerror(errno));
	return 0;
}

/*
 * Release the KVM objects and the devices, destroy the objects the run
 * made, and count (destroying them) what is left with ids up to a little
 * past the highest seen. Returns the number left; *@first is one of them.
 */
static int teardown_count_left(__u32 *first)
{
	unsigned int pass, i;
	int left = 0;
	__u32 id;

	close_kvm_objects();
	for (i = 0; i < NR_DEVS; i++) {
		close(f.devfd[i]);
		f.devfd[i] = -1;
		f.devid[i] = 0;
	}
	/* HWPTs hold their IOAS: a few passes take every chain down */
	for (pass = 0; pass < 4 && f.nr_owned; pass++)
		for (i = 0; i < f.nr_owned;)
			if (!_test_ioctl_destroy(f.ifd, f.owned[i]) ||
			    errno == ENOENT)
				f.owned[i] = f.owned[--f.nr_owned];
			else
				i++;
	for (id = 1; id <= f.max_id + 64; id++) {
		if (_test_ioctl_destroy(f.ifd, id) && errno == ENOENT)
			continue;
		if (!left++)
			*first = id;
	}
	return left;
}

/* After it all: the device must bind and attach to a fresh context. */
static int rebind_fresh(char *why, size_t len)
{
	__u32 devid, ioas, pt;
	int fd, dev, rc = 0;

	fd = open(IOMMUFD_DEV_PATH, O_RDWR | O_CLOEXEC);
	dev = open(f.cdev[0], O_RDWR | O_CLOEXEC);
	if (fd < 0 || dev < 0) {
		rc = snprintf(why, len, "reopen: %s", strerror(errno));
		goto out;
	}
	if (_test_ioctl_vfio_bind(dev, fd, &devid)) {
		rc = snprintf(why, len, "edu does not bind to a new "
			      "/dev/iommu: %s", strerror(errno));
		goto out;
	}
	if (_test_ioctl_ioas_alloc(fd, 0, &ioas)) {
		rc = snprintf(why, len, "IOAS_ALLOC: %s", strerror(errno));
		goto out;
	}
	pt = ioas;
	if (_test_ioctl_vfio_attach(dev, &pt))
		rc = snprintf(why, len, "attach: %s", strerror(errno));
	else if (_test_count_ioas(fd, 64) != 1)
		rc = snprintf(why, len, "a fresh context holds %d IOASes",
			      _test_count_ioas(fd, 64));
out:
	if (dev >= 0)
		close(dev);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-s SEED] [-n CALLS] [-v]\n", prog);
	exit(KSFT_FAIL);
}

int main(int argc, char **argv)
{
	unsigned long calls = DEFAULT_CALLS, i, third;
	long pin0, lck0, pin1, lck1;
	int ref0, ref1, kref1, left, opt, kmsg, splats;
	__u32 first = 0;
	char why[256] = "";
	struct timespec t0, t1;

	while ((opt = getopt(argc, argv, "s:n:vh")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			calls = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			f.verbose = true;
			break;
		default:
			usage(argv[0]);
		}
	}
	/* the harness header's runner is not used: the TAP is printed here */
	(void)test_harness_run;
	/* xorshift must not start at zero */
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 0x1f0f;

	ksft_print_header();
	ksft_set_plan(6);
	ksft_print_msg("seed %" PRIu64 ", %lu calls (reproduce: %s -s %" PRIu64
		       " -n %lu -v)\n",
		       (uint64_t)seed, calls, argv[0], (uint64_t)seed, calls);

	pin0 = vmpin_kb();
	lck0 = vmlck_kb();
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg < 0)
		snprintf(why, sizeof(why), "/dev/kmsg: %s", strerror(errno));
	else
		lseek(kmsg, 0, SEEK_END);
	if (kmsg < 0 || setup(why, sizeof(why)) || pin0 < 0 || lck0 < 0) {
		ksft_test_result_fail("setup: %s\n",
				      why[0] ? why : "no VmPin/VmLck");
		ksft_exit_fail();
	}
	ref0 = module_refcnt("iommufd");
	ksft_test_result_pass("setup\n");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	third = calls / 3;
	for (i = 0; i < calls; i++) {
		f.phase_attached = i >= third && i < 2 * third;
		if (f.phase_attached && !(i % 32))
			keep_device_attached();
		one_call();
		if (f.ifd < 0) {
			ksft_print_msg("cannot reopen /dev/iommu: %s\n",
				       strerror(errno));
			break;
		}
		for (opt = 0; opt < NR_DEVS; opt++)
			if (f.devfd[opt] < 0)
				break;
		if (opt < NR_DEVS) {
			ksft_print_msg("cannot reopen %s: %s\n", f.cdev[opt],
				       strerror(errno));
			break;
		}
	}
	f.phase_attached = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);

	ksft_print_msg("%lu calls made in %.1f s (%lu of them with edu kept "
		       "attached), %u objects owned at the end, highest id "
		       "%u\n",
		       nr_calls,
		       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		       nr_device_attached_calls, f.nr_owned, f.max_id);
	print_histogram();
	ksft_test_result(!nr_violations && i == calls,
			 "every answer was one an ioctl may give (%lu "
			 "violations)\n",
			 nr_violations);

	left = teardown_count_left(&first);
	if (left)
		ksft_print_msg("%d objects left after destroying what the run "
			       "made, the first with id %u\n",
			       left, first);
	ksft_test_result(!left, "no object left in the context\n");

	pin1 = vmpin_kb();
	lck1 = vmlck_kb();
	close(f.ifd);
	f.ifd = -1;
	if (pin1 != pin0 || lck1 != lck0 || vmpin_kb() != pin0 ||
	    vmlck_kb() != lck0)
		ksft_print_msg("VmPin %ld kB at the start, %ld kB before "
			       "closing /dev/iommu, %ld kB after; VmLck %ld, "
			       "%ld, %ld kB\n",
			       pin0, pin1, vmpin_kb(), lck0, lck1, vmlck_kb());
	ksft_test_result(pin1 == pin0 && lck1 == lck0 && vmpin_kb() == pin0 &&
			 vmlck_kb() == lck0,
			 "no pages left pinned or charged\n");

	close(f.kvm);
	why[0] = '\0';
	if (!rebind_fresh(why, sizeof(why))) {
		ref1 = module_refcnt("iommufd");
		kref1 = module_refcnt("kvm_vfio_rs");
		/* no refcnt file: built in, nothing to count */
		if (ref0 >= 0 && ref1 != ref0 - 1)
			snprintf(why, sizeof(why),
				 "iommufd module refcnt %d at the start (with "
				 "/dev/iommu open), %d with everything closed",
				 ref0, ref1);
		else if (kref1 > 0)
			snprintf(why, sizeof(why),
				 "kvm_vfio_rs refcnt %d with every VM closed",
				 kref1);
	}
	if (why[0])
		ksft_print_msg("%s\n", why);
	ksft_test_result(!why[0], "nothing remains after closing\n");

	splats = count_splats(kmsg);
	ksft_print_msg("%d kernel log splats during the run\n", splats);
	ksft_test_result(!splats, "kernel log clean during the run\n");
	ksft_finished();
}
