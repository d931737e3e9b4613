//! Real separate processes on one segment: concurrent verified workloads, a writer
//! killed while holding a shard lock, and racing creators.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachee_shm::{Options, Segment, destroy};

fn cachee() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachee"))
}

/// `cachee debug …`: fault injection, present in test builds (feature `testing`).
fn helper() -> Command {
    let mut c = cachee();
    c.arg("debug");
    c
}

fn name(tag: &str) -> String {
    format!("cachee-mp-{tag}-{}", std::process::id())
}

struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = destroy(&self.0);
    }
}

fn opts() -> Options {
    Options::new().size(4 << 20).max_value(4096)
}

#[test]
fn concurrent_processes_never_read_a_wrong_value() {
    let seg = name("verify");
    let _c = Cleanup(seg.clone());
    let out = cachee()
        .args([
            "bench",
            &seg,
            "--processes",
            "3",
            "--duration",
            "2s",
            "--keys",
            "20000",
            "--verify",
            "--latency-ops",
            "20000",
        ])
        .output()
        .expect("run cachee bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("corrupt reads: 0"), "{text}");
    // Afterwards every invariant holds.
    let v = cachee().args(["verify", &seg]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn a_writer_killed_holding_a_lock_does_not_stop_the_others() {
    let seg = name("kill");
    let _c = Cleanup(seg.clone());
    let s = Segment::create(&seg, &opts()).unwrap();
    for i in 0..300u32 {
        s.set(&i.to_le_bytes(), &[i as u8; 40]).unwrap();
    }
    let mut child = helper()
        .args(["die-holding-lock", &seg, "victim"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let shard: usize = line
        .trim()
        .strip_prefix("LOCKED ")
        .expect("helper locked a shard")
        .parse()
        .unwrap();
    assert_ne!(
        s.cache().testing_lock_owner(shard),
        0,
        "the helper holds the lock"
    );

    // While the holder is alive (but stuck), writes to its shard time out; reads go on.
    let key = (10_000u32..)
        .find(|i| s.cache().testing_shard_of(&i.to_le_bytes()) == shard)
        .unwrap();
    let quick = Segment::open(&seg, &opts().lock_timeout(Duration::from_millis(200))).unwrap();
    let t = Instant::now();
    assert!(matches!(
        quick.set(&key.to_le_bytes(), b"x"),
        Err(cachee_shm::ShmError::Cache(cachee_core::Error::Busy))
    ));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(
        s.get(b"victim").unwrap(),
        None,
        "the half-written entry is never read"
    );
    assert_eq!(s.stats().recoveries, 0, "a live owner is not overtaken");

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let t = Instant::now();
    s.set(&key.to_le_bytes(), b"after the crash").unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "recovered in {:?}",
        t.elapsed()
    );
    assert_eq!(s.stats().recoveries, 1);
    assert_eq!(
        s.get(&key.to_le_bytes()).unwrap().as_deref(),
        Some(&b"after the crash"[..])
    );
    assert_eq!(s.get(b"victim").unwrap(), None);
    for i in 0..300u32 {
        if let Some(v) = s.get(&i.to_le_bytes()).unwrap() {
            assert_eq!(v, vec![i as u8; 40], "entries survive the repair intact");
        }
    }
    let v = cachee().args(["verify", &seg]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn racing_creators_agree_on_one_segment() {
    let seg = name("race");
    let _c = Cleanup(seg.clone());
    let children: Vec<_> = (0..8)
        .map(|_| {
            helper()
                .args(["open-or-create", &seg])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let firsts: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert!(firsts.iter().all(|f| f.starts_with("FIRST ")), "{firsts:?}");
    assert!(
        firsts.windows(2).all(|w| w[0] == w[1]),
        "everyone saw the same segment: {firsts:?}"
    );
}

#[test]
fn concurrent_writer_processes_leave_a_consistent_segment() {
    let seg = name("writers");
    let _c = Cleanup(seg.clone());
    let s = Segment::create(&seg, &opts()).unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            helper()
                .args(["writer", &seg, "20000"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Read while they write: every value must be intact for its key.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    while Instant::now() < deadline {
        for k in 0..500u64 {
            if let Some(v) = s.get(&k.to_le_bytes()).unwrap() {
                assert!(
                    v.len() >= 64 && v[..8] == k.to_le_bytes(),
                    "key {k}: wrong value"
                );
                reads += 1;
            }
        }
        if reads > 50_000 {
            break;
        }
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("DONE"));
    }
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}
