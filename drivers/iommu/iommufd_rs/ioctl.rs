// SPDX-License-Identifier: GPL-2.0

//! The single ioctl entry point of `/dev/iommu` and its extensible-struct rules.
//!
//! Every iommufd ioctl takes a pointer to a struct whose first `u32` is the size userspace
//! believes the struct has. [`dispatch`] reads it and applies the same rules to every command:
//!
//! - a size below the command's mandatory prefix fails with `EINVAL`;
//! - a size larger than the kernel's struct is accepted only if every extra byte is zero,
//!   otherwise `E2BIG`;
//! - a size between the two is zero-extended to the kernel's struct;
//! - an unknown command fails with `ENOTTY`, an unreadable argument with `EFAULT`.
//!
//! Handlers see only the decoded struct and a [`Ucmd`] to write their answer back with; this file
//! is the only place that reads the argument from user memory.

use core::mem::size_of;
use kernel::{
    ioctl::_IO,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader, //
    },
};

use crate::{
    ctx::{
        self,
        Ctx, //
    },
    device,
    hwpt,
    ioas, //
    uapi,
};

/// The ioctl type of every iommufd command.
const IOMMUFD_TYPE: u32 = b';' as u32;

/// Builds the ioctl number of the iommufd command `nr`.
const fn iommufd_cmd(nr: u32) -> u32 {
    _IO(IOMMUFD_TYPE, nr)
}

/// `IOMMU_DESTROY`.
pub(crate) const IOMMU_DESTROY: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_DESTROY);
/// `IOMMU_IOAS_ALLOC`.
pub(crate) const IOMMU_IOAS_ALLOC: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_ALLOC);
/// `IOMMU_IOAS_ALLOW_IOVAS`.
pub(crate) const IOMMU_IOAS_ALLOW_IOVAS: u32 =
    iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
/// `IOMMU_IOAS_COPY`.
pub(crate) const IOMMU_IOAS_COPY: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_COPY);
/// `IOMMU_IOAS_IOVA_RANGES`.
pub(crate) const IOMMU_IOAS_IOVA_RANGES: u32 =
    iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_IOVA_RANGES);
/// `IOMMU_IOAS_MAP`.
pub(crate) const IOMMU_IOAS_MAP: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_MAP);
/// `IOMMU_HWPT_ALLOC`.
pub(crate) const IOMMU_HWPT_ALLOC: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_HWPT_ALLOC);
/// `IOMMU_GET_HW_INFO`.
pub(crate) const IOMMU_GET_HW_INFO: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_GET_HW_INFO);
/// `IOMMU_EXECUTE_WBINVD` (our extension).
pub(crate) const IOMMU_EXECUTE_WBINVD: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_EXECUTE_WBINVD);
/// `IOMMU_TEST_DEVICE_NO_SNOOP` (our test-only extension).
pub(crate) const IOMMU_TEST_DEVICE_NO_SNOOP: u32 =
    iommufd_cmd(kernel::uapi::IOMMUFD_CMD_TEST_DEVICE_NO_SNOOP);
/// `IOMMU_TEST_COHERENCY_EVENTS` (our test-only extension).
pub(crate) const IOMMU_TEST_COHERENCY_EVENTS: u32 =
    iommufd_cmd(kernel::uapi::IOMMUFD_CMD_TEST_COHERENCY_EVENTS);
/// `IOMMU_OPTION`.
pub(crate) const IOMMU_OPTION: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_OPTION);
/// `IOMMU_IOAS_MAP_FILE`.
pub(crate) const IOMMU_IOAS_MAP_FILE: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_MAP_FILE);
/// `IOMMU_IOAS_UNMAP`.
pub(crate) const IOMMU_IOAS_UNMAP: u32 = iommufd_cmd(kernel::uapi::IOMMUFD_CMD_IOAS_UNMAP);

