//! Operation streams: pre-generated so that drawing keys costs nothing while timing.

use workload::rng::Rng;
use workload::zipf::Zipf;

/// Top bit of an op word: this op is a set (else a get).
pub const SET: u64 = 1 << 63;

/// Draws `n` operations over `keys` keys (Zipf-distributed ranks, or uniform when
/// `zipf` is 0) with the given fraction of reads. Ranks are scrambled so that popular
/// keys are not numerically adjacent.
pub fn stream(n: usize, keys: u64, zipf: f64, read_ratio: f64, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let dist = Zipf::new(keys, zipf).expect("valid zipf parameters");
    (0..n)
        .map(|_| {
            let rank = dist.sample(&mut rng);
            let key = workload::scramble(rank, 0x5eed) & !SET;
            if rng.next_f64() < read_ratio {
                key
            } else {
                key | SET
            }
        })
        .collect()
}

/// All keys in random order (for prefilling).
pub fn all_keys(keys: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..keys)
        .map(|r| workload::scramble(r, 0x5eed) & !SET)
        .collect();
    let mut rng = Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}
