//! `cachee-bench`: side-by-side cache benchmarks.
//!
//! ```text
//! cachee-bench run [--contenders a,b,..] [--threads 1,2] [--entries N | --memory BYTES]
//!                  [--keys N] [--value-size B] [--read-ratio R] [--zipf S] [--duration SECS]
//!                  [--latency-ops N] [--repeat N] [--out DIR] [--label TEXT]
//! cachee-bench hit-ratio [--contenders a,b,..] [--trace oltp|zipf] [--sizes a,b,..]
//!                  [--equal-memory] [--value-size B] [--out DIR]
//! cachee-bench instructions CONTENDER [--entries N] [--value-size B]
//! ```
//!
//! `run` measures throughput, per-operation latency and memory: each (contender, thread
//! count) pair runs in a fresh child process, so that one contender's heap cannot
//! affect another's memory figure, and server contenders get a freshly started server.
//! A child prefills the cache with every key once, warms up, then runs a throughput
//! pass (no per-operation timing) and a latency pass (every operation timed with the
//! time-stamp counter). With `--repeat N` the pairs run N times, interleaved, and
//! medians are reported.
//!
//! `hit-ratio` replays a trace through each in-process contender at several sizes,
//! either at equal entry counts or at equal memory.
//!
//! `instructions` is for `valgrind --tool=callgrind --toggle-collect='*measured_*'`.

mod contender;
mod hitratio;
mod mem;
mod net;
mod ops;
mod report;
mod run;
mod servers;
mod shmprocs;
mod svg;

use contender::Size;

/// Parameters shared by the subcommands (each uses what it needs).
#[derive(Clone, Debug)]
pub struct Params {
    pub contenders: Vec<String>,
    pub threads: Vec<usize>,
    pub entries: u64,
    /// `--memory`: every contender gets this many bytes instead of `entries` entries.
    pub memory: Option<u64>,
    pub keys: Option<u64>,
    pub value_size: usize,
    pub read_ratio: f64,
    pub zipf: f64,
    pub duration: f64,
    pub latency_ops: usize,
    pub repeat: usize,
    pub out: Option<String>,
    pub label: Option<String>,
    pub trace: String,
    pub sizes: Vec<u64>,
    pub equal_memory: bool,
    /// Set by the orchestrator for server contenders.
    pub sockets: String,
    pub server_pid: Option<u32>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            contenders: vec![
                "cachee".into(),
                "quick_cache".into(),
                "quick_cache-arc".into(),
                "moka".into(),
                "mini-moka".into(),
                "lru".into(),
                "lru-sharded".into(),
            ],
            threads: vec![1, 2],
            entries: 1_000_000,
            memory: None,
            keys: None,
            value_size: 256,
            read_ratio: 0.95,
            zipf: 0.99,
            duration: 3.0,
            latency_ops: 2_000_000,
            repeat: 1,
            out: None,
            label: None,
            trace: "oltp".into(),
            sizes: Vec::new(),
            equal_memory: false,
            sockets: String::new(),
            server_pid: None,
        }
    }
}

impl Params {
    pub fn size(&self) -> Size {
        match self.memory {
            Some(b) => Size::Bytes(b),
            None => Size::Entries(self.entries),
        }
    }

    /// Keys in the operation stream: twice the entry count unless given.
    pub fn keys(&self) -> u64 {
        self.keys.unwrap_or(self.entries.saturating_mul(2))
    }

    pub fn describe(&self) -> String {
        let size = match self.memory {
            Some(b) => format!("{} MiB each", b >> 20),
            None => format!("{} entries", self.entries),
        };
        let dist = if self.zipf == 0.0 {
            "uniform".to_string()
        } else {
            format!("Zipf {}", self.zipf)
        };
        format!(
            "{size} × {} B values, {} keys, {dist}, {:.0}:{:.0} get:set",
            self.value_size,
            self.keys(),
            self.read_ratio * 100.0,
            (1.0 - self.read_ratio) * 100.0
        )
    }
}

