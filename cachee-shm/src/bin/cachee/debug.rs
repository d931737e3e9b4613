//! `cachee debug …`: fault injection for the multi-process tests. Only built with the
//! `testing` feature (which test builds enable); never in a release.
//!
//! ```text
//! cachee debug die-holding-lock SEG KEY   # half-writes KEY, keeps its shard lock, waits to be killed
//! cachee debug open-or-create SEG         # races to create SEG; prints the first writer's pid
//! cachee debug writer SEG N               # writes N values that encode their key
//! cachee debug chaos-worker SEG CTL INDEX [--read-ratio 0.95] [--keys 20000]
//!                           [--max-value 1000] [--lock-timeout 1s]
//!                                         # verified workload until CTL says stop
//! ```
//!
//! # The chaos worker
//!
//! The `bench --verify` workload, made for being killed: it starts in milliseconds (no
//! precomputed key stream), and it publishes its counters in a shared control file as
//! it goes, so that a worker killed with `SIGKILL` has already reported everything but
//! its last few operations. Each write stores a value that encodes its key, its length
//! and a generation; each hit is checked against that. Every operation is timed.
//!
//! The control file is `8 + 16 × 64` little-endian 64-bit words, accessed atomically:
//! word 0 is the stop flag, and worker `i`'s sixteen words start at `8 + 16 i`, indexed
//! by the constants in [`ctl`]. Counters are added to, never reset, so the totals of a
//! worker slot cover every incarnation started in it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachee_core::Hooks;
use cachee_shm::{CacheError, Options, Segment, ShmError};
use memmap2::MmapRaw;
use workload::{Rng, Zipf};

use crate::args::{Args, Fail, UNUSABLE, parse_duration, parse_num, parse_size, usage};
use crate::bench::{check_stamp, key_of, stamped};

/// Word indices of the chaos control file (see the module docs).
pub mod ctl {
    /// Set to non-zero to make every worker stop.
    pub const STOP: usize = 0;
    /// Worker slots.
    pub const WORKERS: usize = 64;
    /// Where worker 0's slot starts; each slot is [`SLOT`] words.
    pub const FIRST: usize = 8;
    pub const SLOT: usize = 16;
    pub const WORDS: usize = FIRST + SLOT * WORKERS;
    // Offsets within a slot.
    /// Operations done (published every 256 operations).
    pub const OPS: usize = 0;
    pub const GETS: usize = 1;
    pub const HITS: usize = 2;
    /// Hits whose value did not match its key: must stay 0.
    pub const CORRUPT: usize = 3;
    /// Writes that gave up on a lock held by a live process (`Busy`).
    pub const BUSY: usize = 4;
    /// Any other error (but `NoSpace`, counted in [`NO_SPACE`]).
    pub const ERRORS: usize = 5;
    /// Longest single operation, in nanoseconds.
    pub const MAX_NS: usize = 6;
    /// The current incarnation's owner id (what its shard locks hold).
    pub const OWNER: usize = 7;
    /// The current incarnation's pid.
    pub const PID: usize = 8;
    /// Incarnations started.
    pub const STARTS: usize = 9;
    pub const SETS: usize = 10;
    /// Writes refused with `NoSpace` (the shard says it has no room).
    pub const NO_SPACE: usize = 11;
}

