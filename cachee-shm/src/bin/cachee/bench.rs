//! `cachee bench`: the 95:5 Zipf workload from several processes on one segment.
//!
//! The parent creates (or opens) the segment, fills it with every key once, and starts
//! one worker process per core (`cachee bench-worker`). Workers meet at a start flag in
//! a small control mapping, run the workload untimed for the duration while the parent
//! shows live throughput, then time a fixed number of operations each (every operation
//! timed with the cycle counter), and report back on stdout. The parent merges the
//! results, prints the table, and removes a segment it created.
//!
//! With `--verify` every value encodes its key and a generation and every hit is checked
//! against that: `corrupt reads` must be 0.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cachee_shm::{Options, Segment, destroy};
use memmap2::MmapRaw;
use workload::hist::{Histogram, ticks, ticks_per_ns, timer_overhead};
use workload::{Rng, Zipf, scramble};

use crate::args::{Args, Fail, UNUSABLE, parse_duration, parse_num, usage};

const SET: u64 = 1 << 63;
/// Operations in each thread's precomputed key stream (fewer when many threads would
/// not fit in memory; never fewer than `MIN_STREAM`). Multiples of 4096.
const STREAM: usize = 1 << 22;
const MIN_STREAM: usize = 1 << 16;
const MAX_WORKERS: usize = 4096;
/// Worker processes; well below the segment's 3 840 owner slots.
const MAX_PROCESSES: usize = 1024;
/// Exit status when interrupted (128 + SIGINT, as shells report it).
const INTERRUPTED_EXIT: u8 = 130;
const CTL_BYTES: usize = 8 * (16 + MAX_WORKERS);
mod ctl {
    pub const START: usize = 0;
    pub const STOP: usize = 1;
    pub const READY: usize = 2;
    pub const OPS: usize = 16;
}

#[derive(Clone, Debug)]
struct Params {
    processes: usize,
    threads: usize,
    duration: Duration,
    keys: u64,
    entries: u64,
    value_size: usize,
    read_ratio: f64,
    zipf: f64,
    latency_ops: usize,
    verify: bool,
    /// Length of each thread's key stream (chosen by the parent, passed to workers).
    stream: usize,
}

