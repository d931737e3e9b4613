//! Bad input at the API and at the command line: a clear error, and nothing lost — a
//! refused write keeps the old value, a refused create leaves no file. (The cases
//! `cli.rs` already covers are not repeated here.)

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cachee_shm::{CacheError, CasOutcome, Options, Segment, ShmError};
use common::{Cleanup, cachee, code, name, run, stderr};

fn small() -> Options {
    Options::new().size(2 << 20).max_key(16).max_value(1024)
}

fn is(e: ShmError, want: CacheError) {
    match e {
        ShmError::Cache(got) => assert_eq!(got, want),
        other => panic!("expected {want:?}, got {other:?}"),
    }
}

#[test]
fn api_bad_keys_values_and_ttls_change_nothing() {
    let seg = name("api-input");
    let _c = Cleanup(vec![seg.clone()]);
    let s = Segment::create(&seg, &small()).unwrap();
    s.set(b"k", b"keep").unwrap();
    s.set(b"n", b"41").unwrap();
    let long_key = [b'x'; 17];
    let big = vec![7u8; 1025];
    let hour = Some(Duration::from_secs(3600));

    is(s.set(b"", b"v").unwrap_err(), CacheError::EmptyKey);
    is(s.get(b"").unwrap_err(), CacheError::EmptyKey);
    is(s.remove(b"").unwrap_err(), CacheError::EmptyKey);
    is(
        s.set(&long_key, b"v").unwrap_err(),
        CacheError::KeyTooLong { len: 17, max: 16 },
    );
    is(
        s.get(&long_key).unwrap_err(),
        CacheError::KeyTooLong { len: 17, max: 16 },
    );
    let too_large = CacheError::ValueTooLarge {
        len: 1025,
        max: 1024,
    };
    is(s.set(b"k", &big).unwrap_err(), too_large);
    is(s.add(b"new", &big, None).unwrap_err(), too_large);
    is(s.replace(b"k", &big, hour).unwrap_err(), too_large);
    let (_, token) = s.gets(b"k").unwrap().unwrap();
    is(s.cas(b"k", token, &big, None).unwrap_err(), too_large);
    // TTLs: zero, below the clock's millisecond, and too far for the expiry to fit.
    for ttl in [
        Duration::ZERO,
        Duration::from_micros(500),
        Duration::MAX,
        Duration::from_millis(u64::MAX - 1000),
    ] {
        is(
            s.set_ttl(b"k", b"v", ttl).unwrap_err(),
            CacheError::InvalidTtl,
        );
        is(
            s.add(b"new", b"v", Some(ttl)).unwrap_err(),
            CacheError::InvalidTtl,
        );
        is(
            s.replace(b"k", b"v", Some(ttl)).unwrap_err(),
            CacheError::InvalidTtl,
        );
    }
    is(s.incr(b"k", 1, None).unwrap_err(), CacheError::NotANumber);
    // A buffer too small for the value: told how much is needed; nothing copied.
    let mut out = [0xAAu8; 2];
    is(
        s.get_into(b"k", &mut out).unwrap_err(),
        CacheError::BufferTooSmall { needed: 4 },
    );
    assert_eq!(out, [0xAA; 2]);
    // Counters: past u64::MAX a stored number is not a number; incr wraps at 2⁶⁴
    // (as memcached does).
    s.set(b"huge", b"18446744073709551616").unwrap();
    is(
        s.incr(b"huge", 1, None).unwrap_err(),
        CacheError::NotANumber,
    );
    assert_eq!(
        s.get(b"huge").unwrap().as_deref(),
        Some(&b"18446744073709551616"[..])
    );
    s.set(b"max", u64::MAX.to_string().as_bytes()).unwrap();
    assert_eq!(s.incr(b"max", 1, None).unwrap(), Some(0));

    // Nothing of the above changed anything.
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"keep"[..]));
    assert_eq!(s.get(b"n").unwrap().as_deref(), Some(&b"41"[..]));
    assert_eq!(s.get(b"new").unwrap(), None);
    assert_eq!(s.cas(b"k", token, b"v2", None).unwrap(), CasOutcome::Stored);

    // The edges that are allowed: empty values, keys and values of exactly the
    // maximum length, and keys of any bytes at all.
    s.set(b"empty", b"").unwrap();
    assert_eq!(s.get(b"empty").unwrap().as_deref(), Some(&b""[..]));
    s.set(&[b'x'; 16], &[9u8; 1024]).unwrap();
    assert_eq!(s.get(&[b'x'; 16]).unwrap().unwrap(), vec![9u8; 1024]);
    for key in [&b"\xff\xfe\x00\x01"[..], b"\0", b"caf\xe9", &[0u8; 16]] {
        s.set(key, key).unwrap();
        assert_eq!(s.get(key).unwrap().as_deref(), Some(key));
    }
    assert_eq!(s.check(|p| panic!("{p}")).unwrap(), 0);
}

