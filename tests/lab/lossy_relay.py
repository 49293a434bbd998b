#!/usr/bin/env python3
"""A user-space stand-in for netem (this kernel has no netem qdisc): bridges two interfaces
with raw AF_PACKET sockets, delaying each frame by a random amount (which reorders them),
and dropping some TCP segments that carry payload. ARP and handshake segments always pass, so
the sessions still complete, through retransmissions. Stdlib only; run it in a namespace of
its own, between two veth pairs.

usage: lossy_relay.py IF_A IF_B [--loss 0.04] [--delay-ms 1] [--jitter-ms 12] [--seed 7]
Prints `relaying IF_A <-> IF_B` once both sockets are bound; on exit, counts per direction.
"""
import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def tcp_payload_len(frame):
    """Payload length of an IPv4/TCP frame (Ethernet, no VLAN), else None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    off = 14 + ihl
    if len(frame) < off + 13:
        return None
    doff = (frame[off + 12] >> 4) * 4
    return total - ihl - doff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--loss", type=float, default=0.04)
    ap.add_argument("--delay-ms", type=float, default=1.0)
    ap.add_argument("--jitter-ms", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    socks = {}
    for name in (a.a, a.b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    other = {a.a: socks[a.b], a.b: socks[a.a]}
    stats = {n: {"in": 0, "dropped": 0, "reordered": 0} for n in socks}
    last_release = {n: 0.0 for n in socks}
    queue = []  # (release time, seq, out socket, frame)
    seq = 0
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"relaying {a.a} <-> {a.b}", flush=True)
    fds = {s.fileno(): n for n, s in socks.items()}
    while running:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError as e:
                print(f"send: {e}", file=sys.stderr, flush=True)
        timeout = max(0.0, queue[0][0] - now) if queue else 0.2
        try:
            ready, _, _ = select.select(list(fds), [], [], timeout)
        except InterruptedError:
            continue
        for fd in ready:
            name = fds[fd]
            while True:
                try:
                    frame, addr = socks[name].recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own transmission on this interface
                st = stats[name]
                st["in"] += 1
                plen = tcp_payload_len(frame)
                if plen and rng.random() < a.loss:
                    st["dropped"] += 1
                    continue
                release = time.monotonic() + (a.delay_ms + (rng.random() * a.jitter_ms if plen else 0)) / 1000
                if release < last_release[name]:
                    st["reordered"] += 1
                last_release[name] = max(last_release[name], release)
                seq += 1
                heapq.heappush(queue, (release, seq, other[name], frame))
    for n, st in stats.items():
        print(f"from {n}: {st['in']} frames, {st['dropped']} dropped, {st['reordered']} overtaken", flush=True)


if __name__ == "__main__":
    main()
