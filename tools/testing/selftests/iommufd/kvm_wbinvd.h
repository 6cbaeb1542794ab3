/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A KVM guest that executes WBINVD, and a count of the host's real cache
 * flushes, for the iommufd-rs selftests and demo that check KVM's WBINVD
 * gate (iommufd_kvm_vfio.c, iommufd_wbinvd_gate.c).  For programs built on
 * kselftest_harness.h: the __-prefixed helpers assert through _metadata.
 *
 * The host's flushes are counted with kprobes through tracefs on
 * wbinvd_on_cpus_mask() (KVM's flush for a guest WBINVD) and
 * wbinvd_on_all_cpus() (IOMMU_EXECUTE_WBINVD's).
 */
#ifndef __SELFTEST_IOMMUFD_RS_KVM_WBINVD_H
#define __SELFTEST_IOMMUFD_RS_KVM_WBINVD_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kselftest_harness.h"
#include "iommufd_utils.h"
#include "kvm_guest.h"

/* ---------------------------------------------------------------------- */
/* kprobes through tracefs                                                */
/* ---------------------------------------------------------------------- */

#define TRACEFS "/sys/kernel/tracing"
#define KPROBE_GROUP "iommufd_rs_kvm"

enum probe_id {
	PROBE_MASK,	/* a flush of some CPUs: KVM's for a guest WBINVD,
			 * IOMMU_EXECUTE_WBINVD's */
	PROBE_CPU,	/* one CPU's part of any such flush */
	NR_PROBES,
};

static const struct {
	const char *event;
	const char *symbol;
} probes[NR_PROBES] = {
	[PROBE_MASK] = { "wbinvd_mask", "wbinvd_on_cpus_mask" },
	[PROBE_CPU] = { "wbinvd_cpu", "__wbinvd" },
};

/*
 * Append @text to the tracefs file @rel. Returns 0 or -errno. Never opens
 * with O_TRUNC: on kprobe_events that would delete everybody's probes.
 */
static int tracefs_write(const char *rel, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), TRACEFS "/%s", rel);
	return write_file(path, text, O_APPEND);
}

/* events/<group>/<event>/enable <- @on */
static int probe_enable(enum probe_id id, bool on)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "events/" KPROBE_GROUP "/%s/enable",
		 probes[id].event);
	return tracefs_write(rel, on ? "1\n" : "0\n");
}

/*
 * Disable and delete both probes, whichever exist. Returns 0, or the first
 * error other than "there was no such probe".
 */
static int probes_remove(void)
{
	char cmd[128];
	int i, rc, err = 0;

	for (i = 0; i < NR_PROBES; i++) {
		rc = probe_enable(i, false);
		if (rc && rc != -ENOENT && !err)
			err = rc;
		snprintf(cmd, sizeof(cmd), "-:" KPROBE_GROUP "/%s\n",
			 probes[i].event);
		rc = tracefs_write("kprobe_events", cmd);
		if (rc && rc != -ENOENT && !err)
			err = rc;
	}
	return err;
}

/*
 * Calls of the probed function so far: hits plus misses (a miss is a call
 * during which the kprobe could not run, e.g. re-entered; it still
 * flushed). The line in kprobe_profile is "<event> <nhit> <nmissed>".
 */
static __u64 __probe_calls(struct __test_metadata *_metadata,
			   enum probe_id id)
{
	unsigned long long hit = 0, missed = 0;
	char line[256], name[128];
	bool found = false;
	FILE *f;

	f = fopen(TRACEFS "/kprobe_profile", "r");
	ASSERT_NE(NULL, f)
		TH_LOG("open %s/kprobe_profile: %s", TRACEFS, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %llu %llu", name, &hit, &missed) != 3)
			continue;
		if (!strcmp(name, probes[id].event)) {
			found = true;
			break;
		}
	}
	fclose(f);
	ASSERT_TRUE(found)
		TH_LOG("kprobe_profile has no line for %s/%s", KPROBE_GROUP,
		       probes[id].event);
	if (missed)
		TH_LOG("%s: %llu missed kprobe hits counted as calls",
		       probes[id].event, missed);
	return hit + missed;
}

/*
 * Mount tracefs if needed, then (re)create and enable both probes. Runs
 * last in the fixture setup: a failing setup gets no teardown, so this
 * cleans up after itself before it fails.
 */
