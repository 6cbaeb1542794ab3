// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel iommufd API that VFIO links against.
 *
 * vfio.ko refers to these symbols whenever CONFIG_IOMMUFD is set, so the
 * iommufd module must export every one of them, with the prototypes of
 * include/linux/iommufd.h and in the same symbol namespaces, or vfio.ko does
 * not load at all.  This file carries those prototypes and exports; the work
 * is done in Rust (kapi.rs), which sees struct iommufd_ctx as its context
 * and struct iommufd_device as its handle on a bound device.
 *
 * Binding, attaching (to an IOAS or an HWPT), replacing and detaching a
 * device work.  PASID attachment, in-kernel accesses (emulated devices) and
 * the VFIO container compatibility layer are not supported yet: those entry
 * points say so with -EOPNOTSUPP (or the closest thing their prototype
 * allows).  No access can be created, so the functions that operate on one
 * can never be reached with a valid object; they warn if they ever are.
 */

#include <linux/err.h>
#include <linux/export.h>
#include <linux/file.h>
#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/iommufd_coherency.h>
#include <linux/module.h>
#include <linux/notifier.h>

/* In kapi.rs. */
int iommufd_rs_ctx_from_file(struct file *file, struct iommufd_ctx **out);
void iommufd_rs_ctx_get(struct iommufd_ctx *ictx);
void iommufd_rs_ctx_put(struct iommufd_ctx *ictx);
bool iommufd_rs_ctx_has_group(struct iommufd_ctx *ictx,
			      struct iommu_group *group);
int iommufd_rs_device_bind(struct iommufd_ctx *ictx, struct device *dev,
			   u32 *id, struct iommufd_device **out);
void iommufd_rs_device_unbind(struct iommufd_device *idev);
int iommufd_rs_device_attach(struct iommufd_device *idev, u32 *pt_id);
int iommufd_rs_device_replace(struct iommufd_device *idev, u32 *pt_id);
void iommufd_rs_device_detach(struct iommufd_device *idev);
struct iommufd_ctx *iommufd_rs_device_to_ictx(struct iommufd_device *idev);
u32 iommufd_rs_device_to_id(struct iommufd_device *idev);
int iommufd_rs_ctx_coherency_register(struct iommufd_ctx *ictx,
				      struct notifier_block *nb);
void iommufd_rs_ctx_coherency_unregister(struct iommufd_ctx *ictx,
					 struct notifier_block *nb);
bool iommufd_rs_ctx_noncoherent_dma(struct iommufd_ctx *ictx);
int iommufd_rs_coherency_register(struct notifier_block *nb);
void iommufd_rs_coherency_unregister(struct notifier_block *nb);
bool iommufd_rs_dev_noncoherent_dma(struct device *dev);

/*
 * Whether a device whose MSIs the platform cannot isolate may be bound.
 * Administrators turn this on and off at run time in sysfs, as with the C
 * driver, and Rust module parameters cannot be written at run time yet: so
 * it is a C parameter, read by Rust through the function below.
 */
