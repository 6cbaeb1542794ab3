// SPDX-License-Identifier: GPL-2.0

//! The IOVA space of an I/O address space.
//!
//! An IOAS may map anything in the 64-bit IOVA space except the ranges it reserves (later: the
//! reserved regions of attached devices, such as an MSI window, and what `IOMMU_IOAS_ALLOW_IOVAS`
//! excludes). The usable ranges userspace sees are the holes between reserved ranges, computed by
//! [`Holes`], which is pure logic and tested with KUnit.

use kernel::prelude::*;

/// An inclusive range of IOVAs, `start..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IovaRange {
    /// The first IOVA of the range.
    pub(crate) start: u64,
    /// The last IOVA of the range (inclusive, so a range can end at `u64::MAX`).
    pub(crate) last: u64,
}

/// The IOVA bookkeeping of one IOAS.
pub(crate) struct IovaSpace {
    /// Ranges that may not be mapped, sorted by start; they may overlap or touch.
    reserved: KVec<IovaRange>,
    /// The alignment IOVAs chosen by the kernel will have.
    alignment: u64,
}

impl IovaSpace {
    /// An empty space: the whole 64-bit range is usable.
    pub(crate) fn new() -> Self {
        Self {
            reserved: KVec::new(),
            alignment: 1,
        }
    }

    /// The alignment of kernel-chosen IOVAs.
    pub(crate) fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The usable ranges, in ascending order.
    pub(crate) fn usable(&self) -> Holes<'_> {
        Holes::new(&self.reserved)
    }
}

/// Iterator over the gaps of `[0, u64::MAX]` not covered by a sorted list of ranges.
pub(crate) struct Holes<'a> {
    /// Ranges not yet passed, sorted by start.
    reserved: &'a [IovaRange],
    /// The lowest IOVA that may start the next hole, or `None` once `u64::MAX` is passed.
    next: Option<u64>,
}

impl<'a> Holes<'a> {
    /// Iterates the holes between `reserved`, which must be sorted by start.
    pub(crate) fn new(reserved: &'a [IovaRange]) -> Self {
        Self {
            reserved,
            next: Some(0),
        }
    }
}

impl Iterator for Holes<'_> {
    type Item = IovaRange;

    fn next(&mut self) -> Option<IovaRange> {
        loop {
            let start = self.next?;
            let Some((first, rest)) = self.reserved.split_first() else {
                self.next = None;
                return Some(IovaRange {
                    start,
                    last: u64::MAX,
                });
            };
            self.reserved = rest;
            // Past this reserved range; `None` when it reaches the end of the space.
            let after = first.last.checked_add(1);
            if first.start > start {
                self.next = after;
                return Some(IovaRange {
                    start,
                    last: first.start - 1,
                });
            }
            // Overlapping or touching: no hole before it.
            if first.last >= start {
                self.next = after;
            }
        }
    }
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_iova)]
mod tests {
    use super::*;

    /// Shorthand for a range.
    fn r(start: u64, last: u64) -> IovaRange {
        IovaRange { start, last }
    }

    /// Checks that the holes of `reserved` are exactly `want`.
    fn check(reserved: &[IovaRange], want: &[IovaRange]) -> Result {
        let mut got = KVec::new();
        for hole in Holes::new(reserved) {
            got.push(hole, GFP_KERNEL)?;
        }
        assert_eq!(&got[..], want);
        Ok(())
    }

    #[test]
    fn no_reserved() -> Result {
        check(&[], &[r(0, u64::MAX)])
    }

    #[test]
    fn one_in_the_middle() -> Result {
        check(&[r(0x1000, 0x1fff)], &[r(0, 0xfff), r(0x2000, u64::MAX)])
    }

    #[test]
    fn at_both_ends() -> Result {
        check(
            &[r(0, 0xfff), r(0xffff_0000, u64::MAX)],
            &[r(0x1000, 0xfffe_ffff)],
        )
    }

    #[test]
    fn overlapping_and_touching() -> Result {
        check(
            &[
                r(0x1000, 0x2fff),
                r(0x2000, 0x3fff),
                r(0x2500, 0x2600),
                r(0x4000, 0x4fff),
            ],
            &[r(0, 0xfff), r(0x5000, u64::MAX)],
        )
    }

    #[test]
    fn everything_reserved() -> Result {
        check(&[r(0, u64::MAX)], &[])?;
        check(&[r(0, 5), r(6, u64::MAX)], &[])
    }

    #[test]
    fn single_iova_holes() -> Result {
        check(&[r(1, u64::MAX - 1)], &[r(0, 0), r(u64::MAX, u64::MAX)])
    }

    #[test]
    fn empty_space() -> Result {
        let space = IovaSpace::new();
        assert_eq!(space.alignment(), 1);
        assert_eq!(space.usable().count(), 1);
        Ok(())
    }
}
