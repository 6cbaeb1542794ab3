# SPDX-License-Identifier: GPL-2.0
#
# Shared settings for the iommufd-rs scripts.  Sourced, not run.
#
# Everything that is built or downloaded lives in $CACHE, outside the
# clone, keyed by kernel version and configuration, so a fresh clone on a
# machine that has built before is fast and a fresh machine still works.

PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# CI may run with a minimal environment.
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
CACHE=${IOMMUFD_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommufd-rs}
VENV=$CACHE/venv
export PATH="$HOME/.cargo/bin:$VENV/bin:$PATH"

log() { printf '[iommufd-rs] %s\n' "$*" >&2; }
die() { printf '[iommufd-rs] error: %s\n' "$*" >&2; exit 1; }

# The one place the kernel source is pinned: Debian's linux-source-7.3
# package from trixie-backports.  If this exact version has left the
# mirror, fetch-kernel.sh falls back to the newest 7.3.x with a warning.
# (IOMMUFD_RS_LINUX_VERSION overrides the pin, e.g. to test that path.)
LINUX_SOURCE_PKG=linux-source-7.3
LINUX_SOURCE_VERSION=${IOMMUFD_RS_LINUX_VERSION:-7.3.4-1~bpo13+1}

# The version actually in use (written by fetch-kernel.sh).
kernel_pkg_version() {
	cat "$CACHE/kernel-version" 2>/dev/null || echo "$LINUX_SOURCE_VERSION"
}
KDIR() { echo "$CACHE/linux-$(kernel_pkg_version | tr '~+' '__')"; }
