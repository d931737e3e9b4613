//! loom model checks of `cachee-core`'s concurrency protocol.
//!
//! Built with `RUSTFLAGS="--cfg cachee_loom"`, every atomic in `cachee-core` is a loom
//! atomic (see `cachee-core/src/sync.rs`), so these models check **the real code**
//! through its public API: a tiny region of loom words is formatted as a cache and two
//! loom threads call `get`/`set`/`remove`/`for_each` on it while loom explores their
//! interleavings (at most `LOOM_MAX_PREEMPTIONS` preemptions each, 2 in CI) and the
//! values every load may return under the C11 memory model.
//!
//! Without `--cfg cachee_loom` this crate and its tests compile to nothing, so the
//! ordinary `cargo test --workspace` is unaffected. Run the models with
//! `bash .ci/loom.sh`.
//!
//! | file | model |
//! |---|---|
//! | `tests/shard_lock.rs` | two writers in one shard; two writers racing to take over a dead owner's lock |
//! | `tests/seqlock_reads.rs` | a reader against an in-place update, a relocation to another class, a page move |
//! | `tests/slot_reuse.rs` | a reader of `X` while `Y` evicts it and reuses its slot; readers racing a removal |
//! | `tests/clock.rs` | a hit setting a reference bit while an insert runs the cold hand |
//! | `tests/recovery.rs` | a reader and a writer after a writer died mid-update (takeover and repair) |
//!
//! Each model also runs with one of `cachee-core`'s deliberate bugs switched on
//! ([`cachee_core::mutants`]) and must report a violation of its property, so a model
//! that silently stops reaching the interesting interleavings is noticed; and each
//! asserts that its executions reached every outcome it expects (old value, new
//! value, miss, either victim, ...), which the run prints with the execution count.
//!
//! A model that finds a bug in the core stays `#[ignore]`d until the fix lands (run
//! such models with `bash .ci/loom.sh --include-ignored`); none is ignored now.
//!
//! This library holds what the model files share: a region type the threads can
//! share, hooks with owner ids and a set of dead owners, the smallest configuration
//! that formats, and the runner (iteration counts, outcomes, mutant runs serialised
//! against everything else because the mutant switch is process-wide).
#![cfg(cachee_loom)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use cachee_core::{AtomicWord, Cache, Config, Hooks, Region, WORD_BYTES, mutants, new_word};

pub use cachee_core;
pub use loom;

/// A region of loom words that several threads (and several cache handles) share.
#[derive(Clone, Debug)]
pub struct Shared(Arc<Vec<AtomicWord>>);

impl Shared {
    /// A zeroed region of `bytes` bytes. Must be called inside a loom model (loom
    /// atomics only exist inside an execution).
    pub fn new(bytes: usize) -> Self {
        Shared(Arc::new(
            (0..bytes / WORD_BYTES).map(|_| new_word()).collect(),
        ))
    }
}

// SAFETY: the words are the elements of a vector kept alive by the `Arc` for as long
// as any clone of `self` exists; distinct indices are distinct elements; they are
// atomics, which safe code can only access atomically.
unsafe impl Region for Shared {
    fn words(&self) -> usize {
        self.0.len()
    }

    unsafe fn word_unchecked(&self, i: usize) -> &AtomicWord {
        // SAFETY: the caller guarantees `i < self.words()`, the vector's length.
        unsafe { self.0.get_unchecked(i) }
    }
}

/// Hooks for one handle: its owner id, and the owner ids that are dead. Any other
/// owner counts as alive (as in a multi-process deployment). Waiting yields to loom.
#[derive(Debug)]
pub struct LoomHooks {
    /// The id this handle writes into lock words.
    pub id: u32,
    /// Owners reported dead.
    pub dead: &'static [u32],
    /// How often this handle waited for a lock (test instrumentation, not part of
    /// the model: a plain std atomic that loom does not see).
    pub waits: std::sync::atomic::AtomicU32,
    /// How often `owner_alive` answered "dead" (instrumentation, like `waits`).
    pub deaths_reported: std::sync::atomic::AtomicU32,
}

