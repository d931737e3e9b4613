#!/usr/bin/env bash
# Soak benchmark: the 95:5 Zipf workload (`cachee bench --verify`) from one process per
# core for SECONDS (default 600). Every 10 s it samples the resident memory of the
# bench parent and of every worker (/proc/PID/status: RssAnon = private memory,
# RssShmem = pages of the segment the process has touched); at the end it reports, per
# process, the first and last sample of the timed run and the largest, the throughput
# of every interval (SOAK_INTERVAL seconds, default 60), and checks the segment with
# `cachee verify`.
#
# This is a benchmark, not a test: it reports figures; it fails only if the bench
# itself fails (a corrupt read, a worker error) or `cachee verify` does.
#
# Usage: scripts/soak.sh [SECONDS] [more `cachee bench` flags, e.g. --keys 500000]
set -euo pipefail
secs=${1:-600}
shift || true
interval=${SOAK_INTERVAL:-60}
cd "$(dirname "$0")/.."
cargo build --release -q -p cachee-shm --bin cachee
bin=target/release/cachee
seg="cachee-soak-$$"
out=$(mktemp -d)
bench=
cleanup() {
  [ -n "$bench" ] && kill "$bench" 2>/dev/null && wait "$bench" 2>/dev/null
  "$bin" destroy "$seg" 2>/dev/null || true
}
trap cleanup EXIT

echo "soak: $secs s on $(nproc) cores; raw data in $out" >&2
"$bin" bench "$seg" --duration "${secs}s" --verify --json "$out/bench.json" "$@" \
  >"$out/bench.txt" 2>"$out/progress.txt" &
bench=$!

# Samples: seconds since start, pid, role, RssAnon kB, RssShmem kB, VmRSS kB.
t0=$(date +%s)
run_start=
while kill -0 "$bench" 2>/dev/null; do
  now=$(($(date +%s) - t0))
  # The timed run starts with the first progress line (before it: prefill and the
  # workers building their key streams).
  if [ -z "$run_start" ] && grep -q '^\[' "$out/progress.txt"; then run_start=$now; fi
  for pid in "$bench" $(ps -o pid= --ppid "$bench" 2>/dev/null); do
    role=worker
    [ "$pid" = "$bench" ] && role=parent
    awk -v t="$now" -v pid="$pid" -v role="$role" '
      /^RssAnon:/ {a=$2} /^RssShmem:/ {s=$2} /^VmRSS:/ {r=$2}
      END {if (r != "") print t, pid, role, a, s, r}' "/proc/$pid/status" 2>/dev/null || true
  done >>"$out/rss.txt"
  sleep 10
done
status=0
wait "$bench" || status=$?
bench=

cat "$out/bench.txt"
echo
echo "## Resident memory (kB) during the timed run"
echo
awk -v from="${run_start:-0}" -v secs="$secs" '
  { key = $2; role[key] = $3
    # Samples in the timed window only.
    if ($1 >= from && $1 <= from + secs) {
      if (!(key in first)) { first[key] = $1; fa[key] = $4; fs[key] = $5 }
      last[key] = $1; la[key] = $4; ls[key] = $5
      if ($4 > ma[key]) ma[key] = $4
      if ($5 > ms[key]) ms[key] = $5
    }
  }
  END {
    print "| process | pid | RssAnon first → last (max) | RssShmem first → last (max) | samples at |"
    print "|---|---|---|---|---|"
    for (k in first)
      printf "| %s | %s | %d → %d (%d) | %d → %d (%d) | %d s → %d s |\n",
        role[k], k, fa[k], la[k], ma[k], fs[k], ls[k], ms[k], first[k], last[k]
  }' "$out/rss.txt"
echo
echo "## Throughput per ${interval} s"
echo
# Progress lines: "[  61.0 s]    12.34 Mops/s    123456789 ops" (cumulative ops).
awk -v iv="$interval" '
  /^\[/ { line = $0; sub(/^\[ */, "", line); split(line, a, /[ \]]+/); t = a[1]
          n = split(line, b, / +/); ops = b[n - 1]
          m = int(t / iv); last_t[m] = t; last_ops[m] = ops; if (m > maxm) maxm = m }
  END {
    print "| interval | Mops/s |"
    print "|---|---|"
    prev_t = 0; prev_ops = 0
    for (m = 0; m <= maxm; m++) if (m in last_t) {
      dt = last_t[m] - prev_t
      if (dt >= iv / 2) printf "| %d–%d s | %.2f |\n", prev_t, last_t[m], (last_ops[m] - prev_ops) / dt / 1e6
      prev_t = last_t[m]; prev_ops = last_ops[m]
    }
  }' "$out/progress.txt"
echo
echo "## cachee verify"
"$bin" verify "$seg" || status=$?
"$bin" stats "$seg" | grep -E 'entries|recoveries|rejected' || true
exit "$status"