/// One iommufd command: its argument struct and its handler.
pub(crate) trait Command: FromBytes + AsBytes + pin_init::Zeroable {
    /// The size of the mandatory prefix: up to the end of the last field every caller must pass.
    const MIN_SIZE: usize;

    /// Carries out the command on `ctx` with the decoded argument `cmd`.
    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result;
}

/// The user's view of the argument of the ioctl being handled.
pub(crate) struct Ucmd {
    /// The user address of the argument.
    arg: usize,
    /// The size userspace declared in the leading `u32`.
    user_size: usize,
}

impl Ucmd {
    /// Writes `cmd` back to userspace, truncated to the size userspace declared.
    pub(crate) fn respond<T: AsBytes>(&self, cmd: &T) -> Result {
        let len = self.user_size.min(size_of::<T>());
        let mut writer = UserSlice::new(UserPtr::from_addr(self.arg), len).writer();
        writer.write_slice(&cmd.as_bytes()[..len])
    }

    /// Writes just `value` back, at byte `offset` of the user's struct, which must lie within
    /// the command's mandatory prefix.
    pub(crate) fn write_at<T: AsBytes>(&self, offset: usize, value: &T) -> Result {
        let addr = self.arg.checked_add(offset).ok_or(EFAULT)?;
        UserSlice::new(UserPtr::from_addr(addr), size_of::<T>())
            .writer()
            .write(value)
    }
}

/// How a user struct of some declared size maps onto the kernel's struct.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// Bytes to copy into the kernel's struct; the rest of it stays zero.
    pub(crate) copy: usize,
    /// Bytes past the kernel's struct, all of which must be zero.
    pub(crate) tail: usize,
}

/// Applies the size rules to a user struct of `user_size` bytes, for a command whose struct is
/// `ksize` bytes with a mandatory prefix of `min_size` bytes.
pub(crate) fn span(user_size: usize, min_size: usize, ksize: usize) -> Result<Span> {
    if user_size < min_size {
        return Err(EINVAL);
    }
    Ok(Span {
        copy: user_size.min(ksize),
        tail: user_size.saturating_sub(ksize),
    })
}

/// Consumes `len` bytes from `reader`, failing with `E2BIG` if any of them is not zero.
fn check_zeroed(reader: &mut UserSliceReader, mut len: usize) -> Result {
    let mut buf = [0u8; 64];
    while len > 0 {
        let chunk = len.min(buf.len());
        reader.read_slice(&mut buf[..chunk])?;
        if buf[..chunk].iter().any(|&b| b != 0) {
            return Err(E2BIG);
        }
        len -= chunk;
    }
    Ok(())
}

/// Reads the argument of command `T` and runs it.
fn run<T: Command>(ctx: &Ctx, arg: usize) -> Result {
    let user_size = UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
        .reader()
        .read::<u32>()? as usize;
    let span = span(user_size, T::MIN_SIZE, size_of::<T>())?;

    let mut reader = UserSlice::new(UserPtr::from_addr(arg), user_size).reader();
    let mut cmd: T = pin_init::zeroed();
    reader.read_slice(&mut cmd.as_bytes_mut()[..span.copy])?;
    check_zeroed(&mut reader, span.tail)?;

    T::execute(ctx, &mut cmd, &Ucmd { arg, user_size })
}

