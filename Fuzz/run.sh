#!/usr/bin/env bash
# Runs one fuzz target for FUZZ_SECONDS (default 60): Fuzz/run.sh TARGET [extra libFuzzer flags].
# New inputs go to Fuzz/.out/work/TARGET (not committed); the seeds in Fuzz/corpus/TARGET are read.
# A crash leaves its input in Fuzz/.out/artifacts/ and makes this exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1; shift
seconds=${FUZZ_SECONDS:-60}
bin=${FUZZ_BIN:-Fuzz/.out/zkctl-fuzz}
work=Fuzz/.out/work/$target
mkdir -p "$work" Fuzz/.out/artifacts
max_len=4096
case $target in backup|json) max_len=16384 ;; esac
ZKCTL_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" \
  -max_total_time="$seconds" -max_len=$max_len -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="Fuzz/.out/artifacts/$target-" "$@" "$work" "Fuzz/corpus/$target"
