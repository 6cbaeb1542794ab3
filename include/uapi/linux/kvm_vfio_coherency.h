/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * iommufd-rs extension of the KVM-VFIO device (KVM_DEV_TYPE_VFIO): the
 * coherency attributes of the Rust implementation (CONFIG_KVM_VFIO_RS).
 *
 * KVM must really write back and invalidate caches when its guest executes
 * WBINVD exactly while a device of the guest can do non-coherent DMA; in all
 * other cases the instruction is a no-op for the host. The Rust KVM-VFIO
 * device keeps that decision live: it holds every file added with
 * KVM_DEV_VFIO_FILE_ADD (VFIO group and device files, as upstream, and
 * /dev/iommu files), follows each file's "non-coherent DMA present" state as
 * the iommufd driver publishes it (a VFIO device file: the device is attached
 * to an I/O page table that does not force snooping and can issue No-Snoop
 * requests; a /dev/iommu file: some device bound to it does; a VFIO group
 * file: what its IOMMU can enforce, fixed when it is added, as upstream), and
 * tells KVM only when the VM as a whole goes from "no file has non-coherent
 * DMA" to "some file has" and back.
 *
 * The attributes below belong to a group numbered far from upstream's
 * (KVM_DEV_VFIO_FILE is 1) so that upstream can grow without colliding.
 */
#ifndef _UAPI_LINUX_KVM_VFIO_COHERENCY_H
#define _UAPI_LINUX_KVM_VFIO_COHERENCY_H

#include <linux/types.h>

/* Attribute group of the KVM-VFIO device (struct kvm_device_attr.group). */
#define KVM_DEV_VFIO_COHERENCY			0x100
/* KVM_GET_DEVICE_ATTR: addr points to a struct kvm_vfio_coherency_state. */
#define  KVM_DEV_VFIO_COHERENCY_STATE		1
/* KVM_GET_DEVICE_ATTR: addr points to a struct kvm_vfio_coherency_file. */
#define  KVM_DEV_VFIO_COHERENCY_FILE		2
/*
 * KVM_SET_DEVICE_ATTR and KVM_GET_DEVICE_ATTR: addr points to a __u32, 1 to
 * keep guest WBINVD a no-op whatever the files say, 0 (the default) to
 * follow them. Other values: EINVAL.
 */
#define  KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE	3

/* kvm_vfio_coherency_state.flags */
/* KVM treats the VM as having non-coherent DMA: guest WBINVD flushes. */
#define KVM_VFIO_COHERENCY_NONCOHERENT		(1U << 0)
/* Some added file has non-coherent DMA present now. */
#define KVM_VFIO_COHERENCY_PROOF		(1U << 1)
/* KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE is set. */
#define KVM_VFIO_COHERENCY_FORCE_DISABLED	(1U << 2)

/**
 * struct kvm_vfio_coherency_state - KVM_DEV_VFIO_COHERENCY_STATE
 * @flags: KVM_VFIO_COHERENCY_* bits. NONCOHERENT is set exactly when PROOF is
 *         and FORCE_DISABLED is not.
 * @nr_files: Number of files added to the device
 * @nr_contributing: How many of them have non-coherent DMA present now
 * @__reserved: Zero
 * @register_edges: How many times this device told KVM that the VM gained
 *                  non-coherent DMA (each time KVM rebuilds the VM's
 *                  memory types, so a healthy VM has few)
 * @unregister_edges: How many times it told KVM that the VM lost it
 */
struct kvm_vfio_coherency_state {
	__u32 flags;
	__u32 nr_files;
	__u32 nr_contributing;
	__u32 __reserved;
	__u64 register_edges;
	__u64 unregister_edges;
};

/* kvm_vfio_coherency_file.kind */
#define KVM_VFIO_FILE_KIND_GROUP	1	/* /dev/vfio/N */
#define KVM_VFIO_FILE_KIND_DEVICE	2	/* /dev/vfio/devices/vfioN */
#define KVM_VFIO_FILE_KIND_IOMMUFD	3	/* /dev/iommu */

/**
 * struct kvm_vfio_coherency_file - KVM_DEV_VFIO_COHERENCY_FILE
 * @fd: In: a file descriptor of a file added to the device (EBADF if it is
 *      not open, ENOENT if that file was not added)
 * @contributes: Out: 1 if the file has non-coherent DMA present now, else 0
 * @kind: Out: KVM_VFIO_FILE_KIND_*
 * @__reserved: Out: zero
 *
 * Says why the VM has (or has not) non-coherent DMA, file by file.
 */
struct kvm_vfio_coherency_file {
	__s32 fd;
	__u32 contributes;
	__u32 kind;
	__u32 __reserved;
};

#endif /* _UAPI_LINUX_KVM_VFIO_COHERENCY_H */
