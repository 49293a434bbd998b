#!/usr/bin/env python3
"""Ground truth for the lab's captures: what the lab meant each session to be (its manifest),
checked against what TShark reassembled from the capture, written in the shared corpus's
expected.jsonl format; then, optionally, smtpscope's records compared with it.

  truth.py CAPDIR MANIFEST EXPECTED [--smtpscope BIN]

MANIFEST is lab.py's lab-manifest.jsonl; EXPECTED (captures/expected.jsonl) keeps its lines for
files the manifest does not mention (demo.pcap) and gets one line per lab session.

Cross-check: TShark's `follow,tcp,raw` byte streams (its own reassembly: retransmissions and
out-of-order segments resolved) are parsed here command by command, independently of smtpscope,
and every key the lab claims is compared with what the bytes show; cipher names and alert names
come from TShark's own value tables (`tshark -G values`). Sessions whose capture is cut on
purpose (snaplen, mid-session start) are marked `observed: partial` by the lab: their content
keys follow the spec's rules for what is visible, and only their structure is cross-checked.
Any disagreement between intent and capture stops the run (the lab did not do what it thinks).
"""
import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

KEYS = ["helo", "starttls_offered", "upgrade_verb", "starttls_sent", "starttls_reply", "tls_handshake",
        "tls_version", "sni", "mail_transactions", "clean_close"]
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
VERSIONS = {0x0300: "SSL3.0", 0x0301: "TLS1.0", 0x0302: "TLS1.1", 0x0303: "TLS1.2", 0x0304: "TLS1.3"}


