// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency stress of one /dev/iommu context.
 *
 * Several threads share one context, a few IOAS and HWPT slots and the two
 * test devices (edu and the e1000e), and each runs a fixed number of
 * randomly chosen operations on whatever the slots hold at that moment:
 * map, unmap, copy, allow_iovas, iova_ranges, IOAS alloc/destroy, HWPT
 * alloc/destroy, attach, replace (attach while attached), detach, and
 * closing a device file under the other threads' feet followed by a rebind.
 * Objects come and go while others use them, so an operation may find its
 * object destroyed, busy or of another type; each operation has the list of
 * errnos such races may legitimately produce, and any other outcome is a
 * failure.
 *
 * The run is bounded by an operation count, not by time, so the outcome
 * does not depend on the speed of the machine (IOMMUFD_STRESS_ITERS
 * overrides the count per thread). Afterwards everything is torn down and
 * the test checks that the context holds no object, and that the pins and
 * their RLIMIT_MEMLOCK charge (VmPin, and VmLck in IOMMU_OPTION_RLIMIT_MODE
 * 1 without CAP_IPC_LOCK) are back where they started.
 *
 * The test kernel runs with lockdep: a lock-order problem shows as a splat
 * in the kernel log, which the judge counts as a failure.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"

#define NR_THREADS 4
#define DEFAULT_ITERS 5000	/* about 25 s in the TCG test VM */
#define NR_IOAS 3
#define NR_HWPT 3
#define NR_DEVS 2

/* fixed IOVA slots, far from anything a device reserves; edu sees 28 bits */
#define IOVA_BASE 0x1000000ULL
#define IOVA_STRIDE 0x100000ULL
#define NR_IOVA_SLOTS 16
#define MAP_MAX_PAGES 4
#define BUF_PAGES 64

enum op {
	OP_MAP,
	OP_UNMAP,
	OP_COPY,
	OP_ALLOW_IOVAS,
	OP_IOVA_RANGES,
	OP_IOAS_NEW,
	OP_IOAS_DESTROY,
	OP_HWPT_NEW,
	OP_HWPT_DESTROY,
	OP_ATTACH,
	OP_DETACH,
	OP_REOPEN,
	OP_REBIND,
	NR_OPS,
};

static const char *const op_name[NR_OPS] = {
	[OP_MAP] = "map",
	[OP_UNMAP] = "unmap",
	[OP_COPY] = "copy",
	[OP_ALLOW_IOVAS] = "allow_iovas",
	[OP_IOVA_RANGES] = "iova_ranges",
	[OP_IOAS_NEW] = "ioas_alloc",
	[OP_IOAS_DESTROY] = "ioas_destroy",
	[OP_HWPT_NEW] = "hwpt_alloc",
	[OP_HWPT_DESTROY] = "hwpt_destroy",
	[OP_ATTACH] = "attach/replace",
	[OP_DETACH] = "detach",
	[OP_REOPEN] = "reopen",
	[OP_REBIND] = "rebind",
};

/* how often each operation is picked, out of the sum */
static const unsigned int op_weight[NR_OPS] = {
	[OP_MAP] = 16,
	[OP_UNMAP] = 10,
	[OP_COPY] = 6,
	[OP_ALLOW_IOVAS] = 3,
	[OP_IOVA_RANGES] = 3,
	[OP_IOAS_NEW] = 3,
	[OP_IOAS_DESTROY] = 3,
	[OP_HWPT_NEW] = 3,
	[OP_HWPT_DESTROY] = 3,
	[OP_ATTACH] = 8,
	[OP_DETACH] = 5,
	[OP_REOPEN] = 1,
	[OP_REBIND] = 2,
};

/*
 * What racing with the other threads may make each operation fail with:
 * the id vanished (ENOENT) or names an object of another type (EINVAL),
 * the object is in use (EBUSY), the IOVA is taken or out of the allowed
 * ranges (EEXIST, ENOSPC, EADDRINUSE, EINVAL), the memlock limit is
 * reached (ENOMEM), the device file is not bound right now (EINVAL).
 */
