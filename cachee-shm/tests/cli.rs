//! The `cachee` tool: every command, exit codes, and every bad-input case with its
//! message. Files that are refused are left untouched.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use cachee_shm::destroy;

fn cachee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cachee"))
        .args(args)
        .output()
        .expect("run cachee")
}

fn cachee_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cachee"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn name(tag: &str) -> String {
    format!("cachee-cli-{tag}-{}", std::process::id())
}

struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = destroy(n);
            let _ = std::fs::remove_file(n);
        }
    }
}

#[test]
fn the_everyday_commands() {
    let seg = name("everyday");
    let _c = Cleanup(vec![seg.clone()]);
    let o = cachee(&["create", &seg, "--size", "4MiB", "--max-value", "64KiB"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("created /dev/shm/"));
    assert_eq!(
        code(&cachee(&["create", &seg, "--size", "4MiB"])),
        3,
        "exists"
    );
    assert!(stderr(&cachee(&["create", &seg, "--size", "4MiB"])).contains("already exists"));

    assert_eq!(code(&cachee(&["set", &seg, "greeting", "hello"])), 0);
    let o = cachee(&["get", &seg, "greeting"]);
    assert_eq!((code(&o), o.stdout.as_slice()), (0, &b"hello"[..]));
    assert_eq!(
        code(&cachee(&["get", &seg, "absent"])),
        1,
        "not found is 1, like grep"
    );
    assert!(cachee(&["get", &seg, "absent"]).stderr.is_empty());

    let o = cachee_stdin(&["set", &seg, "from-stdin", "-"], b"\x00binary\xff");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        cachee(&["get", &seg, "from-stdin"]).stdout,
        b"\x00binary\xff"
    );
    let file = std::env::temp_dir().join(format!("cachee-cli-value-{}", std::process::id()));
    std::fs::write(&file, vec![7u8; 5000]).unwrap();
    assert_eq!(
        code(&cachee(&[
            "set",
            &seg,
            "from-file",
            "--file",
            file.to_str().unwrap()
        ])),
        0
    );
    assert_eq!(cachee(&["get", &seg, "from-file"]).stdout, vec![7u8; 5000]);
    std::fs::remove_file(&file).unwrap();

    assert_eq!(
        code(&cachee(&[
            "set",
            &seg,
            "short-lived",
            "x",
            "--ttl",
            "150ms"
        ])),
        0
    );
    assert_eq!(code(&cachee(&["get", &seg, "short-lived"])), 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(code(&cachee(&["get", &seg, "short-lived"])), 1, "expired");

    // Keys are bytes: a non-UTF-8 key round-trips.
    let key = std::ffi::OsStr::from_bytes(b"caf\xe9");
    use std::os::unix::ffi::OsStrExt;
    let o = Command::new(env!("CARGO_BIN_EXE_cachee"))
        .arg("set")
        .arg(&seg)
        .arg(key)
        .arg("latin-1")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_cachee"))
        .arg("get")
        .arg(&seg)
        .arg(key)
        .output()
        .unwrap();
    assert_eq!(o.stdout, b"latin-1");

    assert_eq!(code(&cachee(&["del", &seg, "greeting"])), 0);
    assert_eq!(code(&cachee(&["del", &seg, "greeting"])), 1);

    for format in ["text", "json", "prometheus"] {
        let o = cachee(&["stats", &seg, "--format", format]);
        assert_eq!(code(&o), 0, "{format}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        match format {
            "text" => assert!(out.contains("hit ratio")),
            "json" => assert!(out.trim_start().starts_with('{') && out.contains("\"per_shard\"")),
            _ => assert!(
                out.contains("# TYPE cachee_hits_total counter") && out.contains("shard=\"0\"")
            ),
        }
    }
    assert_eq!(code(&cachee(&["stats", &seg, "--format", "xml"])), 2);

    let o = cachee(&["verify", &seg]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(code(&cachee(&["flush", &seg])), 0);
    assert_eq!(code(&cachee(&["get", &seg, "from-file"])), 1);
    assert_eq!(code(&cachee(&["destroy", &seg])), 0);
    let o = cachee(&["get", &seg, "x"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("no such segment"), "{}", stderr(&o));
}

#[test]
fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let seg = name("input");
    let _c = Cleanup(vec![seg.clone()]);
    assert_eq!(
        code(&cachee(&[
            "create",
            &seg,
            "--size",
            "4MiB",
            "--max-key",
            "16",
            "--max-value",
            "1KiB"
        ])),
        0
    );
    assert_eq!(code(&cachee(&["set", &seg, "k", "keep"])), 0);
    let cases: &[(&[&str], &str)] = &[
        (&["set", &seg, "", "v"], "keys must not be empty"),
        (
            &["set", &seg, "a-key-that-is-longer-than-16", "v"],
            "exceeds the maximum of 16 bytes",
        ),
        (
            &["set", &seg, "k", &"v".repeat(1025)],
            "exceeds the maximum of 1024 bytes",
        ),
        (
            &["set", &seg, "k", "v", "--ttl", "0s"],
            "--ttl must be positive",
        ),
        (
            &["set", &seg, "k", "v", "--ttl", "soon"],
            "invalid duration",
        ),
        (&["set", &seg, "k"], "missing value"),
        (&["get", &seg], "missing key"),
        (&["create", "x", "--size", "lots"], "invalid size"),
        (&["create", "x"], "needs --size"),
        (&["create", "x", "--size", "100EiB"], "invalid size"),
        (
            &["create", "x", "--size", "1TiB", "--mode", "0666"],
            "would let other users write",
        ),
        (
            &["create", "x", "--size", "1KiB"],
            "smaller than the 128 KiB minimum",
        ),
        (&["bench", "--processes", "0"], "--processes must be"),
        (&["bench", "--read-ratio", "2"], "--read-ratio must be"),
        (&["bench", "--duration", "-3s"], "duration"),
        (&["bench", "--value-size", "huge"], "invalid number"),
        (&["frobnicate"], "unknown command"),
        (&["get", &seg, "k", "extra"], "unexpected argument"),
    ];
    for (args, msg) in cases {
        let o = cachee(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(msg),
            "{args:?}: expected {msg:?} in {:?}",
            stderr(&o)
        );
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {:?}", stderr(&o));
    }
    assert_eq!(
        cachee(&["get", &seg, "k"]).stdout,
        b"keep",
        "failed writes changed nothing"
    );
    assert_eq!(code(&cachee(&[])), 2);
}

fn file_fault(tag: &str, prepare: impl FnOnce(&str), expect_code: i32, expect_msg: &str) {
    let path = format!("/dev/shm/{}", name(tag));
    let _c = Cleanup(vec![path.clone()]);
    prepare(&path);
    let digest = |p: &str| {
        std::fs::read(p).ok().map(|b| {
            (
                b.len(),
                b.iter()
                    .fold(0u64, |h, &x| h.wrapping_mul(31).wrapping_add(x as u64)),
            )
        })
    };
    let before = digest(&path);
    let o = cachee(&["get", &path, "k"]);
    assert_eq!(code(&o), expect_code, "{tag}: {}", stderr(&o));
    assert!(
        stderr(&o).contains(expect_msg),
        "{tag}: expected {expect_msg:?} in {:?}",
        stderr(&o)
    );
    assert!(digest(&path) == before, "{tag}: the file was modified");
}

fn make_segment(path: &str) {
    assert_eq!(code(&cachee(&["create", path, "--size", "1MiB"])), 0);
    assert_eq!(code(&cachee(&["set", path, "k", "v"])), 0);
}

#[test]
fn damaged_and_foreign_files_are_refused_untouched() {
    file_fault(
        "foreign",
        |p| std::fs::write(p, vec![0x42u8; 200_000]).unwrap(),
        3,
        "not a cachee segment",
    );
    file_fault(
        "truncated",
        |p| {
            make_segment(p);
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(700_000).unwrap();
        },
        3,
        "truncated",
    );
    file_fault(
        "future-version",
        |p| {
            make_segment(p);
            let mut bytes = std::fs::read(p).unwrap();
            bytes[8..16].copy_from_slice(&2u64.to_le_bytes());
            std::fs::write(p, bytes).unwrap();
        },
        3,
        "format version 2 is not supported",
    );
    file_fault(
        "bad-header",
        |p| {
            make_segment(p);
            let mut bytes = std::fs::read(p).unwrap();
            bytes[48] ^= 1; // region length: caught by the header checksum
            std::fs::write(p, bytes).unwrap();
        },
        3,
        "corrupt segment header",
    );
    file_fault(
        "bad-core-header",
        |p| {
            make_segment(p);
            let mut bytes = std::fs::read(p).unwrap();
            bytes[65536] ^= 0xff; // the cache region's magic
            std::fs::write(p, bytes).unwrap();
        },
        3,
        "bad magic",
    );
    file_fault(
        "too-open",
        |p| {
            make_segment(p);
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
        },
        3,
        "lets other users write it",
    );
    file_fault(
        "symlink",
        |p| {
            let target = format!("{p}-target");
            make_segment(&target);
            std::os::unix::fs::symlink(&target, p).unwrap();
        },
        3,
        "symbolic link",
    );
    let _ = std::fs::remove_file(format!("/dev/shm/{}-target", name("symlink")));
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        file_fault(
            "foreign-owner",
            |p| {
                make_segment(p);
                std::os::unix::fs::chown(p, Some(65534), None).unwrap();
            },
            3,
            "owned by uid 65534",
        );
    }
    file_fault(
        "directory",
        |p| std::fs::create_dir(p).unwrap(),
        3,
        "not a regular file",
    );
    let _ = std::fs::remove_dir(format!("/dev/shm/{}", name("directory")));
}

#[test]
fn a_full_filesystem_is_an_error_at_create_time() {
    // A tiny tmpfs would need mount privileges; a segment larger than /dev/shm's free
    // space shows the same path (posix_fallocate fails up front, nothing is left behind).
    let seg = name("nospace");
    let _c = Cleanup(vec![seg.clone()]);
    let o = cachee(&["create", &seg, "--size", "64TiB"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("not enough space"), "{}", stderr(&o));
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{seg}")).exists(),
        "no half-made file left behind"
    );
}
