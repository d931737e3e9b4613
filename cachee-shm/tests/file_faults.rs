//! What happens to the segment *file* while processes are attached: removed, replaced,
//! truncated, grown, its mode or owner changed; and a creator that died or stalls.
//! (Faults found before attaching — a truncated or foreign file, a wrong owner, an
//! open mode, a symlink, a full /dev/shm, a future version — are in `cli.rs`.)

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::time::{Duration, Instant};

use cachee_shm::{Options, Segment, ShmError};
use common::{Cleanup, Control, Worker, code, ctl, name, run, stderr};

fn small() -> Options {
    Options::new().size(4 << 20).max_value(2048)
}

fn path_of(seg: &str) -> std::path::PathBuf {
    cachee_shm::resolve(seg).unwrap()
}

/// A worker process attached to `seg`, on the 95:5 mix.
fn attached_worker(seg: &str, ctl: &Control) -> Worker {
    let mut w = vec![Worker::spawn(
        seg,
        ctl,
        0,
        &["--keys", "2000", "--max-value", "500"],
    )];
    common::wait_attached(ctl, &mut w);
    w.pop().unwrap()
}

/// Waits until the worker has done `n` more operations.
fn progresses(ctl: &Control, n: u64) {
    let before = ctl.get(0, ctl::OPS);
    let t = Instant::now();
    while ctl.get(0, ctl::OPS) < before + n {
        assert!(t.elapsed() < Duration::from_secs(10), "the worker stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn removed_while_attached_attached_processes_carry_on_alone() {
    let seg = name("removed");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = Segment::create(&seg, &small()).unwrap();
    s.set(b"k", b"before").unwrap();
    let ctl = Control::create(&ctl_path);
    let w = attached_worker(&seg, &ctl);
    assert!(s.is_current().unwrap());

    assert_eq!(code(&run(&["destroy", &seg])), 0);
    // Attached handles keep working on the (now nameless) file…
    assert!(!s.is_current().unwrap(), "the handle can tell");
    s.set(b"k2", b"after").unwrap();
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"before"[..]));
    progresses(&ctl, 5000);
    // …while new openers find nothing,
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("no such segment"), "{}", stderr(&o));
    assert!(matches!(
        Segment::open(&seg, &small()),
        Err(ShmError::NotFound(_))
    ));
    // or, with open_or_create, a new, empty segment that the attached ones do not see.
    let fresh = Segment::open_or_create(&seg, &small()).unwrap();
    assert_eq!(fresh.get(b"k").unwrap(), None);
    fresh.set(b"k", b"new").unwrap();
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"before"[..]));
    assert!(fresh.is_current().unwrap() && !s.is_current().unwrap());
    // Reopening is how an attached process joins the new one.
    let s = Segment::open(&seg, &small()).unwrap();
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));

    ctl.stop();
    let out = w.finish(Duration::from_secs(20));
    assert!(out.status.success());
    assert_eq!(ctl.get(0, ctl::CORRUPT) + ctl.get(0, ctl::ERRORS), 0);
}

#[test]
fn replaced_while_attached_new_openers_get_the_replacement_checked_afresh() {
    let seg = name("replaced");
    let other = name("replacement");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let junk = format!("/dev/shm/{}", name("junk"));
    let _c = Cleanup(vec![
        seg.clone(),
        other.clone(),
        ctl_path.clone(),
        junk.clone(),
    ]);
    let s = Segment::create(&seg, &small()).unwrap();
    s.set(b"k", b"original").unwrap();
    let ctl = Control::create(&ctl_path);
    let w = attached_worker(&seg, &ctl);

    // Another segment renamed over the name.
    let o = Segment::create(&other, &small()).unwrap();
    o.set(b"k", b"replacement").unwrap();
    std::fs::rename(path_of(&other), path_of(&seg)).unwrap();
    assert!(!s.is_current().unwrap());
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"original"[..]));
    assert_eq!(run(&["get", &seg, "k"]).stdout, b"replacement");
    progresses(&ctl, 5000);

    // A file that is not a segment renamed over it: refused, and left as it is.
    std::fs::write(&junk, vec![0x42u8; 200_000]).unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&junk, path_of(&seg)).unwrap();
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("not a cachee segment"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(path_of(&seg)).unwrap(), vec![0x42u8; 200_000]);

    // A symbolic link put in its place: never followed.
    std::fs::remove_file(path_of(&seg)).unwrap();
    std::os::unix::fs::symlink(path_of(&other), path_of(&seg)).unwrap();
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert!(!s.is_current().unwrap());
    let o = run(&["destroy", &seg]);
    assert_eq!(code(&o), 3, "destroy refuses a symlink too");
    std::fs::remove_file(path_of(&seg)).unwrap();

    // Through all of it the attached processes kept their own segment.
    progresses(&ctl, 5000);
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"original"[..]));
    ctl.stop();
    assert!(w.finish(Duration::from_secs(20)).status.success());
    assert_eq!(ctl.get(0, ctl::CORRUPT) + ctl.get(0, ctl::ERRORS), 0);
}