#define MAX_OK_ERRS 8
static const int op_ok_errs[NR_OPS][MAX_OK_ERRS] = {
	[OP_MAP] = { ENOENT, EINVAL, EEXIST, ENOSPC, ENOMEM, EADDRINUSE },
	[OP_UNMAP] = { ENOENT, EINVAL },
	[OP_COPY] = { ENOENT, EINVAL, EEXIST, ENOSPC, ENOMEM, EADDRINUSE },
	[OP_ALLOW_IOVAS] = { ENOENT, EINVAL, EADDRINUSE },
	[OP_IOVA_RANGES] = { ENOENT, EINVAL },
	[OP_IOAS_DESTROY] = { ENOENT, EBUSY },
	[OP_HWPT_NEW] = { ENOENT, EINVAL, EBUSY },
	[OP_HWPT_DESTROY] = { ENOENT, EBUSY },
	[OP_ATTACH] = { ENOENT, EINVAL, EBUSY, EADDRINUSE, ENOMEM },
	[OP_DETACH] = { EINVAL, ENOENT },
	[OP_REOPEN] = { EINVAL, EBUSY },
	[OP_REBIND] = { EINVAL, EBUSY },
};

/* The index of @err in op_ok_errs[@op], or -1 if a race cannot explain it. */
static int err_ok(enum op op, int err)
{
	int i;

	for (i = 0; i < MAX_OK_ERRS && op_ok_errs[op][i]; i++)
		if (op_ok_errs[op][i] == err)
			return i;
	return -1;
}

struct stress_dev {
	char cdev[PATH_MAX];
	int fd;			/* the fd number never changes, the file may */
	_Atomic __u32 id;	/* device object id, 0 while unbound */
	pthread_mutex_t reopen;	/* one reopen of this device at a time */
};

struct stress {
	int fd;
	__u8 *buf;
	_Atomic __u32 ioas[NR_IOAS];
	_Atomic __u32 hwpt[NR_HWPT];
	struct stress_dev dev[NR_DEVS];
	_Atomic __u32 max_id;	/* highest object id ever handed out */
	unsigned long iters;
	/* objects that lost their slot while busy: the clean-up's to destroy */
	pthread_mutex_t orphan_lock;
	__u32 *orphans;
	unsigned long nr_orphans;
};

struct worker {
	struct stress *s;
	pthread_t thread;
	unsigned int seed;
	unsigned long calls[NR_OPS];
	unsigned long fails[NR_OPS];	/* legitimate racing errnos */
	unsigned long errs[NR_OPS][MAX_OK_ERRS];	/* by op_ok_errs[] */
	unsigned long bad;		/* anything else */
	char first_bad[160];
};

static void note_id(struct stress *s, __u32 id)
{
	__u32 cur = atomic_load(&s->max_id);

	while (id > cur && !atomic_compare_exchange_weak(&s->max_id, &cur, id))
		;
}

static unsigned int rnd(struct worker *w, unsigned int n)
{
	return rand_r(&w->seed) % n;
}

static __u64 iova_slot(struct worker *w)
{
	return IOVA_BASE + rnd(w, NR_IOVA_SLOTS) * IOVA_STRIDE;
}

/* Remember @id for the final clean-up; each operation adds at most one. */
static void orphan(struct stress *s, __u32 id)
{
	pthread_mutex_lock(&s->orphan_lock);
	s->orphans[s->nr_orphans++] = id;
	pthread_mutex_unlock(&s->orphan_lock);
}

/*
 * Destroy what @slot holds. An object still in use goes back into the
 * slot if that is free, or else to the orphans.
 */
