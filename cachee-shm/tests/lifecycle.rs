//! Creating, opening, sharing and destroying segments in one process.

use std::time::Duration;

use cachee_shm::{Options, Segment, ShmError, destroy};

fn name(tag: &str) -> String {
    format!("cachee-test-{tag}-{}", std::process::id())
}

fn small() -> Options {
    Options::new().size(2 << 20).max_value(4096)
}

#[test]
fn create_share_and_destroy() {
    let n = name("lifecycle");
    let a = Segment::create(&n, &small()).unwrap();
    assert!(matches!(
        Segment::create(&n, &small()),
        Err(ShmError::AlreadyExists(_))
    ));
    a.set(b"k", b"v").unwrap();
    let b = Segment::open(&n, &small()).unwrap();
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    b.set_ttl(b"t", b"x", Duration::from_secs(60)).unwrap();
    assert!(a.contains(b"t").unwrap());
    assert_eq!(a.incr(b"n", 2, Some(40)).unwrap(), Some(40));
    assert_eq!(b.incr(b"n", 2, None).unwrap(), Some(42));
    let (v, token) = a.gets(b"k").unwrap().unwrap();
    assert_eq!(v, b"v");
    assert_eq!(
        b.cas(b"k", token, b"w", None).unwrap(),
        cachee_shm::CasOutcome::Stored
    );
    assert_eq!(
        a.get_with(b"k", |v| v.to_vec()).unwrap().as_deref(),
        Some(&b"w"[..])
    );
    assert_eq!(a.check(|p| panic!("{p}")).unwrap(), 0);
    drop(a);
    drop(b);
    let c = Segment::open_or_create(&n, &small()).unwrap();
    assert_eq!(
        c.get(b"k").unwrap().as_deref(),
        Some(&b"w"[..]),
        "data persists across handles"
    );
    destroy(&n).unwrap();
    assert!(matches!(
        Segment::open(&n, &small()),
        Err(ShmError::NotFound(_))
    ));
    assert!(matches!(destroy(&n), Err(ShmError::NotFound(_))));
    // The mapping stays valid after the file is removed.
    assert_eq!(c.get(b"k").unwrap().as_deref(), Some(&b"w"[..]));
}