/// Handles one ioctl on `/dev/iommu`.
pub(crate) fn dispatch(ctx: &Ctx, cmd: u32, arg: usize) -> Result {
    match cmd {
        IOMMU_DESTROY => run::<uapi::Destroy>(ctx, arg),
        IOMMU_IOAS_ALLOC => run::<uapi::IoasAlloc>(ctx, arg),
        IOMMU_IOAS_ALLOW_IOVAS => run::<uapi::IoasAllowIovas>(ctx, arg),
        IOMMU_IOAS_COPY => run::<uapi::IoasCopy>(ctx, arg),
        IOMMU_IOAS_IOVA_RANGES => run::<uapi::IoasIovaRanges>(ctx, arg),
        IOMMU_IOAS_MAP => run::<uapi::IoasMap>(ctx, arg),
        IOMMU_IOAS_MAP_FILE => run::<uapi::IoasMapFile>(ctx, arg),
        IOMMU_IOAS_UNMAP => run::<uapi::IoasUnmap>(ctx, arg),
        IOMMU_OPTION => run::<uapi::IommuOption>(ctx, arg),
        IOMMU_HWPT_ALLOC => run::<uapi::HwptAlloc>(ctx, arg),
        IOMMU_GET_HW_INFO => run::<uapi::HwInfo>(ctx, arg),
        IOMMU_EXECUTE_WBINVD => run::<uapi::ExecuteWbinvd>(ctx, arg),
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        IOMMU_TEST_DEVICE_NO_SNOOP => run::<uapi::TestDeviceNoSnoop>(ctx, arg),
        #[cfg(CONFIG_IOMMUFD_RS_TEST)]
        IOMMU_TEST_COHERENCY_EVENTS => run::<uapi::TestCoherencyEvents>(ctx, arg),
        _ => unknown(cmd, arg),
    }
}

/// The numbers upstream's command table spans (`_IOC_NR`, whatever the type letter): for
/// these upstream reads the argument's size before it looks at the number any further.
const UPSTREAM_NRS: core::ops::RangeInclusive<u32> =
    kernel::uapi::IOMMUFD_CMD_BASE..=kernel::uapi::IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA;

/// An ioctl this driver does not serve: `ENOTTY`, but, as upstream, `EFAULT` first for a
/// number in the command table's range whose argument cannot be read.
fn unknown(cmd: u32, arg: usize) -> Result {
    if UPSTREAM_NRS.contains(&(cmd & 0xff)) {
        UserSlice::new(UserPtr::from_addr(arg), size_of::<u32>())
            .reader()
            .read::<u32>()?;
    }
    Err(ENOTTY)
}

impl Command for uapi::Destroy {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_destroy, id) + 4;

    fn execute(ctx: &Ctx, cmd: &mut Self, _ucmd: &Ucmd) -> Result {
        ctx.objects.destroy(cmd.0.id)?;
        // Nothing a device is attached to can be destroyed, so the state is unchanged; the
        // subscribers hear about it all the same.
        ctx.publish_coherency();
        Ok(())
    }
}

impl Command for uapi::IoasAlloc {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_ioas_alloc, out_ioas_id) + 4;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::alloc(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IoasIovaRanges {
    const MIN_SIZE: usize =
        core::mem::offset_of!(kernel::uapi::iommu_ioas_iova_ranges, out_iova_alignment) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::iova_ranges(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IoasMap {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_ioas_map, iova) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::map(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IoasMapFile {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_ioas_map_file, iova) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::map_file(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IoasUnmap {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_ioas_unmap, length) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::unmap(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IoasAllowIovas {
    const MIN_SIZE: usize =
        core::mem::offset_of!(kernel::uapi::iommu_ioas_allow_iovas, allowed_iovas) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, _ucmd: &Ucmd) -> Result {
        ioas::allow_iovas(ctx, cmd)
    }
}

impl Command for uapi::IoasCopy {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_ioas_copy, src_iova) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ioas::copy(ctx, cmd, ucmd)
    }
}

impl Command for uapi::HwptAlloc {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_hwpt_alloc, __reserved) + 4;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        hwpt::alloc(ctx, cmd, ucmd)
    }
}

impl Command for uapi::HwInfo {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_hw_info, __reserved) + 3;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        device::get_hw_info(ctx, cmd, ucmd)
    }
}

impl Command for uapi::ExecuteWbinvd {
    const MIN_SIZE: usize = size_of::<Self>();

    fn execute(ctx: &Ctx, cmd: &mut Self, _ucmd: &Ucmd) -> Result {
        ctx::execute_wbinvd(ctx, cmd)
    }
}

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
impl Command for uapi::TestDeviceNoSnoop {
    const MIN_SIZE: usize = size_of::<Self>();

