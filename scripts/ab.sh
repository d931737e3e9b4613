#!/usr/bin/env bash
# A/B comparison of two cachee-bench binaries on this noisy machine: many short runs,
# interleaved, medians reported. Usage: scripts/ab.sh BIN_A BIN_B ROUNDS [child args...]
set -euo pipefail
a=$1 b=$2 rounds=$3; shift 3
ra=() rb=()
for ((i = 0; i < rounds; i++)); do
  ra+=("$("$a" child cachee 1 --duration 1 --latency-ops 1000 "$@" | grep -o 'mops=[0-9.]*' | cut -d= -f2)")
  rb+=("$("$b" child cachee 1 --duration 1 --latency-ops 1000 "$@" | grep -o 'mops=[0-9.]*' | cut -d= -f2)")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ma=$(med "${ra[@]}") mb=$(med "${rb[@]}")
echo "A median $ma  B median $mb  B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN{printf "%.3f", b/a}')"
