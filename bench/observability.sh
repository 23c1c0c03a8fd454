#!/usr/bin/env bash
# observability.sh — what strata's statistics and leak tracking cost (docs/stats.md,
# docs/debugging.md). Runs each workload under three configurations, interleaved
# (A B C A B C ...), and prints the median wall time of each and its ratio to A:
#   A  libstrata built without event counting (ST_EVENTS_ENABLED=0)
#   B  libstrata as shipped: statistics compiled in, not printed
#   C  libstrata as shipped with STRATA_LEAKS=1 (every block's call stack recorded)
# usage: observability.sh LIB_NO_EVENTS LIB WORKLOAD_DIR [ROUNDS] [SCALE]
set -euo pipefail
lib_a=$1 lib_b=$2 dir=$3 rounds=${4:-5} scale=${5:-30}
cases=("fixed" "random" "xthread" "threads 4" "server")

now_ns() { date +%s%N; }
run_once() { # lib leaks workload args... -> elapsed ns
  local lib=$1 leaks=$2
  shift 2
  local t0 t1
  t0=$(now_ns)
  env LD_PRELOAD="$lib" STRATA_LEAKS="$leaks" "$dir/$1" "$scale" "${@:2}" >/dev/null 2>&1 ||
    { echo "observability: $* failed under $lib (STRATA_LEAKS=$leaks)" >&2; exit 1; }
  t1=$(now_ns)
  echo $((t1 - t0))
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf "%-10s %12s %12s %8s %12s %8s\n" workload "A ms" "B ms" "B/A" "C ms" "C/A"
for c in "${cases[@]}"; do
  read -r -a args <<<"$c"
  a=() b=() cc=()
  for ((r = 0; r < rounds; r++)); do
    a+=("$(run_once "$lib_a" 0 "${args[@]}")")
    b+=("$(run_once "$lib_b" 0 "${args[@]}")")
    cc+=("$(run_once "$lib_b" 1 "${args[@]}")")
  done
  ma=$(printf "%s\n" "${a[@]}" | median)
  mb=$(printf "%s\n" "${b[@]}" | median)
  mc=$(printf "%s\n" "${cc[@]}" | median)
  awk -v w="${c// /-}" -v a="$ma" -v b="$mb" -v c="$mc" \
    'BEGIN {printf "%-10s %12.1f %12.1f %8.3f %12.1f %8.2f\n", w, a / 1e6, b / 1e6, b / a, c / 1e6, c / a}'
done
