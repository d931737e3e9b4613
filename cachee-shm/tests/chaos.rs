//! Processes dying and freezing at random moments, many times, on one segment.
//!
//! `sigkill_chaos_never_yields_a_wrong_value_nor_a_hang` runs verified workers while a
//! killer SIGKILLs a random one every 2–100 ms and restarts it; it runs for
//! `CHAOS_SECS` seconds (default 4; `scripts/chaos.sh` runs it for a minute and more).
//! The other tests pin down the cases the chaos run hits only by chance: a lock holder
//! frozen with SIGSTOP, a dead holder its parent has not reaped, a dead holder's lock
//! wanted while every core is busy, and what a recovery keeps.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cachee_shm::{CacheError, Options, Segment, ShmError};
use common::{Cleanup, Control, Worker, cachee, code, ctl, env_or, name, stdout};
use workload::Rng;

/// The multi-process tests of this file each load both cores; running them one at a
/// time keeps their timing meaningful.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// No operation may take longer than this (the workers' lock timeout is 500 ms).
const BLOCK_BOUND: Duration = Duration::from_secs(2);

fn segment(seg: &str) -> Segment {
    Segment::create(
        seg,
        &Options::new()
            .size(16 << 20)
            .max_value(4096)
            .shards(8)
            .lock_timeout(Duration::from_secs(5)),
    )
    .unwrap()
}

/// The shard whose lock word holds `owner`, if any.
fn shard_held_by(s: &Segment, owner: u64) -> Option<usize> {
    if owner == 0 {
        return None;
    }
    (0..s.cache().shards()).find(|&i| s.cache().testing_lock_owner(i) as u64 == owner)
}

