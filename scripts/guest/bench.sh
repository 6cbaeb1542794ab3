#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM for `make bench`:  guest/bench.sh <outdir> <benchmark>
# Loads whichever iommufd module the booted kernel has, hands the test
# devices to vfio-pci (the benchmark's second pass attaches the edu device)
# and runs the benchmark.  Writes <outdir>/bench.txt and the benchmark's
# exit status to <outdir>/bench.rc; the host decides what a failure means.

set -u
. "$(dirname "$0")/lib.sh"
out=$1 bench=$2
{
	echo "iommufd: $(modinfo -F description iommufd)"
	# Without the devices the benchmark still runs its first pass and
	# says why the second one did not run.
	setup_devices || echo "# setup_devices failed: edu may not be bound to vfio-pci"
	"$bench"
	echo $? > "$out/bench.rc"
} > "$out/bench.txt" 2>&1
exit 0
