//! The `cachee-shm-procs` contender: one segment used by N separate processes (the
//! deployment cachee-shm exists for), where the other contenders use N threads.
//!
//! The benchmark child creates and prefills the segment, then starts N worker
//! processes (`cachee-bench shm-worker NAME INDEX …`) that attach to it by name. Each
//! worker warms up, says `READY`, and waits for a line on its standard input before
//! each pass, so that all run their throughput pass, then their latency pass,
//! together. The child sums what they report and prints it as its own result.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use workload::hist::{self as timing, Histogram};

use crate::contender::{CacheeShm, Contender};
use crate::report::Run;
use crate::run::{BATCH, STREAM, latency_pass, timed_loop};
use crate::{Params, mem, ops, usage};

struct WorkerProc {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl WorkerProc {
    fn line(&mut self) -> String {
        let mut s = String::new();
        match self.out.read_line(&mut s) {
            Ok(n) if n > 0 => s.trim_end().to_string(),
            _ => {
                eprintln!("a worker process exited early");
                std::process::exit(1)
            }
        }
    }

    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .expect("signal worker");
    }
}

pub fn child(procs: usize, p: &Params) {
    let name = format!("cachee-bench-{}", std::process::id());
    let _ = cachee_shm::destroy(&name);
    let c = CacheeShm::create(&name, p.size(), p.value_size);
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&c, &name, procs, p)));
    let _ = cachee_shm::destroy(&name);
    match result {
        Ok(()) => {}
        Err(_) => std::process::exit(1),
    }
}

fn run(c: &CacheeShm, name: &str, procs: usize, p: &Params) {
    let value = vec![0xa5u8; p.value_size];
    mem::pin(0);
    {
        let mut w = c.prefill_worker();
        let mut out = vec![0u8; p.value_size];
        let prefill: Vec<u64> = ops::all_keys(p.keys(), 7)
            .into_iter()
            .map(|k| k | ops::SET)
            .collect();
        for chunk in prefill.chunks(BATCH) {
            w.batch(chunk, &value, &mut out);
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let mut workers: Vec<WorkerProc> = (0..procs)
        .map(|i| {
            let mut child = Command::new(&exe)
                .args(["shm-worker", name, &i.to_string()])
                .args(p.child_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn worker");
            let out = BufReader::new(child.stdout.take().expect("piped stdout"));
            WorkerProc { child, out }
        })
        .collect();
    for w in &mut workers {
        if w.line() != "READY" {
            usage();
        }
    }
    let len = c.len().max(1) as f64;
    let bytes = c.region_bytes().unwrap_or(0) as f64;
    workers.iter_mut().for_each(WorkerProc::go);
    let (mut n, mut gets, mut hits, mut secs) = (0u64, 0u64, 0u64, 0f64);
    for w in &mut workers {
        let line = w.line();
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if !line.starts_with("TP ") || v.len() != 4 {
            eprintln!("unexpected worker report {line:?}");
            std::process::exit(1);
        }
        n += v[0] as u64;
        gets += v[1] as u64;
        hits += v[2] as u64;
        secs = secs.max(v[3]);
    }
    workers.iter_mut().for_each(WorkerProc::go);
    let mut h = Histogram::new();
    for w in &mut workers {
        let line = w.line();
        match line.strip_prefix("HIST ").and_then(Histogram::decode) {
            Some(x) => h.merge(&x),
            None => {
                eprintln!("unexpected worker report {line:?}");
                std::process::exit(1);
            }
        }
    }
    for mut w in workers {
        drop(w.child.stdin.take());
        let _ = w.child.wait();
    }
    let tpn = timing::ticks_per_ns();
    let ns = |t: u64| t as f64 / tpn;
    let r = Run {
        mops: n as f64 / secs / 1e6,
        hit_ratio: hits as f64 / gets.max(1) as f64,
        bytes_per_entry: bytes / len,
        entries: len,
        p50: ns(h.quantile(0.5)),
        p90: ns(h.quantile(0.9)),
        p99: ns(h.quantile(0.99)),
        p999: ns(h.quantile(0.999)),
        p9999: ns(h.quantile(0.9999)),
        max: ns(h.max()),
        timer_ns: timing::timer_overhead() as f64 / tpn,
        ticks_per_ns: tpn,
        hist: None,
    };
    println!("{}", r.encode());
    println!("HIST {}", h.encode());
}

/// A worker process: attaches, warms up, then runs each pass when told to.
pub fn worker(name: &str, index: usize, p: &Params) {
    let cpus = mem::cpus();
    mem::pin(index % cpus);
    let c = CacheeShm::open(name);
    let mut w = c.worker();
    let value = vec![0xa5u8; p.value_size];
    let stream = ops::stream(STREAM, p.keys(), p.zipf, p.read_ratio, 1000 + index as u64);
    let dur = Duration::from_secs_f64(p.duration);
    timed_loop(&mut *w, &stream, &value, dur, true);
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut wait = || {
        line.clear();
        if stdin.lock().read_line(&mut line).map_or(true, |n| n == 0) {
            std::process::exit(1);
        }
    };
    println!("READY");
    wait();
    let (n, gets, hits, secs) = timed_loop(&mut *w, &stream, &value, dur, false);
    println!("TP {n} {gets} {hits} {secs}");
    wait();
    let h = latency_pass(&mut *w, &stream[..p.latency_ops.min(STREAM)], &value);
    println!("HIST {}", h.encode());
}
