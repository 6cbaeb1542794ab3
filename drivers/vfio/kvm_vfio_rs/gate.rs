// SPDX-License-Identifier: GPL-2.0

//! The gate: what KVM is told about one VM's non-coherent DMA, and when.
//!
//! Every file added to a VM's KVM-VFIO device has a [`Contribution`] to its VM's [`Gate`]: a flag
//! saying whether the gate counts the file as doing non-coherent DMA now. The gate tells KVM
//! only on the edges of the sum, when the VM goes from "no file contributes" to "some file does"
//! and back (or userspace forces real flushes off or on again), because each call makes KVM
//! rebuild the VM's page tables.
//!
//! The flags of all files and the sum they make are changed together under the gate's one lock:
//! a flag is a `LockedBy` that lock, so the sum cannot drift from the flags. The rules live in
//! [`GateState`], which knows nothing of KVM and is tested by KUnit.

use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        LockedBy,
        Mutex, //
    },
};

use crate::hooks::Kvm;

/// What KVM is told about one VM, and the counts it follows from.
#[derive(Clone, Copy)]
pub(crate) struct GateState {
    /// How many added files contribute non-coherent DMA now.
    pub(crate) contributing: u32,
    /// Whether KVM was told the VM has non-coherent DMA.
    pub(crate) registered: bool,
    /// Whether userspace forced real flushes off (`KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE`).
    pub(crate) force_disabled: bool,
    /// How many times KVM was told the VM gained non-coherent DMA.
    pub(crate) register_edges: u64,
    /// How many times KVM was told it lost it.
    pub(crate) unregister_edges: u64,
}

impl GateState {
    /// No file, nothing told to KVM.
    fn new() -> Self {
        Self {
            contributing: 0,
            registered: false,
            force_disabled: false,
            register_edges: 0,
            unregister_edges: 0,
        }
    }

    /// Records that the file whose flag is `counted` contributes (`now`) or not, and returns
    /// the call KVM then needs, if any (see [`GateState::edge`]).
    fn count(&mut self, counted: &LockedBy<bool, GateState>, now: bool) -> Option<bool> {
        let was = core::mem::replace(counted.access_mut(self), now);
        match (was, now) {
            (false, true) => self.contributing += 1,
            // The flag was set, so this file is in the sum, which is at least 1.
            (true, false) => self.contributing -= 1,
            _ => {}
        }
        self.edge()
    }

    /// Records userspace's `KVM_DEV_VFIO_COHERENCY_FORCE_DISABLE`, and returns the call KVM then
    /// needs, if any.
    fn force_disable(&mut self, on: bool) -> Option<bool> {
        self.force_disabled = on;
        self.edge()
    }

    /// The call that brings KVM in line with the state, recorded as made: `Some(true)` to
    /// register non-coherent DMA, `Some(false)` to unregister it, `None` when KVM already
    /// agrees. KVM should see non-coherent DMA exactly while some file contributes and
    /// userspace did not force flushes off.
    fn edge(&mut self) -> Option<bool> {
        let want = self.contributing > 0 && !self.force_disabled;
        if want == self.registered {
            return None;
        }
        self.registered = want;
        if want {
            self.register_edges += 1;
        } else {
            self.unregister_edges += 1;
        }
        Some(want)
    }
}

/// Decides, for one VM, whether KVM treats it as having non-coherent DMA.
#[pin_data]
pub(crate) struct Gate {
    /// The VM.
    kvm: Kvm,
    /// The decision and its inputs; every [`Contribution`] of this gate is locked by it.
    #[pin]
    state: Mutex<GateState>,
}

impl Gate {
    /// The gate of the VM `kvm`, with no file yet.
    pub(crate) fn new(kvm: Kvm) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                kvm,
                state <- new_mutex!(GateState::new(), "Gate::state"),
            }),
            GFP_KERNEL,
        )
    }

    /// The VM.
    pub(crate) fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// A copy of the state, for userspace to read.
    pub(crate) fn status(&self) -> GateState {
        *self.state.lock()
    }

    /// Sets or clears userspace's force-disable, telling KVM if that makes an edge.
    pub(crate) fn force_disable(&self, on: bool) {
        self.decide(|state| state.force_disable(on));
    }

    /// Runs `change` on the state and makes the KVM call it returns, both under the lock, so
    /// that KVM sees the edges in the order they were decided.
    fn decide(&self, change: impl FnOnce(&mut GateState) -> Option<bool>) {
        let mut state = self.state.lock();
        if let Some(on) = change(&mut state) {
            self.kvm.set_noncoherent(on);
        }
    }
}

/// One added file's place in its VM's gate: whether the gate counts the file as contributing.
///
/// The flag can only be reached through the gate it was made for (the pair is fixed at
/// [`Contribution::new`]), so the owner check of `LockedBy` always passes.
pub(crate) struct Contribution {
    /// The gate of the VM the file was added to.
    gate: Arc<Gate>,
    /// Whether `gate` counts the file; changed only with `gate.state` held.
    counted: LockedBy<bool, GateState>,
}

