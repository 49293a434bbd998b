#!/usr/bin/env bash
# Benchmark on a large capture of real lab sessions (../shared/lab/make_big.sh, cached in
# $LAB_WORK): first every verdict is checked against the lab's ground truth (speed is never
# bought with wrong answers), then wall time, MB/s, packets/s, sessions/s and peak RSS are
# measured beside libpcap's own read loop (tcpdump -r … -w /dev/null), page cache warm.
#   scripts/bench.sh              # RUNS=5 alternating floor/json runs, median
# Env: LAB_WORK (/tmp/smtpscope-lab), REBUILD=1 (new capture), RUNS, PEERS=1 (also tshark),
#      ALLOW_MISMATCH=1 (time even if verdicts disagree), SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${LAB_WORK:-/tmp/smtpscope-lab}
shared=${SHARED:-../shared}
runs=${RUNS:-5}
big=$lab/big.pcap
log() { echo "bench: $*" >&2; }

command -v /usr/bin/time >/dev/null || { log "installing GNU time"; apt-get install -y -q time >/dev/null; }
if [ "${REBUILD:-0}" = 1 ] || [ ! -f "$big" ] || [ ! -f "$lab/base-manifest.jsonl" ]; then
  [ -x "$lab/.venv/bin/python" ] || { log "setting up the lab"; bash "$shared/lab/setup.sh" >&2; }
  log "building the workload (make_big.sh)"
  LAB_WORK=$lab bash "$shared/lab/make_big.sh" >&2
fi
cargo build -q --release
bin=target/release/smtpscope

log "checking verdicts against the lab's ground truth"
"$bin" -q -F json -r "$lab/base.pcap" > "$lab/base.ndjson"
if ! python3 scripts/check_lab_verdicts.py "$lab/base-manifest.jsonl" "$lab/base.ndjson"; then
  [ "${ALLOW_MISMATCH:-0}" = 1 ] || { log "verdicts disagree with ground truth: no timing"; exit 1; }
fi

size=$(stat -c %s "$big")
"$bin" -q -F json --summary "$lab/summary.json" -r "$big" > /dev/null
read -r packets sessions < <(python3 -c "import json; s=json.load(open('$lab/summary.json')); print(s['packets'], s['sessions'])")
tcpdump -r "$big" -w /dev/null 2>/dev/null   # warm the page cache

t() { /usr/bin/time -f '%e %M' -o "$lab/t.txt" "$@" > /dev/null 2>&1; cat "$lab/t.txt"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
floor_t=(); json_t=(); json_kb=0; floor_kb=0
for ((i = 0; i < runs; i++)); do
  read -r s kb < <(t tcpdump -r "$big" -w /dev/null); floor_t+=("$s"); floor_kb=$kb
  read -r s kb < <(t "$bin" -q -F json -r "$big"); json_t+=("$s"); ((kb > json_kb)) && json_kb=$kb
done
floor_s=$(printf '%s\n' "${floor_t[@]}" | median)
json_s=$(printf '%s\n' "${json_t[@]}" | median)
read -r table_s table_kb < <(t "$bin" -q -F table -r "$big")
read -r csv_s csv_kb < <(t "$bin" -q -F csv -r "$big")

row() {  # name seconds kb
  python3 - "$1" "$2" "$3" "$floor_s" "$size" "$packets" "$sessions" <<'PY'
import sys
name, s, kb, floor, size, packets, sessions = sys.argv[1:]
s, floor = max(float(s), 1e-3), max(float(floor), 1e-3)
print(f"| {name} | {s:.3f} | {int(size) / 1e6 / s:.0f} | {int(packets) / s / 1e3:.0f} k | {int(sessions) / s:.0f} | {int(kb) / 1024:.1f} | {s / floor:.2f} |")
PY
}
echo
echo "Workload: $(basename "$big"), $((size / 1000000)) MB, $packets packets, $sessions SMTP sessions; median of $runs alternating runs for floor and json."
echo
echo "| tool | wall s | MB/s | packets/s | sessions/s | peak RSS MB | × floor time |"
echo "|---|---|---|---|---|---|---|"
row "floor: tcpdump -r … -w /dev/null" "$floor_s" "$floor_kb"
row "smtpscope --format json" "$json_s" "$json_kb"
row "smtpscope --format table" "$table_s" "$table_kb"
row "smtpscope --format csv" "$csv_s" "$csv_kb"
if [ "${PEERS:-0}" = 1 ] && command -v tshark >/dev/null; then
  read -r ts_s ts_kb < <(t tshark -r "$big" -Y smtp -T fields -e tcp.stream -e smtp.req.command)
  row "tshark -Y smtp -T fields" "$ts_s" "$ts_kb"
fi
