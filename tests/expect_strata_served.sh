#!/bin/sh
# expect_strata_served.sh [--preload LIB] CMD [ARGS...]
#
# Runs CMD with STRATA_VERBOSE=1 (and LD_PRELOAD=LIB when given) and passes when CMD exits 0
# and its stderr holds strata's exit line for CMD's own pid with spans > 0:
#   strata: exit pid=<pid> spans=<n> huge=<n> mapped=<bytes> threads=<n>
#   strata: exit pid=<pid> strategy=<name> allocations=<n> ...   (a classic strategy)
# which proves strata, not glibc, served the program. CMD's stdout and stderr are passed on.
set -u
preload=
while [ $# -gt 0 ]; do
  case $1 in
    --preload) preload=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--preload LIB] CMD [ARGS...]" >&2; exit 64; }

err=$(mktemp "${TMPDIR:-/tmp}/strata-served.XXXXXX") || exit 1
trap 'rm -f "$err"' EXIT
if [ -n "$preload" ]; then
  LD_PRELOAD=$preload STRATA_VERBOSE=1 "$@" 2>"$err" &
else
  STRATA_VERBOSE=1 "$@" 2>"$err" &
fi
pid=$!
wait "$pid"
rc=$?
cat "$err" >&2
if [ "$rc" -ne 0 ]; then
  echo "expect_strata_served: $1 exited with status $rc" >&2
  exit 1
fi
spans=$(sed -n "s/^strata: exit pid=$pid spans=\([0-9][0-9]*\) .*/\1/p" "$err" | head -n 1)
# Under a classic strategy (STRATA_STRATEGY) the line counts allocations instead of spans.
[ -n "$spans" ] || spans=$(sed -n "s/^strata: exit pid=$pid strategy=[a-z-]* allocations=\([0-9][0-9]*\) .*/\1/p" "$err" | head -n 1)
if [ -z "$spans" ]; then
  echo "expect_strata_served: no 'strata: exit pid=$pid' line: strata did not serve $1" >&2
  exit 1
fi
if [ "$spans" -eq 0 ]; then
  echo "expect_strata_served: strata served no spans to $1 (spans=0)" >&2
  exit 1
fi
echo "expect_strata_served: strata served $1 (pid $pid, spans=$spans)"
