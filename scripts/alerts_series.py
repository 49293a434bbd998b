#!/usr/bin/env python3
"""promtool input for docs/prometheus/alerts.yml from a real sensor's /metrics.

    scripts/alerts_series.py EXPOSITION [INSTANCE] > docs/prometheus/alerts_test.yml

EXPOSITION is a /metrics scrape taken right after a run (scripts/alerts_series.sh makes one) with
a line `# scraped_at SECONDS` (the scrape's Unix time) added by the script. Every smtpscope series
of the scrape becomes an input series with the labels Prometheus adds (job, instance); the
expected alerts are worked out from the same values.

promtool's clock starts at 0, the scrape's at the real time, so times are rebased: the run's
sessions are counted at minute 11 of the test (counters 0 until minute 10, the scraped value from
minute 11), and timestamps keep their distance to the scrape (the scrape is minute 11). After the
run the sensor sees no packet: the last packet's time stays, which the blind alert must notice.
"""

import json
import re
import sys

SCRAPE_MIN = 11  # the test minute at which the scrape happened
END_MIN = 30  # series run to this minute
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
TIMESTAMPS = ("smtpscope_last_packet_timestamp_seconds", "smtpscope_certificate_not_after_seconds",
              "smtpscope_certificate_last_seen_timestamp_seconds")


def parse(text):
    scraped_at, samples = None, []
    for line in text.splitlines():
        if line.startswith("# scraped_at "):
            scraped_at = float(line.split()[2])
        m = SAMPLE.match(line)
        if not line.startswith("#") and m and m.group(1).startswith("smtpscope_"):
            labels = [(k, v) for k, v in LABEL.findall(m.group(2) or "")]
            samples.append((m.group(1), labels, float(m.group(3))))
    if scraped_at is None:
        sys.exit("alerts_series: no '# scraped_at SECONDS' line in the exposition")
    return scraped_at, samples


def num(v):
    return str(int(v)) if v == int(v) else repr(v)


def series(name, labels):
    body = ",".join(f'{k}="{v}"' for k, v in labels)
    return "'" + f"{name}{{{body}}}".replace("'", "''") + "'"


def humanize_duration(v):
    """Prometheus's humanizeDuration for whole seconds."""
    sign = "-" if v < 0 else ""
    v = int(abs(v))
    d, h, m, s = v // 86400, v // 3600 % 24, v // 60 % 60, v % 60
    if d:
        return f"{sign}{d}d {h}h {m}m {s}s"
    if h:
        return f"{sign}{h}h {m}m {s}s"
    if m:
        return f"{sign}{m}m {s}s"
    return f"{sign}{s}s"


def q(s):
    return json.dumps(s, ensure_ascii=False)


