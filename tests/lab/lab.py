#!/usr/bin/env python3
"""The smtpscope lab: real SMTP software between network namespaces, driven by real clients,
with what every session was meant to be written down as it is run.

  lab.py captures OUTDIR          stand the lab up, capture every scenario into OUTDIR/<name>.pcap
                                  (one tcpdump per scenario) and write OUTDIR/lab-manifest.jsonl
  lab.py up STATEDIR              stand the lab up, write STATEDIR/lab.json, wait until stdin closes
                                  (or SIGTERM/SIGINT), tear down                (end-to-end test)
  lab.py drive STATEDIR MANIFEST  run the live scenarios against a lab that `up` holds; write what
                                  each session was meant to be to MANIFEST       (end-to-end test)

Hosts (namespaces named with a per-run suffix, removed on exit, also on failure):
  sl-cli-N  clients: 10.232.0.1 (direct veth), 10.232.1.1 (through the lossy relay), 10.232.2.1
            (TUN), the sending hubs of the sites (10.1.0.11 …), a Postfix used as a sending MTA
  sl-srv-N  servers: Postfix on 10.232.0.2-6, 10.232.1.2, 10.232.2.2 and 10.3.3.21, the Exchange-
            style server on 10.232.0.7/.9 and the receiving hubs (10.1.0.21 …), the stripping proxy
            on 10.232.0.8, the servers of other protocols on 10.232.0.10 (tests/lab/foreign.py)
  sl-mid-N  the lossy relay between two veth pairs
Sites (docs/mail-tls.example.toml): POA 10.1.0.0/24, TOR 10.2.0.0/24, BR01-03 10.3.{1,2,3}.0/24.
No other addresses are touched; needs root, iproute2, ethtool, postfix, swaks, openssl, tcpdump
(captures only), python3.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
SUFFIX = os.environ.get("LAB_SUFFIX") or str(os.getpid())

CLI, SRV, MID = f"sl-cli-{SUFFIX}", f"sl-srv-{SUFFIX}", f"sl-mid-{SUFFIX}"
V_CLI, V_SRV = f"slc0{SUFFIX}", f"sls0{SUFFIX}"            # direct veth pair
L_CLI, L_MA, L_MB, L_SRV = f"slc1{SUFFIX}", f"slma{SUFFIX}", f"slmb{SUFFIX}", f"sls1{SUFFIX}"  # lossy path
T_CLI, T_SRV = f"slt0{SUFFIX}", f"slt1{SUFFIX}"            # TUN pair

CLIENT = "10.232.0.1"
PF_GOOD, PF_PLAIN, PF_454, PF_EXPIRED, PF_TLS12 = "10.232.0.2", "10.232.0.3", "10.232.0.4", "10.232.0.5", "10.232.0.6"
EXCHANGE, STRIPPER, SUPPRESSED = "10.232.0.7", "10.232.0.8", "10.232.0.9"
LOSSY_CLI, LOSSY_SRV = "10.232.1.1", "10.232.1.2"
TUN_CLI, TUN_SRV = "10.232.2.1", "10.232.2.2"

SITES = {"POA": "10.1.0", "TOR": "10.2.0", "BR01": "10.3.1", "BR02": "10.3.2", "BR03": "10.3.3"}
SENDING_HUBS = ["10.1.0.11", "10.1.0.12", "10.2.0.11", "10.2.0.12", "10.3.1.11", "10.3.2.11", "10.3.3.11", "10.3.3.12"]
# receiving hubs: address -> (Exchange mode, host name); 10.3.3.21 is a Postfix relay
EXCHANGE_HUBS = {
    "10.1.0.21": ("suppressed", "POA-HUB21.poa.contoso.com"),
    "10.1.0.22": ("exchange", "POA-HUB22.poa.contoso.com"),
    "10.2.0.21": ("suppressed", "TOR-HUB21.tor.contoso.com"),
    "10.2.0.22": ("exchange", "TOR-HUB22.tor.contoso.com"),
    "10.3.1.21": ("exchange", "BR01-HUB21.br01.contoso.com"),
    "10.3.2.21": ("exchange", "BR02-HUB21.br02.contoso.com"),
}
BR03_RELAY = "10.3.3.21"

POSTFIX_EXT = ["PIPELINING", "SIZE", "VRFY", "ETRN", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
               "SMTPUTF8", "CHUNKING"]


def log(*a):
    print("lab:", *a, file=sys.stderr, flush=True)


class LabError(Exception):
    pass


def run(*argv, ns=None, check=True, timeout=60, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def hub_name(addr):
    site = next(s for s, net in SITES.items() if addr.startswith(net + "."))
    return f"{site}-HUB{addr.rsplit('.', 1)[1]}.{site.lower()}.contoso.com"


# --- what a session is meant to be ----------------------------------------------------------------

def intent(client_ip, server, label, helo, offered, software, note, verb=None, reply=None, handshake=False,
           version=None, sni=None, mails=None, clean=None, **extra):
    """One session as the lab means it, in the shared ground-truth format (minus the client port,
    the stream index and what only the capture shows, which truth.py adds)."""
    d = {"client_ip": client_ip, "server": server, "helo": helo, "starttls_offered": offered,
         "upgrade_verb": verb, "starttls_sent": verb is not None, "starttls_reply": reply,
         "tls_handshake": handshake, "tls_version": version, "sni": sni, "mail_transactions": mails,
         "clean_close": clean, "label": label, "software": software, "note": note}
    d.update(extra)
    return d


# --- the lab --------------------------------------------------------------------------------------

class Lab:
    def __init__(self, work):
        self.work = work
        self.procs = []          # (name, Popen, log path)
        self.namespaces = []
        self.postfix_dirs = []   # (netns, config dir) of running Postfix instances

    # processes --------------------------------------------------------------------------------
    def spawn(self, name, argv, ns=None, ready=None, cwd=None, timeout=15):
        path = os.path.join(self.work, "logs", f"{name}.log")
        f = open(path, "w")
        cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in argv]
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                             start_new_session=True)
        self.procs.append((name, p, path))
        if ready:
            self.wait_log(name, p, path, ready, timeout)
        return p

    def wait_log(self, name, p, path, pattern, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(path) as f:
                if re.search(pattern, f.read(), re.M):
                    return
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise LabError(f"{name} did not become ready ({pattern!r}); log {path}:\n{open(path).read()}")

    def stop(self, p, sig=signal.SIGTERM, grace=5):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    # topology --------------------------------------------------------------------------------------
    def netns(self, name):
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        for k in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                  "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            run("sysctl", "-qw", k, ns=name)

    def veth(self, a_ns, a, b_ns, b):
        run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for ns, dev in ((a_ns, a), (b_ns, b)):
            run("ip", "link", "set", dev, "netns", ns)
            run("ip", "-n", ns, "link", "set", dev, "mtu", "1500", "up")
            # offloads off: wire-sized segments with valid checksums, as on a real NIC's wire
            run("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off",
                ns=ns, check=False)

    def addr(self, ns, dev, *addrs):
        for a in addrs:
            run("ip", "-n", ns, "addr", "add", a, "dev", dev)

    def topology(self):
        for ns in (CLI, SRV, MID):
            self.netns(ns)
        self.veth(CLI, V_CLI, SRV, V_SRV)
        self.addr(CLI, V_CLI, f"{CLIENT}/24", *[f"{h}/32" for h in SENDING_HUBS])
        self.addr(SRV, V_SRV, *[f"10.232.0.{i}/24" for i in range(2, 10)],
                  *[f"{h}/32" for h in list(EXCHANGE_HUBS) + [BR03_RELAY]])
        for ns, dev in ((CLI, V_CLI), (SRV, V_SRV)):
            for net in SITES.values():    # the sites are on-link on the direct veth
                run("ip", "-n", ns, "route", "add", f"{net}.0/24", "dev", dev)
        # lossy path: cli -- relay in mid -- srv, one subnet across the relay
        self.veth(CLI, L_CLI, MID, L_MA)
        self.veth(MID, L_MB, SRV, L_SRV)
        for dev in (L_MA, L_MB):
            run("ip", "-n", MID, "link", "set", dev, "promisc", "on")
        self.addr(CLI, L_CLI, f"{LOSSY_CLI}/24")
        self.addr(SRV, L_SRV, f"{LOSSY_SRV}/24")
        self.spawn("lossy-relay", [PY, f"{HERE}/lossy_relay.py", L_MA, L_MB], ns=MID, ready="^relaying")
        # raw IP: two TUN devices bridged by a process
        self.spawn("tun-bridge", [PY, f"{HERE}/tun_bridge.py", CLI, T_CLI, SRV, T_SRV], ready="^ready")
        for ns, dev, a, peer in ((CLI, T_CLI, TUN_CLI, TUN_SRV), (SRV, T_SRV, TUN_SRV, TUN_CLI)):
            run("ip", "-n", ns, "addr", "add", a, "peer", peer, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "mtu", "1500", "up")

    # certificates ----------------------------------------------------------------------------------
    def certs(self):
        d = os.path.join(self.work, "certs")
        os.makedirs(d)

        def selfsigned(name, cn, days=3650):
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key",
                "-out", f"{d}/{name}.pem", "-days", days, "-subj", f"/CN={cn}",
                "-addext", f"subjectAltName=DNS:{cn}")

        selfsigned("mx", "mx.lab.example")
        selfsigned("other", "other.lab.example")     # its certificate with mx.key: a mismatch
        selfsigned("mx12", "mx12.lab.example")
        selfsigned("exhub", "EXHUB.contoso.com")
        selfsigned("br03", "br03-relay.br03.contoso.com")
        # expired: valid in 2020 only (openssl 3.0's req/x509 cannot back-date; ca -selfsign can)
        with open(f"{d}/ca.cnf", "w") as f:
            f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
                    "default_md=sha256\npolicy=p\ncopy_extensions=copy\nunique_subject=no\n[p]\ncommonName=supplied\n")
        open(f"{d}/index.txt", "w").close()
        with open(f"{d}/serial", "w") as f:
            f.write("2020\n")
        run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/expired.key",
            "-out", f"{d}/expired.csr", "-subj", "/CN=expired.lab.example",
            "-addext", "subjectAltName=DNS:expired.lab.example")
        run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "expired.key", "-in",
            "expired.csr", "-out", "expired.pem", "-startdate", "20200101000000Z", "-enddate",
            "20210101000000Z", "-notext", cwd=d)
        self.certdir = d

    # Postfix ---------------------------------------------------------------------------------------
    def postfix(self, ns, name, main, listeners):
        d = os.path.join(self.work, name)
        os.makedirs(f"{d}/spool")
        os.makedirs(f"{d}/data")
        shutil.chown(f"{d}/data", "postfix")
        open(f"{d}/maillog", "w").close()
        shutil.chown(f"{d}/maillog", "postfix")
        base = {
            "compatibility_level": "3.6", "queue_directory": f"{d}/spool", "data_directory": f"{d}/data",
            "mydomain": "lab.example", "myorigin": "lab.example", "inet_interfaces": "all",
            "inet_protocols": "ipv4", "alias_maps": "", "alias_database": "", "biff": "no",
            "maillog_file": f"{d}/maillog", "maillog_file_prefixes": self.work,
            "smtpd_client_connection_count_limit": "0", "smtpd_client_connection_rate_limit": "0",
            "smtpd_tls_loglevel": "1", "smtp_tls_loglevel": "1", "mynetworks": "10.0.0.0/8, 127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_banner": "$myhostname ESMTP Postfix (Debian/GNU)",
        }
        base.update(main)
        with open(f"{d}/main.cf", "w") as f:
            f.writelines(f"{k} = {v}\n" for k, v in base.items())
        services = [
            "pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr", "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush", "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap", "smtp unix - - n - - smtp", "relay unix - - n - - smtp",
            "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
            "discard unix - - n - - discard", "local unix - n n - - local", "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd",
        ]
        with open(f"{d}/master.cf", "w") as f:
            for addr, opts in listeners:
                f.write(f"{addr} inet n - n - - smtpd" + "".join(f" -o {o}" for o in opts) + "\n")
            f.writelines(s + "\n" for s in services)
        # postfix logs fatal start-up errors to syslog only; script(1) shows them on a tty
        p = run("script", "-qec", f"ip netns exec {ns} postfix -c {d} start", "/dev/null", check=False)
        if p.returncode != 0:
            raise LabError(f"postfix {name} did not start:\n{p.stdout}{p.stderr}\n{open(f'{d}/maillog').read()}")
        self.postfix_dirs.append((ns, d))
        return d

    def servers(self):
        c = self.certdir
        tls12 = "smtpd_tls_protocols=!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3"
        self.pf_srv = self.postfix(SRV, "postfix-srv", {
            "myhostname": "mx.lab.example", "mydestination": "lab.example, contoso.com",
            "local_recipient_maps": "", "local_transport": "discard:", "default_transport": "discard:",
            "relay_transport": "discard:", "smtpd_tls_cert_file": f"{c}/mx.pem",
            "smtpd_tls_key_file": f"{c}/mx.key", "smtpd_tls_security_level": "may",
        }, [
            (f"{PF_GOOD}:25", []),
            (f"{PF_GOOD}:465", ["smtpd_tls_wrappermode=yes", "smtpd_tls_security_level=encrypt"]),
            (f"{PF_PLAIN}:25", ["smtpd_tls_security_level=none"]),
            (f"{PF_454}:25", [f"smtpd_tls_cert_file={c}/other.pem"]),
            (f"{PF_EXPIRED}:25", [f"smtpd_tls_cert_file={c}/expired.pem", f"smtpd_tls_key_file={c}/expired.key",
                                  tls12, "myhostname=expired.lab.example"]),
            (f"{PF_TLS12}:25", [f"smtpd_tls_cert_file={c}/mx12.pem", f"smtpd_tls_key_file={c}/mx12.key", tls12,
                                "myhostname=mx12.lab.example"]),
            (f"{LOSSY_SRV}:25", []),
            (f"{TUN_SRV}:25", []),
            (f"{BR03_RELAY}:25", [f"smtpd_tls_cert_file={c}/br03.pem", f"smtpd_tls_key_file={c}/br03.key",
                                  "myhostname=br03-relay.br03.contoso.com"]),
        ])
        # the sending MTA: relays everything to the TLS-1.2-only listener while it insists on TLS 1.3,
        # so its handshake fails. At security level may Postfix falls back to plaintext only for mail
        # that waited at least minimal_backoff_time: the first attempt defers, the retry fails the
        # handshake again and goes on over a new plaintext connection (backoff cut to 1 s here)
        self.pf_cli = self.postfix(CLI, "postfix-cli", {
            "myhostname": "relay.lab.example", "mydestination": "", "inet_interfaces": "127.0.0.1",
            "relayhost": f"[{PF_TLS12}]:25", "smtp_bind_address": CLIENT, "smtp_tls_security_level": "may",
            "smtp_tls_protocols": "!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.2", "smtpd_tls_security_level": "none",
            "minimal_backoff_time": "1s", "maximal_backoff_time": "2s", "queue_run_delay": "1s",
        }, [("127.0.0.1:10025", [])])
        hubs = [f"{a}:25:{m}:{n}" for a, (m, n) in EXCHANGE_HUBS.items()]
        hubs += ["10.1.0.21:2525:suppressed:POA-HUB21.poa.contoso.com", f"{EXCHANGE}:25:exchange:EXHUB07.contoso.com",
                 f"{SUPPRESSED}:25:suppressed:EXHUB09.contoso.com"]
        args = [PY, f"{HERE}/exchange_smtpd.py", "--cert", f"{c}/exhub.pem", "--key", f"{c}/exhub.key",
                "--protocol-log", os.path.join(self.work, "exchange-RECV.LOG")]
        for h in hubs:
            args += ["--listen", h]
        self.spawn("exchange-smtpd", args, ns=SRV, ready=f"listening {SUPPRESSED}:25")
        self.spawn("strip-proxy", [PY, f"{HERE}/strip_proxy.py", "--listen", f"{STRIPPER}:25", "--upstream",
                                   f"{PF_GOOD}:25"], ns=SRV, ready="^listening")
        want = {f"{PF_GOOD}:25", f"{PF_GOOD}:465", f"{PF_PLAIN}:25", f"{PF_454}:25", f"{PF_EXPIRED}:25",
                f"{PF_TLS12}:25", f"{LOSSY_SRV}:25", f"{TUN_SRV}:25", f"{BR03_RELAY}:25"}
        deadline = time.monotonic() + 20
        while True:
            have = set(run("ss", "-Hltn", ns=SRV).stdout.split())
            if want <= have:
                break
            if time.monotonic() > deadline:
                raise LabError(f"postfix listeners missing: {sorted(want - have)}")
            time.sleep(0.1)

    def up(self):
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        os.chmod(self.work, 0o755)        # Postfix's unprivileged daemons write the maillog here
        self.topology()
        self.certs()
        self.servers()
        log(f"up: namespaces {CLI} {SRV} {MID}; work dir {self.work}")

    def down(self):
        for ns, d in reversed(self.postfix_dirs):
            run("ip", "netns", "exec", ns, "postfix", "-c", d, "stop", check=False)
        for name, p, _ in reversed(self.procs):
            self.stop(p)
        for ns in self.namespaces:
            # whatever still runs inside our own namespaces was started by this lab
            for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces = []

    def dump_logs(self):
        for name, _, path in self.procs:
            print(f"--- {name} ({path})", file=sys.stderr)
            print(open(path).read()[-4000:], file=sys.stderr)
        for _, d in self.postfix_dirs:
            print(f"--- {d}/maillog", file=sys.stderr)
            print(open(f"{d}/maillog").read()[-6000:], file=sys.stderr)

    # clients ---------------------------------------------------------------------------------------
    def client(self, mode, server, *opts, ns=CLI, timeout=60):
        p = run(PY, f"{HERE}/client.py", mode, server, *opts, ns=ns, timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def swaks(self, server, *opts, timeout=60, check=True):
        host, port = server.rsplit(":", 1)
        p = run("swaks", "--server", host, "--port", port, "--from", "carol@lab.example", "--to",
                "dave@lab.example", "--timeout", "20", *opts, ns=CLI, timeout=timeout, check=check,
                stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr

    def openssl_starttls(self, server, name, sni, commands):
        p = run("openssl", "s_client", "-connect", server, "-starttls", "smtp", "-name", name, "-servername", sni,
                "-crlf", "-quiet", ns=CLI, input=commands, timeout=30)
        return p.stdout + p.stderr

    def postfix_send(self, count=1):
        """Hands mail to the sending Postfix (over its loopback smtpd) and waits until delivered."""
        before = open(f"{self.pf_cli}/maillog").read().count("status=sent")
        for _ in range(count):
            self.client("plain", "127.0.0.1:10025", "--helo", "submit.lab.example")
        deadline = time.monotonic() + 60
        while open(f"{self.pf_cli}/maillog").read().count("status=sent") < before + count:
            if time.monotonic() > deadline:
                raise LabError("the sending Postfix did not deliver in time:\n" + open(f"{self.pf_cli}/maillog").read())
            time.sleep(0.2)
        return open(f"{self.pf_cli}/maillog").read()


# --- scenarios ----------------------------------------------------------------------------------------
# Each returns the sessions it ran, in the order it opened them. `cap` is the capture around it:
# scenarios that decide themselves when the capture starts or ends call cap.start() / cap.stop().

def sc_plaintext(lab, cap):
    lab.swaks(f"{PF_PLAIN}:25", "--ehlo", "plain-client.lab.example")
    return [intent(CLIENT, f"{PF_PLAIN}:25", "plaintext", "plain-client.lab.example", False, "swaks -> Postfix",
                   "Postfix listener with smtpd_tls_security_level=none: no STARTTLS in the EHLO reply; "
                   "swaks sends one message in clear, QUIT/221", mails=1, clean=True)]


def sc_offered_unused(lab, cap):
    r = lab.client("plain", f"{PF_GOOD}:25", "--helo", "unused-client.lab.example", "--messages", "2")
    assert "STARTTLS" in r["offered"], r
    return [intent(CLIENT, f"{PF_GOOD}:25", "starttls-offered-unused", "unused-client.lab.example", True,
                   "Python smtplib -> Postfix", "Postfix offers STARTTLS; smtplib never asks and sends two "
                   "messages in clear, QUIT/221", mails=2, clean=True)]


def sc_tls13_sni(lab, cap):
    out = lab.openssl_starttls(f"{PF_GOOD}:25", "tls13-client.lab.example", "mx.lab.example",
                               "EHLO tls13-client.lab.example\nQUIT\n")
    if "221" not in out:
        raise LabError(f"openssl s_client: no 221 inside TLS:\n{out}")
    return [intent(CLIENT, f"{PF_GOOD}:25", "starttls", "tls13-client.lab.example", True,
                   "openssl s_client -starttls smtp -> Postfix", "openssl s_client -starttls smtp with -servername: "
                   "EHLO, STARTTLS/220, TLS 1.3 with SNI; EHLO and QUIT inside TLS", verb="STARTTLS", reply=220,
                   handshake=True, version="TLS1.3", sni="mx.lab.example")]


def sc_tls12_cert(lab, cap):
    lab.swaks(f"{PF_TLS12}:25", "--ehlo", "tls12-client.lab.example", "--tls", "--tls-sni", "mx12.lab.example")
    return [intent(CLIENT, f"{PF_TLS12}:25", "starttls", "tls12-client.lab.example", True, "swaks -> Postfix",
                   "Postfix listener limited to TLS 1.2 (smtpd_tls_protocols): STARTTLS/220, TLS 1.2 with SNI; "
                   "the certificate (CN=mx12.lab.example) crosses in clear; the message goes inside TLS",
                   verb="STARTTLS", reply=220, handshake=True, version="TLS1.2", sni="mx12.lab.example",
                   server_certificate_seen=True)]


def sc_expired(lab, cap):
    lab.swaks(f"{PF_EXPIRED}:25", "--ehlo", "expired-client.lab.example", "--tls")
    return [intent(CLIENT, f"{PF_EXPIRED}:25", "starttls", "expired-client.lab.example", True, "swaks -> Postfix",
                   "Postfix listener with a certificate valid only in 2020 (CN=expired.lab.example), TLS 1.2 only so "
                   "the certificate is visible; swaks does not verify and sends the message inside TLS; no SNI "
                   "(swaks sends none without --tls-sni)", verb="STARTTLS", reply=220, handshake=True,
                   version="TLS1.2", server_certificate_seen=True)]


def sc_client_abort(lab, cap):
    # swaks trusts the expired certificate itself (--tls-ca-path), so that its only fault is the
    # date and the client's alert says so (without it OpenSSL would answer unknown_ca first)
    out = lab.swaks(f"{PF_EXPIRED}:25", "--ehlo", "abort-client.lab.example", "--tls", "--tls-verify",
                    "--tls-ca-path", f"{lab.certdir}/expired.pem", "--tls-protocol", "tlsv1_2", check=False)
    if "TLS startup failed" not in out:
        raise LabError(f"swaks --tls-verify accepted the expired certificate:\n{out}")
    return [intent(CLIENT, f"{PF_EXPIRED}:25", "starttls", "abort-client.lab.example", True,
                   "swaks --tls-verify -> Postfix", "Postfix listener with a certificate valid only in 2020, TLS 1.2 "
                   "only; swaks (TLS 1.2, verifying, the certificate itself as CA) gets ServerHello and the "
                   "certificate in clear and aborts the handshake with a cleartext fatal certificate_expired "
                   "alert: nothing crossed in clear, so the cleartext counts stay (0, false)", verb="STARTTLS",
                   reply=220, handshake=True, version="TLS1.2", mails=0, clean=False,
                   server_certificate_seen=True, tls_alerts=["certificate_expired"])]


def sc_454(lab, cap):
    out = lab.swaks(f"{PF_454}:25", "--ehlo", "refused-client.lab.example", "-tlso")
    if "454" not in out:
        raise LabError(f"expected 454 to STARTTLS:\n{out}")
    return [intent(CLIENT, f"{PF_454}:25", "starttls-refused", "refused-client.lab.example", True,
                   "swaks -tlso -> Postfix", "Postfix listener whose certificate does not match its key: STARTTLS "
                   "offered, answered 454 4.7.0 (TLS not available due to local problem); swaks -tlso carries on "
                   "in clear: one message, QUIT/221", verb="STARTTLS", reply=454, mails=1, clean=True)]


def sc_alert_retry(lab, cap):
    mlog = lab.postfix_send()
    if "Cannot start TLS: handshake failure" not in mlog:
        raise LabError(mlog)
    common = dict(helo="relay.lab.example", offered=True, software="Postfix smtp client -> Postfix")
    failed = ("Postfix smtp client limited to TLS 1.3 (smtp_tls_protocols) meets a TLS-1.2-only Postfix: "
              "STARTTLS/220, ClientHello, the server answers a fatal protocol_version alert in clear and both "
              "close; no mail crossed. ")
    return [
        intent(CLIENT, f"{PF_TLS12}:25", "starttls-failed", note=failed + "Postfix defers the message (a fresh "
               "message is never sent in clear after a failed handshake)", verb="STARTTLS", reply=220, mails=0,
               clean=False, tls_alerts=["protocol_version"], **common),
        intent(CLIENT, f"{PF_TLS12}:25", "starttls-failed", note=failed + "This is the retry after "
               "minimal_backoff_time (1 s here); now older than that, the message may fall back to plaintext",
               verb="STARTTLS", reply=220, mails=0, clean=False, tls_alerts=["protocol_version"], **common),
        intent(CLIENT, f"{PF_TLS12}:25", "starttls-offered-unused", note="Postfix's opportunistic TLS (security "
               "level may) falls back to plaintext on a new connection: EHLO (STARTTLS offered), MAIL, RCPT, DATA "
               "pipelined, message in clear, QUIT/221", mails=1, clean=True, **common),
    ]


def sc_stripped(lab, cap):
    out = lab.swaks(f"{STRIPPER}:25", "--ehlo", "strip-client.lab.example", "-tlso")
    if "XXXXXXXA" not in out:
        raise LabError(f"the proxy did not mask STARTTLS:\n{out}")
    r = lab.client("insist", f"{STRIPPER}:25", "--helo", "insist-client.lab.example")
    assert r["upgrade_reply"] == 500, r
    return [
        intent(CLIENT, f"{STRIPPER}:25", "stripped", "strip-client.lab.example", False, "swaks -tlso -> stripping "
               "proxy -> Postfix", "the proxy (as Cisco ASA ESMTP inspection) wrote XXXXXXXA over STARTTLS in the "
               "EHLO reply; swaks -tlso sees no offer and sends the message in clear", mails=1, clean=True),
        intent(CLIENT, f"{STRIPPER}:25", "stripped", "insist-client.lab.example", False, "Python smtplib -> "
               "stripping proxy -> Postfix", "XXXXXXXA in the EHLO reply; the client sends STARTTLS anyway, the "
               "proxy answers 500, the client carries on in clear", verb="STARTTLS", reply=500, mails=1,
               clean=True),
    ]


def sc_implicit(lab, cap):
    lab.swaks(f"{PF_GOOD}:465", "--ehlo", "smtps-client.lab.example", "--tlsc", "--tls-sni", "mx.lab.example")
    return [intent(CLIENT, f"{PF_GOOD}:465", "implicit-tls", None, None, "swaks --tls-on-connect -> Postfix",
                   "Postfix smtps listener (smtpd_tls_wrappermode=yes): ClientHello first, TLS 1.3 with SNI; "
                   "the whole SMTP dialogue is encrypted", handshake=True, version="TLS1.3", sni="mx.lab.example")]


def sc_xanon(lab, cap):
    r = lab.client("xanon", f"{EXCHANGE}:25", "--helo", "EXHUB02.contoso.com")
    assert r["tls_version"] == "TLSv1.2", r
    return [intent(CLIENT, f"{EXCHANGE}:25", "starttls", "EXHUB02.contoso.com", True, "Python smtplib -> "
                   "Exchange-style asyncio server", "Exchange hub dialect: EHLO offers STARTTLS and X-ANONYMOUSTLS; "
                   "the client upgrades with X-ANONYMOUSTLS, answered '220 2.0.0 SMTP server ready'; TLS 1.2 "
                   "without SNI, self-signed certificate visible; X-EXPS and BDAT inside TLS",
                   verb="X-ANONYMOUSTLS", reply=220, handshake=True, version="TLS1.2",
                   server_certificate_seen=True)]


def sc_suppressed(lab, cap):
    r = lab.client("exps", f"{SUPPRESSED}:25", "--helo", "EXHUB03.contoso.com")
    assert "X-ANONYMOUSTLS" not in r["offered"] and r["exps"] == 235, r
    return [intent(CLIENT, f"{SUPPRESSED}:25", "starttls-offered-unused", "EXHUB03.contoso.com", True,
                   "Python smtplib -> Exchange-style asyncio server", "receive connector with SuppressXAnonymousTls: "
                   "EHLO offers STARTTLS but not X-ANONYMOUSTLS; the hub authenticates with X-EXPS GSSAPI in clear "
                   "and sends the message with BDAT in clear, QUIT/221", mails=1, clean=True, uses_bdat=True)]


def sc_injection(lab, cap):
    r = lab.client("inject", f"{PF_GOOD}:25", "--helo", "inject-client.lab.example", "--sni", "mx.lab.example")
    return [intent(CLIENT, f"{PF_GOOD}:25", "starttls", "inject-client.lab.example", True,
                   "Python raw send -> Postfix", "'STARTTLS\\r\\nNOOP\\r\\n' in one segment (command injection, "
                   "CVE-2011-0411); Postfix answers 220 and discards the injected NOOP; TLS "
                   f"{r['tls_version'][-3:]} with SNI, EHLO and QUIT inside", verb="STARTTLS", reply=220,
                   handshake=True, version="TLS" + r["tls_version"][-3:], sni="mx.lab.example")]


def sc_bdat(lab, cap):
    lab.client("bdat", f"{PF_GOOD}:25", "--helo", "bdat-client.lab.example", "--size", "6000")
    return [intent(CLIENT, f"{PF_GOOD}:25", "starttls-offered-unused", "bdat-client.lab.example", True,
                   "Python smtplib raw sends -> Postfix", "PIPELINING + CHUNKING: MAIL FROM, RCPT TO and "
                   "'BDAT 6000 LAST' with the 6000-byte message in one write, three 250 replies, QUIT/221",
                   mails=1, clean=True, uses_bdat=True)]


def sc_1mb(lab, cap):
    lab.client("plain", f"{PF_PLAIN}:25", "--helo", "big-client.lab.example", "--size", str(1 << 20))
    return [intent(CLIENT, f"{PF_PLAIN}:25", "plaintext", "big-client.lab.example", False, "Python smtplib -> "
                   "Postfix", "one 1 MiB message with DATA in clear (no STARTTLS offered), QUIT/221",
                   mails=1, clean=True)]


def sc_loss(lab, cap):
    lab.client("starttls", f"{LOSSY_SRV}:25", "--helo", "lossy-tls.lab.example", "--sni", "mx.lab.example",
               "--size", "30000")
    lab.client("plain", f"{LOSSY_SRV}:25", "--helo", "lossy-plain.lab.example", "--size", "100000")
    note = ("through the user-space relay (4 % of payload segments dropped, 1-13 ms random delay, so segments "
            "overtake each other); captured on the server's side of the relay: the client's data arrives out of "
            "order, with holes that retransmissions fill")
    return [
        intent(LOSSY_CLI, f"{LOSSY_SRV}:25", "starttls", "lossy-tls.lab.example", True, "Python smtplib -> Postfix",
               note + "; STARTTLS, TLS 1.3 with SNI, a 30 kB message inside", verb="STARTTLS", reply=220,
               handshake=True, version="TLS1.3", sni="mx.lab.example"),
        intent(LOSSY_CLI, f"{LOSSY_SRV}:25", "starttls-offered-unused", "lossy-plain.lab.example", True,
               "Python smtplib -> Postfix", note + "; a 100 kB message in clear, QUIT/221", mails=1, clean=True),
    ]


def sc_any(lab, cap):
    lab.client("starttls", f"{PF_GOOD}:25", "--helo", "any-client.lab.example", "--sni", "mx.lab.example",
               "--tls-max", "1.2")
    lab.swaks(f"{PF_PLAIN}:25", "--ehlo", "any-plain.lab.example")
    return [
        intent(CLIENT, f"{PF_GOOD}:25", "starttls", "any-client.lab.example", True, "Python smtplib -> Postfix",
               "captured with tcpdump -i any (LINUX_SLL2 link type); STARTTLS, TLS 1.2 (client maximum) with SNI",
               verb="STARTTLS", reply=220, handshake=True, version="TLS1.2", sni="mx.lab.example",
               server_certificate_seen=True),
        intent(CLIENT, f"{PF_PLAIN}:25", "plaintext", "any-plain.lab.example", False, "swaks -> Postfix",
               "captured with tcpdump -i any (LINUX_SLL2); no STARTTLS offered, one message, QUIT/221",
               mails=1, clean=True),
    ]


def sc_tun(lab, cap):
    lab.client("starttls", f"{TUN_SRV}:25", "--helo", "tun-tls.lab.example", "--sni", "mx.lab.example")
    lab.client("plain", f"{TUN_SRV}:25", "--helo", "tun-plain.lab.example")
    note = "over a TUN device (raw IP, no link header; two TUN devices bridged by tun_bridge.py)"
    return [
        intent(TUN_CLI, f"{TUN_SRV}:25", "starttls", "tun-tls.lab.example", True, "Python smtplib -> Postfix",
               note + "; STARTTLS, TLS 1.3 with SNI", verb="STARTTLS", reply=220, handshake=True, version="TLS1.3",
               sni="mx.lab.example"),
        intent(TUN_CLI, f"{TUN_SRV}:25", "starttls-offered-unused", "tun-plain.lab.example", True,
               "Python smtplib -> Postfix", note + "; one message in clear, QUIT/221", mails=1, clean=True),
    ]


def paused(lab, name, mode, server, *opts):
    """Starts a client that stops after its EHLO (inside TLS for starttls) until released."""
    flag = os.path.join(lab.work, f"release-{name}")
    path = os.path.join(lab.work, "logs", f"client-{name}.log")
    argv = [PY, f"{HERE}/client.py", mode, server, "--wait-file", flag, *opts]
    p = lab.spawn(f"client-{name}", argv, ns=CLI, ready="^paused", timeout=30)

    def release():
        open(flag, "w").close()
        if p.wait(60) != 0:
            raise LabError(f"client {name} failed:\n{open(path).read()}")
    return release


def sc_midsession(lab, cap):
    rel_plain = paused(lab, "mid-plain", "pause", f"{PF_GOOD}:25", "--helo", "mid-plain.lab.example")
    rel_tls = paused(lab, "mid-tls", "starttls", f"{PF_GOOD}:25", "--helo", "mid-tls.lab.example", "--sni",
                     "mx.lab.example")
    cap.start()
    rel_plain()
    rel_tls()
    return [
        intent(CLIENT, f"{PF_GOOD}:25", "incomplete", None, None, "Python smtplib -> Postfix",
               "capture started after the handshake, greeting and EHLO (offer unknown): incomplete (b); then one "
               "message in clear and QUIT/221 are visible", mails=1, clean=True, observed="partial",
               cut="mid-session"),
        intent(CLIENT, f"{PF_GOOD}:25", "incomplete", None, None, "Python smtplib -> Postfix",
               "capture started inside TLS (after EHLO, STARTTLS, TLS 1.3 and the second EHLO): only encrypted "
               "records and the FIN are visible; incomplete (b)", observed="partial", cut="mid-session"),
    ]


def sc_snaplen(lab, cap):
    lab.client("starttls", f"{PF_GOOD}:25", "--helo", "s96.lab.example", "--sni", "mx.lab.example", "--tls-max", "1.2")
    lab.client("plain", f"{PF_PLAIN}:25", "--helo", "p96.lab.example")
    return [
        intent(CLIENT, f"{PF_GOOD}:25", "starttls", "s96.lab.example", None, "Python smtplib -> Postfix",
               "tcpdump -s 96: 30 payload bytes per segment; the EHLO reply is cut after its first line (offer "
               "unknown), STARTTLS and its 220 fit, ClientHello and ServerHello are recognised by their first bytes; "
               "SNI and the negotiated version are beyond the snaplen", verb="STARTTLS", reply=220,
               handshake=True, observed="partial", cut="snaplen"),
        intent(CLIENT, f"{PF_PLAIN}:25", "incomplete", "p96.lab.example", None, "Python smtplib -> Postfix",
               "tcpdump -s 96: the EHLO reply is cut after its first line and no upgrade followed, so plaintext, "
               "offered-unused and stripped cannot be told apart: incomplete (f); the MAIL verb and QUIT/221 fit in "
               "their segments (the envelope path is cut)", mails=1, clean=True, observed="partial", cut="snaplen"),
    ]


def sc_multisite(lab, cap):
    """Exchange hubs in five sites: POA and TOR in clear (WAN optimizers), branches over TLS;
    three violations and one session the capture cuts short."""
    out = []

    def hub(src, dst, mode, port=25, **kw):
        server = f"{dst}:{port}"
        helo = hub_name(src)
        opts = ["--bind", src, "--helo", helo]
        if kw.get("sni"):
            opts += ["--sni", kw["sni"]]
        r = lab.client(mode, server, *opts)
        offered = True
        exch = dst in EXCHANGE_HUBS
        sw = "Python smtplib -> " + ("Exchange-style asyncio server" if exch else "Postfix")
        if mode == "exps":
            out.append(intent(src, server, "starttls-offered-unused", helo, offered, sw, kw["note"], mails=1,
                              clean=True, uses_bdat=True))
        else:
            verb = "X-ANONYMOUSTLS" if mode == "xanon" else "STARTTLS"
            out.append(intent(src, server, "starttls", helo, offered, sw, kw["note"], verb=verb, reply=220,
                              handshake=True, version="TLS" + r["tls_version"][-3:], sni=kw.get("sni")))

    hub("10.1.0.11", "10.2.0.21", "exps", note="POA -> TOR hub, SuppressXAnonymousTls: X-EXPS and BDAT in clear")
    hub("10.2.0.11", "10.1.0.21", "exps", note="TOR -> POA hub, SuppressXAnonymousTls: X-EXPS and BDAT in clear")
    hub("10.2.0.11", "10.1.0.21", "exps", port=2525, note="TOR -> POA hub on 2525, in clear")
    hub("10.2.0.12", "10.1.0.22", "exps", note="TOR -> POA hub in clear, but this POA hub's connector still offers "
        "X-ANONYMOUSTLS (SuppressXAnonymousTls not set): the policy forbids the offer")
    hub("10.1.0.12", "10.2.0.22", "xanon", note="POA -> TOR hub upgraded with X-ANONYMOUSTLS: TLS where the WAN "
        "optimizer needs clear text")
    hub("10.3.1.11", "10.1.0.21", "starttls", note="BR01 -> POA hub: STARTTLS (offered even with "
        "SuppressXAnonymousTls), TLS 1.2")
    hub("10.1.0.11", "10.3.1.21", "xanon", note="POA -> BR01 hub: X-ANONYMOUSTLS, TLS 1.2")
    hub("10.3.2.11", "10.2.0.21", "exps", note="BR02 -> TOR hub in clear: the branch must use TLS")
    hub("10.2.0.11", "10.3.2.21", "xanon", note="TOR -> BR02 hub: X-ANONYMOUSTLS, TLS 1.2")
    hub("10.3.3.11", "10.1.0.22", "starttls", note="BR03 -> POA hub: STARTTLS, TLS 1.2")
    hub("10.1.0.11", BR03_RELAY, "starttls", sni="br03-relay.br03.contoso.com",
        note="POA hub -> BR03's Postfix relay: STARTTLS, TLS 1.3 with SNI")
    # the last session is still open when the capture ends: EHLO answered, nothing more seen
    src, server = "10.3.3.12", "10.2.0.21:25"
    release = paused(lab, "multisite-open", "pause", server, "--bind", src, "--helo", hub_name(src))
    cap.stop()
    release()
    out.append(intent(src, server, "incomplete", hub_name(src), True, "Python smtplib -> Exchange-style asyncio "
                      "server", "BR03 -> TOR hub: EHLO answered (STARTTLS offered), then the capture ends before "
                      "the client's next command: incomplete (e)", mails=0, clean=False))
    return out


def sc_foreign(lab, cap):
    """FTP, FTPS, POP3, POP3 STLS, NNTP, IRC and CONNECT/SOCKS tunnels to :443 from real software
    (tests/lab/foreign.py): sessions that carry no SMTP, none on a mail port, none to report."""
    sys.path.insert(0, HERE)
    import foreign
    miss = foreign.missing()
    if miss:
        raise LabError("foreign-protocols needs the Debian packages " + " ".join(miss))
    foreign.start(lab, SRV, V_SRV, lab.certdir, lab.addr, run)
    cap.start()
    foreign.drive(CLI, run, PY)
    return []


# name, scenario, capture interface (direct/lossy/tun/any), options; `live`: part of the e2e test
SCENARIOS = [
    ("plaintext", sc_plaintext, "direct", {"live": True}),
    ("offered-unused", sc_offered_unused, "direct", {"live": True}),
    ("starttls-tls13-sni", sc_tls13_sni, "direct", {"live": True}),
    ("starttls-tls12-cert", sc_tls12_cert, "direct", {"live": True}),
    ("expired-cert", sc_expired, "direct", {"live": True}),
    ("client-abort-expired", sc_client_abort, "direct", {"live": True}),
    ("starttls-454", sc_454, "direct", {"live": True}),
    ("handshake-alert-retry", sc_alert_retry, "direct", {"live": True}),
    ("stripped", sc_stripped, "direct", {"live": True}),
    ("implicit-tls-465", sc_implicit, "direct", {"live": True}),
    ("x-anonymoustls", sc_xanon, "direct", {"live": True}),
    ("x-anonymoustls-suppressed", sc_suppressed, "direct", {"live": True}),
    ("starttls-injection", sc_injection, "direct", {"live": True}),
    ("pipelining-bdat", sc_bdat, "direct", {"live": True}),
    ("message-1mb", sc_1mb, "direct", {"live": True}),
    ("loss-reorder", sc_loss, "lossy", {"live": True}),
    ("any-sll2", sc_any, "any", {}),
    ("raw-ip-tun", sc_tun, "tun", {"live": True}),
    ("mid-session", sc_midsession, "direct", {"manual_start": True}),
    ("snaplen-96", sc_snaplen, "direct", {"snaplen": 96}),
    ("multi-site", sc_multisite, "direct", {"live": True}),
    ("foreign-protocols", sc_foreign, "direct", {"manual_start": True}),
]


class Capture:
    """tcpdump around one scenario, in the client namespace."""

    def __init__(self, lab, path, iface, snaplen=None):
        self.lab, self.path, self.snaplen = lab, path, snaplen
        # the lossy path is captured on the server's side of the relay, where the client's data
        # arrives reordered and with holes that retransmissions fill
        self.ns, self.iface = {"direct": (CLI, V_CLI), "lossy": (SRV, L_SRV), "tun": (CLI, T_CLI),
                               "any": (CLI, "any")}[iface]
        self.p = None
        self.done = False

    def start(self):
        if self.p or self.done:
            return
        argv = ["tcpdump", "-i", self.iface, "-n", "-Z", "root", "--immediate-mode", "-U", "-w", self.path]
        if self.iface == "any":
            # in immediate mode libpcap gives each packet a ring slot of the snapshot length, and
            # `any` has no MTU to bound it: the default 2 MB ring holds 8 packets
            argv += ["-B", "65536"]
        if self.snaplen:
            argv += ["-s", str(self.snaplen)]
        argv.append("tcp")
        name = "tcpdump-" + os.path.basename(self.path)
        self.p = self.lab.spawn(name, argv, ns=self.ns, ready="listening on")
        self.log = os.path.join(self.lab.work, "logs", f"{name}.log")
        time.sleep(0.3)

    def stop(self):
        if self.p and not self.done:
            time.sleep(1.0)     # what is still in the kernel ring is lost if tcpdump stops at once
            self.lab.stop(self.p, signal.SIGINT)
            log = open(self.log).read()
            m = re.search(r"(\d+) packets? dropped by kernel", log)
            if not m or m.group(1) != "0":
                raise LabError(f"tcpdump lost packets (or did not say): {log}")
        self.done = True


class LiveHold:
    """In the end-to-end test the capture is smtpscope, run by the test: stop() asks the test to
    stop it (file `hold`) and waits until it has (file `release`)."""

    def __init__(self, state):
        self.state = state

    def start(self):
        pass

    def stop(self):
        open(os.path.join(self.state, "hold"), "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(os.path.join(self.state, "release")):
            if time.monotonic() > deadline:
                raise LabError("the test never released the hold")
            time.sleep(0.05)


# --- commands -------------------------------------------------------------------------------------

def with_lab(work, body, stop_ok=False):
    """Runs body with the lab up; tears it down however body ends. With stop_ok, SIGTERM/SIGINT
    is the normal way to end (lab.py up)."""
    lab = Lab(work)
    ok = False

    def on_signal(sig, _):
        nonlocal ok
        ok = ok or stop_ok
        raise SystemExit(0 if stop_ok else 128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        lab.up()
        body(lab)
        ok = True
    finally:
        if not ok:
            log("FAILED; logs follow")
            lab.dump_logs()
        lab.down()


def cmd_captures(outdir, only):
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-lab-")

    def body(lab):
        manifest = []
        for name, fn, iface, opts in SCENARIOS:
            if only and name not in only:
                continue
            path = os.path.join(work, f"{name}.pcap")
            cap = Capture(lab, path, iface, opts.get("snaplen"))
            log(f"scenario {name}")
            if not opts.get("manual_start"):
                cap.start()
            sessions = fn(lab, cap)
            cap.stop()
            shutil.copy(path, os.path.join(outdir, f"{name}.pcap"))
            for s in sessions:
                s["file"] = f"{name}.pcap"
                manifest.append(s)
        with open(os.path.join(outdir, "lab-manifest.jsonl"), "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in manifest)
        log(f"{len(manifest)} sessions in {len({s['file'] for s in manifest})} captures -> {outdir}")

    try:
        with_lab(work, body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_up(state):
    os.makedirs(state, exist_ok=True)
    work = os.path.join(state, "work")
    os.makedirs(work)

    def body(lab):
        info = {"cli": CLI, "srv": SRV, "mid": MID, "work": work, "suffix": SUFFIX,
                "interfaces": {"direct": V_CLI, "lossy": L_CLI, "tun": T_CLI}}
        with open(os.path.join(state, "lab.json.tmp"), "w") as f:
            json.dump(info, f)
        os.rename(os.path.join(state, "lab.json.tmp"), os.path.join(state, "lab.json"))
        log("ready; close stdin (or SIGTERM) to tear down")
        sys.stdin.read()

    with_lab(work, body, stop_ok=True)


def cmd_drive(state, manifest):
    """Runs the live scenarios against the lab `up` holds (same process tree layout, same names)."""
    info = json.load(open(os.path.join(state, "lab.json")))
    global CLI, SRV
    assert info["cli"] == CLI and info["srv"] == SRV, "LAB_SUFFIX must match the lab's"
    lab = Lab(info["work"])
    lab.pf_cli = os.path.join(info["work"], "postfix-cli")
    lab.certdir = os.path.join(info["work"], "certs")
    lab.procs = []
    os.makedirs(os.path.join(info["work"], "logs"), exist_ok=True)
    hold = LiveHold(state)
    out = []
    try:
        for name, fn, _, opts in SCENARIOS:
            if not opts.get("live"):
                continue
            log(f"scenario {name}")
            for s in fn(lab, hold):
                s["scenario"] = name
                out.append(s)
    except Exception:
        lab.dump_logs()
        raise
    finally:
        for _, p, _ in lab.procs:
            lab.stop(p)
    with open(manifest + ".tmp", "w") as f:
        f.writelines(json.dumps(s) + "\n" for s in out)
    os.rename(manifest + ".tmp", manifest)


def main():
    if os.geteuid() != 0:
        sys.exit("lab.py: needs root (network namespaces, tcpdump)")
    args = sys.argv[1:]
    try:
        if args[:1] == ["captures"] and len(args) >= 2:
            cmd_captures(args[1], set(args[2:]))
        elif args[:1] == ["up"] and len(args) == 2:
            cmd_up(args[1])
        elif args[:1] == ["drive"] and len(args) == 3:
            cmd_drive(args[1], args[2])
        else:
            sys.exit(__doc__)
    except LabError as e:
        sys.exit(f"lab.py: {e}")


if __name__ == "__main__":
    main()
