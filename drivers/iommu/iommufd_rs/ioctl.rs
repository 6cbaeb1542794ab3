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

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    capability::{
        capable,
        Capability, //
    },
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
    uapi::{
        iommu_option,
        iommufd_option_IOMMU_OPTION_HUGE_PAGES as OPTION_HUGE_PAGES,
        iommufd_option_IOMMU_OPTION_RLIMIT_MODE as OPTION_RLIMIT_MODE,
        iommufd_option_ops_IOMMU_OPTION_OP_GET as OP_GET,
        iommufd_option_ops_IOMMU_OPTION_OP_SET as OP_SET, //
    },
};

use crate::{
    ctx::Ctx,
    uapi, //
};

mod device;
mod ioas;
#[cfg(CONFIG_IOMMUFD_RS_TEST)]
mod test;

/// The ioctl type of every iommufd command.
const IOMMUFD_TYPE: u32 = b';' as u32;

/// The size of the field `_field` selects, for the mandatory prefix of a command.
const fn field_size<S, F>(_field: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

/// One iommufd command: its argument struct and its handler.
pub(crate) trait Command: FromBytes + AsBytes + pin_init::Zeroable {
    /// The ioctl number.
    const CMD: u32;

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

/// Declares the commands, one line each: `NR: Arg => handler, last`, where `NR` names the
/// command number in the uAPI header (`IOMMUFD_CMD_NR`), `Arg` the argument's wrapper in
/// [`uapi`], `handler` the function that carries it out and `last` the last field of the
/// mandatory prefix of the argument (upstream's, for upstream's commands). Makes each `Arg` a
/// [`Command`] and the dispatcher over all of them.
macro_rules! commands {
    ($($(#[$attr:meta])* $nr:ident: $arg:ident => $handler:path, $last:ident;)*) => {
        $(
            $(#[$attr])*
            impl Command for uapi::$arg {
                const CMD: u32 = _IO(IOMMUFD_TYPE, kernel::uapi::$nr);
                const MIN_SIZE: usize = offset_of!(uapi::$arg, 0.$last)
                    + field_size(|s: &uapi::$arg| &s.0.$last);

                fn execute(ctx: &Ctx, cmd: &mut Self, ucmd: &Ucmd) -> Result {
                    $handler(ctx, cmd, ucmd)
                }
            }
        )*

        /// Handles one ioctl on `/dev/iommu`.
        pub(crate) fn dispatch(ctx: &Ctx, cmd: u32, arg: usize) -> Result {
            $(
                $(#[$attr])*
                if cmd == <uapi::$arg as Command>::CMD {
                    return run::<uapi::$arg>(ctx, arg);
                }
            )*
            unknown(cmd, arg)
        }
    };
}

commands! {
    IOMMUFD_CMD_DESTROY: Destroy => destroy, id;
    IOMMUFD_CMD_IOAS_ALLOC: IoasAlloc => ioas::alloc, out_ioas_id;
    IOMMUFD_CMD_IOAS_ALLOW_IOVAS: IoasAllowIovas => ioas::allow_iovas, allowed_iovas;
    IOMMUFD_CMD_IOAS_COPY: IoasCopy => ioas::copy, src_iova;
    IOMMUFD_CMD_IOAS_IOVA_RANGES: IoasIovaRanges => ioas::iova_ranges, out_iova_alignment;
    IOMMUFD_CMD_IOAS_MAP: IoasMap => ioas::map, iova;
    IOMMUFD_CMD_IOAS_MAP_FILE: IoasMapFile => ioas::map_file, iova;
    IOMMUFD_CMD_IOAS_UNMAP: IoasUnmap => ioas::unmap, length;
    IOMMUFD_CMD_OPTION: IommuOption => option, val64;
    IOMMUFD_CMD_HWPT_ALLOC: HwptAlloc => device::hwpt_alloc, __reserved;
    IOMMUFD_CMD_GET_HW_INFO: HwInfo => device::get_hw_info, __reserved;
    IOMMUFD_CMD_EXECUTE_WBINVD: ExecuteWbinvd => device::execute_wbinvd, flags;
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    IOMMUFD_CMD_TEST_DEVICE_NO_SNOOP: TestDeviceNoSnoop => test::no_snoop, __reserved;
    #[cfg(CONFIG_IOMMUFD_RS_TEST)]
    IOMMUFD_CMD_TEST_COHERENCY_EVENTS: TestCoherencyEvents => test::events, out_state;
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

/// `IOMMU_DESTROY`: destroys an object userspace made, unless something uses it (`EBUSY`).
fn destroy(ctx: &Ctx, cmd: &mut uapi::Destroy, _ucmd: &Ucmd) -> Result {
    ctx.objects.destroy(cmd.0.id)?;
    // Nothing a device is attached to can be destroyed, so the state is unchanged; the
    // subscribers hear about it all the same.
    ctx.publish_coherency();
    Ok(())
}

/// `IOMMU_OPTION`: reads or sets an option of the context or of an IOAS. Only `val64` is written
/// back.
fn option(ctx: &Ctx, cmd: &mut uapi::IommuOption, ucmd: &Ucmd) -> Result {
    if cmd.0.__reserved != 0 {
        return Err(EOPNOTSUPP);
    }
    match cmd.0.option_id {
        OPTION_RLIMIT_MODE => rlimit_mode(ctx, cmd)?,
        OPTION_HUGE_PAGES => ioas::option_huge_pages(ctx, cmd)?,
        _ => return Err(EOPNOTSUPP),
    }
    ucmd.write_at(offset_of!(iommu_option, val64), &cmd.0.val64)
}

/// `IOMMU_OPTION_RLIMIT_MODE`: where pinned pages are charged (0: the user's `RLIMIT_MEMLOCK`,
/// 1: the mm's). Setting it needs `CAP_SYS_RESOURCE` and a context with no object yet.
fn rlimit_mode(ctx: &Ctx, cmd: &mut uapi::IommuOption) -> Result {
    if cmd.0.object_id != 0 {
        return Err(EOPNOTSUPP);
    }
    match u32::from(cmd.0.op) {
        OP_GET => {
            cmd.0.val64 = ctx.rlimit_mode();
            Ok(())
        }
        OP_SET => {
            if !capable(Capability::SYS_RESOURCE) {
                return Err(EPERM);
            }
            ctx.set_rlimit_mode(cmd.0.val64)
        }
        _ => Err(EOPNOTSUPP),
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
        assert_eq!(<uapi::HwptAlloc as Command>::MIN_SIZE, 24);
        assert_eq!(<uapi::HwInfo as Command>::MIN_SIZE, 32);
        // Our extensions: the whole struct.
        assert_eq!(<uapi::ExecuteWbinvd as Command>::MIN_SIZE, 8);
    }

    #[test]
    fn ioctl_numbers() {
        // _IO(';', nr) for each command number.
        assert_eq!(<uapi::Destroy as Command>::CMD, 0x3b80);
        assert_eq!(<uapi::IoasAlloc as Command>::CMD, 0x3b81);
        assert_eq!(<uapi::IoasIovaRanges as Command>::CMD, 0x3b84);
        assert_eq!(<uapi::IoasAllowIovas as Command>::CMD, 0x3b82);
        assert_eq!(<uapi::IoasCopy as Command>::CMD, 0x3b83);
        assert_eq!(<uapi::IoasMap as Command>::CMD, 0x3b85);
        assert_eq!(<uapi::IoasUnmap as Command>::CMD, 0x3b86);
        assert_eq!(<uapi::IommuOption as Command>::CMD, 0x3b87);
        assert_eq!(<uapi::IoasMapFile as Command>::CMD, 0x3b8f);
        assert_eq!(<uapi::HwptAlloc as Command>::CMD, 0x3b89);
        assert_eq!(<uapi::HwInfo as Command>::CMD, 0x3b8a);
        assert_eq!(<uapi::ExecuteWbinvd as Command>::CMD, 0x3bc0);
        assert_eq!(<uapi::TestDeviceNoSnoop as Command>::CMD, 0x3be0);
        assert_eq!(<uapi::TestCoherencyEvents as Command>::CMD, 0x3be1);
    }
}
