"""Other protocols that look like SMTP to a careless probe, from real software, for the
`foreign-protocols` capture: no session in it may be reported (see "What carries SMTP" in
../shared/captures/public/README.md).

Servers (Debian packages, run from config files in the lab's work directory, in the server
namespace on FOREIGN, each on its own port as deployed):
  vsftpd 3.0    FTP :21, anonymous, AUTH TLS allowed (plain and AUTH TLS sessions, passive data)
  dovecot 2.3   POP3 :110 with STLS (USER/PASS, CAPA, AUTH PLAIN, STLS)
  inn2 nnrpd    NNTP :119 (CAPABILITIES, MODE READER, GROUP, ARTICLE)
  ngircd 26     IRC :6667 (CAP LS, NICK, USER, JOIN, QUIT)
  tinyproxy     HTTP proxy :8888 (CONNECT to :443)
  dante         SOCKS 4/5 :1080 (to :443)
  openssl s_server  HTTPS :443, the proxies' target (reached on the server's own address, so only
                    the client's side of each tunnel is on the captured veth)
Clients: curl (FTP, FTPS, POP3, POP3 STLS, through both proxies), Python's nntplib and a socket
client speaking IRC. Ports 21, 110, 119, 6667, 8888, 1080 and 443 are not mail ports: the spec
wants nothing reported for any of these sessions.
"""
import os
import shutil
import subprocess
import textwrap

FOREIGN = "10.232.0.10"
NEEDS = {"vsftpd": "vsftpd", "dovecot": "dovecot-pop3d", "/usr/lib/news/bin/nnrpd": "inn2", "ngircd": "ngircd",
         "tinyproxy": "tinyproxy", "danted": "dante-server", "curl": "curl"}

IRC_CLIENT = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 6667), timeout=10)
f = s.makefile("rwb")
def send(line):
    f.write(line.encode() + b"\r\n"); f.flush()
send("CAP LS 302")
send("NICK labuser")
send("USER labuser 0 * :Lab User")
got = b""
deadline = time.monotonic() + 10
while b" 001 " not in got and time.monotonic() < deadline:
    line = f.readline()
    if not line:
        break
    got += line
    if line.startswith(b"PING"):
        send("PONG" + line.decode()[4:].rstrip())
    if b" CAP " in line and b" LS " in line:
        send("CAP END")
if b" 001 " not in got:
    sys.exit("no welcome: %r" % got)
send("JOIN #lab")
send("PRIVMSG #lab :hello from the lab")
send("QUIT :bye")
while f.readline():
    pass
print("irc ok")
"""

NNTP_CLIENT = r"""
import sys, warnings
warnings.simplefilter("ignore")
import nntplib
with nntplib.NNTP(sys.argv[1], 119, readermode=True, timeout=10) as n:
    n.getcapabilities()
    resp, count, first, last, name = n.group("lab.test")
    try:
        n.article(first)
    except nntplib.NNTPTemporaryError:
        pass
