#!/usr/bin/env python3
"""Compares smtpscope's NDJSON with the shared lab's per-session ground truth.
usage: check_lab_verdicts.py MANIFEST.jsonl SMTPSCOPE.ndjson [COPIES]
Sessions are matched by client port (10000 + session index) and, for an enlarged capture, by
copy: copy k (0 = the base) has its client in 10.(213+k).0.0/24 or fd00:(213+k)::/64, as
../shared/lab/make_big.sh and scripts/enlarge.sh rewrite them. `kind` maps to a verdict as in
../shared/lab/README.md. Exit 1 unless every session of every copy agrees and nothing is extra."""
import json, sys

KIND = {"plain": "starttls-offered-unused", "starttls": "starttls", "implicit-tls": "implicit-tls",
        "starttls-rejected": "starttls-refused", "starttls-aborted": "starttls-failed",
        "plain-early-close": "starttls-offered-unused"}

manifest = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
copies = int(sys.argv[3]) if len(sys.argv) > 3 else 1


def copy_of(client):
    host, port = client.rsplit(":", 1)
    if host.startswith("["):
        group = host.strip("[]").split(":")[1]
    else:
        group = host.split(".")[1]
    try:
        return int(group) - 213, int(port)
    except ValueError:
        return None, int(port)


got = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    got.setdefault(copy_of(r["client"]), []).append(r)


def norm(v):
    return None if v is None else str(v).replace("TLSv", "TLS").replace("v", "")


bad, missing, extra = [], 0, 0
for k in range(copies):
    for i, m in enumerate(manifest):
        port = m.get("cport", 10000 + i)
        recs = got.pop((k, port), [])
        if len(recs) != 1:
            missing += len(recs) == 0
            extra += max(0, len(recs) - 1)
            bad.append((k, port, m.get("kind"), f"{len(recs)} records"))
            continue
        r = recs[0]
        want = KIND.get(m.get("kind"))
        if r["verdict"] != want:
            bad.append((k, port, m.get("kind"), r["verdict"], r["evidence"][:3]))
        elif m.get("tls_version") and r["verdict"] in ("starttls", "implicit-tls") and norm(m["tls_version"]) != norm(r["tls_version"]):
            bad.append((k, port, m.get("kind"), f"tls_version {r['tls_version']} != {m['tls_version']}"))
extra += sum(len(v) for v in got.values())
n = len(manifest) * copies
print(f"lab ground truth ({copies} cop{'y' if copies == 1 else 'ies'}): {n - len(bad)}/{n} sessions agree "
      f"({100 * (n - len(bad)) / max(n, 1):.2f} %), missing {missing}, extra records {extra}", file=sys.stderr)
for b in bad[:20]:
    print("  mismatch:", b, file=sys.stderr)
sys.exit(0 if not bad and extra == 0 else 1)
