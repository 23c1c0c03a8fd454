#!/usr/bin/env bash
# End-to-end tests of the strata command (docs/cli.md), one CTest test per case:
#   cli_test.sh <strata> <alloc_pattern> <case> [workload program]
# Real programs (sort, sh, the alloc_pattern test program) under real allocators; peers that
# are not installed are left out by the command itself, and these tests ask for glibc and
# strata unless a case is about the peers.
set -euo pipefail
strata=$1
pattern=$2
case_name=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*"; exit 1; }
# expect_status N command...: runs it with stdout in $work/out and stderr in $work/err.
expect_status() {
  local want=$1 got=0
  shift
  "$@" >"$work/out" 2>"$work/err" || got=$?
  [ "$got" -eq "$want" ] || { cat "$work/out" "$work/err"; fail "$* exited $got, expected $want"; }
}
expect_in() { # file pattern
  grep -Eq -- "$2" "$1" || { cat "$1"; fail "$1 lacks /$2/"; }
}
field() { # summary-file label: the number after "label"
  sed -n "s/.*$2 \([0-9][0-9]*\).*/\1/p" "$1" | head -n 1
}

printf 'pear\napple\nfig\n%.0s' {1..2000} >"$work/words"

case $case_name in
usage)
  expect_status 2 "$strata"
  expect_in "$work/err" "usage: strata COMMAND"
  expect_status 2 "$strata" frobnicate
  expect_status 2 "$strata" run --no-such-option -- true
  expect_in "$work/err" "unknown option --no-such-option"
  expect_status 2 "$strata" run --strategy=nope -- true
  expect_status 2 "$strata" run --purge-delay-ms=soon -- true
  expect_status 2 "$strata" run --stats-file -- true
  expect_status 2 "$strata" run
  expect_status 2 "$strata" compare --runs 0 -- true
  expect_status 2 "$strata" compare --allocators glibc,nosuchalloc -- true
  expect_status 2 "$strata" trace ls
  expect_status 2 "$strata" replay
  expect_status 2 "$strata" replay --strategies nope x.trace
  expect_status 2 "$strata" summary
  expect_status 2 "$strata" stats
  expect_status 2 "$strata" heap
  expect_status 0 "$strata" --help
  expect_status 0 "$strata" run --help
  expect_in "$work/out" "STRATA_PURGE_DELAY_MS"
  ;;
run)
  expect_status 0 "$strata" run --stats=json --stats-file="$work/stats.json" -- "$pattern" 2
  expect_in "$work/out" "^pattern bytes=[0-9]+ peak=[0-9]+$"
  expect_in "$work/stats.json" '"live_bytes"'
  expect_status 0 "$strata" run --strategy=best-fit --verbose -- "$pattern" 1
  expect_in "$work/err" "strata: exit pid="
  expect_status 0 "$strata" run -- sh -c 'echo "$LD_PRELOAD $STRATA_STRATEGY"'
  expect_in "$work/out" "libstrata"
  expect_status 0 "$strata" run --purge-delay=0 -- sh -c 'echo "$STRATA_PURGE_DELAY_MS"'
  expect_in "$work/out" "^0$"
  expect_status 7 "$strata" run -- sh -c 'exit 7'
  expect_status 127 "$strata" run -- "$work/no-such-program"
  expect_in "$work/err" "no-such-program: program not found"
  expect_status 139 "$strata" run -- sh -c 'kill -SEGV $$'
  expect_in "$work/err" "killed by signal 11"
  ;;
compare)
  expect_status 0 "$strata" compare --runs 2 --allocators glibc,strata,strata:best-fit,jemalloc \
    --chart "$work/chart.png" -- sort "$work/words"
  for a in glibc strata strata:best-fit; do expect_in "$work/out" "^$a +[0-9.]+ +[0-9.]+"; done
  expect_in "$work/out" "medians of 2 runs each, interleaved; ratios are to glibc"
  if command -v gnuplot >/dev/null; then [ -s "$work/chart.png" ] || fail "no chart"; fi
  if grep -q $'\r' "$work/err"; then fail "progress lines on a stderr that is not a terminal"; fi
  # A peer that is not installed is named with its Debian package and left out.
  STRATA_PEER_LIBDIR=$work expect_status 0 "$strata" compare --runs 1 --no-chart \
    --allocators glibc,jemalloc,strata -- sort "$work/words"
  expect_in "$work/err" "jemalloc is not installed \(sudo apt-get install libjemalloc2\)"
  ;;
