//! Concurrent smoke harness: two threads replay two fuzzed operation streams on one
//! cache.
//!
//! Keys come in three kinds:
//!
//! - *counters* (ids 0–3): only ever hold decimal numbers (`set` of a number,
//!   `incr`/`decr` with an initial value), so a read must parse as a number and
//!   `incr` must never fail with `NotANumber`;
//! - *shared* (ids 4–9): written by both threads with stamped values (key and
//!   generation encoded, `common::stamped`), so a read must be an intact stamp of
//!   that very key, of a generation some thread has already begun writing;
//! - *owned* (ids 10–15): written only by thread `id % 2`, so its reads must return
//!   exactly its last write or miss (eviction), never an older or foreign value.
//!
//! Afterwards `check` must find nothing, every entry `for_each` visits must pass the
//! same tests, and each owned key holds its owner's last value or nothing.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use bolero::TypeGenerator;
use cachee_core::{AtomicWord, Cache, CasOutcome, Config};

use crate::common::{self, FuzzHooks, check_stamp, parse_decimal, stamped};

/// One input: a configuration and one operation stream per thread.
#[derive(Debug, Clone, TypeGenerator)]
pub struct Input {
    /// Selects the configuration.
    pub setup: u8,
    /// Thread 0's operations.
    pub a: Vec<COp>,
    /// Thread 1's operations.
    pub b: Vec<COp>,
    /// Each thread replays its stream `1 + rounds % 4` times (longer overlap).
    pub rounds: u8,
}

/// One operation of a thread.
#[derive(Debug, Clone, Copy, TypeGenerator)]
pub enum COp {
    /// Write a key (a number for a counter, a stamped value of length `len` otherwise).
    Set {
        /// Key id.
        key: u8,
        /// Value length selector.
        len: u16,
    },
    /// Read a key and check what comes back.
    Get {
        /// Key id.
        key: u8,
    },
    /// Remove a key.
    Remove {
        /// Key id.
        key: u8,
    },
    /// `incr` a counter.
    Incr {
        /// Counter id.
        key: u8,
        /// Amount.
        delta: u8,
    },
    /// `decr` a counter.
    Decr {
        /// Counter id.
        key: u8,
        /// Amount.
        delta: u8,
    },
    /// Read then compare-and-swap a key.
    Cas {
        /// Key id.
        key: u8,
        /// Value length selector.
        len: u16,
    },
    /// Write a run of keys (forces eviction and page moves).
    Burst {
        /// First key id.
        key: u8,
        /// How many (modulo 16, plus one).
        count: u8,
        /// Value length selector.
        len: u16,
    },
    /// Walk the cache.
    ForEach,
}

const KEYS: u8 = 16;
const COUNTERS: u8 = 4;
const SHARED_END: u8 = 10;

fn configs() -> [(usize, Config); 3] {
    [
        (
            16 << 10,
            Config::new()
                .shards(1)
                .page_size(512)
                .max_key_len(16)
                .max_value_len(200)
                .seed(21),
        ),
        (
            32 << 10,
            Config::new()
                .shards(2)
                .page_size(1024)
                .max_key_len(16)
                .max_value_len(400)
                .checksums(true)
                .seed(22),
        ),
        (
            16 << 10,
            Config::new()
                .shards(1)
                .page_size(1024)
                .max_key_len(16)
                .max_value_len(300)
                .expected_entry(8, 300)
                .seed(23),
        ),
    ]
}

fn key_bytes(id: u8) -> Vec<u8> {
    format!("key-{id:02}").into_bytes()
}

/// What one thread knows about the keys it owns: `Some(value)` after a write,
/// `None` after a remove or before any write.
type Owned = Vec<Option<Vec<u8>>>;

struct Shared<'a> {
    cache: Cache<&'a [AtomicWord], FuzzHooks<'a>>,
    /// Per thread: the next generation it will write (generations it has begun are
    /// below it).
    next_gen: [AtomicU64; 2],
    max_value: usize,
}