impl LoomHooks {
    /// A handle with owner id `id` that knows the owners in `dead` to be dead.
    pub const fn new(id: u32, dead: &'static [u32]) -> Self {
        LoomHooks {
            id,
            dead,
            waits: std::sync::atomic::AtomicU32::new(0),
            deaths_reported: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Whether this handle ever had to wait for a shard lock.
    pub fn waited(&self) -> bool {
        self.waits.load(StdOrdering::Relaxed) > 0
    }
}

/// `LIVENESS_EVERY` of `cachee-core/src/cache.rs` under `cfg(cachee_loom)`: a waiting
/// writer asks whether the lock's owner is alive every this many attempts.
pub const LIVENESS_EVERY: u32 = 4;

impl Hooks for LoomHooks {
    fn owner_id(&self) -> u32 {
        self.id
    }

    fn owner_alive(&self, id: u32) -> bool {
        let dead = self.dead.contains(&id);
        if dead {
            self.deaths_reported.fetch_add(1, StdOrdering::Relaxed);
        }
        !dead
    }

    fn relax(&self, spins: u32) -> bool {
        self.waits.fetch_add(1, StdOrdering::Relaxed);
        // Yield once per liveness check, not on every spin. A yield on every spin
        // would let a writer waiting for a *dead* owner advance only while every other
        // thread is blocked: loom would then never explore a reader paused in the
        // middle of a read while that writer takes the lock over and rebuilds the
        // shard (measured: 23 executions, the reader never overlapping the rebuild).
        // Yielding once per liveness check still guarantees that a writer waiting for
        // a live owner lets that owner run, so no model spins without bound.
        if spins % LIVENESS_EVERY == 0 {
            loom::thread::yield_now();
        }
        true
    }

    fn stripe_hint(&self) -> usize {
        0
    }
}

/// The cache type every model uses.
pub type LoomCache = Cache<Shared, LoomHooks>;

/// Bytes of the region for [`tiny`]: a header and one shard of one 512-byte page.
pub const ONE_PAGE: usize = 1792;
/// Bytes of the region for a shard of two 512-byte pages.
pub const TWO_PAGES: usize = 2304;

/// The smallest configuration that formats: one shard, 8-byte keys, values up to
/// 16 bytes, 512-byte pages (fifteen 32-byte slots per page for a 16-byte value).
pub fn tiny() -> Config {
    Config::new()
        .shards(1)
        .max_key_len(8)
        .max_value_len(16)
        .expected_entry(8, 16)
        .page_size(512)
        .stat_stripes(1)
        .seed(7)
}

/// Formats a region of `bytes` bytes with `cfg` and returns the first handle (owner
/// `id`). Further handles come from [`attach`].
pub fn format(bytes: usize, cfg: &Config, hooks: LoomHooks) -> Arc<LoomCache> {
    let c = Cache::format_with_hooks(Shared::new(bytes), cfg, hooks).expect("format");
    // The models rely on the page count (a page move needs one page, a relocation a
    // second, free one): fail loudly if a layout change moved it.
    let pages = match bytes {
        ONE_PAGE => 1,
        TWO_PAGES => 2,
        _ => 0,
    };
    if pages > 0 {
        assert_eq!(
            c.capacity_for(8, 16),
            15 * pages,
            "{bytes} bytes no longer format as {pages} page(s) of fifteen 32-byte slots: \
             adjust ONE_PAGE / TWO_PAGES"
        );
    }
    Arc::new(c)
}

/// Another handle on the same region, with its own hooks (its own owner id).
pub fn attach(c: &LoomCache, hooks: LoomHooks) -> Arc<LoomCache> {
    Arc::new(Cache::attach_with_hooks(c.region().clone(), hooks).expect("attach"))
}

/// Reads `key`, returning the value copied out (or `None` on a miss).
pub fn read(c: &LoomCache, key: &[u8]) -> Option<Vec<u8>> {
    let mut out = [0u8; 16];
    c.get(key, &mut out)
        .expect("get")
        .map(|n| out[..n].to_vec())
}

/// Every (key, value) pair `for_each` passes on, in order.
pub fn entries(c: &LoomCache) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (mut k, mut v) = ([0u8; 8], [0u8; 16]);
    let mut seen = Vec::new();
    c.for_each(&mut k, &mut v, |k, v| {
        seen.push((k.to_vec(), v.to_vec()));
        std::ops::ControlFlow::Continue(())
    })
    .expect("for_each");
    seen
}

/// Asserts that `got` is a miss or exactly one of `allowed` (never a mixture).
#[track_caller]
pub fn assert_one_of(what: &str, got: &Option<Vec<u8>>, allowed: &[&[u8]]) {
    if let Some(v) = got {
        assert!(
            allowed.contains(&v.as_slice()),
            "MODEL VIOLATION ({what}): read {v:02x?}, which is none of {allowed:02x?}"
        );
    }
}

/// Asserts that `validate()` finds nothing wrong.
#[track_caller]
pub fn assert_valid(c: &LoomCache) {
    if let Err(p) = c.validate() {
        panic!("MODEL VIOLATION (validate): {p}");
    }
}

/// Stack of every loom thread the models run on. loom's default (32 KiB) is too
/// small for a few cache handles (each carries a 3 KiB geometry table) and
/// `Layout::plan`.
const STACK: usize = 256 << 10;

/// The threads of one execution of a model.
///
/// Every spawned thread starts with an RMW on a shared atomic (so does the main
/// thread, with [`Threads::enter`]): loom issue #392 reports that a spawned thread
/// whose first operation is a plain load may never be preempted, silently skipping
/// interleavings.
#[derive(Debug)]
pub struct Threads {
    gate: Arc<loom::sync::atomic::AtomicUsize>,
    handles: Vec<loom::thread::JoinHandle<()>>,
}

impl Default for Threads {
    fn default() -> Self {
        Self::new()
    }
}

impl Threads {
    /// No threads yet.
    pub fn new() -> Self {
        Threads {
            gate: Arc::new(loom::sync::atomic::AtomicUsize::new(0)),
            handles: Vec::new(),
        }
    }

