#!/usr/bin/env bash
# Time and peak RSS of the memory-sensitive workloads under several STRATA_PURGE_DELAY_MS
# values, interleaved (round by round, every delay once per workload), for choosing the
# default delay. Prints one CSV line per run: round,delay_ms,workload,wall_s,maxrss_kib,measured
#   tools/purge_delay_sweep.sh [build-dir] [rounds] [delays...]
# e.g. tools/purge_delay_sweep.sh build 3 50 250 1000 5000
set -euo pipefail
build=${1:-build}
rounds=${2:-3}
shift $(($# > 2 ? 2 : $#))
delays=("$@")
[ ${#delays[@]} -gt 0 ] || delays=(50 250 1000 5000)
lib=$build/libstrata.so
workloads=$build/bench/workloads
[ -e "$lib" ] && [ -d "$workloads" ] || { echo "purge_delay_sweep: build strata first (make -C $build)" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "purge_delay_sweep: sudo apt-get install time" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out" "$out.time"' EXIT
echo "round,delay_ms,workload,wall_s,maxrss_kib,measured"
for round in $(seq "$rounds"); do
  for w in "footprint 100 mixed" "random 100" "pool 100 random" "server 100" "threads 100 4" "frag 100" "large 100"; do
    for d in "${delays[@]}"; do
      read -r -a argv <<<"$w"
      STRATA_PURGE_DELAY_MS=$d LD_PRELOAD=$lib /usr/bin/time -f "%e,%M" -o "$out.time" \
        "$workloads/${argv[0]}" "${argv[@]:1}" >"$out"
      measured=$(sed 's/.*checksum=[0-9a-f]* *//' "$out")
      echo "$round,$d,${w// /-},$(cat "$out.time"),$measured"
    done
  done
done
