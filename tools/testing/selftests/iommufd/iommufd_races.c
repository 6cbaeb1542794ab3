// SPDX-License-Identifier: GPL-2.0-only
/*
 * Races between what userspace does to an object and what the kernel does
 * to it on its own:
 *
 *  - unbind (closing the VFIO device) while another thread's ioctl is using
 *    the device: when close() returns, the device must be free for another
 *    /dev/iommu at once, and may even be removed from the system, so the
 *    unbind has to wait for that ioctl;
 *  - IOMMU_DESTROY of an automatic HWPT racing the detach that makes the
 *    kernel destroy it, with the freed id handed at once to an HWPT of
 *    another IOAS: the kernel must destroy the HWPT it meant, never the
 *    new one that now has its id, and the next attach to the first IOAS
 *    must not land on the other IOAS's HWPT.
 *
 * Both run many times; each round checks what the race must not break.
 * A missing device is a failure, not a skip.
 */
#include <pthread.h>
#include <sched.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"

/* ---------------------------------------------------------------------- */
/* unbind while GET_HW_INFO holds the device                               */
/* ---------------------------------------------------------------------- */

/* a report buffer large enough that filling it takes a while */
#define HW_INFO_LEN (64UL << 20)

struct hw_info_loop {
	int fd;
	__u32 dev_id;
	void *buf;
	volatile int running;	/* set once the first call is under way */
	unsigned long calls;
	int err;		/* an errno other than the expected ENOENT */
};

static void *hw_info_loop(void *arg)
{
	struct hw_info_loop *l = arg;

	for (;;) {
		struct iommu_hw_info cmd = {
			.size = sizeof(cmd),
			.dev_id = l->dev_id,
			.data_len = HW_INFO_LEN,
			.data_uptr = (uintptr_t)l->buf,
		};

		l->running = 1;
		if (ioctl(l->fd, IOMMU_GET_HW_INFO, &cmd)) {
			/* the device was unbound: the loop is over */
			if (errno != ENOENT)
				l->err = errno;
			return NULL;
		}
		l->calls++;
	}
}

FIXTURE(unbind)
{
	int fd[2];
	char bdf[64];
};

FIXTURE_SETUP(unbind)
{
	int dev;

	self->fd[0] = self->fd[1] = -1;
	open_iommufd_or_fail(&self->fd[0]);
	open_iommufd_or_fail(&self->fd[1]);
	/* only to learn the address; each round opens it again */
	dev = open_edu_or_fail(self->bdf);
	ASSERT_EQ(0, close(dev));
}

FIXTURE_TEARDOWN(unbind)
{
	int i;

	for (i = 0; i < 2; i++)
		if (self->fd[i] >= 0)
			EXPECT_EQ(0, close(self->fd[i]));
}

TEST_F(unbind, waits_for_ioctls_using_the_device)
{
	char cdev[PATH_MAX];
	struct hw_info_loop l;
	pthread_t t;
	__u32 devid;
	int round, dev, dev2, rc;

	ASSERT_EQ(0, vfio_cdev_path(self->bdf, cdev, sizeof(cdev)));
	memset(&l, 0, sizeof(l));
	l.buf = mmap(NULL, HW_INFO_LEN, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, l.buf);

	for (round = 0; round < 10; round++) {
		dev = open(cdev, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, dev) TH_LOG("open %s: %s", cdev, strerror(errno));
		ASSERT_EQ(0, _test_ioctl_vfio_bind(dev, self->fd[0], &devid))
			TH_LOG("round %d: bind: %s", round, strerror(errno));

		l.fd = self->fd[0];
		l.dev_id = devid;
		l.running = 0;
		ASSERT_EQ(0, pthread_create(&t, NULL, hw_info_loop, &l));
		while (!l.running)
			usleep(100);
		usleep(1000);
		/* unbinds, while the other thread is (most likely) in the ioctl */
		ASSERT_EQ(0, close(dev));

		/* the device must be free for another context right away */
		dev2 = open(cdev, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, dev2);
		rc = _test_ioctl_vfio_bind(dev2, self->fd[1], &devid);
		EXPECT_EQ(0, rc)
			TH_LOG("round %d: bind to a second /dev/iommu right "
			       "after close: %s",
			       round, strerror(errno));
		ASSERT_EQ(0, pthread_join(t, NULL));
		EXPECT_EQ(0, l.err)
			TH_LOG("GET_HW_INFO failed with %s", strerror(l.err));
		ASSERT_EQ(0, close(dev2));
		if (rc)
			break;
	}
	TH_LOG("%lu GET_HW_INFO calls of %lu MiB", l.calls, HW_INFO_LEN >> 20);
	munmap(l.buf, HW_INFO_LEN);
}