    /// Spawns a loom thread running `f`.
    pub fn spawn(&mut self, f: impl FnOnce() + Send + 'static) {
        let gate = self.gate.clone();
        let h = loom::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                gate.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                f()
            })
            .expect("spawn");
        self.handles.push(h);
    }

    /// The calling (main) thread's own first operation in the concurrent part.
    pub fn enter(&self) {
        self.gate
            .fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
    }

    /// Waits for every spawned thread (propagating a panic).
    pub fn join(self) {
        for h in self.handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
    }
}

/// Mutant runs flip a process-wide switch: they take this lock for writing, ordinary
/// runs for reading, so no model ever runs with a mutant it did not ask for.
static MUTANT_LOCK: RwLock<()> = RwLock::new(());

fn builder(cap: Option<usize>) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    // `LOOM_MAX_PREEMPTIONS` (2 in CI), or 2 if it is unset: unbounded is hopeless.
    let bound = b.preemption_bound.unwrap_or(2);
    b.preemption_bound = Some(cap.map_or(bound, |c| bound.min(c)));
    // Formatting and `validate()` alone are a few hundred atomic accesses, each a
    // loom branch point; the default (1,000) is meant for much smaller models.
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        b.max_branches = 50_000;
    }
    b
}

std::thread_local! {
    /// Outcomes noted by the executions of the model running on this OS thread (loom
    /// runs every execution of a model, all its loom threads included, on the OS
    /// thread that called `check`).
    static OUTCOMES: RefCell<BTreeMap<&'static str, usize>> = const { RefCell::new(BTreeMap::new()) };
}

/// Records that an execution of the current model ended in `outcome` (for example
/// "reader saw the old value"), so that a model can show it explored each case.
pub fn observe(outcome: &'static str) {
    OUTCOMES.with(|o| *o.borrow_mut().entry(outcome).or_default() += 1);
}

