#!/usr/bin/env bash
# Floods and limits: builds the flood captures (examples/make_floods.rs) and measures smtpscope on
# each — wall time, MB/s, peak RSS, what the summary counted — and checks that the real session
# interleaved with every flood is still classified (starttls-offered-unused), that throughput stays within 3x of
# a normal capture (by bytes or by packets) and that peak RSS stays under RSS_BUDGET_MB (default 128).
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
normal_pps=""
if [ -f "$normal" ]; then
  read -r s kb < <(measure "$normal")
  read -r normal_mbs normal_pps < <(python3 -c "import json, os; s = max($s, 0.001); print(round(os.path.getsize('$normal')/1e6/s, 1), round(json.load(open('$dir/summary.json'))['packets']/s))")
  echo "normal capture $(basename "$normal"): ${s}s, $normal_mbs MB/s, $normal_pps packets/s, peak RSS $((kb/1024)) MB" >&2
fi

# Memory budget with the default caps (--max-flows 100000, --max-buffer 256 KiB): peak RSS must stay under it.
budget=${RSS_BUDGET_MB:-128}
printf '| flood | size MB | packets | wall s | MB/s | packets/s | vs normal (MB/s, packets/s) | peak RSS MB | real session | counted |\n|---|---|---|---|---|---|---|---|---|---|\n'
fail=0
for f in syn-flood long-line pipelined out-of-order; do
  p="$dir/$f.pcap"
  read -r s kb < <(measure "$p")
  python3 - "$p" "$s" "$kb" "$dir/out.json" "$dir/summary.json" "$normal_mbs" "$normal_pps" "$f" "$budget" <<'PY' || fail=1
import json, os, sys
p, s, kb, out, summ, normal, normal_pps, name, budget = sys.argv[1:]
size = os.path.getsize(p) / 1e6
s = max(float(s), 0.001)
mbs = size / s
recs = [json.loads(l) for l in open(out)]
real = [r for r in recs if r["client"].startswith("10.200.0.1:")]
ok = len(real) == 1 and real[0]["verdict"] == "starttls-offered-unused"
sm = json.load(open(summ))
pps = sm["packets"] / s
counted = {"syn-flood": f"payload-less flows {sm['payloadless_mail_flows']}, evicted {sm['evicted_flows']}, peak flows {sm['peak_flows']}",
           "long-line": f"long lines {sm['long_lines']}",
           "pipelined": f"records {len(recs)}",
           "out-of-order": f"gaps {sm['gaps']}, overflows {sm['reassembly_overflows']}"}[name]
notes = []
if not ok:
    notes.append("WRONG: " + str([r["verdict"] for r in real]))
# Throughput: within 3x of the normal capture by bytes or by packets (a SYN flood is all headers);
# runs under 0.1 s are too short to judge.
ratio = "-"
if normal:
    r_mb, r_pk = float(normal) / mbs, float(normal_pps) / pps
    ratio = f"{r_mb:.1f}x, {r_pk:.1f}x"
    if s >= 0.1 and min(r_mb, r_pk) > 3:
        notes.append("SLOW")
if int(kb) // 1024 > int(budget):
    notes.append(f"OVER {budget} MB")
verdict = "ok" if not notes else " ".join(notes)
print(f"| {name} | {size:.0f} | {sm['packets']} | {s:.2f} | {mbs:.0f} | {pps:.0f} | {ratio} | {int(kb)//1024} | {verdict} | {counted} |")
sys.exit(0 if not notes else 1)
PY
done
exit $fail
