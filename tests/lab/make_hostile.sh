#!/bin/bash
# Regenerate captures/hostile-strings.pcap: one real SMTP session on loopback (aiosmtpd server,
# Python smtplib client, tests/lab/hostile_smtp.py) whose greeting and EHLO name carry
# ESC/CSI/OSC sequences, BEL, a C1 control, a bidi override and an invalid UTF-8 byte, captured with
# tcpdump on lo. Used by the output-safety tests of the table and the terminal UI.
# usage: sudo tests/lab/make_hostile.sh   env: LAB_WORK (venv with aiosmtpd, default
#        /tmp/smtpscope-lab, made by the shared lab's setup.sh), PORT (default 2599), OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB_WORK=${LAB_WORK:-/tmp/smtpscope-lab}
PY=${PY:-$LAB_WORK/.venv/bin/python}
PORT=${PORT:-2599}
OUT=${OUT:-$HERE/../../captures/hostile-strings.pcap}
[ "$(id -u)" = 0 ] || { echo "make_hostile.sh: run as root" >&2; exit 1; }
[ -x "$PY" ] || { echo "make_hostile.sh: no python with aiosmtpd at $PY (run the shared lab's setup.sh)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/smtpscope-hostile.XXXXXX)
TD=
trap '[ -n "$TD" ] && kill -INT $TD 2>/dev/null; rm -rf "$TMP"' EXIT
coproc SMTP { "$PY" "$HERE/hostile_smtp.py" "$PORT"; }
read -r _ <&"${SMTP[0]}"          # the server is up (its start-up probe is not captured)
tcpdump -i lo -U --immediate-mode -s 0 -w "$TMP/h.pcap" "tcp port $PORT" 2>/dev/null &
TD=$!
sleep 1
echo go >&"${SMTP[1]}"
wait "$SMTP_PID"
sleep 1
kill -INT $TD; wait $TD 2>/dev/null || true
TD=
cp "$TMP/h.pcap" "$OUT"
echo "wrote $OUT" >&2
