#!/usr/bin/env bash
# The whole benchmark suite, as committed in docs/benchmarks.md:
#
#   scripts/bench-suite.sh [--quick] [OUT_DIR]
#
# Writes every table (markdown and JSON) and plot (SVG) under OUT_DIR (default
# docs/bench), plus machine.txt (what it ran on) and instructions.txt (callgrind
# counts). --quick shortens every run (for trying the suite out, not for quoting).
# Installs redis-server, memcached and valgrind with apt-get if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
if [[ ${1:-} == --quick ]]; then quick=1; shift; fi
out=${1:-docs/bench}
mkdir -p "$out"

# rep: repeats of the headline workload (its table shows medians); the other
# workloads run once each (their rows are for shape, not for quoting to 5%).
if (( quick )); then
  dur=0.5 lat=200K rep=1 big=1M
else
  dur=3 lat=2M rep=3 big=10M
fi
rep_other=${BENCH_REPEAT_OTHER:-1}

cargo build --release -p cachee-bench
bench=target/release/cachee-bench
threads=1,2
cores=$(nproc)
if (( cores > 2 )); then threads=1,2,$cores; fi

# What it ran on.
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "cores: $cores"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
  echo "rustc: $(rustc --version)"
  echo "redis: $(redis-server --version 2>/dev/null | head -1 || echo 'not installed')"
  echo "memcached: $(memcached -V 2>/dev/null || echo 'not installed')"
} > "$out/machine.txt"

all=cachee,cachee-checksum,cachee-shm,cachee-shm-procs,quick_cache,quick_cache-arc,moka,mini-moka,lru,lru-sharded,redis,redis-pipe16,memcached,memcached-pipe16
inproc=cachee,cachee-shm,quick_cache,quick_cache-arc,moka,mini-moka,lru-sharded

run() { # name, then cachee-bench run arguments (a later --repeat overrides $rep)
  local name=$1; shift
  echo "== $name"
  "$bench" run --duration "$dur" --latency-ops "$lat" --repeat "$rep" --out "$out/$name" "$@"
}

# The headline workload: 1M entries × 256 B, Zipf 0.99, 95:5, every contender.
run main --contenders "$all" --threads "$threads" --entries 1M --value-size 256
# The other workloads, in-process contenders.
run mixed-50-50 --repeat "$rep_other" --contenders "$inproc" --threads "$threads" --entries 1M --value-size 256 --read-ratio 0.5
run uniform --repeat "$rep_other" --contenders "$inproc" --threads "$threads" --entries 1M --value-size 256 --zipf 0
run values-64 --repeat "$rep_other" --contenders "$inproc" --threads "$threads" --entries 1M --value-size 64
run values-4k --repeat "$rep_other" --contenders "$inproc" --threads "$threads" --entries 100K --value-size 4096
run "entries-$big" --contenders cachee,quick_cache,quick_cache-arc,moka --threads "$threads" --entries "$big" --value-size 256 --repeat 1
# Equal memory: every contender gets the bytes cachee needs for 1M entries.
run equal-memory --repeat "$rep_other" --contenders "$inproc" --threads 1 --memory 290M --value-size 256

# Hit ratio: the OLTP trace at equal entries and equal memory, Zipf at equal memory.
"$bench" hit-ratio --trace oltp --out "$out/hit-ratio"
"$bench" hit-ratio --trace oltp --equal-memory --out "$out/hit-ratio"
"$bench" hit-ratio --trace zipf --equal-memory --out "$out/hit-ratio"

# Instruction counts per operation (repeatable whatever the machine is doing).
if ! command -v valgrind > /dev/null; then
  apt-get install -y -q valgrind > /dev/null || true
fi
if command -v valgrind > /dev/null; then
  {
    echo "instructions per operation (callgrind, 100K operations each, 100K-entry cache half full)"
    for c in cachee cachee-checksum quick_cache quick_cache-arc moka lru; do
      valgrind --tool=callgrind --toggle-collect='*measured_*' \
        --callgrind-out-file="$out/callgrind.$c.out" \
        "$bench" instructions "$c" --entries 100K > /dev/null 2>&1
      printf '%s' "$c"
      for f in measured_get_hit measured_get_miss measured_set; do
        n=$(callgrind_annotate --inclusive=yes "$out/callgrind.$c.out" 2>/dev/null \
          | grep -E "run::$f\$" | head -1 | awk '{gsub(",", "", $1); print $1}')
        printf '  %s %d' "${f#measured_}" $(( ${n:-0} / 100000 ))
      done
      echo
      rm -f "$out/callgrind.$c.out"
    done
  } | tee "$out/instructions.txt"
else
  echo "warning: valgrind is not available; no instruction counts" | tee "$out/instructions.txt"
fi
echo "results in $out"
