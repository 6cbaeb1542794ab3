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
#include "kvm_guest.h"

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
	struct guest g;
};

FIXTURE_SETUP(vm)
{
	__guest_create(_metadata, &self->g, guest_code, sizeof(guest_code));
	ASSERT_EQ(12, ioctl(self->g.kvm, KVM_GET_API_VERSION, 0));
}

FIXTURE_TEARDOWN(vm)
{
	guest_destroy(&self->g);
}

#if defined(__x86_64__) || defined(__i386__)

/* Run until the next exit and check that it is the expected OUT. */
#define expect_out_byte(value)                                                \
	({                                                                    \
		__u8 *__data;                                                 \
		ASSERT_EQ(0, ioctl(self->g.vcpu, KVM_RUN, 0))                 \
			TH_LOG("KVM_RUN: %s", strerror(errno));               \
		ASSERT_EQ((__u32)KVM_EXIT_IO, self->g.run->exit_reason)       \
			TH_LOG("exit reason %u (%s), wanted IO",              \
			       self->g.run->exit_reason,                      \
			       exit_reason_name(self->g.run->exit_reason));   \
		EXPECT_EQ(KVM_EXIT_IO_OUT, self->g.run->io.direction);        \
		EXPECT_EQ(GUEST_IO_PORT, self->g.run->io.port);               \
		EXPECT_EQ(1, self->g.run->io.size);                           \
		EXPECT_EQ(1U, self->g.run->io.count);                         \
		__data = (__u8 *)self->g.run + self->g.run->io.data_offset;   \
		EXPECT_EQ(value, *__data);                                    \
	})

TEST_F(vm, run_out_hlt)
{
	struct kvm_regs regs;

	__guest_start(_metadata, &self->g);

	expect_out_byte(42);
	expect_out_byte(7);

	ASSERT_EQ(0, ioctl(self->g.vcpu, KVM_RUN, 0))
		TH_LOG("KVM_RUN: %s", strerror(errno));
	ASSERT_EQ((__u32)KVM_EXIT_HLT, self->g.run->exit_reason)
		TH_LOG("exit reason %u (%s), wanted HLT",
		       self->g.run->exit_reason,
		       exit_reason_name(self->g.run->exit_reason));

	/* the guest stopped right after the HLT, with AL still 7 */
	ASSERT_EQ(0, ioctl(self->g.vcpu, KVM_GET_REGS, &regs));
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
