#!/usr/bin/env python3
"""Two real SMTP sessions on 127.0.0.1:PORT for the live-capture test: Python's stdlib smtpd
server (no STARTTLS) and smtplib as the client.
  session 1: EHLO, one message, QUIT                        -> plaintext
  session 2: EHLO, STARTTLS (refused by smtpd), message, QUIT -> starttls-refused
usage: loopback_smtp.py PORT"""
import smtplib, sys, threading, time, warnings

warnings.simplefilter("ignore", DeprecationWarning)
import asyncore, smtpd  # noqa: E402  (stdlib in 3.11; deprecated, still the real thing)

port = int(sys.argv[1])


class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        return None  # 250 OK


server = Sink(("127.0.0.1", port), None, decode_data=False)
threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.1}, daemon=True).start()
msg = b"Subject: live test\r\n\r\nhello over loopback\r\n"

with smtplib.SMTP("127.0.0.1", port, local_hostname="live-client.example") as c:
    c.ehlo()
    c.sendmail("alice@contoso.com", ["bob@fabrikam.com"], msg)
time.sleep(0.2)
with smtplib.SMTP("127.0.0.1", port, local_hostname="live-client.example") as c:
    c.ehlo()
    code, _ = c.docmd("STARTTLS")
    assert code >= 500, code
    c.sendmail("alice@contoso.com", ["bob@fabrikam.com"], msg)
time.sleep(0.2)
server.close()
