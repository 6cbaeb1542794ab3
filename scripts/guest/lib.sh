# SPDX-License-Identifier: GPL-2.0
#
# Helpers for scripts that run inside the test VM.  Sourced.

# The PCI functions the test machine has, by vendor:device.
EDU_ID=1234:11e8
E1000E_ID=8086:10d3

# bdf_of <vendor:device>: the PCI address of the first such function.
# Builtins only: every fork costs tens of milliseconds under TCG.
bdf_of() {
	local d vendor device
	for d in /sys/bus/pci/devices/*; do
		read -r vendor < "$d/vendor"
		read -r device < "$d/device"
		if [ "${vendor#0x}:${device#0x}" = "$1" ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 1
}

# bind_vfio <bdf>: hand a PCI function to vfio-pci.
bind_vfio() {
	local dev=/sys/bus/pci/devices/$1
	if [ -e "$dev/driver" ]; then
		echo "$1" > "$dev/driver/unbind"
	fi
	echo vfio-pci > "$dev/driver_override"
	echo "$1" > /sys/bus/pci/drivers_probe
	[ "$(basename "$(readlink "$dev/driver")")" = vfio-pci ]
}

# vfio_cdev <bdf>: the /dev/vfio/devices node of a vfio-bound function.
vfio_cdev() {
	echo "/dev/vfio/devices/$(ls "/sys/bus/pci/devices/$1/vfio-dev")"
}

# iommu_snoop_control <bdf>: "yes" if the function's IOMMU can force
# snooping (VT-d ECAP.SC, bit 7), i.e. can enforce cache coherency.
iommu_snoop_control() {
	local unit ecap
	unit=$(basename "$(readlink "/sys/bus/pci/devices/$1/iommu")")
	ecap=$(cat "/sys/class/iommu/$unit/intel-iommu/ecap")
	if (( (0x$ecap >> 7) & 1 )); then echo yes; else echo no; fi
}

# setup_devices: load the modules and bind the test devices to vfio-pci.
setup_devices() {
	modprobe iommufd
	modprobe vfio-pci
	EDU_BDF=$(bdf_of "$EDU_ID")
	NIC_BDF=$(bdf_of "$E1000E_ID")
	bind_vfio "$EDU_BDF"
	bind_vfio "$NIC_BDF"
}
