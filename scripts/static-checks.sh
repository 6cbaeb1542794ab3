#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side checks of the project's code, printed as PASS/FAIL lines:
# rustfmt and clippy on our Rust, no compiler warnings from our files, no
# bindings:: in drivers, every unsafe block justified, the uAPI header ABI-
# identical to upstream's.   static-checks.sh <builddir>

set -uo pipefail
. "$(dirname "$0")/lib.sh"

build=$1
kdir=$(KDIR)
src=$kdir/src
cd "$PROJECT"
rust_files=$(git ls-files -co --exclude-standard -- 'drivers/*.rs' 'rust/*.rs')
ours=$(git ls-files -co --exclude-standard -- drivers rust include tools |
	sed 's|/[^/]*$||' | sort -u)

verdict() { # verdict <name> <command...>
	local name=$1 outf; shift
	outf=$(mktemp)
	if "$@" > "$outf" 2>&1; then
		echo "PASS host $name"
	else
		echo "FAIL host $name: $(grep -v '^\s*$' "$outf" | head -n 3 | tr '\n' ' ')"
	fi
	rm -f "$outf"
}

no_warnings() {
	# Compiler warnings that point into our directories.
	! grep -E -A3 '^(warning|.*: warning:)' "$build/.build-log" |
		grep -F -f <(echo "$ours") | grep .
}

no_driver_bindings() {
	# The one exception is kvm_vfio_rs's C seam, hooks.rs: it declares the
	# C functions of KVM, VFIO and iommufd (possibly modules, which the
	# kernel crate cannot link against) and may name bindgen's types for
	# their structs, in a `use kernel::bindings::{...}` and nowhere else.
	! git grep -n 'bindings::' -- drivers \
		':!drivers/vfio/kvm_vfio_rs/hooks.rs' &&
	[ "$(git grep -c 'bindings::' -- drivers/vfio/kvm_vfio_rs/hooks.rs |
		cut -d: -f2)" = 1 ] &&
	git grep -q '^    bindings::{$' -- drivers/vfio/kvm_vfio_rs/hooks.rs
}

unsafe_justified() {
	# Each `unsafe {` or `unsafe impl` in our Rust has a SAFETY comment on
	# one of the five lines before it.
	local f bad=0
	for f in $rust_files; do
		awk -v f="$f" '
			/SAFETY:/ { last = NR }
			/unsafe[ ]*(\{|impl)/ && !/^[ ]*\/\// {
				if (!last || NR - last > 5) { print f ":" NR ": " $0; bad = 1 }
			}
			END { exit bad }' "$f" || bad=1
	done
	return $bad
}

clippy() { # clippy <driver dir> <crate root>
	# Re-lint a driver crate with clippy (-D warnings is the kernel's
	# default); the next normal build recompiles it without.
	local dir=$1 root=$2
	touch "$src/$dir/$root"
	make -s -C "$src" O="$build" CLIPPY=1 M="$dir" 2>&1 |
		grep -E 'warning|error' && return 1
	touch "$src/$dir/$root"
	make -s -C "$src" O="$build" M="$dir" >/dev/null
}

kernel_clippy() {
	# The kernel crate holds our abstractions (rust/kernel/iommu/domain.rs,
	# mm/pin.rs, notifier.rs, capability.rs and the patched files): lint it
	# all; upstream's part of it is clippy-clean in 7.3.
	touch "$src/rust/kernel/lib.rs"
	make -s -C "$src" O="$build" CLIPPY=1 rust/ 2>&1 |
		grep -E 'warning|error' && return 1
	touch "$src/rust/kernel/lib.rs"
	make -s -C "$src" O="$build" rust/ >/dev/null
}

verdict "judge.py reports every kind of failure" "$PROJECT/scripts/judge-selftest.sh"
verdict "rustfmt" rustfmt --check --edition 2021 \
	--config-path "$src/.rustfmt.toml" $rust_files
verdict "no compiler warnings in our code" no_warnings
verdict "clippy" clippy drivers/iommu/iommufd_rs iommufd_rs.rs
verdict "clippy on kvm_vfio_rs" clippy drivers/vfio/kvm_vfio_rs kvm_vfio.rs
verdict "clippy on the kernel crate" kernel_clippy
verdict "drivers use no bindings::" no_driver_bindings
verdict "every unsafe has a SAFETY comment" unsafe_justified
if [ -x "$PROJECT/scripts/abi-check.sh" ]; then
	verdict "uAPI ABI identical to upstream" "$PROJECT/scripts/abi-check.sh" \
		"$kdir/pristine/include/uapi/linux/iommufd.h" \
		"$PROJECT/include/uapi/linux/iommufd.h"
fi
