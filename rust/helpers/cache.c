// SPDX-License-Identifier: GPL-2.0

#include <linux/cpumask.h>
#include <linux/sched.h>

/*
 * The CPUs the current task may run on, copied into @dst: another thread
 * may change the task's affinity at any time, so Rust gets a copy rather
 * than a reference to current->cpus_ptr.
 */
__rust_helper void rust_helper_current_cpus_allowed(struct cpumask *dst)
{
	cpumask_copy(dst, current->cpus_ptr);
}
