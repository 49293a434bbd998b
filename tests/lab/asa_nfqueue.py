#!/usr/bin/env python3
"""An inline rewriter that edits SMTP as Cisco ASA/FTD ESMTP inspection does, on one TCP
connection end to end (unlike strip_proxy.py, which terminates TCP on both sides).

Run it in a namespace that routes between client and server. It queues forwarded TCP segments
to or from PORT through NFQUEUE (`iptables -j NFQUEUE`: this kernel has the xtables NFQUEUE
target, not nftables' `queue`) and edits the payload in place, byte lengths unchanged, so
sequence and acknowledgement numbers stay valid:
  - the banner (the server's first data, at its ISN + 1, when it starts `220`): every byte of
    its text after `220 ` becomes `*` except the characters `2` and `0`, as an ASA masks it;
  - in a server segment that starts `250`: a `250-STARTTLS` / `250 STARTTLS` line becomes
    `250-XXXXXXXA`;
  - a client segment that is the command `STARTTLS` alone becomes `XXXXXXXX` (the server
    answers it 500 5.5.1, as behind a real ASA).
Only the TCP checksum is recomputed. Each rewrite is logged on stdout as one line
(`rewrite banner|ehlo|command SRC > DST`) so a driver can check what was done. Matching is per
segment: enough for the lab's wire-sized segments (MTU 1500, each reply line in one segment);
an ASA reassembles first.

usage: asa_nfqueue.py [--port 25] [--queue-num 17]   (as root, inside the routing namespace)
Prints `ready` once the rule is in place; SIGTERM/SIGINT removes the rule and exits.
Needs python3 with NetfilterQueue (pip; builds against libnetfilter-queue-dev) and iptables.
"""
import argparse
import re
import signal
import struct
import subprocess
import sys

from netfilterqueue import NetfilterQueue

EHLO_OFFER = re.compile(rb"^(250[ -])STARTTLS(\r?)$", re.I | re.M)
CLIENT_STARTTLS = re.compile(rb"^STARTTLS\r?\n$", re.I)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mask_banner(payload):
    """`220 mx.example ESMTP` -> `220 **********` with 2s and 0s kept; line ends kept."""
    if not payload.startswith(b"220"):
        return payload
    head, text = payload[:4], payload[4:]
    body = text.rstrip(b"\r\n")
    tail = text[len(body):]
    masked = bytes(c if c in b"20\r\n" else ord("*") for c in body)
    return head + masked + tail


def mask_ehlo(payload):
    if not payload.startswith(b"250"):
        return payload
    return EHLO_OFFER.sub(lambda m: m.group(1) + b"XXXXXXXA" + m.group(2), payload)


def mask_command(payload):
    if CLIENT_STARTTLS.match(payload):
        return b"X" * 8 + payload[8:]
    return payload


class Rewriter:
    def __init__(self, port):
        self.port = port
        self.server_isn = {}     # (server addr, server port, client addr, client port) -> ISN

    def edit(self, raw):
        """Returns (new packet bytes, what was rewritten) or (None, None) when left alone."""
        if len(raw) < 20 or raw[0] >> 4 != 4 or raw[9] != 6:
            return None, None
        ihl = (raw[0] & 0x0F) * 4
        total = struct.unpack("!H", raw[2:4])[0]
        if len(raw) < total or total < ihl + 20:
            return None, None
        tcp = raw[ihl:total]
        doff = (tcp[12] >> 4) * 4
        if len(tcp) < doff:
            return None, None
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        src, dst = raw[12:16], raw[16:20]
        payload = tcp[doff:]
        if sport == self.port:
            key = (src, sport, dst, dport)
            if flags & 0x12 == 0x12:            # SYN-ACK: the server's ISN
                self.server_isn[key] = seq
                return None, None
            if not payload:
                return None, None
            isn = self.server_isn.get(key)
            if isn is not None and seq == (isn + 1) & 0xFFFFFFFF:
                new, what = mask_banner(payload), "banner"
            else:
                new, what = mask_ehlo(payload), "ehlo"
        elif dport == self.port and payload:
            new, what = mask_command(payload), "command"
        else:
            return None, None
        if new == payload:
            return None, None
        assert len(new) == len(payload)
        tcp = bytearray(tcp[:doff] + new)
        tcp[16:18] = b"\0\0"
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp[16:18] = struct.pack("!H", checksum(pseudo + bytes(tcp)))
        out = raw[:ihl] + bytes(tcp) + raw[total:]
        addr = lambda a, p: ".".join(str(b) for b in a) + f":{p}"
        return out, f"rewrite {what} {addr(src, sport)} > {addr(dst, dport)}"

    def __call__(self, pkt):
        try:
            new, what = self.edit(pkt.get_payload())
        except Exception as e:       # a bug here must not stall the connection silently
            print(f"error {e!r}", flush=True)
            new = what = None
        if new is not None:
            pkt.set_payload(new)
            print(what, flush=True)
        pkt.accept()


def iptables(op, port, queue):
    for flag in ("--dport", "--sport"):
        subprocess.run(["iptables", op, "FORWARD", "-p", "tcp", flag, str(port), "-j", "NFQUEUE",
                        "--queue-num", str(queue)], check=op != "-D", capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--queue-num", type=int, default=17)
    a = ap.parse_args()
    nfq = NetfilterQueue()
    nfq.bind(a.queue_num, Rewriter(a.port))
    iptables("-I", a.port, a.queue_num)

    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    try:
        nfq.run()
    except KeyboardInterrupt:
        pass
    finally:
        iptables("-D", a.port, a.queue_num)
        nfq.unbind()


if __name__ == "__main__":
    sys.exit(main())
