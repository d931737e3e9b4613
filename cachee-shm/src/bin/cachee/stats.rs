//! `cachee stats`: counters as text, JSON or Prometheus exposition.

use crate::args::{Args, Fail, usage};
use cachee_shm::ShardStats;

/// A counter: its name, its help text and where it is in the statistics.
type Field = (&'static str, &'static str, fn(&ShardStats) -> u64);

const FIELDS: [Field; 9] = [
    ("hits", "Reads that found a live entry.", |s| s.hits),
    (
        "misses",
        "Reads that found nothing or an expired entry.",
        |s| s.misses,
    ),
    ("inserts", "Entries written for absent keys.", |s| s.inserts),
    ("updates", "Entries rewritten for present keys.", |s| {
        s.updates
    }),
    ("removes", "Entries removed on request.", |s| s.removes),
    ("evictions", "Entries evicted to make room.", |s| {
        s.evictions
    }),
    ("expirations", "Expired entries collected.", |s| {
        s.expirations
    }),
    ("rejected", "Writes refused for lack of room.", |s| {
        s.rejected
    }),
    (
        "recoveries",
        "Shard locks taken over from dead processes.",
        |s| s.recoveries,
    ),
];

pub fn run(mut a: Args) -> Result<(), Fail> {
    let format = a.option("format")?.unwrap_or_else(|| "text".into());
    let seg = a.positional_str("segment")?;
    a.done()?;
    let s = crate::open(&seg)?;
    let c = s.cache();
    let total = s.stats();
    let shards: Vec<ShardStats> = (0..c.shards()).filter_map(|i| c.shard_stats(i)).collect();
    let path = s.path().display().to_string();
    match format.as_str() {
        "text" => {
            println!("segment      {path}");
            println!("file bytes   {}", s.file_len());
            println!(
                "entries      {} (capacity ≈{})",
                total.entries,
                c.capacity()
            );
            println!("shards       {}", c.shards());
            println!("hit ratio    {:.2}%", total.hit_ratio() * 100.0);
            for (name, _, get) in FIELDS {
                println!("{name:<12} {}", get(&total));
            }
        }
        "json" => {
            let obj = |st: &ShardStats| {
                let mut parts = vec![format!("\"entries\": {}", st.entries)];
                parts.extend(FIELDS.iter().map(|(n, _, g)| format!("\"{n}\": {}", g(st))));
                format!("{{{}}}", parts.join(", "))
            };
            println!(
                "{{\"segment\": {}, \"file_bytes\": {}, \"capacity\": {}, \"shards\": {}, \"hit_ratio\": {:.6}, \"total\": {}, \"per_shard\": [{}]}}",
                json_string(&path),
                s.file_len(),
                c.capacity(),
                c.shards(),
                total.hit_ratio(),
                obj(&total),
                shards.iter().map(obj).collect::<Vec<_>>().join(", ")
            );
        }
        "prometheus" => {
            let label = prom_label(&path);
            println!("# HELP cachee_entries Resident entries.\n# TYPE cachee_entries gauge");
            println!("cachee_entries{{segment=\"{label}\"}} {}", total.entries);
            println!(
                "# HELP cachee_file_bytes Size of the segment file.\n# TYPE cachee_file_bytes gauge"
            );
            println!("cachee_file_bytes{{segment=\"{label}\"}} {}", s.file_len());
            for (name, help, get) in FIELDS {
                println!("# HELP cachee_{name}_total {help}\n# TYPE cachee_{name}_total counter");
                for (i, st) in shards.iter().enumerate() {
                    println!(
                        "cachee_{name}_total{{segment=\"{label}\",shard=\"{i}\"}} {}",
                        get(st)
                    );
                }
            }
        }
        other => {
            return Err(usage(format!(
                "--format must be text, json or prometheus, not {other:?}"
            )));
        }
    }
    Ok(())
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn prom_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