impl Shared<'_> {
    fn value_len(&self, sel: u16) -> usize {
        16 + sel as usize % (self.max_value - 15)
    }

    fn fresh_value(&self, t: usize, id: u8, sel: u16) -> Vec<u8> {
        let seq = self.next_gen[t].fetch_add(1, Ordering::SeqCst);
        stamped(id as u64, ((t as u64) << 32) | seq, self.value_len(sel))
    }

    /// Checks a value read for key `id` by thread `t`.
    fn check_read(&self, t: usize, id: u8, v: &[u8], owned: &Owned, what: &str) {
        if id < COUNTERS {
            if parse_decimal(v).is_none() {
                panic!("thread {t} {what}: counter {id} holds {v:?}, not a number");
            }
            return;
        }
        let Some(generation) = check_stamp(id as u64, v) else {
            panic!(
                "thread {t} {what}: key {id} holds a value that is not an intact stamp for it ({} bytes: {:?}...)",
                v.len(),
                &v[..v.len().min(24)]
            );
        };
        let writer = (generation >> 32) as usize;
        let seq = generation & 0xFFFF_FFFF;
        if writer > 1 || seq >= self.next_gen[writer].load(Ordering::SeqCst) {
            panic!("thread {t} {what}: key {id} holds generation {generation:#x}, never written");
        }
        if id >= SHARED_END && id as usize % 2 == t {
            let want = owned[id as usize].as_deref();
            if want != Some(v) {
                panic!(
                    "thread {t} {what}: owned key {id} holds generation {generation:#x}, but the owner last wrote {:?}",
                    want.map(|w| check_stamp(id as u64, w))
                );
            }
        }
    }

    fn run(&self, t: usize, ops: &[COp]) -> Owned {
        let mut owned: Owned = vec![None; KEYS as usize];
        let mut buf = vec![0u8; self.max_value];
        // Keys this thread may write: counters, shared keys and its own keys.
        let writable = |id: u8| -> u8 {
            let id = id % KEYS;
            if id >= SHARED_END && id as usize % 2 != t {
                // Someone else's key: write the neighbouring one of ours instead.
                if id + 1 < KEYS { id + 1 } else { id - 1 }
            } else {
                id
            }
        };
        for op in ops {
            match *op {
                COp::Set { key, len } => self.set(t, writable(key), len, &mut owned),
                COp::Burst { key, count, len } => {
                    for i in 0..count % 16 + 1 {
                        self.set(t, writable(key.wrapping_add(i)), len, &mut owned);
                    }
                }
                COp::Get { key } => {
                    let id = key % KEYS;
                    match self.cache.get(&key_bytes(id), &mut buf) {
                        Ok(Some(n)) => self.check_read(t, id, &buf[..n], &owned, "get"),
                        Ok(None) => {}
                        Err(e) => panic!("thread {t}: get failed: {e}"),
                    }
                }
                COp::Remove { key } => {
                    let id = writable(key);
                    if let Err(e) = self.cache.remove(&key_bytes(id)) {
                        panic!("thread {t}: remove failed: {e}");
                    }
                    if id >= SHARED_END {
                        owned[id as usize] = None;
                    }
                }
                COp::Incr { key, delta } | COp::Decr { key, delta } => {
                    let id = key % COUNTERS;
                    let up = matches!(op, COp::Incr { .. });
                    let k = key_bytes(id);
                    let r = if up {
                        self.cache.incr(&k, delta as u64, Some(delta as u64))
                    } else {
                        self.cache.decr(&k, delta as u64, Some(0))
                    };
                    match r {
                        Ok(Some(_)) => {}
                        other => panic!("thread {t}: incr/decr of counter {id} gave {other:?}"),
                    }
                }
                COp::Cas { key, len } => {
                    let id = writable(key);
                    let k = key_bytes(id);
                    match self.cache.get_entry(&k, &mut buf) {
                        Ok(Some(h)) => {
                            self.check_read(t, id, &buf[..h.len], &owned, "get_entry");
                            let v = if id < COUNTERS {
                                (h.len as u64).to_string().into_bytes()
                            } else {
                                self.fresh_value(t, id, len)
                            };
                            match self.cache.cas(&k, h.token, &v, None) {
                                Ok(CasOutcome::Stored) => {
                                    if id >= SHARED_END {
                                        owned[id as usize] = Some(v);
                                    }
                                }
                                Ok(CasOutcome::Mismatch | CasOutcome::NotFound) => {
                                    // Another writer (or an eviction, or a page move)
                                    // came between; only a shared key may change.
                                    if id >= SHARED_END {
                                        // Our own key: the value is unchanged or gone.
                                        if let Ok(Some(n)) = self.cache.get(&k, &mut buf) {
                                            self.check_read(
                                                t,
                                                id,
                                                &buf[..n],
                                                &owned,
                                                "get after cas",
                                            );
                                        }
                                    }
                                }
                                Err(e) => panic!("thread {t}: cas failed: {e}"),
                            }
                        }
                        Ok(None) => {}
                        Err(e) => panic!("thread {t}: get_entry failed: {e}"),
                    }
                }
                COp::ForEach => self.walk(t, &owned),
            }
        }
        owned
    }

    fn set(&self, t: usize, id: u8, len: u16, owned: &mut Owned) {
        let v = if id < COUNTERS {
            (len as u64 * 7919).to_string().into_bytes()
        } else {
            self.fresh_value(t, id, len)
        };
        match self.cache.set(&key_bytes(id), &v) {
            Ok(()) => {
                if id >= SHARED_END {
                    owned[id as usize] = Some(v);
                }
            }
            Err(e) => panic!("thread {t}: set failed: {e}"),
        }
    }

    fn walk(&self, t: usize, owned: &Owned) {
        let mut kb = vec![0u8; 16];
        let mut vb = vec![0u8; self.max_value];
        let r = self.cache.for_each(&mut kb, &mut vb, |k, v| {
            let id = (0..KEYS).find(|&i| key_bytes(i) == k);
            match id {
                Some(id) => self.check_read(t, id, v, owned, "for_each"),
                None => panic!("thread {t}: for_each visited unknown key {k:?}"),
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = r {
            panic!("thread {t}: for_each failed: {e}");
        }
    }
}

/// Runs both streams at once on a fresh cache, then checks the result.
pub fn run(input: &Input) {
    let cfgs = configs();
    let (bytes, cfg) = &cfgs[input.setup as usize % cfgs.len()];
    let words = common::region(*bytes);
    // Never give up on a lock held by the other thread (it may be descheduled); the
    // watchdog or the fuzzer's timeout catches a real hang.
    let mut hooks = FuzzHooks::new(None);
    hooks.patience = u32::MAX;
    let cache = Cache::format_with_hooks(&words[..], cfg, hooks).expect("format");
    let shared = Shared {
        max_value: cache.max_value_len(),
        cache,
        next_gen: [AtomicU64::new(0), AtomicU64::new(0)],
    };
    let rounds = 1 + input.rounds as usize % 4;
    let a_ops: Vec<COp> = (0..rounds).flat_map(|_| input.a.iter().copied()).collect();
    let b_ops: Vec<COp> = (0..rounds).flat_map(|_| input.b.iter().copied()).collect();
    let start = std::sync::Barrier::new(2);
    let (oa, ob) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            start.wait();
            shared.run(0, &a_ops)
        });
        start.wait();
        let ob = shared.run(1, &b_ops);
        (
            a.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            ob,
        )
    });
    common::assert_valid(&shared.cache, &"both threads done");
    // Owned keys: the owner's last write or nothing.
    let mut buf = vec![0u8; shared.max_value];
    for id in SHARED_END..KEYS {
        let owner = &[&oa, &ob][id as usize % 2];
        match shared.cache.get(&key_bytes(id), &mut buf) {
            Ok(Some(n)) => shared.check_read(id as usize % 2, id, &buf[..n], owner, "final get"),
            Ok(None) => {}
            Err(e) => panic!("final get failed: {e}"),
        }
    }
    shared.walk(0, &oa);
}
