#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In the VM of `make check-builtin`: nothing to load, everything is built
# in; bind the test devices and run the KVM-VFIO kselftest.

out=$1 kst=$2
. "$(dirname "$0")/lib.sh"
mkdir -p "$out"
setup_devices > "$out/setup.log" 2>&1 || echo "setup failed: $?" >> "$out/setup.log"
(cd "$kst/iommufd" && timeout 500 ./iommufd_kvm_vfio) > "$out/iommufd_kvm_vfio.tap" 2>&1
echo "# exit status $?" >> "$out/iommufd_kvm_vfio.tap"
dmesg > "$out/dmesg.txt"
touch "$out/finished"
