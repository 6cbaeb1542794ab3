#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge the results one test VM boot wrote (see guest/check.sh).

Usage: judge.py <outdir> <label> [quick]

"quick" runs (make test) skip kmemleak, so its two steps and its verdict
are not expected.

Prints one line per test, "PASS <label> <name>" or "FAIL <label> <name>: why",
and exits 0.  What counts as a test:
  - each step of guest/check.sh (steps.tap);
  - each case of each kselftest program (harness TAP); a SKIP is a failure,
    because the test VM is built to have everything the tests need;
  - each KUnit case of the suites we require (from dmesg); a required suite
    that did not run is a failure;
  - "kernel log clean": no WARN, BUG, oops, lockdep, RCU or KFENCE report;
  - "no kmemleak reports" after the module was unloaded.
"""

import os
import re
import sys

# KUnit suites that must run in every boot, and cases that must exist in them.
REQUIRED_SUITES = {
    "iommufd_rs_ioctl": None,
    "iommufd_rs_iova": None,
    "iommufd_rs_object": None,
    "iommufd_rs_coherency": None,
    "kvm_vfio_rs_gate": None,
    # The No-Snoop classification (rust/kernel/iommu/domain.rs), built in.
    "rust_kernel_iommu_no_snoop": None,
    # The kernel crate's doctests, ours included (the XArray reservation,
    # the notifier chain).
    "rust_doctests_kernel": re.compile(r"xarray|notifier"),
}
KSELFTESTS = ["iommufd", "iommufd_ioas", "iommufd_fail_nth", "iommufd_device",
              "iommufd_edu", "iommufd_coherency", "iommufd_kvm_vfio",
              "kvm_vcpu", "iommufd_hw_caps", "iommufd_races",
              "iommufd_group", "iommufd_fuzz"]
# guest/check.sh records this many steps when it runs to the end (in every
# profile: the one that differs by IOMMU, "the test devices are behind the
# profile's IOMMU", compares with what the profile asked for).
MIN_STEPS = 12
SPLATS = re.compile(
    r"WARNING:|BUG:|kernel BUG at|Oops|general protection fault|Kernel panic"
    r"|possible circular locking|possible recursive locking"
    r"|inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON"
    r"|detected stalls? on CPU|KFENCE:|UBSAN:|hung_task|blocked for more than"
    r"|Call Trace:"
)
LOG_PREFIX = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return None


def tap_cases(text):
    """(ok, name, directive) for each top-level TAP result line."""
    for line in text.splitlines():
        m = re.match(r"^(not )?ok \d+ (?:- )?([^#]*?)\s*(#.*)?$", line)
        if m:
            yield m.group(1) is None, m.group(2), (m.group(3) or "")


def kunit_cases(dmesg):
    """{suite: [(ok, case)]} from the KTAP in the kernel log."""
    suites, current = {}, None
    for raw in dmesg.splitlines():
        line = LOG_PREFIX.sub("", raw)
        m = re.match(r"^    # Subtest: (\S+)", line)
        if m:
            current = m.group(1)
            suites.setdefault(current, [])
            continue
        m = re.match(r"^    (not )?ok \d+ (\S+)", line)
        if m and current:
            suites[current].append((m.group(1) is None, m.group(2)))
            continue
        if re.match(r"^(not )?ok \d+ ", line):
            current = None
    return suites


def main():
    out, label = sys.argv[1], sys.argv[2]
    quick = sys.argv[3:] == ["quick"]
    results = []

    def record(ok, name, why=""):
        results.append((ok, name, why))

    if read(os.path.join(out, "finished")) is None:
        record(False, "guest script finished", "VM died or timed out; see console.log")

    steps = list(tap_cases(read(os.path.join(out, "steps.tap")) or ""))
    min_steps = MIN_STEPS - 2 if quick else MIN_STEPS
    if len(steps) < min_steps:
        record(False, "guest steps", f"only {len(steps)} of {min_steps} ran")
    for ok, name, _ in steps:
        record(ok, name, "see steps.log")

    for prog in KSELFTESTS:
        text = read(os.path.join(out, prog + ".tap"))
        cases = list(tap_cases(text or ""))
        if not cases:
            record(False, prog, "no results")
        for ok, name, directive in cases:
            if "SKIP" in directive:
                record(False, f"{prog}: {name}", "skipped: " + directive)
            else:
                record(ok, f"{prog}: {name}", f"see {prog}.tap")

    dmesg = read(os.path.join(out, "dmesg.txt")) or ""
    suites = kunit_cases(dmesg)
    for suite, must in REQUIRED_SUITES.items():
        cases = suites.get(suite)
        if not cases:
            record(False, f"kunit {suite}", "suite did not run")
            continue
        if must and not any(must.search(c) for _, c in cases):
            record(False, f"kunit {suite}", f"no case matching {must.pattern}")
        for ok, case in cases:
            record(ok, f"kunit {suite}.{case}", "see dmesg.txt")

    splats = [l for l in dmesg.splitlines() if SPLATS.search(l)]
    record(not splats and bool(dmesg), "kernel log clean",
           "; ".join(splats[:3]) if splats else "no dmesg")

    leaks = read(os.path.join(out, "kmemleak.txt"))
    if not quick:
        record(leaks == "", "no kmemleak reports",
               "kmemleak.txt missing" if leaks is None else
               (leaks.splitlines() or [""])[0])

    for ok, name, why in results:
        if ok:
            print(f"PASS {label} {name}")
        else:
            print(f"FAIL {label} {name}: {why}")


if __name__ == "__main__":
    main()