impl Contribution {
    /// A file of `gate`'s VM that the gate does not count yet.
    pub(crate) fn new(gate: &Arc<Gate>) -> Self {
        Self {
            counted: LockedBy::new(&gate.state, false),
            gate: gate.clone(),
        }
    }

    /// The gate.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Counts the file as `now()` says, telling KVM of an edge. `now` runs under the gate's
    /// lock, so that concurrent updates apply their answers in the order they read them.
    pub(crate) fn update(&self, now: impl FnOnce() -> bool) {
        self.gate.decide(|state| state.count(&self.counted, now()));
    }

    /// Stops counting the file (it is being removed), telling KVM of an edge.
    pub(crate) fn withdraw(&self) {
        self.gate.decide(|state| state.count(&self.counted, false));
    }

    /// Whether the gate counts the file now.
    pub(crate) fn counted(&self) -> bool {
        *self.counted.access(&self.gate.state.lock())
    }
}

#[cfg(CONFIG_KVM_VFIO_RS_KUNIT_TEST)]
#[kunit_tests(kvm_vfio_rs_gate)]
mod tests {
    use super::*;

    /// A gate's state and `N` files of its VM, without the VM.
    struct Fake<const N: usize> {
        /// The state, locked as in a [`Gate`].
        state: Pin<KBox<Mutex<GateState>>>,
        /// The files' flags, locked by `state`.
        files: [LockedBy<bool, GateState>; N],
    }

    impl<const N: usize> Fake<N> {
        /// No file counted, nothing told to KVM.
        fn new() -> Result<Self> {
            let state = KBox::pin_init(new_mutex!(GateState::new()), GFP_KERNEL)?;
            let files = core::array::from_fn(|_| LockedBy::new(&state, false));
            Ok(Self { state, files })
        }

        /// Reports file `i` as contributing (`now`) or not; returns the KVM call made.
        fn report(&self, i: usize, now: bool) -> Option<bool> {
            self.state.lock().count(&self.files[i], now)
        }

        /// Sets or clears force-disable; returns the KVM call made.
        fn force(&self, on: bool) -> Option<bool> {
            self.state.lock().force_disable(on)
        }

        /// `(contributing, registered, register_edges, unregister_edges)`.
        fn sums(&self) -> (u32, bool, u64, u64) {
            let s = self.state.lock();
            (
                s.contributing,
                s.registered,
                s.register_edges,
                s.unregister_edges,
            )
        }
    }

    #[test]
    fn first_contributor_registers_and_last_unregisters() -> Result {
        let g = Fake::<1>::new()?;
        assert_eq!(g.report(0, true), Some(true));
        assert_eq!(g.sums(), (1, true, 1, 0));
        assert_eq!(g.report(0, false), Some(false));
        assert_eq!(g.sums(), (0, false, 1, 1));
        Ok(())
    }

    #[test]
    fn repeated_reports_make_no_edge() -> Result {
        let g = Fake::<1>::new()?;
        assert_eq!(g.report(0, false), None);
        assert_eq!(g.report(0, true), Some(true));
        assert_eq!(g.report(0, true), None);
        assert_eq!(g.sums(), (1, true, 1, 0));
        Ok(())
    }

    #[test]
    fn more_contributors_make_no_edge() -> Result {
        let g = Fake::<3>::new()?;
        assert_eq!(g.report(0, true), Some(true));
        assert_eq!(g.report(1, true), None);
        assert_eq!(g.report(2, true), None);
        assert_eq!(g.sums(), (3, true, 1, 0));
        assert_eq!(g.report(1, false), None);
        assert_eq!(g.report(0, false), None);
        assert_eq!(g.report(2, false), Some(false));
        assert_eq!(g.sums(), (0, false, 1, 1));
        Ok(())
    }

    #[test]
    fn handover_between_files_makes_no_edge() -> Result {
        // A device moving from one file's page table to another's: the new one reports first.
        let g = Fake::<2>::new()?;
        assert_eq!(g.report(0, true), Some(true));
        assert_eq!(g.report(1, true), None);
        assert_eq!(g.report(0, false), None);
        assert_eq!(g.sums(), (1, true, 1, 0));
        Ok(())
    }

    #[test]
    fn force_disable_unregisters_and_holds() -> Result {
        let g = Fake::<2>::new()?;
        assert_eq!(g.report(0, true), Some(true));
        assert_eq!(g.force(true), Some(false));
        // Contributions are still counted, but KVM hears nothing.
        assert_eq!(g.report(1, true), None);
        assert_eq!(g.report(0, false), None);
        assert_eq!(g.sums(), (1, false, 1, 1));
        // Following the files again registers for the one left.
        assert_eq!(g.force(false), Some(true));
        assert_eq!(g.sums(), (1, true, 2, 1));
        Ok(())
    }

    #[test]
    fn force_disable_without_contributors_makes_no_edge() -> Result {
        let g = Fake::<1>::new()?;
        assert_eq!(g.force(true), None);
        assert_eq!(g.force(false), None);
        assert_eq!(g.force(false), None);
        assert_eq!(g.sums(), (0, false, 0, 0));
        Ok(())
    }
}
