#!/usr/bin/env python3
"""Paired evidence for `smtpscope --logs`: real Postfix logs (maillog_file, smtpd_tls_loglevel=1,
smtp_tls_loglevel=1, smtp_tls_note_starttls_offer=yes) written while tcpdump captures the same
sessions on the wire, for the verdicts Postfix can produce as a server (smtpd) and as a client
(smtp).

  log_lab.py pairs OUTDIR    writes OUTDIR/postfix-pairs.pcap, OUTDIR/postfix-srv.maillog,
                             OUTDIR/postfix-cli.maillog, OUTDIR/exchange-RECV.LOG (the lab's
                             Exchange-style server) and OUTDIR/postfix-pairs.jsonl (what each
                             session was meant to be)

  log_lab.py stripped OUTDIR writes OUTDIR/stripped.pcap (captured on the client's side) and
                             OUTDIR/stripped-srv.maillog: the receiving Postfix behind an inline
                             NFQUEUE box that masks STARTTLS as XXXXXXXA in place and keeps the
                             client's address (diff_lab.py's topology and asa_nfqueue.py, from the
                             two-point diff work; needs python3 NetfilterQueue)

  log_lab.py follow OUTDIR SMTPSCOPE
                             runs SMTPSCOPE -i on the client's veth with --logs following the
                             receiving Postfix's maillog (a glob that also matches the rotated
                             names) while sessions run; a real `logrotate -f` (create mode,
                             delaycompress, postrotate `postfix reload`) rotates the maillog twice
                             mid-run, one session straddling the first rotation; writes
                             OUTDIR/live.jsonl (smtpscope's stdout), OUTDIR/live.err, OUTDIR/live.rc,
                             OUTDIR/summary.json (--summary),
                             OUTDIR/follow.jsonl (what each session was meant to be) and
                             OUTDIR/rotated.txt (the maillog files at the end)

  log_lab.py check OUTDIR SMTPSCOPE
                             runs SMTPSCOPE check -i on the client's veth with -s 120 (the
                             negotiated TLS version is beyond the snapshot length) and --logs
                             following the receiving Postfix's maillog, under OUTDIR/policy.toml:
                             a TLS 1.3 session the log proves, an offered-unused session (a
                             violation), a session to the Exchange-style server, whose log is not
                             followed (unproven once its wait is over), and a session still open
                             when smtpscope is stopped with SIGINT; writes OUTDIR/stream.jsonl
                             (each stdout line with the time it came), OUTDIR/check.jsonl (each
                             session with the time it ended), OUTDIR/stop.json, OUTDIR/live.err,
                             OUTDIR/live.rc, OUTDIR/records/records.jsonl (--output), OUTDIR/summary.json
                             and OUTDIR/unmatched.jsonl

  log_lab.py follow-tui OUTDIR SMTPSCOPE
                             follow's run in the terminal UI (SMTPSCOPE -i --logs --tui in a tmux
                             of its own, records also to --output, packets to a -w ring): Postfix
                             sessions before and
                             after a real `logrotate -f`, then one to the Exchange-style server,
                             whose log is not followed; writes the screens OUTDIR/screen-*.txt (the
                             Exchange session's row waiting, every row settled, the log:agree
                             filter, the Log tab), OUTDIR/live.jsonl (the --output records),
                             OUTDIR/live.err, OUTDIR/live.rc, OUTDIR/summary.json (--summary),
                             OUTDIR/follow.jsonl and OUTDIR/rotated.txt

The lab of lab.py (its namespaces, Postfix instances and clients; namespace names carry this
run's pid). The sending Postfix gets a transport map so that mail for a test domain goes to the
listener that gives the verdict wanted. Sessions are 2 s apart: Postfix logs no client port, and
the cross-check pairs a log session with the wire session whose SYN is within 1 s of it.
The stripped pairing needs an inline box that keeps the client's address: lab.py's strip_proxy.py
terminates TCP, so its server would log the proxy as its client.
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

# recipient domain -> (sending Postfix transport, what the session is meant to be on the wire)
ROUTES = {
    "tls.lab.example": ("smtp:[%s]:25" % L.PF_GOOD, "starttls"),
    "plain.lab.example": ("smtp:[%s]:25" % L.PF_PLAIN, "plaintext"),
    "unused.lab.example": ("notls:[%s]:25" % L.PF_GOOD, "starttls-offered-unused"),
}


def postfix_cli_routes(lab):
    """Transport map, the `notls` client service and the offer note on the sending Postfix."""
    d = lab.pf_cli
    with open(f"{d}/transport", "w") as f:
        f.writelines(f"{dom} {t}\n" for dom, (t, _) in ROUTES.items())
    with open(f"{d}/main.cf", "a") as f:
        f.write(f"transport_maps = texthash:{d}/transport\nsmtp_tls_note_starttls_offer = yes\n")
    with open(f"{d}/master.cf", "a") as f:
        f.write("notls unix - - n - - smtp -o smtp_tls_security_level=none\n")
    L.run("ip", "netns", "exec", L.CLI, "postfix", "-c", d, "reload")
    time.sleep(1.5)


def send_via_postfix(lab, rcpt, want_sent=True):
    """Hands one message for `rcpt` to the sending Postfix and waits for its delivery line."""
    mlog = f"{lab.pf_cli}/maillog"
    before = open(mlog).read().count(f"to=<{rcpt}>")
    L.run("swaks", "--server", "127.0.0.1", "--port", "10025", "--from", "carol@lab.example", "--to", rcpt,
          "--timeout", "20", ns=L.CLI, timeout=60, stdin=L.subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while open(mlog).read().count(f"to=<{rcpt}>") <= before:
        if time.monotonic() > deadline:
            raise L.LabError(f"no delivery line for {rcpt}:\n" + open(mlog).read()[-3000:])
        time.sleep(0.2)


def session(label, side, note, **kw):
    return {"verdict": label, "log_side": side, "note": note, **kw}


def pairs(lab, cap):
    out = []
    gap = lambda: time.sleep(2.0)  # noqa: E731
    # Postfix as the server (smtpd): the wire client is this lab's client address
    for name, fn in (("plaintext", L.sc_plaintext), ("offered-unused", L.sc_offered_unused),
                     ("tls13", L.sc_tls13_sni), ("tls12", L.sc_tls12_cert), ("expired", L.sc_expired),
                     ("refused", L.sc_454), ("implicit", L.sc_implicit)):
        L.log(f"pair {name}")
        for s in fn(lab, cap):
            out.append(session(s["label"], "postfix-smtpd", s.get("note", ""), scenario=name))
        gap()
    # Postfix as the client (smtp) and, at the same time, Postfix as the server
    for dom, (_, verdict) in ROUTES.items():
        L.log(f"pair postfix-smtp {verdict}")
        send_via_postfix(lab, f"dave@{dom}")
        out.append(session(verdict, "postfix-smtp", f"sending Postfix -> {ROUTES[dom][0]}", scenario=dom))
        gap()
    # the Exchange-style server's SmtpReceive log (tests/lab/exchange_smtpd.py --protocol-log)
    L.log("pair exchange starttls")
    lab.client("starttls", f"{L.EXCHANGE}:25", "--helo", "EXHUB04.contoso.com")
    out.append(session("starttls", "exchange-receive", "STARTTLS: every log line in a real sample's shape",
                       scenario="exchange-starttls"))
    gap()
    L.log("pair exchange x-anonymoustls")
    for s in L.sc_xanon(lab, cap):
        out.append(session(s["label"], "exchange-receive", "INFERRED: the X-ANONYMOUSTLS line has no real sample",
                           scenario="exchange-xanon"))
    gap()
    L.log("pair exchange suppressed")
    for s in L.sc_suppressed(lab, cap):
        out.append(session(s["label"], "exchange-receive", "INFERRED: plaintext needs the `-` line, which has no "
                           "real sample", scenario="exchange-suppressed"))
    gap()
    # the sending Postfix limited to TLS 1.3 against the TLS-1.2-only listener: two failed
    # handshakes, then the fallback in clear (lab.py's alert-retry)
    L.log("pair alert-retry")
    for s in L.sc_alert_retry(lab, cap):
        out.append(session(s["label"], "postfix-smtp", s.get("note", ""), scenario="alert-retry"))
    gap()
    return out


def cmd_pairs(outdir):
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-loglab-")
    os.chmod(work, 0o755)

    def body(lab):
        postfix_cli_routes(lab)
        pcap = os.path.join(work, "postfix-pairs.pcap")
        cap = L.Capture(lab, pcap, "direct")
        cap.start()
        sessions = pairs(lab, cap)
        cap.stop()
        time.sleep(1.0)
        shutil.copy(pcap, os.path.join(outdir, "postfix-pairs.pcap"))
        shutil.copy(f"{lab.pf_srv}/maillog", os.path.join(outdir, "postfix-srv.maillog"))
        shutil.copy(f"{lab.pf_cli}/maillog", os.path.join(outdir, "postfix-cli.maillog"))
        shutil.copy(os.path.join(work, "exchange-RECV.LOG"), os.path.join(outdir, "exchange-RECV.LOG"))
        with open(os.path.join(outdir, "postfix-pairs.jsonl"), "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in sessions)
        L.log(f"{len(sessions)} sessions -> {outdir}")

    try:
        L.with_lab(work, body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_stripped(outdir):
    import diff_lab as D
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-loglab-")
    lab = D.DiffLab(work)
    ok = False
    try:
        lab.up()
        cap = D.TwoPoint(lab, os.path.join(work, "stripped"))
        cap.start()
        info = D.sc_asa(lab)
        cap.stop()
        time.sleep(1.0)
        shutil.copy(os.path.join(work, "stripped-a.pcap"), os.path.join(outdir, "stripped.pcap"))
        shutil.copy(os.path.join(work, "postfix-srv", "maillog"), os.path.join(outdir, "stripped-srv.maillog"))
        L.log(f"stripped: {info} -> {outdir}")
        ok = True
    finally:
        if not ok:
            lab.dump_logs()
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


class NoCapture:
    """smtpscope is the capture here: the scenarios' own capture hooks do nothing."""

    def start(self):
        pass

    def stop(self):
        pass


