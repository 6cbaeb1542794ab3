#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the built kernel under virtme-ng (QEMU TCG: this machine's /dev/kvm
# cannot boot a kernel) on a q35 machine with an emulated IOMMU and the test
# devices, and run a command in it.
#
#   vm.sh <profile> <outdir> <guest command...>
#
# Profiles, one IOMMU each:
#   sc-on / sc-off  intel-iommu with snoop-control on / off: the IOMMU can /
#                   cannot block PCIe No-Snoop (ECAP.SC)
#   viommu          virtio-iommu-pci (classic map/unmap): cannot block
#                   No-Snoop and does not remap interrupts, so iommufd must
#                   be told to bind devices with unisolated MSIs
#   amd             amd-iommu (AMD-Vi, always forces snooping).  Linux 7.3
#                   turns its interrupt remapping off under QEMU's q35
#                   ("No southbridge IOAPIC found": the IVRS puts the
#                   IOAPIC at 00:14.0, where q35 has no SMBus or ISA
#                   bridge), so this profile needs allow_unsafe_interrupts
#                   too
# Devices: QEMU's edu (conventional PCI, has a DMA engine), an e1000e,
# two more edu sharing one IOMMU group, and an igb (SR-IOV: the guest makes
# a VF of it), each behind a PCIe root port and all behind the profile's
# IOMMU.  The kernel command line names that IOMMU as iommufd_rs.iommu=<vtd|virtio|amd>
# (ignored by the kernel): guest/lib.sh reads it, and the tests check that
# the IOMMU they find is that one.  <outdir> is mounted read-write in the
# guest at the same path; the guest writes its results there.  The console
# log goes to <outdir>/console.log.  The guest sees the host's / read-only,
# so host-built test programs run in place.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

profile=$1 out=$2; shift 2
# <profile>) iommu=<kind> device=<QEMU IOMMU device> params=<kernel params>
# The IOMMU comes first among the devices: QEMU gives a PCI device the
# IOMMU's address space only if the IOMMU exists when the device is made.
case "$profile" in
sc-on) iommu=vtd device=intel-iommu,intremap=on,snoop-control=on params=intel_iommu=on ;;
sc-off) iommu=vtd device=intel-iommu,intremap=on,snoop-control=off params=intel_iommu=on ;;
viommu) iommu=virtio device=virtio-iommu-pci params=iommufd.allow_unsafe_interrupts=1 ;;
amd) iommu=amd device=amd-iommu,intremap=on params=iommufd.allow_unsafe_interrupts=1 ;;
*) die "unknown profile $profile (sc-on, sc-off, viommu, amd)" ;;
esac
append="$params iommufd_rs.iommu=$iommu iommu.strict=1 no_timer_check"

kdir=$(KDIR)
build=${BUILD_DIR:-$kdir/build-rs}
[ -f "$build/arch/x86/boot/bzImage" ] || die "no kernel in $build; run make build"
mkdir -p "$out"

# no_timer_check (below): the kernel's early check that the timer interrupt
# arrives through the IO-APIC counts loops, and a TCG guest on a loaded host
# can fail it and panic ("timer doesn't work through Interrupt-remapped
# IO-APIC"); the emulated timer is known to work.
qemu_opts="-machine q35,kernel-irqchip=split"
qemu_opts+=" -device $device"
# The first edu sits behind a root port, not on the root bus: a device
# without a PCIe capability on the root bus counts as integrated in the
# root complex and so as able to issue No-Snoop, and the tests need one
# that cannot.  Its port comes first so that it keeps the lowest address
# of the edu functions, the one the tests use.
qemu_opts+=" -device pcie-root-port,id=rp0,chassis=3,slot=3"
qemu_opts+=" -device edu,bus=rp0,id=edu0"
qemu_opts+=" -device pcie-root-port,id=rp1,chassis=1,slot=1"
qemu_opts+=" -device e1000e,bus=rp1,id=nic0"
# Two more edu functions, as one multifunction device behind a root port:
# functions of a device without ACS share one IOMMU group (the
# multi-device group tests).  Their addresses sort after the first edu's,
# which stays the one the other tests use.  (Not two devices behind a
# PCIe-to-PCI bridge: the 7.3 guest's VIOT code gives virtio-iommu each
# device's own ID first, which QEMU does not know behind a bridge, and the
# failed PROBE makes the guest unregister the whole virtio-iommu.)
qemu_opts+=" -device pcie-root-port,id=rp2,chassis=2,slot=2"
qemu_opts+=" -device edu,bus=rp2,addr=0.0,multifunction=on,id=edu1"
qemu_opts+=" -device edu,bus=rp2,addr=0.1,id=edu2"
# An SR-IOV physical function (82576, up to 7 VFs): the No-Snoop probe must
# classify a VF, whose own Enable No Snoop bit is reserved, by its PF.
qemu_opts+=" -device pcie-root-port,id=rp4,chassis=4,slot=4"
qemu_opts+=" -device igb,bus=rp4,id=igb0"

cd "$kdir/src"
if [ "$*" = shell ]; then
	# Interactive: the console is the terminal.
	exec env KBUILD_OUTPUT="$build" vng --disable-kvm --cpus 2 --memory 2G \
		--append "$append ${VM_APPEND:-}" \
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
	--append "$append kmemleak=on ${VM_APPEND:-}" \
	--rwdir "$out" \
	--qemu-opts="$qemu_opts" \
	--exec "bash $out/vm-command" < /dev/null 2>&1 | cat > "$out/console.log"
rc=${PIPESTATUS[0]}
exit "$rc"
