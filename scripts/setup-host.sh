#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything a fresh Debian 12 machine needs to build and test
# iommufd-rs: kernel build dependencies, libclang 19, QEMU from
# bookworm-backports, rust-src, bindgen-cli and virtme-ng.  Idempotent: a
# machine that already has everything is left alone in about a second.
#
# The newer suites (trixie, trixie-backports, sid) are added only so that
# `apt-get download linux-source-7.3` works; they are pinned to priority 1
# so that no binary package from them can ever be installed here.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PKGS=(build-essential flex bison bc libelf-dev libssl-dev dwarves cpio
	  kmod rsync libclang-19-dev pciutils busybox-static e2fsprogs
	  libcap-dev udev xz-utils patch python3-venv)
BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42

need_sudo() { [ "$(id -u)" = 0 ] || die "run as root (apt-get is needed)"; }

# The Debian mirror this machine already uses, read from its apt config.
debian_mirror() {
	local uri
	uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list 2>/dev/null |
	      grep -v -e security -e '^#' |
	      grep -oE 'https?://[^ ]+/debian/?' | head -n1)
	[ -n "$uri" ] || die "cannot find the Debian mirror in /etc/apt"
	echo "${uri%/}"
}

setup_apt_sources() {
	local src=/etc/apt/sources.list.d/iommufd-rs.sources
	local pin=/etc/apt/preferences.d/iommufd-rs-pin
	[ -f "$src" ] && [ -f "$pin" ] && return 0
	need_sudo
	log "adding bookworm-backports and download-only trixie/sid suites"
	cat > "$src" <<EOS
Types: deb
URIs: $(debian_mirror)
Suites: bookworm-backports trixie trixie-backports sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
	: > "$pin"
	for s in trixie trixie-backports sid; do
		printf 'Package: *\nPin: release n=%s\nPin-Priority: 1\n\n' "$s" >> "$pin"
	done
	rm -f "$CACHE/.apt-updated"
}

apt_update_once() {
	# Refresh package lists at most once a day.
	if [ -z "$(find "$CACHE/.apt-updated" -mtime -1 2>/dev/null)" ]; then
		apt-get update -qq
		touch "$CACHE/.apt-updated"
	fi
}

install_packages() {
	local missing=() p
	for p in "${APT_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	if ! command -v qemu-system-x86_64 >/dev/null; then
		need_sudo; apt_update_once
		log "installing qemu-system-x86 from bookworm-backports"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends -t bookworm-backports \
			qemu-system-x86 >/dev/null
	fi
	[ ${#missing[@]} -eq 0 ] && return 0
	need_sudo; apt_update_once
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

install_rust_tools() {
	command -v rustc >/dev/null || die "rustc not found (rustup is expected)"
	if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
		log "adding rustup component rust-src"
		rustup component add rust-src
	fi
	if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
		log "cargo install bindgen-cli $BINDGEN_VERSION (about a minute)"
		cargo install --quiet --locked bindgen-cli --version "$BINDGEN_VERSION"
	fi
}

install_virtme_ng() {
	[ -x "$VENV/bin/vng" ] && "$VENV/bin/vng" --version 2>/dev/null |
		grep -q "$VIRTME_NG_VERSION" && return 0
	log "installing virtme-ng $VIRTME_NG_VERSION into $VENV"
	rm -rf "$VENV"
	/usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION"
}

mkdir -p "$CACHE"
setup_apt_sources
install_packages
install_rust_tools
install_virtme_ng
log "host ready"
