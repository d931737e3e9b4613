//! `cachee debug …`: fault injection for the multi-process tests. Only built with the
//! `testing` feature (which test builds enable); never in a release.
//!
//! ```text
//! cachee debug die-holding-lock SEG KEY   # half-writes KEY, keeps its shard lock, waits to be killed
//! cachee debug open-or-create SEG         # races to create SEG; prints the first writer's pid
//! cachee debug writer SEG N               # writes N values that encode their key
//! ```

use std::time::Duration;

use cachee_core::Hooks;
use cachee_shm::{Options, Segment};

use crate::args::{Args, Fail, usage};

pub fn run(mut a: Args) -> Result<(), Fail> {
    let what = a.positional_str("debug command")?;
    let seg = a.positional_str("segment")?;
    let opts = Options::new().size(4 << 20).max_value(4096);
    match what.as_str() {
        "die-holding-lock" => {
            let key = a.positional().ok_or_else(|| usage("missing key"))?;
            a.done()?;
            let s = Segment::open(&seg, &opts)?;
            let me = s.cache().hooks().owner_id();
            s.cache()
                .testing_die_mid_set(&key, &[0xEE; 100], me)
                .map_err(cachee_shm::ShmError::from)?;
            println!("LOCKED {}", s.cache().testing_shard_of(&key));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "open-or-create" => {
            a.done()?;
            let s = Segment::open_or_create(&seg, &opts)?;
            s.add(b"first", std::process::id().to_string().as_bytes(), None)?;
            let first = s.get(b"first")?.ok_or_else(|| usage("`first` vanished"))?;
            println!("FIRST {}", String::from_utf8_lossy(&first));
            Ok(())
        }
        "writer" => {
            let n: u64 = crate::args::parse_num("count", &a.positional_str("count")?)?;
            a.done()?;
            let s = Segment::open(&seg, &opts)?;
            let pid = std::process::id() as u64;
            for i in 0..n {
                let key = (i % 500).to_le_bytes();
                let mut v = vec![0u8; 64 + (i % 700) as usize];
                v[..8].copy_from_slice(&(i % 500).to_le_bytes());
                v[8..16].copy_from_slice(&((pid << 32) | i).to_le_bytes());
                s.set(&key, &v)?;
            }
            println!("DONE");
            Ok(())
        }
        other => Err(usage(format!("unknown debug command {other:?}"))),
    }
}
