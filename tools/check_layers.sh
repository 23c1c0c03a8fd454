#!/usr/bin/env bash
# Fails when a source file includes a header of a layer above its own (STYLE.md §2), or
# when a file outside src/os/ includes <sys/mman.h> (the kernel stays behind os.h).
#   tools/check_layers.sh [source-dir]
# Ranks, lowest first; a file may include headers of its own rank or lower.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root/src"

rank() {
  case $1 in
    base/*) echo 0 ;;
    os/*) echo 1 ;;
    core/sizeclass.*) echo 2 ;;
    core/span.* | core/pagemap.* | core/events.* | core/hugecache.*) echo 3 ;;
    core/pageheap.*) echo 4 ;;
    core/page.* | core/huge.* | core/spancache.*) echo 5 ;;
    core/tcache.*) echo 6 ;;
    core/thread.*) echo 7 ;;
    core/heap.* | core/stats.*) echo 8 ;;
    classic/region.*) echo 2 ;;       # classic/ sits beside core/: it calls os/ and base/ only
    classic/backend.h | classic/fit.* | classic/buddy.* | classic/bitmap.*) echo 3 ;;
    classic/heap.*) echo 4 ;;
    classic/picture.*) echo 5 ;;
    debug/*) echo 9 ;;
    api/*) echo 10 ;;
    special/*) echo 2 ;; # beside core: may use base/ and os/ only (see the check below)
    gc/gc_heap.*) echo 11 ;; # gc/ stands beside core/ and api/: it uses base/ and os/ only
    gc/gc_mark.*) echo 12 ;;
    gc/gc_roots.* | gc/gc_final.* | gc/gc_sweep.*) echo 13 ;;
    gc/gc.c) echo 14 ;;
    trace/trace_format.h) echo 0 ;; # the trace file layout: a leaf on libc only
    trace/*) echo 15 ;;  # the tracer variant of the library: over api/, beside override.c
    # Programs, never linked into libstrata: they run other programs under an allocator.
    harness/*) echo 16 ;;
    cli/*) echo 17 ;;
    strata.h) echo 0 ;; # the public header is a leaf every layer may use
    *) echo "unknown" ;;
  esac
}

status=0
while IFS= read -r file; do
  own=$(rank "$file")
  if [ "$own" = unknown ]; then
    echo "check_layers: $file has no layer rank; add it to tools/check_layers.sh"
    status=1
    continue
  fi
  while IFS= read -r inc; do
    dep=$(rank "$inc")
    if [ "$dep" = unknown ]; then
      echo "check_layers: $file includes \"$inc\", which has no layer rank"
      status=1
    elif [[ $file == gc/* && $inc == @(core|api)/* ]]; then
      echo "check_layers: $file includes \"$inc\"; the collector depends on base/ and os/ only"
      status=1
    elif [ "$dep" -gt "$own" ]; then
      echo "check_layers: $file (rank $own) includes \"$inc\" (rank $dep), a layer above it"
      status=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
  if [[ $file == special/* ]] && grep -Eq '^#include "(core|api)/' "$file"; then
    echo "check_layers: $file includes core/ or api/; special allocators stand on os/ alone"
    status=1
  fi
  if [[ $file == @(cli|harness)/* ]] &&
    grep -Eq '^#include "(os|core|api|debug|classic|special|gc|trace/tracer)' "$file"; then
    echo "check_layers: $file includes the allocator's internals; the command only runs programs"
    status=1
  fi
  # The command is a program: its own big arrays may be mapped directly (cli/bigmem.c).
  if [[ $file != os/* && $file != cli/bigmem.c ]] && grep -q '#include <sys/mman.h>' "$file"; then
    echo "check_layers: $file includes <sys/mman.h>; memory syscalls belong in src/os/"
    status=1
  fi
done < <(find . -name '*.[ch]' | sed 's|^\./||' | sort)
[ $status -eq 0 ] && echo "check_layers: every include points down"
exit $status
