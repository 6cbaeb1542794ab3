#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo shown by `make run`: the test machine's devices, their IOMMU
# groups, which IOMMU translates for them and whether it can enforce cache
# coherency, with /dev/iommu served by the Rust driver; then KVM's WBINVD
# gate for the edu device in each box this profile's IOMMU can reach
# (iommufd_wbinvd_gate).

set -eu
. "$(dirname "$0")/lib.sh"
out=$1 kst=$2
setup_devices

{
echo
echo "kernel:     $(uname -r), iommufd module: $(modinfo -F description iommufd)"
echo "/dev/iommu: $(stat -c '%A %U:%G, char %Hr:%Lr' /dev/iommu)"
echo
printf '%-14s %-10s %-26s %-6s %-9s %-24s %s\n' device vendor:dev kind group driver vfio-cdev "IOMMU enforces coherency"
for bdf in "$EDU_BDF" "$NIC_BDF"; do
	d=/sys/bus/pci/devices/$bdf
	id="$(cut -c3- "$d/vendor"):$(cut -c3- "$d/device")"
	if [ -n "$(setpci -s "$bdf" CAP_EXP+0.w 2>/dev/null)" ]; then
		kind="PCIe"
	else
		kind="conventional PCI"
	fi
	printf '%-14s %-10s %-26s %-6s %-9s %-24s %s\n' "$bdf" "$id" "$kind" \
		"$(basename "$(readlink "$d/iommu_group")")" \
		"$(basename "$(readlink "$d/driver")")" "$(vfio_cdev "$bdf")" \
		"$(iommu_can_enforce "$bdf") ($(iommu_describe "$bdf"))"
done
echo
} | tee "$out/demo.txt"
modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null || true
rc=0
"$kst/iommufd/iommufd_wbinvd_gate" > "$out/gate.log" 2>&1 || rc=$?
# The harness's own lines (TAP, "#" diagnostics) only matter on failure.
grep -v '^#\|^ok \|^not ok \|^TAP\|^1\.\.' "$out/gate.log" | tee -a "$out/demo.txt"
if [ $rc != 0 ]; then
	cat "$out/gate.log"
	exit $rc
fi
