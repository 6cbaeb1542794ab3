/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs: the in-kernel coherency signal of /dev/iommu.
 *
 * A device bound to an iommufd context does non-coherent DMA ("non-coherent
 * DMA present") exactly while it can issue PCIe No-Snoop requests and is
 * attached to an I/O page table that does not make the IOMMU force snooping.
 * A context has non-coherent DMA present while any of its bound devices has.
 * Subscribers, such as the KVM-VFIO device deciding whether a guest's WBINVD
 * must really flush caches, register a notifier block on a context or on a
 * bound device; it is called after every attach, replace, detach and unbind
 * with the object's state then (1 or 0) as the event and a NULL argument,
 * in process context.  Events may repeat a state; subscribers act on edges.
 *
 * A block registered on a device must be unregistered before the device is
 * unbound (the caller holds the VFIO device open, which keeps it bound); one
 * registered on a context before the caller drops its context reference.
 */
#ifndef __LINUX_IOMMUFD_COHERENCY_H
#define __LINUX_IOMMUFD_COHERENCY_H

#include <linux/types.h>

struct iommufd_ctx;
struct iommufd_device;
struct notifier_block;

int iommufd_ctx_coherency_register(struct iommufd_ctx *ictx,
				   struct notifier_block *nb);
void iommufd_ctx_coherency_unregister(struct iommufd_ctx *ictx,
				      struct notifier_block *nb);
bool iommufd_ctx_noncoherent_dma(struct iommufd_ctx *ictx);

int iommufd_device_coherency_register(struct iommufd_device *idev,
				      struct notifier_block *nb);
void iommufd_device_coherency_unregister(struct iommufd_device *idev,
					 struct notifier_block *nb);
bool iommufd_device_noncoherent_dma(struct iommufd_device *idev);

#endif
