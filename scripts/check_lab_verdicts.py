#!/usr/bin/env python3
"""Compares smtpscope's NDJSON with the shared lab's per-session ground truth.
usage: check_lab_verdicts.py MANIFEST.jsonl SMTPSCOPE.ndjson
Sessions are matched by client port (10000 + session index); `kind` maps to a verdict as in
../shared/lab/README.md. Exit 1 unless every session agrees."""
import json, sys

KIND = {"plain": "starttls-offered-unused", "starttls": "starttls", "implicit-tls": "implicit-tls",
        "starttls-rejected": "starttls-refused", "starttls-aborted": "starttls-failed",
        "plain-early-close": "starttls-offered-unused"}

manifest = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    port = int(r["client"].rsplit(":", 1)[1])
    got.setdefault(port, []).append(r)

def norm(v):
    return None if v is None else str(v).replace("TLSv", "TLS").replace("v", "")

bad, missing, extra = [], 0, 0
for i, m in enumerate(manifest):
    port = m.get("cport", 10000 + i)
    recs = got.pop(port, [])
    if len(recs) != 1:
        missing += len(recs) == 0
        extra += max(0, len(recs) - 1)
        bad.append((port, m.get("kind"), f"{len(recs)} records"))
        continue
    r = recs[0]
    want = KIND.get(m.get("kind"))
    if r["verdict"] != want:
        bad.append((port, m.get("kind"), r["verdict"], r["evidence"][:3]))
    elif m.get("tls_version") and r["verdict"] in ("starttls", "implicit-tls") and norm(m["tls_version"]) != norm(r["tls_version"]):
        bad.append((port, m.get("kind"), f"tls_version {r['tls_version']} != {m['tls_version']}"))
extra += sum(len(v) for v in got.values())
n = len(manifest)
print(f"lab ground truth: {n - len(bad)}/{n} sessions agree ({100 * (n - len(bad)) / max(n, 1):.2f} %), "
      f"missing {missing}, extra records {extra}", file=sys.stderr)
for b in bad[:20]:
    print("  mismatch:", b, file=sys.stderr)
sys.exit(0 if not bad and extra == 0 else 1)
