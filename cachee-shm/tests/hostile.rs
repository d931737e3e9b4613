//! A hostile writer: another process flips random bytes in the mapped segment while
//! readers and writers run. They may see misses and errors — never a crash, a hang or
//! a wrong value. `cachee verify` reports the damage and `cachee verify --repair` (or,
//! for a damaged header, re-creating the segment) brings the segment back.
//!
//! `HOSTILE_SECS` lengthens the flipping phase (default 3 s).

mod common;

use std::fs::OpenOptions;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachee_shm::{HEADER_BYTES, Options, Segment};
use common::{Cleanup, Control, Worker, code, ctl, env_or, name, run, stderr, stdout};
use memmap2::MmapRaw;
use workload::Rng;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const BLOCK_BOUND: Duration = Duration::from_secs(2);

/// The segment file mapped a second time, for damaging it.
struct Vandal {
    map: MmapRaw,
}

impl Vandal {
    fn new(seg: &str) -> Vandal {
        let path = cachee_shm::resolve(seg).unwrap();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        Vandal {
            map: MmapRaw::map_raw(&f).unwrap(),
        }
    }

    fn word(&self, byte: usize) -> &AtomicU64 {
        assert!(byte < self.map.len());
        // SAFETY: the word containing `byte` lies within the mapping (checked above;
        // the length is a multiple of 8), which is page-aligned and lives as long as
        // `self`. Every process accesses the segment only through atomic 64-bit words,
        // as this does.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(byte & !7).cast()) }
    }

    /// XORs `mask` (non-zero) into the byte at `byte`.
    fn flip(&self, byte: usize, mask: u8) {
        self.word(byte)
            .fetch_xor((mask as u64) << (8 * (byte % 8)), Ordering::Relaxed);
    }

    /// The `u32` field `i` of the cache region's header.
    fn region_field(&self, i: usize) -> u64 {
        let w = self.word(HEADER_BYTES + 4 * i).load(Ordering::Relaxed);
        if i % 2 == 0 { w & 0xffff_ffff } else { w >> 32 }
    }
}

fn stamped_fill(s: &Segment, keys: u64) {
    let mut v = vec![0u8; 600];
    for rank in 0..keys {
        let k = common::key_of(rank);
        let len = 16 + (rank as usize * 7) % 580;
        common::stamped(k, len as u64, &mut v[..len]);
        s.set(&k.to_le_bytes(), &v[..len]).unwrap();
    }
}

fn worker_args(read_ratio: &'static str) -> [&'static str; 8] {
    [
        "--read-ratio",
        read_ratio,
        "--keys",
        "8000",
        "--max-value",
        "600",
        "--lock-timeout",
        "200ms",
    ]
}

