//! Creating, opening and removing segments.
//!
//! # Creation protocol
//!
//! 1. The creator opens the file with `O_CREAT | O_EXCL | O_NOFOLLOW` (mode 0600 unless
//!    configured) and takes an exclusive `flock` on it before anything else.
//! 2. It reserves every page with `posix_fallocate` (so a full filesystem is an error
//!    now, not a `SIGBUS` later), maps the file, writes the header with state
//!    "creating", formats the cache region, and finally stores `READY`.
//! 3. It releases the `flock`.
//!
//! An opener that finds the header not ready tries the `flock` without blocking. If it
//! cannot take it, the creator is alive and working: it retries until its timeout. If it
//! can, the creator died before finishing (the kernel releases a dead process's
//! locks); `open_or_create` then formats the segment itself, and `open` reports
//! [`ShmError::CreatorDied`].

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cachee_core::{ByteRegion, Cache, Config};
use memmap2::MmapRaw;

use crate::ShmError;
use crate::header::{HEADER_BYTES, Header, MAGIC, OWNER_SLOTS, READY, VERSION, checksum_of, w};
use crate::hooks::{ShmHooks, now_millis};
use crate::process;

/// How to create (and open) a segment.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) size: u64,
    pub(crate) max_key: usize,
    pub(crate) max_value: usize,
    pub(crate) expected: (usize, usize),
    pub(crate) mode: u32,
    pub(crate) checksums: bool,
    pub(crate) shards: Option<u32>,
    pub(crate) max_entries: Option<u64>,
    pub(crate) wait: Duration,
    pub(crate) lock_timeout: Duration,
    pub(crate) allow_foreign_owner: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// 64 MiB, keys up to 250 bytes, values up to 64 KiB (index sized for 256-byte
    /// values), mode 0600, entry checksums on, 2 s to wait for a creator, 1 s to wait
    /// for a shard lock held by a live process.
    pub fn new() -> Self {
        Options {
            size: 64 << 20,
            max_key: 250,
            max_value: 64 << 10,
            expected: (32, 256),
            mode: 0o600,
            checksums: true,
            shards: None,
            max_entries: None,
            wait: Duration::from_secs(2),
            lock_timeout: Duration::from_secs(1),
            allow_foreign_owner: false,
        }
    }

    /// Total file size in bytes (header included).
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = bytes;
        self
    }

    /// Longest key.
    pub fn max_key(mut self, n: usize) -> Self {
        self.max_key = n;
        self
    }

    /// Longest value.
    pub fn max_value(mut self, n: usize) -> Self {
        self.max_value = n;
        self
    }

    /// Typical key and value lengths (sizes the index).
    pub fn expected_entry(mut self, key: usize, value: usize) -> Self {
        self.expected = (key, value);
        self
    }

    /// Permission bits of a new segment (never group- or world-writable).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Per-entry checksums (default on): damaged entries read as misses.
    pub fn checksums(mut self, on: bool) -> Self {
        self.checksums = on;
        self
    }

    /// Number of shards (power of two); default derived from the size.
    pub fn shards(mut self, n: u32) -> Self {
        self.shards = Some(n);
        self
    }

    /// Caps the number of entries (besides the space): the cache then evicts at this
    /// count even if the segment has room for more.
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// How long `open` waits for another process to finish creating the segment.
    pub fn wait(mut self, d: Duration) -> Self {
        self.wait = d;
        self
    }

    /// How long a write waits for a shard lock held by a live process before failing
    /// with `Busy`.
    pub fn lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }

    /// Attach even if the file belongs to another user (the mode check still applies).
    pub fn allow_foreign_owner(mut self, yes: bool) -> Self {
        self.allow_foreign_owner = yes;
        self
    }

    /// The file size (header included) for which a segment with these options holds
    /// `entries` entries of the given key and value lengths.
    pub fn size_for(
        &self,
        entries: u64,
        key_len: usize,
        value_len: usize,
    ) -> Result<u64, ShmError> {
        let bytes = self.config(0).bytes_for(entries, key_len, value_len)?;
        Ok(HEADER_BYTES as u64 + bytes as u64)
    }

    fn config(&self, seed: u64) -> Config {
        let mut c = Config::new()
            .max_key_len(self.max_key)
            .max_value_len(self.max_value)
            .expected_entry(self.expected.0, self.expected.1)
            .checksums(self.checksums)
            .seed(seed);
        if let Some(s) = self.shards {
            c = c.shards(s);
        }
        if let Some(n) = self.max_entries {
            c = c.max_entries(n);
        }
        c
    }

    fn validate(&self) -> Result<(), ShmError> {
        if self.mode & 0o022 != 0 {
            return Err(ShmError::InvalidOptions(format!(
                "mode {:04o} would let other users write the segment",
                self.mode
            )));
        }
        if self.mode & 0o600 != 0o600 {
            return Err(ShmError::InvalidOptions(format!(
                "mode {:04o} must let the owner read and write",
                self.mode
            )));
        }
        if self.size < (HEADER_BYTES as u64) + (64 << 10) {
            return Err(ShmError::InvalidOptions(format!(
                "size {} is smaller than the 128 KiB minimum",
                self.size
            )));
        }
        if self.size > (1 << 46) {
            return Err(ShmError::InvalidOptions(format!(
                "size {} is larger than 64 TiB",
                self.size
            )));
        }
        Ok(())
    }
}

