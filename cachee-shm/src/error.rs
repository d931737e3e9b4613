//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong with a shared segment.
///
/// Every variant's message names the segment's path and the cause, so that a command
/// line tool can print it as is.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// A system call failed.
    Io {
        /// The segment.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The segment does not exist.
    NotFound(PathBuf),
    /// `create` found a file already there.
    AlreadyExists(PathBuf),
    /// The name is empty, contains `/` where a bare name is expected, or a NUL byte.
    InvalidName(String),
    /// The path is a symbolic link; segments are never opened through one.
    Symlink(PathBuf),
    /// The path is not a regular file.
    NotAFile(PathBuf),
    /// The file belongs to another user.
    WrongOwner {
        /// The segment.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The caller's effective user id.
        me: u32,
    },
    /// The file is writable by group or others.
    ModeTooOpen {
        /// The segment.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not start with a cachee segment header.
    NotASegment(PathBuf),
    /// The segment was written by another format version.
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// Its version.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// The file is shorter than its header says.
    Truncated {
        /// The segment.
        path: PathBuf,
        /// Size the header records.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// The segment header is damaged; the text says how.
    CorruptHeader(PathBuf, &'static str),
    /// The filesystem has no room for the segment (checked at creation).
    NoSpace {
        /// The segment.
        path: PathBuf,
        /// Bytes requested.
        bytes: u64,
    },
    /// Another process is creating the segment and did not finish in time.
    Timeout(PathBuf),
    /// The process that was creating the segment died before finishing, and this
    /// call has no configuration to finish it with (use `open_or_create`).
    CreatorDied(PathBuf),
    /// Every owner slot of the segment is taken by a live process.
    TooManyProcesses(PathBuf),
    /// The configuration is invalid; the text says which part.
    InvalidOptions(String),
    /// An error of the cache inside the segment.
    Cache(cachee_core::Error),
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Io { path, op, source } => write!(f, "{}: {op}: {source}", path.display()),
            ShmError::NotFound(p) => write!(f, "{}: no such segment", p.display()),
            ShmError::AlreadyExists(p) => write!(f, "{}: segment already exists", p.display()),
            ShmError::InvalidName(n) => write!(f, "invalid segment name {n:?}"),
            ShmError::Symlink(p) => write!(
                f,
                "{}: is a symbolic link; refusing to follow it",
                p.display()
            ),
            ShmError::NotAFile(p) => write!(f, "{}: not a regular file", p.display()),
            ShmError::WrongOwner { path, owner, me } => write!(
                f,
                "{}: owned by uid {owner}, not by this user (uid {me}); refusing to attach",
                path.display()
            ),
            ShmError::ModeTooOpen { path, mode } => write!(
                f,
                "{}: mode {mode:04o} lets other users write it; refusing to attach (chmod go-w)",
                path.display()
            ),
            ShmError::NotASegment(p) => write!(
                f,
                "{}: not a cachee segment (bad magic number)",
                p.display()
            ),
            ShmError::UnsupportedVersion {
                path,
                found,
                supported,
            } => write!(
                f,
                "{}: segment format version {found} is not supported (this build reads version {supported})",
                path.display()
            ),
            ShmError::Truncated {
                path,
                expected,
                actual,
            } => write!(
                f,
                "{}: truncated: {actual} bytes, the header says {expected}",
                path.display()
            ),
            ShmError::CorruptHeader(p, what) => {
                write!(f, "{}: corrupt segment header: {what}", p.display())
            }
            ShmError::NoSpace { path, bytes } => write!(
                f,
                "{}: not enough space for {bytes} bytes on its filesystem",
                path.display()
            ),
            ShmError::Timeout(p) => write!(
                f,
                "{}: timed out waiting for another process to finish creating the segment",
                p.display()
            ),
            ShmError::CreatorDied(p) => write!(
                f,
                "{}: the process creating this segment died before finishing it",
                p.display()
            ),
            ShmError::TooManyProcesses(p) => write!(
                f,
                "{}: every owner slot is held by a live process",
                p.display()
            ),
            ShmError::InvalidOptions(what) => write!(f, "invalid options: {what}"),
            ShmError::Cache(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Io { source, .. } => Some(source),
            ShmError::Cache(e) => Some(e),
            _ => None,
        }
    }
}

impl From<cachee_core::Error> for ShmError {
    fn from(e: cachee_core::Error) -> Self {
        ShmError::Cache(e)
    }
}