/*
 * The same race, but the device leaves the system as soon as close()
 * returns: nothing may still own or touch it by then, so the removal
 * completes at once, without a warning or an oops, and the ioctl that was
 * running ends with ENOENT.  The device is put back afterwards.
 */
TEST_F_TIMEOUT(unbind, remove_right_after_unbind, 120)
{
	char cdev[PATH_MAX], path[PATH_MAX];
	struct hw_info_loop l;
	pthread_t t;
	__u32 devid;
	int dev, kmsg;

	ASSERT_EQ(0, vfio_cdev_path(self->bdf, cdev, sizeof(cdev)));
	memset(&l, 0, sizeof(l));
	l.buf = mmap(NULL, HW_INFO_LEN, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, l.buf);
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	ASSERT_LE(0, lseek(kmsg, 0, SEEK_END));

	dev = open(cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, _test_ioctl_vfio_bind(dev, self->fd[0], &devid));
	l.fd = self->fd[0];
	l.dev_id = devid;
	ASSERT_EQ(0, pthread_create(&t, NULL, hw_info_loop, &l));
	while (!l.running)
		usleep(100);
	usleep(1000);
	ASSERT_EQ(0, close(dev));

	snprintf(path, sizeof(path), PCI_SYSFS_DEVICES "/%s/remove",
		 self->bdf);
	EXPECT_EQ(0, write_file(path, "1", 0))
		TH_LOG("removing %s: %s", self->bdf, strerror(errno));
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, l.err)
		TH_LOG("GET_HW_INFO failed with %s", strerror(l.err));
	EXPECT_FALSE(wait_kmsg(kmsg, "WARNING:", 100))
		TH_LOG("the removal warned");
	EXPECT_FALSE(wait_kmsg(kmsg, "BUG:", 100))
		TH_LOG("the removal oopsed");
	close(kmsg);
	munmap(l.buf, HW_INFO_LEN);

	ASSERT_EQ(0, restore_edu(self->bdf))
		TH_LOG("could not bring %s back to vfio-pci", self->bdf);
	/* and it binds again */
	dev = open_edu_or_fail(self->bdf);
	ASSERT_EQ(0, _test_ioctl_vfio_bind(dev, self->fd[1], &devid));
	ASSERT_EQ(0, close(dev));
}

/* ---------------------------------------------------------------------- */
/* IOMMU_DESTROY racing the kernel's destruction of an automatic HWPT     */
/* ---------------------------------------------------------------------- */

struct destroyer {
	int fd;
	__u32 devid;
	__u32 other_ioas;	/* where the replacement HWPTs are made */
	__u32 target;		/* the automatic HWPT's id, 0: none */
	__u32 busy;		/* set while a round of the loop runs */
	__u32 foreign;		/* the replacement HWPT, until the main thread
				 * took it over; 0: none */
	bool stop;
	unsigned long destroyed;	/* destroys that won the race */
	int err;
};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

/*
 * Destroys the automatic HWPT whenever it can, and at once puts an HWPT of
 * the other IOAS under the freed id (ids are handed out lowest first).  The
 * main thread looks at that HWPT before its next attach and destroys it.
 */
