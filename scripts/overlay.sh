#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Lay the project over the kernel source tree:  src = pristine + patches/
# (applied in the order of patches/series) + the project's own files.
#
# The desired content of every touched file is first assembled in a
# scratch directory; a file in src is rewritten only when its content
# differs, so unchanged files keep their mtimes and kbuild rebuilds only
# what really changed.  Files touched by an earlier run but no longer by
# this one are restored from pristine (or removed if pristine lacks them).
# The project's root Kconfig becomes Kconfig.iommufd_rs at the top of the
# tree, where patches/ source it from.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=$(KDIR)
pristine=$kdir/pristine src=$kdir/src
manifest=$src/.iommufd_rs-files
[ -f "$kdir/.unpacked" ] || die "no kernel source; run scripts/fetch-kernel.sh"

stage=$(mktemp -d "$CACHE/overlay.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# 1. Patches, applied to copies of just the files they touch.
if [ -f "$PROJECT/patches/series" ]; then
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		for f in $(grep -E '^\+\+\+ ' "$PROJECT/patches/$p" |
			   awk '{print $2}' | sed 's|^b/||'); do
			[ -e "$stage/$f" ] && continue
			mkdir -p "$stage/$(dirname "$f")"
			[ -f "$pristine/$f" ] && cp "$pristine/$f" "$stage/$f"
		done
		patch -s -p1 -d "$stage" --no-backup-if-mismatch \
			< "$PROJECT/patches/$p" ||
			die "patches/$p does not apply to $(kernel_pkg_version)"
	done < "$PROJECT/patches/series"
fi

# 2. The project's own files (they win over patches).
(cd "$PROJECT" && git ls-files -co --exclude-standard -- \
	drivers include rust tools Documentation kernel samples) |
while read -r f; do
	[ -f "$PROJECT/$f" ] || continue
	mkdir -p "$stage/$(dirname "$f")"
	cp "$PROJECT/$f" "$stage/$f"
done
cp "$PROJECT/Kconfig" "$stage/Kconfig.iommufd_rs"

# 3. Sync into src, touching only what differs.
(cd "$stage" && find . -type f | sed 's|^\./||' | sort) > "$stage.list"
changed=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$src/$f"; then
		mkdir -p "$src/$(dirname "$f")"
		cp "$stage/$f" "$src/$f"
		changed=$((changed + 1))
	fi
done < "$stage.list"
if [ -f "$manifest" ]; then
	comm -23 "$manifest" "$stage.list" | while read -r f; do
		if [ -f "$pristine/$f" ]; then
			cp "$pristine/$f" "$src/$f"  # new mtime: rebuild
		else
			rm -f "$src/$f"
		fi
	done
fi
mv "$stage.list" "$manifest"
log "overlay: $(wc -l < "$manifest") files laid over, $changed changed"
