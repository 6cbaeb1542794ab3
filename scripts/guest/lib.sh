# SPDX-License-Identifier: GPL-2.0
#
# Helpers for scripts that run inside the test VM.  Sourced.

# The PCI functions the test machine has, by vendor:device.
EDU_ID=1234:11e8
E1000E_ID=8086:10d3
# QEMU's igb: the 82576 physical function and its virtual functions.
IGB_PF_ID=8086:10c9
IGB_VF_ID=8086:10ca

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

# profile_iommu: the IOMMU the VM profile put in front of the test devices
# (vtd, virtio or amd), which vm.sh writes on the kernel command line as
# iommufd_rs.iommu=<kind>; fails if it is not there.
profile_iommu() {
	local arg args
	read -r -a args < /proc/cmdline
	for arg in "${args[@]}"; do
		case $arg in
		iommufd_rs.iommu=?*) echo "${arg#*=}"; return 0 ;;
		esac
	done
	return 1
}

# iommu_unit <bdf>: the sysfs name of the IOMMU that translates for the
# function (dmar0, ivhd0, virtio1, ...); fails if none does.
iommu_unit() {
	local link
	link=$(readlink "/sys/bus/pci/devices/$1/iommu") || return 1
	echo "${link##*/}"
}

# iommu_kind <bdf>: which IOMMU translates for the function, from its sysfs
# entry alone: vtd, amd or virtio (the names profile_iommu uses).  Prints
# "none" or "unknown" and fails otherwise.
iommu_kind() {
	local unit drv
	unit=$(iommu_unit "$1") || { echo none; return 1; }
	if [ -d "/sys/class/iommu/$unit/intel-iommu" ]; then
		echo vtd
	elif [ -d "/sys/class/iommu/$unit/amd-iommu" ]; then
		echo amd
	else
		drv=$(readlink "/sys/class/iommu/$unit/device/driver")
		if [ "${drv##*/}" = virtio_iommu ]; then
			echo virtio
		else
			echo unknown
			return 1
		fi
	fi
}

# iommu_can_enforce <bdf>: "yes" if the function's IOMMU can force
# snooping, i.e. enforce cache coherency: VT-d when ECAP.SC (bit 7) is set,
# AMD-Vi always (Force Coherent in every page-table entry), virtio-iommu
# never.
iommu_can_enforce() {
	local unit ecap
	case $(iommu_kind "$1") in
	vtd)
		unit=$(iommu_unit "$1")
		read -r ecap < "/sys/class/iommu/$unit/intel-iommu/ecap"
		if (( (0x$ecap >> 7) & 1 )); then echo yes; else echo no; fi
		;;
	amd) echo yes ;;
	*) echo no ;;
	esac
}

# iommu_describe <bdf>: the function's IOMMU, for people.
iommu_describe() {
	local unit ecap
	unit=$(iommu_unit "$1") || { echo "no IOMMU"; return 1; }
	case $(iommu_kind "$1") in
	vtd)
		read -r ecap < "/sys/class/iommu/$unit/intel-iommu/ecap"
		echo "Intel VT-d $unit, ecap 0x$ecap"
		;;
	amd) echo "AMD-Vi $unit" ;;
	virtio) echo "virtio-iommu $unit" ;;
	*) echo "unknown IOMMU $unit" ;;
	esac
}

# check_profile_iommu: both test devices sit behind the IOMMU the profile
# asked for.  The tests take their expectations from the IOMMU they find,
# so a VM that came up with another one must not pass for this profile.
check_profile_iommu() {
	local want bdf rc=0
	want=$(profile_iommu) || {
		echo "no iommufd_rs.iommu=<kind> on the kernel command line"
		return 1
	}
	for bdf in "$EDU_BDF" "$NIC_BDF"; do
		echo "$bdf: $(iommu_describe "$bdf"); the profile wants $want"
		[ "$(iommu_kind "$bdf")" = "$want" ] || rc=1
	done
	return $rc
}

# setup_sriov: bind the igb PF to vfio-pci and give it one VF, which
# vfio-pci takes too (it claims the VFs of the PFs it drives).  vfio-pci
# creates VFs only when told to (enable_sriov); the VF's user then needs
# the VF token its PF's user set.
setup_sriov() {
	local pf vf
	pf=$(bdf_of "$IGB_PF_ID") || { echo "no igb PF"; return 1; }
	bind_vfio "$pf" || return 1
	echo Y > /sys/module/vfio_pci/parameters/enable_sriov
	echo 1 > "/sys/bus/pci/devices/$pf/sriov_numvfs" || return 1
	vf=$(bdf_of "$IGB_VF_ID") || { echo "no VF of $pf"; return 1; }
	[ "$(basename "$(readlink "/sys/bus/pci/devices/$vf/driver")")" = vfio-pci ] ||
		bind_vfio "$vf"
}

# setup_devices: load the modules and bind the test devices to vfio-pci:
# the first edu and the e1000e, every other edu (the group pair), and the
# igb PF with one VF.
setup_devices() {
	local d vendor device
	modprobe iommufd
	modprobe vfio-pci
	EDU_BDF=$(bdf_of "$EDU_ID")
	NIC_BDF=$(bdf_of "$E1000E_ID")
	bind_vfio "$EDU_BDF" || return 1
	bind_vfio "$NIC_BDF" || return 1
	for d in /sys/bus/pci/devices/*; do
		read -r vendor < "$d/vendor"
		read -r device < "$d/device"
		[ "${vendor#0x}:${device#0x}" = "$EDU_ID" ] || continue
		[ "${d##*/}" = "$EDU_BDF" ] || bind_vfio "${d##*/}" || return 1
	done
	setup_sriov
}
