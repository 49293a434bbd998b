#!/usr/bin/env bash
# Derives seed corpora from the bundled and shared captures (never copied into the repo) and
# adds a few hand-written SMTP/TLS seeds. Usage: fuzz/seed.sh [SHARED_CAPTURES_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared/captures/public}
out=fuzz/corpus
mkdir -p "$out"/{smtp,tls,reassembly}
cargo run -q --release --example fuzz_seeds -- "$out" captures/*.pcap* $(ls "$shared"/*.pcap* 2>/dev/null || true)
printf '220 mx ESMTP\r\n\xff\x00EHLO a\r\n\xff\x01250-mx\r\n250 STARTTLS\r\n\xff\x00STARTTLS\r\n\xff\x01220 go\r\n\xff\x00\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00' > "$out/smtp/starttls"
printf '220 mx\r\n\xff\x00EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n\xff\x01250 ok\r\n250 ok\r\n354 go\r\n\xff\x00body\r\n.\r\nBDAT 3 LAST\r\nabcQUIT\r\n\xff\x01250 ok\r\n221 bye\r\n' > "$out/smtp/pipelining"
printf '220 mx\r\n\xff\x00EHLO a\r\nAUTH LOGIN\r\n\xff\x01334 VXNlcm5hbWU6\r\n\xff\x00dXNlcg==\r\n\xff\x01334 UGFzc3dvcmQ6\r\n\xff\x00cGFzcw==\r\n\xff\x01235 ok\r\n\xff\x1eQUIT\r\n' > "$out/smtp/auth-login-gap"
printf '\x16\x03\x01\x00\x2e\x01\x00\x00\x2a\x03\x03\xff\xff' > "$out/tls/clienthello-start"
printf '\x00\x00\x00\x01\x05\x00hello\x00\x00\x00\x10\x03\x03abc\x00\x00\x00\x06\x04\x03worl' > "$out/reassembly/seed"
# NetMon: the small captures as editcap writes them (netmon2), and the compressed forms for
# capture_file (needs editcap, gzip, zstd; each is skipped when missing).
mkdir -p "$out"/{netmon,capture_file}
for f in captures/demo.pcap captures/plaintext.pcap captures/snaplen-96.pcap; do
  b=$(basename "$f" .pcap)
  command -v editcap >/dev/null && editcap -F netmon2 "$f" "$out/netmon/$b.cap" || true
  command -v gzip >/dev/null && gzip -c "$f" > "$out/capture_file/$b.pcap.gz" || true
  command -v zstd >/dev/null && zstd -q -c "$f" > "$out/capture_file/$b.pcap.zst" || true
done
# Logs: the bundled and shared server logs, whole. Records: the NDJSON of the small captures,
# one file per capture (needs a built smtpscope; skipped without one).
mkdir -p "$out"/{exchange_log,postfix_log,records}
for f in captures/logs/exchange-* $(find "$shared/../../logs/exchange" -type f 2>/dev/null | head -n 50); do
  cp "$f" "$out/exchange_log/$(basename "$f")" 2>/dev/null || true
done
for f in captures/logs/*.maillog $(find "$shared/../../logs/postfix" -type f 2>/dev/null | head -n 50); do
  cp "$f" "$out/postfix_log/$(basename "$f")" 2>/dev/null || true
done
bin=target/release/smtpscope
[ -x "$bin" ] || bin=target/debug/smtpscope
if [ -x "$bin" ]; then
  for f in captures/*.pcap; do
    "$bin" -q -F json -r "$f" > "$out/records/$(basename "$f" .pcap).ndjson" 2>/dev/null || true
  done
fi
echo "corpus in $out"
# Minimised corpora from earlier runs (fuzz/corpus-min) start where the last run stopped.
for t in fuzz/corpus-min/*/; do
  t=$(basename "$t"); mkdir -p "$out/$t"; cp -n fuzz/corpus-min/"$t"/* "$out/$t/" 2>/dev/null || true
done
