// SPDX-License-Identifier: GPL-2.0

//! IOVA ranges and the arithmetic on sorted lists of them: the holes between reserved ranges,
//! the allowed ranges seen through a window, and where a mapping of a given length and
//! alignment fits. Pure functions and iterators, tested with KUnit in [`crate::io_pagetable`].

use kernel::prelude::*;

/// An inclusive range of IOVAs, `start..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IovaRange {
    /// The first IOVA of the range.
    pub(crate) start: u64,
    /// The last IOVA of the range (inclusive, so a range can end at `u64::MAX`).
    pub(crate) last: u64,
}

impl IovaRange {
    /// The range `[start, start + length)`; `EOVERFLOW` if it wraps, `EINVAL` if it is empty.
    pub(crate) fn from_length(start: u64, length: u64) -> Result<Self> {
        let last = length
            .checked_sub(1)
            .ok_or(EINVAL)
            .and_then(|len| start.checked_add(len).ok_or(EOVERFLOW))?;
        Ok(Self { start, last })
    }

    /// Whether the two ranges share an IOVA.
    pub(crate) fn overlaps(&self, other: &IovaRange) -> bool {
        self.start <= other.last && other.start <= self.last
    }
}

/// Inserts `range` into `ranges`, which is sorted by start and has room for it (a handful of
/// elements: the reserved regions of a few devices and two aperture edges per domain).
pub(crate) fn insert_sorted(ranges: &mut KVec<IovaRange>, range: IovaRange) {
    let at = ranges
        .iter()
        .position(|r| r.start > range.start)
        .unwrap_or(ranges.len());
    // The caller reserved the room, so this cannot fail.
    let _ = ranges.insert_within_capacity(at, range);
}

/// Whether `length` bytes fit in `[*start, last]` once `*start` is rounded up to `align` and
/// given `page_offset`; if so, `*start` becomes the IOVA to use.
pub(crate) fn fits(start: &mut u64, last: u64, length: u64, align: u64, page_offset: u64) -> bool {
    let Some(up) = start.checked_add(align - 1) else {
        return false;
    };
    let aligned = (up & !(align - 1)) | page_offset;
    if aligned >= last || last - aligned < length - 1 {
        return false;
    }
    *start = aligned;
    true
}

/// Iterator over the allowed ranges clipped to a window, with touching ranges merged; the whole
/// window if there are none.
pub(crate) struct AllowedSpans<'a> {
    /// Allowed ranges not yet visited, sorted.
    allowed: &'a [IovaRange],
    /// The window.
    window: IovaRange,
    /// Whether the whole window was returned (only when there are no allowed ranges).
    done: bool,
}

impl<'a> AllowedSpans<'a> {
    /// Iterates `allowed` (sorted, not overlapping) within `window`.
    pub(crate) fn new(allowed: &'a [IovaRange], window: IovaRange) -> Self {
        Self {
            allowed,
            window,
            done: false,
        }
    }
}

impl Iterator for AllowedSpans<'_> {
    type Item = IovaRange;

    fn next(&mut self) -> Option<IovaRange> {
        if self.done {
            return None;
        }
        if self.allowed.is_empty() {
            self.done = true;
            return Some(self.window);
        }
        loop {
            let (first, rest) = self.allowed.split_first()?;
            self.allowed = rest;
            let mut span = *first;
            // Merge ranges that touch.
            while let Some((next, rest)) = self.allowed.split_first() {
                if span.last.checked_add(1) != Some(next.start) {
                    break;
                }
                span.last = next.last;
                self.allowed = rest;
            }
            if self.allowed.is_empty() {
                // Nothing was returned for an empty list; never return the window afterwards.
                self.done = true;
            }
            let clipped = IovaRange {
                start: span.start.max(self.window.start),
                last: span.last.min(self.window.last),
            };
            if clipped.start <= clipped.last {
                return Some(clipped);
            }
            if self.done {
                return None;
            }
        }
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

/// Sorts `ranges` by their first IOVA, in place, in O(n log n) and without allocating
/// (heapsort: the core library's sorts bring code paths objtool cannot follow).
pub(crate) fn sort_by_start(ranges: &mut [IovaRange]) {
    let n = ranges.len();
    // Build a max-heap, then move its top behind the shrinking heap.
    for root in (0..n / 2).rev() {
        sift_down(ranges, root, n);
    }
    for end in (1..n).rev() {
        ranges.swap(0, end);
        sift_down(ranges, 0, end);
    }
}

/// Restores the max-heap order of `heap[..end]` below `root`.
fn sift_down(heap: &mut [IovaRange], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && heap[child + 1].start > heap[child].start {
            child += 1;
        }
        if heap[root].start >= heap[child].start {
            return;
        }
        heap.swap(root, child);
        root = child;
    }
}
