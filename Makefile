# SPDX-License-Identifier: GPL-2.0
#
# iommufd-rs developer entry points.  Everything is installed and built on
# demand; build outputs live in $(IOMMUFD_RS_CACHE), by default
# ~/.cache/iommufd-rs, never in this tree.

S := scripts
SHELL := /bin/bash

.PHONY: run check check-builtin test vmtest fuzz bench build build-c shell setup help

help:
	@echo "make run    - build the kernel with the Rust iommufd and boot the demo VM"
	@echo "make check  - build and run every test (kselftests, KUnit, static checks)"
	@echo "make test   - the quick loop: build, VM tests in one profile, no static checks or kmemleak"
	@echo "make check-builtin - the KVM-VFIO test on a kernel with KVM, VFIO and iommufd built in"
	@echo "make vmtest T='iommufd_edu ...' [PROFILE=sc-on] - build, run only those kselftests"
	@echo "make fuzz [FUZZ_CALLS=1000000 FUZZ_SEED=1] [PROFILE=sc-on] - a long ioctl fuzzer run"
	@echo "make build  - only build (kernel, modules, headers, kselftests)"
	@echo "make bench  - map/unmap benchmark on the Rust and on the upstream C iommufd"
	@echo "make shell  - boot the test VM (snoop-control=on) with an interactive shell"
	@echo "make setup  - only install host packages and fetch the kernel source"

setup:
	$(S)/setup-host.sh
	$(S)/fetch-kernel.sh

build:
	$(S)/build.sh rs

build-c:
	$(S)/build.sh c

RUNDIR = $${TMPDIR:-/tmp}/iommufd-rs-run

run: build
	RUNDIR=$(RUNDIR) $(S)/run.sh

vmtest: build
	rm -rf $(RUNDIR)/vmtest
	$(S)/vm.sh $${PROFILE:-sc-on} $(RUNDIR)/vmtest \
		$(CURDIR)/$(S)/guest/select.sh $(RUNDIR)/vmtest \
		$$(. $(S)/lib.sh && KDIR)/build-rs/kselftest $(T)
	@grep -E '^(not )?ok|^# (PASSED|FAILED|Totals)' $(RUNDIR)/vmtest/*.tap

# The ioctl fuzzer alone, for longer than in make check: FUZZ_CALLS calls
# from FUZZ_SEED.  The same seed and count replay the same calls.
FUZZ_CALLS ?= 1000000
FUZZ_SEED ?= 1

fuzz: build
	rm -rf $(RUNDIR)/fuzz
	VM_TIMEOUT=$${VM_TIMEOUT:-14400} $(S)/vm.sh $${PROFILE:-sc-on} \
		$(RUNDIR)/fuzz env SELECT_TIMEOUT=$${FUZZ_TIMEOUT:-14000} \
		$(CURDIR)/$(S)/guest/select.sh $(RUNDIR)/fuzz \
		$$(. $(S)/lib.sh && KDIR)/build-rs/kselftest \
		"iommufd_fuzz -s $(FUZZ_SEED) -n $(FUZZ_CALLS)"
	@$(S)/judge.py $(RUNDIR)/fuzz fuzz quick | \
		grep -E ' (iommufd_fuzz|kernel log clean)' | \
		tee $(RUNDIR)/fuzz/verdict.txt
	@! grep -q '^FAIL' $(RUNDIR)/fuzz/verdict.txt

shell: build
	$(S)/vm.sh $${PROFILE:-sc-on} $(RUNDIR) shell

check:
	$(S)/check.sh

check-builtin:
	$(S)/check-builtin.sh

bench:
	$(S)/bench.sh

test:
	STATIC=0 QUICK=1 PROFILES=$${PROFILES:-sc-on} $(S)/check.sh
