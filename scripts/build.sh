#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build everything the VM needs: kernel, modules, uAPI headers and the
# kselftests, incrementally in a build directory under the cache.
#
#   build.sh [rs|c|builtin]
#                       rs (default): our iommufd; c: upstream's C iommufd
#                       from the same source, for side-by-side comparisons;
#                       builtin: ours with KVM, VFIO, iommufd and the Rust
#                       KVM-VFIO device built in (make check-builtin).

set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:-rs}
"$PROJECT/scripts/setup-host.sh"
"$PROJECT/scripts/fetch-kernel.sh"
"$PROJECT/scripts/overlay.sh"

kdir=$(KDIR)
src=$kdir/src
build=$kdir/build-$flavour
extra=()
if [ "$flavour" = c ]; then
	printf '%s\n' '# CONFIG_IOMMUFD_RS is not set' \
		'# CONFIG_IOMMUFD_RS_KUNIT_TEST is not set' \
		'# CONFIG_IOMMUFD_RS_TEST is not set' > "$kdir/upstream-c.config"
	extra=("$kdir/upstream-c.config")
elif [ "$flavour" = builtin ]; then
	printf 'CONFIG_%s=y\n' KVM KVM_AMD KVM_INTEL KVM_VFIO_RS VFIO VFIO_PCI \
		IOMMUFD > "$kdir/builtin.config"
	extra=("$kdir/builtin.config")
elif [ "$flavour" != rs ]; then
	die "unknown flavour $flavour (rs, c, builtin)"
fi

# (Re)configure when the fragment or the configure logic changed.
stamp=$(cat "$src/kernel/configs/iommufd_rs.config" \
	"$PROJECT/scripts/configure.sh" "${extra[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$build/.iommufd_rs-config" 2>/dev/null)" != "$stamp" ]; then
	log "configuring $build"
	"$PROJECT/scripts/configure.sh" "$src" "$build" "${extra[@]}" \
		> "$kdir/configure.log" 2>&1 ||
		{ tail -n 20 "$kdir/configure.log"; die "configure failed"; }
	echo "$stamp" > "$build/.iommufd_rs-config"
fi

jobs=$(nproc)
log "building kernel and modules in $build"
if ! make -s -C "$src" O="$build" -j"$jobs" 2>&1 | tee "$build/.build-log"; then
	die "kernel build failed"
fi
make -s -C "$src" O="$build" headers_install

log "building kselftests"
# The kernel's own selftest build; with O= it uses the headers installed
# in the build directory and writes to $build/kselftest.
make -s -C "$src/tools/testing/selftests" O="$build" TARGETS=iommufd
