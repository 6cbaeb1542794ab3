// SPDX-License-Identifier: GPL-2.0

//! The coherency model: which I/O page tables force device DMA to snoop CPU caches, which
//! devices may attach to them, and when a device does non-coherent DMA.
//!
//! A device can do non-coherent DMA (PCIe No-Snoop) unless its IOMMU forces snooping for the
//! page table it is attached to. For one device on one page table (the 2x2 matrix of the
//! design):
//!
//! | page table enforces? \ device can No-Snoop? | yes            | no       |
//! |---------------------------------------------|----------------|----------|
//! | yes                                         | 1: coherent    | 2: coherent |
//! | no                                          | 3: non-coherent | 4: coherent |
//!
//! An IOAS or HWPT has a [`Mode`]: `Auto` makes an HWPT enforce exactly when the device's IOMMU
//! can (upstream's behaviour); `Coherent` refuses box 3; `NonCoherent` never enforces, turning
//! box 1 into box 3 on purpose. The rules are pure functions, tested with KUnit.

use kernel::prelude::*;

/// The coherency mode of an IOAS or HWPT, fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Enforce where the IOMMU can.
    Auto,
    /// Never let a device do non-coherent DMA.
    Coherent,
    /// Never enforce.
    NonCoherent,
}

/// The flag bit asking for [`Mode::Coherent`], the same in `IOMMU_IOAS_ALLOC` and
/// `IOMMU_HWPT_ALLOC`.
pub(crate) const FLAG_COHERENT: u32 = 1 << 31;
/// The flag bit asking for [`Mode::NonCoherent`].
pub(crate) const FLAG_NONCOHERENT: u32 = 1 << 30;
/// Both coherency flags.
pub(crate) const FLAGS: u32 = FLAG_COHERENT | FLAG_NONCOHERENT;

const _: () = {
    assert!(FLAG_COHERENT == kernel::uapi::iommufd_ioas_alloc_flags_IOMMU_IOAS_ALLOC_COHERENT);
    assert!(
        FLAG_NONCOHERENT == kernel::uapi::iommufd_ioas_alloc_flags_IOMMU_IOAS_ALLOC_NONCOHERENT
    );
    assert!(FLAG_COHERENT == kernel::uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_COHERENT);
    assert!(
        FLAG_NONCOHERENT == kernel::uapi::iommufd_hwpt_alloc_flags_IOMMU_HWPT_ALLOC_NONCOHERENT
    );
};

impl Mode {
    /// The mode the coherency bits of `flags` ask for; `default` if none. `EINVAL` for both.
    pub(crate) fn from_flags(flags: u32, default: Mode) -> Result<Mode> {
        match (flags & FLAG_COHERENT != 0, flags & FLAG_NONCOHERENT != 0) {
            (false, false) => Ok(default),
            (true, false) => Ok(Mode::Coherent),
            (false, true) => Ok(Mode::NonCoherent),
            (true, true) => Err(EINVAL),
        }
    }

    /// Whether an HWPT in this mode, made for a device whose IOMMU can (`iommu_can`) or cannot
    /// force snooping and that can (`no_snoop`) or cannot issue No-Snoop, must enforce
    /// coherency. `EINVAL` if no HWPT in this mode can take the device: a coherent mode for a
    /// device that would do non-coherent DMA.
    pub(crate) fn enforce(self, iommu_can: bool, no_snoop: bool) -> Result<bool> {
        match self {
            Mode::Auto => Ok(iommu_can),
            Mode::NonCoherent => Ok(false),
            Mode::Coherent if iommu_can => Ok(true),
            // Nothing to enforce for a device that cannot bypass the caches anyway.
            Mode::Coherent if !no_snoop => Ok(false),
            Mode::Coherent => Err(EINVAL),
        }
    }

    /// Whether a device that can (`no_snoop`) or cannot issue No-Snoop may attach to an
    /// existing HWPT in this mode that does (`enforcing`) or does not enforce coherency. The
    /// IOMMU driver separately refuses an enforcing HWPT for a device whose IOMMU cannot
    /// enforce.
    pub(crate) fn admits(self, enforcing: bool, no_snoop: bool) -> bool {
        self != Mode::Coherent || enforcing || !no_snoop
    }

