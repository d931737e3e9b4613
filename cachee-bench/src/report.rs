//! Results: one child's figures, medians over repeats, and the markdown table, JSON
//! and SVG plots written for a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use workload::hist::Histogram;

use crate::Params;
use crate::svg::{self, Axis, Chart, Scale, Series};

/// One child's measurements. Latencies are in nanoseconds (NaN when not measured).
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub mops: f64,
    pub hit_ratio: f64,
    pub bytes_per_entry: f64,
    pub entries: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub timer_ns: f64,
    pub ticks_per_ns: f64,
    /// Latency histogram in timer ticks.
    pub hist: Option<Histogram>,
}

/// A figure of a run: its name in the child protocol and JSON, its getter and setter.
type Field = (&'static str, fn(&Run) -> f64, fn(&mut Run, f64));

const FIELDS: &[Field] = &[
    ("mops", |r| r.mops, |r, v| r.mops = v),
    ("hit_ratio", |r| r.hit_ratio, |r, v| r.hit_ratio = v),
    (
        "bytes_per_entry",
        |r| r.bytes_per_entry,
        |r, v| r.bytes_per_entry = v,
    ),
    ("entries", |r| r.entries, |r, v| r.entries = v),
    ("p50", |r| r.p50, |r, v| r.p50 = v),
    ("p90", |r| r.p90, |r, v| r.p90 = v),
    ("p99", |r| r.p99, |r, v| r.p99 = v),
    ("p999", |r| r.p999, |r, v| r.p999 = v),
    ("p9999", |r| r.p9999, |r, v| r.p9999 = v),
    ("max", |r| r.max, |r, v| r.max = v),
    ("timer_ns", |r| r.timer_ns, |r, v| r.timer_ns = v),
    (
        "ticks_per_ns",
        |r| r.ticks_per_ns,
        |r, v| r.ticks_per_ns = v,
    ),
];

impl Run {
    /// The `RESULT k=v …` line a child prints.
    pub fn encode(&self) -> String {
        let mut s = String::from("RESULT");
        for (k, get, _) in FIELDS {
            let _ = write!(s, " {k}={}", get(self));
        }
        s
    }

    /// Parses a child's output: the `RESULT` line and, if present, the `HIST` line.
    pub fn decode(out: &str) -> Option<Run> {
        let line = out.lines().find_map(|l| l.strip_prefix("RESULT "))?;
        let kv: BTreeMap<&str, f64> = line
            .split_whitespace()
            .filter_map(|p| {
                p.split_once('=')
                    .and_then(|(k, v)| Some((k, v.parse().ok()?)))
            })
            .collect();
        let mut r = Run::default();
        for (k, _, set) in FIELDS {
            set(&mut r, *kv.get(k)?);
        }
        r.hist = out
            .lines()
            .find_map(|l| l.strip_prefix("HIST "))
            .and_then(Histogram::decode)
            .filter(|h| h.count() > 0);
        Some(r)
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn med(rs: &[Run], f: fn(&Run) -> f64) -> f64 {
    median(rs.iter().map(f).collect())
}

fn fmt_ns(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.0}")
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    }
}

/// Prints the table and ratios; writes `results.md`, `results.json` and the SVG plots
/// into `--out` when given.
pub fn runs(p: &Params, runs: &BTreeMap<(usize, String), Vec<Run>>) {
    let mut md = String::new();
    let reps = runs.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(md, "{}; medians of {reps} run(s)\n", p.describe());
    let _ = writeln!(
        md,
        "| contender | threads | Mops/s | hit ratio | entries | B/entry | p50 ns | p90 | p99 | p99.9 | p99.99 | max |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut json = String::from("{\n");
    let _ = writeln!(json, "  \"workload\": \"{}\",", p.describe());
    if let Some(l) = &p.label {
        let _ = writeln!(json, "  \"label\": \"{}\",", l.replace('"', "'"));
    }
    json.push_str("  \"results\": [\n");
    let mut rows = Vec::new();
    for ((t, c), rs) in runs {
        let _ = writeln!(
            md,
            "| {c} | {t} | {:.2} | {:.2}% | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} |",
            med(rs, |r| r.mops),
            med(rs, |r| r.hit_ratio) * 100.0,
            med(rs, |r| r.entries),
            med(rs, |r| r.bytes_per_entry),
            fmt_ns(med(rs, |r| r.p50)),
            fmt_ns(med(rs, |r| r.p90)),
            fmt_ns(med(rs, |r| r.p99)),
            fmt_ns(med(rs, |r| r.p999)),
            fmt_ns(med(rs, |r| r.p9999)),
            fmt_ns(med(rs, |r| r.max)),
        );
        let mut row = format!(
            "    {{\"contender\": \"{c}\", \"threads\": {t}, \"runs\": {}",
            rs.len()
        );
        for (k, get, _) in FIELDS {
            let _ = write!(row, ", \"{k}\": {}", json_num(med(rs, *get)));
        }
        let each: Vec<String> = rs.iter().map(|r| json_num(r.mops)).collect();
        let _ = write!(row, ", \"mops_each\": [{}]}}", each.join(", "));
        rows.push(row);
    }
    json.push_str(&rows.join(",\n"));
    json.push_str("\n  ]\n}\n");
    md.push('\n');
    for &t in &p.threads {
        let Some(ours) = runs.get(&(t, "cachee".to_string())) else {
            continue;
        };
        for ((pt, peer), theirs) in runs {
            if *pt != t || peer == "cachee" {
                continue;
            }
            let _ = writeln!(
                md,
                "- cachee vs {peer} at {t} thread(s): throughput ×{:.2}, p99.9 ×{:.2}",
                med(ours, |r| r.mops) / med(theirs, |r| r.mops),
                med(ours, |r| r.p999) / med(theirs, |r| r.p999)
            );
        }
    }
    let overhead = median(runs.values().flatten().map(|r| r.timer_ns).collect());
    let _ = writeln!(
        md,
        "\nLatencies include the timer's own overhead of ≈{overhead:.0} ns; \"—\": not measured \
         per operation (pipelined clients complete operations in batches)."
    );
    println!("\n{md}");
    let Some(dir) = &p.out else { return };
    let dir = std::path::Path::new(dir);
    let write = |name: &str, text: &str| {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join(name), text))
            .unwrap_or_else(|e| eprintln!("writing {}: {e}", dir.join(name).display()));
    };
    write("results.md", &md);
    write("results.json", &json);
    for &t in &p.threads {
        if let Some(svg) = latency_chart(p, runs, t) {
            write(&format!("latency-{t}t.svg"), &svg);
        }
    }
    if p.threads.len() > 1 {
        write("throughput.svg", &throughput_chart(p, runs));
    }
    println!(
        "wrote results.md, results.json and plots to {}",
        dir.display()
    );
}

/// Latency percentile plot for one thread count: latency (log) against percentile on a
/// "nines" axis; the histograms of all repeats are merged.
fn latency_chart(
    p: &Params,
    runs: &BTreeMap<(usize, String), Vec<Run>>,
    t: usize,
) -> Option<String> {
    let mut series = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for ((rt, c), rs) in runs {
        if *rt != t {
            continue;
        }
        let mut h = Histogram::new();
        let mut tpn = 0.0;
        for r in rs {
            if let Some(x) = &r.hist {
                h.merge(x);
                tpn = r.ticks_per_ns;
            }
        }
        if h.count() == 0 || tpn <= 0.0 {
            continue;
        }
        let points: Vec<(f64, f64)> = h
            .cdf()
            .into_iter()
            .map(|(v, q)| ((v as f64 / tpn).max(1.0), q))
            .filter(|&(_, q)| q <= 0.99999)
            .collect();
        for &(x, _) in &points {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        series.push(Series {
            name: c.clone(),
            points,
        });
    }
    if series.is_empty() {
        return None;
    }
    let nines = [
        (0.0, "0%"),
        (0.5, "50%"),
        (0.9, "90%"),
        (0.99, "99%"),
        (0.999, "99.9%"),
        (0.9999, "99.99%"),
        (0.99999, "99.999%"),
    ];
    Some(
        Chart {
            title: format!("Latency by percentile, {t} thread(s)\n{}", p.describe()),
            x: Axis {
                label: "latency (ns, log scale)".into(),
                scale: Scale::Log,
                ticks: svg::log_ticks(
                    10f64.powf(lo.log10().floor()),
                    10f64.powf(hi.log10().ceil()),
                    |v| format!("{v}"),
                ),
            },
            y: Axis {
                label: "percentile".into(),
                scale: Scale::Nines,
                ticks: nines.iter().map(|&(q, l)| (q, l.to_string())).collect(),
            },
            series,
        }
        .render(),
    )
}

fn throughput_chart(p: &Params, runs: &BTreeMap<(usize, String), Vec<Run>>) -> String {
    let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut top = 0f64;
    for ((t, c), rs) in runs {
        let m = med(rs, |r| r.mops);
        top = top.max(m);
        by.entry(c).or_default().push((*t as f64, m));
    }
    let tmax = p.threads.iter().copied().max().unwrap_or(1);
    Chart {
        title: format!("Throughput\n{}", p.describe()),
        x: Axis {
            label: "threads".into(),
            scale: Scale::Linear,
            ticks: (1..=tmax).map(|t| (t as f64, t.to_string())).collect(),
        },
        y: Axis {
            label: "million operations per second".into(),
            scale: Scale::Linear,
            ticks: svg::linear_ticks(0.0, top * 1.1, 6, |v| format!("{v}")),
        },
        series: by
            .into_iter()
            .map(|(name, points)| Series {
                name: name.to_string(),
                points,
            })
            .collect(),
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_the_child_protocol() {
        let mut h = Histogram::new();
        h.record(100);
        h.record(300);
        let r = Run {
            mops: 1.5,
            p999: f64::NAN,
            hit_ratio: 0.25,
            hist: Some(h),
            ..Run::default()
        };
        let text = format!(
            "noise\n{}\nHIST {}\n",
            r.encode(),
            r.hist.as_ref().map(Histogram::encode).unwrap_or_default()
        );
        let back = Run::decode(&text).expect("decodes");
        assert_eq!(back.mops, 1.5);
        assert_eq!(back.hit_ratio, 0.25);
        assert!(back.p999.is_nan());
        assert_eq!(back.hist.map(|h| h.count()), Some(2));
        assert!(
            Run::decode("RESULT mops=1").is_none(),
            "missing fields are refused"
        );
    }

    #[test]
    fn medians_skip_missing_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, f64::NAN, 2.0, 3.0]), 2.5);
        assert!(median(vec![f64::NAN]).is_nan());
    }
}
