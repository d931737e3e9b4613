//! The `hit-ratio` subcommand: replays a trace through each in-process contender at
//! several sizes, one child process per (contender, size), and reports the hit ratio.
//!
//! Every access is a get; a miss inserts the key (demand fill), as in the reference
//! simulators. Sizes are entry counts, or with `--equal-memory` byte budgets: cachee
//! gets a region of that many bytes, and each heap cache the entry count that its own
//! resident bytes per entry — measured in the same child just before, at about that
//! entry count — fit into the budget.
//!
//! Trace `oltp`: the OLTP trace from Megiddo and Modha, "ARC: A Self-Tuning, Low
//! Overhead Replacement Cache", USENIX FAST '03. Trace `zipf`: 4M gets over 1M keys,
//! Zipf 0.99.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use crate::contender::{self, Size};
use crate::svg::{self, Axis, Chart, Scale, Series};
use crate::{Params, mem, usage};

/// Contenders that take part by default (one instance each; threads play no part).
const DEFAULT: &[&str] = &["cachee", "quick_cache", "moka", "mini-moka", "lru"];

fn trace(name: &str) -> Vec<u64> {
    match name {
        "oltp" => workload::load_oltp().unwrap_or_else(|e| {
            eprintln!("cannot load the OLTP trace: {e}");
            std::process::exit(1)
        }),
        "zipf" => {
            let z = workload::Zipf::new(1_000_000, 0.99).expect("valid zipf");
            let mut rng = workload::Rng::new(42);
            (0..4_000_000)
                .map(|_| workload::scramble(z.sample(&mut rng), 3) >> 1)
                .collect()
        }
        _ => usage(),
    }
}

fn default_sizes(p: &Params) -> Vec<u64> {
    match (p.trace.as_str(), p.equal_memory) {
        ("oltp", false) => vec![1_000, 4_000, 16_000, 64_000],
        ("oltp", true) => vec![512 << 10, 2 << 20, 8 << 20, 32 << 20],
        (_, false) => vec![10_000, 40_000, 160_000, 640_000],
        (_, true) => vec![1 << 20, 4 << 20, 16 << 20, 64 << 20],
    }
}

/// Child: replays the trace through one contender of one size; prints
/// `HITRATIO entries=… hit_ratio=… bytes_per_entry=…`.
pub fn child(name: &str, p: &Params) {
    let size = p.sizes.first().copied().unwrap_or_else(|| usage());
    let value = vec![0x5au8; p.value_size];
    let mut out = vec![0u8; p.value_size];
    let (size, bpe) = if !p.equal_memory || name.starts_with("cachee") {
        (
            if p.equal_memory {
                Size::Bytes(size)
            } else {
                Size::Entries(size)
            },
            f64::NAN,
        )
    } else {
        // Calibrate: fill a cache sized for a first estimate, measure what each entry
        // costs, and give the real one the count that fits.
        let guess = (size / (p.value_size as u64 + 128)).max(16);
        let base = mem::rss();
        let c = contender::build(name, Size::Entries(guess), p.value_size, "")
            .unwrap_or_else(|| usage());
        let mut w = c.worker();
        for k in 0..guess {
            w.set(k | (1 << 62), &value);
        }
        drop(w);
        let bpe = mem::rss().saturating_sub(base) as f64 / c.len().max(1) as f64;
        drop(c);
        (Size::Entries(((size as f64 / bpe) as u64).max(1)), bpe)
    };
    let keys = trace(&p.trace);
    let c = contender::build(name, size, p.value_size, "").unwrap_or_else(|| usage());
    let mut w = c.worker();
    let mut hits = 0u64;
    for &k in &keys {
        if w.get(k, &mut out) {
            hits += 1;
        } else {
            w.set(k, &value);
        }
    }
    drop(w);
    let bpe = match c.region_bytes() {
        Some(b) => b as f64 / c.len().max(1) as f64,
        None => bpe,
    };
    println!(
        "HITRATIO entries={} hit_ratio={} bytes_per_entry={bpe}",
        c.len(),
        hits as f64 / keys.len().max(1) as f64
    );
}

