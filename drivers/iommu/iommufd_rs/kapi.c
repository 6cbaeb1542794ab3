// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel iommufd API that VFIO links against.
 *
 * vfio.ko refers to these symbols whenever CONFIG_IOMMUFD is set, so the
 * iommufd module must export every one of them, with the prototypes of
 * include/linux/iommufd.h and in the same symbol namespaces, or vfio.ko does
 * not load at all.  In this first version of the Rust driver, /dev/iommu
 * serves only its own ioctls: binding a VFIO device, in-kernel accesses and
 * the VFIO container compatibility layer are not supported yet, and each of
 * these entry points says so with -EOPNOTSUPP (or the closest thing its
 * prototype allows).  Nothing can be bound, so the functions that operate on
 * a bound device or access can never be reached with a valid object; they
 * warn if they ever are.
 *
 * This file is C only because its job is to carry the exact C prototypes;
 * the device-binding API replaces these bodies with calls into Rust.
 */

#include <linux/err.h>
#include <linux/export.h>
#include <linux/iommufd.h>
#include <linux/module.h>

struct iommufd_ctx *iommufd_ctx_from_file(struct file *file)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_file, "IOMMUFD");

struct iommufd_ctx *iommufd_ctx_from_fd(int fd)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_from_fd, "IOMMUFD");

void iommufd_ctx_get(struct iommufd_ctx *ictx)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_get, "IOMMUFD");

void iommufd_ctx_put(struct iommufd_ctx *ictx)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_put, "IOMMUFD");

bool iommufd_ctx_has_group(struct iommufd_ctx *ictx, struct iommu_group *group)
{
	return false;
}
EXPORT_SYMBOL_NS_GPL(iommufd_ctx_has_group, "IOMMUFD");

struct iommufd_device *iommufd_device_bind(struct iommufd_ctx *ictx,
					   struct device *dev, u32 *id)
{
	return ERR_PTR(-EOPNOTSUPP);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_bind, "IOMMUFD");

void iommufd_device_unbind(struct iommufd_device *idev)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_unbind, "IOMMUFD");

int iommufd_device_attach(struct iommufd_device *idev, ioasid_t pasid,
			  u32 *pt_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_attach, "IOMMUFD");

int iommufd_device_replace(struct iommufd_device *idev, ioasid_t pasid,
			   u32 *pt_id)
{
	return -EOPNOTSUPP;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_replace, "IOMMUFD");

void iommufd_device_detach(struct iommufd_device *idev, ioasid_t pasid)
{
	WARN_ON_ONCE(1);
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_detach, "IOMMUFD");

struct iommufd_ctx *iommufd_device_to_ictx(struct iommufd_device *idev)
{
	WARN_ON_ONCE(1);
	return NULL;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_ictx, "IOMMUFD");

u32 iommufd_device_to_id(struct iommufd_device *idev)
{
	WARN_ON_ONCE(1);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(iommufd_device_to_id, "IOMMUFD");

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
