//! The crate's one error type.

use core::fmt;

/// Everything that can go wrong in `cachee-core`.
///
/// Operation errors leave the cache unchanged: a failed write keeps the old value.
/// Format and attach errors say what is wrong with the region so the caller can
/// report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Keys must be at least one byte long.
    EmptyKey,
    /// The key is longer than the region's configured maximum.
    KeyTooLong {
        /// Length of the rejected key.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The value is longer than the region's configured maximum.
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The caller's buffer cannot hold the value; nothing was copied.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// A time-to-live of zero ticks, or one so large that the expiry overflows.
    InvalidTtl,
    /// A time-to-live was given but the cache's hooks provide no clock.
    NoClock,
    /// `incr`/`decr` on a value that is not an unsigned decimal integer.
    NotANumber,
    /// The shard's write lock stayed held by a live owner for longer than the handle
    /// is willing to wait; nothing was changed.
    Busy,
    /// The entry cannot be stored at all (for example `max_entries` is zero).
    NoSpace,

    /// The memory region is not aligned to the word size.
    Misaligned {
        /// Required alignment in bytes.
        required: usize,
    },
    /// The memory region is too small for the requested layout (or for its header).
    RegionTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The configuration cannot describe a usable cache; the text says which field.
    InvalidConfig(&'static str),
    /// The region does not start with the cachee magic number: it is not a cache region.
    BadMagic,
    /// The region was formatted by a different format version.
    UnsupportedVersion {
        /// Version found in the region.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The region was formatted by a build with a different layout (word size,
    /// endianness or structure sizes), so it cannot be read here.
    LayoutMismatch {
        /// Layout hash found in the region.
        found: u32,
        /// Layout hash of this build.
        expected: u32,
    },
    /// The region header has not been completely written (formatting never finished).
    NotReady,
    /// The region header is inconsistent; the text names the field that is wrong.
    CorruptHeader(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::EmptyKey => f.write_str("keys must not be empty"),
            Error::KeyTooLong { len, max } => {
                write!(f, "key of {len} bytes exceeds the maximum of {max} bytes")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the maximum of {max} bytes")
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the value needs {needed} bytes")
            }
            Error::InvalidTtl => {
                f.write_str("invalid time-to-live (zero, or the expiry overflows)")
            }
            Error::NoClock => f.write_str("TTLs need a clock, and this cache's hooks provide none"),
            Error::NotANumber => f.write_str("the stored value is not an unsigned decimal integer"),
            Error::Busy => f.write_str("the shard's write lock is held by a live owner; try again"),
            Error::NoSpace => f.write_str("the cache has no room for this entry"),
            Error::Misaligned { required } => {
                write!(f, "region is not aligned to {required} bytes")
            }
            Error::RegionTooSmall { needed, available } => write!(
                f,
                "region too small: {available} bytes available, at least {needed} needed"
            ),
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::BadMagic => f.write_str("not a cachee region (bad magic number)"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "region format version {found} is not supported (this build reads version {supported})"
            ),
            Error::LayoutMismatch { found, expected } => write!(
                f,
                "region layout {found:#010x} was written by an incompatible build (expected {expected:#010x}: different word size, endianness or structure layout)"
            ),
            Error::NotReady => f.write_str("region formatting never completed"),
            Error::CorruptHeader(what) => write!(f, "corrupt region header: {what}"),
        }
    }
}

impl core::error::Error for Error {}
