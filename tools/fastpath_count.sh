#!/usr/bin/env bash
# Instructions per malloc + free pair, counted by callgrind (exact, not timed).
#   tools/fastpath_count.sh [--only-strata] <libstrata.so>
# Rows: local pairs of 16, 32, 64, 256, 1024 bytes on one thread, and remote (malloc on one
# thread, free on another) of 32 bytes. A figure is (Ir(1,100,000 pairs) - Ir(100,000 pairs))
# / 1,000,000: one loop iteration, including the calls and a few instructions of loop.
# Output: "<allocator> <mode> <size> <instructions>" lines, strata first, then glibc and the
# peers installed from Debian (or a line naming the package to install).
set -euo pipefail
only_strata=0
if [ "${1:-}" = --only-strata ]; then only_strata=1; shift; fi
strata=${1:?usage: fastpath_count.sh [--only-strata] <libstrata.so>}
command -v valgrind >/dev/null || { echo "fastpath_count: valgrind is missing: sudo apt-get install valgrind"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -pthread -o "$work/loop" "$here/fastpath_loop.c"

count() { # preload mode pairs size
  LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$work/loop" "$2" "$3" "$4" 2>&1 |
    awk '/Collected/ {print $4}'
}
per_pair() { # preload mode size
  local a b
  a=$(count "$1" "$2" 100000 "$3")
  b=$(count "$1" "$2" 1100000 "$3")
  echo $(((b - a) / 1000000))
}

lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
names=(strata glibc jemalloc tcmalloc mimalloc)
paths=("$strata" "" "$lib/libjemalloc.so.2" "$lib/libtcmalloc_minimal.so.4" "$lib/libmimalloc.so.2")
packages=("" "" libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0)
for i in "${!names[@]}"; do
  [ $only_strata -eq 1 ] && [ "$i" -gt 0 ] && break
  if [ -n "${paths[$i]}" ] && [ ! -e "${paths[$i]}" ]; then
    echo "${names[$i]}: not installed (sudo apt-get install ${packages[$i]})"
    continue
  fi
  for size in 16 32 64 256 1024; do
    echo "${names[$i]} local $size $(per_pair "${paths[$i]}" local "$size")"
  done
  echo "${names[$i]} remote 32 $(per_pair "${paths[$i]}" remote 32)"
done
