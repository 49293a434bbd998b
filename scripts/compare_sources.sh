#!/usr/bin/env bash
# The packet-source check: an OLD binary on every bundled and shared capture against a NEW binary
# on the same capture as it is and as gzip, zstd and (where editcap writes it) Network Monitor 2.x,
# in every format. Plain must be byte-identical (records and the JSON summary); the converted
# files must give the same bytes once their name is put back for the original's.
#   scripts/compare_sources.sh OLD_BINARY NEW_BINARY
# Env: SHARED (../shared), FORMATS ("json table csv"). Needs gzip, zstd and editcap
# (apt install wireshark-common); a missing tool skips its form, said at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(readlink -f "${1:?old binary}"); new=$(readlink -f "${2:?new binary}")
shared=${SHARED:-../shared}
formats=${FORMATS:-json table csv}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
files=(captures/*.pcap)
for f in "$shared"/captures/public/*.pcap "$shared"/captures/public/*.pcapng \
         "$shared"/captures/foreign/*.pcap "$shared"/captures/foreign/*.pcapng; do
  [ -f "$f" ] && files+=("$f")
done
have() { command -v "$1" >/dev/null; }
skipped=()
for t in gzip zstd editcap; do have "$t" || skipped+=("$t"); done
runs=0; refused=(); rounded=()
run() { # BIN NAME OUT  (in $tmp/w, the file named NAME)
  (cd "$tmp/w" && "$1" -F "$fmt" --color never --show-addresses --summary ../"$3".summary -r "$2" \
     > ../"$3".out 2> ../"$3".err) || echo "exit $?" >> "$tmp/$3.out"
}
same() { # OUT NAME: the new run's output with NAME put back as the original's name
  python3 - "$tmp/$1.out" "$tmp/$1.summary" "$2" "$base" <<'EOF'
import sys
for p in sys.argv[1:3]:
    try:
        b = open(p, 'rb').read()
    except FileNotFoundError:
        continue
    open(p, 'wb').write(b.replace(sys.argv[3].encode(), sys.argv[4].encode()))
EOF
  if ! cmp -s "$tmp/old.out" "$tmp/$1.out" || ! cmp -s "$tmp/old.summary" "$tmp/$1.summary"; then
    echo "compare_sources: DIFFERENT: $f as $2 ($fmt)" >&2
    diff <(head -c 100000 "$tmp/old.out") <(head -c 100000 "$tmp/$1.out") | head -10 >&2 || true
    diff "$tmp/old.summary" "$tmp/$1.summary" >&2 || true
    exit 1
  fi
  runs=$((runs + 1))
}
for f in "${files[@]}"; do
  rm -rf "$tmp/w"; mkdir "$tmp/w"
  base=$(basename "$f")
  cp "$f" "$tmp/w/$base"
  forms=("$base")
  if have gzip; then gzip -1 -c "$f" > "$tmp/w/$base.gz"; forms+=("$base.gz"); fi
  if have zstd; then zstd -q -1 -c "$f" > "$tmp/w/$base.zst"; forms+=("$base.zst"); fi
  if have editcap; then
    if ! editcap -F netmon2 "$f" "$tmp/w/$base.cap" 2>/dev/null; then
      refused+=("$base")
    elif capinfos "$f" 2>/dev/null | grep -q 'precision:.*nanoseconds'; then
      # NetMon holds microseconds and editcap rounds where libpcap truncates: times may move by
      # 1 µs, so bytes may differ (tests/sources.rs compares these within 1 µs).
      rounded+=("$base")
    else
      forms+=("$base.cap")
    fi
  fi
  for fmt in $formats; do
    rm -f "$tmp"/*.summary
    run "$old" "$base" old
    for form in "${forms[@]}"; do
      run "$new" "$form" new
      same new "$form"
    done
  done
done
echo "compare_sources: identical on ${#files[@]} captures × {$formats}: $runs runs (plain, gzip, zstd, netmon2)" >&2
[ ${#refused[@]} -eq 0 ] || echo "compare_sources: editcap refused netmon2 for: ${refused[*]}" >&2
[ ${#rounded[@]} -eq 0 ] || echo "compare_sources: netmon2 not byte-compared (nanosecond times, rounded by editcap): ${rounded[*]}" >&2
[ ${#skipped[@]} -eq 0 ] || echo "compare_sources: SKIPPED forms (tool missing): ${skipped[*]}" >&2
