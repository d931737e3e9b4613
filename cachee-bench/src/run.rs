//! The `run` subcommand: throughput, latency and memory, one child process per
//! (contender, thread count) pair.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use workload::hist::{self as timing, Histogram};

use crate::contender::{self, Contender, Worker};
use crate::report::{self, Run};
use crate::servers::{self, Server};
use crate::{Params, mem, ops, usage};

/// Operations per pre-generated stream (per thread); streams are replayed cyclically.
pub const STREAM: usize = 1 << 22;
/// Operations per batch between clock reads in the throughput pass.
pub const BATCH: usize = 1024;
/// Latency samples taken from a server contender (each is a socket round trip).
const SERVER_LATENCY_OPS: usize = 200_000;

pub fn child(name: &str, threads: usize, p: &Params) {
    if name == "cachee-shm-procs" {
        return crate::shmprocs::child(threads, p);
    }
    let value = vec![0xa5u8; p.value_size];
    let keys = p.keys();
    let streams: Vec<Vec<u64>> = (0..threads)
        .map(|t| ops::stream(STREAM, keys, p.zipf, p.read_ratio, 1000 + t as u64))
        .collect();
    let prefill: Vec<u64> = ops::all_keys(keys, 7)
        .into_iter()
        .map(|k| k | ops::SET)
        .collect();
    let base = match p.server_pid {
        Some(pid) => mem::rss_of(pid),
        None => mem::rss(),
    };
    let c = contender::build(name, p.size(), p.value_size, &p.sockets).unwrap_or_else(|| usage());
    mem::pin(0);
    {
        let mut w = c.prefill_worker();
        let mut out = vec![0u8; p.value_size];
        for chunk in prefill.chunks(BATCH) {
            w.batch(chunk, &value, &mut out);
        }
    }
    drop(prefill);

    // Warm-up: one pass of every stream or the run's duration, whichever ends first.
    let dur = Duration::from_secs_f64(p.duration);
    run_threads(&*c, &streams, &value, |w, s, v| {
        timed_loop(w, s, v, dur, true)
    });
    let len = c.len().max(1) as f64;
    let bytes = match (c.region_bytes(), p.server_pid) {
        (Some(b), _) => b as f64,
        (None, Some(pid)) => mem::rss_of(pid).saturating_sub(base) as f64,
        (None, None) => mem::rss().saturating_sub(base) as f64,
    };

    // Throughput pass.
    let results = run_threads(&*c, &streams, &value, |w, s, v| {
        timed_loop(w, s, v, dur, false)
    });
    let ops: u64 = results.iter().map(|r| r.0).sum();
    let gets: u64 = results.iter().map(|r| r.1).sum();
    let hits: u64 = results.iter().map(|r| r.2).sum();
    let secs = results.iter().map(|r| r.3).fold(0.0, f64::max);

    // Latency pass (not for pipelining clients: their operations complete in batches).
    let tpn = timing::ticks_per_ns();
    let overhead = timing::timer_overhead();
    let n = match (c.pipelined(), p.server_pid.is_some()) {
        (true, _) => 0,
        (false, true) => p.latency_ops.min(SERVER_LATENCY_OPS),
        (false, false) => p.latency_ops,
    }
    .min(STREAM);
    let hists = run_threads(&*c, &streams, &value, |w, s, v| latency_pass(w, &s[..n], v));
    let mut h = Histogram::new();
    for x in &hists {
        h.merge(x);
    }
    let ns = |t: u64| {
        if n == 0 { f64::NAN } else { t as f64 / tpn }
    };
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
        timer_ns: overhead as f64 / tpn,
        ticks_per_ns: tpn,
        hist: None,
    };
    println!("{}", r.encode());
    println!("HIST {}", h.encode());
}

/// Times every operation of `s` with the cycle counter.
pub fn latency_pass(w: &mut dyn Worker, s: &[u64], v: &[u8]) -> Histogram {
    let mut out = vec![0u8; v.len()];
    let mut h = Histogram::new();
    for &op in s {
        let t0 = timing::ticks();
        if op & ops::SET == 0 {
            w.get(op, &mut out);
        } else {
            w.set(op & !ops::SET, v);
        }
        let t1 = timing::ticks();
        h.record(t1.saturating_sub(t0));
    }
    h
}

/// Runs `s` in batches until `dur` has passed (or, for a warm-up, one whole pass has
/// been made); returns (operations, gets, hits, seconds).
pub fn timed_loop(
    w: &mut dyn Worker,
    s: &[u64],
    v: &[u8],
    dur: Duration,
    warmup: bool,
) -> (u64, u64, u64, f64) {
    let mut out = vec![0u8; v.len()];
    let (mut n, mut gets, mut hits) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let mut i = 0;
    loop {
        let chunk = &s[i..i + BATCH];
        gets += chunk.iter().filter(|&&op| op & ops::SET == 0).count() as u64;
        hits += w.batch(chunk, v, &mut out);
        n += BATCH as u64;
        i += BATCH;
        if i == s.len() {
            if warmup {
                break;
            }
            i = 0;
        }
        if start.elapsed() >= dur {
            break;
        }
    }
    (n, gets, hits, start.elapsed().as_secs_f64())
}

