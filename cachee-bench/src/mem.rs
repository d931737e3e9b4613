//! Memory for in-process contenders: an anonymous mapping (optionally backed by
//! transparent huge pages) and the process's resident set size.

/// An anonymous private mapping, unmapped on drop.
pub struct Anon {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; sharing the pointer between
// threads is as safe as sharing a `&mut [u8]` split by the cache's own atomics.
unsafe impl Send for Anon {}
// SAFETY: see above; the cache only accesses it through atomic words.
unsafe impl Sync for Anon {}

impl Anon {
    pub fn new(len: usize, huge: bool) -> std::io::Result<Anon> {
        // SAFETY: an anonymous private mapping has no preconditions.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        if huge {
            // SAFETY: `ptr..ptr+len` is the mapping just created. Failure is harmless
            // (the kernel then uses small pages), so the result is ignored.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        Ok(Anon {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `new`, exactly once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Resident set size of this process, in bytes.
pub fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The machine's online CPUs. Not `available_parallelism`, which honours the calling
/// thread's affinity mask: after `pin(0)` it answers 1, and every thread pinned by
/// index would land on CPU 0.
pub fn cpus() -> usize {
    // SAFETY: `sysconf` reads a system constant; it has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// Pins the calling thread to `cpu` (best effort).
pub fn pin(cpu: usize) {
    // SAFETY: `set` is a plain bitmask on the stack; `sched_setaffinity(0, ..)` affects
    // only the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Resident set size of process `pid`, in bytes (0 if it cannot be read).
pub fn rss_of(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}
