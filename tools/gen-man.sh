#!/usr/bin/env bash
# tools/gen-man.sh SEMBED OUTDIR VERSION: man pages for `sembed` and for each subcommand that
# `SEMBED --help` lists, made by help2man from the binary's own --help (so they say what the
# binary does), gzipped as Debian installs them: OUTDIR/sembed.1.gz, OUTDIR/sembed-<cmd>.1.gz.
# Run by the build (target sembed_doc); stale pages of removed subcommands are deleted.
# SOURCE_DATE_EPOCH (default: the last commit's time, else 0) fixes the date in the pages.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: tools/gen-man.sh SEMBED OUTDIR VERSION" >&2; exit 2; }
sembed=$1 out=$2 version=$3
command -v help2man >/dev/null || { echo "gen-man.sh: help2man is not installed (apt-get install help2man)" >&2; exit 1; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Subcommands and their one-line descriptions: the "commands:" block of `sembed --help`.
"$sembed" --help >"$tmp/help"
awk '/^commands:/{on=1; next} on && /^$/{exit} on && /^  [a-z]/{name=$1; $1=""; sub(/^ +/, ""); print name "\t" $0}' \
  "$tmp/help" >"$tmp/commands"
[ -s "$tmp/commands" ] || { echo "gen-man.sh: no commands found in '$sembed --help'" >&2; exit 1; }

# SEE ALSO for the main page; the subcommand pages point back to sembed(1).
{
  echo "[SEE ALSO]"
  sep=""
  while IFS=$'\t' read -r name _; do printf '%s.BR sembed\\-%s (1)' "$sep" "$name"; sep=$',\n'; done <"$tmp/commands"
  echo
  echo ".PP"
  echo "The default model is installed in /usr/share/sembed/models/sembed-mini/ (with the CLI package)."
} >"$tmp/main.h2m"
printf '[SEE ALSO]\n.BR sembed (1)\n' >"$tmp/sub.h2m"

# help2man runs a program with --help and --version: one small wrapper per subcommand.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$sembed" >"$tmp/sembed"
chmod +x "$tmp/sembed"
help2man --no-info --section=1 --version-string="$version" --name="BERT-family sentence encoders in C" \
  --include="$tmp/main.h2m" --output="$tmp/sembed.1" "$tmp/sembed"
keep="sembed.1.gz"
while IFS=$'\t' read -r name desc; do
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$sembed" "$name" >"$tmp/sembed-$name"
  chmod +x "$tmp/sembed-$name"
  # A subcommand whose --help fails gets no page and a warning, not a failed build:
  # tests/test_repo.c then fails naming it.
  if help2man --no-info --section=1 --version-string="$version" --name="$desc" --include="$tmp/sub.h2m" \
    --output="$tmp/sembed-$name.1" "$tmp/sembed-$name"; then
    keep="$keep sembed-$name.1.gz"
  else
    echo "gen-man.sh: WARNING: no man page for 'sembed $name' (its --help failed)" >&2
    rm -f "$tmp/sembed-$name.1"
  fi
done <"$tmp/commands"
for f in "$tmp"/*.1; do
  gzip -9n -c "$f" >"$out/$(basename "$f").gz"
done
for f in "$out"/*.1.gz; do
  case " $keep " in *" $(basename "$f") "*) ;; *) rm -f "$f" ;; esac
done
echo "gen-man.sh: $(($(echo $keep | wc -w) - 1)) subcommand pages and sembed.1 in $out"