static bool allow_unsafe_interrupts;
module_param(allow_unsafe_interrupts, bool, 0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Bind devices whose MSIs the platform cannot isolate (insecure)");

/* Called from Rust (kapi.rs); the value can change at any time. */
bool iommufd_rs_allow_unsafe_interrupts(void);
bool iommufd_rs_allow_unsafe_interrupts(void)
{
	return READ_ONCE(allow_unsafe_interrupts);
}

struct iommufd_ctx *iommufd_ctx_from_file(struct file *file)
{
	struct iommufd_ctx *ictx;
	int rc;

	rc = iommufd_rs_ctx_from_file(file, &ictx);
	return rc ? ERR_PTR(rc) : ictx;
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");

struct iommufd_ctx *iommufd_ctx_from_fd(int fd)
{
	struct iommufd_ctx *ictx;
	struct file *file;

	file = fget(fd);
	if (!file)
		return ERR_PTR(-EBADF);
	ictx = iommufd_ctx_from_file(file);
	/* On success the context holds its own reference on the file. */
	fput(file);
	return ictx;
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");

void iommufd_ctx_get(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_get(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");

void iommufd_ctx_put(struct iommufd_ctx *ictx)
{
	iommufd_rs_ctx_put(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");

bool iommufd_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	return iommufd_rs_ctx_has_group(ictx, group);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");

struct iommufd_device *iommufd_device_bind(struct iommufd_ctx *ictx,
					   struct device *dev, u32 *id)
{
	struct iommufd_device *idev;
	int rc;

	rc = iommufd_rs_device_bind(ictx, dev, id, &idev);
	return rc ? ERR_PTR(rc) : idev;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");

void iommufd_device_unbind(struct iommufd_device *idev)
{
	iommufd_rs_device_unbind(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");

int iommufd_device_attach(struct iommufd_device *idev, ioasid_t pasid,
			  u32 *pt_id)
{
	if (pasid != IOMMU_NO_PASID)
		return -EOPNOTSUPP;
	return iommufd_rs_device_attach(idev, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");

int iommufd_device_replace(struct iommufd_device *idev, ioasid_t pasid,
			   u32 *pt_id)
{
	if (pasid != IOMMU_NO_PASID)
		return -EOPNOTSUPP;
	return iommufd_rs_device_replace(idev, pt_id);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");

void iommufd_device_detach(struct iommufd_device *idev, ioasid_t pasid)
{
	/* Nothing can be attached to a PASID. */
	if (pasid == IOMMU_NO_PASID)
		iommufd_rs_device_detach(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");

struct iommufd_ctx *iommufd_device_to_ictx(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_ictx(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");

u32 iommufd_device_to_id(struct iommufd_device *idev)
{
	return iommufd_rs_device_to_id(idev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");

/* The coherency signal (iommufd-rs extension, <linux/iommufd_coherency.h>). */

int iommufd_ctx_coherency_register(struct iommufd_ctx *ictx,
				   struct notifier_block *nb)
{
	return iommufd_rs_ctx_coherency_register(ictx, nb);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_coherency_register, "IOMMUFD");

void iommufd_ctx_coherency_unregister(struct iommufd_ctx *ictx,
				      struct notifier_block *nb)
{
	iommufd_rs_ctx_coherency_unregister(ictx, nb);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_coherency_unregister, "IOMMUFD");

bool iommufd_ctx_noncoherent_dma(struct iommufd_ctx *ictx)
{
	return iommufd_rs_ctx_noncoherent_dma(ictx);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_noncoherent_dma, "IOMMUFD");

int iommufd_coherency_register(struct notifier_block *nb)
{
	return iommufd_rs_coherency_register(nb);
}
EXPORT_SYMBOL_NS_GPL(iommufd_coherency_register, "IOMMUFD");

void iommufd_coherency_unregister(struct notifier_block *nb)
{
	iommufd_rs_coherency_unregister(nb);
}
EXPORT_SYMBOL_NS_GPL(iommufd_coherency_unregister, "IOMMUFD");

bool iommufd_dev_noncoherent_dma(struct device *dev)
{
	return iommufd_rs_dev_noncoherent_dma(dev);
}
EXPORT_SYMBOL_NS_GPL(iommufd_dev_noncoherent_dma, "IOMMUFD");

struct iommufd_access *
iommufd_access_create(struct iommufd_ctx *ictx,
		      const struct iommufd_access_ops *ops, void *data, u32 *id)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_create, "IOMMUFD");

void iommufd_access_destroy(struct iommufd_access *access)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_destroy, "IOMMUFD");

int iommufd_access_attach(struct iommufd_access *access, u32 ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_attach, "IOMMUFD");

int iommufd_access_replace(struct iommufd_access *access, u32 ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_replace, "IOMMUFD");

void iommufd_access_detach(struct iommufd_access *access)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_detach, "IOMMUFD");

int iommufd_access_pin_pages(struct iommufd_access *access, unsigned long iova,
			     unsigned long length, struct page **out_pages,
			     unsigned int flags)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_pin_pages, "IOMMUFD");

void iommufd_access_unpin_pages(struct iommufd_access *access,
				unsigned long iova, unsigned long length)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_unpin_pages, "IOMMUFD");

int iommufd_access_rw(struct iommufd_access *access, unsigned long iova,
		      void *data, size_t len, unsigned int flags)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_access_rw, "IOMMUFD");

int iommufd_vfio_compat_ioas_get_id(struct iommufd_ctx *ictx, u32 *out_ioas_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_get_id, "IOMMUFD_VFIO");

int iommufd_vfio_compat_ioas_create(struct iommufd_ctx *ictx)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_ioas_create, "IOMMUFD_VFIO");

int iommufd_vfio_compat_set_no_iommu(struct iommufd_ctx *ictx)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_vfio_compat_set_no_iommu, "IOMMUFD_VFIO");
