#!/bin/sh
# The soak tier (docs/testing.md): soak.c's multi-threaded workload under LD_PRELOAD for
# the whole time while real programs (python, perl, sort) run again and again under
# LD_PRELOAD beside it, each checked as in tests/programs.
#   soak.sh <default seconds> <soak binary> <libstrata.so> <tests dir> <work dir>
# STRATA_SOAK_SECONDS overrides the time. Exit status 0 when every run passed.
set -u
seconds=${STRATA_SOAK_SECONDS:-$1}
soak=$2 lib=$3 tests=$4 work=$5
mkdir -p "$work"
STRATA_SOAK_SECONDS=$seconds sh "$tests/expect_strata_served.sh" --preload "$lib" "$soak" \
  >"$work/soak.log" 2>&1 &
soak_pid=$!
end=$(($(date +%s) + seconds))
runs=0 failed=0
# Each program run takes tens of seconds (with glibc, then strata); a short soak (the CTest
# run) leaves them to the programs tier.
[ "$seconds" -ge 60 ] || end=0
while [ "$(date +%s)" -lt "$end" ]; do
  for program in python perl sort; do
    [ "$(date +%s)" -lt "$end" ] || break
    sh "$tests/programs/run_programs.sh" "$program" "$lib" "$work/$program" >"$work/$program.log" 2>&1
    status=$?
    runs=$((runs + 1))
    if [ $status -ne 0 ] && [ $status -ne 77 ]; then
      failed=$((failed + 1))
      echo "soak: $program failed (status $status):"
      tail -20 "$work/$program.log"
    fi
  done
done
wait $soak_pid
soak_status=$?
grep -v '^strata: exit' "$work/soak.log" | tail -20
echo "soak: $seconds s; $runs program runs under LD_PRELOAD, $failed failed; workload status $soak_status"
[ $soak_status -eq 0 ] && [ $failed -eq 0 ]
