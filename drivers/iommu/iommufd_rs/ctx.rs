// SPDX-License-Identifier: GPL-2.0

//! The per-open context of `/dev/iommu`.
//!
//! A [`Ctx`] lives from `open()` to the last `close()` of one file. It owns every object created
//! through that file; dropping it (on release) drops the object table and with it every object
//! that nothing else references.

use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

use crate::{
    ioctl,
    object::ObjectTable, //
};

/// The state of one open `/dev/iommu` file.
#[pin_data]
pub(crate) struct Ctx {
    /// Every object created through this file, by id.
    #[pin]
    pub(crate) objects: ObjectTable,
}

#[vtable]
impl MiscDevice for Ctx {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let ctx = KBox::pin_init(
            pin_init!(Self {
                objects <- ObjectTable::new(),
            }),
            GFP_KERNEL,
        )?;
        Ok(ctx)
    }

    fn ioctl(me: Pin<&Ctx>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, cmd, arg).map(|()| 0)
    }
}
