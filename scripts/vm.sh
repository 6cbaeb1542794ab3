#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the built kernel under virtme-ng (QEMU TCG: this machine's /dev/kvm
# cannot boot a kernel) on a q35 machine with an emulated Intel IOMMU and
# the test devices, and run a command in it.
#
#   vm.sh <profile> <outdir> <guest command...>
#
# Profiles: sc-on / sc-off = intel-iommu with snoop-control on / off (the
# IOMMU can / cannot block PCIe No-Snoop, ECAP.SC).  Devices: QEMU's edu
# (conventional PCI, has a DMA engine) and an e1000e behind a PCIe root
# port.  <outdir> is mounted read-write in the guest at the same path; the
# guest writes its results there.  The console log goes to
# <outdir>/console.log.  The guest sees the host's / read-only, so host-built
# test programs run in place.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

profile=$1 out=$2; shift 2
case "$profile" in
sc-on) sc=on ;;
sc-off) sc=off ;;
*) die "unknown profile $profile (sc-on, sc-off)" ;;
esac

kdir=$(KDIR)
build=${BUILD_DIR:-$kdir/build-rs}
[ -f "$build/arch/x86/boot/bzImage" ] || die "no kernel in $build; run make build"
mkdir -p "$out"

# no_timer_check (below): the kernel's early check that the timer interrupt
# arrives through the IO-APIC counts loops, and a TCG guest on a loaded host
# can fail it and panic ("timer doesn't work through Interrupt-remapped
# IO-APIC"); the emulated timer is known to work.
qemu_opts="-machine q35,kernel-irqchip=split"
qemu_opts+=" -device intel-iommu,intremap=on,snoop-control=$sc"
qemu_opts+=" -device edu,id=edu0"
qemu_opts+=" -device pcie-root-port,id=rp1,chassis=1,slot=1"
qemu_opts+=" -device e1000e,bus=rp1,id=nic0"

cd "$kdir/src"
if [ "$*" = shell ]; then
	# Interactive: the console is the terminal.
	exec env KBUILD_OUTPUT="$build" vng --disable-kvm --cpus 2 --memory 2G \
		--append "intel_iommu=on iommu.strict=1 no_timer_check ${VM_APPEND:-}" \
		--rwdir "$out" --qemu-opts="$qemu_opts"
fi
# A hung guest must not hang make check: TCG boots in ~10 s, the tests
# take well under the limit.
# Not --foreground: on expiry timeout must signal its whole process group,
# QEMU included, or QEMU lives on and holds the console pipe open forever.
# The command goes in a file: virtme-ng passes it on the kernel command line,
# which is limited to 2 KiB and already long (a long command there pushes
# the root file system's parameters off its end).
printf '%q ' "$@" > "$out/vm-command"
KBUILD_OUTPUT=$build timeout -k 10 "${VM_TIMEOUT:-900}" \
	vng --disable-kvm --cpus 2 --memory 2G --verbose \
	--append "intel_iommu=on iommu.strict=1 no_timer_check kmemleak=on ${VM_APPEND:-}" \
	--rwdir "$out" \
	--qemu-opts="$qemu_opts" \
	--exec "bash $out/vm-command" < /dev/null 2>&1 | cat > "$out/console.log"
rc=${PIPESTATUS[0]}
exit "$rc"