/// Runs `f` with a fresh worker on one pinned thread per stream, all started together.
fn run_threads<T: Send>(
    c: &dyn Contender,
    streams: &[Vec<u64>],
    value: &[u8],
    f: impl Fn(&mut dyn Worker, &[u64], &[u8]) -> T + Sync,
) -> Vec<T> {
    let barrier = Barrier::new(streams.len());
    let cpus = mem::cpus();
    std::thread::scope(|sc| {
        let handles: Vec<_> = streams
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let (barrier, f) = (&barrier, &f);
                sc.spawn(move || {
                    mem::pin(t % cpus);
                    let mut w = c.worker();
                    barrier.wait();
                    f(&mut *w, s, value)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    })
}

/// Memory to give a server for `p`'s size: the byte budget, or room for the entry
/// count at what the server was measured to use per entry here (redis: `used_memory`
/// ≈ value + 160 B; memcached: its slab chunk ≈ value + 128 B, for 16-byte keys), so
/// that it holds about as many entries as the others. The table reports how many it
/// actually held.
fn server_memory(p: &Params, kind: crate::net::Kind) -> u64 {
    let per_entry = p.value_size as u64
        + match kind {
            crate::net::Kind::Redis => 160,
            crate::net::Kind::Memcached => 128,
        };
    match p.memory {
        Some(b) => b,
        None => p.entries * per_entry,
    }
}

fn run_child(
    exe: &std::path::Path,
    c: &str,
    t: usize,
    p: &Params,
    raw: &[String],
) -> Result<Run, String> {
    let server = match servers::kind_of(c) {
        Some(kind) => Some(
            Server::start(kind, server_memory(p, kind), t)
                .map_err(|e| format!("starting the server: {e}"))?,
        ),
        None => None,
    };
    let mut cmd = Command::new(exe);
    cmd.arg("child").arg(c).arg(t.to_string()).args(raw);
    if let Some(s) = &server {
        cmd.arg("--sockets")
            .arg(s.dir())
            .arg("--server-pid")
            .arg(s.pid().to_string());
    }
    let out = cmd.output().map_err(|e| format!("spawn: {e}"))?;
    drop(server);
    let text = String::from_utf8_lossy(&out.stdout);
    Run::decode(&text)
        .ok_or_else(|| format!("child failed: {}", String::from_utf8_lossy(&out.stderr)))
}

pub fn orchestrate(p: &Params) {
    let exe = std::env::current_exe().expect("own path");
    // The child gets the same parameters minus the orchestrator-only ones.
    let raw = p.child_args();
    let mut contenders = p.contenders.clone();
    if contenders.iter().any(|c| servers::kind_of(c).is_some()) {
        if let Err(e) = servers::ensure_installed() {
            eprintln!("warning: {e}; skipping the server contenders");
            contenders.retain(|c| servers::kind_of(c).is_none());
        }
    }
    let mut runs: BTreeMap<(usize, String), Vec<Run>> = BTreeMap::new();
    for rep in 0..p.repeat {
        for &t in &p.threads {
            for c in &contenders {
                eprintln!("[{}/{}] {c} × {t} thread(s)…", rep + 1, p.repeat);
                match run_child(&exe, c, t, p, &raw) {
                    Ok(r) => runs.entry((t, c.clone())).or_default().push(r),
                    Err(e) => {
                        eprintln!("{c} × {t}: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    report::runs(p, &runs);
}

impl Params {
    pub fn child_args(&self) -> Vec<String> {
        let mut v = vec![
            "--duration".to_string(),
            self.duration.to_string(),
            "--entries".into(),
            self.entries.to_string(),
            "--keys".into(),
            self.keys().to_string(),
            "--value-size".into(),
            self.value_size.to_string(),
            "--read-ratio".into(),
            self.read_ratio.to_string(),
            "--zipf".into(),
            self.zipf.to_string(),
            "--latency-ops".into(),
            self.latency_ops.to_string(),
        ];
        if let Some(m) = self.memory {
            v.extend(["--memory".into(), m.to_string()]);
        }
        v
    }
}

/// Instruction-count mode (run under `valgrind --tool=callgrind
/// --toggle-collect='*measured_*'`): fills a cache, then runs separate loops of
/// get-hits, get-misses and sets, each in its own never-inlined function so callgrind
/// attributes instructions to each operation kind.
pub fn instructions(name: &str, p: &Params) {
    const OPS: u64 = 100_000;
    let value = vec![0xa5u8; p.value_size];
    let c = contender::build(name, p.size(), p.value_size, &p.sockets).unwrap_or_else(|| usage());
    let mut w = c.worker();
    let resident: Vec<u64> = (0..p.entries / 2)
        .map(|r| workload::scramble(r, 1) & !ops::SET)
        .collect();
    for &k in &resident {
        w.set(k, &value);
    }
    let mut out = vec![0u8; p.value_size];
    let hits = measured_get_hit(&mut *w, &resident, OPS, &mut out);
    let misses = measured_get_miss(&mut *w, OPS, &mut out);
    measured_set(&mut *w, &resident, OPS, &value);
    println!("ops per loop: {OPS}; hits {hits}, misses {misses} (of {OPS} each)");
}

#[inline(never)]
fn measured_get_hit(w: &mut dyn Worker, keys: &[u64], n: u64, out: &mut [u8]) -> u64 {
    (0..n)
        .map(|i| w.get(keys[(i as usize * 7919) % keys.len()], out) as u64)
        .sum()
}

#[inline(never)]
fn measured_get_miss(w: &mut dyn Worker, n: u64, out: &mut [u8]) -> u64 {
    (0..n)
        .map(|i| !w.get(workload::scramble(i, 2) | (1 << 62), out) as u64)
        .sum()
}

#[inline(never)]
fn measured_set(w: &mut dyn Worker, keys: &[u64], n: u64, value: &[u8]) {
    for i in 0..n {
        w.set(keys[(i as usize * 7919) % keys.len()], value);
    }
}
