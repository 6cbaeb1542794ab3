#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM for `make bench`:  guest/bench.sh <outdir> <benchmark>
# Loads whichever iommufd module the booted kernel has and runs the benchmark.

set -eu
out=$1 bench=$2
modprobe iommufd
{
	echo "iommufd: $(modinfo -F description iommufd)"
	"$bench"
} > "$out/bench.txt" 2>&1
