#!/bin/sh
# Runs the libFuzzer target for a bounded time from the checked-in corpus.
#   run_fuzz.sh <fuzzer> <tests/fuzz dir> <work dir>
# STRATA_FUZZ_SECONDS sets the time (default 40); new inputs stay in <work dir>/corpus, a
# crash in <work dir>/crash-*, which is the input to keep in tests/fuzz/regressions/ under a
# name that says what broke.
set -eu
fuzzer=$1 src=$2 work=$3
seconds=${STRATA_FUZZ_SECONDS:-40}
mkdir -p "$work/corpus"
# -rss_limit_mb: ASan's shadow plus the largest blocks the decoder asks for.
# -len_control=0: inputs up to 128 operations from the start (libFuzzer would otherwise
# spend a short run on inputs of three or four operations).
exec "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=512 -len_control=0 -timeout=60 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$src/corpus" "$src/regressions"