static void __probes_install(struct __test_metadata *_metadata)
{
	char cmd[160];
	int i, rc;

	if (access(TRACEFS "/kprobe_events", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL) && errno != EBUSY)
		TH_LOG("mount tracefs on %s: %s", TRACEFS, strerror(errno));
	ASSERT_EQ(0, access(TRACEFS "/kprobe_events", W_OK))
		TH_LOG("%s/kprobe_events: %s; the test kernel needs tracefs "
		       "and CONFIG_KPROBE_EVENTS=y",
		       TRACEFS, strerror(errno));

	/* leftovers of an aborted run would keep old counts: start afresh */
	probes_remove();
	for (i = 0; i < NR_PROBES; i++) {
		snprintf(cmd, sizeof(cmd), "p:" KPROBE_GROUP "/%s %s\n",
			 probes[i].event, probes[i].symbol);
		rc = tracefs_write("kprobe_events", cmd);
		if (rc == -EEXIST || rc == -EBUSY) {
			/* someone holds the old one; use it as it is */
			TH_LOG("kprobe %s already exists (%s), reusing it",
			       probes[i].event, strerror(-rc));
			rc = 0;
		}
		if (rc)
			probes_remove();
		ASSERT_EQ(0, rc)
			TH_LOG("adding kprobe '%s' to %s/kprobe_events: %s "
			       "(CONFIG_KPROBES=y and a kprobe-able %s needed)",
			       cmd, TRACEFS, strerror(-rc), probes[i].symbol);
		rc = probe_enable(i, true);
		if (rc)
			probes_remove();
		ASSERT_EQ(0, rc)
			TH_LOG("enabling kprobe %s: %s", probes[i].event,
			       strerror(-rc));
	}
}

/* ---------------------------------------------------------------------- */
/* a guest that executes WBINVD                                           */
/* ---------------------------------------------------------------------- */

#define GUEST_WBINVDS 64

/* 16-bit real mode: CX = GUEST_WBINVDS; WBINVD CX times; HLT */
static const unsigned char guest_code[] = {
	0xb9, GUEST_WBINVDS & 0xff, GUEST_WBINVDS >> 8,	/* mov $N, %cx */
	0x0f, 0x09,					/* 1: wbinvd   */
	0xe2, 0xfc,					/* loop 1b     */
	0xf4,						/* hlt         */
};

/*
 * Run the guest program once from the start, to its HLT, and return how
 * many times the host called wbinvd_on_cpus_mask() meanwhile.
 *
 * The count is compared exactly: only KVM's WBINVD emulation calls that
 * function, once per intercepted instruction when (and only when) the VM
 * has non-coherent DMA, and the tests run one at a time.
 */
static __u64 __guest_wbinvds(struct __test_metadata *_metadata,
			     struct guest *g)
{
#if defined(__x86_64__) || defined(__i386__)
	struct kvm_regs regs;
	__u64 before, after;
	int rc;

	before = __probe_calls(_metadata, PROBE_MASK);
	__guest_start(_metadata, g);
	do {
		rc = ioctl(g->vcpu, KVM_RUN, 0);
	} while (rc && errno == EINTR);
	ASSERT_EQ(0, rc) TH_LOG("KVM_RUN: %s", strerror(errno));
	ASSERT_EQ((__u32)KVM_EXIT_HLT, g->run->exit_reason)
		TH_LOG("the guest stopped with exit reason %u (%s), not at "
		       "its HLT", g->run->exit_reason,
		       exit_reason_name(g->run->exit_reason));

	/* it really went through the loop: CX ran down, RIP is past HLT */
	ASSERT_EQ(0, ioctl(g->vcpu, KVM_GET_REGS, &regs));
	EXPECT_EQ(GUEST_CODE_GPA + sizeof(guest_code), regs.rip);
	EXPECT_EQ(0ULL, regs.rcx & 0xffff)
		TH_LOG("CX is 0x%llx after the loop",
		       (unsigned long long)(regs.rcx & 0xffff));

	after = __probe_calls(_metadata, PROBE_MASK);
	return after - before;
#else
	(void)g;
	ASSERT_TRUE(false)
		TH_LOG("the guest program is x86 real-mode code; this "
		       "architecture is not supported");
	return 0;
#endif
}

/* The WBINVD guest of __guest_wbinvds(). */
#define __guest_create_wbinvd(_metadata, g)                                   \
	__guest_create(_metadata, g, guest_code, sizeof(guest_code))

/* One guest run must flush once per WBINVD when @nc, else never. */
#define expect_flushes(g, nc, when)                                           \
	({                                                                    \
		__u64 __n = __guest_wbinvds(_metadata, g);                    \
		EXPECT_EQ((__u64)((nc) ? GUEST_WBINVDS : 0), __n)             \
			TH_LOG("%s: %d guest WBINVDs made %llu host flushes, " \
			       "wanted %s", when, GUEST_WBINVDS,              \
			       (unsigned long long)__n,                       \
			       (nc) ? "one each" : "none");                   \
	})

#endif /* __SELFTEST_IOMMUFD_RS_KVM_WBINVD_H */