/// Every entry in the segment is a value its key's writer stored.
fn assert_every_entry_is_right(s: &Segment) -> u64 {
    let mut n = 0;
    s.for_each(|k, v| {
        assert!(common::value_ok(k, v), "wrong value under key {k:x?}");
        n += 1;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    n
}

#[test]
fn sigkill_chaos_never_yields_a_wrong_value_nor_a_hang() {
    let _serial = serial();
    let secs = env_or("CHAOS_SECS", 4.0);
    let seg = name("chaos");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = segment(&seg);
    let ctl = Control::create(&ctl_path);
    // Two workers on the 95:5 bench mix, two write-heavy ones: kills land inside a
    // shard lock far more often when a worker spends much of its time writing.
    let mixes = ["0.95", "0.95", "0.5", "0.5"];
    let mut workers: Vec<Worker> = mixes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Worker::spawn(
                &seg,
                &ctl,
                i,
                &[
                    "--read-ratio",
                    r,
                    "--keys",
                    "20000",
                    "--max-value",
                    "2000",
                    "--lock-timeout",
                    "500ms",
                ],
            )
        })
        .collect();
    common::wait_attached(&ctl, &mut workers);

    let mut rng = Rng::new(std::process::id() as u64);
    let (mut kills, mut kills_holding_lock) = (0u64, 0u64);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2 + rng.below(99)));
        let w = &mut workers[rng.below(mixes.len() as u64) as usize];
        // Half the kills are blind; the other half wait (a few tries) for a moment when
        // the victim holds a shard lock. The victim is frozen first so that whether it
        // holds a lock when it dies is known exactly.
        let targeted = rng.below(2) == 0;
        let mut holding = false;
        for attempt in 0..8 {
            w.freeze();
            holding = shard_held_by(&s, ctl.get(w.index, ctl::OWNER)).is_some();
            if holding || !targeted || attempt == 7 {
                break;
            }
            w.thaw();
            std::thread::sleep(Duration::from_micros(rng.below(2000)));
        }
        w.kill_and_restart(&ctl);
        kills += 1;
        kills_holding_lock += holding as u64;
    }
    let chaos_secs = start.elapsed().as_secs_f64();
    // Let the last restarted workers attach, then stop everyone.
    common::wait_attached(&ctl, &mut workers);
    ctl.stop();
    for w in workers {
        let out = w.finish(Duration::from_secs(20));
        assert!(out.status.success(), "a worker failed: {}", out.status);
        assert!(stdout(&out).starts_with("DONE"), "{}", stdout(&out));
    }

    let n = mixes.len();
    let (ops, corrupt, busy, errors) = (
        ctl.sum(n, ctl::OPS),
        ctl.sum(n, ctl::CORRUPT),
        ctl.sum(n, ctl::BUSY),
        ctl.sum(n, ctl::ERRORS),
    );
    let worst = Duration::from_nanos(ctl.max(n, ctl::MAX_NS));
    let recovered_during_run = s.stats().recoveries;
    // `verify` takes every shard lock: it recovers the locks no worker needed again.
    let v = cachee().args(["verify", &seg]).output().unwrap();
    let recoveries = s.stats().recoveries;
    println!(
        "chaos: {chaos_secs:.1} s, {kills} kills ({kills_holding_lock} holding a shard lock), \
         {} worker starts, {ops} ops ({} gets, {} hits, {} writes), {recoveries} recoveries \
         ({recovered_during_run} during the run), corrupt reads {corrupt}, busy {busy}, \
         errors {errors}, worst operation {worst:?}, {} entries",
        ctl.sum(n, ctl::STARTS),
        ctl.sum(n, ctl::GETS),
        ctl.sum(n, ctl::HITS),
        ctl.sum(n, ctl::SETS),
        s.len(),
    );
    assert_eq!(corrupt, 0, "wrong values were read");
    assert_eq!(errors, 0, "operations failed other than by Busy");
    assert_eq!(
        ctl.sum(n, ctl::NO_SPACE),
        0,
        "writes refused for lack of room"
    );
    assert!(worst < BLOCK_BOUND, "an operation blocked for {worst:?}");
    assert_eq!(code(&v), 0, "verify: {}", stdout(&v));
    assert!(stdout(&v).contains(": ok ("), "{}", stdout(&v));
    assert!(kills_holding_lock > 0, "no kill landed inside a shard lock");
    // Every abandoned lock is recovered once, and counted. A recovery can go uncounted
    // only if its own process is killed before counting it (then its lock is
    // abandoned again, and counted among the kills holding a lock).
    assert!(
        (1..=kills_holding_lock).contains(&recoveries),
        "{recoveries} recoveries for {kills_holding_lock} abandoned locks"
    );
    // …and `cachee stats` reports them.
    let st = cachee().args(["stats", &seg]).output().unwrap();
    assert!(
        stdout(&st).lines().any(|l| l
            .split_whitespace()
            .eq(["recoveries".to_string(), recoveries.to_string()])),
        "stats: {}",
        stdout(&st)
    );
    assert_every_entry_is_right(&s);
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}

