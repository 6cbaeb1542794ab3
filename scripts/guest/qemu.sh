#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In the test VM: start the host's unmodified QEMU (10.0, with its iommufd
# backend) as a KVM guest (nested SVM) that gets the edu device through
# /dev/iommu, the way users run it, and check what it built: the Rust
# KVM-VFIO device, loaded on demand, with QEMU's device file added
# (KVM_DEV_VFIO_FILE_ADD seen by a kprobe on the device's entry point) and
# the device attached through the Rust iommufd; and that QEMU's exit
# releases the module.  KVM device ioctls only work from the VM's own
# process, so the state is observed from outside with kprobes.
#
#   qemu.sh <out dir>

set -u
out=$1
. "$(dirname "$0")/lib.sh"
EDU_BDF=$(bdf_of "$EDU_ID")
T=/sys/kernel/tracing
G=iommufd_rs_qemu

refs() { awk '$1 == "kvm_vfio_rs" { print $3 }' /proc/modules; }
probes() { # probes 1|0: enable or disable both probes
	echo "$1" > $T/events/$G/set_attr/enable
	echo "$1" > $T/events/$G/attach/enable
}

mountpoint -q $T || mount -t tracefs none $T || exit 1
# MOD:SYM probes a module that is not loaded yet.  The KVM-VFIO device's
# set_attr callback (glue.c) gets a struct kvm_device_attr, whose group is
# at offset 4 and attr at 8; VFIO attaches through the Rust iommufd's
# exported iommufd_device_attach().
echo "p:$G/set_attr kvm_vfio_rs:kvm_vfio_rs_dev_set_attr group=+4(%si):u32 attr=+8(%si):u64" \
	>> $T/kprobe_events || exit 1
echo "p:$G/attach iommufd_device_attach" >> $T/kprobe_events || exit 1
probes 1
echo > $T/trace

qemu-system-x86_64 -machine q35,accel=kvm,kernel-irqchip=split -cpu host \
	-m 128 -nodefaults -display none -S \
	-object iommufd,id=iommufd0 \
	-device vfio-pci,host="$EDU_BDF",iommufd=iommufd0 \
	> "$out/qemu.log" 2>&1 &
pid=$!
rc=1
# QEMU realizes its devices before it would run the (stopped) vCPU.
for _ in $(seq 120); do
	if ls -l /proc/$pid/fd 2>/dev/null | grep -q 'anon_inode:kvm-vfio'; then
		rc=0
		break
	fi
	kill -0 $pid 2>/dev/null || break
	sleep 0.5
done
sleep 1
if [ $rc != 0 ]; then
	echo "QEMU made no KVM-VFIO device; its output:"
	cat "$out/qemu.log"
else
	ls -l /proc/$pid/fd | grep -E 'kvm-vfio|/dev/iommu|/dev/vfio'
	echo "kvm_vfio_rs references while QEMU runs: $(refs)"
	[ "$(refs)" -ge 1 ] 2>/dev/null || rc=1
	grep -v '^#' $T/trace
	grep -q "set_attr: .* group=1 attr=1$" $T/trace ||
		{ echo "no KVM_DEV_VFIO_FILE_ADD"; rc=1; }
	grep -q "attach: " $T/trace ||
		{ echo "no attach through iommufd"; rc=1; }
fi
kill $pid 2>/dev/null
wait $pid 2>/dev/null
echo "kvm_vfio_rs references after QEMU: $(refs)"
[ "$(refs)" = 0 ] || rc=1
probes 0
echo "-:$G/set_attr" >> $T/kprobe_events
echo "-:$G/attach" >> $T/kprobe_events
exit $rc
