#!/usr/bin/env python3
"""Writes a Suricata config for the benchmark: the system's suricata.yaml with its `outputs:`
section replaced by eve-log with only SMTP and TLS records (no alerts, flows, stats or files).
usage: suricata_conf.py [SYSTEM_YAML] > bench.yaml"""
import re, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/etc/suricata/suricata.yaml"
lines = open(src).read().split("\n")
out, skip = [], False
OUTPUTS = """outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - smtp
        - tls:
            extended: yes"""
for line in lines:
    if re.match(r"^outputs:", line):
        out.append(OUTPUTS)
        skip = True
        continue
    if skip and re.match(r"^[A-Za-z%]", line):
        skip = False
    if not skip:
        out.append(line)
text = "\n".join(out)
# The periodic stats counters are not part of the job.
text = re.sub(r"(?m)^stats:\n  enabled: yes", "stats:\n  enabled: no", text)
print(text)
