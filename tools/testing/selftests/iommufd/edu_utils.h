/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * QEMU's "edu" device (QEMU docs/specs/edu.rst) for DMA tests: its
 * registers, a transfer that waits for the device, PCI config access
 * through VFIO, enabling the device, and data patterns to tell where a
 * transfer landed.
 *
 * BAR0 registers used here:
 *   0x00  identification, low byte 0xed
 *   0x04  liveness check: reads back the bitwise NOT of what was written
 *   0x80  DMA source address
 *   0x88  DMA destination address
 *   0x90  DMA byte count
 *   0x98  DMA command: bit 0 starts the transfer and reads as 1 until it is
 *         done, bit 1 is the direction (0: RAM -> device buffer,
 *         1: device buffer -> RAM), bit 2 would raise an interrupt (unused)
 * The device buffer is 4 KiB at address 0x40000 in edu's own address space,
 * "RAM" addresses are bus addresses, i.e. IOVAs. Transfers run from a timer
 * about 100 ms (guest virtual time) after being started. edu masks DMA
 * addresses to 28 bits, so every IOVA used with it is below 256 MiB.
 *
 * The including test defines a fixture with `bar` (the mapped BAR0) for
 * the dma_to_*() macros.
 */
#ifndef __SELFTEST_IOMMUFD_EDU_UTILS_H
#define __SELFTEST_IOMMUFD_EDU_UTILS_H

#include <time.h>

#include "iommufd_utils.h"
#include "vfio_utils.h"

#define EDU_REG_IDENT 0x00
#define EDU_REG_LIVENESS 0x04
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_CNT 0x90
#define EDU_REG_DMA_CMD 0x98
#define EDU_DMA_RUN 0x1
#define EDU_DMA_TO_RAM 0x2

#define EDU_BUF 0x40000ULL
#define EDU_BUF_SIZE 4096U

/* how long a transfer may take before the test gives up */
#define EDU_DMA_TIMEOUT_MS 2000

#define SENTINEL 0xee

/* ---------------------------------------------------------------------- */
/* device access                                                           */
/* ---------------------------------------------------------------------- */

/* edu accepts 4 byte accesses everywhere; all addresses here fit 32 bits */
static inline void edu_w32(volatile __u8 *bar, unsigned int off, __u32 val)
{
	*(volatile __u32 *)(bar + off) = val;
	__sync_synchronize();
}

static inline __u32 edu_r32(volatile __u8 *bar, unsigned int off)
{
	__u32 val = *(volatile __u32 *)(bar + off);

	__sync_synchronize();
	return val;
}

