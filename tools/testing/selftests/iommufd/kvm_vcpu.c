// SPDX-License-Identifier: GPL-2.0-only
/*
 * Check that hardware-assisted KVM works inside the iommufd-rs test VM:
 * create a VM with one memslot and one vCPU, run a few real-mode
 * instructions and observe the port I/O and HLT exits.
 *
 * The test VM is expected to provide /dev/kvm, so anything missing is a
 * FAILURE with a message, never a skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kselftest_harness.h"

#define KVM_DEV_PATH "/dev/kvm"

/* Guest memory: one slot at guest physical 0, code loaded at 0x1000. */
#define GUEST_MEM_SIZE 0x10000UL
#define GUEST_CODE_GPA 0x1000UL
#define GUEST_IO_PORT 0x10

/*
 * 16-bit real-mode guest, executed from GUEST_CODE_GPA (CS base 0).
 * Two byte-wide OUTs to GUEST_IO_PORT, then HLT.
 */
static const unsigned char guest_code[] = {
	0xb0, 0x2a,	/* mov  $42, %al  */
	0xe6, 0x10,	/* out  %al, $0x10 */
	0xb0, 0x07,	/* mov  $7, %al   */
	0xe6, 0x10,	/* out  %al, $0x10 */
	0xf4,		/* hlt            */
};

static const char *exit_reason_str(__u32 reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "EXCEPTION";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "?";
	}
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

TEST(dev_kvm_present)
{
	struct stat st;

	ASSERT_EQ(0, stat(KVM_DEV_PATH, &st))
		TH_LOG("%s: %s (CONFIG_KVM and a vendor module are needed)",
		       KVM_DEV_PATH, strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode))
		TH_LOG("%s is not a character device", KVM_DEV_PATH);
}

TEST(vendor_module_loaded)
{
	bool amd = path_exists("/sys/module/kvm_amd");
	bool intel = path_exists("/sys/module/kvm_intel");

	EXPECT_TRUE(amd || intel)
		TH_LOG("neither kvm_amd nor kvm_intel is loaded/built in "
		       "(no /sys/module/kvm_amd or /sys/module/kvm_intel); "
		       "does the VM expose SVM/VMX?");
	if (amd)
		TH_LOG("vendor module: kvm_amd");
	if (intel)
		TH_LOG("vendor module: kvm_intel");
}

TEST(api_version)
{
	int kvm = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, kvm) TH_LOG("open %s: %s", KVM_DEV_PATH, strerror(errno));
	/* the stable API version has been 12 since Linux 2.6.22 */
	EXPECT_EQ(KVM_API_VERSION, ioctl(kvm, KVM_GET_API_VERSION, 0));
	EXPECT_EQ(12, ioctl(kvm, KVM_GET_API_VERSION, 0));
	/* the capabilities this test relies on */
	EXPECT_LT(0, ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	EXPECT_LT(0, ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_HLT));
	EXPECT_EQ(0, close(kvm));
}

FIXTURE(vm)
{
	int kvm;
	int vm;
	int vcpu;
	void *mem;
	struct kvm_run *run;
	size_t run_size;
};

