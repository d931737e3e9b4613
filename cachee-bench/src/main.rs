//! `cachee-bench`: side-by-side in-process cache benchmarks.
//!
//! ```text
//! cachee-bench inproc [--contenders a,b,..] [--threads 1,2] [--entries N] [--keys N]
//!                     [--value-size B] [--read-ratio R] [--zipf S] [--duration SECS]
//!                     [--latency-ops N] [--repeat N] [--json FILE]
//! ```
//!
//! Each (contender, thread count) pair runs in a fresh child process, so that one
//! contender's heap cannot affect another's memory figure. A child prefills the cache
//! with every key once, warms up with one pass of its operation stream, then runs a
//! throughput pass (no per-operation timing) and a latency pass (every operation
//! timed with the time-stamp counter). With `--repeat N` the pairs run N times,
//! interleaved, and medians are reported.

mod contender;
mod mem;
mod ops;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use contender::Contender;
use workload::hist::{self as timing, Histogram};

#[derive(Clone, Debug)]
struct Params {
    contenders: Vec<String>,
    threads: Vec<usize>,
    entries: u64,
    keys: u64,
    value_size: usize,
    read_ratio: f64,
    zipf: f64,
    duration: f64,
    latency_ops: usize,
    repeat: usize,
    json: Option<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            contenders: vec![
                "cachee".into(),
                "quick_cache".into(),
                "quick_cache-arc".into(),
            ],
            threads: vec![1, 2],
            entries: 1_000_000,
            keys: 2_000_000,
            value_size: 256,
            read_ratio: 0.95,
            zipf: 0.99,
            duration: 3.0,
            latency_ops: 2_000_000,
            repeat: 1,
            json: None,
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: cachee-bench inproc [--contenders LIST] [--threads LIST] [--entries N] [--keys N]\n\
         \x20                         [--value-size B] [--read-ratio R] [--zipf S] [--duration SECS]\n\
         \x20                         [--latency-ops N] [--repeat N] [--json FILE]\n\
         contenders: {}",
        contender::ALL.join(", ")
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Params {
    let mut p = Params::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        let num = |s: String| -> f64 { s.parse().unwrap_or_else(|_| usage()) };
        match flag.as_str() {
            "--contenders" => p.contenders = val().split(',').map(str::to_owned).collect(),
            "--threads" => {
                p.threads = val()
                    .split(',')
                    .map(|t| t.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--entries" => p.entries = num(val()) as u64,
            "--keys" => p.keys = num(val()) as u64,
            "--value-size" => p.value_size = num(val()) as usize,
            "--read-ratio" => p.read_ratio = num(val()),
            "--zipf" => p.zipf = num(val()),
            "--duration" => p.duration = num(val()),
            "--latency-ops" => p.latency_ops = num(val()) as usize,
            "--repeat" => p.repeat = num(val()).max(1.0) as usize,
            "--json" => p.json = Some(val()),
            _ => usage(),
        }
    }
    for c in &p.contenders {
        if !contender::ALL.contains(&c.as_str()) {
            eprintln!("unknown contender {c}");
            usage();
        }
    }
    if p.threads.is_empty() || p.threads.contains(&0) || p.entries == 0 || p.keys == 0 {
        usage();
    }
    p
}

/// One child's measurements.
#[derive(Clone, Debug, Default)]
struct Run {
    mops: f64,
    hit_ratio: f64,
    bytes_per_entry: f64,
    entries: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    p9999: f64,
    max: f64,
    timer_ns: f64,
}

fn child(contender: &str, threads: usize, p: &Params) {
    const STREAM: usize = 1 << 22;
    let value = vec![0xa5u8; p.value_size];
    let streams: Vec<Vec<u64>> = (0..threads)
        .map(|t| ops::stream(STREAM, p.keys, p.zipf, p.read_ratio, 1000 + t as u64))
        .collect();
    let prefill = ops::all_keys(p.keys, 7);
    let rss0 = mem::rss();
    let c = contender::build(contender, p.entries, p.value_size).unwrap_or_else(|| usage());
    mem::pin(0);
    for &k in &prefill {
        c.set(k, &value);
    }
    drop(prefill);
    // Warm-up: one pass of every stream, concurrently, untimed.
    run_threads(&*c, &streams, &value, |c, s, v, _| {
        let mut out = vec![0u8; v.len()];
        for &op in s {
            exec(c, op, v, &mut out);
        }
    });
    let rss1 = mem::rss();
    let len = c.len().max(1) as f64;
    let bytes = match c.region_bytes() {
        Some(b) => b as f64,
        None => rss1.saturating_sub(rss0) as f64,
    };

    // Throughput pass.
    let dur = Duration::from_secs_f64(p.duration);
    let results = run_threads(&*c, &streams, &value, |c, s, v, _| {
        let mut out = vec![0u8; v.len()];
        let (mut ops, mut gets, mut hits) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        let mut i = 0;
        loop {
            for &op in &s[i..i + 4096] {
                if op & ops::SET == 0 {
                    gets += 1;
                    hits += exec(c, op, v, &mut out) as u64;
                } else {
                    exec(c, op, v, &mut out);
                }
            }
            ops += 4096;
            i = (i + 4096) % s.len();
            if start.elapsed() >= dur {
                return (ops, gets, hits, start.elapsed().as_secs_f64());
            }
        }
    });
    let ops: u64 = results.iter().map(|r| r.0).sum();
    let gets: u64 = results.iter().map(|r| r.1).sum();
    let hits: u64 = results.iter().map(|r| r.2).sum();
    let secs = results.iter().map(|r| r.3).fold(0.0, f64::max);

    // Latency pass.
    let tpn = timing::ticks_per_ns();
    let overhead = timing::timer_overhead();
    let n = p.latency_ops.min(STREAM);
    let hists = run_threads(&*c, &streams, &value, |c, s, v, _| {
        let mut out = vec![0u8; v.len()];
        let mut h = Histogram::new();
        for &op in &s[..n] {
            let t0 = timing::ticks();
            exec(c, op, v, &mut out);
            let t1 = timing::ticks();
            h.record(t1.saturating_sub(t0));
        }
        h
    });
    let mut h = Histogram::new();
    for x in &hists {
        h.merge(x);
    }
    let ns = |t: u64| t as f64 / tpn;
    let r = Run {
        mops: ops as f64 / secs / 1e6,
        hit_ratio: hits as f64 / gets.max(1) as f64,
        bytes_per_entry: bytes / len,
        entries: len,
        p50: ns(h.quantile(0.5)),
        p90: ns(h.quantile(0.9)),
        p99: ns(h.quantile(0.99)),
        p999: ns(h.quantile(0.999)),
        p9999: ns(h.quantile(0.9999)),
        max: ns(h.max()),
        timer_ns: ns(overhead),
    };
    println!(
        "RESULT mops={} hit_ratio={} bytes_per_entry={} entries={} p50={} p90={} p99={} p999={} p9999={} max={} timer_ns={}",
        r.mops,
        r.hit_ratio,
        r.bytes_per_entry,
        r.entries,
        r.p50,
        r.p90,
        r.p99,
        r.p999,
        r.p9999,
        r.max,
        r.timer_ns
    );
}

#[inline(always)]
fn exec(c: &dyn Contender, op: u64, value: &[u8], out: &mut [u8]) -> bool {
    if op & ops::SET == 0 {
        c.get(op, out)
    } else {
        c.set(op & !ops::SET, value);
        false
    }
}

/// Runs `f` on one pinned thread per stream, all started together.
fn run_threads<T: Send>(
    c: &dyn Contender,
    streams: &[Vec<u64>],
    value: &[u8],
    f: impl Fn(&dyn Contender, &[u64], &[u8], usize) -> T + Sync,
) -> Vec<T> {
    let barrier = Barrier::new(streams.len());
    std::thread::scope(|sc| {
        let handles: Vec<_> = streams
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let (barrier, f) = (&barrier, &f);
                sc.spawn(move || {
                    mem::pin(t % num_cpus());
                    barrier.wait();
                    f(c, s, value, t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    })
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn parse_run(out: &str) -> Option<Run> {
    let line = out.lines().find(|l| l.starts_with("RESULT "))?;
    let kv: BTreeMap<&str, f64> = line[7..]
        .split_whitespace()
        .filter_map(|p| {
            p.split_once('=')
                .and_then(|(k, v)| Some((k, v.parse().ok()?)))
        })
        .collect();
    Some(Run {
        mops: kv["mops"],
        hit_ratio: kv["hit_ratio"],
        bytes_per_entry: kv["bytes_per_entry"],
        entries: kv["entries"],
        p50: kv["p50"],
        p90: kv["p90"],
        p99: kv["p99"],
        p999: kv["p999"],
        p9999: kv["p9999"],
        max: kv["max"],
        timer_ns: kv["timer_ns"],
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn orchestrate(p: &Params, raw: &[String]) {
    let exe = std::env::current_exe().expect("own path");
    let mut runs: BTreeMap<(usize, String), Vec<Run>> = BTreeMap::new();
    for rep in 0..p.repeat {
        for &t in &p.threads {
            for c in &p.contenders {
                eprintln!("[{}/{}] {c} × {t} thread(s)…", rep + 1, p.repeat);
                let out = Command::new(&exe)
                    .arg("child")
                    .arg(c)
                    .arg(t.to_string())
                    .args(raw)
                    .output()
                    .expect("spawn child");
                let text = String::from_utf8_lossy(&out.stdout);
                match parse_run(&text) {
                    Some(r) => runs.entry((t, c.clone())).or_default().push(r),
                    None => {
                        eprintln!(
                            "{c} × {t}: child failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    let med = |rs: &[Run], f: fn(&Run) -> f64| median(rs.iter().map(f).collect());
    println!(
        "\n{} entries × {} B values, {} keys, Zipf {}, {:.0}% reads; medians of {} run(s)\n",
        p.entries,
        p.value_size,
        p.keys,
        p.zipf,
        p.read_ratio * 100.0,
        p.repeat
    );
    println!(
        "| contender | threads | Mops/s | hit ratio | B/entry | p50 ns | p90 | p99 | p99.9 | p99.99 | max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = String::from("[\n");
    for ((t, c), rs) in &runs {
        println!(
            "| {c} | {t} | {:.2} | {:.2}% | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            med(rs, |r| r.mops),
            med(rs, |r| r.hit_ratio) * 100.0,
            med(rs, |r| r.bytes_per_entry),
            med(rs, |r| r.p50),
            med(rs, |r| r.p90),
            med(rs, |r| r.p99),
            med(rs, |r| r.p999),
            med(rs, |r| r.p9999),
            med(rs, |r| r.max),
        );
        json.push_str(&format!(
            "  {{\"contender\": \"{c}\", \"threads\": {t}, \"runs\": {}, \"mops\": {:.4}, \"hit_ratio\": {:.6}, \"bytes_per_entry\": {:.2}, \"p50_ns\": {:.1}, \"p90_ns\": {:.1}, \"p99_ns\": {:.1}, \"p999_ns\": {:.1}, \"p9999_ns\": {:.1}, \"max_ns\": {:.1}, \"timer_overhead_ns\": {:.1}}},\n",
            rs.len(),
            med(rs, |r| r.mops),
            med(rs, |r| r.hit_ratio),
            med(rs, |r| r.bytes_per_entry),
            med(rs, |r| r.p50),
            med(rs, |r| r.p90),
            med(rs, |r| r.p99),
            med(rs, |r| r.p999),
            med(rs, |r| r.p9999),
            med(rs, |r| r.max),
            med(rs, |r| r.timer_ns),
        ));
    }
    if json.ends_with(",\n") {
        json.truncate(json.len() - 2);
        json.push('\n');
    }
    json.push(']');
    // Ratios against each quick_cache variant, per thread count.
    for &t in &p.threads {
        let Some(ours) = runs.get(&(t, "cachee".to_string())) else {
            continue;
        };
        for peer in ["quick_cache", "quick_cache-arc"] {
            if let Some(theirs) = runs.get(&(t, peer.to_string())) {
                println!(
                    "\ncachee vs {peer} at {t} thread(s): throughput ×{:.2}, p99.9 ×{:.2}",
                    med(ours, |r| r.mops) / med(theirs, |r| r.mops),
                    med(ours, |r| r.p999) / med(theirs, |r| r.p999)
                );
            }
        }
    }
    if let Some(path) = &p.json {
        std::fs::write(path, json).expect("write json");
    }
    let overhead = runs
        .values()
        .flatten()
        .map(|r| r.timer_ns)
        .next()
        .unwrap_or(0.0);
    println!("\n(latencies include the timer's own overhead of ≈{overhead:.0} ns)");
}

/// Instruction-count mode (run under `valgrind --tool=callgrind
/// --toggle-collect='*measured_*'`): fills a cache, then runs separate loops of
/// get-hits, get-misses and sets, each in its own never-inlined function so callgrind
/// attributes instructions to each operation kind.
fn instructions(contender: &str, p: &Params) {
    const OPS: u64 = 100_000;
    let value = vec![0xa5u8; p.value_size];
    let c = contender::build(contender, p.entries, p.value_size).unwrap_or_else(|| usage());
    let resident: Vec<u64> = (0..p.entries / 2)
        .map(|r| workload::scramble(r, 1) & !ops::SET)
        .collect();
    for &k in &resident {
        c.set(k, &value);
    }
    let mut out = vec![0u8; p.value_size];
    let hits = measured_get_hit(&*c, &resident, OPS, &mut out);
    let misses = measured_get_miss(&*c, OPS, &mut out);
    measured_set(&*c, &resident, OPS, &value);
    println!("ops per loop: {OPS}; hits {hits}, misses {misses} (of {OPS} each)");
}

#[inline(never)]
fn measured_get_hit(c: &dyn Contender, keys: &[u64], n: u64, out: &mut [u8]) -> u64 {
    (0..n)
        .map(|i| c.get(keys[(i as usize * 7919) % keys.len()], out) as u64)
        .sum()
}

#[inline(never)]
fn measured_get_miss(c: &dyn Contender, n: u64, out: &mut [u8]) -> u64 {
    (0..n)
        .map(|i| !c.get(workload::scramble(i, 2) | (1 << 62), out) as u64)
        .sum()
}

#[inline(never)]
fn measured_set(c: &dyn Contender, keys: &[u64], n: u64, value: &[u8]) {
    for i in 0..n {
        c.set(keys[(i as usize * 7919) % keys.len()], value);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("inproc") => orchestrate(&parse(&args[1..]), &args[1..]),
        Some("instructions") if args.len() >= 2 => instructions(&args[1], &parse(&args[2..])),
        Some("child") if args.len() >= 3 => {
            let threads = args[2].parse().unwrap_or_else(|_| usage());
            child(&args[1], threads, &parse(&args[3..]));
        }
        _ => usage(),
    }
}