#[test]
fn a_frozen_lock_holder_is_waited_out_never_overtaken() {
    let _serial = serial();
    let seg = name("frozen");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = segment(&seg);
    let ctl = Control::create(&ctl_path);
    let args = |r: &'static str| {
        [
            "--read-ratio",
            r,
            "--keys",
            "5000",
            "--max-value",
            "2000",
            "--lock-timeout",
            "200ms",
        ]
    };
    // Worker 0 only writes, so it is often caught holding a lock; worker 1 only reads;
    // worker 2 does both.
    let mut workers = vec![
        Worker::spawn(&seg, &ctl, 0, &args("0")),
        Worker::spawn(&seg, &ctl, 1, &args("1")),
        Worker::spawn(&seg, &ctl, 2, &args("0.5")),
    ];
    common::wait_attached(&ctl, &mut workers);
    let victim = ctl.get(0, ctl::OWNER);
    let t = Instant::now();
    let shard = loop {
        workers[0].freeze();
        if let Some(shard) = shard_held_by(&s, victim) {
            break shard;
        }
        workers[0].thaw();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never caught the writer holding a lock"
        );
        std::thread::sleep(Duration::from_micros(500));
    };
    // Frozen, holding `shard`'s lock, alive.
    let (reads0, busy0) = (ctl.get(1, ctl::OPS), ctl.get(2, ctl::BUSY));
    let recoveries0 = s.stats().recoveries;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        s.cache().testing_lock_owner(shard) as u64,
        victim,
        "the lock of a live (stopped) process was taken"
    );
    assert_eq!(
        s.stats().recoveries,
        recoveries0,
        "a live owner was 'recovered'"
    );
    assert!(
        ctl.get(1, ctl::OPS) > reads0 + 10_000,
        "the reader stalled behind the frozen writer"
    );
    // The mixed worker's writes to the frozen shard each give up after its 200 ms
    // lock timeout (so it runs slowly, but it runs).
    assert!(
        ctl.get(2, ctl::BUSY) > busy0,
        "writes to the frozen shard should give up with Busy"
    );
    assert!(Duration::from_nanos(ctl.max(3, ctl::MAX_NS)) < BLOCK_BOUND);
    // This process too: a write to that shard gives up after its lock timeout, having
    // changed nothing; reads of it never wait.
    let quick = Segment::open(
        &seg,
        &Options::new().lock_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let key = (0u64..)
        .find(|k| s.cache().testing_shard_of(&k.to_le_bytes()) == shard)
        .unwrap()
        .to_le_bytes();
    let before = quick.get(&key).unwrap();
    let t = Instant::now();
    assert!(matches!(
        quick.set(&key, b"never stored"),
        Err(ShmError::Cache(CacheError::Busy))
    ));
    assert!(t.elapsed() < BLOCK_BOUND);
    assert_eq!(
        quick.get(&key).unwrap(),
        before,
        "a refused write changed the value"
    );
    // Other shards are not affected at all.
    let elsewhere = (0u64..)
        .find(|k| s.cache().testing_shard_of(&k.to_le_bytes()) != shard)
        .unwrap();
    let mut v = [0u8; 40];
    common::stamped(elsewhere, 40, &mut v);
    let t = Instant::now();
    quick.set(&elsewhere.to_le_bytes(), &v).unwrap();
    assert!(t.elapsed() < BLOCK_BOUND);
    let t = Instant::now();
    for k in 0..10_000u64 {
        let _ = quick.get(&k.to_le_bytes()).unwrap();
    }
    assert!(
        t.elapsed() < BLOCK_BOUND,
        "reads waited for the frozen writer"
    );

    // Thawed, it finishes its write and releases the lock; nothing was lost or mixed.
    workers[0].thaw();
    let ops_victim = ctl.get(0, ctl::OPS);
    let t = Instant::now();
    while ctl.get(0, ctl::OPS) < ops_victim + 1000 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the thawed writer is stuck"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    ctl.stop();
    for w in workers {
        assert!(w.finish(Duration::from_secs(20)).status.success());
    }
    assert_eq!(ctl.sum(3, ctl::CORRUPT), 0);
    assert_eq!(ctl.sum(3, ctl::ERRORS), 0);
    assert_eq!(s.stats().recoveries, 0, "no lock was ever taken over");
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
    assert_every_entry_is_right(&s);
}

/// Starts `cachee debug die-holding-lock SEG KEY` and waits until it holds the lock.
fn lock_holder(seg: &str, key: &str) -> (std::process::Child, usize) {
    let mut child = cachee()
        .args(["debug", "die-holding-lock", seg, key])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let shard = line
        .trim()
        .strip_prefix("LOCKED ")
        .expect("helper locked a shard")
        .parse()
        .unwrap();
    (child, shard)
}

fn helper_segment(seg: &str, lock_timeout: Duration) -> Segment {
    Segment::create(
        seg,
        &Options::new()
            .size(4 << 20)
            .max_value(4096)
            .shards(2)
            .lock_timeout(lock_timeout),
    )
    .unwrap()
}

