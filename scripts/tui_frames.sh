#!/usr/bin/env bash
# Terminal UI responsiveness while a big capture loads: runs the release binary's TUI in tmux
# (fixed size) with SMTPSCOPE_FRAME_LOG, waits for the load to finish (polling the screen),
# sorts, filters on the table's columns, filters on free text (every row unpacked, a budget a
# frame), quits, and reports per-frame work times (ingest + filter work + view rebuild + draw).
# The issue's bar: frames ≤ 16 ms median, none over 50 ms.
#   scripts/tui_frames.sh [CAPTURE]     # default /tmp/smtpscope-lab/big.pcap (make bench builds it)
#   SMTPSCOPE_BIN=path/to/smtpscope scripts/tui_frames.sh   # another build (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
cap=${1:-${LAB_WORK:-/tmp/smtpscope-lab}/big.pcap}
[ -f "$cap" ] || { echo "tui_frames: no capture at $cap (make bench builds one)" >&2; exit 2; }
command -v tmux >/dev/null || { echo "tui_frames: tmux is needed" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "tui_frames: GNU time is needed (apt-get install time)" >&2; exit 2; }
bin=${SMTPSCOPE_BIN:-}
if [ -z "$bin" ]; then cargo build -q --release; bin=./target/release/smtpscope; fi
log=$(mktemp /tmp/smtpscope-frames.XXXXXX)
session=smtpscope-frames-$$
trap 'tmux kill-session -t "$session" 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$log" "$KEEP_LOG"; rm -f "$log" "$log.rss"' EXIT
start=$(date +%s.%N)
tmux new-session -d -s "$session" -x 120 -y 40 \
  "SMTPSCOPE_FRAME_LOG=$log /usr/bin/time -f 'SMTPSCOPE-RSS %M' -o $log.rss '$bin' -q -r '$cap'; echo SMTPSCOPE-EXIT \$?; sleep 30"
wait_for() {  # text, seconds
  local deadline=$(( $(date +%s) + $2 ))
  until tmux capture-pane -p -t "$session" | grep -q -- "$1"; do
    (( $(date +%s) < deadline )) || { echo "tui_frames: '$1' not seen within $2 s" >&2; exit 1; }
    sleep 0.1
  done
}
wait_for ' read ' 600
loaded=$(date +%s.%N)
tmux send-keys -t "$session" s
tmux send-keys -t "$session" / 'verdict:starttls tls:>=1.2' Enter
wait_for 'filter: verdict:starttls' 20
tmux send-keys -t "$session" S 2
tmux send-keys -t "$session" / C-u '"starttls"' Enter
wait_for 'match "starttls"' 600
tmux send-keys -t "$session" q
wait_for 'SMTPSCOPE-EXIT 0' 60
grep -h SMTPSCOPE-RSS "$log.rss" | awk '{printf "peak RSS of the UI: %.0f MB\n", $2 / 1024}'
python3 - "$log" "$cap" "$start" "$loaded" <<'PY'
import sys, statistics
log, cap, start, loaded = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [list(map(int, l.split())) for l in open(log) if l.strip()]
if not rows:
    sys.exit("no frames logged")
final = rows[-1][3]
def stats(name, rs):
    for label, col in (("wall", 1), ("UI thread CPU", 4)):
        w = sorted(r[col] / 1000 for r in rs)
        if not w:
            return
        p99 = w[min(len(w) - 1, int(len(w) * 0.99))]
        print(f"| {name}, {label} | {len(w)} | {statistics.median(w):.2f} | {p99:.2f} | {w[-1]:.2f} | {sum(1 for x in w if x > 50)} |")
load = open("/proc/loadavg").read().split()[0]
print(f"capture: {cap}; {final} sessions; load seen done after {loaded - start:.1f} s (wall, incl. start-up); load average {load}")
print("| frames | n | median ms | p99 ms | max ms | > 50 ms |")
print("|---|---|---|---|---|---|")
loading = [r for r in rows if r[3] < final or r[2] > 0]
stats("while loading", loading)
stats("all (load, sort, filters, tab switch)", rows)
PY
