#!/usr/bin/env bash
# Live capture under load: the shared lab (namespaces ec-cli/ec-srv joined by a veth, real
# aiosmtpd/Postfix servers, Python smtplib/swaks clients) driven as fast as it goes, captured on
# the veth by `smtpscope -i`, which must keep up: kernel drops are read from its summary, and
# every session it reports is checked against the generator's ground truth.
#   scripts/live_bench.sh            # root; SESSIONS=3400 WORKERS=8 SEED=2
#   REPLAY=/tmp/smtpscope-lab/big.pcap COPIES=2 scripts/live_bench.sh
#                                    # the lab capture replayed onto the veth with tcpreplay
#                                    # --topspeed (far faster than the Python clients), checked
#                                    # against the same ground truth (COPIES copies of the base)
# Prints a Markdown table. Env: LAB_WORK (/tmp/smtpscope-lab), SHARED (../shared), BUFFER_KIB
# (smtpscope -B), CAPTURE_OPTS (more smtpscope options).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(readlink -f "${SHARED:-../shared}")
lab=${LAB_WORK:-/tmp/smtpscope-lab}
sessions=${SESSIONS:-3400}
workers=${WORKERS:-8}
seed=${SEED:-2}
py=${PY:-$lab/.venv/bin/python}
out=$lab/live
mkdir -p "$out"
log() { echo "live_bench: $*" >&2; }

[ -x "$py" ] || { log "setting up the lab"; bash "$shared/lab/setup.sh" >&2; }
cargo build -q --release
bin=$PWD/target/release/smtpscope

cleanup() {
  [ -n "${cap:-}" ] && kill -INT "$cap" 2>/dev/null || true
  LAB_WORK=$lab "$shared/lab/servers-down.sh" >/dev/null 2>&1 || true
  "$shared/lab/netns-down.sh"
}
trap cleanup EXIT
LAB_WORK=$lab "$shared/lab/servers-down.sh" >/dev/null 2>&1 || true
"$shared/lab/netns-down.sh"
"$shared/lab/netns-up.sh"
LAB_WORK=$lab PY=$py "$shared/lab/servers-up.sh" >/dev/null

rm -f "$out/summary.json" "$out/records.ndjson"
buffer=()
[ -n "${BUFFER_KIB:-}" ] && buffer=(-B "$BUFFER_KIB")
# Extra capture options, e.g. CAPTURE_OPTS="--no-immediate -s 65535".
read -r -a extra <<< "${CAPTURE_OPTS:-}"
buffer+=("${extra[@]}")
# -Z root: the records and summary stay writable. Clients run in ec-cli; the capture listens on
# the server's end of the veth (ec-s in ec-srv), which sees the same packets.
ip netns exec ec-srv "$bin" -i ec-s -Z root -F json "${buffer[@]}" \
  --summary "$out/summary.json" > "$out/records.ndjson" 2> "$out/smtpscope.err" &
cap=$!
sleep 2
start=$(date +%s.%N)
if [ -n "${REPLAY:-}" ]; then
  log "replaying $REPLAY at top speed"
  cp "$lab/base-manifest.jsonl" "$out/manifest.jsonl"
  ip netns exec ec-cli tcpreplay --topspeed -q -i ec-c "$REPLAY" > "$out/tcpreplay.txt" 2>&1
  cat "$out/tcpreplay.txt" >&2
  sessions=replay; workers=tcpreplay
else
  log "driving $sessions sessions with $workers workers"
  ip netns exec ec-cli "$py" "$shared/lab/gen_smtp.py" --sessions "$sessions" --workers "$workers" --seed "$seed" \
    --manifest "$out/manifest.jsonl" > "$out/gen.json"
fi
end=$(date +%s.%N)
sleep 2
kill -INT "$cap"
wait "$cap" || true
cap=
cat "$out/smtpscope.err" >&2

python3 - "$out" "$start" "$end" "$sessions" "$workers" "${COPIES:-1}" <<'PY'
import json, subprocess, sys
out, start, end, sessions, workers, copies = sys.argv[1:]
s = json.load(open(f"{out}/summary.json"))
secs = float(end) - float(start)
check = subprocess.run([sys.executable, "scripts/check_lab_verdicts.py", f"{out}/manifest.jsonl", f"{out}/records.ndjson", copies],
                       capture_output=True, text=True)
agree = check.stderr.strip().splitlines()[0] if check.stderr.strip() else "?"
print("| sessions driven | by | seconds | packets | packets/s | Mbit/s | kernel drops | ground truth |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {sessions} | {workers} | {secs:.1f} | {s['packets']:,} | {s['packets'] / secs:,.0f} | "
      f"{s['bytes'] * 8 / secs / 1e6:,.0f} | {s['kernel_drops']} | {agree} |")
sys.exit(0 if check.returncode == 0 and s["kernel_drops"] == 0 else 1)
PY