/// The one file fault that attached processes do not survive: cutting pages off a
/// shared mapping makes the kernel raise SIGBUS in any process that touches them, as
/// for every mapped file. Only the segment's owner can do it (mode 0600, owner
/// check); cachee itself never truncates a ready segment.
#[test]
fn truncated_while_attached_attached_processes_get_sigbus() {
    let seg = name("cut");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    drop(Segment::create(&seg, &small()).unwrap());
    let ctl = Control::create(&ctl_path);
    let mut w = attached_worker(&seg, &ctl);
    let f = OpenOptions::new().write(true).open(path_of(&seg)).unwrap();
    f.set_len(1 << 20).unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(st) = w.child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
    // New openers are told, and the way back is to re-create it.
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("truncated: 1048576 bytes, the header says 4194304"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&run(&["destroy", &seg])), 0);
    assert_eq!(code(&run(&["create", &seg, "--size", "4MiB"])), 0);
    assert_eq!(code(&run(&["set", &seg, "k", "v"])), 0);
}

#[test]
fn grown_or_opened_up_while_attached() {
    let seg = name("grown");
    let ctl_path = format!("/dev/shm/{seg}.ctl");
    let _c = Cleanup(vec![seg.clone(), ctl_path.clone()]);
    let s = Segment::create(&seg, &small()).unwrap();
    s.set(b"k", b"v").unwrap();
    let ctl = Control::create(&ctl_path);
    let w = attached_worker(&seg, &ctl);
    // Growing the file changes nothing: the header says how much of it is the cache.
    let f = OpenOptions::new().write(true).open(path_of(&seg)).unwrap();
    f.set_len(8 << 20).unwrap();
    assert_eq!(run(&["get", &seg, "k"]).stdout, b"v");
    assert_eq!(code(&run(&["verify", &seg])), 0);
    // Opening the mode up: attached processes carry on, new ones refuse it.
    std::fs::set_permissions(path_of(&seg), std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("mode 0666 lets other users write it"),
        "{}",
        stderr(&o)
    );
    progresses(&ctl, 5000);
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Given away to another user: the same.
        std::fs::set_permissions(path_of(&seg), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(path_of(&seg), Some(65534), None).unwrap();
        let o = run(&["get", &seg, "k"]);
        assert_eq!(code(&o), 3);
        assert!(stderr(&o).contains("owned by uid 65534"), "{}", stderr(&o));
        progresses(&ctl, 5000);
    }
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    ctl.stop();
    assert!(w.finish(Duration::from_secs(20)).status.success());
    assert_eq!(ctl.get(0, ctl::CORRUPT) + ctl.get(0, ctl::ERRORS), 0);
}

/// A file whose creator never finished it: all zeros, mode 0600, no lock held.
fn unfinished(path: &std::path::Path) -> std::fs::File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.set_len(1 << 20).unwrap();
    f
}

#[test]
fn a_creator_that_died_or_stalls_mid_creation() {
    let seg = name("creator");
    let _c = Cleanup(vec![seg.clone()]);
    let path = path_of(&seg);
    let f = unfinished(&path);
    // Stalled: it still holds the creation lock. Openers wait, then give up.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: `flock` on a valid descriptor has no memory-safety preconditions.
    let locked = unsafe { libc::flock(fd, libc::LOCK_EX) };
    assert_eq!(locked, 0);
    let t = Instant::now();
    let e = Segment::open(&seg, &small().wait(Duration::from_millis(300))).unwrap_err();
    assert!(matches!(e, ShmError::Timeout(_)), "{e}");
    assert!(
        e.to_string()
            .contains("timed out waiting for another process")
    );
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(5));
    // Died: the kernel dropped its lock. `open` says so; `open_or_create` finishes
    // the job.
    drop(f);
    let e = Segment::open(&seg, &small()).unwrap_err();
    assert!(matches!(e, ShmError::CreatorDied(_)), "{e}");
    let o = run(&["get", &seg, "k"]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("died before finishing"),
        "{}",
        stderr(&o)
    );
    let s = Segment::open_or_create(&seg, &small()).unwrap();
    s.set(b"k", b"v").unwrap();
    assert_eq!(run(&["get", &seg, "k"]).stdout, b"v");
    assert_eq!(s.file_len(), 4 << 20);
}

#[test]
fn a_future_version_segment_is_never_reformatted_even_when_not_ready() {
    // A segment of another format version, whose state word this build does not
    // recognise as "ready": `open_or_create` must refuse it, not take it for a
    // half-made segment of its own and re-format it.
    let seg = name("future");
    let _c = Cleanup(vec![seg.clone()]);
    drop(Segment::create(&seg, &small()).unwrap());
    let path = path_of(&seg);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..16].copy_from_slice(&2u64.to_le_bytes()); // version
    bytes[16..24].copy_from_slice(&0x5354_4152_5432u64.to_le_bytes()); // its own state
    std::fs::write(&path, &bytes).unwrap();
    for e in [
        Segment::open(&seg, &small()).unwrap_err(),
        Segment::open_or_create(&seg, &small()).unwrap_err(),
    ] {
        assert!(
            e.to_string()
                .contains("segment format version 2 is not supported (this build reads version 1)"),
            "{e}"
        );
    }
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "the file was modified"
    );
}
