#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: run tools/testing/selftests/iommufd/iommufd_bench in the VM
# on the Rust iommufd and on upstream's C iommufd, built from the same kernel
# source, print both outputs and then one table with the per-ioctl latency
# of each case on both and their ratio.  The first run builds the C kernel
# (a full build, ~15 min); later runs are incremental.
#
# Exits non-zero if either VM failed or either benchmark run did not finish
# cleanly (e.g. its edu-attached pass could not run); the numbers that were
# measured are printed anyway.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$PROJECT/scripts/build.sh" rs
"$PROJECT/scripts/build.sh" c
kdir=$(KDIR)
bench=$kdir/build-rs/kselftest/iommufd/iommufd_bench
failed=0
for flavour in rs c; do
	out=$CACHE/bench/$flavour
	rm -rf "$out"
	mkdir -p "$out"
	if ! BUILD_DIR=$kdir/build-$flavour "$PROJECT/scripts/vm.sh" sc-on "$out" \
		"$PROJECT/scripts/guest/bench.sh" "$out" "$bench"; then
		log "benchmark VM ($flavour) failed; see $out/console.log"
		failed=1
	fi
done

for flavour in rs c; do
	echo "== $flavour"
	cat "$CACHE/bench/$flavour/bench.txt" 2>/dev/null || echo "(no output)"
	echo
done

# bench.txt of @flavour, or /dev/null if that run wrote none
result_file() {
	local txt=$CACHE/bench/$1/bench.txt
	if [ -f "$txt" ]; then echo "$txt"; else echo /dev/null; fi
}

# Join the result lines of the two runs (nine fields, see iommufd_bench.c)
# on pass, backing, map size and MiB.  Missing cases show as "-".
echo "== Rust (rs) vs upstream C (c): microseconds per ioctl, lower is better;"
echo "   rs/c above 1.00 means the Rust driver is slower"
awk '
	/^#/ || NF != 9 || $5 !~ /^[0-9]+$/ { next }
	{
		key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
		if (!(key in ioctls)) {
			order[++n] = key
			ioctls[key] = $5
		}
		map_us[which, key] = $7
		unmap_us[which, key] = $9
	}
	function cell(v) { return v == "" ? "-" : v }
	function ratio(a, b) {
		return (a == "" || b == "" || b + 0 == 0) ? "-" \
			: sprintf("%.2f", a / b)
	}
	END {
		fmt = "%-12s %-8s %-5s %5s %7s  %9s %9s %6s  %9s %9s %6s\n"
		printf "%-41s  %s  %s\n", "", "------ map us/ioctl ------", \
			"----- unmap us/ioctl -----"
		printf fmt, "pass", "backing", "size", "MiB", "ioctls", \
			"rs", "c", "rs/c", "rs", "c", "rs/c"
		for (i = 1; i <= n; i++) {
			k = order[i]
			split(k, f, SUBSEP)
			if (i > 1 && f[1] != prev)
				print ""
			prev = f[1]
			printf fmt, f[1], f[2], f[3], f[4], ioctls[k], \
				cell(map_us["rs", k]), cell(map_us["c", k]), \
				ratio(map_us["rs", k], map_us["c", k]), \
				cell(unmap_us["rs", k]), cell(unmap_us["c", k]), \
				ratio(unmap_us["rs", k], unmap_us["c", k])
		}
		if (!n)
			print "(no results)"
	}
' which=rs "$(result_file rs)" which=c "$(result_file c)"

for flavour in rs c; do
	txt=$CACHE/bench/$flavour/bench.txt
	rc=$(cat "$CACHE/bench/$flavour/bench.rc" 2>/dev/null || echo "none")
	if grep -q "NOT RUN" "$txt" 2>/dev/null; then
		log "$flavour: $(grep -m1 "NOT RUN" "$txt")"
	fi
	if [ "$rc" != 0 ]; then
		log "$flavour: the benchmark exited with status $rc"
		failed=1
	fi
done
exit "$failed"
