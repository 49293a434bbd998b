#!/usr/bin/env bash
# After a campaign: minimises each target's working corpus (cargo fuzz cmin) and rebuilds the committed
# fuzz/corpus-min/<target> from its small inputs only (a libFuzzer merge of the files up to CAP bytes), so the
# repository stays small; the large seeds come back from the captures through fuzz/seed.sh at run time.
# capture_file is never committed: its inputs are (near) copies of the shared capture files.
# Usage: fuzz/minimise.sh [TARGET...]
#   (default: decode reassembly smtp tls engine exchange_log postfix_log records netmon)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=fuzz/target/x86_64-unknown-linux-gnu/release
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode reassembly smtp tls engine exchange_log postfix_log records netmon)
for t in "${targets[@]}"; do
  # -max_len as in the campaign; CAP: the largest input committed.
  cap=4096
  case $t in
    decode) len=4096 ;; reassembly) len=8192 ;; smtp) len=32768 ;; tls) len=16384 ;; engine) len=65536; cap=8192 ;;
    exchange_log | postfix_log) len=16384 ;; records) len=65536; cap=8192 ;; netmon) len=65536; cap=16384 ;;
    capture_file) echo "capture_file: not committed" >&2; continue ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz cmin -O "$t" -- -max_len=$len -rss_limit_mb=2048 -timeout=10 >/dev/null 2>&1
  small=$(mktemp -d); find "fuzz/corpus/$t" -type f -size -$((cap + 1))c -exec cp {} "$small/" \;
  rm -rf "fuzz/corpus-min/$t"; mkdir -p "fuzz/corpus-min/$t"
  nice -n 19 "$bin/$t" -merge=1 -rss_limit_mb=2048 -timeout=10 "fuzz/corpus-min/$t" "$small" 2>&1 | tail -n 1 | sed "s/^/$t: /"
  rm -rf "$small"
done
du -s --apparent-size fuzz/corpus-min/* >&2
