#!/usr/bin/env python3
"""One real SMTP session with hostile strings, for captures/hostile-strings.pcap: an aiosmtpd
server whose greeting host name carries terminal escape sequences, a BEL and a bidi override,
and a Python smtplib client whose EHLO name carries ESC/CSI sequences, a C1 control,
a bidi override and an invalid UTF-8 byte (sent as raw bytes, as a hostile client would).
usage: hostile_smtp.py PORT   (run with a python that has aiosmtpd)"""
import smtplib, sys, time

from aiosmtpd.controller import Controller

port = int(sys.argv[1])


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK queued"


host = "mx\x1b[2J\x1b]0;owned\x07.example \u202eevil"
ctl = Controller(Sink(), hostname="127.0.0.1", port=port, server_hostname=host, enable_SMTPUTF8=True)
ctl.start()
# The controller's own start-up probe has connected by now: tell the capture to start, then wait.
print("ready", flush=True)
sys.stdin.readline()
try:
    c = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example")
    c.send(b"EHLO evil\x1b[31m\xc2\x9bhost\xe2\x80\xae\xff\r\n")
    c.getreply()
    c.send(b"MAIL FROM:<attacker@bad.example>\r\n")
    c.getreply()
    c.send(b"RCPT TO:<postmaster@mx.example>\r\n")
    c.getreply()
    c.send(b"DATA\r\n")
    c.getreply()
    c.send(b"Subject: \x1b[2Jhello\r\n\r\nbody\r\n.\r\n")
    c.getreply()
    c.quit()
    time.sleep(0.2)
finally:
    ctl.stop()
