#!/usr/bin/env bash
# One-way layering: the stages and the sources beside them import no front end.
#
# Every top-level module of src/ is either a lower module (a stage, a source, or a helper they
# share) or a front end; a lower module may not name a front end anywhere in its files (`use
# crate::report::...` or an inline `crate::check::...`). A new module must be classified here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Stages, sources and what they share: capture -> decode -> flow -> smtp / tls -> session.
LOWER="capture logs decode decompress flow smtp tls session conversation engine driver escape timefmt community_id summary ports privilege suggest strftime records"

# Front ends (and the command line above them). They may import lower modules and each other.
FRONT="report check filter tui cli fuzzing output metrics diff"

front_re=$(echo "$FRONT" | tr ' ' '|')
status=0
for entry in src/*; do
  name=$(basename "$entry" .rs)
  case "$name" in main | lib) continue ;; esac
  if [[ " $LOWER " == *" $name "* ]]; then
    hits=$(grep -rnE "crate::($front_re)\b" "$entry" | grep -vE '^\S+:[0-9]+:\s*//' || true)
    if [ -n "$hits" ]; then
      echo "layering: $name (a lower module) imports a front end:" >&2
      echo "$hits" | sed 's/^/  /' >&2
      status=1
    fi
  elif [[ " $FRONT " != *" $name "* ]]; then
    echo "layering: src/$name is not classified: add it to LOWER or FRONT in $0" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "layering: ok ($(echo $LOWER | wc -w) lower modules import no front end)"
exit "$status"
