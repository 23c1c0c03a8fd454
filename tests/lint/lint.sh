#!/bin/sh
# Static checkers on src/ (docs/testing.md, "Checkers"), one per call:
#   lint.sh cppcheck <source dir>
#   lint.sh clang-tidy <source dir> <build dir with compile_commands.json>
# Exit 0 when clean, 1 with the findings, 77 (CTest: skipped) when the tool is missing.
# Configuration: tests/lint/cppcheck.suppress and .clang-tidy, each exception with its reason.
set -eu
tool=$1 src=$2
cd "$src"
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "lint: $tool not found, skipped (apt-get install -y $tool)"
  exit 77
fi
case $tool in
cppcheck)
  exec cppcheck --enable=warning,portability,performance --std=c11 -D_GNU_SOURCE -DST_DEBUG=0 \
    -DSTRATA_HAVE_VALGRIND=1 -Iinclude -Isrc --inline-suppr \
    --suppressions-list=tests/lint/cppcheck.suppress --quiet --error-exitcode=1 -j2 src/
  ;;
clang-tidy)
  build=$3
  # Findings are errors (WarningsAsErrors in .clang-tidy): xargs then exits non-zero.
  out=$(mktemp)
  status=0
  ls src/*/*.c | xargs -P2 -n4 clang-tidy -p "$build" --quiet >"$out" 2>&1 || status=1
  grep -v 'warnings\? generated\.$' "$out" || true
  rm -f "$out"
  exit $status
  ;;
*)
  echo "lint: unknown tool $tool"
  exit 2
  ;;
esac
