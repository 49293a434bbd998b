#!/usr/bin/env bash
# Regenerates docs/prometheus/alerts_test.yml from a real run: lab captures replayed by tcpreplay
# onto a veth pair in a network namespace of its own, through `check -i` with
# docs/mail-tls.example.toml and --metrics; /metrics is scraped once the sessions have ended
# (docs/prometheus/metrics-sample.txt) and scripts/alerts_series.py turns that scrape into
# promtool's input series and expected alerts. Root only (namespace, capture).
#   scripts/alerts_series.sh        BIN=path/to/smtpscope to use another build (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "alerts_series: needs root (network namespace, capture)" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build -q
  BIN=$PWD/target/debug/smtpscope
fi
ns=smtpscope-alerts-$$
port=$((30000 + $$ % 20000))
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add al0 type veth peer name al1
ip -n "$ns" link set al0 up
ip -n "$ns" link set al1 up
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" "$BIN" check -i al1 --policy docs/mail-tls.example.toml --allow-no-traffic \
  --sensor tor-hub --metrics "127.0.0.1:$port" > "$work/check.txt" 2> "$work/stderr.txt" &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$work/stderr.txt" && break; sleep 0.2; done
grep -q "listening on" "$work/stderr.txt" || { cat "$work/stderr.txt" >&2; exit 1; }
# The policy's sites (violations of both kinds), a certificate that expired and one that has not.
for c in multi-site expired-cert starttls-tls12-cert; do
  ip netns exec "$ns" tcpreplay -q -i al0 --pps=200 "captures/$c.pcap" > /dev/null
done
sleep 2
ip netns exec "$ns" python3 - "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" <<'PY'
import sys, time, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
print(f"# scraped_at {time.time():.0f}")
print(body, end="")
PY
kill -TERM "$pid"; wait "$pid" || true; pid=
cp "$work/metrics.txt" docs/prometheus/metrics-sample.txt
python3 scripts/alerts_series.py docs/prometheus/metrics-sample.txt > docs/prometheus/alerts_test.yml
(cd docs/prometheus && promtool test rules alerts_test.yml)
echo "alerts_series: docs/prometheus/metrics-sample.txt and alerts_test.yml written; promtool passes"