static int destroy_slot(struct stress *s, _Atomic __u32 *slot)
{
	__u32 id = atomic_exchange(slot, 0), zero = 0;
	int rc, err;

	if (!id)
		return 0;
	rc = _test_ioctl_destroy(s->fd, id);
	err = errno;
	if (rc && err == EBUSY &&
	    !atomic_compare_exchange_strong(slot, &zero, id))
		orphan(s, id);
	errno = err;
	return rc;
}

/* Hand a freshly made object to slot @slot; destroy what it held before. */
static void put_slot(struct stress *s, _Atomic __u32 *slot, __u32 id)
{
	__u32 old = atomic_exchange(slot, id);

	if (old && _test_ioctl_destroy(s->fd, old) && errno == EBUSY)
		orphan(s, old);
}

/* Any object id the slots hold, or now and then one that is stale. */
static __u32 any_pt(struct worker *w)
{
	struct stress *s = w->s;

	switch (rnd(w, 5)) {
	case 0:
	case 1:
		return atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
	case 2:
	case 3:
		return atomic_load(&s->hwpt[rnd(w, NR_HWPT)]);
	default:
		return 1 + rnd(w, atomic_load(&s->max_id) + 1);
	}
}

static int do_reopen(struct stress *s, struct stress_dev *d, __u32 *newid)
{
	int nfd, rc;

	if (pthread_mutex_trylock(&d->reopen)) {
		errno = EBUSY;
		return -1;
	}
	nfd = open(d->cdev, O_RDWR | O_CLOEXEC);
	if (nfd < 0) {
		rc = -1;
		goto out;
	}
	/*
	 * Swap the file under the fd number the other threads use: the old
	 * file's last reference goes (and with it the binding) as soon as no
	 * ioctl holds it any more, and no thread can ever issue a VFIO ioctl
	 * on an unrelated file that reused the number.
	 */
	atomic_store(&d->id, 0);
	rc = dup2(nfd, d->fd) < 0 ? -1 : 0;
	close(nfd);
	if (rc)
		goto out;
	rc = _test_ioctl_vfio_bind(d->fd, s->fd, newid);
	if (!rc) {
		atomic_store(&d->id, *newid);
		note_id(s, *newid);
	}
out:
	pthread_mutex_unlock(&d->reopen);
	return rc;
}

