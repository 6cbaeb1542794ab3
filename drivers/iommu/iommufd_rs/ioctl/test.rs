// SPDX-License-Identifier: GPL-2.0

//! The test-only ioctls (`CONFIG_IOMMUFD_RS_TEST`): overriding a device's No-Snoop ability and
//! counting coherency events.

use kernel::{
    capability::{
        capable,
        Capability, //
    },
    prelude::*,
};

use crate::{
    ctx::Ctx,
    group::IDevice,
    ioctl::Ucmd,
    uapi, //
};

/// `IOMMU_TEST_DEVICE_NO_SNOOP` (test kernels only): declares a bound, unattached device able
/// (or, back to what probing found, unable) to issue No-Snoop DMA.
pub(crate) fn no_snoop(ctx: &Ctx, cmd: &mut uapi::TestDeviceNoSnoop, _ucmd: &Ucmd) -> Result {
    if !capable(Capability::SYS_ADMIN) {
        return Err(EPERM);
    }
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    let value = match cmd.0.no_snoop {
        0 => false,
        1 => true,
        _ => return Err(EINVAL),
    };
    ctx.objects
        .get::<IDevice>(cmd.0.dev_id)?
        .set_no_snoop_for_test(value)
}

/// `IOMMU_TEST_COHERENCY_EVENTS` (test kernels only): how many coherency events the test
/// subscriber of a device (or, for id 0, of the context) saw, and the last one.
pub(crate) fn events(ctx: &Ctx, cmd: &mut uapi::TestCoherencyEvents, ucmd: &Ucmd) -> Result {
    let (events, last) = if cmd.0.dev_id == 0 {
        ctx.test_events.inner().read()
    } else {
        ctx.objects
            .get::<IDevice>(cmd.0.dev_id)?
            .test_events()
            .read()
    };
    cmd.0.out_events = events;
    cmd.0.out_state = last;
    ucmd.respond(cmd)
}