FIXTURE_SETUP(vm)
{
	struct kvm_userspace_memory_region region = {};
	int mmap_size;

	self->kvm = self->vm = self->vcpu = -1;
	self->mem = MAP_FAILED;
	self->run = MAP_FAILED;

	self->kvm = open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->kvm)
		TH_LOG("open %s: %s", KVM_DEV_PATH, strerror(errno));
	ASSERT_EQ(12, ioctl(self->kvm, KVM_GET_API_VERSION, 0));

	/* machine type 0: the architecture's default VM */
	self->vm = ioctl(self->kvm, KVM_CREATE_VM, 0UL);
	ASSERT_LE(0, self->vm)
		TH_LOG("KVM_CREATE_VM: %s", strerror(errno));

	self->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	memcpy((char *)self->mem + GUEST_CODE_GPA, guest_code,
	       sizeof(guest_code));

	region.slot = 0;
	region.flags = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_SIZE;
	region.userspace_addr = (uintptr_t)self->mem;
	ASSERT_EQ(0, ioctl(self->vm, KVM_SET_USER_MEMORY_REGION, &region))
		TH_LOG("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	self->vcpu = ioctl(self->vm, KVM_CREATE_VCPU, 0UL);
	ASSERT_LE(0, self->vcpu)
		TH_LOG("KVM_CREATE_VCPU: %s", strerror(errno));

	mmap_size = ioctl(self->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LE((int)sizeof(struct kvm_run), mmap_size)
		TH_LOG("KVM_GET_VCPU_MMAP_SIZE: %d (%s)", mmap_size,
		       strerror(errno));
	self->run_size = mmap_size;
	self->run = mmap(NULL, self->run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->vcpu, 0);
	ASSERT_NE(MAP_FAILED, self->run)
		TH_LOG("mmap kvm_run: %s", strerror(errno));
}

FIXTURE_TEARDOWN(vm)
{
	if (self->run != MAP_FAILED)
		munmap(self->run, self->run_size);
	if (self->vcpu >= 0)
		close(self->vcpu);
	if (self->vm >= 0)
		close(self->vm);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, GUEST_MEM_SIZE);
	if (self->kvm >= 0)
		close(self->kvm);
}

#if defined(__x86_64__) || defined(__i386__)

/* Point the vCPU at the guest code in 16-bit real mode. */
static int setup_real_mode(int vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		return -1;
	/* CS:IP = 0000:1000 -> linear 0x1000; the other segments at 0 too */
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	sregs.es.base = 0;
	sregs.es.selector = 0;
	sregs.ss.base = 0;
	sregs.ss.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		return -1;

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_CODE_GPA;
	regs.rflags = 0x2;	/* bit 1 is reserved and always set */
	regs.rsp = GUEST_MEM_SIZE - 0x10;
	return ioctl(vcpu, KVM_SET_REGS, &regs);
}

/* Run until the next exit and check that it is the expected OUT. */
#define expect_out_byte(value)                                                \
	({                                                                    \
		__u8 *__data;                                                 \
		ASSERT_EQ(0, ioctl(self->vcpu, KVM_RUN, 0))                   \
			TH_LOG("KVM_RUN: %s", strerror(errno));               \
		ASSERT_EQ((__u32)KVM_EXIT_IO, self->run->exit_reason)                \
			TH_LOG("exit reason %u (%s), wanted IO",              \
			       self->run->exit_reason,                        \
			       exit_reason_str(self->run->exit_reason));      \
		EXPECT_EQ(KVM_EXIT_IO_OUT, self->run->io.direction);          \
		EXPECT_EQ(GUEST_IO_PORT, self->run->io.port);                 \
		EXPECT_EQ(1, self->run->io.size);                             \
		EXPECT_EQ(1U, self->run->io.count);                           \
		__data = (__u8 *)self->run + self->run->io.data_offset;       \
		EXPECT_EQ(value, *__data);                                    \
	})

TEST_F(vm, run_out_hlt)
{
	struct kvm_regs regs;

	ASSERT_EQ(0, setup_real_mode(self->vcpu))
		TH_LOG("setting up real mode: %s", strerror(errno));

	expect_out_byte(42);
	expect_out_byte(7);

	ASSERT_EQ(0, ioctl(self->vcpu, KVM_RUN, 0))
		TH_LOG("KVM_RUN: %s", strerror(errno));
	ASSERT_EQ((__u32)KVM_EXIT_HLT, self->run->exit_reason)
		TH_LOG("exit reason %u (%s), wanted HLT",
		       self->run->exit_reason,
		       exit_reason_str(self->run->exit_reason));

	/* the guest stopped right after the HLT, with AL still 7 */
	ASSERT_EQ(0, ioctl(self->vcpu, KVM_GET_REGS, &regs));
	EXPECT_EQ(GUEST_CODE_GPA + sizeof(guest_code), regs.rip);
	EXPECT_EQ(7U, regs.rax & 0xff);
}

#else

TEST_F(vm, run_out_hlt)
{
	ASSERT_TRUE(false)
		TH_LOG("the guest program is x86 real-mode code; this "
		       "architecture is not supported");
}

#endif

TEST_HARNESS_MAIN