static void *destroy_loop(void *arg)
{
	struct destroyer *d = arg;
	__u32 id, hwpt;

	while (!LOAD(d->stop)) {
		STORE(d->busy, 1);
		id = LOAD(d->target);
		if (!id || _test_ioctl_destroy(d->fd, id)) {
			STORE(d->busy, 0);
			continue;
		}
		d->destroyed++;
		if (_test_ioctl_hwpt_alloc(d->fd, d->devid, d->other_ioas, 0,
					   &hwpt)) {
			d->err = errno;
			STORE(d->busy, 0);
			return NULL;
		}
		STORE(d->foreign, hwpt);
		STORE(d->busy, 0);
		while (LOAD(d->foreign) && !LOAD(d->stop))
			sched_yield();
	}
	return NULL;
}

FIXTURE(auto_hwpt)
{
	int fd;
	int dev;
	char bdf[64];
	__u32 devid;
	__u32 ioas_id;
};

FIXTURE_SETUP(auto_hwpt)
{
	self->fd = -1;
	self->dev = -1;
	open_iommufd_or_fail(&self->fd);
	self->dev = open_edu_or_fail(self->bdf);
	test_ioctl_vfio_bind(self->dev, &self->devid);
	test_ioctl_ioas_alloc(&self->ioas_id);
}

FIXTURE_TEARDOWN(auto_hwpt)
{
	if (self->dev >= 0)
		EXPECT_EQ(0, close(self->dev));
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

TEST_F(auto_hwpt, destroy_racing_the_last_detach)
{
	struct destroyer d = { .fd = self->fd, .devid = self->devid };
	unsigned long misattached = 0, lost = 0;
	int i, n = 3000;
	__u32 pt, foreign;
	pthread_t t;

	test_ioctl_ioas_alloc(&d.other_ioas);
	ASSERT_EQ(0, pthread_create(&t, NULL, destroy_loop, &d));
	for (i = 0; i < n; i++) {
		pt = self->ioas_id;
		if (_test_ioctl_vfio_attach(self->dev, &pt))
			break;
		/* the automatic HWPT, never the IOAS itself */
		EXPECT_NE(self->ioas_id, pt);
		foreign = LOAD(d.foreign);
		if (foreign) {
			if (pt == foreign)
				misattached++;
			/* only this thread may destroy it */
			if (_test_ioctl_destroy(self->fd, foreign))
				lost++;
			STORE(d.foreign, 0);
		}
		STORE(d.target, pt);
		if (_test_ioctl_vfio_detach(self->dev))
			break;
		STORE(d.target, 0);
		/* a replacement HWPT, if any, is made before the next attach */
		while (LOAD(d.busy))
			sched_yield();
	}
	STORE(d.stop, true);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(n, i) TH_LOG("round %d: attach or detach: %s", i,
			       strerror(errno));
	EXPECT_EQ(0, d.err) TH_LOG("HWPT_ALLOC: %s", strerror(d.err));
	EXPECT_EQ(0UL, misattached)
		TH_LOG("%lu attaches to IOAS %u landed on an HWPT of IOAS %u",
		       misattached, self->ioas_id, d.other_ioas);
	EXPECT_EQ(0UL, lost)
		TH_LOG("%lu HWPTs of IOAS %u were destroyed by the kernel or "
		       "still in use",
		       lost, d.other_ioas);
	TH_LOG("%d detaches, %lu HWPTs destroyed by userspace first", n,
	       d.destroyed);
	/* a replacement made in the last round */
	foreign = LOAD(d.foreign);
	if (foreign)
		EXPECT_EQ(0, _test_ioctl_destroy(self->fd, foreign));
	/* both IOASes survived all of it */
	test_ioas_alive(self->ioas_id);
	test_ioas_alive(d.other_ioas);
}

TEST_HARNESS_MAIN