pub fn run(mut a: Args) -> Result<(), Fail> {
    let what = a.positional_str("debug command")?;
    let seg = a.positional_str("segment")?;
    if what == "chaos-worker" {
        return chaos_worker(a, &seg);
    }
    let opts = Options::new().size(4 << 20).max_value(4096);
    match what.as_str() {
        "die-holding-lock" => {
            let key = a.positional().ok_or_else(|| usage("missing key"))?;
            a.done()?;
            let s = Segment::open(&seg, &opts)?;
            let me = s.cache().hooks().owner_id();
            s.cache()
                .testing_die_mid_set(&key, &[0xEE; 100], me)
                .map_err(cachee_shm::ShmError::from)?;
            println!("LOCKED {}", s.cache().testing_shard_of(&key));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "open-or-create" => {
            a.done()?;
            let s = Segment::open_or_create(&seg, &opts)?;
            s.add(b"first", std::process::id().to_string().as_bytes(), None)?;
            let first = s.get(b"first")?.ok_or_else(|| usage("`first` vanished"))?;
            println!("FIRST {}", String::from_utf8_lossy(&first));
            Ok(())
        }
        "writer" => {
            let n: u64 = crate::args::parse_num("count", &a.positional_str("count")?)?;
            a.done()?;
            let s = Segment::open(&seg, &opts)?;
            let pid = std::process::id() as u64;
            for i in 0..n {
                let key = (i % 500).to_le_bytes();
                let mut v = vec![0u8; 64 + (i % 700) as usize];
                v[..8].copy_from_slice(&(i % 500).to_le_bytes());
                v[8..16].copy_from_slice(&((pid << 32) | i).to_le_bytes());
                s.set(&key, &v)?;
            }
            println!("DONE");
            Ok(())
        }
        other => Err(usage(format!("unknown debug command {other:?}"))),
    }
}

/// The chaos control file, mapped.
struct ChaosCtl {
    map: MmapRaw,
}

impl ChaosCtl {
    fn open(path: &str) -> Result<ChaosCtl, Fail> {
        let fail = |e: std::io::Error| Fail {
            code: UNUSABLE,
            msg: format!("{path}: {e}"),
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(fail)?;
        let map = MmapRaw::map_raw(&f).map_err(fail)?;
        if map.len() < ctl::WORDS * 8 {
            return Err(Fail {
                code: UNUSABLE,
                msg: format!("{path}: control file too short"),
            });
        }
        Ok(ChaosCtl { map })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < ctl::WORDS);
        // SAFETY: `i < ctl::WORDS` and the mapping holds at least that many words
        // (checked in `open`); it is page-aligned and lives as long as `self`; every
        // process accesses it only through atomic 64-bit words.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>().add(i)) }
    }
}

/// Local counters, added to the worker's slot every 256 operations. (Wrong values,
/// `Busy`, other errors and the longest operation are published as they happen.)
#[derive(Clone, Copy, Default)]
struct Tally {
    ops: u64,
    gets: u64,
    hits: u64,
    sets: u64,
}

fn chaos_worker(mut a: Args, seg: &str) -> Result<(), Fail> {
    let read_ratio = match a.option("read-ratio")? {
        Some(v) => parse_num::<f64>("read-ratio", &v)?,
        None => 0.95,
    };
    if !(0.0..=1.0).contains(&read_ratio) {
        return Err(usage("--read-ratio must be between 0 and 1"));
    }
    let keys = match a.option("keys")? {
        Some(v) => parse_num::<u64>("keys", &v)?,
        None => 20_000,
    };
    let max_value = match a.option("max-value")? {
        Some(v) => parse_size(&v)? as usize,
        None => 1000,
    };
    if !(16..1 << 24).contains(&max_value) {
        return Err(usage("--max-value must be from 16 bytes to 16 MiB"));
    }
    let lock_timeout = match a.option("lock-timeout")? {
        Some(v) => parse_duration(&v)?,
        None => Duration::from_secs(1),
    };
    let ctl_path = a.positional_str("control file")?;
    let index: usize = parse_num("index", &a.positional_str("worker index")?)?;
    a.done()?;
    if index >= ctl::WORKERS {
        return Err(usage("worker index out of range"));
    }
    let zipf = Zipf::new(keys, 0.99).map_err(|e| usage(format!("--keys: {e}")))?;
    let ctl = ChaosCtl::open(&ctl_path)?;
    let s = Segment::open(seg, &Options::new().lock_timeout(lock_timeout))?;
    if s.cache().max_value_len() < max_value {
        return Err(usage(
            "--max-value exceeds the segment's maximum value length",
        ));
    }
    let slot = |i: usize| ctl.word(ctl::FIRST + ctl::SLOT * index + i);
    let pid = std::process::id() as u64;
    slot(ctl::OWNER).store(s.cache().hooks().owner_id() as u64, Ordering::Release);
    slot(ctl::PID).store(pid, Ordering::Release);
    slot(ctl::STARTS).fetch_add(1, Ordering::AcqRel);

    let mut rng = Rng::new(pid ^ cachee_shm::now_millis().rotate_left(20));
    let mut value = vec![0u8; max_value];
    let mut buf = vec![0u8; s.cache().max_value_len()];
    let mut scratch = vec![0u8; buf.len()];
    // Generations are unique per incarnation (pid in the high bits) and carry the
    // value's length in their low 24 bits, so a truncated value is caught too.
    let mut counter = pid << 40;
    let mut t = Tally::default();
    let mut published = Tally::default();
    let mut max_ns = 0u64;
    let mut reported_errors = 0;
    while ctl.word(ctl::STOP).load(Ordering::Acquire) == 0 {
        for _ in 0..256 {
            let key = key_of(zipf.sample(&mut rng));
            let kb = key.to_le_bytes();
            let started = Instant::now();
            let result = if rng.next_f64() < read_ratio {
                t.gets += 1;
                match s.get_into(&kb, &mut buf) {
                    Ok(Some(n)) => {
                        t.hits += 1;
                        let v = &buf[..n];
                        let generation = u64::from_le_bytes(
                            v.get(8..16)
                                .and_then(|g| g.try_into().ok())
                                .unwrap_or_default(),
                        );
                        if !check_stamp(key, v, &mut scratch) || generation & 0xff_ffff != n as u64
                        {
                            slot(ctl::CORRUPT).fetch_add(1, Ordering::AcqRel);
                            eprintln!(
                                "chaos-worker {index}: WRONG VALUE for key {key:#x}: {n} bytes, generation {generation:#x}"
                            );
                        }
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                t.sets += 1;
                let len = 16 + rng.below((max_value - 15) as u64) as usize;
                counter += 1 << 24;
                stamped(key, counter | len as u64, &mut value[..len]);
                match rng.below(20) {
                    0..=1 => s.remove(&kb).map(drop),
                    2..=4 => s.set_ttl(
                        &kb,
                        &value[..len],
                        Duration::from_millis(1 + rng.below(200)),
                    ),
                    _ => s.set(&kb, &value[..len]),
                }
            };
            let ns = started.elapsed().as_nanos() as u64;
            if ns > max_ns {
                max_ns = ns;
                slot(ctl::MAX_NS).fetch_max(ns, Ordering::AcqRel);
            }
            match result {
                Ok(()) => {}
                // Rare events are published at once (a worker stuck behind a frozen
                // lock may take long to finish its batch).
                Err(ShmError::Cache(CacheError::Busy)) => {
                    slot(ctl::BUSY).fetch_add(1, Ordering::AcqRel);
                }
                Err(ShmError::Cache(CacheError::NoSpace)) => {
                    slot(ctl::NO_SPACE).fetch_add(1, Ordering::AcqRel);
                }
                Err(e) => {
                    slot(ctl::ERRORS).fetch_add(1, Ordering::AcqRel);
                    if reported_errors < 5 {
                        reported_errors += 1;
                        eprintln!("chaos-worker {index}: {e}");
                    }
                }
            }
        }
        t.ops += 256;
        for (i, now, before) in [
            (ctl::OPS, t.ops, published.ops),
            (ctl::GETS, t.gets, published.gets),
            (ctl::HITS, t.hits, published.hits),
            (ctl::SETS, t.sets, published.sets),
        ] {
            if now != before {
                slot(i).fetch_add(now - before, Ordering::AcqRel);
            }
        }
        published = t;
    }
    println!("DONE {} ops", t.ops);
    Ok(())
}