    /// Whether an automatic HWPT in this mode that does (`enforcing`) or does not enforce is
    /// what the mode would make for a device whose IOMMU can (`iommu_can`) or cannot enforce,
    /// so that the device may share it. Keeps `Auto` enforcing wherever the IOMMU can.
    pub(crate) fn auto_fits(self, enforcing: bool, iommu_can: bool, no_snoop: bool) -> bool {
        match self.enforce(iommu_can, no_snoop) {
            Ok(want) => want == enforcing,
            Err(_) => false,
        }
    }
}

/// What a device brings to the coherency rules.
#[derive(Clone, Copy)]
pub(crate) struct DevCaps {
    /// Whether its IOMMU can force its DMA to snoop CPU caches.
    pub(crate) iommu_can_enforce: bool,
    /// Whether it can issue No-Snoop DMA.
    pub(crate) no_snoop: bool,
}

/// Whether a device does non-coherent DMA: it can issue No-Snoop and is attached to an HWPT
/// that does not enforce coherency (box 3).
pub(crate) fn noncoherent_dma(attached_to_enforcing: Option<bool>, no_snoop: bool) -> bool {
    attached_to_enforcing == Some(false) && no_snoop
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_coherency)]
mod tests {
    use super::*;

    #[test]
    fn flags_pick_the_mode() {
        assert_eq!(Mode::from_flags(0, Mode::Auto), Ok(Mode::Auto));
        assert_eq!(
            Mode::from_flags(0, Mode::NonCoherent),
            Ok(Mode::NonCoherent)
        );
        assert_eq!(
            Mode::from_flags(FLAG_COHERENT, Mode::Auto),
            Ok(Mode::Coherent)
        );
        assert_eq!(
            Mode::from_flags(FLAG_NONCOHERENT | 1, Mode::Coherent),
            Ok(Mode::NonCoherent)
        );
        assert_eq!(Mode::from_flags(FLAGS, Mode::Auto), Err(EINVAL));
    }

    /// The 2x2 matrix, for each mode: (IOMMU can enforce, device can No-Snoop) ->
    /// what the HWPT made for the device does, and whether the device then does non-coherent
    /// DMA.
    #[test]
    fn the_matrix() {
        // Box 1: IOMMU can, device can.
        assert_eq!(Mode::Auto.enforce(true, true), Ok(true));
        assert_eq!(Mode::Coherent.enforce(true, true), Ok(true));
        assert_eq!(Mode::NonCoherent.enforce(true, true), Ok(false));
        // Box 2: IOMMU can, device cannot.
        assert_eq!(Mode::Auto.enforce(true, false), Ok(true));
        assert_eq!(Mode::Coherent.enforce(true, false), Ok(true));
        assert_eq!(Mode::NonCoherent.enforce(true, false), Ok(false));
        // Box 3: IOMMU cannot, device can: a coherent mode refuses it.
        assert_eq!(Mode::Auto.enforce(false, true), Ok(false));
        assert_eq!(Mode::Coherent.enforce(false, true), Err(EINVAL));
        assert_eq!(Mode::NonCoherent.enforce(false, true), Ok(false));
        // Box 4: neither.
        assert_eq!(Mode::Auto.enforce(false, false), Ok(false));
        assert_eq!(Mode::Coherent.enforce(false, false), Ok(false));
        assert_eq!(Mode::NonCoherent.enforce(false, false), Ok(false));

        assert!(noncoherent_dma(Some(false), true));
        assert!(!noncoherent_dma(Some(true), true));
        assert!(!noncoherent_dma(Some(false), false));
        assert!(!noncoherent_dma(None, true));
    }

    #[test]
    fn attaching_to_existing_hwpts() {
        // A coherent HWPT that could not enforce takes only devices without No-Snoop.
        assert!(Mode::Coherent.admits(false, false));
        assert!(!Mode::Coherent.admits(false, true));
        assert!(Mode::Coherent.admits(true, true));
        assert!(Mode::NonCoherent.admits(false, true));
        assert!(Mode::Auto.admits(false, true));
        // Auto HWPTs are shared only between devices that would get the same one.
        assert!(Mode::Auto.auto_fits(true, true, false));
        assert!(!Mode::Auto.auto_fits(false, true, false));
        assert!(Mode::Auto.auto_fits(false, false, true));
        assert!(!Mode::Coherent.auto_fits(false, false, true));
        assert!(Mode::NonCoherent.auto_fits(false, true, true));
    }
}