static int run_op(struct worker *w, enum op op)
{
	struct stress *s = w->s;
	struct stress_dev *d = &s->dev[rnd(w, NR_DEVS)];
	struct iommu_iova_range ranges[4];
	__u32 id, id2, num;
	__u64 iova, len;

	switch (op) {
	case OP_MAP:
		id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		len = (1 + rnd(w, MAP_MAX_PAGES)) * PAGE_SIZE;
		iova = iova_slot(w);
		return _test_ioctl_ioas_map(s->fd, id,
					    s->buf + rnd(w, BUF_PAGES -
							 MAP_MAX_PAGES) *
							 PAGE_SIZE,
					    len, &iova,
					    MAP_RW | (rnd(w, 4) ?
						      IOMMU_IOAS_MAP_FIXED_IOVA :
						      0));
	case OP_UNMAP:
		id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		if (!rnd(w, 8))
			return _test_ioctl_ioas_unmap(s->fd, id, 0, UINT64_MAX,
						      NULL);
		return _test_ioctl_ioas_unmap(s->fd, id, iova_slot(w),
					      IOVA_STRIDE, NULL);
	case OP_COPY:
		id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		id2 = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		iova = iova_slot(w);
		return _test_ioctl_ioas_copy(s->fd, id, id2, iova_slot(w),
					     PAGE_SIZE, &iova,
					     MAP_RW |
						     IOMMU_IOAS_MAP_FIXED_IOVA);
	case OP_ALLOW_IOVAS:
		id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		num = rnd(w, 3);
		ranges[0].start = 0;
		ranges[0].last = IOVA_BASE + NR_IOVA_SLOTS * IOVA_STRIDE - 1;
		ranges[1].start = 0x80000000ULL;
		ranges[1].last = 0x8fffffffULL;
		if (num == 2 && !rnd(w, 2))
			/* too narrow for some of the mappings */
			ranges[0].last = IOVA_BASE + IOVA_STRIDE - 1;
		return _test_ioctl_ioas_allow_iovas(s->fd, id, ranges, num);
	case OP_IOVA_RANGES:
		id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]);
		num = 4;
		if (_test_ioctl_ioas_iova_ranges(s->fd, id, &num, ranges,
						 NULL) && errno != EMSGSIZE)
			return -1;
		return 0;
	case OP_IOAS_NEW:
		if (_test_ioctl_ioas_alloc(s->fd, 0, &id))
			return -1;
		note_id(s, id);
		put_slot(s, &s->ioas[rnd(w, NR_IOAS)], id);
		return 0;
	case OP_IOAS_DESTROY:
		return destroy_slot(s, &s->ioas[rnd(w, NR_IOAS)]);
	case OP_HWPT_NEW: {
		struct iommu_hwpt_alloc cmd = {
			.size = sizeof(cmd),
			.dev_id = atomic_load(&d->id),
			.pt_id = atomic_load(&s->ioas[rnd(w, NR_IOAS)]),
		};

		if (ioctl(s->fd, IOMMU_HWPT_ALLOC, &cmd))
			return -1;
		note_id(s, cmd.out_hwpt_id);
		put_slot(s, &s->hwpt[rnd(w, NR_HWPT)], cmd.out_hwpt_id);
		return 0;
	}
	case OP_HWPT_DESTROY:
		return destroy_slot(s, &s->hwpt[rnd(w, NR_HWPT)]);
	case OP_ATTACH:
		id = any_pt(w);
		if (_test_ioctl_vfio_attach(d->fd, &id))
			return -1;
		note_id(s, id);
		return 0;
	case OP_DETACH:
		return _test_ioctl_vfio_detach(d->fd);
	case OP_REOPEN:
		return do_reopen(s, d, &id);
	case OP_REBIND:
		if (atomic_load(&d->id))
			return 0;
		if (pthread_mutex_trylock(&d->reopen))
			return 0;
		if (!_test_ioctl_vfio_bind(d->fd, s->fd, &id)) {
			atomic_store(&d->id, id);
			note_id(s, id);
			pthread_mutex_unlock(&d->reopen);
			return 0;
		}
		num = errno;
		pthread_mutex_unlock(&d->reopen);
		errno = num;
		return -1;
	default:
		errno = EDOM;
		return -1;
	}
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	unsigned int total = 0, pick, i;
	unsigned long n;
	enum op op;
	int err, ok;

	for (i = 0; i < NR_OPS; i++)
		total += op_weight[i];
	for (n = 0; n < w->s->iters; n++) {
		pick = rnd(w, total);
		for (op = 0; pick >= op_weight[op]; op++)
			pick -= op_weight[op];
		w->calls[op]++;
		errno = 0;
		if (!run_op(w, op))
			continue;
		err = errno;
		ok = err_ok(op, err);
		if (ok >= 0) {
			w->errs[op][ok]++;
			w->fails[op]++;
			continue;
		}
		if (!w->bad++)
			snprintf(w->first_bad, sizeof(w->first_bad),
				 "call %lu, %s: %s (errno %d)", n, op_name[op],
				 strerror(err), err);
	}
	return NULL;
}

FIXTURE(stress)
{
	struct stress s;
	long vmpin_start;
	long vmlck_start;
};

