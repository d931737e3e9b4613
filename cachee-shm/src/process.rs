//! Process identity: a pid is only meaningful together with the process's start time,
//! because the kernel reuses pids.

use std::io;

/// The start time of process `pid`, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` if there is no such process.
pub(crate) fn start_time(pid: u32) -> io::Result<Option<u64>> {
    Ok(stat(pid)?.map(|s| s.start))
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The state letter (field 3): `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), …
    pub state: u8,
    /// Start time in clock ticks since boot (field 22).
    pub start: u64,
}

/// Fields 3 and 22 of `/proc/<pid>/stat`, or `None` if there is no such process.
pub(crate) fn stat(pid: u32) -> io::Result<Option<Stat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The command name (field 2) is parenthesised and may itself contain spaces or
    // parentheses: the fields that follow start after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| bad(&text))?;
    // `rest` holds fields 3, 4, …; the state is field 3, starttime field 22.
    let mut fields = rest.split_ascii_whitespace();
    let state = fields
        .next()
        .and_then(|f| f.bytes().next())
        .ok_or_else(|| bad(&text))?;
    let start = fields.nth(22 - 4).ok_or_else(|| bad(&text))?;
    let start = start.parse().map_err(|_| bad(&text))?;
    Ok(Some(Stat { state, start }))
}

fn bad(text: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc stat line: {text:.80}"),
    )
}

/// This process's id and start time.
pub(crate) fn me() -> io::Result<(u32, u64)> {
    let pid = std::process::id();
    let start = start_time(pid)?.ok_or_else(|| io::Error::other("cannot read /proc/self/stat"))?;
    Ok((pid, start))
}

/// Packs a pid (< 2²², Linux's `PID_MAX_LIMIT`) and a start time into one word.
pub(crate) fn pack(pid: u32, start: u64) -> u64 {
    ((pid as u64) & 0x3f_ffff) | (start << 22)
}

/// Unpacks [`pack`].
pub(crate) fn unpack(v: u64) -> (u32, u64) {
    ((v & 0x3f_ffff) as u32, v >> 22)
}

/// Whether the process identified by a packed (pid, start time) still runs.
///
/// A zombie — a process that has exited but not yet been reaped by its parent — does
/// not run: it has released its memory and can never write again, so its locks are
/// abandoned even though `/proc/<pid>` still shows it. (A thread-group leader that
/// exited while other threads of its process go on also shows as a zombie; those
/// threads may still hold locks, so a zombie with live threads counts as alive.)
/// Unreadable `/proc` entries count as alive: never take a lock from a maybe-live owner.
pub(crate) fn alive(packed: u64) -> bool {
    let (pid, start) = unpack(packed);
    if pid == 0 {
        return false;
    }
    match stat(pid) {
        Ok(Some(s)) if s.start & ((1 << 42) - 1) != start => false,
        Ok(Some(s)) if matches!(s.state, b'Z' | b'X') => other_threads_run(pid),
        Ok(Some(_)) => true,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Whether process `pid` has a thread other than its (exited) leader. Errors count as
/// yes, in keeping with [`alive`].
fn other_threads_run(pid: u32) -> bool {
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks.filter_map(Result::ok).any(|t| {
            t.file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|tid| tid != pid && !matches!(task_state(pid, tid), Some(b'Z' | b'X')))
        }),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// The state letter of thread `tid` of process `pid`, if it can be read.
fn task_state(pid: u32, tid: u32) -> Option<u8> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    rest.split_ascii_whitespace().next()?.bytes().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let (pid, start) = me().unwrap();
        assert!(alive(pack(pid, start)));
        assert!(
            !alive(pack(pid, start + 1)),
            "same pid, other start time: another process"
        );
        assert!(!alive(0));
        assert_eq!(unpack(pack(pid, start)), (pid, start));
    }

    fn wait_for_state(pid: u32, want: u8) {
        let t = std::time::Instant::now();
        while stat(pid).unwrap().map(|s| s.state) != Some(want) {
            assert!(
                t.elapsed().as_secs() < 10,
                "process {pid} never reached state {}",
                want as char
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_stopped_process_is_alive_and_an_unreaped_dead_one_is_not() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let packed = pack(pid, start_time(pid).unwrap().unwrap());
        assert!(alive(packed));
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child,
        // not yet reaped, so the pid cannot have been reused.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        wait_for_state(pid, b'T');
        assert!(alive(packed), "frozen, not dead");
        child.kill().unwrap();
        // Not reaped yet: /proc still shows the process, as a zombie.
        wait_for_state(pid, b'Z');
        assert!(
            !alive(packed),
            "a zombie holds no memory and can never write again"
        );
        child.wait().unwrap();
        assert!(!alive(packed));
    }
}
