#!/usr/bin/env bash
# Enlarges the lab's base capture the way ../shared/lab/make_big.sh does (tcprewrite --pnat to
# new addresses per copy, editcap -t time shift, mergecap), to any number of copies, without
# running the lab again: the ground truth (base-manifest.jsonl) stays valid for every copy.
#   scripts/enlarge.sh BASE.pcap COPIES OUT.pcap        (COPIES ≤ 40; 20 copies of the 99 MB base ≈ 2 GB)
set -euo pipefail
base=${1:?base pcap}; copies=${2:?copies}; out=${3:?output}
((copies >= 1 && copies <= 40)) || { echo "enlarge: COPIES must be 1..40" >&2; exit 2; }
tmp=$(mktemp -d "$(dirname "$out")/enlarge.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
parts=("$base")
for ((k = 1; k < copies; k++)); do
  # Same address plan as make_big.sh: copy k lives in 10.(213+k).0.0/24 and fd00:(213+k)::/64.
  tcprewrite --pnat="10.213.0.0/24:10.$((213 + k)).0.0/24,[fd00:213::/64]:[fd00:$((213 + k))::/64]" \
    --fixcsum -i "$base" -o "$tmp/copy$k.tmp.pcap" 2>/dev/null
  editcap -t "0.$((k * 37))" "$tmp/copy$k.tmp.pcap" "$tmp/copy$k.pcap" && rm "$tmp/copy$k.tmp.pcap"
  parts+=("$tmp/copy$k.pcap")
done
mergecap -F pcap -w "$out.part" "${parts[@]}"
mv "$out.part" "$out"