FIXTURE_SETUP(stress)
{
	char bdf[64];
	const char *env = getenv("IOMMUFD_STRESS_ITERS");
	long base_pages;
	__u64 val = 1;
	int i;

	memset(&self->s, 0, sizeof(self->s));
	self->s.fd = -1;
	for (i = 0; i < NR_DEVS; i++)
		self->s.dev[i].fd = -1;
	self->s.iters = env && atol(env) > 0 ? (unsigned long)atol(env) :
					       DEFAULT_ITERS;
	pthread_mutex_init(&self->s.orphan_lock, NULL);
	self->s.orphans = calloc(NR_THREADS * self->s.iters,
				 sizeof(*self->s.orphans));
	ASSERT_NE(NULL, self->s.orphans);
	self->vmpin_start = vmpin_kb();
	ASSERT_LE(0, self->vmpin_start) TH_LOG("no VmPin in /proc/self/status");

	open_iommufd_or_fail(&self->s.fd);
	/* charge pins to this mm, so VmLck shows what is charged */
	ASSERT_EQ(0, _test_ioctl_option(self->s.fd, IOMMU_OPTION_RLIMIT_MODE,
					IOMMU_OPTION_OP_SET, 0, &val))
		TH_LOG("RLIMIT_MODE=1: %s", strerror(errno));
	/* capabilities are per thread: drop it before any worker exists */
	drop_cap_ipc_lock();
	self->vmlck_start = vmlck_kb();
	ASSERT_LE(0, self->vmlck_start) TH_LOG("no VmLck in /proc/self/status");
	/* room for every thread's mappings several times over */
	base_pages = self->vmlck_start * 1024 / (long)PAGE_SIZE;
	set_memlock_limit((base_pages + 4096) * (__u64)PAGE_SIZE);

	self->s.buf = mmap(NULL, BUF_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->s.buf);

	self->s.dev[0].fd = open_edu_or_fail(bdf);
	ASSERT_EQ(0, vfio_cdev_path(bdf, self->s.dev[0].cdev, PATH_MAX));
	self->s.dev[1].fd = open_nic_or_fail(bdf);
	ASSERT_EQ(0, vfio_cdev_path(bdf, self->s.dev[1].cdev, PATH_MAX));
	for (i = 0; i < NR_DEVS; i++) {
		__u32 id;

		pthread_mutex_init(&self->s.dev[i].reopen, NULL);
		ASSERT_EQ(0, _test_ioctl_vfio_bind(self->s.dev[i].fd,
						   self->s.fd, &id))
			TH_LOG("bind: %s", strerror(errno));
		atomic_store(&self->s.dev[i].id, id);
		note_id(&self->s, id);
	}
	for (i = 0; i < NR_IOAS; i++) {
		__u32 id;

		ASSERT_EQ(0, _test_ioctl_ioas_alloc(self->s.fd, 0, &id));
		atomic_store(&self->s.ioas[i], id);
		note_id(&self->s, id);
	}
}

FIXTURE_TEARDOWN(stress)
{
	int i;

	for (i = 0; i < NR_DEVS; i++)
		if (self->s.dev[i].fd >= 0)
			close(self->s.dev[i].fd);
	if (self->s.fd >= 0)
		close(self->s.fd);
	if (self->s.buf && self->s.buf != MAP_FAILED)
		munmap(self->s.buf, BUF_PAGES * PAGE_SIZE);
	free(self->s.orphans);
}

/*
 * Count the objects left in the context with ids up to @max_id, destroying
 * each one found: with every device unbound and nothing attached, a
 * destroy either succeeds (an object was still there) or finds nothing.
 */
static int count_left(int fd, __u32 max_id, __u32 *first)
{
	int left = 0;
	__u32 id;

	for (id = 1; id <= max_id; id++) {
		if (_test_ioctl_destroy(fd, id) && errno == ENOENT)
			continue;
		if (!left++)
			*first = id;
	}
	return left;
}

