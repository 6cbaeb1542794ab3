#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Proves that judge.py can fail: feeds it a synthetic VM result with one
# problem of each kind it must catch and checks that each one is reported.

set -euo pipefail
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT

printf 'ok 1 a\nnot ok 2 broken step\n' > "$d/steps.tap"
printf 'ok 1 fix.good\nok 2 fix.skipped # SKIP no device\nnot ok 3 fix.bad\n' \
	> "$d/iommufd.tap"
# kvm_vcpu.tap missing; no "finished" marker.
cat > "$d/dmesg.txt" <<'EOT'
[    1.0]     # Subtest: iommufd_rs_ioctl
[    1.0]     ok 1 span_rules
[    1.0]     not ok 2 min_sizes
[    1.0] ok 1 iommufd_rs_ioctl
[    1.0]     # Subtest: rust_doctests_kernel
[    1.0]     ok 1 rust_doctest_kernel_alloc_rs_0
[    1.0] ok 2 rust_doctests_kernel
[    2.0] WARNING: CPU: 0 PID: 1 at drivers/foo.c:1 bar+0x0/0x10
EOT
echo "unreferenced object 0xffff888000000000 (size 64):" > "$d/kmemleak.txt"

out=$("$(dirname "$0")/judge.py" "$d" t)
want=(
	"FAIL t guest script finished"
	"FAIL t guest steps"
	"FAIL t broken step"
	"FAIL t iommufd: fix.skipped"
	"FAIL t iommufd: fix.bad"
	"FAIL t kvm_vcpu"
	"FAIL t kunit iommufd_rs_ioctl.min_sizes"
	"FAIL t kunit iommufd_rs_iova"
	"FAIL t kunit rust_doctests_kernel"
	"FAIL t kernel log clean"
	"FAIL t no kmemleak reports"
	"PASS t iommufd: fix.good"
	"PASS t kunit iommufd_rs_ioctl.span_rules"
)
rc=0
for w in "${want[@]}"; do
	grep -qF "$w" <<< "$out" || { echo "judge missed: $w"; rc=1; }
done
exit $rc
