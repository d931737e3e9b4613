//! `cachee`: create, inspect, use and benchmark shared cache segments.
//!
//! A segment argument is a bare name (under `/dev/shm`) or a path. Exit status: 0 on
//! success, 1 when the key (or segment, for `get`/`del`) was not found, 2 for a usage
//! or input error, 3 when the segment is unusable; errors are one line on stderr.

mod args;
mod bench;
#[cfg(feature = "testing")]
mod debug;
mod stats;

use std::io::{Read, Write};
use std::process::ExitCode;

use args::{Args, Fail, NOT_FOUND, UNUSABLE, parse_duration, parse_num, parse_size, usage};
use cachee_shm::{CacheError, Options, Segment, ShmError, destroy};

const HELP: &str = "\
usage:
  cachee create SEG --size 64MiB [--max-value 64KiB] [--max-key 250] [--expected-value 256]
                    [--shards N] [--mode 0600] [--no-checksums]
  cachee set SEG KEY [VALUE | --file F | -] [--ttl 30s]
  cachee get SEG KEY                 raw value to stdout
  cachee del SEG KEY
  cachee stats SEG [--format text|json|prometheus]
  cachee verify SEG [--repair]       check every invariant; non-zero if anything is wrong
  cachee flush SEG
  cachee destroy SEG
  cachee bench [SEG] [--processes N] [--threads T] [--duration 10s] [--keys N]
               [--value-size 256] [--read-ratio 0.95] [--zipf 0.99] [--verify] [--json FILE]
SEG is a name under /dev/shm or a path. Exit status: 0 ok, 1 not found, 2 usage or
input error, 3 segment unusable.";

