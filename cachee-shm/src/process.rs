//! Process identity: a pid is only meaningful together with the process's start time,
//! because the kernel reuses pids.

use std::io;

/// The start time of process `pid`, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` if there is no such process.
pub(crate) fn start_time(pid: u32) -> io::Result<Option<u64>> {
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
    // `rest` holds fields 3, 4, …; starttime is field 22.
    let start = rest
        .split_ascii_whitespace()
        .nth(22 - 3)
        .ok_or_else(|| bad(&text))?;
    start.parse().map(Some).map_err(|_| bad(&text))
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
/// Unreadable `/proc` entries count as alive: never take a lock from a maybe-live owner.
pub(crate) fn alive(packed: u64) -> bool {
    let (pid, start) = unpack(packed);
    if pid == 0 {
        return false;
    }
    match start_time(pid) {
        Ok(Some(s)) => s & ((1 << 42) - 1) == start,
        Ok(None) => false,
        Err(_) => true,
    }
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
}
