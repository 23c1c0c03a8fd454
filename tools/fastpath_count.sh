#!/usr/bin/env bash
# Instructions per malloc(size)+free pair, counted by callgrind (exact, not timed):
#   tools/fastpath_count.sh <libstrata.so> [sizes...]
# Prints one row per allocator: strata, glibc, and the peers installed from Debian.
# A row is (Ir(1,100,000 pairs) - Ir(100,000 pairs)) / 1,000,000: one loop iteration,
# i.e. the two calls, the allocator's work and about 10 instructions of loop.
set -euo pipefail
strata=${1:?usage: fastpath_count.sh <libstrata.so> [sizes...]}
shift
sizes=("${@:-16 32 64 256 1024}")
read -r -a sizes <<<"${sizes[*]}"
command -v valgrind >/dev/null || { echo "fastpath_count: valgrind is missing: sudo apt-get install valgrind"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/loop" "$here/fastpath_loop.c"

count() { # preload, pairs, size
  LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$work/loop" "$2" "$3" 2>&1 |
    awk '/Collected/ {print $4}'
}
per_pair() { # preload, size
  local a b
  a=$(count "$1" 100000 "$2")
  b=$(count "$1" 1100000 "$2")
  echo $(((b - a) / 1000000))
}

lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
declare -A peers=([strata]=$strata [glibc]="" [jemalloc]=$lib/libjemalloc.so.2
                  [tcmalloc]=$lib/libtcmalloc_minimal.so.4 [mimalloc]=$lib/libmimalloc.so.2)
printf '%-9s' allocator
for s in "${sizes[@]}"; do printf ' %6s' "$s"; done
printf '\n'
for name in strata glibc jemalloc tcmalloc mimalloc; do
  path=${peers[$name]}
  if [ -n "$path" ] && [ ! -e "$path" ]; then
    echo "$name: not installed (sudo apt-get install $(case $name in jemalloc) echo libjemalloc2;; tcmalloc) echo libtcmalloc-minimal4;; mimalloc) echo libmimalloc2.0;; esac))"
    continue
  fi
  printf '%-9s' "$name"
  for s in "${sizes[@]}"; do printf ' %6s' "$(per_pair "$path" "$s")"; done
  printf '\n'
done