    fn execute(ctx: &Ctx, cmd: &mut Self, _ucmd: &Ucmd) -> Result {
        device::test_no_snoop(ctx, cmd)
    }
}

#[cfg(CONFIG_IOMMUFD_RS_TEST)]
impl Command for uapi::TestCoherencyEvents {
    const MIN_SIZE: usize = size_of::<Self>();

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        device::test_events(ctx, cmd, ucmd)
    }
}

impl Command for uapi::IommuOption {
    const MIN_SIZE: usize = core::mem::offset_of!(kernel::uapi::iommu_option, val64) + 8;

    fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
        ctx::option(ctx, cmd, ucmd)
    }
}

#[cfg(CONFIG_IOMMUFD_RS_KUNIT_TEST)]
#[kunit_tests(iommufd_rs_ioctl)]
mod tests {
    use super::*;

    #[test]
    fn span_rules() -> Result {
        // Below the mandatory prefix.
        assert_eq!(span(11, 12, 16), Err(EINVAL));
        assert_eq!(span(0, 8, 8), Err(EINVAL));
        // Exactly the prefix: zero-extended.
        assert_eq!(span(12, 12, 16)?, Span { copy: 12, tail: 0 });
        // Exactly the kernel's size.
        assert_eq!(span(16, 12, 16)?, Span { copy: 16, tail: 0 });
        // Larger: the extra bytes must be checked.
        assert_eq!(span(17, 12, 16)?, Span { copy: 16, tail: 1 });
        assert_eq!(
            span(u32::MAX as usize, 8, 8)?,
            Span {
                copy: 8,
                tail: u32::MAX as usize - 8
            }
        );
        Ok(())
    }

    #[test]
    fn min_sizes() {
        // The mandatory prefixes are the upstream ones.
        assert_eq!(<uapi::Destroy as Command>::MIN_SIZE, 8);
        assert_eq!(<uapi::IoasAlloc as Command>::MIN_SIZE, 12);
        assert_eq!(<uapi::IoasIovaRanges as Command>::MIN_SIZE, 32);
        assert_eq!(<uapi::IoasMap as Command>::MIN_SIZE, 40);
        assert_eq!(<uapi::IoasUnmap as Command>::MIN_SIZE, 24);
        assert_eq!(<uapi::IoasMapFile as Command>::MIN_SIZE, 40);
        assert_eq!(<uapi::IoasAllowIovas as Command>::MIN_SIZE, 24);
        assert_eq!(<uapi::IoasCopy as Command>::MIN_SIZE, 40);
        assert_eq!(<uapi::IommuOption as Command>::MIN_SIZE, 24);
    }

    #[test]
    fn ioctl_numbers() {
        // _IO(';', nr) for each command number.
        assert_eq!(IOMMU_DESTROY, 0x3b80);
        assert_eq!(IOMMU_IOAS_ALLOC, 0x3b81);
        assert_eq!(IOMMU_IOAS_IOVA_RANGES, 0x3b84);
        assert_eq!(IOMMU_IOAS_ALLOW_IOVAS, 0x3b82);
        assert_eq!(IOMMU_IOAS_COPY, 0x3b83);
        assert_eq!(IOMMU_IOAS_MAP, 0x3b85);
        assert_eq!(IOMMU_IOAS_UNMAP, 0x3b86);
        assert_eq!(IOMMU_OPTION, 0x3b87);
        assert_eq!(IOMMU_IOAS_MAP_FILE, 0x3b8f);
        assert_eq!(IOMMU_HWPT_ALLOC, 0x3b89);
        assert_eq!(IOMMU_GET_HW_INFO, 0x3b8a);
        assert_eq!(IOMMU_EXECUTE_WBINVD, 0x3bc0);
        assert_eq!(IOMMU_TEST_DEVICE_NO_SNOOP, 0x3be0);
        assert_eq!(IOMMU_TEST_COHERENCY_EVENTS, 0x3be1);
    }
}