pub fn orchestrate(p: &Params) {
    let exe = std::env::current_exe().expect("own path");
    let contenders: Vec<String> = if p.contenders == Params::default().contenders {
        DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        p.contenders.clone()
    };
    let sizes = if p.sizes.is_empty() {
        default_sizes(p)
    } else {
        p.sizes.clone()
    };
    // (contender, size) -> (entries, hit ratio, bytes per entry)
    let mut rows: BTreeMap<(String, u64), (f64, f64, f64)> = BTreeMap::new();
    for &size in &sizes {
        for c in &contenders {
            eprintln!("{c} at {size}…");
            let mut cmd = Command::new(&exe);
            cmd.args([
                "hit-ratio-child",
                c,
                "--trace",
                &p.trace,
                "--sizes",
                &size.to_string(),
            ])
            .args(["--value-size", &p.value_size.to_string()]);
            if p.equal_memory {
                cmd.arg("--equal-memory");
            }
            let out = cmd.output().expect("spawn child");
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find_map(|l| l.strip_prefix("HITRATIO ")) else {
                eprintln!(
                    "{c} at {size}: child failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            };
            let kv: BTreeMap<&str, f64> = line
                .split_whitespace()
                .filter_map(|x| {
                    x.split_once('=')
                        .and_then(|(k, v)| Some((k, v.parse().ok()?)))
                })
                .collect();
            let get = |k: &str| kv.get(k).copied().unwrap_or(f64::NAN);
            rows.insert(
                (c.clone(), size),
                (get("entries"), get("hit_ratio"), get("bytes_per_entry")),
            );
        }
    }
    if !p.equal_memory {
        let keys = trace(&p.trace);
        for &size in &sizes {
            let lru = workload::simulate_lru(&keys, size as usize);
            let opt = workload::simulate_belady(&keys, size as usize);
            rows.insert(
                ("LRU (exact)".into(), size),
                (size as f64, lru.ratio(), f64::NAN),
            );
            rows.insert(
                ("Belady (optimal)".into(), size),
                (size as f64, opt.ratio(), f64::NAN),
            );
        }
    }
    let unit = if p.equal_memory { "bytes" } else { "entries" };
    let mut md = format!(
        "Hit ratio on the {} trace, {} B values, at equal {unit}\n\n| contender | size | entries held | B/entry | hit ratio |\n|---|---:|---:|---:|---:|\n",
        p.trace, p.value_size
    );
    let mut json = String::from("[\n");
    let mut items = Vec::new();
    for ((c, size), (entries, hr, bpe)) in &rows {
        let bpe_s = if bpe.is_nan() {
            "—".into()
        } else {
            format!("{bpe:.0}")
        };
        let _ = writeln!(
            md,
            "| {c} | {size} | {entries:.0} | {bpe_s} | {:.2}% |",
            hr * 100.0
        );
        items.push(format!(
            "  {{\"contender\": \"{c}\", \"{unit}\": {size}, \"entries\": {entries}, \"hit_ratio\": {hr:.6}, \"bytes_per_entry\": {}}}",
            if bpe.is_finite() { format!("{bpe:.2}") } else { "null".into() }
        ));
    }
    json.push_str(&items.join(",\n"));
    json.push_str("\n]\n");
    println!("\n{md}");
    let Some(dir) = &p.out else { return };
    let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for ((c, size), (_, hr, _)) in &rows {
        by.entry(c).or_default().push((*size as f64, *hr));
    }
    let fmt = |v: f64| {
        if !p.equal_memory {
            format!("{v}")
        } else if v >= (1 << 20) as f64 {
            format!("{}M", v / (1 << 20) as f64)
        } else {
            format!("{}K", v / 1024.0)
        }
    };
    let ticks: Vec<(f64, String)> = sizes.iter().map(|&s| (s as f64, fmt(s as f64))).collect();
    let chart = Chart {
        title: format!(
            "Hit ratio vs cache size\n{} trace, {} B values, at equal {unit}",
            p.trace, p.value_size
        ),
        x: Axis {
            label: format!("cache size ({unit}, log scale)"),
            scale: Scale::Log,
            ticks,
        },
        y: Axis {
            label: "hit ratio".into(),
            scale: Scale::Linear,
            ticks: svg::linear_ticks(0.0, 1.0, 5, |v| format!("{:.0}%", v * 100.0)),
        },
        series: by
            .into_iter()
            .map(|(name, points)| Series {
                name: name.to_string(),
                points,
            })
            .collect(),
    };
    let dir = std::path::Path::new(dir);
    let stem = format!("hit-ratio-{}-{unit}", p.trace);
    let res = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join(format!("{stem}.svg")), chart.render()))
        .and_then(|()| std::fs::write(dir.join(format!("{stem}.md")), &md))
        .and_then(|()| std::fs::write(dir.join(format!("{stem}.json")), &json));
    match res {
        Ok(()) => println!("wrote {stem}.svg/.md/.json to {}", dir.display()),
        Err(e) => eprintln!("writing to {}: {e}", dir.display()),
    }
}
