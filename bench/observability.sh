#!/usr/bin/env bash
# observability.sh — what strata's statistics and leak tracking cost (docs/stats.md,
# docs/debugging.md). Runs each workload under three configurations, interleaved
# (A B C A B C ...), and prints the median CPU time (user + sys: less disturbed than wall
# time by other load on a shared machine) of each and its ratio to A:
#   A  libstrata built without event counting (ST_EVENTS_ENABLED=0)
#   B  libstrata as shipped: statistics compiled in, not printed
#   C  libstrata as shipped with STRATA_LEAKS=1 (every block's call stack recorded)
# Then, with valgrind, the instructions A and B execute (deterministic, unlike time).
# usage: observability.sh LIB_NO_EVENTS LIB WORKLOAD_DIR [ROUNDS] [SCALE]
set -euo pipefail
lib_a=$1 lib_b=$2 dir=$3 rounds=${4:-3} scale=${5:-20}
# xthread and prodcons wait with sched_yield: their CPU time measures the scheduler.
cases=("fixed" "random" "realloc" "threads 4" "server")

run_once() { # lib leaks workload args... -> CPU time in ns
  local lib=$1 leaks=$2 times status=0
  shift 2
  times=$({ TIMEFORMAT='%3U %3S'; time env LD_PRELOAD="$lib" STRATA_LEAKS="$leaks" \
    "$dir/$1" "$scale" "${@:2}" >/dev/null 2>&1 || status=$?; } 2>&1)
  [ $status -eq 0 ] || { echo "observability: $* failed under $lib (STRATA_LEAKS=$leaks)" >&2; exit 1; }
  awk -v t="$times" 'BEGIN {split(t, f, " "); printf "%d\n", (f[1] + f[2]) * 1e9}'
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf "%-10s %12s %12s %8s %12s %8s\n" workload "A cpu ms" "B cpu ms" "B/A" "C cpu ms" "C/A"
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

# Time on a shared machine moves by several percent between identical runs; instructions do
# not. Callgrind counts every instruction the process executes, allocator included.
if command -v valgrind >/dev/null; then
  instructions() { # lib workload -> instructions executed
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
      env LD_PRELOAD="$1" \
      "$dir/$2" 2 2>&1 >/dev/null | awk '/Collected :/ {n = $4} END {print n}'
  }
  printf "\n%-10s %14s %14s %8s   (callgrind, scale 2)\n" workload "A instr" "B instr" "B/A"
  for w in fixed random realloc; do
    ia=$(instructions "$lib_a" $w)
    ib=$(instructions "$lib_b" $w)
    awk -v w=$w -v a="$ia" -v b="$ib" 'BEGIN {printf "%-10s %14d %14d %8.4f\n", w, a, b, b / a}'
  done
else
  echo "observability: instruction counts need valgrind (apt-get install -y valgrind)"
fi