TEST_F_TIMEOUT(stress, shared_objects, 600)
{
	struct worker w[NR_THREADS];
	unsigned long calls[NR_OPS] = {}, fails[NR_OPS] = {}, bad = 0;
	unsigned long errs[NR_OPS][MAX_OK_ERRS] = {};
	char line[256];
	size_t len;
	int e;
	__u32 first = 0, max_id;
	int i, op, left;
	unsigned long n;
	struct timespec t0, t1;

	memset(w, 0, sizeof(w));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < NR_THREADS; i++) {
		w[i].s = &self->s;
		w[i].seed = 0x10c0 + i;
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL, worker_fn,
					    &w[i]));
	}
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(w[i].thread, NULL));
		for (op = 0; op < NR_OPS; op++) {
			calls[op] += w[i].calls[op];
			fails[op] += w[i].fails[op];
			for (e = 0; e < MAX_OK_ERRS; e++)
				errs[op][e] += w[i].errs[op][e];
		}
		bad += w[i].bad;
		if (w[i].bad)
			TH_LOG("thread %d: %lu unexpected results, the first "
			       "at %s",
			       i, w[i].bad, w[i].first_bad);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TH_LOG("%d threads, %lu operations each, in %.1f s", NR_THREADS,
	       self->s.iters,
	       t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (op = 0; op < NR_OPS; op++) {
		len = snprintf(line, sizeof(line), "%-15s %6lu calls, %6lu ok",
			       op_name[op], calls[op], calls[op] - fails[op]);
		for (e = 0; e < MAX_OK_ERRS && len < sizeof(line); e++)
			if (errs[op][e])
				len += snprintf(line + len, sizeof(line) - len,
						", %s %lu",
						strerrorname_np(op_ok_errs[op][e]),
						errs[op][e]);
		TH_LOG("%s", line);
	}
	EXPECT_EQ(0UL, bad);

	/* tear down: unbind both devices, then every object must go */
	for (i = 0; i < NR_DEVS; i++) {
		_test_ioctl_vfio_detach(self->s.dev[i].fd);
		EXPECT_EQ(0, close(self->s.dev[i].fd));
		self->s.dev[i].fd = -1;
	}
	for (i = 0; i < NR_HWPT; i++)
		EXPECT_EQ(0, destroy_slot(&self->s, &self->s.hwpt[i]))
			TH_LOG("HWPT slot %d: %s", i, strerror(errno));
	/* orphaned HWPTs before the IOASes they hold */
	for (n = 0; n < self->s.nr_orphans; n++)
		if (!_test_ioctl_destroy(self->s.fd, self->s.orphans[n]))
			self->s.orphans[n] = 0;
	for (i = 0; i < NR_IOAS; i++)
		EXPECT_EQ(0, destroy_slot(&self->s, &self->s.ioas[i]))
			TH_LOG("IOAS slot %d: %s", i, strerror(errno));
	for (n = 0; n < self->s.nr_orphans; n++)
		if (self->s.orphans[n])
			_test_ioctl_destroy(self->s.fd, self->s.orphans[n]);
	TH_LOG("%lu objects were busy when their slot was reused",
	       self->s.nr_orphans);
	max_id = atomic_load(&self->s.max_id);
	TH_LOG("highest object id %u", max_id);
	left = count_left(self->s.fd, max_id + 64, &first);
	EXPECT_EQ(0, left)
		TH_LOG("%d objects left in the context after clean-up, the "
		       "first with id %u",
		       left, first);
	EXPECT_EQ(0, _test_count_ioas(self->s.fd, max_id + 64));

	/* every pin went with its mapping, and so did its charge */
	EXPECT_EQ(self->vmpin_start, vmpin_kb())
		TH_LOG("VmPin after clean-up");
	EXPECT_EQ(self->vmlck_start, vmlck_kb())
		TH_LOG("VmLck after clean-up");
	EXPECT_EQ(0, close(self->s.fd));
	self->s.fd = -1;
	EXPECT_EQ(self->vmpin_start, vmpin_kb())
		TH_LOG("VmPin after closing /dev/iommu");
	EXPECT_EQ(self->vmlck_start, vmlck_kb())
		TH_LOG("VmLck after closing /dev/iommu");
}

TEST_HARNESS_MAIN
