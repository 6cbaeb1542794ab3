#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# abi-check.sh <upstream-header> <our-header>
#
# Mechanical proof that our include/uapi/linux/iommufd.h is ABI-identical to
# upstream's. scripts/abi_check.py extracts every struct/union (with all
# members, including anonymous unions and arrays), every enumerator and
# every object-like macro of the UPSTREAM header and generates one C
# program that dumps sizeof/alignment/offsetof/member size/member alignment/
# member type class and all constant values. The program is built and run
# against each header (each copied to a temp include dir as
# linux/iommufd.h) and the two dumps are diffed. When "$CC -m32" can
# compile, the same program is also evaluated for i386 at compile time (no
# run needed), which catches e.g. __aligned_u64 vs __u64. Finally the
# declared spelling of every upstream member is compared textually.
#
# Only upstream's names are compared; extra names in our header are fine.
# Exit 0 and a summary line when identical, 1 with the differences if not,
# 2 on usage/internal errors.

set -euo pipefail

CC=${CC:-gcc}
INCNAME=linux/iommufd.h

die() { echo "abi-check: error: $*" >&2; exit 2; }

[[ $# -eq 2 ]] || { echo "usage: $0 <upstream-header> <our-header>" >&2; exit 2; }
up_hdr=$1
our_hdr=$2
[[ -r $up_hdr ]] || die "cannot read $up_hdr"
[[ -r $our_hdr ]] || die "cannot read $our_hdr"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/abi-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/up/linux" "$tmp/ours/linux"
cp "$up_hdr" "$tmp/up/$INCNAME"
cp "$our_hdr" "$tmp/ours/$INCNAME"

python3 "$here/abi_check.py" --cc "$CC" --incname "$INCNAME" \
	--upstream "$tmp/up/$INCNAME" --incdir "$tmp/up" \
	--ours "$tmp/ours/$INCNAME" --ours-incdir "$tmp/ours" \
	--prog "$tmp/abi.c" --decl-up "$tmp/up.decl" \
	--decl-ours "$tmp/ours.decl" --stats "$tmp/stats" ||
	die "abi_check.py failed"
read -r nstructs nfields nconst nenum nmacro < "$tmp/stats"

CFLAGS=(-std=gnu11 -O0 -w)
# -m32 builds need the host's multiarch dir for <asm/*.h>
multiarch=/usr/include/$("$CC" -print-multiarch 2>/dev/null || true)

# i386 only if this compiler can target it (compile-only, -S): probe with
# the generated program against the upstream header.
m32=0
if "$CC" "${CFLAGS[@]}" -m32 -DABI_ASM -S -o /dev/null -I "$tmp/up" \
	-I "$multiarch" "$tmp/abi.c" >/dev/null 2>&1; then
	m32=1
fi

# dump <side> : writes $tmp/<side>.out, returns 1 if the program does not build
dump() {
	local side=$1 inc=$tmp/$1
	: > "$tmp/$side.out"
	if ! "$CC" "${CFLAGS[@]}" -I "$inc" -o "$tmp/$side.bin" "$tmp/abi.c" \
		2> "$tmp/$side.cc.err"; then
		return 1
	fi
	"$tmp/$side.bin" > "$tmp/$side.run" || return 2
	sed 's/^/x86_64 /' "$tmp/$side.run" >> "$tmp/$side.out"
	if [[ $m32 == 1 ]]; then
		if ! "$CC" "${CFLAGS[@]}" -m32 -DABI_ASM -S -o "$tmp/$side.s" \
			-I "$inc" -I "$multiarch" "$tmp/abi.c" \
			2>> "$tmp/$side.cc.err"; then
			return 1
		fi
		sed -n 's/^.*\.ascii "@ABI@ \(.*\)\\n".*$/i386 \1/p' "$tmp/$side.s" \
			>> "$tmp/$side.out"
	fi
	cat "$tmp/$side.decl" >> "$tmp/$side.out"
}

rc=0
dump up || rc=$?
if [[ $rc != 0 ]]; then
	cat "$tmp/up.cc.err" >&2
	die "generated program does not build/run against the upstream header"
fi

rc=0
dump ours || rc=$?
if [[ $rc == 2 ]]; then
	die "generated program built against $our_hdr but did not run"
elif [[ $rc != 0 ]]; then
	echo "abi-check: FAIL: the upstream ABI dump does not compile against" \
		"$our_hdr (missing or changed names):"
	{ grep -E 'error' "$tmp/ours.cc.err" | sed "s|$tmp/||g" |
		head -n 40; } || true
	echo "abi-check: declaration differences (- upstream, + ours):"
	{ diff -U0 "$tmp/up.decl" "$tmp/ours.decl" | grep -E '^[-+][^-+]'; } || true
	exit 1
fi

if ! diff -U0 "$tmp/up.out" "$tmp/ours.out" > "$tmp/diff"; then
	echo "abi-check: FAIL: $our_hdr differs from $up_hdr (- upstream, + ours):"
	grep -E '^[-+][^-+]' "$tmp/diff"
	exit 1
fi

[[ -s $tmp/up.out ]] || die "empty ABI dump"
targets="x86_64 (i386 skipped: $CC cannot -m32)"
[[ $m32 == 1 ]] && targets="x86_64+i386"
echo "abi-check: $nstructs structs, $nfields fields, $nconst constants identical" \
	"($nenum enumerators, $nmacro macros; $targets layouts, declarations match)"
