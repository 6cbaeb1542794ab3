/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A minimal KVM guest for the iommufd-rs selftests: one memslot at guest
 * physical 0, a few bytes of 16-bit real-mode code at GUEST_CODE_GPA and one
 * vCPU, set up by hand with the KVM ioctls (kvm_vcpu.c, kvm_wbinvd.h).  For
 * programs built on kselftest_harness.h: the __-prefixed helpers assert
 * through _metadata.
 */
#ifndef __SELFTEST_IOMMUFD_RS_KVM_GUEST_H
#define __SELFTEST_IOMMUFD_RS_KVM_GUEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kselftest_harness.h"

/* ---------------------------------------------------------------------- */
/* a KVM guest in real mode                                               */
/* ---------------------------------------------------------------------- */

#define KVM_DEV_PATH "/dev/kvm"

/* one memslot at guest physical 0; the code at 0x1000, CS base 0 */
#define GUEST_MEM_SIZE 0x10000UL
#define GUEST_CODE_GPA 0x1000UL
struct guest {
	int kvm;
	int vm;
	int vcpu;
	void *mem;
	struct kvm_run *run;
	size_t run_size;
};

static const char *exit_reason_name(__u32 reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "EXCEPTION";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_DEBUG: return "DEBUG";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTR: return "INTR";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "?";
	}
}

static void guest_init(struct guest *g)
{
	g->kvm = g->vm = g->vcpu = -1;
	g->mem = MAP_FAILED;
	g->run = MAP_FAILED;
	g->run_size = 0;
}

/* Close whatever of @g is open. Returns 0 or the first failing close's -1. */
static int guest_destroy(struct guest *g)
{
	int rc = 0;

	if (g->run != MAP_FAILED)
		munmap(g->run, g->run_size);
	if (g->vcpu >= 0 && close(g->vcpu))
		rc = -1;
	if (g->vm >= 0 && close(g->vm))
		rc = -1;
	if (g->mem != MAP_FAILED)
		munmap(g->mem, GUEST_MEM_SIZE);
	if (g->kvm >= 0 && close(g->kvm))
		rc = -1;
	guest_init(g);
	return rc;
}

/* A VM with @code (@len bytes) in memory and one vCPU in flat real mode. */
static void __guest_create(struct __test_metadata *_metadata, struct guest *g,
			   const unsigned char *code, size_t len)
{
	struct kvm_userspace_memory_region region = {};
	int mmap_size;

	guest_init(g);
	g->kvm = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, g->kvm)
		TH_LOG("open %s: %s (kvm and kvm_amd/kvm_intel must be "
		       "loaded)", KVM_DEV_PATH, strerror(errno));
	g->vm = ioctl(g->kvm, KVM_CREATE_VM, 0UL);
	ASSERT_LE(0, g->vm) TH_LOG("KVM_CREATE_VM: %s", strerror(errno));

	g->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, g->mem);
	ASSERT_GE(GUEST_MEM_SIZE - GUEST_CODE_GPA, len);
	memcpy((char *)g->mem + GUEST_CODE_GPA, code, len);
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_SIZE;
	region.userspace_addr = (uintptr_t)g->mem;
	ASSERT_EQ(0, ioctl(g->vm, KVM_SET_USER_MEMORY_REGION, &region))
		TH_LOG("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	g->vcpu = ioctl(g->vm, KVM_CREATE_VCPU, 0UL);
	ASSERT_LE(0, g->vcpu) TH_LOG("KVM_CREATE_VCPU: %s", strerror(errno));
	mmap_size = ioctl(g->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LE((int)sizeof(struct kvm_run), mmap_size)
		TH_LOG("KVM_GET_VCPU_MMAP_SIZE: %d (%s)", mmap_size,
		       strerror(errno));
	g->run_size = mmap_size;
	g->run = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      g->vcpu, 0);
	ASSERT_NE(MAP_FAILED, g->run)
		TH_LOG("mmap kvm_run: %s", strerror(errno));

#if defined(__x86_64__) || defined(__i386__)
	{
		struct kvm_sregs sregs;

		ASSERT_EQ(0, ioctl(g->vcpu, KVM_GET_SREGS, &sregs));
		/* flat real mode: every segment at base 0 */
		sregs.cs.base = sregs.ds.base = sregs.es.base = 0;
		sregs.ss.base = 0;
		sregs.cs.selector = sregs.ds.selector = 0;
		sregs.es.selector = sregs.ss.selector = 0;
		ASSERT_EQ(0, ioctl(g->vcpu, KVM_SET_SREGS, &sregs))
			TH_LOG("KVM_SET_SREGS: %s", strerror(errno));
	}
#endif
}

#if defined(__x86_64__) || defined(__i386__)
/* (Re)start the vCPU at the beginning of the code, with a stack at the top. */
static void __guest_start(struct __test_metadata *_metadata, struct guest *g)
{
	struct kvm_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_CODE_GPA;
	regs.rflags = 0x2;	/* the always-one bit */
	regs.rsp = GUEST_MEM_SIZE - 0x10;
	ASSERT_EQ(0, ioctl(g->vcpu, KVM_SET_REGS, &regs))
		TH_LOG("KVM_SET_REGS: %s", strerror(errno));
}
#endif

#endif /* __SELFTEST_IOMMUFD_RS_KVM_GUEST_H */