print("nntp ok")
"""


def missing():
    return sorted({pkg for exe, pkg in NEEDS.items() if not (shutil.which(exe) or os.access(exe, os.X_OK))})


def write(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())


def start(lab, ns, dev, certdir, addr_fn, run):
    """Starts every foreign server in `ns`; returns nothing (processes are the lab's)."""
    d = os.path.join(lab.work, "foreign")
    os.makedirs(d, exist_ok=True)
    addr_fn(ns, dev, f"{FOREIGN}/24")
    cert, key = f"{certdir}/mx.pem", f"{certdir}/mx.key"

    # FTP
    root, empty = f"{d}/ftp-root", f"{d}/ftp-empty"
    os.makedirs(f"{root}/pub", exist_ok=True)
    os.makedirs(empty, exist_ok=True)
    for p in (root, empty):
        os.chmod(p, 0o755)
    write(f"{root}/pub/README", "lab file\n")
    write(f"{d}/vsftpd.conf", f"""
        listen=YES
        listen_ipv6=NO
        listen_address={FOREIGN}
        background=NO
        anonymous_enable=YES
        anon_root={root}
        no_anon_password=YES
        local_enable=NO
        write_enable=NO
        secure_chroot_dir={empty}
        pasv_enable=YES
        pasv_min_port=40000
        pasv_max_port=40100
        seccomp_sandbox=NO
        ssl_enable=YES
        allow_anon_ssl=YES
        force_anon_logins_ssl=NO
        force_anon_data_ssl=NO
        ssl_request_cert=NO
        require_ssl_reuse=NO
        rsa_cert_file={cert}
        rsa_private_key_file={key}
        vsftpd_log_file={d}/vsftpd.log
        xferlog_enable=YES
        """)
    lab.spawn("vsftpd", ["vsftpd", f"{d}/vsftpd.conf"], ns=ns)

    # POP3
    mail = f"{d}/mail"
    os.makedirs(f"{mail}/labuser/cur", exist_ok=True)
    os.makedirs(f"{mail}/labuser/new", exist_ok=True)
    os.makedirs(f"{mail}/labuser/tmp", exist_ok=True)
    write(f"{mail}/labuser/new/1.lab", "From: a@lab.example\nSubject: hi\n\nhello\n")
    shutil.chown(mail, "nobody", "nogroup")
    for dirpath, dirs, files in os.walk(mail):
        for x in dirs + files:
            shutil.chown(os.path.join(dirpath, x), "nobody", "nogroup")
    write(f"{d}/dovecot.conf", f"""
        base_dir = {d}/dovecot-run
        state_dir = {d}/dovecot-state
        log_path = {d}/dovecot.log
        protocols = pop3
        listen = {FOREIGN}
        ssl = yes
        ssl_cert = <{cert}
        ssl_key = <{key}
        disable_plaintext_auth = no
        auth_mechanisms = plain login
        mail_location = maildir:{mail}/%u
        passdb {{
          driver = static
          args = password=labpass
        }}
        userdb {{
          driver = static
          args = uid=nobody gid=nogroup home={mail}/%u
        }}
        service pop3-login {{
          inet_listener pop3 {{
            address = {FOREIGN}
            port = 110
          }}
          inet_listener pop3s {{
            port = 0
          }}
        }}
        service anvil {{
          chroot =
        }}
        """)
    lab.spawn("dovecot", ["dovecot", "-F", "-c", f"{d}/dovecot.conf"], ns=ns)

    # NNTP: nnrpd alone, as a daemon, over an active file of its own
    news = f"{d}/news"
    for sub in ("db", "spool", "run", "log", "etc", "tmp"):
        os.makedirs(f"{news}/{sub}", exist_ok=True)
    write(f"{news}/db/active", "lab.test 0000000000 0000000001 y\n")
    write(f"{news}/db/newsgroups", "lab.test\tThe lab's test group.\n")
    write(f"{news}/etc/readers.conf", """
        auth "lab" {
            hosts: "*"
            default: "<lab>"
        }
        access "lab" {
            users: "*"
            newsgroups: "*"
        }
        """)
    # Debian's inn.conf with every path moved into the lab (the first value of a key wins)
    paths = {"pathetc": "etc", "pathdb": "db", "pathspool": "spool", "pathrun": "run", "pathlog": "log",
             "pathtmp": "tmp", "pathoverview": "spool/overview", "patharticles": "spool/articles",
             "pathincoming": "spool/incoming", "pathoutgoing": "spool/outgoing", "patharchive": "spool/archive"}
    conf = []
    for line in open("/etc/news/inn.conf"):
        name = line.split(":", 1)[0].strip()
        if name in paths:
            line = f"{name}: {news}/{paths[name]}\n"
        elif name in ("domain", "#domain"):
            line = "domain: lab.example\n"
        elif name == "nnrpdloadlimit":
            line = "nnrpdloadlimit: 0\n"      # a busy build host is no reason to turn readers away
        conf.append(line)
    for sub in paths.values():
        os.makedirs(f"{news}/{sub}", exist_ok=True)
    write(f"{news}/etc/inn.conf", "".join(conf))
    # the rest of Debian's configuration (storage.conf, ...) as it is
    for f in os.listdir("/etc/news"):
        if os.path.isfile(f"/etc/news/{f}") and not os.path.exists(f"{news}/etc/{f}"):
            shutil.copy(f"/etc/news/{f}", f"{news}/etc/{f}")
    for dirpath, dirs, files in os.walk(news):
        for x in dirs + files:
            shutil.chown(os.path.join(dirpath, x), "news", "news")
    shutil.chown(news, "news", "news")
    # the group in the overview database (tradindexed), as INN's own tool creates it
    run("runuser", "-u", "news", "--", "env", f"INNCONF={news}/etc/inn.conf", "/usr/lib/news/bin/tdx-util", "-c",
        "-n", "lab.test")
    lab.spawn("nnrpd", ["env", f"INNCONF={news}/etc/inn.conf", "/usr/lib/news/bin/nnrpd", "-D", "-f", "-n", "-b",
                        FOREIGN, "-p", "119"], ns=ns)

    # IRC
    write(f"{d}/ngircd.conf", f"""
        [Global]
        Name = irc.lab.example
        Info = lab IRC
        Listen = {FOREIGN}
        Ports = 6667
        ServerUID = irc
        ServerGID = irc
        [Limits]
        ConnectRetry = 60
        [Options]
        PAM = no
        Ident = no
        DNS = no
        """)
    lab.spawn("ngircd", ["ngircd", "-n", "-f", f"{d}/ngircd.conf"], ns=ns)

    # HTTPS origin and the two proxies
    lab.spawn("https-origin", ["openssl", "s_server", "-accept", f"{FOREIGN}:443", "-www", "-cert", cert, "-key", key,
                               "-quiet"], ns=ns)
    write(f"{d}/tinyproxy.conf", f"""
        Port 8888
        Listen {FOREIGN}
        Timeout 30
        Allow 10.0.0.0/8
        ConnectPort 443
        LogLevel Info
        PidFile "{d}/tinyproxy.pid"
        """)
    lab.spawn("tinyproxy", ["tinyproxy", "-d", "-c", f"{d}/tinyproxy.conf"], ns=ns)
    write(f"{d}/danted.conf", f"""
        logoutput: stderr
        internal: {FOREIGN} port = 1080
        external: {FOREIGN}
        clientmethod: none
        socksmethod: none
        user.privileged: root
        user.unprivileged: nobody
        client pass {{ from: 10.0.0.0/8 to: 0.0.0.0/0 }}
        socks pass {{ from: 10.0.0.0/8 to: 0.0.0.0/0 }}
        """)
    lab.spawn("danted", ["danted", "-f", f"{d}/danted.conf"], ns=ns)

    want = {f"{FOREIGN}:{p}" for p in (21, 110, 119, 6667, 443, 8888, 1080)}
    import time
    deadline = time.monotonic() + 20
    while True:
        have = set(run("ss", "-Hltn", ns=ns).stdout.split())
        if want <= have:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"foreign servers not listening: {sorted(want - have)}")
        time.sleep(0.1)


def drive(ns, run, py):
    """Runs every client once from `ns`; raises if one fails."""
    curl = ["curl", "-sS", "--max-time", "20"]
    run(*curl, f"ftp://{FOREIGN}/pub/", ns=ns)
    run(*curl, f"ftp://{FOREIGN}/pub/README", ns=ns)
    run(*curl, "--ssl-reqd", "-k", f"ftp://{FOREIGN}/pub/README", ns=ns)
    run(*curl, "-u", "labuser:labpass", f"pop3://{FOREIGN}/1", ns=ns)
    run(*curl, "-u", "labuser:labpass", "--ssl-reqd", "-k", f"pop3://{FOREIGN}/", ns=ns)
    run(py, "-c", NNTP_CLIENT, FOREIGN, ns=ns)
    run(py, "-c", IRC_CLIENT, FOREIGN, ns=ns)
    run(*curl, "-k", "-x", f"http://{FOREIGN}:8888", f"https://{FOREIGN}/", ns=ns)
    run(*curl, "-k", "--socks5", f"{FOREIGN}:1080", f"https://{FOREIGN}/", ns=ns)
    run(*curl, "-k", "--socks4", f"{FOREIGN}:1080", f"https://{FOREIGN}/", ns=ns)