compare-mismatch)
  expect_status 1 "$strata" compare --runs 1 --no-chart --allocators glibc,strata \
    -- sh -c 'echo "$LD_PRELOAD"'
  expect_in "$work/err" "under strata \(run 1\) differs from glibc"
  ;;
compare-crash)
  expect_status 1 "$strata" compare --runs 1 --no-chart --allocators glibc,strata \
    -- sh -c 'kill -SEGV $$'
  expect_in "$work/err" "under strata \(run 1\) killed by signal 11"
  expect_status 127 "$strata" compare --runs 1 -- "$work/no-such-program"
  ;;
trace-replay)
  # One thread: the trace's peak live bytes are exactly the ones the program counts itself
  # (the C library's own few allocations are smaller than its peak's largest block).
  expect_status 0 "$strata" trace -o "$work/t.trace" -- "$pattern" 1
  peak=$(sed -n 's/^pattern bytes=[0-9]* peak=\([0-9]*\)$/\1/p' "$work/out")
  expect_status 0 "$strata" summary "$work/t.trace"
  cp "$work/out" "$work/summary"
  [ "$(field "$work/summary" "peak live:")" = "$peak" ] || fail "peak live is not $peak"
  [ "$(field "$work/summary" aligned)" -ge 1000 ] || fail "aligned count"
  [ "$(field "$work/summary" realloc)" -ge 667 ] || fail "realloc count"
  [ "$(field "$work/summary" calloc)" -ge 500 ] || fail "calloc count"
  expect_in "$work/summary" "request sizes"
  expect_in "$work/summary" "lifetimes of freed blocks"
  # The replay runs as many operations and, in the traced order, the same peak live bytes
  # (the command checks both and exits 1 otherwise).
  expect_status 0 "$strata" replay --exact --runs 1 --allocators glibc,strata "$work/t.trace"
  expect_in "$work/out" "^strata +[0-9.]+"
  expect_in "$work/out" "--exact: every event in the traced order; live bytes checked"
  expect_status 1 "$strata" summary /etc/passwd
  expect_in "$work/err" "not a strata trace"
  ;;
trace-threads)
  expect_status 0 "$strata" trace -o "$work/t.trace" -- "$pattern" 4 fork
  expect_status 0 "$strata" summary "$work/t.trace"
  expect_in "$work/out" ", 5 threads$"
  child=$(ls "$work"/t.trace.* | head -n 1)
  [ -n "$child" ] || fail "no trace of the fork child"
  expect_status 0 "$strata" summary "$child"
  [ "$(field "$work/out" malloc)" -ge 100 ] || fail "the child's mallocs are missing"
  expect_status 0 "$strata" replay --exact --runs 1 --allocators glibc,strata "$work/t.trace"
  expect_status 0 "$strata" replay --runs 1 --strategies all "$work/t.trace"
  for s in default first-fit next-fit best-fit worst-fit segregated buddy bitmap; do
    expect_in "$work/out" "^strata:$s +[0-9.]+"
  done
  ;;
trace-workload)
  # A benchmark workload whose threads free each other's blocks: many chunks per thread, and
  # the exact replay must meet every cross-thread dependency and the traced peak.
  [ -x "${4:-}" ] || fail "no workload program given"
  expect_status 0 "$strata" trace -o "$work/x.trace" -- "$4" 1
  expect_status 0 "$strata" summary "$work/x.trace"
  [ "$(field "$work/out" malloc)" -ge 80000 ] || fail "mallocs missing"
  [ "$(field "$work/out" free)" -ge 80000 ] || fail "frees missing"
  expect_status 0 "$strata" replay --exact --runs 1 --allocators glibc,strata "$work/x.trace"
  expect_status 0 "$strata" replay --runs 1 --allocators strata,strata:buddy "$work/x.trace"
  ;;
heap-stats)
  expect_status 0 "$strata" run --dump-at-exit="$work/heap.json" --stats=json \
    --stats-file="$work/stats.json" -- "$pattern" 1
  expect_status 0 "$strata" heap "$work/heap.json" -o "$work/heap.svg"
  expect_in "$work/heap.svg" "<svg"
  expect_status 0 "$strata" stats "$work/stats.json"
  expect_in "$work/out" "live_bytes +[0-9]+"
  expect_in "$work/out" "block_size"
  echo '{"live_bytes": ' >"$work/bad.json"
  expect_status 1 "$strata" stats "$work/bad.json"
  expect_in "$work/err" "not statistics JSON"
  ;;
*)
  fail "unknown case $case_name"
  ;;
esac
echo "cli $case_name: ok"
