// SPDX-License-Identifier: GPL-2.0
/*
 * The C end of the Rust KVM-VFIO device.
 *
 * KVM describes a device type with a struct kvm_device_ops of C callbacks
 * on struct kvm_device, and KVM, VFIO and iommufd may all be modules, which
 * the kernel crate (built into vmlinux) cannot link against.  This file
 * holds the ops table, unpacks struct kvm_device and struct kvm_device_attr
 * for the Rust side (kvm_vfio.rs), and gives it the few calls into KVM it
 * needs.  The Rust side declares these functions in hooks.rs, the only Rust
 * file that touches them.
 */

#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/slab.h>

/* In kvm_vfio.rs. */
int kvm_vfio_rs_create(struct kvm *kvm, void **state);
void kvm_vfio_rs_release(void *state);
int kvm_vfio_rs_set_attr(void *state, u32 group, u64 attr, u64 addr);
int kvm_vfio_rs_get_attr(void *state, u32 group, u64 attr, u64 addr);
int kvm_vfio_rs_has_attr(u32 group, u64 attr);

/* Called from hooks.rs. */
int kvm_vfio_rs_register(void);
void kvm_vfio_rs_unregister(void);
void kvm_vfio_rs_set_noncoherent(struct kvm *kvm, bool on);

static const struct kvm_device_ops kvm_vfio_rs_ops;

/* Called with kvm->lock held, which also guards the device list. */
static int kvm_vfio_rs_dev_create(struct kvm_device *dev, u32 type)
{
	struct kvm_device *other;

	list_for_each_entry(other, &dev->kvm->devices, vm_node)
		if (other->ops == &kvm_vfio_rs_ops)
			return -EBUSY;

	return kvm_vfio_rs_create(dev->kvm, &dev->private);
}

/* The device file was closed (kvm->lock held); the device goes with it. */
static void kvm_vfio_rs_dev_release(struct kvm_device *dev)
{
	kvm_vfio_rs_release(dev->private);
	kfree(dev);
}

static int kvm_vfio_rs_dev_set_attr(struct kvm_device *dev,
				    struct kvm_device_attr *attr)
{
	return kvm_vfio_rs_set_attr(dev->private, attr->group, attr->attr,
				    attr->addr);
}

static int kvm_vfio_rs_dev_get_attr(struct kvm_device *dev,
				    struct kvm_device_attr *attr)
{
	return kvm_vfio_rs_get_attr(dev->private, attr->group, attr->attr,
				    attr->addr);
}

static int kvm_vfio_rs_dev_has_attr(struct kvm_device *dev,
				    struct kvm_device_attr *attr)
{
	return kvm_vfio_rs_has_attr(attr->group, attr->attr);
}

static const struct kvm_device_ops kvm_vfio_rs_ops = {
	.name = "kvm-vfio",
	.owner = THIS_MODULE,
	.create = kvm_vfio_rs_dev_create,
	.release = kvm_vfio_rs_dev_release,
	.set_attr = kvm_vfio_rs_dev_set_attr,
	.get_attr = kvm_vfio_rs_dev_get_attr,
	.has_attr = kvm_vfio_rs_dev_has_attr,
};

int kvm_vfio_rs_register(void)
{
	return kvm_register_device_ops(&kvm_vfio_rs_ops, KVM_DEV_TYPE_VFIO);
}

void kvm_vfio_rs_unregister(void)
{
	kvm_unregister_device_ops(KVM_DEV_TYPE_VFIO);
}

/* Tell KVM that the VM gained (@on) or lost non-coherent DMA. */
void kvm_vfio_rs_set_noncoherent(struct kvm *kvm, bool on)
{
	if (on)
		kvm_arch_register_noncoherent_dma(kvm);
	else
		kvm_arch_unregister_noncoherent_dma(kvm);
}

MODULE_IMPORT_NS("IOMMUFD");
