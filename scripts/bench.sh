#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: run tools/testing/selftests/iommufd/iommufd_bench in the VM
# on the Rust iommufd and on upstream's C iommufd, built from the same kernel
# source, and print the two side by side.  The first run builds the C kernel
# (a full build, ~15 min); later runs are incremental.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$PROJECT/scripts/build.sh" rs
"$PROJECT/scripts/build.sh" c
kdir=$(KDIR)
bench=$kdir/build-rs/kselftest/iommufd/iommufd_bench
for flavour in rs c; do
	out=$CACHE/bench/$flavour
	rm -rf "$out"
	mkdir -p "$out"
	BUILD_DIR=$kdir/build-$flavour "$PROJECT/scripts/vm.sh" sc-on "$out" \
		"$PROJECT/scripts/guest/bench.sh" "$out" "$bench" ||
		die "benchmark VM ($flavour) failed; see $out/console.log"
done
for flavour in rs c; do
	echo "== $flavour"
	cat "$CACHE/bench/$flavour/bench.txt"
done
