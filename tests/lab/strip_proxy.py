#!/usr/bin/env python3
"""A STARTTLS-stripping SMTP proxy, stdlib only, behaving as Cisco ASA ESMTP inspection does:
in the server's EHLO reply `STARTTLS` is overwritten with `XXXXXXXA` (same length), and a
client's STARTTLS is not passed on but answered `500 5.5.1 Command unrecognized`. Everything
else, including whatever the client sends after that (an opportunistic client carries on in
clear; `openssl s_client` starts a handshake anyway), is relayed unchanged.

usage: strip_proxy.py --listen ADDR:PORT --upstream ADDR:PORT
"""
import argparse
import asyncio
import re
import signal
import sys

OFFER = re.compile(rb"^(250[ -])STARTTLS(\s*)$", re.I)


async def server_to_client(up, down):
    while True:
        line = await up.readline()
        if not line:
            break
        m = OFFER.match(line)
        if m:
            line = m.group(1) + b"XXXXXXXA" + m.group(2)
        down.write(line)
        await down.drain()
    down.write_eof()


async def client_to_server(cr, cw, uw):
    in_data = False
    while True:
        line = await cr.readline()
        if not line:
            uw.write_eof()
            return
        if not in_data and line.strip().upper() == b"STARTTLS":
            cw.write(b"500 5.5.1 Command unrecognized\r\n")
            await cw.drain()
            break
        if not in_data and line.strip().upper() == b"DATA":
            in_data = True
        elif in_data and line == b".\r\n":
            in_data = False
        uw.write(line)
        await uw.drain()
    # after the refusal the client's bytes go through as they come (an opportunistic client
    # carries on in clear; one that insists starts a TLS handshake the server cannot parse)
    while True:
        chunk = await cr.read(65536)
        if not chunk:
            uw.write_eof()
            return
        uw.write(chunk)
        await uw.drain()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    a = ap.parse_args()
    lhost, lport = a.listen.rsplit(":", 1)
    uhost, uport = a.upstream.rsplit(":", 1)

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection(uhost, int(uport))
        except OSError as e:
            print(f"upstream: {e}", file=sys.stderr, flush=True)
            cw.close()
            return
        try:
            # each direction passes its EOF on (half-close), then both sockets are closed
            await asyncio.gather(server_to_client(ur, cw), client_to_server(cr, cw, uw))
        except (ConnectionError, OSError):
            pass
        for w in (cw, uw):
            try:
                w.close()
                await w.wait_closed()
            except (ConnectionError, OSError):
                pass

    srv = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True)
    print(f"listening {lhost}:{lport} -> {uhost}:{uport}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    srv.close()


if __name__ == "__main__":
    asyncio.run(main())