def logrotate(lab, conf, state):
    p = L.run("logrotate", "-f", "-s", state, conf, check=False)
    if p.returncode != 0:
        raise L.LabError(f"logrotate failed:\n{p.stdout}{p.stderr}")


def logrotate_conf(lab, work, maillog):
    """The receiving Postfix's maillog as a site rotates it: create mode, delaycompress and
    `postfix reload` in postrotate; returns the config's path."""
    conf = os.path.join(work, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(f"{maillog} {{\n    create 0644 postfix postfix\n    rotate 3\n    compress\n"
                f"    delaycompress\n    postrotate\n        ip netns exec {L.SRV} postfix -c {lab.pf_srv} reload"
                f" >/dev/null 2>&1\n    endscript\n}}\n")
    return conf


def wait_listening(p, err_path):
    """Waits (30 s at most) until smtpscope says it is listening."""
    deadline = time.monotonic() + 30
    while "listening on" not in open(err_path).read():
        if p.poll() is not None or time.monotonic() > deadline:
            raise L.LabError("smtpscope did not start:\n" + open(err_path).read())
        time.sleep(0.05)


def run_scenarios(lab, cap, tag, note, scenarios):
    """Runs each (name, scenario) 2.5 s apart; the sessions Postfix's smtpd logs, each with `note`."""
    sessions = []
    for name, fn in scenarios:
        L.log(f"{tag} {name}")
        sessions += [session(s["label"], "postfix-smtpd", note, scenario=name) for s in fn(lab, cap)]
        time.sleep(2.5)
    return sessions


def cmd_follow(outdir, smtpscope):
    import subprocess
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-logfollow-")
    os.chmod(work, 0o755)

    def body(lab):
        maillog = f"{lab.pf_srv}/maillog"
        conf = logrotate_conf(lab, work, maillog)
        out = open(os.path.join(outdir, "live.jsonl"), "w")
        err_path = os.path.join(outdir, "live.err")
        err = open(err_path, "w")
        argv = ["ip", "netns", "exec", L.CLI, smtpscope, "-i", L.V_CLI, "--logs", maillog + "*",
                "--log-skew", "1s", "--log-wait", "10s", "--unmatched-logs", os.path.join(outdir, "unmatched.jsonl"),
                "--summary", os.path.join(outdir, "summary.json"), "-F", "json", "tcp"]
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_listening(p, err_path)
            cap = NoCapture()
            sessions = run_scenarios(lab, cap, "follow", "before the rotations",
                                     (("plaintext", L.sc_plaintext), ("offered-unused", L.sc_offered_unused)))
            # a session whose connect line is in the old file and its disconnect in the new one
            release = L.paused(lab, "straddle", "pause", f"{L.PF_GOOD}:25", "--helo", "straddle.lab.example")
            time.sleep(0.5)
            L.log("follow: logrotate -f (1)")
            logrotate(lab, conf, os.path.join(work, "logrotate.state"))
            time.sleep(1.0)
            release()
            sessions.append(session("starttls-offered-unused", "postfix-smtpd", "straddles the first rotation",
                                    scenario="straddle"))
            time.sleep(2.5)
            sessions += run_scenarios(lab, cap, "follow", "after one rotation",
                                      (("tls13", L.sc_tls13_sni), ("refused", L.sc_454)))
            L.log("follow: logrotate -f (2)")
            logrotate(lab, conf, os.path.join(work, "logrotate.state"))
            time.sleep(1.0)
            sessions += run_scenarios(lab, cap, "follow", "after two rotations",
                                      (("tls12", L.sc_tls12_cert), ("implicit", L.sc_implicit)))
        finally:
            time.sleep(1.0)
            lab.stop(p, L.signal.SIGINT, grace=60)
            rc = p.returncode
            out.close()
            err.close()
            with open(os.path.join(outdir, "live.rc"), "w") as f:
                f.write(f"{rc}\n")
        with open(os.path.join(outdir, "follow.jsonl"), "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in sessions)
        with open(os.path.join(outdir, "rotated.txt"), "w") as f:
            f.writelines(n + "\n" for n in sorted(os.listdir(lab.pf_srv)) if n.startswith("maillog"))
        for n in os.listdir(lab.pf_srv):
            if n.startswith("maillog"):
                shutil.copy(os.path.join(lab.pf_srv, n), os.path.join(outdir, n))
        L.log(f"follow: {len(sessions)} sessions, smtpscope exit {rc} -> {outdir}")

    try:
        L.with_lab(work, body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


CHECK_POLICY = f"""[groups]
LAB = ["{L.CLIENT}"]
MX = ["{L.PF_GOOD}"]
HUB = ["{L.EXCHANGE}"]

[[rule]]
name = "lab to the MX"
from = "LAB"
to = "MX"
expect = "tls"
min_version = "TLS1.3"

[[rule]]
name = "lab to the hub"
from = "LAB"
to = "HUB"
expect = "tls"
min_version = "TLS1.2"
"""

# How long smtpscope holds a finished session for its log lines in the check run.
CHECK_LOG_WAIT = 5


def cmd_check(outdir, smtpscope):
    import subprocess
    import threading
    # --output is created (and rotated) by the user smtpscope becomes (nobody)
    records = os.path.join(outdir, "records")
    os.makedirs(records, exist_ok=True)
    os.chmod(outdir, 0o755)
    os.chmod(records, 0o777)
    work = tempfile.mkdtemp(prefix="smtpscope-logcheck-")
    os.chmod(work, 0o755)
    policy = os.path.join(outdir, "policy.toml")
    with open(policy, "w") as f:
        f.write(CHECK_POLICY)

    def body(lab):
        maillog = f"{lab.pf_srv}/maillog"
        err_path = os.path.join(outdir, "live.err")
        err = open(err_path, "w")
        argv = ["ip", "netns", "exec", L.CLI, smtpscope, "check", "-i", L.V_CLI, "-s", "120", "--policy", policy,
                "--logs", maillog + "*", "--log-skew", "1s", "--log-wait", f"{CHECK_LOG_WAIT}s",
                "--unmatched-logs", os.path.join(outdir, "unmatched.jsonl"),
                "--output", os.path.join(records, "records.jsonl"),
                "--summary", os.path.join(outdir, "summary.json"), "-F", "json", "tcp"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        stream = open(os.path.join(outdir, "stream.jsonl"), "w")

        def read_stdout():
            # each line with the time it came: the test holds it against the session's end
            for line in p.stdout:
                stream.write(json.dumps({"at": time.time(), "line": json.loads(line)}) + "\n")
                stream.flush()
        reader = threading.Thread(target=read_stdout)
        reader.start()
        sessions = []
        release = None
        stop = {}
        try:
            wait_listening(p, err_path)
            cap = NoCapture()
            for name, fn in (("tls13", L.sc_tls13_sni), ("offered-unused", L.sc_offered_unused),
                             ("exchange", None)):
                L.log(f"check {name}")
                if fn is None:
                    lab.client("starttls", f"{L.EXCHANGE}:25", "--helo", "EXHUB04.contoso.com")
                    ran = [{"label": "starttls", "server": f"{L.EXCHANGE}:25"}]
                else:
                    ran = fn(lab, cap)
                sessions += [{"scenario": name, "verdict": s["label"], "server": s["server"], "ended": time.time()}
                             for s in ran]
                time.sleep(2.5)
            # the exchange session's log is not followed: its line comes once its wait is over
            time.sleep(CHECK_LOG_WAIT)
            L.log("check: a session still open at the stop")
            release = L.paused(lab, "open", "pause", f"{L.PF_GOOD}:25", "--helo", "open.lab.example")
            sessions.append({"scenario": "open", "verdict": "incomplete", "server": f"{L.PF_GOOD}:25",
                             "ended": None})
            time.sleep(1.0)
        finally:
            if p.poll() is None:
                stop["signalled"] = time.time()
            lab.stop(p, L.signal.SIGINT, grace=60)
            rc = p.returncode
            stop["exited"] = time.time()
            reader.join()
            stream.close()
            err.close()
            with open(os.path.join(outdir, "live.rc"), "w") as f:
                f.write(f"{rc}\n")
            if release is not None:
                release()
        with open(os.path.join(outdir, "stop.json"), "w") as f:
            json.dump({**stop, "log_wait": CHECK_LOG_WAIT}, f)
        with open(os.path.join(outdir, "check.jsonl"), "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in sessions)
        shutil.copy(maillog, os.path.join(outdir, "maillog"))
        L.log(f"check: {len(sessions)} sessions, smtpscope exit {rc} -> {outdir}")

    try:
        L.with_lab(work, body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_follow_tui(outdir, smtpscope):
    import subprocess
    import shlex
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="smtpscope-logfollowtui-")
    os.chmod(work, 0o755)
    sock = f"smtpscope-loglab-{os.getpid()}"

    def tmux(*a):
        return subprocess.run(["tmux", "-L", sock, *a], capture_output=True, text=True)

    def screen():
        return tmux("capture-pane", "-p", "-t", "t").stdout

    def wait_screen(what, pred, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            s = screen()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise L.LabError(f"timed out waiting for {what}; screen:\n{s}")
            time.sleep(0.05)

    def save(name, text):
        with open(os.path.join(outdir, name), "w") as f:
            f.write(text)

    def rows(s):
        # The session table's rows: between its column titles and the bottom of its box.
        lines = s.splitlines()
        at = next((i for i, l in enumerate(lines) if "VERDICT" in l and "LOG" in l), None)
        if at is None:
            return []
        out = []
        for l in lines[at + 1:]:
            if l.startswith("└"):
                break
            out.append(l)
        return out

    def body(lab):
        maillog = f"{lab.pf_srv}/maillog"
        conf = logrotate_conf(lab, work, maillog)
        q = shlex.quote
        rc_path = os.path.join(outdir, "live.rc")
        for n in ("live.rc", "live.jsonl", "live.err", "unmatched.jsonl", "summary.json", "ring.pcap0", "ring.pcap1",
                  "ring.pcap2"):
            if os.path.exists(os.path.join(outdir, n)):
                os.remove(os.path.join(outdir, n))
        cmd = (f"ip netns exec {L.CLI} {q(smtpscope)} -i {L.V_CLI} --logs {q(maillog + '*')} --log-skew 1s "
               f"--log-wait 8s --tui --output {q(os.path.join(outdir, 'live.jsonl'))} "
               f"-w {q(os.path.join(outdir, 'ring.pcap'))} -C 1 -W 3 "
               f"--unmatched-logs {q(os.path.join(outdir, 'unmatched.jsonl'))} "
               f"--summary {q(os.path.join(outdir, 'summary.json'))} tcp "
               f"2> {q(os.path.join(outdir, 'live.err'))}; echo $? > {q(rc_path)}; sleep 600")
        p = tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "50", "-e", "TERM=xterm-256color", cmd)
        if p.returncode != 0:
            raise L.LabError(f"tmux did not start: {p.stderr}")
        wait_screen("the UI", lambda s: f"interface {L.V_CLI}" in s)
        cap = NoCapture()
        sessions = run_scenarios(lab, cap, "follow-tui", "before the rotation",
                                 (("plaintext", L.sc_plaintext), ("offered-unused", L.sc_offered_unused)))
        L.log("follow-tui: logrotate -f")
        logrotate(lab, conf, os.path.join(work, "logrotate.state"))
        time.sleep(1.0)
        sessions += run_scenarios(lab, cap, "follow-tui", "after the rotation",
                                  (("tls13", L.sc_tls13_sni), ("refused", L.sc_454)))
        # The Exchange-style server writes no line to the followed maillog: its row waits.
        L.log("follow-tui xanon (no log followed for it)")
        sessions += [session(s["label"], None, "not in the followed log", scenario="xanon") for s in L.sc_xanon(lab, cap)]
        waiting = wait_screen("the Exchange session's row waiting for its log lines",
                              lambda s: any("EXHUB02" in r and " wait " in r for r in rows(s)), timeout=6)
        save("screen-wait.txt", waiting)
        # Every row settled: linked, or waited out (--log-wait 8s).
        settled = wait_screen("every row to settle",
                              lambda s: len(rows(s)) >= len(sessions) and not any(" wait " in r for r in rows(s))
                              and any("EXHUB02" in r and " none " in r for r in rows(s)), timeout=20)
        save("screen-final.txt", settled)
        tmux("send-keys", "-t", "t", "/")
        tmux("send-keys", "-t", "t", "-l", "log:agree")
        tmux("send-keys", "-t", "t", "Enter")
        save("screen-agree.txt", wait_screen("the log:agree filter", lambda s: "(filtered)" in s and "EXHUB02" not in s))
        tmux("send-keys", "-t", "t", "5")
        save("screen-logtab.txt", wait_screen("the Log tab", lambda s: "logged line(s)" in s))
        tmux("send-keys", "-t", "t", "q")
        deadline = time.monotonic() + 60
        while not os.path.exists(rc_path) or not open(rc_path).read().strip():
            if time.monotonic() > deadline:
                raise L.LabError("smtpscope did not exit; screen:\n" + screen())
            time.sleep(0.1)
        with open(os.path.join(outdir, "follow.jsonl"), "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in sessions)
        with open(os.path.join(outdir, "rotated.txt"), "w") as f:
            f.writelines(n + "\n" for n in sorted(os.listdir(lab.pf_srv)) if n.startswith("maillog"))
        L.log(f"follow-tui: {len(sessions)} sessions, smtpscope exit {open(rc_path).read().strip()} -> {outdir}")

    try:
        L.with_lab(work, body)
    finally:
        tmux("kill-server")
        shutil.rmtree(work, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        sys.exit("log_lab.py: needs root (network namespaces, tcpdump)")
    args = sys.argv[1:]
    cmds = {"pairs": cmd_pairs, "stripped": cmd_stripped}
    live = {"follow": cmd_follow, "check": cmd_check, "follow-tui": cmd_follow_tui}
    if len(args) == 3 and args[0] in live:
        try:
            live[args[0]](args[1], args[2])
        except L.LabError as e:
            sys.exit(f"log_lab.py: {e}")
    elif len(args) == 2 and args[0] in cmds:
        try:
            cmds[args[0]](args[1])
        except L.LabError as e:
            sys.exit(f"log_lab.py: {e}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
