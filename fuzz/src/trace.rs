//! Counters of what the harnesses did, printed every 20,000 runs when
//! `CACHEE_FUZZ_TRACE` is set (to see whether inputs reach the interesting paths).

use std::sync::Mutex;

static COUNTS: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CACHEE_FUZZ_TRACE").is_some())
}

/// Counts one `event`. The event named `run` triggers the periodic report.
pub fn count(event: &'static str) {
    if !enabled() {
        return;
    }
    let mut c = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let n = match c.iter_mut().find(|(e, _)| *e == event) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            c.push((event, 1));
            1
        }
    };
    if event.ends_with("run") && n % 20_000 == 0 {
        let line: Vec<String> = c.iter().map(|(e, n)| format!("{e}={n}")).collect();
        eprintln!("[trace] {}", line.join(" "));
    }
}
