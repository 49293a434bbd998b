#!/usr/bin/env bash
# Soak: smtpscope as a sensor for at least SOAK_SECONDS (default 600) under replayed lab traffic, as
# issue 15 asks: a capture looped by tcpreplay with --unique-ip (every loop new addresses, so new
# sessions) onto a veth pair in a network namespace of its own, through `check -i` with --output
# rotation, the -w ring (-C/-W) and --metrics scraped every second, with the options of
# docs/smtpscope.service (kernel batching: --no-immediate). Samples VmRSS every second and reports:
# records per verdict against the capture's own verdicts times the loops (exact: the replay ends
# at a loop boundary), kernel drops, whether every --output file is whole NDJSON and every ring
# file readable, and the RSS rule (max over the last minute <= 1.1 x max over minute two). Exits 1
# when a rule fails. Root only.
#   scripts/soak.sh [CAPTURE]    CAPTURE default: the lab's base.pcap when built, else captures/multi-site.pcap
# Only the capture's IPv4 packets are replayed: tcpreplay's --unique-ip rewrites IPv4 addresses
# only, so IPv6 sessions would come back every loop with the same 4-tuple and sequence numbers
# (to a sensor, a retransmitted session, which is what it reports).
# Env: SOAK_SECONDS (600), SOAK_PPS (packets per second, 100000; sent in bursts of SOAK_PPS_MULTI,
# default 100, so tcpreplay sleeps between bursts), SOAK_LOOPS (default: enough loops for
# SOAK_SECONDS at SOAK_PPS), SOAK_OPTS (more smtpscope options), SOAK_DIR (/tmp/smtpscope-soak),
# BIN (another build; default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "soak: needs root (network namespace, capture)" >&2; exit 2; }
capture=${1:-}
if [ -z "$capture" ]; then
  capture=/tmp/smtpscope-lab/base.pcap
  [ -f "$capture" ] || capture=captures/multi-site.pcap
fi
secs=${SOAK_SECONDS:-600}
dir=${SOAK_DIR:-/tmp/smtpscope-soak}
ns=smtpscope-soak-$$
port=$((30000 + $$ % 20000))
# BIN: another build (a check of this script with a debug build, say).
if [ -z "${BIN:-}" ]; then
  cargo build -q --release
  BIN=$PWD/target/release/smtpscope
fi
bin=$BIN
export BIN
rm -rf "$dir" && mkdir -p "$dir/out" "$dir/ring" && chmod 777 "$dir/out" "$dir/ring"
tcpdump -r "$capture" -w "$dir/replay.pcap" ip 2>/dev/null
capture=$dir/replay.pcap
pps=${SOAK_PPS:-100000}
per_loop_packets=$(tcpdump -r "$capture" -nn 2>/dev/null | wc -l)
loops=${SOAK_LOOPS:-$(( (secs * pps + per_loop_packets - 1) / per_loop_packets ))}
echo "soak: $loops loops of $per_loop_packets packets at $pps packets/s (>= $secs s)" >&2

# One loop's verdicts, read from the file: the ground truth per loop.
"$bin" -q -F json -r "$capture" | python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["verdict"] for l in sys.stdin)
json.dump(c, open(sys.argv[1], "w"))' "$dir/per_loop.json"

