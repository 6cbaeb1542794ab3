/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd-rs: the in-kernel coherency signal of /dev/iommu.
 *
 * A device bound to an iommufd context does non-coherent DMA ("non-coherent
 * DMA present") exactly while it can issue PCIe No-Snoop requests and is
 * attached to an I/O page table that does not make the IOMMU force snooping.
 * A context has non-coherent DMA present while any of its bound devices has.
 * Subscribers, such as the KVM-VFIO device deciding whether a guest's WBINVD
 * must really flush caches, register a notifier block, in process context:
 *
 *  - on a context (iommufd_ctx_coherency_register), called with the
 *    context's state (1 or 0) as the event after every attach, replace,
 *    detach and unbind of one of its devices;
 *  - on all devices (iommufd_coherency_register), called after the state of
 *    any bound device was published, with that state as the event.  The
 *    subscriber asks iommufd_dev_noncoherent_dma() about the devices it
 *    follows, which it names by struct device, bound or not (a device that
 *    is not bound has no non-coherent DMA through iommufd).
 *
 * The argument is NULL.  Events may repeat a state; subscribers act on
 * edges, and read the current state (the query functions take no lock a
 * publisher holds while calling the chain) rather than trust the order in
 * which events of different devices arrive.
 *
 * A block registered on a context must be unregistered before the caller
 * drops its context reference; one registered on all devices before the
 * caller's module goes.
 */
#ifndef __LINUX_IOMMUFD_COHERENCY_H
#define __LINUX_IOMMUFD_COHERENCY_H

#include <linux/types.h>

struct device;
struct iommufd_ctx;
struct notifier_block;

int iommufd_ctx_coherency_register(struct iommufd_ctx *ictx,
				   struct notifier_block *nb);
void iommufd_ctx_coherency_unregister(struct iommufd_ctx *ictx,
				      struct notifier_block *nb);
bool iommufd_ctx_noncoherent_dma(struct iommufd_ctx *ictx);

int iommufd_coherency_register(struct notifier_block *nb);
void iommufd_coherency_unregister(struct notifier_block *nb);
bool iommufd_dev_noncoherent_dma(struct device *dev);

#endif