/// What the holder of a segment's creation lock finds when the state word does not
/// say ready.
enum Unready {
    /// It does now: the creator finished after all, or the segment was complete and
    /// has just been marked ready.
    Ready,
    /// Another format version's segment: never ours to re-format.
    OtherVersion(u64),
    /// Not (completely) made: re-format it, or report that its creator died.
    Incomplete,
}

/// Where a segment name lives: a bare name under `/dev/shm`, anything with a `/` as a
/// path.
pub fn resolve(name: &str) -> Result<PathBuf, ShmError> {
    if name.is_empty() || name.contains('\0') || name == "." || name == ".." {
        return Err(ShmError::InvalidName(name.to_string()));
    }
    if name.contains('/') {
        Ok(PathBuf::from(name))
    } else if name.len() > 255 {
        Err(ShmError::InvalidName(name.to_string()))
    } else {
        Ok(Path::new("/dev/shm").join(name))
    }
}

/// A cache in a shared memory segment, attached by this process.
///
/// All operations take `&self`; the handle is `Send + Sync` and may be shared by
/// threads. Dropping it detaches (the segment stays; see [`destroy`]).
pub struct Segment {
    // Field order matters: the cache borrows the mapping and is dropped first.
    cache: Cache<ByteRegion<'static>, ShmHooks>,
    map: MmapRaw,
    path: PathBuf,
    /// Device and inode of the mapped file, to tell whether `path` still names it.
    file_id: (u64, u64),
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.cache.hooks().release();
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> ShmError + 'a {
    move |source| ShmError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn flock(file: &File, op: libc::c_int) -> bool {
    // SAFETY: `flock` on a valid, open descriptor has no memory-safety preconditions.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

impl Segment {
    /// Creates a new segment; fails if one exists.
    pub fn create(name: &str, opts: &Options) -> Result<Segment, ShmError> {
        let path = resolve(name)?;
        opts.validate()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => ShmError::AlreadyExists(path.clone()),
                // (NotFound here means a missing directory: reported as the I/O error
                // it is, not as "no such segment".)
                _ => ShmError::Io {
                    path: path.clone(),
                    op: "create",
                    source: e,
                },
            })?;
        if !flock(&file, libc::LOCK_EX) {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(&path);
            return Err(ShmError::Io {
                path,
                op: "lock",
                source: e,
            });
        }
        match Self::initialise(&file, &path, opts) {
            Ok(seg) => {
                flock(&file, libc::LOCK_UN);
                Ok(seg)
            }
            Err(e) => {
                // Leave nothing half-made behind.
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Reserves, maps and formats the file (whose `flock` the caller holds).
    fn initialise(file: &File, path: &Path, opts: &Options) -> Result<Segment, ShmError> {
        let size = opts.size;
        // SAFETY: `posix_fallocate` on a valid descriptor with a non-negative range.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
        match rc {
            0 => {}
            libc::ENOSPC | libc::EFBIG => {
                return Err(ShmError::NoSpace {
                    path: path.to_path_buf(),
                    bytes: size,
                });
            }
            e => {
                return Err(ShmError::Io {
                    path: path.to_path_buf(),
                    op: "reserve space",
                    source: std::io::Error::from_raw_os_error(e),
                });
            }
        }
        let map = MmapRaw::map_raw(file).map_err(io_err(path, "map"))?;
        if (map.len() as u64) < size {
            return Err(ShmError::Truncated {
                path: path.to_path_buf(),
                expected: size,
                actual: map.len() as u64,
            });
        }
        // SAFETY: the mapping is page-aligned, at least HEADER_BYTES long, lives in
        // `map` (moved into the returned segment, which outlives every use), and is only
        // accessed atomically.
        let header = unsafe { Header::new(map.as_mut_ptr()) };
        let (pid, start) = process::me().map_err(io_err(path, "read /proc/self/stat"))?;
        let me = process::pack(pid, start);
        header.store(w::STATE, 0);
        header.store(w::MAGIC, MAGIC);
        header.store(w::VERSION, VERSION);
        header.store(w::CREATOR, me);
        header.store(w::CREATED, now_millis());
        header.store(w::REGION_OFF, HEADER_BYTES as u64);
        header.store(w::REGION_LEN, size - HEADER_BYTES as u64);
        header.store(w::FILE_LEN, size);
        header.store(w::SLOTS, OWNER_SLOTS);
        header.store(w::CHECKSUM, header.checksum());
        let seed = seed_from(now_millis(), me);
        let region_len =
            usize::try_from(size - HEADER_BYTES as u64).map_err(|_| ShmError::Truncated {
                path: path.to_path_buf(),
                expected: size,
                actual: map.len() as u64,
            })?;
        let config = Some(opts.config(seed));
        let seg = Self::attach_region(map, file, path, header, region_len, opts, config)?;
        header.store(w::STATE, READY);
        Ok(seg)
    }

    /// Opens an existing segment, waiting (up to the configured time) for its creator
    /// to finish.
    pub fn open(name: &str, opts: &Options) -> Result<Segment, ShmError> {
        Self::open_inner(&resolve(name)?, opts, false)
    }

    /// Opens the segment, or creates it if it does not exist. Safe to call from many
    /// processes at once: exactly one creates it, the others wait for it.
    pub fn open_or_create(name: &str, opts: &Options) -> Result<Segment, ShmError> {
        let path = resolve(name)?;
        opts.validate()?;
        loop {
            match Self::create(name, opts) {
                Ok(s) => return Ok(s),
                Err(ShmError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
            match Self::open_inner(&path, opts, true) {
                // Removed between our create and open: try again.
                Err(ShmError::NotFound(_)) => continue,
                r => return r,
            }
        }
    }

    fn open_inner(path: &Path, opts: &Options, may_create: bool) -> Result<Segment, ShmError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match (e.kind(), e.raw_os_error()) {
                (std::io::ErrorKind::NotFound, _) => ShmError::NotFound(path.to_path_buf()),
                (_, Some(libc::ELOOP)) => ShmError::Symlink(path.to_path_buf()),
                (_, Some(libc::EISDIR)) => ShmError::NotAFile(path.to_path_buf()),
                _ => ShmError::Io {
                    path: path.to_path_buf(),
                    op: "open",
                    source: e,
                },
            })?;
        let meta = file.metadata().map_err(io_err(path, "stat"))?;
        if !meta.file_type().is_file() {
            return Err(ShmError::NotAFile(path.to_path_buf()));
        }
        // SAFETY: `geteuid` has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me && !opts.allow_foreign_owner {
            return Err(ShmError::WrongOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(ShmError::ModeTooOpen {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o7777,
            });
        }
        let deadline = Instant::now() + opts.wait;
        loop {
            let len = file.metadata().map_err(io_err(path, "stat"))?.len();
            // (The mapping's own length is what counts: the file may have changed size
            // since `stat`.)
            let map = if len >= HEADER_BYTES as u64 {
                Some(MmapRaw::map_raw(&file).map_err(io_err(path, "map"))?)
            } else {
                None
            };
            if let Some(map) = map.filter(|m| m.len() >= HEADER_BYTES) {
                let len = map.len() as u64;
                // SAFETY: page-aligned mapping of at least HEADER_BYTES (checked just
                // above), kept alive by `map` for as long as `header` is used, accessed
                // only atomically.
                let header = unsafe { Header::new(map.as_mut_ptr()) };
                if header.load(w::MAGIC) != MAGIC {
                    if header.load(w::MAGIC) != 0 || header.load(w::STATE) != 0 {
                        return Err(ShmError::NotASegment(path.to_path_buf()));
                    }
                } else if header.load(w::STATE) == READY {
                    return Self::attach_checked(map, &file, path, header, len, opts);
                }
            }
            // Not ready. Is anybody still making it?
            if flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
                // Nobody: we hold the creation lock. What did the creator leave?
                match Self::settle_unready(&file, path) {
                    Ok(Unready::Ready) => {
                        flock(&file, libc::LOCK_UN);
                        continue;
                    }
                    Ok(Unready::OtherVersion(found)) => {
                        flock(&file, libc::LOCK_UN);
                        return Err(ShmError::UnsupportedVersion {
                            path: path.to_path_buf(),
                            found,
                            supported: VERSION,
                        });
                    }
                    Ok(Unready::Incomplete) => {}
                    Err(e) => {
                        flock(&file, libc::LOCK_UN);
                        return Err(e);
                    }
                }
                if !may_create {
                    flock(&file, libc::LOCK_UN);
                    return Err(ShmError::CreatorDied(path.to_path_buf()));
                }
                // The creator died mid-way: start over, holding the lock.
                let result = file
                    .set_len(0)
                    .map_err(io_err(path, "truncate"))
                    .and_then(|_| Self::initialise(&file, path, opts));
                flock(&file, libc::LOCK_UN);
                return result;
            }
            if Instant::now() >= deadline {
                return Err(ShmError::Timeout(path.to_path_buf()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Validates the header of a ready segment, then attaches its cache.
    fn attach_checked(
        map: MmapRaw,
        file: &File,
        path: &Path,
        header: Header,
        len: u64,
        opts: &Options,
    ) -> Result<Segment, ShmError> {
        let region_len = Self::check_header(path, header, len)?;
        Self::attach_region(map, file, path, header, region_len, opts, None)
    }

    /// Checks everything in the header but the state word — version, checksum, file
    /// length, region bounds — on one copy of its fields, and returns the cache
    /// region's length from that copy (the header itself is never read again: another
    /// process could change it at any moment).
    fn check_header(path: &Path, header: Header, len: u64) -> Result<usize, ShmError> {
        let p = path.to_path_buf();
        let f = header.snapshot();
        let version = f[w::VERSION];
        if version != VERSION {
            return Err(ShmError::UnsupportedVersion {
                path: p,
                found: version,
                supported: VERSION,
            });
        }
        if f[w::CHECKSUM] != checksum_of(&f) {
            return Err(ShmError::CorruptHeader(p, "header checksum mismatch"));
        }
        let file_len = f[w::FILE_LEN];
        if len < file_len {
            return Err(ShmError::Truncated {
                path: p,
                expected: file_len,
                actual: len,
            });
        }
        // (`len` is the length of a mapping, so a region within it fits in `usize`.)
        let region_len = file_len
            .checked_sub(HEADER_BYTES as u64)
            .filter(|&r| r == f[w::REGION_LEN])
            .and_then(|r| usize::try_from(r).ok());
        match region_len {
            Some(r) if f[w::REGION_OFF] == HEADER_BYTES as u64 && f[w::SLOTS] == OWNER_SLOTS => {
                Ok(r)
            }
            _ => Err(ShmError::CorruptHeader(
                p,
                "region bounds or owner table size",
            )),
        }
    }

    /// For the holder of a segment's creation lock, when its state word does not say
    /// ready: classifies what the creator left, and marks a complete segment ready.
    ///
    /// A complete, valid header and cache region mean that the creator died just
    /// before its last store, or that the state word alone was damaged — in which case
    /// processes may well be attached. Either way the segment is whole: it is marked
    /// ready, never re-formatted under them.
    fn settle_unready(file: &File, path: &Path) -> Result<Unready, ShmError> {
        let len = file.metadata().map_err(io_err(path, "stat"))?.len();
        if len < HEADER_BYTES as u64 {
            return Ok(Unready::Incomplete);
        }
        let map = MmapRaw::map_raw(file).map_err(io_err(path, "map"))?;
        if map.len() < HEADER_BYTES {
            return Ok(Unready::Incomplete);
        }
        let len = map.len() as u64;
        // SAFETY: page-aligned mapping of at least HEADER_BYTES (checked just above),
        // kept alive by `map` for as long as `header` is used, accessed only
        // atomically.
        let header = unsafe { Header::new(map.as_mut_ptr()) };
        if header.load(w::MAGIC) != MAGIC {
            return Ok(Unready::Incomplete);
        }
        if header.load(w::STATE) == READY {
            return Ok(Unready::Ready);
        }
        let version = header.load(w::VERSION);
        if version != VERSION {
            return Ok(Unready::OtherVersion(version));
        }
        let Ok(region_len) = Self::check_header(path, header, len) else {
            return Ok(Unready::Incomplete);
        };
        if map.len().saturating_sub(HEADER_BYTES) < region_len {
            return Ok(Unready::Incomplete);
        }
        // SAFETY: the region lies within the mapping (checked just above), which `map`
        // keeps alive until the probe is dropped at the end of this function; every
        // process accesses it only through atomic words.
        let probe = unsafe {
            ByteRegion::from_raw_parts(map.as_mut_ptr().wrapping_add(HEADER_BYTES), region_len)
        };
        // `attach` only reads, and succeeds only on a completely formatted region.
        if probe.and_then(Cache::attach).is_err() {
            return Ok(Unready::Incomplete);
        }
        header.store(w::STATE, READY);
        Ok(Unready::Ready)
    }

    /// Claims an owner slot and formats (`config` given) or attaches the cache region.
    fn attach_region(
        map: MmapRaw,
        file: &File,
        path: &Path,
        header: Header,
        region_len: usize,
        opts: &Options,
        config: Option<Config>,
    ) -> Result<Segment, ShmError> {
        if map.len().saturating_sub(HEADER_BYTES) < region_len {
            return Err(ShmError::Truncated {
                path: path.to_path_buf(),
                expected: (HEADER_BYTES as u64).saturating_add(region_len as u64),
                actual: map.len() as u64,
            });
        }
        let meta = file.metadata().map_err(io_err(path, "stat"))?;
        let file_id = (meta.dev(), meta.ino());
        let region_ptr = map.as_mut_ptr().wrapping_add(HEADER_BYTES);
        if config.is_none() {
            // Validate the cache region before writing anything (the owner slot), so
            // that a refused segment is left exactly as it was.
            // SAFETY: as below; this handle only reads the header and is dropped at once.
            let probe = unsafe { ByteRegion::from_raw_parts(region_ptr, region_len) }?;
            Cache::attach(probe)?;
        }
        let (pid, start) = process::me().map_err(io_err(path, "read /proc/self/stat"))?;
        let me = process::pack(pid, start);
        let id = header
            .claim_owner(me, OWNER_SLOTS)
            .ok_or_else(|| ShmError::TooManyProcesses(path.to_path_buf()))?;
        let hooks = ShmHooks::new(header, OWNER_SLOTS, me, id, opts.lock_timeout);
        // SAFETY: the region lies within the mapping (checked above: HEADER_BYTES +
        // region_len ≤ map.len()); the mapping is kept alive by the `Segment`, which
        // drops the cache before the mapping; every process accesses it only through
        // atomic words.
        let region = unsafe { ByteRegion::from_raw_parts(region_ptr, region_len) };
        let region = match region {
            Ok(r) => r,
            Err(e) => {
                hooks.release();
                return Err(e.into());
            }
        };
        let cache = match config {
            Some(cfg) => Cache::format_with_hooks(region, &cfg, hooks),
            None => Cache::attach_with_hooks(region, hooks),
        };
        match cache {
            Ok(cache) => Ok(Segment {
                cache,
                map,
                path: path.to_path_buf(),
                file_id,
            }),
            Err(e) => {
                header.release_owner(id, me);
                Err(e.into())
            }
        }
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache inside the segment (the full `cachee-core` API).
    pub fn cache(&self) -> &Cache<ByteRegion<'static>, ShmHooks> {
        &self.cache
    }

    /// Bytes of the segment file.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// Whether the segment's path still names the file this handle has mapped.
    ///
    /// A segment removed ([`destroy`]) or replaced (re-created, or another file renamed
    /// over its name) while attached stays fully usable through this handle — the
    /// mapping keeps the old file alive — but processes that open the name from then on
    /// get the new file, or none: the two groups no longer share a cache. A
    /// long-running process can call this now and then (it costs one `stat`) and
    /// reopen the segment when it returns `false`.
    pub fn is_current(&self) -> Result<bool, ShmError> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) => Ok((m.dev(), m.ino()) == self.file_id),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ShmError::Io {
                path: self.path.clone(),
                op: "stat",
                source: e,
            }),
        }
    }
}

/// Removes a segment's file. Processes that have it mapped keep using their mapping.
pub fn destroy(name: &str) -> Result<(), ShmError> {
    let path = resolve(name)?;
    let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ShmError::NotFound(path.clone()),
        _ => ShmError::Io {
            path: path.clone(),
            op: "stat",
            source: e,
        },
    })?;
    if meta.file_type().is_symlink() {
        return Err(ShmError::Symlink(path));
    }
    std::fs::remove_file(&path).map_err(|e| ShmError::Io {
        path,
        op: "remove",
        source: e,
    })
}

fn seed_from(now: u64, me: u64) -> u64 {
    let mut x = now ^ me.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
    // Mix in the address of a stack variable (randomised per process by ASLR).
    let probe = 0u8;
    x ^= (&probe as *const u8).addr() as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
