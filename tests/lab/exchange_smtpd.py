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

With --protocol-log FILE it writes an SmtpReceive protocol log as Exchange 2013+ does with
Verbose logging, using only line shapes that occur in the real sample
../shared/logs/exchange/recv-2013plus-starttls-tls12-oneline-cert.log (cited per shape below as
"sample line N"); two shapes have no real sample and are marked INFERRED: `<,X-ANONYMOUSTLS,`
(same code path and reply as STARTTLS) and the `-` disconnect line (documented, not sampled).

usage: exchange_smtpd.py --cert C --key K --listen ADDR:PORT:MODE[:HOSTNAME] [--listen ...]
                         [--name HOST] [--protocol-log FILE]
                         (IPv4 addresses; HOSTNAME defaults to --name)
Prints `listening ADDR:PORT MODE` per listener, then one line per accepted message.
"""
import argparse
import asyncio
import datetime
import hashlib
import itertools
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


def csv_field(v):
    # sample lines 1 and 7: a field is quoted only when it holds a comma
    return f'"{v}"' if "," in v else v


class ProtocolLog:
    """SmtpReceive protocol log lines, in the real sample's shapes."""

    HEADER = ("#Software: Microsoft Exchange Server\n#Version: 15.0.0.0\n#Log-type: SMTP Receive Protocol Log\n"
              "#Date: {date}\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
              "remote-endpoint,event,data,context\n")   # sample lines 1-5 (header)

    def __init__(self, path, cert):
        self.f = open(path, "w", encoding="utf-8")
        self.f.write(self.HEADER.format(date=self.now()))
        self.ids = itertools.count(0x08DE5A0000000001)
        info = ssl._ssl._test_decode_cert(cert)
        der = ssl.PEM_cert_to_DER_cert(open(cert).read())
        dn = lambda rdns: " ".join(f"{'CN' if k == 'commonName' else k}={v}" for rdn in rdns for k, v in rdn)  # noqa: E731
        iso = lambda t: datetime.datetime.strptime(t, "%b %d %H:%M:%S %Y %Z").strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
        sans = ";".join(v for k, v in info.get("subjectAltName", ()) if k == "DNS")
        # sample line 6: the one-line certificate form, data = " Subject Issuer Serial Thumbprint NotBefore NotAfter SANs"
        self.cert_data = " ".join(["", dn(info["subject"]), dn(info["issuer"]), info["serialNumber"].upper(),
                                   hashlib.sha1(der).hexdigest().upper(), iso(info["notBefore"]),
                                   iso(info["notAfter"]), sans])

    @staticmethod
    def now():
        t = datetime.datetime.now(datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    def session(self):
        return f"{next(self.ids):016X}"

    def line(self, conn, sid, seq, local, remote, event, data, context=""):
        self.f.write(f"{self.now()},{conn},{sid},{seq},{local},{remote},{event},{csv_field(data)},{csv_field(context)}\n")
        self.f.flush()


class Session:
    def __init__(self, srv, reader, writer, mode, name):
        self.srv, self.r, self.w, self.mode, self.name = srv, reader, writer, mode, name
        self.tls = False
        self.peer = writer.get_extra_info("peername")[0]
        self.rcpts = 0
        self.log = srv.log
        if self.log:
            self.sid, self.seq = self.log.session(), 0
            sock, peer = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
            self.ends = (f"{sock[0]}:{sock[1]}", f"{peer[0]}:{peer[1]}")
            self.conn = f"{name.split('.')[0]}\\Default {name.split('.')[0]}"

    def logged(self, event, data, context=""):
        if self.log:
            self.seq += 1
            self.log.line(self.conn, self.sid, self.seq, *self.ends, event, data, context)

    async def reply(self, *lines):
        out = b"".join(
            f"{code}{'-' if i + 1 < len(lines) else ' '}{text}\r\n".encode()
            for i, (code, text) in enumerate(lines))
        if len(lines) > 1:
            # sample line 3: a multi-line (EHLO) reply is logged as one line, "250 " then the
            # lines joined by spaces (hence the double space after the code)
            self.logged(">", f"{lines[0][0]}  " + " ".join(t for _, t in lines))
        else:
            self.logged(">", f"{lines[0][0]} {lines[0][1]}")   # sample lines 1, 5, 14
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
        if self.log:
            # sample line 6: the certificate the server sends, one-line form
            self.logged("*", self.log.cert_data, "Sending certificate Subject Issuer name Serial number Thumbprint "
                        "Not before Not after Subject alternate names")
        await self.w.start_tls(self.srv.ctx)
        self.tls = True
        if self.log:
            so = self.w.get_extra_info("ssl_object")
            proto = {"TLSv1": "TLS1_0", "TLSv1.1": "TLS1_1", "TLSv1.2": "TLS1_2", "TLSv1.3": "TLS1_3"}.get(so.version(), "TLS1_2")
            cipher = so.cipher()[0]
            bulk = "CALG_AES_256" if "AES256" in cipher or "AES_256" in cipher else "CALG_AES_128"
            bits = 256 if bulk == "CALG_AES_256" else 128
            mac = "CALG_SHA_384" if cipher.endswith("SHA384") else "CALG_SHA_256"
            # sample line 7: the success line, quoted (it holds commas), in the context field
            self.logged("*", "", f"TLS protocol SP_PROT_{proto}_SERVER negotiation succeeded using bulk encryption "
                        f"algorithm {bulk} with strength {bits} bits, MAC hash algorithm {mac} with strength 0 bits "
                        "and key exchange algorithm CALG_ECDH_EPHEM with strength 256 bits")

    async def read_exact(self, n):
        await self.r.readexactly(n)

    async def run(self):
        try:
            await self.dialogue()
        finally:
            # INFERRED: the `-` line (documented in ../shared/logs/README.md, not in the sample)
            self.logged("-", "", "Remote" if not self.closed_by_quit else "QuitVerb")

    closed_by_quit = False

    async def dialogue(self):
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        await self.reply((220, f"{self.name} Microsoft ESMTP MAIL Service ready at {stamp}"))
        while True:
            line = await self.r.readline()
            if not line:
                return
            text = line.decode("latin-1").rstrip("\r\n")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            # sample lines 2, 4, 8, 12: what the client sent, as sent (INFERRED for X-ANONYMOUSTLS);
            # an authentication command without its initial response (sample line 12: `AUTH LOGIN`)
            self.logged("<", " ".join(text.split()[:2]) if verb in ("AUTH", "X-EXPS") else text)
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
                self.closed_by_quit = True
                return
            else:
                await self.reply((500, "5.3.3 Unrecognized command"))

    async def queued(self, size):
        self.srv.messages += 1
        print(f"msg {self.srv.messages} to={self.name} from={self.peer} bytes={size} tls={self.tls}", flush=True)
        await self.reply((250, f"2.6.0 <{self.srv.messages}@{self.name}> Queued mail for delivery"))


class Server:
    def __init__(self, name, ctx, log=None):
        self.name, self.ctx, self.messages, self.log = name, ctx, 0, log

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
    ap.add_argument("--protocol-log", help="write an SmtpReceive protocol log here")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    srv = Server(a.name, ctx, ProtocolLog(a.protocol_log, a.cert) if a.protocol_log else None)
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
