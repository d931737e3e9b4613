//! Workload generators and reference cache models for cachee's tests and
//! benchmarks.
//!
//! * [`rng`]: a small deterministic PRNG (SplitMix64 seeding, `xoshiro256**`),
//!   so that every workload is reproducible from a seed.
//! * [`zipf`]: an O(1) Zipf sampler (rejection-inversion) for skewed key
//!   popularity, plus [`zipf::scramble`] to spread hot keys over the key space.
//! * [`trace`]: loaders for block traces in the ARC paper's `.lis` format,
//!   including the OLTP trace shipped in `traces/`.
//! * [`model`]: exact reference policies (LRU, Belady's optimum, an unbounded
//!   cache) that report the hit ratio a real cache should be compared with.
//!
//! ```
//! use workload::model::{simulate_belady, simulate_lru};
//! use workload::rng::Rng;
//! use workload::zipf::{scramble, Zipf};
//!
//! let zipf = Zipf::new(1_000, 0.99)?;
//! let mut rng = Rng::new(42);
//! let keys: Vec<u64> = (0..2_000).map(|_| scramble(zipf.sample(&mut rng), 0)).collect();
//!
//! let lru = simulate_lru(&keys, 100);
//! let opt = simulate_belady(&keys, 100);
//! assert!(opt.hits >= lru.hits);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod hist;
pub mod model;
pub mod rng;
pub mod stamp;
pub mod trace;
pub mod zipf;

pub use hist::Histogram;
pub use model::{HitStats, Lru, simulate_belady, simulate_infinite, simulate_lru};
pub use rng::Rng;
pub use stamp::{check_stamp, stamped};
pub use trace::{TraceError, load_lis, load_oltp, oltp_trace_path};
pub use zipf::{Zipf, ZipfError, scramble};