def main():
    path = sys.argv[1]
    instance = sys.argv[2] if len(sys.argv) > 2 else None
    with open(path) as f:
        scraped_at, samples = parse(f.read())
    if instance is None:
        sensor = next(dict(l).get("sensor") for n, l, _ in samples if n == "smtpscope_build_info")
        instance = f"{sensor}:9464"
    base = [("job", "smtpscope"), ("instance", instance)]
    at = SCRAPE_MIN * 60
    inputs, values = [], {}
    for name, labels, v in samples:
        if name in TIMESTAMPS:
            rebased = at + (v - scraped_at)
            vals = f"{num(round(rebased))}x{END_MIN}"
            v = round(rebased)
        elif name.endswith("_total"):
            vals = f"0x{SCRAPE_MIN - 1} {num(v)}x{END_MIN - SCRAPE_MIN}"
        else:
            vals = f"{num(v)}x{END_MIN}"
        inputs.append((series(name, base + labels), vals))
        values.setdefault(name, []).append((dict(labels), v))
    inputs.append((series("up", base), f"1x{END_MIN}"))

    def labels_of(extra):
        return {"job": "smtpscope", "instance": instance, **extra}

    tests = []
    eval_at = SCRAPE_MIN + 1
    for alert, severity, pattern in (("SmtpPlaintextWherePolicyWantsTls", "critical", "over TLS"),
                                     ("SmtpTlsWherePolicyWantsPlaintext", "warning", "in clear")):
        fired = []
        for l, v in values.get("smtpscope_check_sessions_total", []):
            if l.get("outcome") == "violation" and pattern in l.get("rule", "") and v > 0:
                rule = l["rule"]
                if alert == "SmtpPlaintextWherePolicyWantsTls":
                    summary = f"Mail in plaintext where the policy wants TLS ({rule}, sensor {instance})"
                    desc = (f'{num(v)} session(s) broke rule "{rule}" in the last 10 minutes: STARTTLS stripped, '
                            "refused, failed or not used, or a TLS version below the minimum. The sensor's --output "
                            "records (or check -i's stdout) name each session with its evidence.")
                else:
                    summary = f"TLS where the policy wants plaintext ({rule}): the WAN optimizers see nothing"
                    desc = (f'{num(v)} session(s) broke rule "{rule}" in the last 10 minutes: TLS (or an offer of '
                            "X-ANONYMOUSTLS) between hosts whose traffic must stay in clear for the WAN optimizers, "
                            "e.g. after an update re-enabled X-ANONYMOUSTLS on an Exchange receive connector.")
                fired.append((labels_of({"severity": severity, **l}), {"summary": summary, "description": desc}))
        tests.append((eval_at, alert, fired))
        # Ten minutes on, no new violation: resolved.
        tests.append((eval_at + 12, alert, []))
    certs = []
    for l, v in values.get("smtpscope_certificate_not_after_seconds", []):
        left = v - eval_at * 60
        if left < 14 * 86400:
            certs.append((labels_of({"severity": "warning", **l}), {
                "summary": f"Certificate of {l['server']}:{l['port']} expires within 14 days",
                "description": (f"{l['subject']} (SHA-1 {l['sha1']}) expires in {humanize_duration(left)}. Only "
                                "certificates seen in clear (TLS 1.2 and older) are watched: TLS 1.3 hides them."),
            }))
    tests.append((eval_at, "SmtpCertificateExpiresSoon", certs))
    last = [v for _, v in values.get("smtpscope_last_packet_timestamp_seconds", [])]
    blind_from = int(last[0] + 15 * 60) // 60 + 1 if last else None
    tests.append((eval_at, "SmtpscopeSensorBlind", []))
    if blind_from is not None and blind_from <= END_MIN:
        tests.append((blind_from, "SmtpscopeSensorBlind", [(labels_of({"severity": "warning"}), {
            "summary": f"smtpscope sensor {instance} has seen no packet for 15 minutes",
            "description": ("The SPAN port, the interface or the BPF filter may have changed: without packets "
                            "nothing is verified."),
        })]))
    drops = sum(v for _, v in values.get("smtpscope_kernel_drops_total", []))
    tests.append((eval_at, "SmtpscopeKernelDrops", [] if drops == 0 else None))

    out = [
        "# promtool test rules alerts_test.yml: made by scripts/alerts_series.py from a real run's /metrics",
        "# (scripts/alerts_series.sh; the scrape is docs/prometheus/metrics-sample.txt). Do not edit: rerun.",
        "# Times rebased onto promtool's clock: the scrape is minute %d, counters rise there from 0." % SCRAPE_MIN,
        "rule_files:",
        "  - alerts.yml",
        "",
        "evaluation_interval: 1m",
        "",
        "tests:",
        "  - interval: 1m",
        "    input_series:",
    ]
    for s, vals in inputs:
        out += [f"      - series: {s}", f"        values: '{vals}'"]
    out.append("    alert_rule_test:")
    for minute, alert, fired in tests:
        if fired is None:
            continue  # drops in the run: no fixed expectation
        out += [f"      - eval_time: {minute}m", f"        alertname: {alert}"]
        if not fired:
            out.append("        exp_alerts: []")
            continue
        out.append("        exp_alerts:")
        for labels, ann in fired:
            out.append("          - exp_labels:")
            out += [f"              {k}: {q(v)}" for k, v in labels.items()]
            out.append("            exp_annotations:")
            out += [f"              {k}: {q(v)}" for k, v in ann.items()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
