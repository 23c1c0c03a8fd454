#!/usr/bin/env bash
# Compares the fast path's instruction counts with fastpath.golden (see that file).
#   check_golden.sh <libstrata.so> <golden> <fastpath_count.sh> [compiler id]
set -euo pipefail
lib=$1
golden=$2
counter=$3
compiler=${4:-GNU}
if [ "$compiler" != GNU ]; then
  echo "fastpath: the golden counts are gcc's code; this build's compiler is $compiler: skipped"
  exit 77
fi
measured=$("$counter" --only-strata "$lib") || exit $?
status=0
while read -r mode size want; do
  case $mode in '#'* | '') continue ;; esac
  got=$(awk -v m="$mode" -v s="$size" '$2 == m && $3 == s {print $4}' <<<"$measured")
  if [ -z "$got" ]; then
    echo "fastpath: no measurement for $mode $size"
    status=1
  elif [ "$got" -gt $((want * 105 / 100)) ]; then
    echo "fastpath: $mode $size bytes takes $got instructions, golden $want (+5% allowed): update $golden with the change that explains it"
    status=1
  else
    note=""
    [ "$got" -lt $((want * 95 / 100)) ] && note=" (faster than golden: lower it in $golden)"
    echo "fastpath: $mode $size bytes: $got instructions, golden $want$note"
  fi
done <"$golden"
exit $status