impl Params {
    fn parse(a: &mut Args) -> Result<Params, Fail> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let num = |a: &mut Args, name: &str| -> Result<Option<f64>, Fail> {
            a.option(name)?
                .map(|v| parse_num::<f64>(name, &v))
                .transpose()
        };
        let processes = num(a, "processes")?.unwrap_or(cores as f64);
        let threads = num(a, "threads")?.unwrap_or(1.0);
        let duration = match a.option("duration")? {
            Some(d) => parse_duration(&d)?,
            None => Duration::from_secs(10),
        };
        let keys = num(a, "keys")?.unwrap_or(2_000_000.0);
        let entries = num(a, "entries")?.unwrap_or(keys / 2.0);
        let value_size = num(a, "value-size")?.unwrap_or(256.0);
        let read_ratio = num(a, "read-ratio")?.unwrap_or(0.95);
        let zipf = num(a, "zipf")?.unwrap_or(0.99);
        let latency_ops = num(a, "latency-ops")?.unwrap_or(1_000_000.0);
        let stream = num(a, "stream")?.unwrap_or(STREAM as f64);
        let verify = a.flag("verify");
        let whole = |v: f64, name: &str, lo: f64, hi: f64| -> Result<f64, Fail> {
            if v.fract() != 0.0 || v < lo || v > hi {
                Err(usage(format!(
                    "--{name} must be a whole number from {lo} to {hi}"
                )))
            } else {
                Ok(v)
            }
        };
        let p = Params {
            processes: whole(processes, "processes", 1.0, MAX_PROCESSES as f64)? as usize,
            threads: whole(threads, "threads", 1.0, 256.0)? as usize,
            duration,
            keys: whole(keys, "keys", 1.0, 1e10)? as u64,
            entries: whole(entries, "entries", 1.0, 1e10)? as u64,
            value_size: whole(value_size, "value-size", 16.0, 1_048_576.0)? as usize,
            read_ratio,
            zipf,
            latency_ops: whole(latency_ops, "latency-ops", 0.0, 1e9)? as usize,
            verify,
            stream: whole(stream, "stream", MIN_STREAM as f64, STREAM as f64)? as usize,
        };
        if p.stream % 4096 != 0 {
            return Err(usage("--stream must be a multiple of 4096"));
        }
        if !(0.0..=1.0).contains(&p.read_ratio) {
            return Err(usage("--read-ratio must be between 0 and 1"));
        }
        if !(0.0..=10.0).contains(&p.zipf) {
            return Err(usage("--zipf must be between 0 and 10"));
        }
        if p.processes * p.threads > MAX_WORKERS {
            return Err(usage(format!("at most {MAX_WORKERS} threads in all")));
        }
        if p.duration.is_zero() || p.duration > Duration::from_secs(86_400) {
            return Err(usage("--duration must be between 1ms and 1 day"));
        }
        Ok(p)
    }

    fn to_args(&self) -> Vec<String> {
        vec![
            "--threads".into(),
            self.threads.to_string(),
            "--keys".into(),
            self.keys.to_string(),
            "--value-size".into(),
            self.value_size.to_string(),
            "--read-ratio".into(),
            self.read_ratio.to_string(),
            "--zipf".into(),
            self.zipf.to_string(),
            "--latency-ops".into(),
            self.latency_ops.to_string(),
            "--stream".into(),
            self.stream.to_string(),
        ]
    }

    /// Checks that the run fits in memory and picks the key-stream length: the parent
    /// keeps 8 bytes per key while prefilling, every thread 8 bytes per stream entry.
    fn plan_memory(&mut self) -> Result<(), Fail> {
        // Unknown (no /proc/meminfo): do not refuse.
        let avail = available_memory().unwrap_or(u64::MAX);
        let mib = |b: u64| b >> 20;
        let prefill = self.keys.saturating_mul(8);
        if prefill > avail / 2 {
            return Err(usage(format!(
                "--keys {}: prefilling needs {} MiB of memory, more than half of the {} MiB available",
                self.keys,
                mib(prefill),
                mib(avail)
            )));
        }
        let threads = (self.processes * self.threads) as u64;
        let fits = (avail / 4 / threads / 8).min(STREAM as u64) as usize / 4096 * 4096;
        if fits < MIN_STREAM {
            return Err(usage(format!(
                "{threads} benchmark threads need at least {} MiB for their key streams; {} MiB of memory is available",
                mib(threads * MIN_STREAM as u64 * 8),
                mib(avail)
            )));
        }
        self.stream = self.stream.min(fits);
        Ok(())
    }
}

/// Bytes of memory available to new allocations (`MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Set by SIGINT, SIGTERM or SIGHUP while `cachee bench` runs: it then stops its
/// workers and removes its temporary segment instead of leaving it in /dev/shm.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe;
        // `signal` has no other preconditions.
        unsafe { libc::signal(sig, on_interrupt as *const () as libc::sighandler_t) };
    }
}

fn interrupted() -> Result<(), Fail> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err(Fail {
            code: INTERRUPTED_EXIT,
            msg: "interrupted; temporary files removed".into(),
        })
    } else {
        Ok(())
    }
}

/// The shared control mapping: start/stop flags, a ready count, per-worker op counts.
struct Control {
    map: MmapRaw,
}

impl Control {
    fn create(path: &str) -> Result<Control, Fail> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Fail {
                code: UNUSABLE,
                msg: format!("{path}: {e}"),
            })?;
        f.set_len(CTL_BYTES as u64).map_err(|e| Fail {
            code: UNUSABLE,
            msg: format!("{path}: {e}"),
        })?;
        Self::map(&f, path)
    }

    fn open(path: &str) -> Result<Control, Fail> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Fail {
                code: UNUSABLE,
                msg: format!("{path}: {e}"),
            })?;
        Self::map(&f, path)
    }

    fn map(f: &std::fs::File, path: &str) -> Result<Control, Fail> {
        let map = MmapRaw::map_raw(f).map_err(|e| Fail {
            code: UNUSABLE,
            msg: format!("{path}: {e}"),
        })?;
        if map.len() < CTL_BYTES {
            return Err(Fail {
                code: UNUSABLE,
                msg: format!("{path}: control file too short"),
            });
        }
        Ok(Control { map })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < CTL_BYTES / 8);
        // SAFETY: `i` is within the mapping (checked at map time and just above), the
        // mapping is page-aligned and lives as long as `self`, and every process
        // accesses it only through atomic 64-bit words.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>().add(i)) }
    }
}

