#!/usr/bin/env bash
# Regenerate the project's sample captures (captures/*.pcap but demo.pcap) and their ground truth
# (captures/expected.jsonl) from the lab: real Postfix, swaks, openssl, smtplib and an Exchange-
# style server between throw-away network namespaces, one tcpdump per scenario (tests/lab/lab.py).
# The truth is what the lab meant each session to be, cross-checked against TShark
# (tests/lab/truth.py); then smtpscope's records are compared with it.
#
# usage: sudo tests/lab/make_captures.sh [SCENARIO ...]      (default: all; names as in lab.py)
# env:   OUT        where captures and expected.jsonl go       (default <repo>/captures)
#        SMTPSCOPE  binary compared with the truth             (default <repo>/target/release/smtpscope)
#        KEEP_FAILED=1  keep the work directory (captures, manifest) when a run fails
# Needs root, iproute2, ethtool, postfix, swaks, openssl, tcpdump, tshark, python3 (stdlib only); the
# foreign-protocols scenario also vsftpd, dovecot-pop3d, inn2, ngircd, tinyproxy, dante-server, curl.
# Namespaces are named sl-{cli,srv,mid}-<pid> and removed on exit, also on failure or Ctrl-C,
# with whatever still runs inside them. Outputs are replaced only after a complete run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$REPO/captures}
SMTPSCOPE=${SMTPSCOPE:-$REPO/target/release/smtpscope}
export LAB_SUFFIX=$$

[ "$(id -u)" = 0 ] || { echo "make_captures.sh: run as root (network namespaces, tcpdump)" >&2; exit 1; }
for c in ip ethtool postfix swaks openssl tcpdump tshark python3 script; do
  command -v "$c" >/dev/null || { echo "make_captures.sh: $c not found (see README: the lab)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/smtpscope-captures.XXXXXX)
LAB_PID=
cleanup() {
  local rc=$?
  set +e
  trap '' INT TERM PIPE
  # a signal to this script alone reaches lab.py too, which then tears its lab down itself
  if [ -n "$LAB_PID" ] && kill -0 "$LAB_PID" 2>/dev/null; then
    kill -TERM "$LAB_PID" 2>/dev/null
    for _ in $(seq 300); do kill -0 "$LAB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$LAB_PID" 2>/dev/null
  fi
  # ... and this catches what a killed lab.py left behind
  for ns in "sl-cli-$LAB_SUFFIX" "sl-srv-$LAB_SUFFIX" "sl-mid-$LAB_SUFFIX"; do
    if [ -e "/run/netns/$ns" ]; then
      pids=$(ip netns pids "$ns" 2>/dev/null)
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
      ip netns del "$ns" 2>/dev/null
    fi
  done
  if [ "$rc" = 0 ] || [ -z "${KEEP_FAILED:-}" ]; then rm -rf "$TMP"; fi
  [ "$rc" = 0 ] || echo "make_captures.sh: FAILED (rc=$rc); nothing in $OUT was replaced${KEEP_FAILED:+; kept $TMP}" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# in the background, so that a signal runs the trap at once instead of after the whole run
python3 "$HERE/lab.py" captures "$TMP" "$@" &
LAB_PID=$!
wait "$LAB_PID"
LAB_PID=
[ -f "$OUT/expected.jsonl" ] && cp "$OUT/expected.jsonl" "$TMP/expected.jsonl"
python3 "$HERE/truth.py" "$TMP" "$TMP/lab-manifest.jsonl" "$TMP/expected.jsonl"

mkdir -p "$OUT"
for f in "$TMP"/*.pcap; do install -m 0644 "$f" "$OUT/"; done
install -m 0644 "$TMP/expected.jsonl" "$OUT/expected.jsonl"
echo "make_captures.sh: wrote $(ls "$TMP"/*.pcap | wc -l) captures and $OUT/expected.jsonl"

if [ -x "$SMTPSCOPE" ]; then
  # a disagreement is a bug in smtpscope (or in this lab): the accuracy test will say so too
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import truth, json
lines = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
sys.exit(truth.compare(sys.argv[2], sys.argv[4], lines))' "$HERE" "$SMTPSCOPE" "$OUT/expected.jsonl" "$OUT" || true
else
  echo "make_captures.sh: $SMTPSCOPE not built; run 'cargo test --test accuracy' to compare" >&2
fi
