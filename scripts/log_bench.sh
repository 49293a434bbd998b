#!/usr/bin/env bash
# Log reading at scale: 1 M Exchange sessions in one file (closed by their `-` line, and never
# closed within 10 minutes of log time, which exercises the open-session cap), and 1 M Postfix
# smtpd sessions; wall time, MB/s and peak RSS of `smtpscope logs -F json` for each.
# usage: scripts/log_bench.sh [DIR]   (SMTPSCOPE: binary, default target/release/smtpscope)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SMTPSCOPE:-target/release/smtpscope}
DIR=${1:-$(mktemp -d /tmp/smtpscope-logbench.XXXXXX)}
mkdir -p "$DIR"
python3 - "$DIR" <<'PY'
import sys
d = sys.argv[1]
hdr = ("#Software: Microsoft Exchange Server\n#Version: 15.0.0.0\n#Log-type: SMTP Receive Protocol Log\n"
       "#Date: 2023-01-11T16:00:04.113Z\n#Fields: date-time,connector-id,session-id,sequence-number,"
       "local-endpoint,remote-endpoint,event,data,context\n")
def exchange(path, close):
    with open(path, "w") as f:
        f.write(hdr)
        for n in range(1_000_000):
            s = n if close else n  # ids
            t = (n // 100) if close else (n // 2000)   # closed: 10 000 s of log; open: 500 s (< 10 min)
            ts = f"2023-01-11T{(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d}.{n % 1000:03d}Z"
            ep = f"10.0.0.1:25,10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}:{1024 + n % 60000}"
            c = f"HUB\\Default HUB,{s:016X}"
            f.write(f"{ts},{c},1,{ep},>,\"220 HUB Microsoft ESMTP MAIL Service ready at Wed, 11 Jan 2023 16:59:51 +0100\",\n")
            f.write(f"{ts},{c},2,{ep},<,EHLO [10.1.2.3],\n")
            f.write(f"{ts},{c},3,{ep},>,250  HUB Hello [10.1.2.3] SIZE 37748736 PIPELINING STARTTLS X-ANONYMOUSTLS AUTH NTLM 8BITMIME,\n")
            f.write(f"{ts},{c},4,{ep},<,MAIL FROM:<a@example.org>,\n")
            if close:
                f.write(f"{ts},{c},5,{ep},-,,Local\n")
def postfix(path):
    with open(path, "w") as f:
        for n in range(1_000_000):
            t = n // 50
            ts = f"Dec  7 {(t // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d}"
            ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            pid = 1000 + n % 100
            f.write(f"{ts} mx postfix/smtpd[{pid}]: connect from c{n}.example[{ip}]\n")
            f.write(f"{ts} mx postfix/smtpd[{pid}]: Anonymous TLS connection established from c{n}.example[{ip}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n")
            f.write(f"{ts} mx postfix/smtpd[{pid}]: disconnect from c{n}.example[{ip}] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7\n")
exchange(f"{d}/exchange-closed.log", True)
exchange(f"{d}/exchange-open.log", False)
postfix(f"{d}/postfix.log")
PY
for f in exchange-closed exchange-open postfix; do
  size=$(stat -c %s "$DIR/$f.log")
  /usr/bin/time -f "%e %U %S %M" -o "$DIR/$f.time" "$BIN" logs -F json --log-tz UTC --summary "$DIR/$f.summary" "$DIR/$f.log" > /dev/null
  read -r secs user sys kb < "$DIR/$f.time"
  sessions=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sessions'])" "$DIR/$f.summary")
  probs=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['line_problems'])" "$DIR/$f.summary")
  # CPU time (user + sys) as well as wall: on a shared machine the wall clock measures the neighbours.
  python3 -c "import sys; s,c,b,kb=float(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]); print(f'{sys.argv[1]:16} {b/1e6:5.0f} MB  wall {s:6.2f} s {b/1e6/s:5.0f} MB/s  cpu {c:6.2f} s {b/1e6/c:5.0f} MB/s  peak RSS {kb/1024:4.0f} MiB  sessions {sys.argv[6]}  problems {sys.argv[7]}')" \
    "$f" "$secs" "$(python3 -c "print($user + $sys)")" "$size" "$kb" "$sessions" "$probs"
done
