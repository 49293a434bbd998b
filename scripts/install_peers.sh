#!/usr/bin/env bash
# Installs the benchmark peers (root): hyperfine, tshark, GNU time from Debian; Suricata 7 from
# <codename>-backports through a private apt configuration (the system's sources stay untouched),
# as ../shared/lab/README.md describes. Skips whatever is already installed.
#
# The private configuration holds no host of its own: it copies the machine's apt entries (deb822
# stanzas in sources.list.d/*.sources, `deb` lines in sources.list and sources.list.d/*.list) whose
# suites are the release's codename (from os-release) or its -updates, -security and -backports
# suites, as configured, and adds <codename>-backports on the URIs of the codename's entry when
# none is configured. Without an entry for the codename it stops: there is no built-in mirror.
#
# usage: install_peers.sh [--print-sources]   (--print-sources: print that configuration, install nothing)
# env:   SURICATA_APT  private apt directory (default /tmp/smtpscope-apt)
#        APT_ETC, OS_RELEASE  where the apt configuration and os-release are read (tests)
set -euo pipefail
log() { echo "install_peers: $*" >&2; }
die() { log "$*"; exit 1; }

apt_etc=${APT_ETC:-/etc/apt}
os_release=${OS_RELEASE:-/etc/os-release}

# The release codename as os-release states it (a file meant to be read by the shell).
release_codename() {
  [ -r "$os_release" ] || die "cannot read $os_release"
  (
    set +u
    # shellcheck disable=SC1090
    . "$os_release"
    echo "${VERSION_CODENAME:-}"
  )
}

# Prints the private sources for codename $1: lines starting `list ` go to a one-line .list file,
# lines starting `sources ` to a deb822 .sources file. Exit status 3: no entry for the codename.
private_sources() {
  local files=()
  [ -f "$apt_etc/sources.list" ] && files+=("$apt_etc/sources.list")
  local f
  for f in "$apt_etc"/sources.list.d/*.list "$apt_etc"/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  ((${#files[@]})) || return 3
  awk -v code="$1" '
    function wanted(suite) {
      return suite == code || suite == code "-updates" || suite == code "-security" || suite == code "-backports"
    }
    # one-line format: deb [options] uri suite component...
    function oneline(line,    t, n, i, suite) {
      sub(/#.*/, "", line)
      n = split(line, t, /[ \t]+/)
      i = 1
      if (t[i] == "") i++
      if (t[i] != "deb") return
      i++
      if (substr(t[i], 1, 1) == "[") {
        while (i <= n && t[i] !~ /\]$/) i++
        i++
      }
      suite = t[i + 1]
      if (i + 1 > n || !wanted(suite)) return
      sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
      print "list " line
      if (suite == code) main_list[++n_main_list] = line
      if (suite == code "-backports") have_backports = 1
    }
    # deb822: the stanza collected in st[1..ns], its fields by lower-case name in fld[]
    function stanza(    i, k, types, enabled, ns_s, s, has_main, has_wanted, has_backports) {
      if (ns == 0) return
      types = " " fld["types"] " "; enabled = tolower(fld["enabled"])
      ns_s = split(fld["suites"], s, /[ \t]+/)
      for (k = 1; k <= ns_s; k++) {
        if (s[k] == "") continue
        if (wanted(s[k])) has_wanted = 1
        if (s[k] == code) has_main = 1
        if (s[k] == code "-backports") has_backports = 1
      }
      if (types ~ / deb / && enabled != "no" && has_wanted) {
        if (has_backports) have_backports = 1
        for (i = 1; i <= ns; i++) print "sources " st[i]
        print "sources "
        if (has_main && main_stanza == "") {
          for (i = 1; i <= ns; i++) main_stanza = main_stanza st[i] "\n"
        }
      }
      ns = 0; delete fld; delete st
    }
    FNR == 1 { stanza(); last = "" }
    FILENAME !~ /\.sources$/ { oneline($0); next }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { stanza(); next }
    /^[ \t]/ { st[++ns] = $0; if (last != "") fld[last] = fld[last] " " $0; next }
    {
      st[++ns] = $0
      k = tolower(substr($0, 1, index($0, ":") - 1)); v = substr($0, index($0, ":") + 1)
      sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
      fld[k] = v; last = k
    }
    END {
      stanza()
      if (n_main_list == 0 && main_stanza == "") exit 3
      if (have_backports) exit 0
      # backports on the URIs of the codename entry, with its options and components
      if (main_stanza != "") {
        n = split(main_stanza, l, "\n")
        for (i = 1; i < n; i++) {
          if (l[i] ~ /^[ \t]/ && skip) continue
          skip = 0
          k = tolower(substr(l[i], 1, index(l[i], ":") - 1))
          if (k == "suites") { print "sources Suites: " code "-backports"; skip = 1; continue }
          if (k == "types") { print "sources Types: deb"; skip = 1; continue }
          print "sources " l[i]
        }
        print "sources "
      } else {
        line = main_list[1]
        n = split(line, t, /[ \t]+/)
        out = ""
        for (i = 1; i <= n; i++) {
          if (!done && t[i] == code && i > 2) { t[i] = code "-backports"; done = 1 }
          out = out (i > 1 ? " " : "") t[i]
        }
        print "list " out
      }
    }
  ' "${files[@]}"
}

# Writes the private apt configuration for codename $1 into directory $2.
write_private_config() {
  local code=$1 d=$2 out rc=0
  out=$(private_sources "$code") || rc=$?
  if [ "$rc" = 3 ]; then
    die "no apt entry for '$code' in $apt_etc/sources.list or $apt_etc/sources.list.d/ (deb822 Suites: or a deb line): cannot tell where $code-backports lives; configure one, or install suricata yourself"
  fi
  [ "$rc" = 0 ] || die "reading the apt configuration failed ($rc)"
  mkdir -p "$d/lists/partial" "$d/parts"
  : > "$d/sources.list"
  rm -f "$d/parts/"*
  if grep -q '^list ' <<<"$out"; then sed -n 's/^list //p' <<<"$out" > "$d/parts/private.list"; fi
  if grep -q '^sources' <<<"$out"; then sed -n 's/^sources \{0,1\}//p' <<<"$out" > "$d/parts/private.sources"; fi
}

if [ "${1:-}" = --print-sources ]; then
  code=$(release_codename)
  [ -n "$code" ] || die "no VERSION_CODENAME in $os_release"
  d=$(mktemp -d)
  trap 'rm -rf "$d"' EXIT
  write_private_config "$code" "$d"
  for f in "$d"/parts/*; do
    echo "# $(basename "$f")"
    cat "$f"
  done
  exit 0
fi
[ $# = 0 ] || die "usage: install_peers.sh [--print-sources]"

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
  code=$(release_codename)
  [ -n "$code" ] || die "no VERSION_CODENAME in $os_release: cannot pick the backports suite"
  d=${SURICATA_APT:-/tmp/smtpscope-apt}
  write_private_config "$code" "$d"
  opts=(-o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" -o "Dir::State::Lists=$d/lists")
  log "suricata from $code-backports (private apt config in $d)"
  apt-get "${opts[@]}" update -q >/dev/null
  apt-get "${opts[@]}" install -y -q -t "$code-backports" suricata >/dev/null
fi
suricata -V >&2
hyperfine --version >&2
