#!/usr/bin/env python3
"""Two-point captures for `smtpscope diff`: a client and a server namespace joined through a
middle namespace that routes, NATs, rewrites or relays; tcpdump runs at both points at once,
`a` on the client's veth, `b` on the server's.

  diff_lab.py captures OUTDIR [SCENARIO ...]   writes OUTDIR/<scenario>-a.pcap and -b.pcap
                                               and OUTDIR/diff-manifest.jsonl

Scenarios (the middle box in each):
  transparent  routing only: both points on one path (no change)
  asa          asa_nfqueue.py: Cisco-ASA-style inline rewriting, one TCP connection end to end
  nat          nftables masquerade towards the server and an MSS clamp (1200) on forwarded SYNs
  proxy        strip_proxy.py: a TCP-terminating proxy that answers STARTTLS itself (500)
  tls-relay    Postfix with its own certificate, relaying over a second STARTTLS session to the
               server's Postfix (another certificate); TLS 1.2 on both legs so both are visible

Hosts (names with a per-run suffix, removed on exit, also on failure):
  sd-cli-N 10.233.0.1 -- sd-mid-N 10.233.0.254 | 10.233.1.254 -- sd-srv-N 10.233.1.2
Needs root, iproute2, ethtool, iptables, nftables, postfix, swaks, openssl, tcpdump, python3
with NetfilterQueue (asa only).
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402  (the lab's namespaces, Postfix and process helpers)

HERE = L.HERE
PY = L.PY
SUFFIX = L.SUFFIX
CLI, MID, SRV = f"sd-cli-{SUFFIX}", f"sd-mid-{SUFFIX}", f"sd-srv-{SUFFIX}"
V_CLI, V_MA, V_MB, V_SRV = f"sdc{SUFFIX}", f"sdma{SUFFIX}", f"sdmb{SUFFIX}", f"sds{SUFFIX}"
CLIENT, MID_A, MID_B, SERVER = "10.233.0.1", "10.233.0.254", "10.233.1.254", "10.233.1.2"


class DiffLab(L.Lab):
    def topology(self):
        for ns in (CLI, MID, SRV):
            self.netns(ns)
        self.veth(CLI, V_CLI, MID, V_MA)
        self.veth(MID, V_MB, SRV, V_SRV)
        self.addr(CLI, V_CLI, f"{CLIENT}/24")
        self.addr(MID, V_MA, f"{MID_A}/24")
        self.addr(MID, V_MB, f"{MID_B}/24")
        self.addr(SRV, V_SRV, f"{SERVER}/24")
        L.run("ip", "-n", CLI, "route", "add", "default", "via", MID_A)
        L.run("ip", "-n", SRV, "route", "add", "default", "via", MID_B)
        L.run("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=MID)

    def certs(self):
        d = os.path.join(self.work, "certs")
        os.makedirs(d)
        for name, cn in (("mx", "mx.lab.example"), ("relay", "relay.lab.example")):
            L.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key",
                  "-out", f"{d}/{name}.pem", "-days", "3650", "-subj", f"/CN={cn}",
                  "-addext", f"subjectAltName=DNS:{cn}")
        self.certdir = d

    def servers(self):
        c = self.certdir
        self.postfix(SRV, "postfix-srv", {
            "myhostname": "mx.lab.example", "mydestination": "lab.example", "local_recipient_maps": "",
            "local_transport": "discard:", "default_transport": "discard:", "relay_transport": "discard:",
            "smtpd_tls_cert_file": f"{c}/mx.pem", "smtpd_tls_key_file": f"{c}/mx.key",
            "smtpd_tls_security_level": "may",
        }, [(f"{SERVER}:25", [])])

    def relay(self):
        """Postfix in the middle: accepts STARTTLS with its own certificate, relays every message
        over a second STARTTLS session (TLS 1.2, so the certificate is in clear) to the server."""
        c = self.certdir
        self.pf_relay = self.postfix(MID, "postfix-relay", {
            "myhostname": "relay.lab.example", "mydestination": "", "relayhost": f"[{SERVER}]:25",
            "smtpd_tls_cert_file": f"{c}/relay.pem", "smtpd_tls_key_file": f"{c}/relay.key",
            "smtpd_tls_security_level": "may", "smtp_tls_security_level": "encrypt",
            "smtp_tls_protocols": "!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3",
            # security level encrypt reads the mandatory list
            "smtp_tls_mandatory_protocols": "!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3", "smtp_bind_address": MID_B,
            # Postfix prefers anonymous ciphers when it does not verify: no certificate would cross
            "smtp_tls_mandatory_exclude_ciphers": "aNULL",
            "queue_run_delay": "1s",
        }, [(f"{MID_A}:25", [])])

    def up(self):
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        os.chmod(self.work, 0o755)
        self.topology()
        self.certs()
        self.servers()
        L.log(f"up: namespaces {CLI} {MID} {SRV}; work dir {self.work}")

    def client(self, mode, server, *opts, timeout=60):
        p = L.run(PY, f"{HERE}/client.py", mode, server, *opts, ns=CLI, timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def swaks(self, server, *opts, timeout=60):
        host, port = server.rsplit(":", 1)
        p = L.run("swaks", "--server", host, "--port", port, "--from", "carol@lab.example", "--to",
                  "dave@lab.example", "--timeout", "20", *opts, ns=CLI, timeout=timeout, stdin=L.subprocess.DEVNULL)
        return p.stdout

    def sent_count(self):
        return open(f"{self.pf_relay}/maillog").read().count("status=sent")


class TwoPoint:
    """tcpdump at both points at once: a on the client's veth, b on the server's."""

    def __init__(self, lab, base):
        self.caps = [L.Capture.__new__(L.Capture) for _ in range(2)]
        for cap, ns, iface, side in zip(self.caps, (CLI, SRV), (V_CLI, V_SRV), "ab"):
            cap.lab, cap.path, cap.snaplen, cap.ns, cap.iface = lab, f"{base}-{side}.pcap", None, ns, iface
            cap.p, cap.done = None, False

    def start(self):
        for c in self.caps:
            c.start()

    def stop(self):
        for c in self.caps:
            c.stop()


def sc_transparent(lab):
    lab.client("starttls", f"{SERVER}:25", "--helo", "transparent-tls.lab.example", "--sni", "mx.lab.example")
    lab.client("plain", f"{SERVER}:25", "--helo", "transparent-plain.lab.example", "--messages", "2")
    return {"sessions": 2, "note": "routing only; STARTTLS/TLS 1.3 and a plaintext session with two messages"}


def sc_asa(lab):
    p = lab.spawn("asa-nfqueue", [PY, f"{HERE}/asa_nfqueue.py", "--port", "25"], ns=MID, ready="^ready")
    try:
        out = lab.swaks(f"{SERVER}:25", "--ehlo", "asa-swaks.lab.example", "-tlso")
        if "XXXXXXXA" not in out:
            raise L.LabError(f"the rewriter did not mask STARTTLS:\n{out}")
        r = lab.client("insist", f"{SERVER}:25", "--helo", "asa-insist.lab.example")
        if r.get("upgrade_reply") != 500:
            raise L.LabError(f"the server did not answer the X'd STARTTLS with 500: {r}")
    finally:
        time.sleep(0.5)
        lab.stop(p)
    rewrites = open(os.path.join(lab.work, "logs", "asa-nfqueue.log")).read().split()
    return {"sessions": 2, "rewrites": {k: rewrites.count(k) for k in ("banner", "ehlo", "command")},
            "note": "swaks -tlso sees XXXXXXXA and sends in clear; smtplib sends STARTTLS anyway, the rewriter "
                    "turns it into XXXXXXXX, Postfix answers 500, the client carries on in clear"}


def sc_nat(lab):
    L.run("nft", "-f", "-", ns=MID, input=(
        "table ip sdnat {\n"
        " chain sdpost { type nat hook postrouting priority 100; oifname \"%s\" masquerade; }\n"
        " chain sdclamp { type filter hook forward priority 0; tcp flags syn tcp option maxseg size set 1200; }\n"
        "}\n" % V_MB))
    try:
        lab.client("plain", f"{SERVER}:25", "--helo", "nat-client.lab.example")
    finally:
        L.run("nft", "delete", "table", "ip", "sdnat", ns=MID)
    return {"sessions": 1, "note": f"masquerade to {MID_B} and MSS clamped to 1200 on both SYNs"}


def sc_proxy(lab):
    p = lab.spawn("strip-proxy", [PY, f"{HERE}/strip_proxy.py", "--listen", f"{MID_A}:25", "--upstream",
                                  f"{SERVER}:25"], ns=MID, ready="^listening")
    try:
        r = lab.client("insist", f"{MID_A}:25", "--helo", "proxy-insist.lab.example")
        if r.get("upgrade_reply") != 500:
            raise L.LabError(f"the proxy did not answer STARTTLS 500: {r}")
    finally:
        lab.stop(p)
    return {"sessions": 1, "note": "the proxy masks STARTTLS as XXXXXXXA and answers the client's STARTTLS 500 "
                                   "itself; the server never sees it"}


def sc_tls_relay(lab):
    lab.relay()
    before = lab.sent_count()
    lab.client("starttls", f"{MID_A}:25", "--helo", "relay-client.lab.example", "--tls-max", "1.2")
    deadline = time.monotonic() + 60
    while lab.sent_count() < before + 1:
        if time.monotonic() > deadline:
            raise L.LabError("the relay did not deliver:\n" + open(f"{lab.pf_relay}/maillog").read())
        time.sleep(0.2)
    return {"sessions": 1, "note": "client STARTTLS TLS 1.2 to the relay (CN=relay.lab.example); the relay's "
                                   "STARTTLS TLS 1.2 to the server (CN=mx.lab.example)"}


SCENARIOS = {"transparent": sc_transparent, "asa": sc_asa, "nat": sc_nat, "proxy": sc_proxy,
             "tls-relay": sc_tls_relay}


def cmd_captures(outdir, only):
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-difflab-")
    lab = DiffLab(work)
    ok = False

    def on_signal(sig, _):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    manifest = []
    try:
        lab.up()
        for name, fn in SCENARIOS.items():
            if only and name not in only:
                continue
            L.log(f"scenario {name}")
            cap = TwoPoint(lab, os.path.join(work, name))
            cap.start()
            info = fn(lab)
            cap.stop()
            for side in "ab":
                shutil.copy(f"{work}/{name}-{side}.pcap", outdir)
            manifest.append({"scenario": name, **info})
        with open(os.path.join(outdir, "diff-manifest.jsonl"), "w") as f:
            f.writelines(json.dumps(m) + "\n" for m in manifest)
        ok = True
    finally:
        if not ok:
            L.log("FAILED; logs follow")
            lab.dump_logs()
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        sys.exit("diff_lab.py: needs root (network namespaces, tcpdump)")
    args = sys.argv[1:]
    if args[:1] != ["captures"] or len(args) < 2 or any(a not in SCENARIOS for a in args[2:]):
        sys.exit(__doc__)
    try:
        cmd_captures(args[1], set(args[2:]))
    except L.LabError as e:
        sys.exit(f"diff_lab.py: {e}")


if __name__ == "__main__":
    main()
