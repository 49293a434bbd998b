#!/usr/bin/env bash
# One fuzzing campaign: each target in turn (one at a time, one libFuzzer process: no -jobs or -fork, so
# a small machine stays usable), for
# SECONDS seconds each under libFuzzer with AddressSanitizer, on the corpus fuzz/seed.sh made.
# Prints per target: runs, seconds, cov/ft and what was found (crash-*, timeout-*, oom-* under
# fuzz/artifacts/<target>/). Crash inputs go to fuzz/regressions/<target>/ by hand, once fixed.
# Usage: fuzz/campaign.sh SECONDS [TARGET...]
#   (default targets: exchange_log postfix_log records netmon capture_file decode reassembly smtp tls engine)
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain, or RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: fuzz/campaign.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(exchange_log postfix_log records netmon capture_file decode reassembly smtp tls engine)
toolchain=${FUZZ_TOOLCHAIN:-+nightly}
log=${FUZZ_LOG:-fuzz/campaign-logs}
mkdir -p "$log"
cargo $toolchain fuzz build -O >/dev/null
for t in "${targets[@]}"; do
  case $t in
    decode) len=4096 ;; reassembly) len=8192 ;; tls) len=16384 ;; smtp | exchange_log | postfix_log) len=32768 ;;
    *) len=65536 ;;
  esac
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  nice -n 10 cargo $toolchain fuzz run -O "$t" -- -max_total_time="$secs" -max_len=$len \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > "$log/$t.log" 2>&1 || true
  runs=$(grep -E '^stat::number_of_executed_units' "$log/$t.log" | awk '{print $2}' | tail -n 1)
  last=$(grep -E '#[0-9]+.*(cov|ft):' "$log/$t.log" | tail -n 1)
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' || true)
  ft=$(echo "$last" | grep -oE 'ft: [0-9]+' || true)
  found=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  echo "$t: ${runs:-?} runs in ${secs} s, ${cov:-cov: ?} ${ft:-ft: ?}, artifacts: $found"
done