static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Poll until no transfer is running; 0, or -ETIMEDOUT. */
static inline int edu_wait_idle(volatile __u8 *bar)
{
	long long deadline = now_ms() + EDU_DMA_TIMEOUT_MS;

	for (;;) {
		if (!(edu_r32(bar, EDU_REG_DMA_CMD) & EDU_DMA_RUN))
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/*
 * One edu transfer of @cnt bytes from @src to @dst, waiting for it to
 * finish. With @to_ram, @src is a device buffer address and @dst an IOVA,
 * otherwise the other way round. Returns 0, or -ETIMEDOUT.
 */
static inline int edu_dma(volatile __u8 *bar, __u64 src, __u64 dst,
			  __u32 cnt, bool to_ram)
{
	/* the registers ignore writes while a transfer runs */
	if (edu_wait_idle(bar))
		return -ETIMEDOUT;
	edu_w32(bar, EDU_REG_DMA_SRC, (__u32)src);
	edu_w32(bar, EDU_REG_DMA_DST, (__u32)dst);
	edu_w32(bar, EDU_REG_DMA_CNT, cnt);
	edu_w32(bar, EDU_REG_DMA_CMD,
		EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
	return edu_wait_idle(bar);
}

/* RAM (@iova) -> device buffer (EDU_BUF + @off) */
#define dma_to_dev(iova, off, cnt)                                            \
	ASSERT_EQ(0, edu_dma(self->bar, iova, EDU_BUF + (off), cnt, false))   \
		TH_LOG("edu DMA 0x%llx -> buffer+0x%x (%u bytes) did not "    \
		       "finish within %d ms",                                 \
		       (unsigned long long)(iova), (unsigned int)(off),       \
		       (unsigned int)(cnt), EDU_DMA_TIMEOUT_MS)
/* device buffer (EDU_BUF + @off) -> RAM (@iova) */
#define dma_to_ram(off, iova, cnt)                                            \
	ASSERT_EQ(0, edu_dma(self->bar, EDU_BUF + (off), iova, cnt, true))    \
		TH_LOG("edu DMA buffer+0x%x -> 0x%llx (%u bytes) did not "    \
		       "finish within %d ms",                                 \
		       (unsigned int)(off), (unsigned long long)(iova),       \
		       (unsigned int)(cnt), EDU_DMA_TIMEOUT_MS)

/* PCI config space through the VFIO config region */
static inline int cfg_read16(int dev, __u64 cfg_off, unsigned int reg,
			     __u16 *val)
{
	return pread(dev, val, 2, cfg_off + reg) == 2 ? 0 : -1;
}

static inline int cfg_write16(int dev, __u64 cfg_off, unsigned int reg,
			      __u16 val)
{
	return pwrite(dev, &val, 2, cfg_off + reg) == 2 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* data patterns                                                           */
/* ---------------------------------------------------------------------- */

/* A byte pattern that differs from any other @seed at every offset. */
static inline void fill_pattern(__u8 *p, size_t len, __u8 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (__u8)(seed + i * 13 + (i >> 8));
}

/* Offset of the first byte in [@p, @p + @len) that is not @val, or -1. */
static inline long first_not(const __u8 *p, size_t len, __u8 val)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != val)
			return (long)i;
	return -1;
}

/* Offset of the first byte that differs from fill_pattern(@seed), or -1. */
static inline long pattern_mismatch(const __u8 *p, size_t len, __u8 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (__u8)(seed + i * 13 + (i >> 8)))
			return (long)i;
	return -1;
}

static inline size_t count_equal(const __u8 *a, const __u8 *b, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += a[i] == b[i];
	return n;
}

/* @buf must (still) hold fill_pattern(@seed) */
#define expect_pattern(buf, len, seed)                                        \
	({                                                                    \
		long __off = pattern_mismatch(buf, len, seed);                \
		EXPECT_EQ(-1L, __off)                                         \
			TH_LOG("%s differs from pattern 0x%02x at offset "    \
			       "0x%lx", #buf, (unsigned int)(seed), __off);   \
	})

/* The whole buffer must still be SENTINEL: the DMA did not land. */
#define expect_untouched(buf, len)                                            \
	({                                                                    \
		long __off = first_not(buf, len, SENTINEL);                   \
		EXPECT_EQ(-1L, __off)                                         \
			TH_LOG("%s was written by the device at offset "      \
			       "0x%lx (0x%02x)", #buf, __off,                 \
			       __off >= 0 ? (buf)[__off] : 0);                \
	})

/*
 * Let edu device @dev decode its BAR and master the bus, and map BAR0 (at
 * most a page of it): *@bar, *@bar_len and the config space offset
 * *@cfg_off. Fails the test on any problem.
 */
static inline void __edu_enable(struct __test_metadata *_metadata, int dev,
				volatile __u8 **bar, size_t *bar_len,
				__u64 *cfg_off)
{
	struct vfio_region_info bar0, cfg;
	__u16 cmd;
	void *p;

	ASSERT_EQ(0, _vfio_region_info(dev, VFIO_PCI_BAR0_REGION_INDEX, &bar0))
		TH_LOG("GET_REGION_INFO(BAR0): %s", strerror(errno));
	ASSERT_LE(0x100ULL, bar0.size) TH_LOG("edu BAR0 is too small");
	ASSERT_NE(0U, bar0.flags & VFIO_REGION_INFO_FLAG_MMAP)
		TH_LOG("vfio-pci does not allow mmap of edu BAR0 (flags 0x%x)",
		       bar0.flags);
	ASSERT_EQ(0, _vfio_region_info(dev, VFIO_PCI_CONFIG_REGION_INDEX, &cfg))
		TH_LOG("GET_REGION_INFO(CONFIG): %s", strerror(errno));
	*cfg_off = cfg.offset;

	/* memory decoding for the BAR, bus mastering for the DMA */
	ASSERT_EQ(0, cfg_read16(dev, *cfg_off, PCI_COMMAND, &cmd))
		TH_LOG("config read: %s", strerror(errno));
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	ASSERT_EQ(0, cfg_write16(dev, *cfg_off, PCI_COMMAND, cmd))
		TH_LOG("config write: %s", strerror(errno));
	ASSERT_EQ(0, cfg_read16(dev, *cfg_off, PCI_COMMAND, &cmd));
	ASSERT_EQ(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER,
		  cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));

	*bar_len = bar0.size < PAGE_SIZE ? bar0.size : PAGE_SIZE;
	p = mmap(NULL, *bar_len, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		 bar0.offset);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap BAR0: %s", strerror(errno));
	*bar = p;
	ASSERT_EQ(0xedU, edu_r32(*bar, EDU_REG_IDENT) & 0xff)
		TH_LOG("BAR0 does not look like edu: ident 0x%08x",
		       edu_r32(*bar, EDU_REG_IDENT));
	/* a transfer left over from an earlier test must be over */
	ASSERT_EQ(0, edu_wait_idle(*bar))
		TH_LOG("edu DMA engine stays busy");
}
#define edu_enable(dev, bar, bar_len, cfg_off)                                \
	__edu_enable(_metadata, dev, bar, bar_len, cfg_off)

#endif /* __SELFTEST_IOMMUFD_EDU_UTILS_H */
