#!/usr/bin/env bash
# Floods and limits: builds the flood captures (examples/make_floods.rs) and measures smtpscope on
# each — wall time, MB/s, peak RSS, what the summary counted — and checks that the real session
# interleaved with every flood is still classified (starttls-offered-unused).
#   scripts/floods.sh [SCALE]     SCALE 1 (default): 1 M SYN flows, a 1 GB line, 100 k pipelined
#                                 commands, 100 k out-of-order segments; 0.01: the sizes cargo test uses.
# Env: FLOODS_DIR (default /tmp/smtpscope-floods), NORMAL (a normal capture for the throughput
# ratio; default the lab's base.pcap when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
dir=${FLOODS_DIR:-/tmp/smtpscope-floods}/$scale
normal=${NORMAL:-/tmp/smtpscope-lab/base.pcap}
command -v /usr/bin/time >/dev/null || { echo "floods: installing GNU time" >&2; apt-get install -y -q time >/dev/null; }

cargo build -q --release --example make_floods
cargo build -q --release
bin=target/release/smtpscope
if [ ! -f "$dir/pipelined.pcap" ]; then
  echo "floods: writing captures to $dir (scale $scale)" >&2
  target/release/examples/make_floods "$dir" "$scale"
fi

measure() {  # file -> "seconds peak_kb"
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$bin" -q -F json --summary "$dir/summary.json" -r "$1" > "$dir/out.json"
  cat "$dir/time.txt"
}

normal_mbs=""
if [ -f "$normal" ]; then
  read -r s kb < <(measure "$normal")
  normal_mbs=$(python3 -c "import os; print(round(os.path.getsize('$normal')/1e6/max($s,0.001),1))")
  echo "normal capture $(basename "$normal"): ${s}s, $normal_mbs MB/s, peak RSS $((kb/1024)) MB" >&2
fi

printf '| flood | size MB | wall s | MB/s | vs normal | peak RSS MB | real session | counted |\n|---|---|---|---|---|---|---|---|\n'
fail=0
for f in syn-flood long-line pipelined out-of-order; do
  p="$dir/$f.pcap"
  read -r s kb < <(measure "$p")
  python3 - "$p" "$s" "$kb" "$dir/out.json" "$dir/summary.json" "$normal_mbs" "$f" <<'PY' || fail=1
import json, os, sys
p, s, kb, out, summ, normal, name = sys.argv[1:]
size = os.path.getsize(p) / 1e6
s = max(float(s), 0.001)
mbs = size / s
recs = [json.loads(l) for l in open(out)]
real = [r for r in recs if r["client"].startswith("10.200.0.1:")]
ok = len(real) == 1 and real[0]["verdict"] == "starttls-offered-unused"
sm = json.load(open(summ))
counted = {"syn-flood": f"payload-less flows {sm['payloadless_mail_flows']}, evicted {sm['evicted_flows']}, peak flows {sm['peak_flows']}",
           "long-line": f"long lines {sm['long_lines']}",
           "pipelined": f"records {len(recs)}",
           "out-of-order": f"gaps {sm['gaps']}, overflows {sm['reassembly_overflows']}"}[name]
ratio = f"{float(normal)/mbs:.1f}x slower" if normal else "-"
print(f"| {name} | {size:.0f} | {s:.2f} | {mbs:.0f} | {ratio} | {int(kb)//1024} | {'ok' if ok else 'WRONG: ' + str([r['verdict'] for r in real])} | {counted} |")
sys.exit(0 if ok else 1)
PY
done
exit $fail
