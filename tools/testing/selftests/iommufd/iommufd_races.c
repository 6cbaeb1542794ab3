// SPDX-License-Identifier: GPL-2.0-only
/*
 * Races between what userspace does to an object and what the kernel does
 * to it on its own:
 *
 *  - unbind (closing the VFIO device) while another thread's ioctl is using
 *    the device: when close() returns, the device must be free for another
 *    /dev/iommu at once, so the unbind has to wait for that ioctl;
 *  - IOMMU_DESTROY of an automatic HWPT racing the detach that makes the
 *    kernel destroy it, with the freed id handed to a new object at once:
 *    the kernel must destroy the HWPT it meant, never the new object that
 *    now has its id.
 *
 * Both run many times; each round checks what the race must not break.
 * A missing device is a failure, not a skip.
 */
#include <pthread.h>

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

/* ---------------------------------------------------------------------- */
/* IOMMU_DESTROY racing the kernel's destruction of an automatic HWPT     */
/* ---------------------------------------------------------------------- */

struct destroyer {
	int fd;
	volatile __u32 target;	/* the automatic HWPT's id, 0: none */
	volatile bool stop;
	unsigned long destroyed;	/* destroys that won the race */
	unsigned long lost;		/* replacement IOASes that vanished */
	int err;
};

/*
 * Destroys the automatic HWPT whenever it can, and puts a new IOAS under
 * the freed id at once: if the kernel then destroys by id, the IOAS goes.
 */
static void *destroy_loop(void *arg)
{
	struct destroyer *d = arg;
	__u32 ioas;

	while (!d->stop) {
		__u32 id = d->target;

		if (!id || _test_ioctl_destroy(d->fd, id))
			continue;
		d->destroyed++;
		if (_test_ioctl_ioas_alloc(d->fd, 0, &ioas)) {
			d->err = errno;
			return NULL;
		}
		/* give the detaching thread time to finish */
		usleep(200);
		if (_test_ioas_alive(d->fd, ioas))
			d->lost++;
		else if (_test_ioctl_destroy(d->fd, ioas))
			d->err = errno;
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
	struct destroyer d = { .fd = self->fd };
	int i, n = 3000;
	pthread_t t;
	__u32 pt;

	ASSERT_EQ(0, pthread_create(&t, NULL, destroy_loop, &d));
	for (i = 0; i < n; i++) {
		pt = self->ioas_id;
		if (_test_ioctl_vfio_attach(self->dev, &pt))
			break;
		/* the automatic HWPT, never the IOAS itself */
		EXPECT_NE(self->ioas_id, pt);
		d.target = pt;
		if (_test_ioctl_vfio_detach(self->dev))
			break;
		d.target = 0;
	}
	d.stop = true;
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(n, i) TH_LOG("round %d: attach or detach: %s", i,
			       strerror(errno));
	EXPECT_EQ(0, d.err) TH_LOG("%s", strerror(d.err));
	EXPECT_EQ(0UL, d.lost)
		TH_LOG("the kernel destroyed %lu IOASes that took the id of the "
		       "HWPT it meant to destroy",
		       d.lost);
	TH_LOG("%d detaches, %lu HWPTs destroyed by userspace first", n,
	       d.destroyed);
	/* the IOAS survived all of it */
	test_ioas_alive(self->ioas_id);
}

TEST_HARNESS_MAIN