#[test]
fn api_bad_options_and_names_leave_no_file() {
    let seg = name("api-options");
    let _c = Cleanup(vec![seg.clone()]);
    let cases: Vec<(Options, &str)> = vec![
        (small().mode(0o666), "would let other users write"),
        (small().mode(0o620), "would let other users write"),
        (small().mode(0o400), "must let the owner read and write"),
        (small().size(4096), "smaller than the 128 KiB minimum"),
        (small().size(u64::MAX), "larger than 64 TiB"),
        (small().max_key(0), "max key length"),
        (small().max_key(5000), "max key length"),
        (small().shards(3), "power of two"),
        (small().max_value(usize::MAX / 2), "invalid configuration"),
        (small().size(256 << 10).shards(64), "region too small"),
    ];
    for (opts, msg) in cases {
        let e = Segment::create(&seg, &opts).unwrap_err();
        assert!(e.to_string().contains(msg), "expected {msg:?} in {e}");
        assert!(
            !cachee_shm::resolve(&seg).unwrap().exists(),
            "{msg}: a file was left behind"
        );
        let e = Segment::open_or_create(&seg, &opts).unwrap_err();
        assert!(e.to_string().contains(msg), "expected {msg:?} in {e}");
        assert!(!cachee_shm::resolve(&seg).unwrap().exists());
    }
    let long = "n".repeat(256);
    for bad in ["", ".", "..", "a\0b", long.as_str()] {
        assert!(
            matches!(
                Segment::create(bad, &small()),
                Err(ShmError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn cli_bad_input_not_covered_elsewhere() {
    let seg = name("cli-input");
    // Never created: every create below must fail.
    let never = name("cli-never");
    let _c = Cleanup(vec![seg.clone(), never.clone()]);
    let o = run(&[
        "create",
        &seg,
        "--size",
        "2MiB",
        "--max-key",
        "16",
        "--max-value",
        "1KiB",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&run(&["set", &seg, "k", "keep"])), 0);
    let big = std::env::temp_dir().join(format!("cachee-rel-big-{}", std::process::id()));
    std::fs::write(&big, vec![b'x'; 2000]).unwrap();
    let big_path = big.to_str().unwrap().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["set", &seg, "k", "--file", &big_path],
            "value of 2000 bytes exceeds the maximum of 1024 bytes",
        ),
        (
            &["set", &seg, "k", "--file", "/nonexistent/value"],
            "No such file",
        ),
        (
            &["set", &seg, "k", "v", "--ttl", "0.1ms"],
            "invalid time-to-live",
        ),
        (&["set", &seg, "k", "v", "--ttl", "NaN"], "invalid duration"),
        (&["set", &seg, "k", "v", "--ttl", "inf"], "invalid duration"),
        (
            &["set", &seg, "k", "v", "--ttl", "1e12"],
            "invalid duration unit",
        ),
        (
            &["set", &seg, "k", "v", "--ttl", "99999999999999999999s"],
            "out of range",
        ),
        (&["set", &seg, "k", "v", "--ttl"], "--ttl needs a value"),
        (&["create", &never, "--size", "70TiB"], "larger than 64 TiB"),
        (
            &["create", &never, "--size", "18446744073709551615"],
            "larger than 64 TiB",
        ),
        (
            &["create", &never, "--size", "99999999999999999999"],
            "invalid size",
        ),
        (
            &["create", &never, "--size", "200KiB"],
            "too small for these options",
        ),
        (
            &["create", &never, "--size", "4MiB", "--shards", "64"],
            "too small for these options",
        ),
        (
            &["create", &never, "--size", "4MiB", "--shards", "3"],
            "power of two",
        ),
        (
            &["create", &never, "--size", "4MiB", "--max-key", "0"],
            "max key length",
        ),
        (
            &["create", &never, "--size", "4MiB", "--max-value", "1TiB"],
            "invalid configuration",
        ),
        (
            &["create", &never, "--size", "4MiB", "--mode", "rw"],
            "invalid octal mode",
        ),
        (&["stats", &seg, "--format"], "--format needs a value"),
        (
            &["verify", &seg, "--repairs"],
            "unexpected argument --repairs",
        ),
        // Absurd bench flags: refused before anything is created or started.
        (&["bench", "--processes", "5000"], "--processes must be"),
        (&["bench", "--processes", "1.5"], "--processes must be"),
        (&["bench", "--processes", "NaN"], "--processes must be"),
        (&["bench", "--threads", "0"], "--threads must be"),
        (&["bench", "--threads", "257"], "--threads must be"),
        (&["bench", "--keys", "0"], "--keys must be"),
        (&["bench", "--keys", "1e11"], "--keys must be"),
        (
            &["bench", "--keys", "1e10", "--entries", "1000"],
            "prefilling needs",
        ),
        (&["bench", "--value-size", "8"], "--value-size must be"),
        (
            &["bench", "--value-size", "2000000"],
            "--value-size must be",
        ),
        (&["bench", "--zipf", "-1"], "--zipf must be"),
        (&["bench", "--zipf", "NaN"], "--zipf must be"),
        (&["bench", "--read-ratio", "NaN"], "--read-ratio must be"),
        (&["bench", "--latency-ops", "-1"], "--latency-ops must be"),
        (&["bench", "--duration", "0s"], "--duration must be"),
        (&["bench", "--duration", "2d"], "--duration must be"),
        (&["bench", "--stream", "1000"], "--stream must be"),
    ];
    for (args, msg) in cases {
        let t = Instant::now();
        let child = cachee()
            .args(*args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // (`cachee bench` names its temporary segment after its pid.)
        let bench_seg = format!("/dev/shm/cachee-bench-{}", child.id());
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(msg),
            "{args:?}: expected {msg:?} in {:?}",
            stderr(&o)
        );
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {:?}", stderr(&o));
        assert!(t.elapsed() < Duration::from_secs(5), "{args:?} took long");
        assert!(
            !std::path::Path::new(&bench_seg).exists(),
            "{args:?} left a segment behind"
        );
    }
    assert!(!cachee_shm::resolve(&never).unwrap().exists());
    std::fs::remove_file(&big).unwrap();

    // Oversized from stdin too.
    let mut child = cachee()
        .args(["set", &seg, "k", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &[b'y'; 5000]).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("value of 5000 bytes exceeds"));

    // Arguments that are not UTF-8: fine for keys and values, refused (clearly) for
    // segment names and option values.
    let raw = |args: &[&[u8]]| {
        cachee()
            .args(args.iter().map(|a| OsStr::from_bytes(a)))
            .output()
            .unwrap()
    };
    let o = raw(&[b"get", b"seg\xff", b"k"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("segment is not UTF-8"),
        "{}",
        stderr(&o)
    );
    let o = raw(&[b"set", seg.as_bytes(), b"k", b"v", b"--ttl", b"1\xffs"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--ttl: value is not UTF-8"),
        "{}",
        stderr(&o)
    );
    let o = raw(&[b"set", seg.as_bytes(), b"\xff\x01\x02", b"\xfe"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        raw(&[b"get", seg.as_bytes(), b"\xff\x01\x02"]).stdout,
        b"\xfe"
    );

    // Empty values are values.
    assert_eq!(code(&run(&["set", &seg, "e", ""])), 0);
    let o = run(&["get", &seg, "e"]);
    assert_eq!((code(&o), o.stdout.len()), (0, 0));

    // A create in a directory that does not exist says so (not "no such segment").
    let o = run(&["create", "/nonexistent-dir/seg", "--size", "1MiB"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("No such file or directory"),
        "{}",
        stderr(&o)
    );

    assert_eq!(
        run(&["get", &seg, "k"]).stdout,
        b"keep",
        "refused writes changed nothing"
    );
    assert_eq!(code(&run(&["verify", &seg])), 0);
}

#[test]
fn bench_with_few_keys_runs_and_an_interrupted_bench_cleans_up() {
    // A handful of keys: the segment is sized up to the minimum, not refused.
    let o = run(&[
        "bench",
        "--keys",
        "100",
        "--processes",
        "1",
        "--duration",
        "100ms",
        "--latency-ops",
        "100",
        "--verify",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(common::stdout(&o).contains("corrupt reads: 0"));

    // SIGTERM in the middle: workers stopped, temporary segment removed, status 130.
    let child = cachee()
        .args([
            "bench",
            "--keys",
            "20000",
            "--processes",
            "2",
            "--duration",
            "60s",
            "--latency-ops",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let seg = format!("/dev/shm/cachee-bench-{pid}");
    let _c = Cleanup(vec![seg.clone(), format!("{seg}.bench-ctl")]);
    let t = Instant::now();
    while !std::path::Path::new(&format!("{seg}.bench-ctl")).exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "bench never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    common::signal(pid as i32, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    assert!(!std::path::Path::new(&seg).exists(), "segment left behind");
    assert!(!std::path::Path::new(&format!("{seg}.bench-ctl")).exists());
    assert!(t.elapsed() < Duration::from_secs(30));
}
