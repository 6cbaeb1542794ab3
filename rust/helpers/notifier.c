// SPDX-License-Identifier: GPL-2.0

#include <linux/notifier.h>

__rust_helper void
rust_helper_BLOCKING_INIT_NOTIFIER_HEAD(struct blocking_notifier_head *nh)
{
	BLOCKING_INIT_NOTIFIER_HEAD(nh);
}
