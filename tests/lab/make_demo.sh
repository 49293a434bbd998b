#!/bin/bash
# Regenerate captures/demo.pcap: three real SMTP sessions (aiosmtpd server, Python smtplib
# client) between two throw-away network namespaces, captured with tcpdump on a veth pair.
#
#   session 1  10.231.0.1:40001 -> 10.231.0.2:25    EHLO, STARTTLS (TLS, SNI mail.test.local),
#                                                    EHLO, one ~1 KB message, QUIT (all encrypted)
#   session 2  10.231.0.1:40002 -> 10.231.0.2:25    EHLO (STARTTLS offered, unused), one message, QUIT
#   session 3  10.231.0.1:40003 -> 10.231.0.2:2526  EHLO (no STARTTLS offered), one message, QUIT
#
# usage: sudo tests/lab/make_demo.sh            (root: network namespaces, tcpdump)
# env:   LAB_WORK  dir with .venv (aiosmtpd), cert.pem, key.pem   (default /tmp/smtpscope-lab;
#                  made by the shared lab's setup.sh)
#        SHARED    dir holding lab/smtpd.py  (default <repo>/../shared, else /work/shared)
#        PY        python with aiosmtpd      (default $LAB_WORK/.venv/bin/python)
#        OUT       output pcap               (default <repo>/captures/demo.pcap)
# Only 10.231.0.1 and 10.231.0.2 are used (IPv6 is disabled in both namespaces). Namespaces,
# servers and tcpdump are removed on exit, also on failure. The output is replaced only after a
# complete run.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB_WORK=${LAB_WORK:-/tmp/smtpscope-lab}
PY=${PY:-$LAB_WORK/.venv/bin/python}
SHARED=${SHARED:-$HERE/../../../shared}
[ -f "$SHARED/lab/smtpd.py" ] || SHARED=/work/shared
SMTPD=$SHARED/lab/smtpd.py
OUT=${OUT:-$REPO/captures/demo.pcap}

CLI=ss-demo-cli-$$          # namespace names distinct from the shared lab's ec-cli / ec-srv
SRV=ss-demo-srv-$$
VC=ssdc$$                   # veth ends (<= 15 chars)
VS=ssds$$
CIP=10.231.0.1
SIP=10.231.0.2

[ "$(id -u)" = 0 ] || { echo "make_demo.sh: run as root" >&2; exit 1; }
for f in "$PY" "$SMTPD" "$LAB_WORK/cert.pem" "$LAB_WORK/key.pem"; do
  [ -e "$f" ] || { echo "make_demo.sh: missing $f (run the shared lab's setup.sh)" >&2; exit 1; }
done
for c in ip tcpdump; do
  command -v "$c" >/dev/null || { echo "make_demo.sh: $c not found" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/smtpscope-demo.XXXXXX)
PIDS=()
TCPDUMP_PID=