#[test]
fn random_byte_flips_never_crash_hang_or_lie() {
    let _serial = serial();
    let secs = env_or("HOSTILE_SECS", 3.0);
    let seg = name("flips");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = Segment::create(
        &seg,
        &Options::new().size(8 << 20).max_value(2048).shards(4),
    )
    .unwrap();
    stamped_fill(&s, 8000);
    let ctl = Control::create(&ctl_path);
    // Two readers and one process on the 95:5 mix.
    let mut workers = vec![
        Worker::spawn(&seg, &ctl, 0, &worker_args("1")),
        Worker::spawn(&seg, &ctl, 1, &worker_args("1")),
        Worker::spawn(&seg, &ctl, 2, &worker_args("0.95")),
    ];
    common::wait_attached(&ctl, &mut workers);

    let v = Vandal::new(&seg);
    let shard0 = HEADER_BYTES + v.region_field(21) as usize;
    let stride = (v.region_field(22) | v.region_field(23) << 32) as usize;
    let arena = v.region_field(25) as usize;
    let shards = s.cache().shards();
    assert!(stride > arena && arena > 0 && shard0 + shards * stride <= v.map.len());
    let mut rng = Rng::new(std::process::id() as u64 ^ 0xbad);
    let (mut flips, mut in_owners, mut in_meta, mut in_arena) = (0u64, 0u64, 0u64, 0u64);
    let mut progress = vec![0u64; workers.len()];
    let mut last_progress = Instant::now();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        // Where: the owner table (the segment header's 4 KiB of fixed fields are left
        // alone here — see the next test), a shard's header, index and page tables, or
        // its arena.
        let byte = match rng.below(20) {
            0..=1 => {
                in_owners += 1;
                4096 + rng.below(HEADER_BYTES as u64 - 4096) as usize
            }
            2..=10 => {
                in_meta += 1;
                shard0
                    + rng.below(shards as u64) as usize * stride
                    + rng.below(arena as u64) as usize
            }
            _ => {
                in_arena += 1;
                shard0
                    + rng.below(shards as u64) as usize * stride
                    + arena
                    + rng.below((stride - arena) as u64) as usize
            }
        };
        v.flip(byte, 1 + rng.below(255) as u8);
        flips += 1;
        std::thread::sleep(Duration::from_micros(500));
        // Every process keeps making progress (a hang would stop its counter).
        if last_progress.elapsed() > Duration::from_secs(2) {
            for (i, p) in progress.iter_mut().enumerate() {
                let now = ctl.get(i, ctl::OPS);
                assert!(now > *p, "worker {i} made no progress in 2 s: it hangs");
                *p = now;
            }
            last_progress = Instant::now();
        }
    }
    ctl.stop();
    for w in workers {
        let out = w.finish(Duration::from_secs(20));
        // Killed by a signal (SIGSEGV, SIGBUS, abort) or a panic (101) fails here.
        assert!(out.status.success(), "a worker crashed: {}", out.status);
    }
    let n = 3;
    let (ops, gets, hits, corrupt, busy, errors) = (
        ctl.sum(n, ctl::OPS),
        ctl.sum(n, ctl::GETS),
        ctl.sum(n, ctl::HITS),
        ctl.sum(n, ctl::CORRUPT),
        ctl.sum(n, ctl::BUSY),
        ctl.sum(n, ctl::ERRORS),
    );
    let worst = Duration::from_nanos(ctl.max(n, ctl::MAX_NS));
    let found = run(&["verify", &seg]);
    let problems = stdout(&found)
        .lines()
        .find_map(|l| l.strip_suffix(" problem(s) found").map(str::to_string))
        .unwrap_or_default();
    let repaired = run(&["verify", &seg, "--repair"]);
    let after = run(&["verify", &seg]);
    println!(
        "hostile: {flips} byte flips in {:.1} s ({in_owners} owner table, {in_meta} shard \
         headers/index/page tables, {in_arena} arena); {ops} ops, {gets} gets, {hits} hits, \
         corrupt reads {corrupt}, busy {busy}, writes refused for lack of room {}, other \
         errors {errors}, worst operation {worst:?}; \
         verify: {problems} problem(s); repair: {}",
        start.elapsed().as_secs_f64(),
        ctl.sum(n, ctl::NO_SPACE),
        stdout(&repaired).lines().last().unwrap_or_default()
    );
    assert_eq!(corrupt, 0, "a damaged entry was read as a value");
    assert!(worst < BLOCK_BOUND, "an operation took {worst:?}");
    assert_eq!(code(&found), 3, "verify must report the damage");
    assert!(
        stderr(&found).contains("run `cachee verify --repair`"),
        "verify: {}",
        stderr(&found)
    );
    assert_eq!(
        code(&repaired),
        0,
        "repair: {}{}",
        stdout(&repaired),
        stderr(&repaired)
    );
    assert!(stdout(&repaired).contains("repaired: "));
    assert_eq!(code(&after), 0, "after repair: {}", stdout(&after));
    // Everything that survived the repair is a value its key's writer stored.
    let mut kept = 0;
    s.for_each(|k, val| {
        assert!(common::value_ok(k, val), "wrong value kept under {k:x?}");
        kept += 1;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert!(kept > 0, "repair kept nothing");
    // And the segment is fully usable again.
    stamped_fill(&s, 8000);
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}

#[test]
fn a_damaged_header_stops_new_attachers_not_attached_processes() {
    let _serial = serial();
    let seg = name("header");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = Segment::create(&seg, &Options::new().size(4 << 20).max_value(2048)).unwrap();
    stamped_fill(&s, 2000);
    let ctl = Control::create(&ctl_path);
    let mut workers = vec![Worker::spawn(&seg, &ctl, 0, &worker_args("0.95"))];
    common::wait_attached(&ctl, &mut workers);
    let v = Vandal::new(&seg);
    // (byte offset, what a new attacher is told)
    let cases: [(usize, &str); 6] = [
        (0, "not a cachee segment"),
        (8, "segment format version"),
        (48, "corrupt segment header"),
        (72, "corrupt segment header"),
        (HEADER_BYTES, "not a cachee region (bad magic number)"),
        (HEADER_BYTES + 4 * 10, "corrupt region header"),
    ];
    for (byte, msg) in cases {
        v.flip(byte, 0x10);
        let o = run(&["get", &seg, "k"]);
        assert_eq!(code(&o), 3, "byte {byte}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(msg),
            "byte {byte}: expected {msg:?} in {:?}",
            stderr(&o)
        );
        let o = run(&["verify", &seg, "--repair"]);
        assert_eq!(
            code(&o),
            3,
            "byte {byte}: verify --repair cannot fix a header"
        );
        // The process attached before the damage copied its configuration then, and
        // carries on as if nothing happened.
        let before = ctl.get(0, ctl::OPS);
        let t = Instant::now();
        while ctl.get(0, ctl::OPS) < before + 2560 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "attached worker stalled"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // So does this one.
        s.set(b"still", b"working").unwrap();
        assert_eq!(s.get(b"still").unwrap().as_deref(), Some(&b"working"[..]));
        v.flip(byte, 0x10); // undo, for the next case
        assert_eq!(code(&run(&["get", &seg, "still"])), 0);
    }
    // The way back from a header that stays damaged: re-create the segment.
    v.flip(0, 0x10);
    assert_eq!(code(&run(&["destroy", &seg])), 0);
    assert_eq!(code(&run(&["create", &seg, "--size", "4MiB"])), 0);
    assert_eq!(code(&run(&["set", &seg, "k", "fresh"])), 0);
    assert_eq!(run(&["get", &seg, "k"]).stdout, b"fresh");
    ctl.stop();
    for w in workers {
        assert!(w.finish(Duration::from_secs(20)).status.success());
    }
    assert_eq!(ctl.get(0, ctl::CORRUPT), 0);
    assert_eq!(ctl.get(0, ctl::ERRORS), 0);
}

#[test]
fn a_damaged_ready_word_never_makes_open_or_create_wipe_the_segment() {
    let _serial = serial();
    let seg = name("state");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = Segment::create(&seg, &Options::new().size(4 << 20).max_value(2048)).unwrap();
    stamped_fill(&s, 2000);
    s.set(b"k", b"kept").unwrap();
    let ctl = Control::create(&ctl_path);
    let mut workers = vec![Worker::spawn(&seg, &ctl, 0, &worker_args("0.95"))];
    common::wait_attached(&ctl, &mut workers);
    let v = Vandal::new(&seg);
    // The header's state word (not covered by its checksum: it changes once, from
    // "creating" to "ready") is damaged. The segment behind it is complete.
    v.flip(16, 0x01);
    let o = run(&["get", &seg, "k"]);
    assert_eq!(
        (code(&o), o.stdout.as_slice()),
        (0, &b"kept"[..]),
        "{}",
        stderr(&o)
    );
    v.flip(16, 0x40);
    // An opener that may create (with other options, even) must attach to it, not
    // truncate and re-format it under the attached processes.
    let again = Segment::open_or_create(&seg, &Options::new().size(2 << 20)).unwrap();
    assert_eq!(again.get(b"k").unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(again.file_len(), 4 << 20);
    let before = ctl.get(0, ctl::OPS);
    let t = Instant::now();
    while ctl.get(0, ctl::OPS) < before + 2560 {
        assert!(
            workers[0].child.try_wait().unwrap().is_none(),
            "the attached worker died"
        );
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "attached worker stalled"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    ctl.stop();
    for w in workers {
        assert!(w.finish(Duration::from_secs(20)).status.success());
    }
    assert_eq!(ctl.get(0, ctl::CORRUPT), 0);
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}
