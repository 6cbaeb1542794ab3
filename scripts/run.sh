#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: boot the demo VM once per VT-d profile (snoop control on, then
# off; PROFILES overrides) and print what it shows: the devices, and KVM's
# WBINVD gate for each box of the coherency matrix.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${RUNDIR:-${TMPDIR:-/tmp}/iommufd-rs-run}
kst=$(KDIR)/build-rs/kselftest
rm -rf "$out"
mkdir -p "$out"
for p in ${PROFILES:-sc-on sc-off}; do
	log "booting the demo VM, profile $p"
	"$PROJECT/scripts/vm.sh" "$p" "$out/$p" \
		"$PROJECT/scripts/guest/demo.sh" "$out/$p" "$kst" || {
		tail -n 30 "$out/$p/console.log"
		die "the demo VM ($p) failed"
	}
	cat "$out/$p/demo.txt"
done
