#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check-builtin`: the KVM-VFIO device with everything built in
# (CONFIG_KVM=y, CONFIG_VFIO=y, CONFIG_IOMMUFD=y, CONFIG_KVM_VFIO_RS=y)
# instead of the modules `make check` uses.  Builds that kernel in its own
# directory (a full build the first time), boots it in both VT-d profiles
# and runs the KVM-VFIO kselftest there.  Ends with "N passed, N failed".

set -uo pipefail
. "$(dirname "$0")/lib.sh"

"$PROJECT/scripts/build.sh" builtin || die "build failed"
build=$(KDIR)/build-builtin
results=$CACHE/results-builtin
rm -rf "$results"
pass=0 fail=0
for p in ${PROFILES:-sc-on sc-off}; do
	log "booting profile $p (built-in)"
	BUILD_DIR=$build VM_TIMEOUT=${VM_TIMEOUT:-600} \
		"$PROJECT/scripts/vm.sh" "$p" "$results/$p" \
		"$PROJECT/scripts/guest/check-builtin.sh" "$results/$p" \
		"$build/kselftest" || log "VM $p exited with $?"
	tap=$results/$p/iommufd_kvm_vfio.tap
	ok=$(grep -c '^ok ' "$tap" 2>/dev/null)
	bad=$(grep -c '^not ok ' "$tap" 2>/dev/null)
	if [ ! -f "$results/$p/finished" ] || [ "${ok:-0}" = 0 ]; then
		echo "FAIL $p: the test did not run to the end (see $results/$p)"
		bad=$(( ${bad:-0} + 1 ))
	fi
	grep '^not ok ' "$tap" 2>/dev/null | sed "s/^/FAIL $p: /"
	pass=$(( pass + ${ok:-0} )) fail=$(( fail + ${bad:-0} ))
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
