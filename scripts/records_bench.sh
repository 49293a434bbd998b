#!/usr/bin/env bash
# Records in (-R) throughput: the NDJSON records of a capture, repeated with shifted client
# addresses to N lines, read back on one core. Reports CPU time (task-clock), instructions when
# perf can count them, and records/s of CPU time, for the plain read, check and pairs.
# Usage: scripts/records_bench.sh [CAPTURE] [LINES]   (default /tmp/smtpscope-lab/big.pcap, 200000)
# Needs a release build (target/release/smtpscope) and perf (linux-perf).
# CALLGRIND=N (needs valgrind): also counts the instructions of the read (-q -R -Y port:1) of the
# first N lines with callgrind, less those of a 100-line run (startup and one-off tables), per
# record: repeatable on a VM without hardware counters and with other work on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
capture=${1:-/tmp/smtpscope-lab/big.pcap}
lines=${2:-200000}
bin=${SMTPSCOPE:-target/release/smtpscope}
work=${WORK:-/tmp/smtpscope-records-bench}
mkdir -p "$work"
ndjson="$work/records-$lines.ndjson"
if [ ! -s "$ndjson" ]; then
  "$bin" -q -F json -r "$capture" > "$work/one.ndjson"
  # Copy k shifts every client address into 10.(k mod 256).(k / 256).x: same line lengths give
  # or take a digit, distinct sessions for pairs.
  python3 - "$work/one.ndjson" "$ndjson" "$lines" <<'EOF'
import re, sys
src, dst, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src, encoding="utf-8").read().splitlines()
client = re.compile(r'"client":"(\d+)\.(\d+)\.(\d+)\.(\d+):')
n = 0
with open(dst, "w", encoding="utf-8") as out:
    k = 0
    while n < want:
        for l in lines:
            if n >= want:
                break
            out.write(client.sub(lambda m: f'"client":"{m[1]}.{k % 256}.{k // 256}.{m[4]}:', l, count=1) + "\n")
            n += 1
        k += 1
EOF
fi
echo "workload: $ndjson, $(wc -l < "$ndjson") records, $(du -m "$ndjson" | cut -f1) MB"
cat "$ndjson" > /dev/null   # page cache warm
run() {
  local name=$1; shift
  local out
  # check exits 1 on violations: the status is not what is measured.
  out=$(taskset -c 0 perf stat -x, -e task-clock,instructions "$@" 2>&1 >/dev/null | grep -E 'task-clock|instructions' || true)
  local ms ins
  ms=$(echo "$out" | awk -F, '/task-clock/ {print $1}')
  ins=$(echo "$out" | awk -F, '/instructions/ {print $1}')
  python3 -c "import sys; ms=float('$ms'); n=$lines; ins='$ins'
print(f'{sys.argv[1]:<28} {ms:8.0f} ms CPU  {n/ms*1000:9.0f} records/s' + (f'  {int(ins)/n:8.0f} instructions/record' if ins.isdigit() else ''))" "$name"
}
for i in 1 2 3; do
  run "-R -Y port:1 (read only)" "$bin" -q -R "$ndjson" -Y port:1
done
run "check -R" "$bin" check -R "$ndjson" --expect tls --between '*' '*' --allow-no-traffic
run "pairs -R" "$bin" pairs -R "$ndjson"
run "-R -F json (read+write)" "$bin" -q -R "$ndjson" -F json
if [ -n "${CALLGRIND:-}" ]; then
  head -n "$CALLGRIND" "$ndjson" > "$work/cg-$CALLGRIND.ndjson"
  head -n 100 "$ndjson" > "$work/cg-100.ndjson"
  ins() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" -q -R "$1" -Y port:1 2>&1 >/dev/null |
      sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  }
  big=$(ins "$work/cg-$CALLGRIND.ndjson"); small=$(ins "$work/cg-100.ndjson")
  python3 -c "import sys; b,s,n=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]); print(f'callgrind -R -Y port:1       {(b-s)/(n-100):8.0f} instructions/record ({n} lines: {b:,}; 100 lines: {s:,})')" "$big" "$small" "$CALLGRIND"
fi