#[test]
fn a_dead_lock_holder_is_recovered_before_its_parent_reaps_it() {
    let _serial = serial();
    let seg = name("zombie");
    let _c = Cleanup(vec![seg.clone()]);
    // A long lock timeout: a zombie taken for alive would make the write below wait
    // it out and fail with Busy.
    let s = helper_segment(&seg, Duration::from_secs(10));
    let (mut child, shard) = lock_holder(&seg, "victim");
    child.kill().unwrap(); // SIGKILL, and no wait(): the child stays a zombie
    let stat = format!("/proc/{}/stat", child.id());
    let t = Instant::now();
    while !std::fs::read_to_string(&stat)
        .unwrap()
        .rsplit_once(')')
        .unwrap()
        .1
        .trim_start()
        .starts_with('Z')
    {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(1));
    }
    let key = (0u64..)
        .find(|k| s.cache().testing_shard_of(&k.to_le_bytes()) == shard)
        .unwrap()
        .to_le_bytes();
    let t = Instant::now();
    s.set(&key, b"after").unwrap();
    assert!(
        t.elapsed() < BLOCK_BOUND,
        "waited {:?} for a zombie",
        t.elapsed()
    );
    assert_eq!(s.stats().recoveries, 1);
    assert_eq!(s.get(&key).unwrap().as_deref(), Some(&b"after"[..]));
    assert_eq!(s.get(b"victim").unwrap(), None);
    child.wait().unwrap();
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}

#[test]
fn a_recovered_shard_keeps_every_intact_entry() {
    let _serial = serial();
    let seg = name("keeps");
    let _c = Cleanup(vec![seg.clone()]);
    let s = helper_segment(&seg, Duration::from_secs(5));
    let mut v = [0u8; 100];
    for k in 0..2000u64 {
        let len = 16 + (k as usize % 80);
        common::stamped(k, len as u64, &mut v[..len]);
        s.set(&k.to_le_bytes(), &v[..len]).unwrap();
    }
    let before = s.len();
    assert_eq!(
        before, 2000,
        "the segment holds everything: nothing to evict"
    );
    let (mut child, shard) = lock_holder(&seg, "victim");
    child.kill().unwrap();
    child.wait().unwrap();
    let key = (1u64 << 40..)
        .find(|k| s.cache().testing_shard_of(&k.to_le_bytes()) == shard)
        .unwrap();
    s.set(&key.to_le_bytes(), b"new").unwrap();
    assert_eq!(s.stats().recoveries, 1);
    // Lost: only the half-written entry of the dead process.
    assert_eq!(s.len(), before + 1);
    assert_eq!(s.get(b"victim").unwrap(), None);
    for k in 0..2000u64 {
        let got = s.get(&k.to_le_bytes()).unwrap().expect("entry lost");
        assert!(common::value_ok(&k.to_le_bytes(), &got), "key {k}");
    }
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}

#[test]
fn a_dead_owner_is_recovered_even_on_a_saturated_cpu() {
    let _serial = serial();
    let seg = name("saturated");
    let _c = Cleanup(vec![seg.clone()]);
    // A short lock timeout, and more busy threads than cores: each yield of the
    // waiting writer can cost a whole time slice, so the timeout can pass before the
    // writer has spun often enough to ask whether the owner is alive.
    let s = helper_segment(&seg, Duration::from_millis(20));
    let (mut child, shard) = lock_holder(&seg, "victim");
    child.kill().unwrap();
    child.wait().unwrap();
    let key = (0u64..)
        .find(|k| s.cache().testing_shard_of(&k.to_le_bytes()) == shard)
        .unwrap()
        .to_le_bytes();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let result = std::thread::scope(|sc| {
        for _ in 0..4 * cores {
            sc.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        std::thread::sleep(Duration::from_millis(20));
        let r = s.set(&key, b"after");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    result.expect("a dead owner's lock must be recovered, not waited out");
    assert_eq!(s.stats().recoveries, 1);
    assert_eq!(s.get(&key).unwrap().as_deref(), Some(&b"after"[..]));
}