pub fn usage() -> ! {
    eprintln!(
        "usage: cachee-bench run [--contenders LIST] [--threads LIST] [--entries N | --memory BYTES]\n\
         \x20                       [--keys N] [--value-size B] [--read-ratio R] [--zipf S]\n\
         \x20                       [--duration SECS] [--latency-ops N] [--repeat N] [--out DIR]\n\
         \x20      cachee-bench hit-ratio [--contenders LIST] [--trace oltp|zipf] [--sizes LIST]\n\
         \x20                       [--equal-memory] [--value-size B] [--out DIR]\n\
         \x20      cachee-bench instructions CONTENDER [--entries N] [--value-size B]\n\
         contenders: {}\n\
         sizes take K, M and G suffixes (powers of 1024 for --memory, of 1000 otherwise)",
        contender::ALL.join(", ")
    );
    std::process::exit(2)
}

/// Parses `12`, `1.5M`, `4K`, `2G`; `binary` picks powers of 1024.
fn parse_count(s: &str, binary: bool) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], if binary { 1u64 << 10 } else { 1_000 }),
        'M' | 'm' => (&s[..s.len() - 1], if binary { 1 << 20 } else { 1_000_000 }),
        'G' | 'g' => (
            &s[..s.len() - 1],
            if binary { 1 << 30 } else { 1_000_000_000 },
        ),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult as f64).round() as u64)
}

fn parse(args: &[String]) -> Params {
    let mut p = Params::default();
    let mut sizes = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        let num = |s: String| -> f64 { s.parse().unwrap_or_else(|_| usage()) };
        let count = |s: String| parse_count(&s, false).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--contenders" => p.contenders = val().split(',').map(str::to_owned).collect(),
            "--threads" => {
                p.threads = val()
                    .split(',')
                    .map(|t| t.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--entries" => p.entries = count(val()),
            "--memory" => p.memory = Some(parse_count(&val(), true).unwrap_or_else(|| usage())),
            "--keys" => p.keys = Some(count(val())),
            "--value-size" => p.value_size = count(val()) as usize,
            "--read-ratio" => p.read_ratio = num(val()),
            "--zipf" => p.zipf = num(val()),
            "--duration" => p.duration = num(val()),
            "--latency-ops" => p.latency_ops = count(val()) as usize,
            "--repeat" => p.repeat = num(val()).max(1.0) as usize,
            "--out" => p.out = Some(val()),
            "--label" => p.label = Some(val()),
            "--trace" => p.trace = val(),
            "--sizes" => sizes = Some(val()),
            "--equal-memory" => p.equal_memory = true,
            "--sockets" => p.sockets = val(),
            "--server-pid" => p.server_pid = Some(num(val()) as u32),
            _ => usage(),
        }
    }
    // Byte budgets count in powers of 1024, entry counts in powers of 1000.
    if let Some(list) = sizes {
        p.sizes = list
            .split(',')
            .map(|s| parse_count(s, p.equal_memory).unwrap_or_else(|| usage()))
            .collect();
    }
    for c in &p.contenders {
        if !contender::ALL.contains(&c.as_str()) {
            eprintln!("unknown contender {c}");
            usage();
        }
    }
    let bad = p.threads.is_empty()
        || p.threads.contains(&0)
        || p.entries == 0
        || p.keys() == 0
        || p.memory == Some(0)
        || !(0.0..=1.0).contains(&p.read_ratio)
        || !(0.0..=10.0).contains(&p.zipf)
        || p.duration.is_nan()
        || p.duration <= 0.0
        || p.value_size == 0;
    if bad {
        usage();
    }
    p
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run::orchestrate(&parse(&args[1..])),
        Some("hit-ratio") => hitratio::orchestrate(&parse(&args[1..])),
        Some("instructions") if args.len() >= 2 => run::instructions(&args[1], &parse(&args[2..])),
        Some("child") if args.len() >= 3 => {
            let threads = args[2].parse().unwrap_or_else(|_| usage());
            run::child(&args[1], threads, &parse(&args[3..]));
        }
        Some("shm-worker") if args.len() >= 3 => {
            let index = args[2].parse().unwrap_or_else(|_| usage());
            shmprocs::worker(&args[1], index, &parse(&args[3..]));
        }
        Some("hit-ratio-child") if args.len() >= 2 => hitratio::child(&args[1], &parse(&args[2..])),
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_take_suffixes() {
        assert_eq!(parse_count("1M", false), Some(1_000_000));
        assert_eq!(parse_count("1.5k", false), Some(1_500));
        assert_eq!(parse_count("256M", true), Some(256 << 20));
        assert_eq!(parse_count("12", true), Some(12));
        assert_eq!(parse_count("x", false), None);
        assert_eq!(parse_count("-1", false), None);
        assert_eq!(parse_count("", false), None);
    }
}
