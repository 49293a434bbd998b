#!/usr/bin/env bash
# Installs the benchmark peers (root): hyperfine, tshark, GNU time from Debian; Suricata 7 from
# bookworm-backports through a private apt configuration (the system's sources stay untouched),
# as ../shared/lab/README.md describes. Skips whatever is already installed.
set -euo pipefail
log() { echo "install_peers: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v tshark >/dev/null || need+=(tshark)
command -v valgrind >/dev/null || need+=(valgrind)
[ -x /usr/bin/time ] || need+=(time)
if ((${#need[@]})); then
  log "apt: ${need[*]}"
  apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi
if ! command -v suricata >/dev/null; then
  d=${SURICATA_APT:-/tmp/smtpscope-apt}
  mkdir -p "$d/lists/partial" "$d/parts"
  mirror=http://deb.debian.org/debian
  security=http://deb.debian.org/debian-security
  cat > "$d/sources.list" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
deb $mirror bookworm-backports main
SRC
  opts=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" -o "Dir::State::Lists=$d/lists")
  log "suricata from bookworm-backports (private apt config in $d)"
  apt-get "${opts[@]}" update -q >/dev/null
  apt-get "${opts[@]}" install -y -q -t bookworm-backports suricata >/dev/null
fi
suricata -V >&2
hyperfine --version >&2
