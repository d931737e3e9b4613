//! Helpers shared by the reliability tests: the `cachee` binary, unique segment names
//! that are removed even when a test fails, chaos workers and their control file.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

/// The `cachee` binary (built with the `testing` feature for tests).
pub fn cachee() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachee"))
}

/// Runs `cachee ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    cachee().args(args).output().expect("run cachee")
}

/// Exit code, or -1 if killed by a signal.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A segment name unique to this test process.
pub fn name(tag: &str) -> String {
    format!("cachee-rel-{tag}-{}", std::process::id())
}

/// Removes segments and files when dropped, also when the test panics.
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = cachee_shm::destroy(n);
            let _ = std::fs::remove_file(n);
            if let Ok(p) = cachee_shm::resolve(n) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A number from the environment (for the long forms of the tests), else `default`.
pub fn env_or(var: &str, default: f64) -> f64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The key the bench and chaos workers use for popularity rank `rank`.
pub fn key_of(rank: u64) -> u64 {
    workload::scramble(rank, 0x5eed) & !(1 << 63)
}

/// The value a chaos worker writes: key, generation (length in the low 24 bits), then
/// a stream derived from both. Mirrors `bench::stamped`.
pub fn stamped(key: u64, generation: u64, out: &mut [u8]) {
    let mut x = key ^ generation.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in out.chunks_mut(8) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out[..8].copy_from_slice(&key.to_le_bytes());
    out[8..16].copy_from_slice(&generation.to_le_bytes());
}

/// Whether `v` is a value a chaos worker (or [`stamped`] with the length convention)
/// wrote for `key`.
pub fn value_ok(key: &[u8], v: &[u8]) -> bool {
    let (Ok(k), Some(g)) = (<[u8; 8]>::try_from(key), v.get(8..16)) else {
        return false;
    };
    let key = u64::from_le_bytes(k);
    let generation = u64::from_le_bytes(g.try_into().unwrap());
    if generation & 0xff_ffff != v.len() as u64 {
        return false;
    }
    let mut want = vec![0u8; v.len()];
    stamped(key, generation, &mut want);
    want == v
}

/// Word layout of the chaos control file (mirrors `cachee debug`'s `ctl` module).
pub mod ctl {
    pub const STOP: usize = 0;
    pub const WORKERS: usize = 64;
    pub const FIRST: usize = 8;
    pub const SLOT: usize = 16;
    pub const WORDS: usize = FIRST + SLOT * WORKERS;
    pub const OPS: usize = 0;
    pub const GETS: usize = 1;
    pub const HITS: usize = 2;
    pub const CORRUPT: usize = 3;
    pub const BUSY: usize = 4;
    pub const ERRORS: usize = 5;
    pub const MAX_NS: usize = 6;
    pub const OWNER: usize = 7;
    pub const PID: usize = 8;
    pub const STARTS: usize = 9;
    pub const SETS: usize = 10;
    pub const NO_SPACE: usize = 11;
}

/// The control file the chaos workers report into.
pub struct Control {
    map: MmapRaw,
    pub path: String,
}

impl Control {
    /// Creates a zeroed control file under /dev/shm (removed by the caller's cleanup).
    pub fn create(path: &str) -> Control {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.set_len((ctl::WORDS * 8) as u64).unwrap();
        Control {
            map: MmapRaw::map_raw(&f).unwrap(),
            path: path.to_string(),
        }
    }

    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < ctl::WORDS && self.map.len() >= ctl::WORDS * 8);
        // SAFETY: `i` is within the mapping (checked just above), which is page-aligned,
        // lives as long as `self`, and is only ever accessed through atomic words.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>().add(i)) }
    }

    /// Word `field` of worker `w`'s slot.
    pub fn get(&self, w: usize, field: usize) -> u64 {
        self.word(ctl::FIRST + ctl::SLOT * w + field)
            .load(Ordering::Acquire)
    }

    pub fn set(&self, w: usize, field: usize, v: u64) {
        self.word(ctl::FIRST + ctl::SLOT * w + field)
            .store(v, Ordering::Release)
    }

    /// Sum of `field` over workers `0..n`.
    pub fn sum(&self, n: usize, field: usize) -> u64 {
        (0..n).map(|w| self.get(w, field)).sum()
    }

    pub fn max(&self, n: usize, field: usize) -> u64 {
        (0..n).map(|w| self.get(w, field)).max().unwrap_or(0)
    }

    pub fn stop(&self) {
        self.word(ctl::STOP).store(1, Ordering::Release);
    }
}

/// One chaos worker slot: the process currently running in it and how to restart it.
pub struct Worker {
    pub index: usize,
    pub child: Child,
    args: Vec<String>,
}

impl Worker {
    /// Starts `cachee debug chaos-worker SEG CTL INDEX EXTRA…`.
    pub fn spawn(seg: &str, ctl: &Control, index: usize, extra: &[&str]) -> Worker {
        let mut args: Vec<String> = vec![
            "debug".into(),
            "chaos-worker".into(),
            seg.into(),
            ctl.path.clone(),
            index.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Self::start(ctl, index, &args);
        Worker { index, child, args }
    }

    fn start(ctl: &Control, index: usize, args: &[String]) -> Child {
        // The owner id is published by the new process once it has attached.
        ctl.set(index, ctl::OWNER, 0);
        cachee()
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a chaos worker")
    }

    /// SIGKILLs the process, reaps it, and starts a new one in the same slot.
    pub fn kill_and_restart(&mut self, ctl: &Control) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::start(ctl, self.index, &self.args);
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Freezes the process with SIGSTOP and waits until it is stopped. Panics if the
    /// worker turns out to have exited on its own.
    pub fn freeze(&self) {
        signal(self.pid(), libc::SIGSTOP);
        let mut status = 0;
        // SAFETY: `waitpid` writes only to `status`; the pid is our unreaped child.
        // WUNTRACED reports the stop without reaping the child.
        let rc = unsafe { libc::waitpid(self.pid(), &mut status, libc::WUNTRACED) };
        assert_eq!(
            rc,
            self.pid(),
            "waitpid: {}",
            std::io::Error::last_os_error()
        );
        assert!(
            libc::WIFSTOPPED(status),
            "worker {} ended on its own (wait status {status:#x})",
            self.index
        );
    }

    pub fn thaw(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    /// Waits up to `limit` for the worker to exit; kills it and panics if it does not.
    pub fn finish(mut self, limit: Duration) -> Output {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = Vec::new();
                if let Some(mut pipe) = self.child.stdout.take() {
                    std::io::Read::read_to_end(&mut pipe, &mut out).unwrap();
                }
                return Output {
                    status,
                    stdout: out,
                    stderr: Vec::new(),
                };
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "worker {} did not stop within {limit:?}: it hangs",
                    self.index
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Never leave a process behind when a test fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is a child of this
    // process that has not been reaped, so it cannot name an unrelated process.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Waits until every worker has attached (published an owner id), up to 30 s.
pub fn wait_attached(ctl: &Control, workers: &mut [Worker]) {
    let t = Instant::now();
    while workers.iter().any(|w| ctl.get(w.index, ctl::OWNER) == 0) {
        for w in workers.iter_mut() {
            if let Some(status) = w.child.try_wait().unwrap() {
                panic!("worker {} exited before attaching: {status}", w.index);
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "workers never attached"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
