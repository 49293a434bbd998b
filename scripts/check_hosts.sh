#!/usr/bin/env bash
# Fails when a file names a package registry or distribution mirror host: scripts, docs, tests and
# sources must take such hosts from the machine's own configuration (see install_peers.sh), never
# carry one. Cargo.lock's generated `source = "registry+…"` lines are exempt.
#
# usage: scripts/check_hosts.sh [DIR]   (default: the repository; in a git work tree the files git
#                                       tracks or would track, else every file under DIR)
# The patterns below spell the dot as [.] so that this file does not match itself.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

patterns=(
  '(deb|security|ftp|httpredir|snapshot|archive|cdn-fastly[.]deb|ftp[.][a-z]{2})[.]debian[.]org'
  '([a-z]{2}[.])?(archive|security|ports)[.]ubuntu[.]com'
  'dl-cdn[.]alpinelinux[.]org'
  '(mirrors?|download)[.]fedoraproject[.]org'
  '(static[.]|index[.])?crates[.]io'
  'pypi[.](python[.])?org'
  'files[.]pythonhosted[.]org'
  'npmjs[.](org|com)'
  'registry[.]yarnpkg[.]com'
  '(proxy|sum)[.]golang[.]org'
  'rubygems[.]org'
  'repo1?[.]maven[.](apache[.])?org'
  'nuget[.]org'
  'packagist[.]org'
  'hackage[.]haskell[.]org'
  '(www[.])?cpan[.]org'
  '(conda[.]anaconda[.]org|repo[.]anaconda[.]com)'
  'deb[.]nodesource[.]com'
)
re=$(IFS='|'; echo "${patterns[*]}")

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  list() { git ls-files -z -co --exclude-standard; }
else
  list() { find . -type f -not -path './.git/*' -print0; }
fi

hits=$(list | xargs -0 -r grep -I -n -i -E -H -- "$re" 2>/dev/null \
  | grep -v -E '(^|/)Cargo[.]lock:[0-9]+:source = "registry[+]' || true)
if [ -n "$hits" ]; then
  echo "check_hosts: package registry or mirror host names (take them from the machine's configuration):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check_hosts: no registry or mirror host names"