fn main() -> ExitCode {
    let mut argv: Vec<_> = std::env::args_os().skip(1).collect();
    if argv.is_empty() {
        eprintln!("{HELP}");
        return ExitCode::from(args::USAGE);
    }
    let cmd = argv.remove(0);
    let result = match cmd.to_str() {
        Some("create") => create(Args::new(argv)),
        Some("set") => set(Args::new(argv)),
        Some("get") => get(Args::new(argv)),
        Some("del") => del(Args::new(argv)),
        Some("stats") => stats::run(Args::new(argv)),
        Some("verify") => verify(Args::new(argv)),
        Some("flush") => flush(Args::new(argv)),
        Some("destroy") => destroy_cmd(Args::new(argv)),
        Some("bench") => bench::run(Args::new(argv)),
        Some("bench-worker") => bench::worker(Args::new(argv)),
        #[cfg(feature = "testing")]
        Some("debug") => debug::run(Args::new(argv)),
        Some("-h" | "--help" | "help") => {
            println!("{HELP}");
            Ok(())
        }
        _ => Err(usage(format!(
            "unknown command {:?} (try `cachee --help`)",
            cmd.to_string_lossy()
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.msg.is_empty() {
                eprintln!("cachee: {}", f.msg);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Opens an existing segment for a command.
pub fn open(seg: &str) -> Result<Segment, Fail> {
    Ok(Segment::open(seg, &Options::new())?)
}

fn create(mut a: Args) -> Result<(), Fail> {
    let size = a
        .option("size")?
        .ok_or_else(|| usage("create needs --size"))?;
    let size = parse_size(&size)?;
    let mut opts = Options::new().size(size);
    if let Some(v) = a.option("max-value")? {
        opts = opts.max_value(parse_size(&v)? as usize);
    }
    let key = match a.option("max-key")? {
        Some(k) => parse_num::<usize>("max-key", &k)?,
        None => 250,
    };
    opts = opts.max_key(key);
    if let Some(v) = a.option("expected-value")? {
        opts = opts.expected_entry(32.min(key), parse_size(&v)? as usize);
    }
    if let Some(s) = a.option("shards")? {
        opts = opts.shards(parse_num("shards", &s)?);
    }
    if let Some(m) = a.option("mode")? {
        let mode = u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .map_err(|_| usage(format!("--mode: invalid octal mode {m:?}")))?;
        opts = opts.mode(mode);
    }
    if a.flag("no-checksums") {
        opts = opts.checksums(false);
    }
    let seg = a.positional_str("segment")?;
    a.done()?;
    let s = Segment::create(&seg, &opts).map_err(|e| match e {
        // The options ask for more than the size holds: an input error.
        ShmError::Cache(CacheError::RegionTooSmall { .. }) => {
            usage(format!("--size {size} is too small for these options: {e}"))
        }
        e => e.into(),
    })?;
    let fp = s.cache().footprint(32, 256);
    println!(
        "created {} ({} bytes, {} shards, keys up to {} B, values up to {} B; holds ≈{} entries of 32 B keys and 256 B values)",
        s.path().display(),
        s.file_len(),
        s.cache().shards(),
        s.cache().max_key_len(),
        s.cache().max_value_len(),
        fp.entries
    );
    Ok(())
}

fn set(mut a: Args) -> Result<(), Fail> {
    let ttl = a.option("ttl")?.map(|t| parse_duration(&t)).transpose()?;
    let file = a.option("file")?;
    let seg = a.positional_str("segment")?;
    let key = a.positional().ok_or_else(|| usage("missing key"))?;
    let value = match (file, a.positional()) {
        (Some(path), None) => std::fs::read(&path).map_err(|e| usage(format!("{path}: {e}")))?,
        (None, Some(v)) if v == b"-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| usage(format!("reading stdin: {e}")))?;
            buf
        }
        (None, Some(v)) => v,
        (None, None) => return Err(usage("missing value (give VALUE, --file F or - for stdin)")),
        (Some(_), Some(_)) => return Err(usage("give either VALUE or --file, not both")),
    };
    a.done()?;
    let s = open(&seg)?;
    match ttl {
        Some(d) if d.is_zero() => return Err(usage("--ttl must be positive")),
        Some(d) => s.set_ttl(&key, &value, d)?,
        None => s.set(&key, &value)?,
    }
    Ok(())
}

fn get(mut a: Args) -> Result<(), Fail> {
    let seg = a.positional_str("segment")?;
    let key = a.positional().ok_or_else(|| usage("missing key"))?;
    a.done()?;
    let s = open(&seg)?;
    match s.get(&key)? {
        Some(v) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&v)
                .and_then(|_| out.flush())
                .map_err(|e| Fail {
                    code: UNUSABLE,
                    msg: format!("writing stdout: {e}"),
                })?;
            Ok(())
        }
        None => Err(Fail {
            code: NOT_FOUND,
            msg: String::new(),
        }),
    }
}

fn del(mut a: Args) -> Result<(), Fail> {
    let seg = a.positional_str("segment")?;
    let key = a.positional().ok_or_else(|| usage("missing key"))?;
    a.done()?;
    if open(&seg)?.remove(&key)? {
        Ok(())
    } else {
        Err(Fail {
            code: NOT_FOUND,
            msg: String::new(),
        })
    }
}

fn verify(mut a: Args) -> Result<(), Fail> {
    let repair = a.flag("repair");
    let seg = a.positional_str("segment")?;
    a.done()?;
    let s = open(&seg)?;
    let recoveries_before = s.stats().recoveries;
    let problems = s.check(|p| println!("{p}"))?;
    let recovered = s.stats().recoveries.saturating_sub(recoveries_before);
    if recovered > 0 {
        println!("{recovered} shard(s) were locked by a dead process and have been recovered");
    }
    if problems == 0 {
        println!("{}: ok ({} entries)", s.path().display(), s.len());
        return Ok(());
    }
    println!("{problems} problem(s) found");
    if !repair {
        return Err(Fail {
            code: UNUSABLE,
            msg: format!(
                "{}: {problems} problem(s); run `cachee verify --repair`",
                s.path().display()
            ),
        });
    }
    let r = s.repair()?;
    println!(
        "repaired: {} shard(s) rebuilt, {} entries kept, {} dropped",
        r.shards_rebuilt, r.entries_kept, r.entries_dropped
    );
    let left = s.check(|p| println!("still wrong: {p}"))?;
    if left == 0 {
        Ok(())
    } else {
        Err(Fail {
            code: UNUSABLE,
            msg: format!("{left} problem(s) remain after repair"),
        })
    }
}

fn flush(mut a: Args) -> Result<(), Fail> {
    let seg = a.positional_str("segment")?;
    a.done()?;
    Ok(open(&seg)?.clear()?)
}

fn destroy_cmd(mut a: Args) -> Result<(), Fail> {
    let seg = a.positional_str("segment")?;
    a.done()?;
    Ok(destroy(&seg)?)
}