def tshark(*args):
    p = subprocess.run(["tshark", *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"truth.py: tshark {' '.join(args)}: {p.stderr}")
    return p.stdout


def value_table(field):
    out = {}
    for line in tshark("-G", "values").splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "V" and parts[1] == field:
            out[int(parts[2], 0)] = parts[3]
    return out


# --- TShark's view of the packets and streams -----------------------------------------------------

def packets(path):
    fields = ["tcp.stream", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
              "tcp.flags.fin", "tcp.flags.reset", "frame.cap_len"]
    out = tshark("-r", path, "-T", "fields", *sum((["-e", f] for f in fields), []), "-Y", "tcp")
    streams = defaultdict(lambda: {"syn_from": None, "synack": False, "fin_rst": False, "ends": None,
                                   "max_caplen": 0})
    order = []
    for line in out.splitlines():
        st, src, sport, dst, dport, syn, ack, fin, rst, cap = line.split("\t")
        s = streams[int(st)]
        if s["ends"] is None:
            s["ends"] = (f"{src}:{sport}", f"{dst}:{dport}")
            order.append(int(st))
        if syn == "1" and ack == "0":
            s["syn_from"] = f"{src}:{sport}"
        if syn == "1" and ack == "1":
            s["synack"] = True
        if fin == "1" or rst == "1":
            s["fin_rst"] = True
        s["max_caplen"] = max(s["max_caplen"], int(cap))
    return order, streams


def follow(path, stream_ids):
    """Per stream: the payload chunks in capture order, as (node, bytes), node 0 the first sender."""
    args = ["-r", path, "-q"]
    for i in stream_ids:
        args += ["-z", f"follow,tcp,raw,{i}"]
    out = tshark(*args)
    res, cur, nodes = {}, None, {}
    for line in out.splitlines():
        if line.startswith("Filter: tcp.stream eq "):
            cur = int(line.split()[-1])
            res[cur] = []
        elif line.startswith("Node 0: ") or line.startswith("Node 1: "):
            nodes.setdefault(cur, {})[int(line[5])] = line[8:].strip()
        elif cur is not None and line and not line.startswith("=") and not line.startswith("Follow:"):
            node = 1 if line.startswith("\t") else 0
            res[cur].append((node, bytes.fromhex(line.strip())))
    return res, nodes


# --- an independent SMTP / TLS reading of the byte streams -----------------------------------------

def split_lines(b):
    lines, start = [], 0
    while True:
        i = b.find(b"\n", start)
        if i < 0:
            return lines, b[start:]
        lines.append((start, b[start:i + 1]))
        start = i + 1


def replies(s):
    """Server replies from offset 0: [(code, [lines], end offset)] while lines look like replies."""
    out, cur = [], []
    for off, line in split_lines(s)[0]:
        t = line.rstrip(b"\r\n")
        if len(t) < 3 or not t[:3].isdigit():
            break
        cur.append(t)
        if len(t) == 3 or t[3:4] != b"-":
            out.append((int(t[:3]), cur, off + len(line)))
            cur = []
    return out


def record_offsets(b):
    """(type, offset) of the TLS records from the start of b, complete or not."""
    out, at = [], 0
    while at + 5 <= len(b):
        rtype, major, ln = b[at], b[at + 1], int.from_bytes(b[at + 3:at + 5], "big")
        if rtype not in (20, 21, 22, 23) or major != 3:
            break
        out.append((rtype, at))
        at += 5 + ln
    return out


def tls_records(b):
    """(type, body) of complete records from the start of b."""
    out, at = [], 0
    while at + 5 <= len(b):
        rtype, major, ln = b[at], b[at + 1], int.from_bytes(b[at + 3:at + 5], "big")
        if rtype not in (20, 21, 22, 23) or major != 3:
            break
        out.append((rtype, b[at + 5:at + 5 + ln]))
        at += 5 + ln
    return out


def clear_alerts(b, base):
    """Cleartext alerts in b's TLS records up to its ChangeCipherSpec, as (level, description,
    offset in the stream); base is b's offset in its stream."""
    out, at = [], 0
    while at + 5 <= len(b):
        rtype, major, ln = b[at], b[at + 1], int.from_bytes(b[at + 3:at + 5], "big")
        if rtype not in (21, 22, 23) or major != 3:
            break
        if rtype == 21 and ln == 2 and at + 7 <= len(b):
            out.append((b[at + 5], b[at + 6], base + at))
        at += 5 + ln
    return out


def extensions(b):
    out, at = {}, 0
    while at + 4 <= len(b):
        t, ln = int.from_bytes(b[at:at + 2], "big"), int.from_bytes(b[at + 2:at + 4], "big")
        out[t] = b[at + 4:at + 4 + ln]
        at += 4 + ln
    return out


def client_hello(b):
    recs = tls_records(b)
    hs = b"".join(body for t, body in recs if t == 22)
    if not hs or hs[0] != 1:
        return None
    body = hs[4:]
    at = 2 + 32
    at += 1 + body[at]
    at += 2 + int.from_bytes(body[at:at + 2], "big")
    at += 1 + body[at]
    exts = extensions(body[at + 2:at + 2 + int.from_bytes(body[at:at + 2], "big")])
    sni = None
    if 0 in exts:
        e = exts[0]
        sni = e[5:5 + int.from_bytes(e[3:5], "big")].decode()
    return {"sni": sni}


def server_hello(b, alerts):
    """ServerHello facts from the server's bytes after the upgrade (or from the start)."""
    hs, out = b"", None
    for t, body in tls_records(b):
        if t == 21 and len(body) == 2 and out is None:
            alerts.append(body[1])
        if t == 20:            # ChangeCipherSpec: what follows is encrypted
            break
        if t == 22:
            hs += body
    cert = False
    while len(hs) >= 4:
        typ, ln = hs[0], int.from_bytes(hs[1:4], "big")
        msg, hs = hs[4:4 + ln], hs[4 + ln:]
        if typ == 2 and out is None:
            if msg[2:34] == HRR_RANDOM:
                continue
            at = 2 + 32
            at += 1 + msg[at]
            cipher = int.from_bytes(msg[at:at + 2], "big")
            at += 3
            exts = extensions(msg[at + 2:at + 2 + int.from_bytes(msg[at:at + 2], "big")])
            version = int.from_bytes(exts[43][:2], "big") if 43 in exts else int.from_bytes(msg[:2], "big")
            out = {"version": version, "cipher": cipher}
            if version == 0x0304:
                break          # the rest of the handshake is encrypted
        elif typ == 11:
            cert = True
    if out:
        out["cert"] = cert
    return out


def observe(chunks, client_node):
    """What the two byte streams show, with the spec's meaning of each key."""
    c = b"".join(d for n, d in chunks if n == client_node)
    s = b"".join(d for n, d in chunks if n != client_node)
    # offset in each direction where every chunk starts, in capture order (to date bytes)
    timeline, pos = [], [0, 0]
    for n, d in chunks:
        side = 0 if n == client_node else 1
        timeline.append((side, pos[side], pos[side] + len(d)))
        pos[side] += len(d)

    def chunk_index(side, off):
        return next(i for i, (sd, a, b) in enumerate(timeline) if sd == side and a <= off < b)

    f = {"helo": None, "starttls_offered": None, "upgrade_verb": None, "starttls_sent": False,
         "starttls_reply": None, "tls_handshake": False, "tls_version": None, "sni": None,
         "mail_transactions": 0, "clean_close": False, "ehlo_extensions": None, "cipher": None,
         "uses_bdat": False, "tls_alerts": [], "server_certificate_seen": False, "implicit": False}
    if c[:1] == b"\x16":
        f.update(implicit=True, mail_transactions=None, clean_close=None)
        ch = client_hello(c)
        sh = server_hello(s, f["tls_alerts"])
        tls_outcome(f, ch, sh)
        return f
    reps = replies(s)
    ri = 1                              # reply 0 is the greeting
    at = 0
    hello_seen = False
    while at < len(c):
        nl = c.find(b"\n", at)
        if nl < 0:
            break
        line = c[at:nl + 1].rstrip(b"\r\n")
        at = nl + 1
        verb, _, arg = line.decode("latin-1").partition(" ")
        verb = verb.upper()
        rep = reps[ri] if ri < len(reps) else None
        ri += 1
        if verb in ("EHLO", "HELO") and not hello_seen:
            hello_seen = True
            f["helo"] = arg.strip()
            if rep is None:
                continue
            if verb == "HELO":
                f["starttls_offered"] = False
            elif rep[0] == 250:
                kws = [l[4:].split(b" ")[0].decode() for l in rep[1][1:]]
                f["ehlo_extensions"] = kws
                f["starttls_offered"] = any(k.upper() in ("STARTTLS", "X-ANONYMOUSTLS") for k in kws)
            else:
                f["starttls_offered"] = False
        elif verb == "MAIL":
            f["mail_transactions"] += 1
        elif verb == "DATA" and rep and rep[0] == 354:
            end = c.find(b"\r\n.\r\n", at - 2)
            at = end + 5
            ri += 1                     # the reply after the end of data
        elif verb == "BDAT":
            f["uses_bdat"] = True
            at += int(arg.split()[0])
        elif verb == "QUIT":
            f["clean_close"] = rep is not None and rep[0] == 221
        elif verb in ("STARTTLS", "X-ANONYMOUSTLS") and f["upgrade_verb"] is None:
            f["upgrade_verb"], f["starttls_sent"] = verb, True
            f["starttls_reply"] = rep[0] if rep else None
            if rep and rep[0] == 220:
                # bytes the client sent before the 220 arrived were injected, not its next move
                t220 = chunk_index(1, rep[2] - 1)
                nxt = at
                while nxt < len(c) and chunk_index(0, nxt) < t220:
                    nxt = timeline[chunk_index(0, nxt)][2]
                if c[nxt:nxt + 1] == b"\x16":
                    ch = client_hello(c[nxt:])
                    sh = server_hello(s[rep[2]:], [])
                    tls_outcome(f, ch, sh)
                    # both sides' cleartext alerts, in capture order, each with whether it came
                    # after the ServerHello (the server's first handshake record after the 220)
                    sh_at = next((rep[2] + a for t, a in record_offsets(s[rep[2]:]) if t == 22), None)
                    alerts = [(chunk_index(1, o), lvl, d, sh_at is not None and o > sh_at)
                              for lvl, d, o in clear_alerts(s[rep[2]:], rep[2])]
                    sh_chunk = chunk_index(1, sh_at) if sh_at is not None and sh_at < len(s) else None
                    alerts += [(chunk_index(0, o), lvl, d, sh_chunk is not None and chunk_index(0, o) > sh_chunk)
                               for lvl, d, o in clear_alerts(c[nxt:], nxt)]
                    alerts.sort()
                    f["tls_alerts"] = [d for _, _, d, _ in alerts]
                    # a TLS <= 1.2 handshake aborted after the ServerHello by a cleartext fatal
                    # alert never took the dialogue inside TLS: its cleartext counts stay
                    aborted = sh and sh["version"] != 0x0304 and any(lvl == 2 and after for _, lvl, _, after in alerts)
                    if f["tls_handshake"] and not aborted:
                        f["mail_transactions"] = f["clean_close"] = None
                    break
                at = nxt
    return f


def tls_outcome(f, ch, sh):
    if ch:
        f["sni"] = ch["sni"]
    if ch and sh:
        f["tls_handshake"] = True
        f["tls_version"] = VERSIONS.get(sh["version"], hex(sh["version"]))
        f["cipher"] = sh["cipher"]
        f["server_certificate_seen"] = sh["cert"]


# --- putting it together ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capdir")
    ap.add_argument("manifest")
    ap.add_argument("expected")
    ap.add_argument("--smtpscope")
    a = ap.parse_args()
    ciphers = value_table("tls.handshake.ciphersuite")
    alerts = value_table("tls.alert_message.desc")
    manifest = [json.loads(l) for l in open(a.manifest) if l.strip()]
    files = list(dict.fromkeys(m["file"] for m in manifest))
    problems, lines = [], []
    for file in files:
        path = os.path.join(a.capdir, file)
        order, streams = packets(path)
        want = [m for m in manifest if m["file"] == file]
        # sessions of one client address and server, in the order they were opened
        by_pair = defaultdict(list)
        for st in order:
            ends = streams[st]["ends"]
            for w in want:
                if w["server"] in ends:
                    cli = ends[0] if ends[1] == w["server"] else ends[1]
                    if cli.rsplit(":", 1)[0] == w["client_ip"]:
                        by_pair[(w["client_ip"], w["server"])].append((st, cli))
                        break
            else:
                problems.append(f"{file}: stream {st} {ends} is no session the lab ran")
        flows, nodes = follow(path, order)
        used = defaultdict(int)
        for w in want:
            key = (w["client_ip"], w["server"])
            k = used[key]
            used[key] += 1
            if k >= len(by_pair[key]):
                problems.append(f"{file}: session {key} #{k + 1} not in the capture")
                continue
            st, client = by_pair[key][k]
            meta = streams[st]
            chunks = flows.get(st, [])
            client_node = 0 if nodes.get(st, {}).get(0) == client else 1
            obs = observe(chunks, client_node)
            rec = {"file": file, "client": client, "server": w["server"]}
            rec.update({k2: w[k2] for k2 in KEYS})
            rec["label"] = w["label"]
            rec["tcp_stream"] = st
            partial = w.get("observed") == "partial"
            if not partial:
                for k2 in KEYS:
                    if obs[k2] != w[k2]:
                        problems.append(f"{file} {client} (tcp.stream {st}): the lab meant {k2}={w[k2]!r}, "
                                        f"the capture shows {obs[k2]!r}")
                if w.get("uses_bdat", False) != obs["uses_bdat"]:
                    problems.append(f"{file} {client}: uses_bdat {w.get('uses_bdat', False)} vs {obs['uses_bdat']}")
                if "server_certificate_seen" in w and w["server_certificate_seen"] != obs["server_certificate_seen"]:
                    problems.append(f"{file} {client}: server_certificate_seen {w['server_certificate_seen']} vs "
                                    f"{obs['server_certificate_seen']}")
                got_alerts = [alerts.get(x, str(x)) for x in obs["tls_alerts"]]
                if w.get("tls_alerts", []) and [x.lower().replace(" ", "_") for x in got_alerts] != w["tls_alerts"]:
                    problems.append(f"{file} {client}: tls_alerts {w['tls_alerts']} vs {got_alerts}")
                if obs["cipher"] is not None:
                    rec["cipher"] = ciphers.get(obs["cipher"], hex(obs["cipher"]))
                if obs["ehlo_extensions"] is not None:
                    rec["ehlo_extensions"] = obs["ehlo_extensions"]
            else:
                check_partial(w, meta, obs, problems, f"{file} {client}")
            for extra in ("uses_bdat", "tls_alerts", "server_certificate_seen"):
                if extra in w:
                    rec[extra] = w[extra]
            rec["capture_complete"] = bool((meta["syn_from"] or meta["synack"]) and meta["fin_rst"])
            rec["note"] = f"{w['software']}: {w['note']}"
            lines.append(rec)
    if problems:
        print("truth.py: the captures do not show what the lab meant:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    keep = []
    if os.path.exists(a.expected):
        keep = [l for l in open(a.expected) if l.strip() and json.loads(l)["file"] not in files]
    with open(a.expected, "w") as f:
        f.writelines(keep)
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
    print(f"truth.py: {len(lines)} sessions in {len(files)} captures cross-checked with TShark -> {a.expected}")
    if a.smtpscope:
        sys.exit(compare(a.smtpscope, a.capdir, lines))


def check_partial(w, meta, obs, problems, where):
    """Cut captures: only what the cut itself guarantees."""
    if w.get("cut") == "snaplen" and meta["max_caplen"] > 96:
        problems.append(f"{where}: a frame of {meta['max_caplen']} bytes in a snaplen-96 capture")
    if w.get("cut") == "mid-session" and (meta["syn_from"] or meta["synack"]):
        problems.append(f"{where}: the mid-session capture has the TCP handshake")


def compare(binary, capdir, lines):
    bad = 0
    for file in dict.fromkeys(r["file"] for r in lines):
        out = subprocess.run([binary, "-q", "-F", "json", "-r", os.path.join(capdir, file)], capture_output=True,
                             text=True, check=True).stdout
        got = {(r["client"], r["server"]): r for r in map(json.loads, out.splitlines())}
        for want in (r for r in lines if r["file"] == file):
            g = got.get((want["client"], want["server"]))
            if g is None:
                print(f"smtpscope: {file} {want['client']}: missing")
                bad += 1
                continue
            diff = [f"verdict {g['verdict']} != {want['label']}"] if g["verdict"] != want["label"] else []
            diff += [f"{k} {g[k]!r} != {want[k]!r}" for k in KEYS if g[k] != want[k]]
            if diff:
                bad += 1
                print(f"smtpscope: {file} {want['client']}: " + "; ".join(diff))
    print(f"smtpscope: {len(lines) - bad}/{len(lines)} sessions agree with the ground truth")
    return 1 if bad else 0


if __name__ == "__main__":
    main()
