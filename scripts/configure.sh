#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Write the .config of a build directory: x86_64 defconfig, what virtme-ng
# needs to boot it, then kernel/configs/iommufd_rs.config.  Usage:
#   configure.sh <srctree> <builddir> [extra fragment...]
# virtme-configkernel forces DWARF debug info on; it is switched back off
# (the build is 3x bigger with it and nothing here needs it).

set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$1 out=$2; shift 2
frag="$src/kernel/configs/iommufd_rs.config"
mkdir -p "$out"
cd "$src"
KBUILD_OUTPUT=$out virtme-configkernel --arch x86_64 --defconfig \
	--custom "$frag" "${@/#/--custom=}" >/dev/null
scripts/config --file "$out/.config" \
	-d DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT -d DEBUG_INFO_DWARF4 \
	-d DEBUG_INFO_DWARF5 -e DEBUG_INFO_NONE
make -s O="$out" olddefconfig

# Every option the fragments ask for must have survived olddefconfig:
# a dependency that silently drops one would make tests meaningless.  A
# later fragment overrides an earlier one (build.sh c turns IOMMUFD_RS off).
declare -A want=()
for f in "$frag" "$@"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) want[${line%%=*}]=$line ;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }; want[${sym%% *}]=off ;;
		esac
	done < "$f"
done
bad=0
for sym in "${!want[@]}"; do
	if [ "${want[$sym]}" = off ]; then
		grep -q "^$sym=" "$out/.config" && {
			log "config: $sym should be off"; bad=1; }
	else
		grep -qxF "${want[$sym]}" "$out/.config" || {
			log "config: ${want[$sym]} did not stick"; bad=1; }
	fi
done
exit $bad