cleanup() {
  local rc=$?
  set +e
  trap '' PIPE INT TERM     # finish cleaning up even if stderr is a closed pipe
  [ -n "$TCPDUMP_PID" ] && kill -INT "$TCPDUMP_PID" 2>/dev/null && wait "$TCPDUMP_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  ip netns del "$CLI" 2>/dev/null
  ip netns del "$SRV" 2>/dev/null
  ip link del "$VC" 2>/dev/null     # only if it never made it into a namespace
  if [ "$rc" != 0 ]; then
    echo "make_demo.sh: FAILED (rc=$rc); logs:" >&2
    for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }; done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- two hosts joined by a veth pair (as the shared lab's netns-up.sh, IPv4 only) ---------------
ip netns add "$CLI"
ip netns add "$SRV"
for ns in "$CLI" "$SRV"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip link add "$VC" type veth peer name "$VS"
ip link set "$VC" netns "$CLI"
ip link set "$VS" netns "$SRV"
ip netns exec "$CLI" sysctl -qw "net.ipv6.conf.$VC.disable_ipv6=1"
ip netns exec "$SRV" sysctl -qw "net.ipv6.conf.$VS.disable_ipv6=1"
ip -n "$CLI" addr add "$CIP/24" dev "$VC"
ip -n "$SRV" addr add "$SIP/24" dev "$VS"
ip -n "$CLI" link set "$VC" mtu 1500 up
ip -n "$SRV" link set "$VS" mtu 1500 up
# offloads off: wire-sized segments with valid checksums in the capture
ip netns exec "$CLI" ethtool -K "$VC" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
ip netns exec "$SRV" ethtool -K "$VS" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true

# --- servers: aiosmtpd with STARTTLS on :25, without TLS on :2526 --------------------------------
# (smtpd.py loads cert.pem/key.pem from the cwd)
(cd "$LAB_WORK" && exec ip netns exec "$SRV" "$PY" "$SMTPD" --host "$SIP" --port 25 --mode starttls \
    > "$TMP/smtpd-25.log" 2>&1) &
PIDS+=($!)
(cd "$LAB_WORK" && exec ip netns exec "$SRV" "$PY" "$SMTPD" --host "$SIP" --port 2526 --mode plain \
    > "$TMP/smtpd-2526.log" 2>&1) &
PIDS+=($!)
for k in 0 1; do
  log=$TMP/smtpd-$([ $k = 0 ] && echo 25 || echo 2526).log
  for i in $(seq 100); do
    grep -q '^listening' "$log" 2>/dev/null && break
    kill -0 "${PIDS[$k]}" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^listening' "$log" || { echo "make_demo.sh: server did not start ($log)" >&2; exit 1; }
done

# --- the client ----------------------------------------------------------------------------------
cat > "$TMP/client.py" <<'EOF'
import smtplib, ssl, sys

mode, server, port, cport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n = cport - 40000
HELO = "demo-client.example"

def message():
    hdr = (f"From: alice@demo-client.example\r\nTo: bob@test.local\r\n"
           f"Subject: smtpscope demo session {n} ({mode})\r\n"
           f"Date: Sat, 22 Nov 2025 12:00:0{n} +0000\r\n"
           f"Message-ID: <demo-{n}@demo-client.example>\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    line = f"Demo message {n}: this line is filler so the body is about one kilobyte long."
    body = "\r\n".join(f"{k:02d} {line}" for k in range(11)) + "\r\n"
    return (hdr + body).encode()

class SNIContext(ssl.SSLContext):
    """smtplib passes the connect host (an IP literal here) as server_hostname, which
    sends no SNI; force the name the server certificate carries."""
    def wrap_socket(self, sock, *a, server_hostname=None, **kw):
        return super().wrap_socket(sock, *a, server_hostname="mail.test.local", **kw)

s = smtplib.SMTP(server, port, local_hostname=HELO, timeout=20, source_address=("10.231.0.1", cport))
code, _ = s.ehlo()
assert code == 250, code
print(f"session {n}: ehlo features {list(s.esmtp_features)}")
if mode == "starttls":
    ctx = SNIContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    code, _ = s.starttls(context=ctx)
    assert code == 220, code
    print(f"session {n}: {s.sock.version()} {s.sock.cipher()[0]}")
    s.ehlo()
msg = message()
s.sendmail("alice@demo-client.example", ["bob@test.local"], msg)
if mode == "starttls":
    # QUIT, then close TLS properly (close_notify both ways) before the TCP FIN; smtplib's
    # quit() would just close the socket, and the server's late close_notify draws an RST
    code, _ = s.docmd("QUIT")
    s.file.close()
    raw = s.sock.unwrap()
    s.file = s.sock = None
    raw.close()
else:
    code, _ = s.quit()
print(f"session {n}: sent {len(msg)} bytes, QUIT {code}")
EOF

# --- capture -------------------------------------------------------------------------------------
ip netns exec "$CLI" tcpdump -i "$VC" -n -Z root --immediate-mode -U -w "$TMP/demo.pcap" tcp \
    > "$TMP/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
for i in $(seq 100); do grep -q 'listening on' "$TMP/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$TMP/tcpdump.log" || { echo "make_demo.sh: tcpdump did not start" >&2; exit 1; }
sleep 0.5

client() { ip netns exec "$CLI" "$PY" "$TMP/client.py" "$@"; }
client starttls "$SIP" 25 40001
sleep 0.3
client plain "$SIP" 25 40002
sleep 0.3
client plain "$SIP" 2526 40003

sleep 1      # packets still in the kernel ring are lost if tcpdump is stopped at once
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true; TCPDUMP_PID=
cat "$TMP/tcpdump.log"

# --- sanity check, then publish ------------------------------------------------------------------
if command -v tshark >/dev/null; then
  syns=$(tshark -r "$TMP/demo.pcap" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' 2>/dev/null | wc -l)
  fins=$(tshark -r "$TMP/demo.pcap" -Y 'tcp.flags.fin==1' 2>/dev/null | wc -l)
  [ "$syns" = 3 ] && [ "$fins" = 6 ] || { echo "make_demo.sh: expected 3 SYN / 6 FIN, got $syns / $fins" >&2; exit 1; }
fi
mkdir -p "$(dirname "$OUT")"
install -m 0644 "$TMP/demo.pcap" "$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes)"