cleanup() {
  [ -n "${scraper:-}" ] && kill "$scraper" 2>/dev/null || true
  [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add soak0 type veth peer name soak1
ip -n "$ns" link set soak0 up
ip -n "$ns" link set soak1 up
ip netns exec "$ns" ip link set lo up

cat > "$dir/policy.toml" <<'EOF'
[default]
expect = "any"
EOF
ip netns exec "$ns" "$bin" check -i soak1 --policy "$dir/policy.toml" -F json --sensor soak \
  --output "$dir/out/sessions.ndjson" --rotate 50M -w "$dir/ring/ring.pcap" -C 100 -W 5 \
  --metrics "127.0.0.1:$port" --summary "$dir/summary.json" -B 65536 --no-immediate -Z nobody ${SOAK_OPTS:-} \
  > "$dir/check.ndjson" 2> "$dir/stderr.txt" &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/stderr.txt" && break; sleep 0.2; done
grep -q "listening on" "$dir/stderr.txt" || { cat "$dir/stderr.txt" >&2; exit 1; }

( while sleep 1; do ip netns exec "$ns" python3 -c '
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()' "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 || true; done ) &
scraper=$!
( t=0; while sleep 1; do t=$((t + 1)); rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
  echo "$t ${rss:-0}" >> "$dir/rss.txt"; done ) &
sampler=$!

start=$(date +%s)
ip netns exec "$ns" tcpreplay -q -i soak0 --pps="$pps" --pps-multi="${SOAK_PPS_MULTI:-100}" --loop="$loops" \
  --unique-ip -K "$capture" > "$dir/tcpreplay.txt" 2>&1
elapsed=$(( $(date +%s) - start ))
sleep 3
curl_metrics=$(ip netns exec "$ns" python3 -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "http://127.0.0.1:$port/metrics" || true)
echo "$curl_metrics" > "$dir/metrics.txt"
kill -INT "$pid"; wait "$pid" || true
kill "$sampler" "$scraper" 2>/dev/null || true

python3 - "$dir" "$elapsed" "$loops" <<'EOF'
import json, os, sys, glob, collections, subprocess
d, elapsed, loops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_loop = json.load(open(f"{d}/per_loop.json"))
records, broken = collections.Counter(), 0
for f in sorted(glob.glob(f"{d}/out/sessions.ndjson*")):
    data = open(f, "rb").read()
    if data and not data.endswith(b"\n"):
        broken += 1
    for line in data.splitlines():
        try:
            records[json.loads(line)["verdict"]] += 1
        except Exception:
            broken += 1
summary = json.load(open(f"{d}/summary.json"))
unreadable = [f for f in glob.glob(f"{d}/ring/*")
              if subprocess.run([os.environ.get("BIN", "target/release/smtpscope"), "-q", "-F", "json", "-r", f],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0]
rss = [tuple(map(int, l.split())) for l in open(f"{d}/rss.txt") if l.strip()]
last = max(r for t, r in rss if t > rss[-1][0] - 60) if rss else 0
two = max((r for t, r in rss if 60 < t <= 120), default=0)
sessions = sum(records.values())
expected = {v: n * loops for v, n in per_loop.items()}
got = {v: n for v, n in records.items() if n}
rss_ok = bool(two) and last <= 1.1 * two
rules = {
    "records per verdict = loops x the capture's verdicts": got == expected,
    "kernel drops 0": summary["kernel_drops"] == 0,
    "every --output file whole NDJSON": broken == 0,
    "every ring file readable": not unreadable,
    "no output errors": summary["output_errors"] == 0,
    "VmRSS max last minute <= 1.1 x max minute two": rss_ok,
    "at least 1,000,000 sessions": sessions >= 1_000_000,
}
print(f"soak: {elapsed} s, {loops} loops, {summary['packets']} packets ({summary['packets'] / max(1, elapsed):.0f}/s), "
      f"{summary['bytes'] / 1e6 / max(1, elapsed):.1f} MB/s, {sessions} records ({sessions / max(1, elapsed):.0f}/s), "
      f"kernel drops {summary['kernel_drops']}")
print(f"soak: records per verdict {dict(sorted(got.items()))}")
print(f"soak: expected            {dict(sorted(expected.items()))}")
print(f"soak: --output files {len(glob.glob(f'{d}/out/sessions.ndjson*'))}, broken lines/files {broken}; "
      f"ring files {len(glob.glob(f'{d}/ring/*'))}, unreadable {len(unreadable)}; output errors {summary['output_errors']}")
print(f"soak: VmRSS max minute two {two} kB, max last minute {last} kB, peak {max((r for _, r in rss), default=0)} kB")
for rule, ok in rules.items():
    print(f"soak: {'ok  ' if ok else 'FAIL'} {rule}")
sys.exit(0 if all(rules.values()) else 1)
EOF
