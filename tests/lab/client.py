#!/usr/bin/env python3
"""SMTP client sessions for the lab, on Python's smtplib (plus raw sends where smtplib has no
verb: X-ANONYMOUSTLS, X-EXPS, BDAT, command injection). Each run is one TCP session; it prints
one JSON line saying what it did (replies, TLS version, cipher), and fails loudly when the server
did not answer as the scenario needs.

usage: client.py MODE HOST:PORT [--bind ADDR[:PORT]] [--helo NAME] [--sni NAME] [--tls-max 1.2]
                 [--size BYTES] [--messages N] [--wait-file PATH] [--timeout S]
modes:
  plain         EHLO, messages in clear, QUIT
  starttls      EHLO, STARTTLS, EHLO, messages inside TLS, QUIT, close_notify
  xanon         EHLO, X-ANONYMOUSTLS (Exchange), EHLO, X-EXPS, BDAT inside TLS, QUIT
  exps          EHLO, X-EXPS GSSAPI in clear (SuppressXAnonymousTls hubs), BDAT in clear, QUIT
  insist        EHLO, STARTTLS even though not offered; on a refusal carries on in clear
  inject        EHLO, `STARTTLS\\r\\nNOOP\\r\\n` in one segment (CVE-2011-0411 style), TLS, QUIT
  bdat          EHLO, MAIL + RCPT + BDAT LAST + body pipelined in one write, QUIT
  pause         EHLO, waits for --wait-file to exist, then as plain
--wait-file also parks starttls/xanon after the EHLO inside TLS (prints `paused` when parked)
"""
import argparse
import base64
import json
import os
import smtplib
import socket
import ssl
import sys
import time

FROM = "alice@{d}"
TO = "bob@lab.example"


def message(n, size, helo):
    hdr = (f"From: alice@{helo}\r\nTo: {TO}\r\nSubject: smtpscope lab message {n}\r\n"
           f"Message-ID: <lab-{n}-{os.getpid()}@{helo}>\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    line = "The quick brown fox jumps over the lazy dog; smtpscope lab filler text.\r\n"
    body = (line * (max(size - len(hdr), 0) // len(line) + 1))[: max(size - len(hdr), 2)]
    if not body.endswith("\r\n"):
        body = body[:-2] + "\r\n"
    return (hdr + body).encode()


def tls_context(tls_max):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls_max == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Client(smtplib.SMTP):
    def upgrade(self, verb, ctx, sni):
        code, text = self.docmd(verb)
        if code != 220:
            return code
        # sni None: no server_name extension (smtplib would send none for an IP literal anyway)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        self.file = None
        self.helo_resp = self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        return code

    def tls_quit(self):
        """QUIT, then close_notify both ways before the TCP FIN (smtplib's quit() only closes)."""
        code, _ = self.docmd("QUIT")
        if self.file:
            self.file.close()
        raw = self.sock.unwrap()
        self.file = self.sock = None
        raw.close()
        return code

    def bdat(self, msg):
        self.send(f"BDAT {len(msg)} LAST\r\n".encode() + msg)
        return self.getreply()[0]

    def exps(self):
        token = base64.b64encode(b"NTLMSSP\x00\x01\x00\x00\x00" + os.urandom(24)).decode()
        return self.docmd("X-EXPS", f"GSSAPI {token}")[0]


def hold(a):
    """Parks the session (says so on stdout) until --wait-file exists."""
    if not a.wait_file:
        sys.exit("client.py: this mode needs --wait-file")
    print("paused", flush=True)
    deadline = time.monotonic() + a.timeout
    while not os.path.exists(a.wait_file):
        if time.monotonic() > deadline:
            sys.exit(f"client.py: {a.wait_file} did not appear")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("server")
    ap.add_argument("--bind")
    ap.add_argument("--helo", default="client.lab.example")
    ap.add_argument("--sni")
    ap.add_argument("--tls-max")
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--messages", type=int, default=1)
    ap.add_argument("--wait-file")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    src = None
    if a.bind:
        bh, _, bp = a.bind.partition(":")
        src = (bh, int(bp or 0))
    report = {"mode": a.mode, "server": a.server}
    c = Client(host, int(port), local_hostname=a.helo, timeout=a.timeout, source_address=src)
    report["client"] = "%s:%d" % c.sock.getsockname()[:2]
    code, _ = c.ehlo()
    report["ehlo"] = code
    report["offered"] = sorted(k.upper() for k in c.esmtp_features)
    ctx = tls_context(a.tls_max)
    tls = False
    mail = lambda: [c.sendmail(FROM.format(d=a.helo), [TO], message(n, a.size, a.helo)) for n in range(a.messages)]

    if a.mode == "plain":
        mail()
    elif a.mode == "pause":
        hold(a)
        mail()
    elif a.mode in ("starttls", "xanon"):
        verb = "STARTTLS" if a.mode == "starttls" else "X-ANONYMOUSTLS"
        report["upgrade_reply"] = c.upgrade(verb, ctx, a.sni)
        if report["upgrade_reply"] != 220:
            sys.exit(f"client.py: {verb} answered {report['upgrade_reply']}")
        tls = True
        c.ehlo()
        if a.wait_file:
            hold(a)
        if a.mode == "xanon":
            report["exps"] = c.exps()
            c.mail(FROM.format(d=a.helo))
            c.rcpt(TO)
            report["bdat"] = c.bdat(message(0, a.size, a.helo))
        else:
            mail()
    elif a.mode == "exps":
        report["exps"] = c.exps()
        for n in range(a.messages):
            c.mail(FROM.format(d=a.helo))
            c.rcpt(TO)
            report["bdat"] = c.bdat(message(n, a.size, a.helo))
    elif a.mode == "insist":
        report["upgrade_reply"] = c.docmd("STARTTLS")[0]
        if report["upgrade_reply"] == 220:
            sys.exit("client.py: STARTTLS was accepted; this mode wants a refusal")
        mail()
    elif a.mode == "inject":
        c.send(b"STARTTLS\r\nNOOP\r\n")
        report["upgrade_reply"] = c.getreply()[0]
        if report["upgrade_reply"] != 220:
            sys.exit(f"client.py: STARTTLS answered {report['upgrade_reply']}")
        c.sock = ctx.wrap_socket(c.sock, server_hostname=a.sni)
        c.file = None
        tls = True
        c.ehlo()
    elif a.mode == "bdat":
        msg = message(0, a.size, a.helo)
        c.send(f"MAIL FROM:<{FROM.format(d=a.helo)}>\r\nRCPT TO:<{TO}>\r\nBDAT {len(msg)} LAST\r\n".encode() + msg)
        report["pipelined"] = [c.getreply()[0] for _ in range(3)]
        if report["pipelined"] != [250, 250, 250]:
            sys.exit(f"client.py: pipelined replies {report['pipelined']}")
    else:
        sys.exit(f"client.py: unknown mode {a.mode}")

    if tls:
        report["tls_version"] = c.sock.version()
        report["cipher"] = c.sock.cipher()[0]
        report["quit"] = c.tls_quit()
    else:
        report["quit"] = c.quit()[0]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
