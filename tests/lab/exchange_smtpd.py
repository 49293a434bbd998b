#!/usr/bin/env python3
"""An Exchange-style SMTP receive connector, stdlib only (asyncio streams + ssl), for what
Postfix cannot do: the hub-to-hub dialect of Exchange Server.

  exchange    EHLO offers STARTTLS and X-ANONYMOUSTLS (hub receive connector, default)
  suppressed  the same without X-ANONYMOUSTLS (SuppressXAnonymousTls): hubs authenticate
              with X-EXPS in clear; STARTTLS stays offered
  plain       neither upgrade verb offered

Both verbs are answered `220 2.0.0 SMTP server ready`, then the connection is upgraded with
StreamWriter.start_tls (TLS 1.2, as Exchange 2016 hubs negotiate; the certificate is visible).
X-EXPS is accepted with or without an initial response (one 334 round), MAIL/RCPT/DATA/BDAT/
RSET/NOOP/QUIT as Exchange words them. Bodies are counted and discarded.

usage: exchange_smtpd.py --cert C --key K --listen ADDR:PORT:MODE[:HOSTNAME] [--listen ...]
                         [--name HOST]      (IPv4 addresses; HOSTNAME defaults to --name)
Prints `listening ADDR:PORT MODE` per listener, then one line per accepted message.
"""
import argparse
import asyncio
import signal
import ssl
import sys
import time

MODES = ("exchange", "suppressed", "plain")


def ehlo_lines(host, peer, mode, tls):
    lines = [f"{host} Hello [{peer}]", "SIZE 37748736", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES"]
    if not tls and mode != "plain":
        lines.append("STARTTLS")
        if mode == "exchange":
            lines.append("X-ANONYMOUSTLS")
    lines += ["AUTH NTLM", "X-EXPS GSSAPI NTLM", "8BITMIME", "BINARYMIME", "CHUNKING", "XEXCH50",
              "XRDST", "XSHADOWREQUEST"]
    return lines


class Session:
    def __init__(self, srv, reader, writer, mode, name):
        self.srv, self.r, self.w, self.mode, self.name = srv, reader, writer, mode, name
        self.tls = False
        self.peer = writer.get_extra_info("peername")[0]
        self.rcpts = 0

    async def reply(self, *lines):
        out = b"".join(
            f"{code}{'-' if i + 1 < len(lines) else ' '}{text}\r\n".encode()
            for i, (code, text) in enumerate(lines))
        self.w.write(out)
        await self.w.drain()

    async def ehlo(self, verb):
        if verb == "HELO":
            return await self.reply((250, f"{self.name} Hello [{self.peer}]"))
        ls = ehlo_lines(self.name, self.peer, self.mode, self.tls)
        await self.reply(*[(250, l) for l in ls])

    async def upgrade(self, verb):
        offered = (verb == "STARTTLS" and self.mode != "plain") or \
                  (verb == "X-ANONYMOUSTLS" and self.mode == "exchange")
        if self.tls or not offered:
            return await self.reply((500, "5.3.3 Unrecognized command"))
        await self.reply((220, "2.0.0 SMTP server ready"))
        await self.w.start_tls(self.srv.ctx)
        self.tls = True

    async def read_exact(self, n):
        await self.r.readexactly(n)

    async def run(self):
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        await self.reply((220, f"{self.name} Microsoft ESMTP MAIL Service ready at {stamp}"))
        while True:
            line = await self.r.readline()
            if not line:
                return
            text = line.decode("latin-1").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                await self.ehlo(verb)
            elif verb in ("STARTTLS", "X-ANONYMOUSTLS"):
                await self.upgrade(verb)
            elif verb == "X-EXPS":
                mech, _, initial = arg.partition(" ")
                if not initial:
                    await self.reply((334, ""))
                    await self.r.readline()
                await self.reply((235, "2.7.0 Authentication successful"))
            elif verb == "MAIL":
                self.rcpts = 0
                await self.reply((250, "2.1.0 Sender OK"))
            elif verb == "RCPT":
                self.rcpts += 1
                await self.reply((250, "2.1.5 Recipient OK"))
            elif verb == "DATA":
                await self.reply((354, "Start mail input; end with <CRLF>.<CRLF>"))
                size = 0
                while True:
                    l = await self.r.readline()
                    if not l or l == b".\r\n":
                        break
                    size += len(l)
                await self.queued(size)
            elif verb == "BDAT":
                parts = arg.split()
                n = int(parts[0]) if parts and parts[0].isdigit() else 0
                await self.read_exact(n)
                if len(parts) > 1 and parts[1].upper() == "LAST":
                    await self.queued(n)
                else:
                    await self.reply((250, f"2.0.0 BDAT {n} bytes received"))
            elif verb == "RSET":
                await self.reply((250, "2.0.0 Resetting"))
            elif verb == "NOOP":
                await self.reply((250, "2.0.0 OK"))
            elif verb == "QUIT":
                await self.reply((221, "2.0.0 Service closing transmission channel"))
                return
            else:
                await self.reply((500, "5.3.3 Unrecognized command"))

    async def queued(self, size):
        self.srv.messages += 1
        print(f"msg {self.srv.messages} to={self.name} from={self.peer} bytes={size} tls={self.tls}", flush=True)
        await self.reply((250, f"2.6.0 <{self.srv.messages}@{self.name}> Queued mail for delivery"))


class Server:
    def __init__(self, name, ctx):
        self.name, self.ctx, self.messages = name, ctx, 0

    def handler(self, mode, name):
        async def handle(reader, writer):
            try:
                await Session(self, reader, writer, mode, name).run()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
                print(f"session ended: {e!r}", file=sys.stderr, flush=True)
            finally:
                try:
                    writer.close()
                    await writer.wait_closed()
                except (ConnectionError, ssl.SSLError):
                    pass
        return handle


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--name", default="EXHUB01.contoso.com")
    ap.add_argument("--listen", action="append", required=True, help="ADDR:PORT:MODE")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    srv = Server(a.name, ctx)
    servers = []
    for spec in a.listen:
        addr, port, mode, name = (spec.split(":") + [a.name])[:4]
        if mode not in MODES:
            sys.exit(f"exchange_smtpd.py: unknown mode {mode!r} (one of {', '.join(MODES)})")
        servers.append(await asyncio.start_server(srv.handler(mode, name), addr, int(port), reuse_address=True))
        print(f"listening {addr}:{port} {mode}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main())
