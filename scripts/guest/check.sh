#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM for `make check`:
#   guest/check.sh <outdir> <kselftest dir> [quick]
# "quick" (make test) skips the kmemleak scans and the 6 s they need.
#
# Writes to <outdir>: steps.tap (this script's own checks), one .tap file per
# kselftest program, kmemleak.txt and dmesg.txt.  The host (scripts/check.sh)
# judges them; this script never decides pass or fail by itself.

set -u
. "$(dirname "$0")/lib.sh"
out=$1 kst=$2 quick=${3:-}
steps=$out/steps.tap
: > "$steps"
nstep=0
step() { # step <name> <command...>: record whether the command succeeded
	local name=$1; shift
	nstep=$((nstep + 1))
	echo "# $(cut -d' ' -f1 /proc/uptime) $name: $*" >> "$out/steps.log"
	if "$@" >> "$out/steps.log" 2>&1; then
		echo "ok $nstep $name" >> "$steps"
	else
		echo "not ok $nstep $name" >> "$steps"
	fi
}

unload_modules() {
	# In dependency order; modprobe -r would also try to remove modules
	# that something else still holds.
	local m f
	# Take the VFs away through sysfs first: 7.3's PCI core asserts
	# (lockdep) that the rescan/remove lock is held when a VF is removed,
	# which sriov_numvfs takes and vfio-pci's remove path does not.
	for f in /sys/bus/pci/devices/*/sriov_numvfs; do
		[ -e "$f" ] && [ "$(cat "$f")" != 0 ] || continue
		echo 0 > "$f" || return 1
	done
	for m in kvm_vfio_rs vfio_pci vfio_pci_core vfio_iommu_type1 vfio iommufd; do
		if grep -q "^$m " /proc/modules; then
			rmmod $m || return 1
		fi
	done
	! grep -qE '^(kvm_vfio_rs|vfio_pci|vfio|iommufd) ' /proc/modules
}

kmemleak_scan() {
	echo scan > $kmemleak
}

kmemleak=/sys/kernel/debug/kmemleak
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
# Forget whatever boot itself left behind, so the final scan reports only
# what the tests leaked.
if [ -z "$quick" ]; then
	step "kmemleak is active" kmemleak_scan
	echo clear > $kmemleak
fi

# Loading the module runs its KUnit suites (results in dmesg).
step "modprobe iommufd" modprobe iommufd
step "/dev/iommu is a 0660 char device" \
	test "$(stat -c %F:%a /dev/iommu)" = "character special file:660"
step "vfio-pci binds the test devices" setup_devices
step "vfio cdevs exist" test -c "$(vfio_cdev "$EDU_BDF")" -a -c "$(vfio_cdev "$NIC_BDF")"
# The tests decide what to expect from the IOMMU they find (iommu_facts.h)
# and check it against the profile's, which they get from here.
step "the test devices are behind the profile's IOMMU" check_profile_iommu
IOMMUFD_TEST_IOMMU=$(profile_iommu)
export IOMMUFD_TEST_IOMMU
step "kvm_amd or kvm_intel loaded" \
	sh -c 'test -d /sys/module/kvm_amd || test -d /sys/module/kvm_intel'
# KVM loads the Rust KVM-VFIO device on the first KVM_CREATE_DEVICE of its
# type (the selftest below); nothing may have loaded it before.
step "kvm_vfio_rs not loaded yet" sh -c '! grep -q "^kvm_vfio_rs " /proc/modules'
step "unmodified QEMU runs the edu over iommufd with the Rust KVM-VFIO device" \
	"$(dirname "$0")/qemu.sh" "$out"

for prog in "$kst"/iommufd/iommufd "$kst"/iommufd/iommufd_ioas \
	    "$kst"/iommufd/iommufd_fail_nth "$kst"/iommufd/iommufd_device \
	    "$kst"/iommufd/iommufd_edu "$kst"/iommufd/iommufd_coherency \
	    "$kst"/iommufd/iommufd_kvm_vfio "$kst"/iommufd/kvm_vcpu \
	    "$kst"/iommufd/iommufd_hw_caps "$kst"/iommufd/iommufd_races \
	    "$kst"/iommufd/iommufd_group "$kst"/iommufd/iommufd_fuzz; do
	name=$(basename "$prog")
	echo "# $(cut -d' ' -f1 /proc/uptime) kselftest $name" >> "$out/steps.log"
	(cd "$(dirname "$prog")" && timeout 300 "$prog") > "$out/$name.tap" 2>&1
	echo "# exit status $?" >> "$out/$name.tap"
done

step "kvm_vfio_rs was loaded on demand" grep -q "^kvm_vfio_rs " /proc/modules

# Every object must be gone once the module is: unload it, then look for
# leaks.  kmemleak only reports objects older than 5 s.
step "unload vfio-pci, vfio and iommufd" unload_modules
if [ -z "$quick" ]; then
	sleep 6
	step "kmemleak scan after the tests" kmemleak_scan
	cat $kmemleak > "$out/kmemleak.txt"
fi
echo "# $(cut -d' ' -f1 /proc/uptime) end" >> "$out/steps.log"
dmesg > "$out/dmesg.txt"
echo done > "$out/finished"
