#!/usr/bin/env bash
# Byte-identical output check for performance work: runs two smtpscope binaries over the bundled
# capture, every capture in ../shared/captures/public and the lab captures (when built), in every
# format, and diffs stdout and the JSON summary. Exit 1 on the first difference.
#   scripts/compare_outputs.sh OLD_BINARY NEW_BINARY [EXTRA.pcap ...]
# Env: SHARED (../shared), LAB_WORK (/tmp/smtpscope-lab), FORMATS ("json table csv").
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(readlink -f "${1:?old binary}"); new=$(readlink -f "${2:?new binary}"); shift 2
shared=${SHARED:-../shared}; lab=${LAB_WORK:-/tmp/smtpscope-lab}
formats=${FORMATS:-json table csv}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Every bundled capture; the shared corpus must be there (a worktree's ../shared is not: set SHARED).
[ -d "$shared/captures/public" ] || { echo "compare_outputs: no $shared/captures/public (set SHARED)" >&2; exit 2; }
files=()
for f in captures/*.pcap captures/*.pcapng; do [ -f "$f" ] && files+=("$f"); done
for f in "$shared"/captures/public/*.pcap "$shared"/captures/public/*.pcapng; do [ -f "$f" ] && files+=("$f"); done
for f in "$lab/base.pcap" "$lab/big.pcap"; do [ -f "$f" ] && files+=("$f"); done
files+=("$@")
n=0
for f in "${files[@]}"; do
  for fmt in $formats; do
    for b in old new; do
      bin=$old; [ $b = new ] && bin=$new
      "$bin" -F "$fmt" --color never --show-addresses --summary "$tmp/$b.summary" -r "$f" > "$tmp/$b.out" 2> "$tmp/$b.err" || echo "exit $?" >> "$tmp/$b.out"
    done
    if ! cmp -s "$tmp/old.out" "$tmp/new.out" || ! cmp -s "$tmp/old.summary" "$tmp/new.summary"; then
      echo "compare_outputs: DIFFERENT: $f ($fmt)" >&2
      diff <(head -c 200000 "$tmp/old.out") <(head -c 200000 "$tmp/new.out") | head -20 >&2 || true
      diff "$tmp/old.summary" "$tmp/new.summary" >&2 || true
      exit 1
    fi
    n=$((n + 1))
  done
done
echo "compare_outputs: identical on ${#files[@]} captures × {$formats} ($n runs)" >&2
