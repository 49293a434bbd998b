#!/usr/bin/env python3
"""Two TUN devices in two network namespaces, joined by this process: every IP packet one
namespace routes into its TUN device comes out of the other's. A capture on either device is
raw IP (no link header: LINKTYPE_RAW), as on a VPN or tunnel interface. Stdlib only (ctypes
for setns, which Python 3.11's os module lacks).

usage: tun_bridge.py NETNS_A DEV_A NETNS_B DEV_B
Prints `ready` once both devices exist (the caller then gives them addresses); runs until
SIGTERM/SIGINT.
"""
import ctypes
import fcntl
import os
import select
import signal
import struct
import sys

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

libc = ctypes.CDLL(None, use_errno=True)


def enter(netns):
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns({netns}): {os.strerror(e)}")
    finally:
        os.close(fd)


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    ns_a, dev_a, ns_b, dev_b = sys.argv[1:]
    enter(ns_a)
    fa = tun(dev_a)
    enter(ns_b)
    fb = tun(dev_b)
    peer = {fa: fb, fb: fa}
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    n = 0
    while running:
        try:
            ready, _, _ = select.select([fa, fb], [], [], 0.2)
        except InterruptedError:
            continue
        for fd in ready:
            pkt = os.read(fd, 65535)
            try:
                os.write(peer[fd], pkt)
                n += 1
            except OSError as e:  # the other device is down (not yet configured)
                print(f"write: {e}", file=sys.stderr, flush=True)
    print(f"{n} packets bridged", flush=True)


if __name__ == "__main__":
    main()