/// Runs `f` as a loom model, prints how many executions loom explored and which
/// outcomes they noted, and asserts that every outcome in `expected` was seen at
/// least once (evidence that loom reached the interleavings that produce it).
pub fn check<F>(name: &str, expected: &[&str], f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    check_bounded(name, None, expected, f)
}

/// [`check`] with the preemption bound capped at `cap` (for the one model whose
/// bound-2 state space is too large for CI; see its documentation).
pub fn check_bounded<F>(name: &str, cap: Option<usize>, expected: &[&str], f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let _shared = MUTANT_LOCK.read().unwrap_or_else(|e| e.into_inner());
    OUTCOMES.with(|o| o.borrow_mut().clear());
    let b = builder(cap);
    let bound = b.preemption_bound;
    let (result, iters, secs) = run(b, f);
    if let Err(payload) = result {
        std::panic::resume_unwind(payload);
    }
    let seen = OUTCOMES.with(|o| o.borrow().clone());
    println!(
        "loom model {name}: {iters} executions in {secs:.2}s (preemption bound {bound:?}); \
         outcomes {seen:?}"
    );
    for e in expected {
        assert!(
            seen.contains_key(e),
            "model {name} never reached outcome {e:?} (seen: {seen:?})"
        );
    }
}

/// Runs the model `f` with `mutant` switched on and asserts that loom finds a
/// violation of the model's property (a panic whose message contains
/// `MODEL VIOLATION`). Switches the mutant off again before returning.
pub fn check_catches<F>(name: &str, mutant: u32, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    check_catches_bounded(name, None, mutant, f)
}

/// [`check_catches`] with the preemption bound capped at `cap`.
pub fn check_catches_bounded<F>(name: &str, cap: Option<usize>, mutant: u32, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let _exclusive = MUTANT_LOCK.write().unwrap_or_else(|e| e.into_inner());
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            mutants::set(0);
        }
    }
    let _reset = Reset;
    mutants::set(mutant);
    let b = builder(cap);
    let bound = b.preemption_bound;
    // The violation is expected: keep the panic hook from printing it (and a
    // backtrace) as if something had gone wrong. The message is printed below.
    QUIET.with(|q| q.set(true));
    let (result, n, secs) = run(b, f);
    QUIET.with(|q| q.set(false));
    match result {
        Ok(()) => panic!(
            "loom did NOT catch mutant {mutant:#x} in {name} ({n} executions, {secs:.2}s, \
             preemption bound {bound:?})"
        ),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            assert!(
                msg.contains("MODEL VIOLATION"),
                "mutant {mutant:#x} in {name} failed for another reason than the model's \
                 property: {msg}"
            );
            println!(
                "loom model {name} with mutant {mutant:#x}: caught after {n} executions in \
                 {secs:.2}s (preemption bound {bound:?}): {msg}"
            );
        }
    }
}

type Payload = Box<dyn std::any::Any + Send>;

std::thread_local! {
    /// Set while a mutant run on this OS thread is expected to panic.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once, before loom's generator crate installs its own filter on top of
/// it) a panic hook that stays silent for the expected panics of mutant runs. The
/// hook is never replaced afterwards: swapping hooks back and forth would drop the
/// generator crate's filter for its internal cancellation panics.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                prev(info);
            }
        }));
    });
}

fn run<F>(b: loom::model::Builder, f: F) -> (Result<(), Payload>, usize, f64)
where
    F: Fn() + Sync + Send + 'static,
{
    install_quiet_hook();
    let iters = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let f = Arc::new(f);
    let counted = {
        let iters = iters.clone();
        move || {
            iters.fetch_add(1, StdOrdering::Relaxed);
            // The model's body runs on a thread with a large stack (see `STACK`);
            // loom's main thread only spawns and joins it.
            let f = f.clone();
            let body = loom::thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || f())
                .expect("spawn");
            if let Err(p) = body.join() {
                std::panic::resume_unwind(p);
            }
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| b.check(counted)));
    (
        result,
        iters.load(StdOrdering::Relaxed),
        t.elapsed().as_secs_f64(),
    )
}
