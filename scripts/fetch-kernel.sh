#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Download (never install) Debian's linux-source-7.3 and unpack it twice
# under the cache: "pristine" stays as shipped (the reference for patches,
# for restoring files and for the uAPI ABI check) and "src" is the tree the
# project's files are laid over.  Does nothing when both already exist.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$CACHE"
ver=$LINUX_SOURCE_VERSION
want="$CACHE/linux-$(echo "$ver" | tr '~+' '__')"
if [ -f "$want/.unpacked" ]; then
	echo "$ver" > "$CACHE/kernel-version"
	exit 0
fi

tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # let apt's _apt user write the download
cd "$tmp"
if ! apt-get download -qq "$LINUX_SOURCE_PKG=$ver" 2>/dev/null; then
	apt-get update -qq
	if ! apt-get download -qq "$LINUX_SOURCE_PKG=$ver" 2>/dev/null; then
		ver=$(apt-cache madison "$LINUX_SOURCE_PKG" | awk '{print $3}' |
		      sort -V | tail -n1)
		[ -n "$ver" ] || die "no $LINUX_SOURCE_PKG on the mirror"
		log "WARNING: $LINUX_SOURCE_PKG $LINUX_SOURCE_VERSION is gone;" \
		    "falling back to $ver"
		apt-get download -qq "$LINUX_SOURCE_PKG=$ver"
	fi
fi
echo "$ver" > "$CACHE/kernel-version"
kdir=$(KDIR)
if [ -f "$kdir/.unpacked" ]; then exit 0; fi

log "unpacking $LINUX_SOURCE_PKG $ver into $kdir"
dpkg-deb -x ./*.deb deb
tarball=$(ls deb/usr/src/linux-source-*.tar.xz)
rm -rf "$kdir"
mkdir -p "$kdir/pristine" "$kdir/src"
tar -xJf "$tarball" -C "$kdir/pristine" --strip-components=1
cp -a "$kdir/pristine/." "$kdir/src/"
touch "$kdir/.unpacked"
