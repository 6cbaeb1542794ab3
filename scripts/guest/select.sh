#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM for `make vmtest`: binds the test devices and runs
# only the named kselftest programs, for a quick look while developing.
#   guest/select.sh <outdir> <kselftest dir> <program...>
# A program may come with arguments in the same word ("iommufd_fuzz -n 10"),
# and SELECT_TIMEOUT (seconds, default 300) bounds each program's run.
# Each program's TAP goes to <outdir>/<program>.tap and to the console;
# the kernel log to <outdir>/dmesg.txt.  Nothing is judged here.

set -u
. "$(dirname "$0")/lib.sh"
out=$1 kst=$2; shift 2
setup_devices > "$out/setup.log" 2>&1 || echo "# setup_devices failed"
IOMMUFD_TEST_IOMMU=$(profile_iommu)
export IOMMUFD_TEST_IOMMU
for spec in "$@"; do
	name=${spec%% *}
	# $spec unquoted: the program's arguments are words of their own
	# shellcheck disable=SC2086
	(cd "$kst/iommufd" && timeout "${SELECT_TIMEOUT:-300}" ./$spec) 2>&1 |
		tee "$out/$name.tap"
done
dmesg > "$out/dmesg.txt"
echo done > "$out/finished"