/// A value that encodes its key and generation (for `--verify`).
pub(crate) fn stamped(key: u64, generation: u64, out: &mut [u8]) {
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

pub(crate) fn check_stamp(key: u64, v: &[u8], scratch: &mut [u8]) -> bool {
    if v.len() < 16 || v[..8] != key.to_le_bytes() || scratch.len() < v.len() {
        return false;
    }
    let generation = u64::from_le_bytes(v[8..16].try_into().unwrap_or_default());
    stamped(key, generation, &mut scratch[..v.len()]);
    scratch[..v.len()] == *v
}

pub(crate) fn key_of(rank: u64) -> u64 {
    scramble(rank, 0x5eed) & !SET
}

pub fn run(mut a: Args) -> Result<(), Fail> {
    let json = a.option("json")?;
    let mut p = Params::parse(&mut a)?;
    let seg_arg = a
        .positional()
        .map(|b| String::from_utf8(b).map_err(|_| usage("segment name is not UTF-8")))
        .transpose()?;
    a.done()?;
    p.plan_memory()?;

    let opts = Options::new()
        .max_key(8)
        .max_value(p.value_size.max(1024))
        .expected_entry(8, p.value_size)
        .checksums(true);
    // At least 1 MiB: a segment sized for a handful of entries would be smaller than
    // the smallest cache region.
    let size = opts.size_for(p.entries, 8, p.value_size)?.max(1 << 20);
    let (name, temporary) = match seg_arg {
        Some(n) => (n, false),
        None => (format!("cachee-bench-{}", std::process::id()), true),
    };
    catch_interrupts();
    let seg = if temporary {
        Segment::create(&name, &opts.clone().size(size))?
    } else {
        Segment::open_or_create(&name, &opts.clone().size(size))?
    };
    let result = bench(&seg, &name, &p, json.as_deref());
    drop(seg);
    if temporary {
        let _ = destroy(&name);
    }
    result
}

fn bench(seg: &Segment, name: &str, p: &Params, json: Option<&str>) -> Result<(), Fail> {
    let ctl_path = format!("{}.bench-ctl", seg.path().display());
    let ctl = Control::create(&ctl_path)?;
    let result = drive(seg, name, &ctl_path, &ctl, p, json);
    let _ = std::fs::remove_file(&ctl_path);
    result
}

fn drive(
    seg: &Segment,
    name: &str,
    ctl_path: &str,
    ctl: &Control,
    p: &Params,
    json: Option<&str>,
) -> Result<(), Fail> {
    let tty = std::io::stderr().is_terminal();
    eprintln!(
        "cachee bench: {} process(es) × {} thread(s), {:.1} s, {} keys (Zipf {}), {} B values, {:.0}% reads{}",
        p.processes,
        p.threads,
        p.duration.as_secs_f64(),
        p.keys,
        p.zipf,
        p.value_size,
        p.read_ratio * 100.0,
        if p.verify {
            ", verifying every read"
        } else {
            ""
        }
    );
    eprintln!(
        "segment {} ({:.1} MiB)",
        seg.path().display(),
        seg.file_len() as f64 / (1 << 20) as f64
    );
    // Prefill: every key once, in an order unrelated to popularity.
    let t = Instant::now();
    let mut value = vec![0x5au8; p.value_size];
    let mut order: Vec<u64> = (0..p.keys).collect();
    let mut rng = Rng::new(7);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for (i, &rank) in order.iter().enumerate() {
        if i % 65536 == 0 {
            interrupted()?;
        }
        let k = key_of(rank);
        if p.verify {
            stamped(k, 0, &mut value);
        }
        seg.set(&k.to_le_bytes(), &value)?;
    }
    drop(order);
    eprintln!(
        "prefilled {} keys in {:.1} s; {} resident",
        p.keys,
        t.elapsed().as_secs_f64(),
        seg.len()
    );

    let tpn = ticks_per_ns();
    let overhead_ns = timer_overhead() as f64 / tpn;
    let exe = std::env::current_exe().map_err(|e| Fail {
        code: UNUSABLE,
        msg: format!("cannot find own executable: {e}"),
    })?;
    let mut children = Vec::new();
    for w in 0..p.processes {
        let mut cmd = Command::new(&exe);
        cmd.arg("bench-worker")
            .arg(name)
            .arg(ctl_path)
            .arg(w.to_string())
            .args(p.to_args())
            .stdout(Stdio::piped());
        if p.verify {
            cmd.arg("--verify");
        }
        children.push(cmd.spawn().map_err(|e| Fail {
            code: UNUSABLE,
            msg: format!("cannot start a worker: {e}"),
        })?);
    }
    // Wait until every worker has attached and built its key stream.
    let t = Instant::now();
    while ctl.word(ctl::READY).load(Ordering::Acquire) < p.processes as u64 {
        let failed = children
            .iter_mut()
            .enumerate()
            .find_map(|(w, c)| c.try_wait().ok().flatten().map(|st| (w, st)));
        let problem = match failed {
            Some((w, status)) => Some(format!("worker {w} exited before starting ({status})")),
            None if t.elapsed() > Duration::from_secs(120) => {
                Some("workers did not start within 120 s".into())
            }
            None => interrupted().err().map(|f| f.msg),
        };
        if let Some(msg) = problem {
            for c in &mut children {
                let _ = c.kill();
                let _ = c.wait();
            }
            return Err(Fail {
                code: if INTERRUPTED.load(Ordering::Relaxed) {
                    INTERRUPTED_EXIT
                } else {
                    UNUSABLE
                },
                msg,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ctl.word(ctl::START).store(1, Ordering::Release);
    let start = Instant::now();
    let mut last = (start, 0u64);
    while start.elapsed() < p.duration && !INTERRUPTED.load(Ordering::Relaxed) {
        std::thread::sleep(
            Duration::from_millis(250).min(p.duration.saturating_sub(start.elapsed())),
        );
        let ops: u64 = (0..p.processes)
            .map(|w| ctl.word(ctl::OPS + w).load(Ordering::Relaxed))
            .sum();
        let rate = (ops - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-9) / 1e6;
        last = (Instant::now(), ops);
        if tty {
            eprint!(
                "\r[{:5.1} s] {:8.2} Mops/s   {:>12} ops",
                start.elapsed().as_secs_f64(),
                rate,
                ops
            );
        } else if (start.elapsed().as_millis() / 250) % 4 == 0 {
            eprintln!(
                "[{:5.1} s] {:8.2} Mops/s   {:>12} ops",
                start.elapsed().as_secs_f64(),
                rate,
                ops
            );
        }
    }
    ctl.word(ctl::STOP).store(1, Ordering::Release);
    if tty {
        eprintln!();
    }
    eprintln!("timing {} operations per thread…", p.latency_ops);

    let mut reports = Vec::new();
    for (w, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().map_err(|e| Fail {
            code: UNUSABLE,
            msg: format!("worker {w}: {e}"),
        })?;
        interrupted()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let report = text.lines().find_map(Report::parse).ok_or_else(|| Fail {
            code: UNUSABLE,
            msg: format!("worker {w} failed ({})", out.status),
        })?;
        reports.push(report);
    }
    summarise(seg, p, &reports, tpn, overhead_ns, json)
}

/// One worker process's results.
#[derive(Debug)]
struct Report {
    ops: u64,
    secs: f64,
    gets: u64,
    hits: u64,
    corrupt: u64,
    errors: u64,
    hist: Histogram,
}

impl Report {
    fn line(&self) -> String {
        format!(
            "REPORT {} {} {} {} {} {} {}",
            self.ops,
            self.secs,
            self.gets,
            self.hits,
            self.corrupt,
            self.errors,
            self.hist.encode()
        )
    }

    fn parse(line: &str) -> Option<Report> {
        let mut it = line.strip_prefix("REPORT ")?.split(' ');
        Some(Report {
            ops: it.next()?.parse().ok()?,
            secs: it.next()?.parse().ok()?,
            gets: it.next()?.parse().ok()?,
            hits: it.next()?.parse().ok()?,
            corrupt: it.next()?.parse().ok()?,
            errors: it.next()?.parse().ok()?,
            hist: Histogram::decode(it.next()?)?,
        })
    }
}

fn summarise(
    seg: &Segment,
    p: &Params,
    reports: &[Report],
    tpn: f64,
    overhead_ns: f64,
    json: Option<&str>,
) -> Result<(), Fail> {
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    let secs = reports.iter().map(|r| r.secs).fold(0.0, f64::max);
    let gets: u64 = reports.iter().map(|r| r.gets).sum();
    let hits: u64 = reports.iter().map(|r| r.hits).sum();
    let corrupt: u64 = reports.iter().map(|r| r.corrupt).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let mut h = Histogram::new();
    for r in reports {
        h.merge(&r.hist);
    }
    let ns = |q: f64| h.quantile(q) as f64 / tpn;
    let fmt_ns = |v: f64| {
        if v >= 1e6 {
            format!("{:.1} ms", v / 1e6)
        } else if v >= 1e3 {
            format!("{:.2} µs", v / 1e3)
        } else {
            format!("{v:.0} ns")
        }
    };
    let mops = ops as f64 / secs.max(1e-9) / 1e6;
    let per_process: Vec<f64> = reports
        .iter()
        .map(|r| r.ops as f64 / r.secs.max(1e-9) / 1e6)
        .collect();
    let fp = seg.cache().footprint(8, p.value_size);
    let entries = seg.len();
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| processes × threads | {} × {} |", p.processes, p.threads);
    println!("| throughput | {mops:.2} Mops/s |");
    println!(
        "| per process | {} Mops/s |",
        per_process
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| hit ratio | {:.2}% |",
        hits as f64 / gets.max(1) as f64 * 100.0
    );
    println!("| latency p50 | {} |", fmt_ns(ns(0.5)));
    println!("| latency p90 | {} |", fmt_ns(ns(0.9)));
    println!("| latency p99 | {} |", fmt_ns(ns(0.99)));
    println!("| latency p99.9 | {} |", fmt_ns(ns(0.999)));
    println!("| latency max | {} |", fmt_ns(h.max() as f64 / tpn));
    println!(
        "| resident entries | {entries} ({:.0} segment bytes per entry) |",
        seg.file_len() as f64 / entries.max(1) as f64
    );
    println!("| errors | {errors} |");
    if p.verify {
        println!("| corrupt reads | {corrupt} |");
    }
    println!(
        "\n(latencies are single operations timed with the cycle counter, {} samples; they include ≈{overhead_ns:.0} ns of timer overhead)",
        h.count()
    );
    if p.verify {
        println!("corrupt reads: {corrupt}");
    }
    if let Some(path) = json {
        let body = format!(
            "{{\"processes\": {}, \"threads\": {}, \"duration_s\": {:.3}, \"keys\": {}, \"value_size\": {}, \"read_ratio\": {}, \"zipf\": {}, \"mops\": {:.4}, \"per_process_mops\": [{}], \"hit_ratio\": {:.6}, \"p50_ns\": {:.1}, \"p90_ns\": {:.1}, \"p99_ns\": {:.1}, \"p999_ns\": {:.1}, \"max_ns\": {:.1}, \"timer_overhead_ns\": {:.1}, \"entries\": {}, \"bytes_per_entry\": {:.2}, \"footprint_bytes_per_entry\": {:.2}, \"errors\": {}, \"verify\": {}, \"corrupt_reads\": {}}}\n",
            p.processes,
            p.threads,
            secs,
            p.keys,
            p.value_size,
            p.read_ratio,
            p.zipf,
            mops,
            per_process
                .iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
            hits as f64 / gets.max(1) as f64,
            ns(0.5),
            ns(0.9),
            ns(0.99),
            ns(0.999),
            h.max() as f64 / tpn,
            overhead_ns,
            entries,
            seg.file_len() as f64 / entries.max(1) as f64,
            fp.total,
            errors,
            p.verify,
            corrupt
        );
        std::fs::write(path, body).map_err(|e| Fail {
            code: UNUSABLE,
            msg: format!("{path}: {e}"),
        })?;
    }
    if corrupt > 0 {
        return Err(Fail {
            code: UNUSABLE,
            msg: format!("{corrupt} corrupt reads"),
        });
    }
    Ok(())
}

/// A worker process: `cachee bench-worker SEG CTL INDEX [params]`.
pub fn worker(mut a: Args) -> Result<(), Fail> {
    let verify = a.flag("verify");
    let mut p = Params::parse(&mut a)?;
    p.verify = verify;
    let seg_name = a.positional_str("segment")?;
    let ctl_path = a.positional_str("control file")?;
    let index: usize = parse_num("index", &a.positional_str("worker index")?)?;
    a.done()?;
    if index >= MAX_WORKERS {
        return Err(usage("worker index out of range"));
    }
    let seg = crate::open(&seg_name)?;
    let ctl = Control::open(&ctl_path)?;
    let parent = std::os::unix::process::parent_id();
    let streams: Vec<Vec<u64>> = (0..p.threads)
        .map(|t| {
            let z = Zipf::new(p.keys, p.zipf).expect("validated zipf parameters");
            let mut rng = Rng::new(1 + (index * 256 + t) as u64);
            (0..p.stream)
                .map(|_| {
                    let k = key_of(z.sample(&mut rng));
                    if rng.next_f64() < p.read_ratio {
                        k
                    } else {
                        k | SET
                    }
                })
                .collect()
        })
        .collect();
    ctl.word(ctl::READY).fetch_add(1, Ordering::AcqRel);
    while ctl.word(ctl::START).load(Ordering::Acquire) == 0 {
        if orphaned(parent) {
            return Err(Fail {
                code: UNUSABLE,
                msg: "the bench parent process is gone".into(),
            });
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let counter = ctl.word(ctl::OPS + index);
    let results: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = streams
            .iter()
            .enumerate()
            .map(|(t, stream)| {
                let (seg, ctl, p) = (&seg, &ctl, &p);
                s.spawn(move || {
                    run_thread(
                        seg,
                        ctl,
                        counter,
                        stream,
                        p,
                        (index * 256 + t) as u64,
                        parent,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let mut total = Report {
        ops: 0,
        secs: 0.0,
        gets: 0,
        hits: 0,
        corrupt: 0,
        errors: 0,
        hist: Histogram::new(),
    };
    for r in &results {
        total.ops += r.ops;
        total.secs = total.secs.max(r.secs);
        total.gets += r.gets;
        total.hits += r.hits;
        total.corrupt += r.corrupt;
        total.errors += r.errors;
        total.hist.merge(&r.hist);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", total.line()).map_err(|e| Fail {
        code: UNUSABLE,
        msg: e.to_string(),
    })?;
    Ok(())
}

fn run_thread(
    seg: &Segment,
    ctl: &Control,
    counter: &AtomicU64,
    stream: &[u64],
    p: &Params,
    thread_id: u64,
    parent: u32,
) -> Report {
    let mut value = vec![0x5au8; p.value_size];
    let mut buf = vec![0u8; p.value_size.max(1024)];
    let mut scratch = vec![0u8; buf.len()];
    let mut generation = thread_id << 40;
    let mut r = Report {
        ops: 0,
        secs: 0.0,
        gets: 0,
        hits: 0,
        corrupt: 0,
        errors: 0,
        hist: Histogram::new(),
    };
    let mut one = |op: u64, r: &mut Report| {
        let key = op & !SET;
        let kb = key.to_le_bytes();
        if op & SET != 0 {
            if p.verify {
                generation += 1;
                stamped(key, generation, &mut value);
            }
            if seg.set(&kb, &value).is_err() {
                r.errors += 1;
            }
        } else {
            r.gets += 1;
            match seg.get_into(&kb, &mut buf) {
                Ok(Some(n)) => {
                    r.hits += 1;
                    if p.verify && !check_stamp(key, &buf[..n], &mut scratch) {
                        r.corrupt += 1;
                    }
                }
                Ok(None) => {}
                Err(_) => r.errors += 1,
            }
        }
    };
    // Throughput: untimed, until the parent says stop.
    let start = Instant::now();
    let mut i = 0;
    loop {
        for &op in &stream[i..i + 4096] {
            one(op, &mut r);
        }
        r.ops += 4096;
        counter.fetch_add(4096, Ordering::Relaxed);
        i = (i + 4096) % stream.len();
        // A worker whose parent died (killed, say) stops by itself rather than spin
        // forever.
        if ctl.word(ctl::STOP).load(Ordering::Relaxed) != 0 || orphaned(parent) {
            break;
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    // Latency: every operation timed.
    let mut timed = Report {
        ops: 0,
        secs: 0.0,
        gets: 0,
        hits: 0,
        corrupt: 0,
        errors: 0,
        hist: Histogram::new(),
    };
    for &op in stream.iter().cycle().skip(i).take(p.latency_ops) {
        let t0 = ticks();
        one(op, &mut timed);
        let t1 = ticks();
        r.hist.record(t1.saturating_sub(t0));
    }
    r.corrupt += timed.corrupt;
    r.errors += timed.errors;
    r
}

/// Whether the process that started this worker is gone (the worker has been
/// re-parented).
fn orphaned(parent: u32) -> bool {
    std::os::unix::process::parent_id() != parent
}
